"""VERP: a return path per delivery, so a bounce names its delivery even when the DSN is mangled.

With ``BROADSHEET["BOUNCE_DOMAIN"]`` set (``BOUNCE_DOMAIN``), each campaign message is sent with
the envelope sender (SMTP ``MAIL FROM``, which the receiving MTA records as ``Return-Path`` and
sends bounces to)::

    bounces+<delivery id>-<signature>@<bounce domain>

The signature is 13 lowercase base32 characters of an HMAC of the delivery id (64 bits, keyed by
SECRET_KEY): nobody can forge a bounce for someone else's delivery by mailing that address, and
lowercase survives MTAs that fold the local part's case. The whole local part stays well under
RFC 5321's 64 octets. The ``+`` is Postfix's default ``recipient_delimiter`` (Exim, qmail and most
hosting mailboxes accept it too), so one mailbox, ``bounces@<bounce domain>``, receives them all.
"""

import base64
import re

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

_SALT = "campaigns.sending.verp"
_TOKEN = re.compile(r"(\d{1,19})-([a-z2-7]{13})")


def bounce_domain() -> str:
    return settings.BROADSHEET["BOUNCE_DOMAIN"]


def _signature(delivery_id: int) -> str:
    digest = salted_hmac(_SALT, str(int(delivery_id)), algorithm="sha256").digest()
    return base64.b32encode(digest[:8]).decode().rstrip("=").lower()


def return_path(delivery_id: int) -> str | None:
    """The envelope sender for ``delivery_id``, or None when no bounce domain is configured."""
    domain = bounce_domain()
    if not domain:
        return None
    local = settings.BROADSHEET["BOUNCE_LOCAL_PART"]
    return f"{local}+{int(delivery_id)}-{_signature(delivery_id)}@{domain}"


def delivery_from_address(address: str) -> int | None:
    """The delivery id a VERP address names (any case, with or without angle brackets), or None.

    None for anything that is not a correctly signed VERP address of ours (a plain address, a
    forged or truncated token): the caller then falls back to the DSN's own fields.
    """
    address = (address or "").strip().strip("<>").lower()
    local, _, _domain = address.rpartition("@")
    prefix = settings.BROADSHEET["BOUNCE_LOCAL_PART"].lower() + "+"
    if not local.startswith(prefix):
        return None
    match = _TOKEN.fullmatch(local[len(prefix) :])
    if match is None:
        return None
    delivery_id = int(match.group(1))
    if not constant_time_compare(match.group(2), _signature(delivery_id)):
        return None
    return delivery_id
