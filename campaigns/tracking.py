"""Delivery feedback: ESP webhook events and our own click/open tracking update deliveries and campaigns.

One workflow, ``record_tracking_event()``, used by the anymail signal receiver
(``campaigns.signal_handlers``) and by the click/open endpoints (``campaigns.click_tracking``).

Rules, decided here once:

- Idempotent. Every event is stored as a ``DeliveryEvent`` whose unique ``event_id`` is the ESP's
  id (prefixed with the ESP name) or, for ESPs and event types without one (Postmark deliveries,
  opens and clicks), a hash of esp + type + message id + timestamp + recipient (+ clicked URL). A
  second copy of the same event changes nothing and reports ``DUPLICATE``.
- Unknown message ids are stored with no delivery and report ``UNMATCHED``; never an error (an
  exception would make anymail answer 400 and the ESP retry forever).
- Counters only go up. A delivery counts once per state (delivered, opened, clicked, bounced,
  complained, unsubscribed) in the campaign's counters, the first time it reaches that state;
  the campaign counters change only with ``F()``. ``first_*`` timestamps keep the earliest time
  seen, whatever order events arrive in.
- Out of order: an open or a click proves the message was delivered, so it also marks the
  delivery delivered (counted once; a later "delivered" event only moves ``delivered_at`` earlier).
  A click also proves an open (images may be blocked): it counts as the first open when none was
  seen, so unique opens are never fewer than unique clicks.
- Hard bounce (``bounced``, or ``rejected`` because the address is invalid or bounced before):
  the subscriber is suppressed (state BOUNCED, with the reason and a ``SubscriberEvent``); the
  subscriptions stay as they are, because a bounce is not a withdrawal of consent.
- Soft bounce (``deferred``, and ESP bounces flagged soft, e.g. Postmark ``SoftBounce``): marks the
  delivery ``bounce_type="soft"`` and, once per campaign, adds one to the subscriber's
  ``soft_bounce_streak``; at ``BROADSHEET["SOFT_BOUNCE_LIMIT"]`` consecutive campaigns the address
  is suppressed as BOUNCED. A soft bounce after the delivery was already delivered is ignored
  for the streak (the retry got through). Any delivered (or implied delivered) event resets the
  streak to 0. ``Campaign.bounced`` counts hard bounces only; soft ones are the deliveries with
  ``bounce_type="soft"``.
- Complaint: suppressed as COMPLAINED and unsubscribed from every list with method "complaint".
- ``unsubscribed`` from the ESP: unsubscribed from the campaign's lists with method "esp".
"""

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC as datetime_utc
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import Campaign, Delivery, DeliveryEvent

logger = logging.getLogger(__name__)

# Outcomes of record_tracking_event().
RECORDED = "recorded"  # stored and applied to a delivery
DUPLICATE = "duplicate"  # seen before: nothing changed
UNMATCHED = "unmatched"  # stored, but no delivery has that message id and recipient
IGNORED = "ignored"  # stored against its delivery, but the event type changes nothing (queued, sent...)

# Event types (anymail's normalised names, anymail.signals.EventType).
DELIVERED = "delivered"
OPENED = "opened"
CLICKED = "clicked"
BOUNCED = "bounced"
DEFERRED = "deferred"
REJECTED = "rejected"
COMPLAINED = "complained"
UNSUBSCRIBED = "unsubscribed"

# anymail RejectReason values that mean the address itself is bad.
HARD_REJECT_REASONS = ("bounced", "invalid")

# SubscriberEvent.kind written here (the admin history shows it).
EVENT_SUPPRESSED = "suppressed"

# Our own tracking endpoints record events under this "ESP" name.
OWN_ESP = "broadsheet"


@dataclass(frozen=True)
class TrackingEvent:
    """One event, normalised (from an AnymailTrackingEvent or our own endpoints).

    ``soft_bounce`` marks a ``bounced`` event the ESP flags as temporary (the parser knows; the
    workflow does not read ESP payloads). ``delivery_id`` is set when the sender already knows the
    delivery (our own signed links); otherwise the delivery is found by message id and recipient.
    """

    esp: str
    event_type: str
    message_id: str = ""
    recipient: str = ""
    timestamp: datetime | None = None
    event_id: str | None = None
    url: str = ""
    soft_bounce: bool = False
    reject_reason: str = ""
    description: str = ""
    metadata: dict = field(default_factory=dict)
    payload: dict = field(default_factory=dict)
    delivery_id: int | None = None


