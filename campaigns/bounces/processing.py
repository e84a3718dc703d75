"""Read the bounce mailbox once: classify every message, apply it, then remove or keep it.

``process_mailbox()`` is what both ``manage.py process_bounces`` and the periodic task run.
Per message, in this order:

1. parse (``campaigns.bounces.parsing.parse``, a pure function of the bytes);
2. apply hard and soft bounces and complaints with ``campaigns.tracking.record_tracking_event``,
   the workflow the ESP webhooks use, which hands the subscriber side to
   ``subscribers.suppression.apply_feedback``: the same rules (hard bounce and complaint
   suppress, soft bounces count towards SOFT_BOUNCE_LIMIT consecutive campaigns), with or
   without a matching delivery (a bounce naming only a known address still suppresses it),
   inside ONE transaction that commits before step 3;
3. only then delete the message (or set it aside for a person when it could not be read).

The event id is the mailbox message's own identity (Message-ID, else a hash of its bytes) plus
the recipient, so the same message read twice (a crash between 2 and 3, two readers, a POP3
session that ended without QUIT) is a DUPLICATE the second time and changes nothing.
Auto-replies and delay warnings are deleted without being counted.

Each read is recorded (``last_read()``: when, what it found, what was kept aside, or the error)
in the shared cache, for the admin's Mailers page (``mailbox_status()``).
"""

import datetime
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.bounces import parsing
from campaigns.bounces.mailboxes import MailboxError, describe, open_mailbox
from campaigns.models import Delivery, DeliveryEvent
from campaigns.tracking import BOUNCED, COMPLAINED, TrackingEvent, record_tracking_event

logger = logging.getLogger(__name__)

ESP_NAME = "mailbox"
LAST_READ_KEY = "broadsheet:bounce-mailbox-last-read"

# What happened to a message in the mailbox.
DELETED = "deleted"
KEPT = "kept"
LEFT = "left"  # an error while applying it: left in place for the next run


@dataclass
class Processed:
    """One mailbox message: what it was, what it changed, what became of it."""

    key: str
    kind: str
    summary: str
    disposition: str
    outcomes: list[str]

    def line(self) -> str:
        changed = f" [{', '.join(self.outcomes)}]" if self.outcomes else ""
        return f"{self.key}: {self.kind}: {self.summary}{changed} -> {self.disposition}"


def process_mailbox(config: dict | None = None, *, ssl_context=None, echo: Callable[[str], None] | None = None):
    """Read the mailbox ``config`` (default: ``BROADSHEET["BOUNCE_MAILBOX"]``) once.

    Returns the list of ``Processed``; ``echo(line)`` is called for each as it happens. Raises
    ``MailboxError`` (or its ``AuthenticationFailed``) when the mailbox cannot be read at all.
    """
    config = config or settings.BROADSHEET["BOUNCE_MAILBOX"]
    if not config:
        return []
    results = []
    try:
        with open_mailbox(config, ssl_context=ssl_context) as box:
            for key, raw in box.messages():
                result = process_message(raw)
                result.key = f"{describe(config)}#{key}"
                if result.disposition == DELETED:
                    box.done(key)
                elif result.disposition == KEPT:
                    box.keep(key)
                results.append(result)
                logger.info("bounce mailbox: %s", result.line())
                if echo is not None:
                    echo(result.line())
    except MailboxError as error:
        _record_read(config, results, error=str(error))
        raise
    _record_read(config, results)
    return results


def _record_read(config: dict, results: list[Processed], *, error: str = "") -> None:
    previous = cache.get(LAST_READ_KEY) or {}
    now = timezone.now().isoformat()
    cache.set(
        LAST_READ_KEY,
        {
            "where": describe(config),
            "at": now,
            "ok_at": previous.get("ok_at") if error else now,
            "error": error[:500],
            "kinds": dict(Counter(result.kind for result in results)),
            "dispositions": dict(Counter(result.disposition for result in results)),
        },
        timeout=None,
    )


