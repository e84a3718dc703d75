"""Per-recipient links: unsubscribe (page and RFC 8058 one-click), preferences and confirmation.

The sending engine asks for 100,000 of these per campaign (RecipientLinks); the transactional
emails ask for one at a time.
"""

import datetime
from collections.abc import Iterable

from django.conf import settings
from django.urls import reverse

from subscribers import tokens


def confirmation_window() -> datetime.timedelta:
    return datetime.timedelta(days=int(settings.BROADSHEET["CONFIRM_TOKEN_DAYS"]))


class RecipientLinks:
    """The per-recipient links of one mailing to ``list_ids`` (optionally from ``campaign_id``).

    The URL prefixes are reversed once; ``urls(uid)`` then only signs two tokens, which is what
    the sending engine needs for 100,000 recipients.
    """

    _MARK = "TOKENMARKER"

    def __init__(self, list_ids: Iterable[int] = (), campaign_id: int | None = None):
        self.list_ids = tuple(list_ids)
        self.campaign_id = campaign_id
        base = settings.BASE_URL.rstrip("/")
        self._unsubscribe, self._one_click, self._preferences = (
            (base + reverse(name, args=[self._MARK])).split(self._MARK)
            for name in ("subscribers:unsubscribe", "subscribers:one_click", "subscribers:preferences")
        )

    def urls(self, subscriber_uid) -> dict[str, str]:
        """``unsubscribe_url`` (page with a button), ``one_click_url`` (RFC 8058 POST target for
        ``List-Unsubscribe``), ``preferences_url`` (absolute) and the unsubscribe ``token``."""
        token = tokens.unsubscribe_token(subscriber_uid, self.list_ids, self.campaign_id)
        return {
            "unsubscribe_url": token.join(self._unsubscribe),
            "one_click_url": token.join(self._one_click),
            "preferences_url": tokens.preferences_token(subscriber_uid).join(self._preferences),
            "token": token,
        }


def recipient_urls(subscriber_uid, list_ids: Iterable[int] = ()) -> dict[str, str]:
    """Absolute (``settings.BASE_URL``) links for one recipient of a mailing to ``list_ids``.

    Returns ``unsubscribe_url``, ``one_click_url`` and ``preferences_url`` (see RecipientLinks);
    the unsubscribe links leave only ``list_ids``.
    """
    return RecipientLinks(list_ids).urls(subscriber_uid)


def confirm_url(subscriber_uid, list_ids: Iterable[int]) -> str:
    """The absolute double opt-in link for the pending subscriptions to ``list_ids``."""
    token = tokens.confirm_token(subscriber_uid, list_ids)
    return settings.BASE_URL.rstrip("/") + reverse("subscribers:confirm", args=[token])