def event_key(event: TrackingEvent) -> str:
    """The value stored in the unique ``DeliveryEvent.event_id``: the ESP's id, else a stable hash.

    The hash covers esp, type, message id, timestamp and recipient (and the URL for clicks), so the
    same event posted twice gets the same key while two real opens at different times do not.
    """
    esp = event.esp.lower()
    if event.event_id:
        return f"{esp}:{event.event_id}"[:255]
    parts = [
        esp,
        event.event_type,
        event.message_id or "",
        event.timestamp.isoformat() if event.timestamp else "",
        (event.recipient or "").lower(),
        event.url if event.event_type == CLICKED else "",
    ]
    return f"{esp}:sha256:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _message_id_variants(message_id: str) -> list[str]:
    # ESPs disagree about angle brackets (Mailgun's API answers "<id>", its webhooks send "id").
    bare = message_id.strip().strip("<>")
    return list({message_id, bare, f"<{bare}>"}) if bare else []


def find_delivery(event: TrackingEvent) -> Delivery | None:
    """The delivery an event is about, or None.

    By ``delivery_id`` when given; else by ``esp_message_id`` (one id may cover a whole ESP batch,
    so the recipient decides); else by the ``delivery_id`` our batch transport puts in the
    message metadata, when the recipient matches it.
    """
    if event.delivery_id is not None:
        return Delivery.objects.filter(pk=event.delivery_id).first()
    recipient = (event.recipient or "").strip()
    variants = _message_id_variants(event.message_id or "")
    if variants:
        candidates = Delivery.objects.filter(esp_message_id__in=variants)
        if recipient:
            candidates = candidates.filter(email__iexact=recipient)
        found = list(candidates.order_by("-pk")[:2])
        if len(found) == 1 or (found and recipient):
            return found[0]
    delivery_id = str((event.metadata or {}).get("delivery_id", ""))
    if delivery_id.isdigit() and recipient:
        return Delivery.objects.filter(pk=int(delivery_id), email__iexact=recipient).first()
    return None


def record_tracking_event(event: TrackingEvent) -> str:
    """Store one tracking event and apply it to its delivery, campaign and subscriber.

    Returns ``RECORDED``, ``DUPLICATE``, ``UNMATCHED`` or ``IGNORED``. Safe to call any number of
    times with the same event, concurrently, and in any order relative to the other events of a
    delivery. Raises only on database errors (the ESP then retries).
    """
    key = event_key(event)
    if DeliveryEvent.objects.filter(event_id=key).exists():
        return DUPLICATE
    now = timezone.now()
    timestamp = event.timestamp
    if timestamp is not None and timezone.is_naive(timestamp):
        timestamp = timezone.make_aware(timestamp, datetime_utc)  # an ESP that omits the offset means UTC
    at = timestamp or now
    found = find_delivery(event)
    with transaction.atomic():
        delivery = None
        if found is not None:
            # Events for one delivery are applied one at a time (PostgreSQL; SQLite locks the file).
            delivery = Delivery.objects.select_for_update().get(pk=found.pk)
        try:
            with transaction.atomic():
                DeliveryEvent.objects.create(
                    delivery=delivery,
                    campaign_id=delivery.campaign_id if delivery else None,
                    esp=event.esp.lower()[:40],
                    event_type=event.event_type[:40],
                    event_id=key,
                    message_id=(event.message_id or "")[:255],
                    recipient=(event.recipient or "")[:254],
                    timestamp=timestamp,
                    url=(event.url or "")[:2000],
                    payload=event.payload or {},
                    created_at=now,
                )
        except IntegrityError:
            # The same event arrived concurrently and the other request stored it first.
            return DUPLICATE
        if delivery is None:
            logger.info("Tracking event %s for unknown message %r (%s)", event.event_type, event.message_id, event.esp)
            return UNMATCHED
        return _apply(delivery, event, at)


def _apply(delivery: Delivery, event: TrackingEvent, at: datetime) -> str:
    changes, counters = {}, []
    kind = event.event_type
    if kind == REJECTED and event.reject_reason not in HARD_REJECT_REASONS:
        return IGNORED
    hard_bounce = (kind == BOUNCED and not event.soft_bounce) or kind == REJECTED
    soft_bounce = kind == DEFERRED or (kind == BOUNCED and event.soft_bounce)
    if not (hard_bounce or soft_bounce or kind in (DELIVERED, OPENED, CLICKED, COMPLAINED, UNSUBSCRIBED)):
        return IGNORED  # queued, sent, failed, autoresponded, subscribed, unknown: kept, nothing to change

    if kind in (DELIVERED, OPENED, CLICKED):
        _first(delivery, "delivered_at", at, changes, counters, "delivered")
        _reset_soft_bounce_streak(delivery)
    if kind == OPENED or (kind == CLICKED and delivery.first_opened_at is None):
        _first(delivery, "first_opened_at", at, changes, counters, "unique_opens")
        changes["open_count"] = F("open_count") + 1
    if kind == CLICKED:
        _first(delivery, "first_clicked_at", at, changes, counters, "unique_clicks")
        changes["click_count"] = F("click_count") + 1
    if hard_bounce:
        was_hard = delivery.bounce_type == "hard"
        _earliest(delivery, "bounced_at", at, changes)
        if not was_hard:
            changes["bounce_type"] = "hard"
            counters.append("bounced")
        _suppress(delivery, "bounced", _bounce_reason(event), event)
    if soft_bounce:
        first_soft = delivery.bounce_type == "" and delivery.delivered_at is None
        _earliest(delivery, "bounced_at", at, changes)
        if delivery.bounce_type == "":
            changes["bounce_type"] = "soft"
        if first_soft:
            _count_soft_bounce(delivery, event)
    if kind == COMPLAINED:
        _first(delivery, "complained_at", at, changes, counters, "complained")
        _suppress(delivery, "complained", f"Spam complaint reported by {event.esp}", event)
        _unsubscribe(delivery, list_ids=(), method="complaint")
    if kind == UNSUBSCRIBED:
        _first(delivery, "unsubscribed_at", at, changes, counters, "unsubscribed")
        list_ids = list(delivery.campaign.lists.values_list("pk", flat=True))
        # No lists left on the campaign (deleted since): leave nothing rather than everything.
        if list_ids:
            _unsubscribe(delivery, list_ids=list_ids, method="esp")

    if changes:
        Delivery.objects.filter(pk=delivery.pk).update(**changes)
    if counters:
        Campaign.objects.filter(pk=delivery.campaign_id).update(**{name: F(name) + 1 for name in counters})
    return RECORDED


