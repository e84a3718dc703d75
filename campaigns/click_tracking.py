"""Own click and open tracking for plain SMTP (ESPs track on their own): signed links and a pixel.

Off by default: ``BROADSHEET["TRACK_CLICKS"]`` and ``BROADSHEET["TRACK_OPENS"]`` switch each on.

How it fits the send: the engine renders a campaign once, calls ``rewrite_links(html, campaign_id)``
once on that HTML, and then, per recipient, replaces the placeholder ``%%delivery%%``
(``DELIVERY_PLACEHOLDER``) with ``delivery_token(delivery_id)``. A link then reads

    https://SITE/campaigns/c/<signed campaign id and URL>/?d=<signed delivery id>

The first part is signed once per campaign and link, so nobody can make the site redirect
somewhere the editor did not link to (a forged or altered value answers 400). The second part
is signed per recipient, so a click can only be recorded for the delivery the email went to,
and only when it belongs to the campaign in the link. A missing or bad ``d`` (a forwarded test
send, a placeholder left unfilled) still redirects, but records nothing.
"""

import html as html_lib
import re
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.urls import reverse

from mail import mergetags
from mail.rendering import PLACEHOLDERS

DELIVERY_PLACEHOLDER = PLACEHOLDERS["delivery"]

LINK_SALT = "campaigns.click_tracking.link"
DELIVERY_SALT = "campaigns.click_tracking.delivery"

# <a ... href="..."> with either quote style; group 2 is the quote, group 3 the (escaped) URL.
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _base_url() -> str:
    return settings.BASE_URL.rstrip("/")


def sign_link(campaign_id: int, url: str) -> str:
    """The signed, URL-safe value carrying ``campaign_id`` and ``url`` (no expiry: old emails keep working)."""
    return signing.dumps([int(campaign_id), url], salt=LINK_SALT, compress=True)


def read_link(value: str) -> tuple[int, str]:
    """``(campaign_id, url)`` from ``sign_link``'s value; raises ``signing.BadSignature`` if forged or malformed."""
    try:
        campaign_id, url = signing.loads(value, salt=LINK_SALT)
        campaign_id = int(campaign_id)
    except (TypeError, ValueError) as error:
        raise signing.BadSignature("malformed tracking link") from error
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise signing.BadSignature("not a web link")
    return campaign_id, url


def delivery_token(delivery_id: int) -> str:
    """The per-recipient value the engine puts in place of ``%%delivery%%`` (a signed delivery id)."""
    return signing.Signer(salt=DELIVERY_SALT).sign(str(int(delivery_id)))


def read_delivery_token(token: str) -> int | None:
    """The delivery id in ``token``, or None when it is missing, forged or malformed."""
    try:
        return int(signing.Signer(salt=DELIVERY_SALT).unsign(token or ""))
    except (signing.BadSignature, ValueError):
        return None


def tracked_url(campaign_id: int, url: str) -> str:
    """The absolute redirect URL for ``url`` in ``campaign_id``, with the ``%%delivery%%`` placeholder."""
    path = reverse("campaigns:click", args=[sign_link(campaign_id, url)])
    return f"{_base_url()}{path}?d={DELIVERY_PLACEHOLDER}"


def open_pixel_url(campaign_id: int) -> str:
    """The absolute open-pixel URL for ``campaign_id``, with the ``%%delivery%%`` placeholder."""
    return f"{_base_url()}{reverse('campaigns:open', args=[int(campaign_id)])}?d={DELIVERY_PLACEHOLDER}"


@dataclass(frozen=True)
class OwnTracking:
    opens: bool
    clicks: bool


def own_tracking(html: str, campaign_id: int) -> OwnTracking:
    """Whether rewrite_links() added our open pixel / tracked links to a campaign's stored HTML."""
    pixel = reverse("campaigns:open", args=[int(campaign_id)])
    link_prefix = reverse("campaigns:click", args=["x"])[:-2]  # "/campaigns/c/"
    return OwnTracking(opens=pixel in html, clicks=f"{_base_url()}{link_prefix}" in html)


def personal_keys(url: str) -> list[str]:
    """The merge-tag values a link holds (``https://example.org/?c=%%attributes.city%%``), in order."""
    return list(dict.fromkeys(match["key"] for match in mergetags.TOKEN.finditer(url)))


def personal_url(url: str, query) -> str:
    """A signed link with merge tags filled from the click's query (``personal_query``): each value
    URL-quoted into the path or query the editor wrote (mail.mergetags checked at render that no
    tag stands in the scheme or host), missing ones as their fallback."""
    values = {key: query.get(key, "") for key in personal_keys(url)}
    return mergetags.fill(mergetags.compile_template(url, html=False), values)


def personal_query(url: str) -> str:
    """``&key=%%key%%`` for each merge tag of ``url``: the recipient's values travel in the tracked
    link (filled per recipient like the delivery id) and the redirect puts them into the link."""
    return "".join(f"&{quote(key)}={mergetags.token(key)}" for key in personal_keys(url))


def _trackable(url: str) -> bool:
    if not url.lower().startswith(("http://", "https://")):
        return False  # mailto:, tel:, #anchors
    if any(key in mergetags.SYSTEM_KEYS for key in personal_keys(url)):
        return False  # per-recipient links (unsubscribe, preferences): not ours to count
    return not url.startswith(f"{_base_url()}/campaigns/c/")  # already rewritten


def rewrite_links(html: str, campaign_id: int, *, clicks: bool | None = None, opens: bool | None = None) -> str:
    """Add our own tracking to a campaign's rendered HTML; call once per campaign, before personalising.

    In: the rendered HTML (with its ``%%...%%`` placeholders) and the campaign id. Out: the HTML with
    every ``http(s)`` link in an ``<a href>`` replaced by ``tracked_url()`` (when ``clicks``,
    default ``BROADSHEET["TRACK_CLICKS"]``) and a 1x1 open pixel before ``</body>`` (when ``opens``,
    default ``BROADSHEET["TRACK_OPENS"]``). Both off (the default): the HTML comes back unchanged.
    Links holding system placeholders (unsubscribe, preferences), mailto: and anchors are left
    alone; a link with merge tags is tracked with the recipient's values in its query
    (``personal_query``), put back into the link by the redirect (``personal_url``).

    The result holds the placeholder ``%%delivery%%`` (``DELIVERY_PLACEHOLDER``) in each tracked
    URL; per recipient, replace it with ``delivery_token(delivery.pk)``. The plaintext part is not
    touched.
    """
    clicks = settings.BROADSHEET["TRACK_CLICKS"] if clicks is None else clicks
    opens = settings.BROADSHEET["TRACK_OPENS"] if opens is None else opens
    if clicks:

        def replace(match):
            url = html_lib.unescape(match.group(3)).strip()
            if not _trackable(url):
                return match.group(0)
            tracked = tracked_url(campaign_id, url) + personal_query(url)
            return f"{match.group(1)}{match.group(2)}{html_lib.escape(tracked)}{match.group(2)}"

        html = _HREF.sub(replace, html)
    if opens:
        pixel = (
            f'<img src="{html_lib.escape(open_pixel_url(campaign_id))}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0;" />'
        )
        ends = list(_BODY_END.finditer(html))
        html = html[: ends[-1].start()] + pixel + html[ends[-1].start() :] if ends else html + pixel
    return html
