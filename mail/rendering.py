"""Email rendering: a body (a newsletter issue, campaigns.issue_email; or a transactional email)
inside the email layout, into a complete HTML email and its plaintext, rendered ONCE;
per-recipient values are literal placeholders filled in by RenderedEmail.personalise(), a cheap
string substitution the sending engine runs per recipient. The editors' merge tags
(``{{ first_name }}``...) become such placeholders here, once (mail.mergetags)."""

import re
from dataclasses import dataclass
from urllib.parse import urljoin

import css_inline
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, pgettext

from mail import mergetags
from mail.models import newsletter_settings
from mail.plaintext import html_to_text

# Per-recipient values, as literal tokens in the rendered html and text. Keys are what
# RenderedEmail.personalise() expects in its ``values``.
PLACEHOLDERS = {
    "name": "%%name%%",
    "email": "%%email%%",
    "unsubscribe_url": "%%unsubscribe_url%%",
    "preferences_url": "%%preferences_url%%",
    # Signed delivery id in own click-tracking links (campaigns.click_tracking); absent otherwise.
    "delivery": "%%delivery%%",
}

EMAIL_LAYOUT = "campaigns/email/layout.html"

# Invisible padding after the preheader so inbox previews do not run on into the body text
# (combining grapheme joiner + zero-width non-joiner + no-break space is the usual recipe).
_PREHEADER_SPACER = mark_safe("&#847;&zwnj;&nbsp;" * 60)

# One inliner for the process: @media rules stay in <style> (keep_at_rules), everything else
# becomes style attributes; remote stylesheets are never fetched (no network at render time).
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False, keep_link_tags=False)