def record_campaign_unsubscribe(campaign_id: int, subscriber_id: int, *, at=None) -> bool:
    """Count an unsubscribe made through a campaign's own link (unsubscribe page or one-click).

    Sets the delivery's ``unsubscribed_at`` and the campaign's counter the first time only;
    returns True when it counted. Runs inside the unsubscribe transaction.
    """
    updated = Delivery.objects.filter(
        campaign_id=campaign_id, subscriber_id=subscriber_id, unsubscribed_at__isnull=True
    ).update(unsubscribed_at=at or timezone.now())
    if updated:
        Campaign.objects.filter(pk=campaign_id).update(unsubscribed=F("unsubscribed") + 1)
    return bool(updated)


def _first(delivery, field_name, at, changes, counters, counter):
    """Set a first-time timestamp (counting the campaign counter once) or move it earlier."""
    if getattr(delivery, field_name) is None:
        changes[field_name] = at
        counters.append(counter)
        setattr(delivery, field_name, at)
    else:
        _earliest(delivery, field_name, at, changes)


def _earliest(delivery, field_name, at, changes):
    current = getattr(delivery, field_name)
    if current is None or at < current:
        changes[field_name] = at
        setattr(delivery, field_name, at)


def _bounce_reason(event: TrackingEvent) -> str:
    detail = event.description or event.reject_reason or event.event_type
    return f"Hard bounce reported by {event.esp}: {detail}"


def _subscriber(delivery):
    from subscribers.models import Subscriber

    if delivery.subscriber_id is None:
        return None  # erased since the send
    return Subscriber.objects.select_for_update().filter(pk=delivery.subscriber_id).first()


def _suppress(delivery, state: str, reason: str, event: TrackingEvent):
    """Suppress an active subscriber and record why; an already suppressed one keeps its first reason."""
    from subscribers.models import Subscriber, SubscriberEvent

    subscriber = _subscriber(delivery)
    if subscriber is None or subscriber.state != Subscriber.State.ACTIVE:
        return
    if subscriber.suppress(state, reason):
        SubscriberEvent.objects.create(
            subscriber=subscriber,
            kind=EVENT_SUPPRESSED,
            detail={
                "state": state,
                "reason": reason[:255],
                "esp": event.esp,
                "event_type": event.event_type,
                "campaign_id": delivery.campaign_id,
                "delivery_id": delivery.pk,
            },
        )


def _count_soft_bounce(delivery, event: TrackingEvent):
    from subscribers.models import Subscriber

    subscriber = _subscriber(delivery)
    if subscriber is None:
        return
    Subscriber.objects.filter(pk=subscriber.pk).update(soft_bounce_streak=F("soft_bounce_streak") + 1)
    subscriber.refresh_from_db(fields=["soft_bounce_streak"])
    limit = int(settings.BROADSHEET["SOFT_BOUNCE_LIMIT"])
    if subscriber.soft_bounce_streak >= limit:
        reason = f"Soft-bounced on {subscriber.soft_bounce_streak} consecutive campaigns (last reported by {event.esp})"
        _suppress(delivery, "bounced", reason, event)


def _reset_soft_bounce_streak(delivery):
    from subscribers.models import Subscriber

    if delivery.subscriber_id is not None:
        Subscriber.objects.filter(pk=delivery.subscriber_id, soft_bounce_streak__gt=0).update(soft_bounce_streak=0)


def _unsubscribe(delivery, *, list_ids, method: str):
    from subscribers.services import unsubscribe

    unsubscribe(delivery.subscriber_uid, list_ids, method=method)


def own_event_id() -> str:
    """A fresh id for an event from our own endpoints: every request is a real, separate event."""
    return uuid.uuid4().hex