def last_read() -> dict | None:
    """The last read of the bounce mailbox (by the task or process_bounces), or None.

    ``{"where", "at", "ok_at" (last read without error), "error", "kinds" ({"hard": 2, ...}),
    "dispositions" ({"deleted": 3, "kept": 1, "left": 0})}``; the datetimes are aware.
    """
    value = cache.get(LAST_READ_KEY)
    if not value:
        return None
    return {
        **value,
        "at": datetime.datetime.fromisoformat(value["at"]),
        "ok_at": datetime.datetime.fromisoformat(value["ok_at"]) if value.get("ok_at") else None,
    }


def applied_since(since: datetime.datetime) -> dict[str, int]:
    """Bounces and complaints from the mailbox applied since ``since``: {"hard": n, "soft": n, "complaint": n}."""
    rows = (
        DeliveryEvent.objects.filter(esp=ESP_NAME, created_at__gte=since)
        .values_list("payload__kind")
        .annotate(count=Count("pk"))
    )
    return {kind: count for kind, count in rows if kind}


def process_message(raw: bytes) -> Processed:
    """Classify and apply one message; its outcome is committed when this returns."""
    report = parsing.parse(raw)
    if report.kind == parsing.UNKNOWN:
        return Processed(report.key, report.kind, report.summary, KEPT, [])
    if report.kind in (parsing.AUTO_REPLY, parsing.DELAYED):
        return Processed(report.key, report.kind, report.summary, DELETED, ["not counted"])
    try:
        with transaction.atomic():
            outcomes = [
                f"{recipient.address}: {record_tracking_event(_event(report, recipient))}"
                for recipient in report.recipients
                if recipient.kind in (parsing.HARD, parsing.SOFT, parsing.COMPLAINT)
            ]
    except Exception as error:  # a database error: leave the message for the next run
        logger.exception("bounce mailbox: could not apply %s", report.key)
        return Processed(report.key, report.kind, f"{report.summary} (error: {error})", LEFT, [])
    return Processed(report.key, report.kind, report.summary, DELETED, outcomes)


def _event(report: parsing.Report, recipient: parsing.Recipient) -> TrackingEvent:
    delivery_id = report.delivery_id
    if delivery_id is not None and len(report.recipients) > 1:
        # One VERP address per delivery: in a multi-recipient report it names only its own.
        email = Delivery.objects.filter(pk=delivery_id).values_list("email", flat=True).first() or ""
        if email.lower() != recipient.address:
            delivery_id = None
    return TrackingEvent(
        esp=ESP_NAME,
        event_type=COMPLAINED if recipient.kind == parsing.COMPLAINT else BOUNCED,
        message_id=report.original_message_id,
        recipient=recipient.address,
        event_id=f"{report.key}:{recipient.address}",
        soft_bounce=recipient.kind == parsing.SOFT,
        description=" ".join(part for part in (recipient.status, recipient.diagnostic) if part)[:500],
        payload={"summary": report.summary[:500], "status": recipient.status, "kind": recipient.kind},
        delivery_id=delivery_id,
    )


@dataclass
class MailboxStatus:
    """The bounce mailbox for the admin: where, how the last read went, what it applied lately."""

    where: str  # "" when no BOUNCE_MAILBOX_URL is configured
    poll_seconds: int
    last_read: dict | None
    applied: dict[str, int]  # bounces and complaints applied in the last ``days`` days
    days: int


def mailbox_status(*, days: int = 7, now: datetime.datetime | None = None) -> MailboxStatus:
    """The configured bounce mailbox's ``MailboxStatus`` (no connection is made)."""
    config = settings.BROADSHEET["BOUNCE_MAILBOX"]
    now = now or timezone.now()
    return MailboxStatus(
        where=describe(config) if config else "",
        poll_seconds=int(settings.BROADSHEET["BOUNCE_POLL_SECONDS"]),
        last_read=last_read(),
        applied=applied_since(now - datetime.timedelta(days=days)),
        days=days,
    )