# css-inline serialises every attribute with double quotes, so this sees every href/src.
_URL_ATTR = re.compile(r'(\s(?:href|src))="([^"]*)"')
_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered email, identical for every recipient until personalise() fills the placeholders.

    ``subject`` is as the editor wrote it (merge tags in it); ``html`` and ``text`` hold tokens
    (mail.mergetags); ``errors`` lists the merge tags that cannot be sent (unknown, split by
    formatting, in a link's host), in the active language.
    """

    subject: str
    preheader: str
    html: str
    text: str
    errors: tuple[str, ...] = ()

    def personalise(self, values: dict[str, str]) -> tuple[str, str]:
        """Fill the placeholders and merge tags with one recipient's ``values`` (keys as in
        PLACEHOLDERS, plus mail.mergetags.subscriber_values()).

        Returns ``(html, text)``. Values are HTML-escaped in the html part only (and URL-quoted
        in links); a missing value becomes its fallback or nothing, so no raw token reaches a reader.
        """
        return fill_placeholders(self.html, values, escape=True), fill_placeholders(self.text, values, escape=False)

    def personal_subject(self, values: dict[str, str]) -> str:
        """The subject one recipient sees (control characters in values become spaces)."""
        return mergetags.fill(mergetags.compile_header(self.subject), values)


def fill_placeholders(template: str, values: dict[str, str], *, escape: bool) -> str:
    """Fill each token in ``template`` with ``values`` in one pass (HTML-escaped when ``escape``);
    a missing value becomes its fallback or "", so no raw token reaches a reader. For one use:
    whatever fills a template many times compiles it once (mail.mergetags.compile_template)."""
    return mergetags.fill_template(template, values, html=escape)


def join_names(names: list[str]) -> str:
    """ "A", "A and B", "A, B and C", in the active language ("A、B和C" in Chinese)."""
    if len(names) == 1:
        return names[0]
    # Translators: the separator between the names of a list but the last two ("A, B and C").
    separator = pgettext("list separator", ", ")
    return gettext("%(names)s and %(last)s") % {"names": separator.join(names[:-1]), "last": names[-1]}


def render_transactional(
    *, subject: str, preheader: str, template_name: str, context: dict, base_url: str | None = None
) -> RenderedEmail:
    """Render ``template_name`` with ``context`` inside the newsletter email layout.

    For double opt-in confirmations and staff notices. The footer shows unsubscribe,
    preferences and "view in browser" links only when ``context`` has ``unsubscribe_url``,
    ``preferences_url`` or ``view_url`` (values or PLACEHOLDERS tokens). Returns a RenderedEmail.
    """
    base_url = base_url_or_default(base_url)
    body_html = render_to_string(template_name, {**context, "base_url": base_url})
    # Safe: the output of a template, escaped by it.
    body = render_to_string("campaigns/email/transactional.html", {"body_html": mark_safe(body_html)})
    return render_layout(
        subject=subject,
        preheader=preheader,
        body=body,
        base_url=base_url,
        view_url=context.get("view_url", ""),
        unsubscribe_url=context.get("unsubscribe_url", ""),
        preferences_url=context.get("preferences_url", ""),
        # The site's footer text says "you subscribed": untrue for a confirmation request.
        footer_text=context.get("footer_text", ""),
    )


def render_layout(
    *, subject, preheader, body, base_url, view_url, unsubscribe_url, preferences_url, footer_text, receiving=False
):
    """``body`` (HTML from our own templates) inside the email layout, CSS inlined, URLs absolute,
    with its plaintext, in the active language. ``footer_text`` None means the site's newsletter
    footer text in that language (NewsletterSettings.footer_for). ``receiving``:
    the list names for the "You are receiving ... at <address>" line (None: the newsletter's name;
    False: no line, as in transactional emails, whose reader subscribed to nothing yet)."""
    sender = newsletter_settings()
    if footer_text is None:
        footer_text = sender.footer_for(translation.get_language()) if sender else ""
    receiving_line = ""
    if receiving is not False:
        names = receiving or [sender.sender_name if sender and sender.sender_name else settings.WAGTAIL_SITE_NAME]
        receiving_line = join_names(names)
    html = render_to_string(
        EMAIL_LAYOUT,
        {
            "subject": subject,
            "preheader": preheader,
            "preheader_spacer": _PREHEADER_SPACER,
            "body": mark_safe(body),  # rendered by our own templates, escaped there
            "sender_name": sender.sender_name if sender else "",
            "postal_address": sender.postal_address if sender else "",
            "footer_text": footer_text,
            "view_url": view_url,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": preferences_url,
            "receiving": receiving_line,
            "email_placeholder": PLACEHOLDERS["email"],
        },
    )
    # The editors' merge tags become tokens once, after inlining (which may rewrite entities).
    canonical = mergetags.canonicalise(_INLINER.inline(html), html=True)
    html = absolutise_urls(canonical.text, base_url, page_url=view_url or base_url + "/")
    errors = tuple(dict.fromkeys(mergetags.errors(subject) + canonical.errors))
    return RenderedEmail(subject=subject, preheader=preheader, html=html, text=html_to_text(html), errors=errors)


def absolutise_urls(html: str, base_url: str, *, page_url: str | None = None) -> str:
    """Make every href/src in ``html`` absolute against ``base_url``.

    Absolute URLs (any scheme) and %%placeholders%% are kept; ``//host`` gets https; ``#anchor``
    links point into ``page_url``; empty hrefs are dropped. Expects double-quoted attributes
    (css-inline's output).
    """
    base = base_url.rstrip("/") + "/"
    page_url = page_url or base

    def fix(match: re.Match) -> str:
        attr, url = match.group(1), match.group(2).strip()
        if not url:
            return ""
        if url.startswith("%%") or _ABSOLUTE.match(url):
            return match.group(0)
        if url.startswith("//"):
            return f'{attr}="https:{url}"'
        if url.startswith("#"):
            return f'{attr}="{page_url.split("#")[0]}{url}"'
        return f'{attr}="{urljoin(base, url)}"'

    return _URL_ATTR.sub(fix, html)


def base_url_or_default(base_url: str | None) -> str:
    return (base_url or settings.BASE_URL).rstrip("/")
