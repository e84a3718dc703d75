"""Signed links in emails: confirm (expires), unsubscribe and preferences (never expire).

Each purpose has its own salt, so a token made for one purpose fails the signature check of
every other (an unsubscribe link cannot confirm anyone, a confirmation link cannot unsubscribe).
Tokens carry the subscriber's random ``uid`` and list ids, never the address, and are HMAC-signed
with ``SECRET_KEY``: they cannot be guessed or altered. The format is
``<uid hex>[-<list id>...][_<campaign id>].<signature>`` (plus a timestamp for confirmations),
all URL-safe. The campaign id (unsubscribe links in a campaign's emails) lets the campaign's
report count the unsubscribe.
"""

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable
from typing import NamedTuple

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes

CONFIRM_SALT = "broadsheet.subscribers.confirm"
UNSUBSCRIBE_SALT = "broadsheet.subscribers.unsubscribe"
PREFERENCES_SALT = "broadsheet.subscribers.preferences"
# "." is not a base64url character, so it cannot occur in the signature or the payload.
SEPARATOR = "."


# A token as made here: uid hex, optional "-<list id>"s and "_<campaign id>", then the signature
# (and, for confirmations, the timestamp): what must never be stored where staff or exports read.
_TOKEN = re.compile(r"[0-9a-f]{32}(?:-\d+)*(?:_\d+)?(?:\.[A-Za-z0-9_-]+){1,2}")
# The query string and fragment of a URL or path (tracking values, ?d= delivery tokens, anything).
_QUERY = re.compile(r"((?:https?://|/)[^\s?#()]*)[?#][^\s()]*")
REDACTED = "[link]"


def redact(text: str) -> str:
    """``text`` with every link token replaced by ``[link]`` and every URL's query and fragment
    dropped: for consent records and history, which staff read and list exports carry, while a
    token is a bearer credential (it unsubscribes, or opens the preference centre)."""
    return _TOKEN.sub(REDACTED, _QUERY.sub(r"\1", text or ""))


class BadToken(Exception):
    """The token is malformed, forged, or was made for another purpose."""


class ExpiredToken(BadToken):
    """The token was genuine but is older than its purpose allows."""


class UnsubscribeLink(NamedTuple):
    uid: uuid.UUID
    list_ids: list[int]
    campaign_id: int | None


def _payload(subscriber_uid, list_ids: Iterable[int], campaign_id: int | None = None) -> str:
    uid = subscriber_uid if isinstance(subscriber_uid, uuid.UUID) else uuid.UUID(str(subscriber_uid))
    payload = "-".join([uid.hex, *(str(int(pk)) for pk in sorted(set(list_ids)))])
    return f"{payload}_{int(campaign_id)}" if campaign_id else payload


def _parse_with_campaign(payload: str) -> UnsubscribeLink:
    body, _, campaign = payload.partition("_")
    uid_hex, *ids = body.split("-")
    try:
        return UnsubscribeLink(uuid.UUID(hex=uid_hex), [int(pk) for pk in ids], int(campaign) if campaign else None)
    except ValueError:
        raise BadToken("Malformed token payload.") from None


def _parse(payload: str) -> tuple[uuid.UUID, list[int]]:
    uid, list_ids, campaign_id = _parse_with_campaign(payload)
    if campaign_id is not None:
        raise BadToken("Unexpected campaign in this token.")
    return uid, list_ids


def _signer(salt: str, timestamped: bool = False) -> signing.Signer:
    cls = signing.TimestampSigner if timestamped else signing.Signer
    return cls(salt=salt, sep=SEPARATOR, algorithm="sha256")


def _unsign(token: str, salt: str) -> str:
    try:
        return _signer(salt).unsign(token or "")
    except signing.BadSignature:
        raise BadToken("Invalid signature.") from None


# (salt, SECRET_KEY) -> the HMAC keyed for that salt, copied for each token.
_macs: dict[tuple[str, str], hmac.HMAC] = {}


def _sign(payload: str, salt: str) -> str:
    """``_signer(salt).sign(payload)``, byte for byte, with the HMAC key derived once per salt.

    Django's Signer derives its key (``salted_hmac``: a SHA-256 of salt and secret) and reads
    the settings on every call; the sending engine signs two tokens per recipient, and that was
    a tenth of its CPU per message. A test compares the two for every purpose.
    """
    secret = settings.SECRET_KEY
    mac = _macs.get((salt, secret))
    if mac is None:
        if len(_macs) > 16:  # a handful of salts; SECRET_KEY changes only in tests
            _macs.clear()
        key = hashlib.sha256(f"{salt}signer".encode() + force_bytes(secret)).digest()
        mac = _macs[(salt, secret)] = hmac.new(key, digestmod=hashlib.sha256)
    mac = mac.copy()
    mac.update(payload.encode())
    return f"{payload}{SEPARATOR}{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


def unsubscribe_token(subscriber_uid, list_ids: Iterable[int] = (), campaign_id: int | None = None) -> str:
    """A permanent token to leave ``list_ids`` (empty: every list) for the subscriber ``subscriber_uid``.

    ``campaign_id``: the campaign whose email carries the link, credited with the unsubscribe.
    """
    return _sign(_payload(subscriber_uid, list_ids, campaign_id), UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> UnsubscribeLink:
    """``(uid, list_ids, campaign_id)`` from an unsubscribe token; raises ``BadToken``."""
    return _parse_with_campaign(_unsign(token, UNSUBSCRIBE_SALT))


def preferences_token(subscriber_uid) -> str:
    """A permanent token that opens the subscriber's preference centre."""
    return _sign(_payload(subscriber_uid, ()), PREFERENCES_SALT)


def read_preferences_token(token: str) -> uuid.UUID:
    """The subscriber uid from a preferences token; raises ``BadToken``."""
    uid, list_ids = _parse(_unsign(token, PREFERENCES_SALT))
    if list_ids:
        raise BadToken("Not a preferences token.")
    return uid


def confirm_token(subscriber_uid, list_ids: Iterable[int]) -> str:
    """A double opt-in token for the pending subscriptions to ``list_ids``; expires (CONFIRM_TOKEN_DAYS)."""
    return _signer(CONFIRM_SALT, timestamped=True).sign(_payload(subscriber_uid, list_ids))


def confirm_token_max_age() -> int:
    return int(settings.BROADSHEET["CONFIRM_TOKEN_DAYS"]) * 24 * 60 * 60


def read_confirm_token(token: str) -> tuple[uuid.UUID, list[int]]:
    """``(subscriber uid, list ids)`` from a confirmation token.

    Raises ``ExpiredToken`` when it is older than ``CONFIRM_TOKEN_DAYS``, ``BadToken`` when it is
    forged, malformed or made for another purpose.
    """
    try:
        payload = _signer(CONFIRM_SALT, timestamped=True).unsign(token or "", max_age=confirm_token_max_age())
    except signing.SignatureExpired:
        raise ExpiredToken("Confirmation link expired.") from None
    except signing.BadSignature:
        raise BadToken("Invalid signature.") from None
    return _parse(payload)
