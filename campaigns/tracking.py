"""Delivery feedback: ESP webhook events and our own click/open tracking update deliveries and campaigns.

One workflow, ``record_tracking_event()``, used by the anymail signal receiver
(``campaigns.signal_handlers``) and by the click/open endpoints (``campaigns.click_tracking``).

Rules, decided here once:

- Idempotent. Every event is stored as a ``DeliveryEvent`` whose unique ``event_id`` is the ESP's
  id (prefixed with the ESP name) or, for ESPs and event types without one (Postmark deliveries,
  opens and clicks), a hash of esp + type + message id + timestamp + recipient (+ clicked URL). A
  second copy of the same event changes nothing and reports ``DUPLICATE``.
- Only authenticated events get here (``campaigns.webhooks``). A delivery is found only when the
  event's message id AND recipient both match it (one message id may cover an ESP batch).
- Unknown message ids are stored with no delivery and report ``UNMATCHED``; never an error (an
  exception would make anymail answer 400 and the ESP retry forever). They are kept small (an
  excerpt of the payload), at most ``BROADSHEET["UNMATCHED_EVENTS_MAX"]`` of them and for
  ``UNMATCHED_EVENTS_DAYS`` days, and erased with the address (campaigns.gdpr). A hard bounce or
  complaint that matches no delivery still applies to the subscriber with that address:
  transactional emails (confirmations) have no delivery and bounce too.
- Counters only go up. A delivery counts once per state (delivered, opened, clicked, bounced,
  complained, unsubscribed) in the campaign's counters, the first time it reaches that state;
  the campaign counters change only with ``F()``. ``first_*`` timestamps keep the earliest time
  seen, whatever order events arrive in.
- Out of order: an open or a click proves the message was delivered, so it also marks the
  delivery delivered (counted once; a later "delivered" event only moves ``delivered_at`` earlier).
  A click also proves an open (images may be blocked): it counts as the first open when none was
  seen, so unique opens are never fewer than unique clicks.
- Machines apart (``campaigns.bots``): every open and click is classified once, here, as it is
  recorded (``DeliveryEvent.machine_reason``). A machine's open or click proves delivery but is
  counted in ``machine_opens`` / ``machine_clicks`` (the delivery's events; the campaign's
  deliveries, once each), never in the human ``first_*`` timestamps, counts and
  ``unique_opens`` / ``unique_clicks``. So a person's open after a machine's is still that
  delivery's first (human) open. The one time a counter goes down: a click that completes a
  burst on every link (``bots.EVERY_LINK``) moves the burst's earlier clicks, counted as a
  person's when they came, to the machine figures (``_recount_engagement``).
- What a bounce, complaint or ESP unsubscribe does to the subscriber is decided by
  ``subscribers.suppression.apply_feedback()``; this module decides only when to ask.
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
import json
import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC as datetime_utc
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from campaigns import bots
from campaigns.models import Campaign, Delivery, DeliveryEvent
from mail.esps import ESPS
from subscribers import suppression
from subscribers.suppression import Feedback, apply_feedback

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

# What is kept of an ESP's raw event (see stored_payload()).
PAYLOAD_MAX_CHARS = 8000
EXCERPT_CHARS = 1000

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
    # What campaigns.bots judges an open or click by: the client's user agent and address, the
    # HTTP method (our own endpoints) and the ESP's own machine flag (bots.esp_flag).
    user_agent: str = ""
    client_ip: str = ""
    method: str = ""
    machine_flag: bool = False


def _payload(esp_event) -> dict:
    """The raw ESP event as JSON-storable data (Mailgun's legacy webhooks give a QueryDict)."""
    if hasattr(esp_event, "lists"):
        esp_event = {key: values[0] if len(values) == 1 else values for key, values in esp_event.lists()}
    if not isinstance(esp_event, dict):
        esp_event = {"raw": str(esp_event)}
    try:
        json.dumps(esp_event)
    except (TypeError, ValueError):
        return {"raw": str(esp_event)}
    return esp_event


def _is_soft_bounce(esp: str, event) -> bool:
    """A "bounced" event whose ESP type is temporary (``mail.esps``: ``soft_bounce_types``)."""
    declaration = ESPS.get(esp)
    return event.event_type == "bounced" and declaration is not None and declaration.is_soft_bounce(event.esp_event)


def _text(value, limit: int) -> str:
    """A string field of an ESP event, made safe to store: str, no NUL (PostgreSQL refuses it), capped."""
    return ("" if value is None else str(value)).replace("\x00", "")[:limit]


def tracking_event(event, esp_name: str) -> TrackingEvent:
    """An anymail ``AnymailTrackingEvent`` as the workflow's TrackingEvent: every field a string
    safe to store (no NUL, capped), the ESP's name as in ``mail.esps`` ("Amazon SES" is amazon_ses)."""
    esp = _text(esp_name or "unknown", 40).lower().replace(" ", "_")
    timestamp = event.timestamp if isinstance(event.timestamp, datetime) else None
    return TrackingEvent(
        esp=esp,
        event_type=_text(event.event_type or "unknown", 40),
        message_id=_text(event.message_id, 255),
        recipient=_text(event.recipient, 254),
        timestamp=timestamp,
        event_id=_text(event.event_id, 200) or None,
        url=_text(event.click_url, 2000),
        soft_bounce=_is_soft_bounce(esp, event),
        reject_reason=_text(event.reject_reason, 40),
        description=_text(event.description or event.mta_response, 1000),
        metadata=event.metadata if isinstance(event.metadata, dict) else {},
        payload=_payload(event.esp_event),
        user_agent=_text(event.user_agent, 500),
        machine_flag=bots.esp_flag(esp, event.esp_event),
    )


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

    By ``delivery_id`` when given (our own signed links). Otherwise only a delivery whose message id
    AND recipient address both match the event's: one id may cover a whole ESP batch, and an id
    alone must never be enough to act on someone's subscription. The ``delivery_id`` our batch
    transport puts in the message metadata is used only for a delivery whose message id we never
    learnt (the ESP gave none back), and again only with the matching recipient.
    """
    if event.delivery_id is not None:
        return Delivery.objects.filter(pk=event.delivery_id).first()
    recipient = (event.recipient or "").strip()
    if not recipient:
        return None
    variants = _message_id_variants(event.message_id or "")
    if variants:
        found = Delivery.objects.filter(esp_message_id__in=variants, email__iexact=recipient).order_by("-pk").first()
        if found is not None:
            return found
    delivery_id = str((event.metadata or {}).get("delivery_id", ""))
    if delivery_id.isdigit() and len(delivery_id) < 19:
        return Delivery.objects.filter(pk=int(delivery_id), email__iexact=recipient, esp_message_id="").first()
    return None


def record_tracking_event(event: TrackingEvent) -> str:
    """Store one tracking event and apply it to its delivery, campaign and subscriber.

    Returns ``RECORDED``, ``DUPLICATE``, ``UNMATCHED`` or ``IGNORED``. Safe to call any number of
    times with the same event, concurrently, and in any order relative to the other events of a
    delivery. Raises only on database errors (the ESP then retries). The caller has authenticated
    the event (campaigns.webhooks for ESPs, a signed token for our own endpoints).
    """
    key = event_key(event)
    if DeliveryEvent.objects.filter(event_id=key).exists():
        return DUPLICATE
    now = timezone.now()
    timestamp = _aware(event.timestamp)
    at = timestamp or now
    found = find_delivery(event)
    with transaction.atomic():
        delivery = None
        machine_reason = burst = ""
        if found is not None:
            # Events for one delivery are applied one at a time (PostgreSQL; SQLite locks the file).
            delivery = Delivery.objects.select_for_update().get(pk=found.pk)
            machine_reason, burst = _classify(delivery, event, at)
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
                    machine_reason=machine_reason,
                    payload=stored_payload(event.payload, whole=delivery is not None),
                    created_at=now,
                )
        except IntegrityError:
            # The same event arrived concurrently and the other request stored it first.
            return DUPLICATE
        if delivery is None:
            return _apply_without_delivery(event)
        outcome = _apply(delivery, event, at, machine=bool(machine_reason))
        if burst:
            _reclassify_burst(delivery, event, at)
        return outcome


def _aware(timestamp: datetime | None) -> datetime | None:
    if timestamp is not None and timezone.is_naive(timestamp):
        return timezone.make_aware(timestamp, datetime_utc)  # an ESP that omits the offset means UTC
    return timestamp


# --- An ESP's batch: set-based ----------------------------------------------------------------

# Event types a batch records set-based: the bulk of an ESP's events. The rest (bounces,
# complaints, unsubscribes, unmatched events, a click that completes a burst on every link and
# what follows it for that delivery) go through record_tracking_event.
SET_BASED_TYPES = (DELIVERED, OPENED, CLICKED)
# Delivery fields a set-based batch can change.
_BATCH_FIELDS = (
    "delivered_at",
    "first_opened_at",
    "open_count",
    "machine_opens",
    "first_clicked_at",
    "click_count",
    "machine_clicks",
)
_LOOKUP_CHUNK = 500


def record_tracking_events(events: list[TrackingEvent]) -> list[str]:
    """Store and apply many events (one webhook POST of an ESP): ``record_tracking_event``'s
    outcome for each, in order, with the same rules and the same end state.

    Delivered events, opens and clicks that match a delivery are recorded set-based: one look-up of the
    event ids already stored, one of the deliveries by message id and recipient, then in ONE
    transaction the matched deliveries locked (in id order), the event ids looked up again under
    the locks (a concurrent copy of an event locks the same delivery, so it is either stored by
    now or waits for us), the new events inserted together, each changed delivery written once
    and each campaign's counters moved once. Every other event takes the one-event path.
    """
    outcomes: list[str | None] = [None] * len(events)
    keys = [event_key(event) for event in events]
    first_index: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in first_index:
            outcomes[index] = DUPLICATE  # the same event twice in one batch
        else:
            first_index[key] = index
    for key in _stored_keys(first_index):
        outcomes[first_index[key]] = DUPLICATE
    candidates = [
        index
        for index in first_index.values()
        if outcomes[index] is None and events[index].event_type in SET_BASED_TYPES and events[index].delivery_id is None
    ]
    matched = dict(zip(candidates, find_deliveries([events[index] for index in candidates]), strict=True))
    matched = {index: pk for index, pk in matched.items() if pk is not None}
    if matched:
        try:
            outcomes_of_matched = _record_matched(events, keys, matched)
        except IntegrityError:
            # A copy of one of them was stored meanwhile by a path that does not lock (none does
            # today): nothing of this transaction stays; each event goes the one-event way.
            outcomes_of_matched = {}
        for index, outcome in outcomes_of_matched.items():
            outcomes[index] = outcome
    for index, event in enumerate(events):
        if outcomes[index] is None:
            outcomes[index] = record_tracking_event(event)
    return outcomes


def _stored_keys(keys) -> set[str]:
    keys, stored = list(keys), set()
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[start : start + _LOOKUP_CHUNK]
        stored.update(DeliveryEvent.objects.filter(event_id__in=chunk).values_list("event_id", flat=True))
    return stored


def find_deliveries(events: list[TrackingEvent]) -> list[int | None]:
    """``find_delivery`` by message id and recipient for many events at once (one query per 500
    message ids): the id of each event's delivery, or None (then the one-event path looks again,
    with the metadata fallback). The recipient is compared case-insensitively, as ``iexact``."""
    variants = [_message_id_variants(event.message_id or "") for event in events]
    wanted = sorted({variant for group in variants for variant in group})
    newest: dict[tuple[str, str], int] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        rows = Delivery.objects.filter(esp_message_id__in=wanted[start : start + _LOOKUP_CHUNK])
        for pk, message_id, email in rows.values_list("pk", "esp_message_id", "email"):
            key = (message_id, email.upper())
            newest[key] = max(pk, newest.get(key, 0))
    found = []
    for event, group in zip(events, variants, strict=True):
        recipient = (event.recipient or "").strip().upper()
        pk = max((newest.get((variant, recipient), 0) for variant in group), default=0) if recipient else 0
        found.append(pk or None)
    return found


def _record_matched(events: list[TrackingEvent], keys: list[str], matched: dict[int, int]) -> dict[int, str]:
    """Record the delivered, opened and clicked events ``matched`` ({event index: delivery id}) in
    one transaction; their outcomes (none for those left to the one-event path)."""
    now = timezone.now()
    outcomes: dict[int, str] = {}
    with transaction.atomic():
        deliveries = {
            delivery.pk: delivery
            for delivery in Delivery.objects.select_for_update()
            .filter(pk__in=sorted(set(matched.values())))
            .order_by("pk")
            .only("pk", "campaign_id", "subscriber_id", "sending_at", "sent_at", *_BATCH_FIELDS)
        }
        stored = _stored_keys(keys[index] for index in matched)
        clicks = _stored_clicks([pk for index, pk in matched.items() if events[index].event_type == CLICKED])
        new_events, changed, counters, subscribers, deferred = [], {}, {}, set(), set()
        for index, pk in matched.items():
            event, delivery = events[index], deliveries.get(pk)
            if delivery is None or keys[index] in stored or pk in deferred:
                continue  # deleted or stored meanwhile, or after a burst: the one-event path decides
            at = _aware(event.timestamp) or now
            machine_reason = bots.machine_reason(_hit(delivery, event, at)) if event.event_type != DELIVERED else ""
            if event.event_type == CLICKED:
                if not machine_reason and event.url and _completes_burst(clicks[pk], event.url, at):
                    # Earlier clicks get reclassified (_reclassify_burst): one event at a time,
                    # after this batch, as is everything after it for this delivery.
                    deferred.add(pk)
                    continue
                clicks[pk].append((_aware(event.timestamp), event.url))
            new_events.append(
                DeliveryEvent(
                    delivery=delivery,
                    campaign_id=delivery.campaign_id,
                    esp=event.esp.lower()[:40],
                    event_type=event.event_type[:40],
                    event_id=keys[index],
                    message_id=(event.message_id or "")[:255],
                    recipient=(event.recipient or "")[:254],
                    timestamp=_aware(event.timestamp),
                    url=(event.url or "")[:2000],
                    machine_reason=machine_reason,
                    payload=stored_payload(event.payload, whole=True),
                    created_at=now,
                )
            )
            campaign_counters = counters.setdefault(delivery.campaign_id, Counter())
            _apply_in_memory(delivery, event.event_type, at, bool(machine_reason), campaign_counters)
            changed[pk] = delivery
            subscribers.add(delivery.subscriber_id)
            outcomes[index] = RECORDED
        DeliveryEvent.objects.bulk_create(new_events, batch_size=_LOOKUP_CHUNK)
        Delivery.objects.write_fields(list(changed.values()), _BATCH_FIELDS)
        suppression.delivered_to(subscribers)
        for campaign_id, counts in counters.items():
            if +counts:
                Campaign.objects.filter(pk=campaign_id).update(**{name: F(name) + n for name, n in counts.items() if n})
    return outcomes


def _stored_clicks(delivery_ids: list[int]) -> dict[int, list]:
    """{delivery id: [(timestamp, url), ...]} of the clicks already stored for these deliveries."""
    clicks = defaultdict(list)
    ids = sorted(set(delivery_ids))
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        rows = DeliveryEvent.objects.filter(delivery_id__in=ids[start : start + _LOOKUP_CHUNK], event_type=CLICKED)
        for delivery_id, timestamp, url in rows.values_list("delivery_id", "timestamp", "url"):
            clicks[delivery_id].append((timestamp, url))
    return clicks


def _completes_burst(clicks: list, url: str, at: datetime) -> bool:
    """``_classify``'s burst test against the delivery's clicks in hand (stored and this batch's)."""
    start, end = bots.burst_window(at)
    links = {link for timestamp, link in clicks if timestamp is not None and start <= timestamp <= end}
    return bots.is_burst(len(links | {url}))


def _apply_in_memory(delivery: Delivery, kind: str, at: datetime, machine: bool, counters: Counter) -> None:
    """``_apply`` for a delivered event, an open or a click, on the locked, loaded delivery: its
    fields change in memory (written once per batch), each first time counted into ``counters``."""
    found: list[str] = []
    _first(delivery, "delivered_at", at, {}, found, "delivered")
    if kind in (OPENED, CLICKED) and machine:
        field_name = "machine_opens" if kind == OPENED else "machine_clicks"
        if not getattr(delivery, field_name):
            found.append(field_name)
        setattr(delivery, field_name, getattr(delivery, field_name) + 1)
    elif kind == OPENED or (kind == CLICKED and delivery.first_opened_at is None):
        _first(delivery, "first_opened_at", at, {}, found, "unique_opens")
        delivery.open_count += 1
    if kind == CLICKED and not machine:
        _first(delivery, "first_clicked_at", at, {}, found, "unique_clicks")
        delivery.click_count += 1
    counters.update(found)


def _classify(delivery: Delivery, event: TrackingEvent, at: datetime) -> tuple[str, bool]:
    """(the machine reason of an open or click, "" for a person; whether it completes a burst of
    clicks on every link, whose earlier clicks must then be reclassified). campaigns.bots decides."""
    if event.event_type not in (OPENED, CLICKED):
        return "", False
    reason = bots.machine_reason(_hit(delivery, event, at))
    if reason or event.event_type != CLICKED or not event.url:
        return reason, False
    start, end = bots.burst_window(at)
    links = set(
        DeliveryEvent.objects.filter(
            delivery=delivery, event_type=CLICKED, timestamp__gte=start, timestamp__lte=end
        ).values_list("url", flat=True)
    )
    if bots.is_burst(len(links | {event.url})):
        return bots.EVERY_LINK, True
    return "", False


def _hit(delivery: Delivery, event: TrackingEvent, at: datetime) -> bots.Hit:
    return bots.Hit(
        event_type=event.event_type,
        at=at,
        handed_over_at=delivery.sending_at or delivery.sent_at,
        user_agent=event.user_agent,
        ip=event.client_ip,
        method=event.method,
        esp_flag=event.machine_flag,
    )


def _reclassify_burst(delivery: Delivery, event: TrackingEvent, at: datetime) -> None:
    """The clicks of a burst on every link that came before it were counted as a person's: mark
    them machine and count the delivery again."""
    start, end = bots.burst_window(at)
    moved = (
        DeliveryEvent.objects.filter(delivery=delivery, event_type=CLICKED, timestamp__gte=start, timestamp__lte=end)
        .human()
        .update(machine_reason=bots.EVERY_LINK)
    )
    if moved:
        _recount_engagement(delivery.pk)


def _recount_engagement(delivery_id: int) -> None:
    """Set a delivery's human and machine open/click fields from its stored events and move the
    campaign's counters by the difference (the delivery row is locked by the caller)."""
    before = Delivery.objects.get(pk=delivery_id)
    events = DeliveryEvent.objects.filter(delivery_id=delivery_id, event_type__in=[OPENED, CLICKED])
    human = {OPENED: [], CLICKED: []}
    machine = {OPENED: 0, CLICKED: 0}
    for kind, timestamp, created_at, reason in events.values_list(
        "event_type", "timestamp", "created_at", "machine_reason"
    ):
        if reason:
            machine[kind] += 1
        else:
            human[kind].append(timestamp or created_at)
    opens, clicks = human[OPENED], human[CLICKED]
    # A click counts as an open when no open was seen before it (images blocked), as in _apply.
    clicked_first = bool(clicks) and (not opens or min(clicks) < min(opens))
    after = {
        "first_opened_at": min(opens + clicks) if opens or clicks else None,
        "open_count": len(opens) + clicked_first,
        "first_clicked_at": min(clicks) if clicks else None,
        "click_count": len(clicks),
        "machine_opens": machine[OPENED],
        "machine_clicks": machine[CLICKED],
    }
    Delivery.objects.filter(pk=delivery_id).update(**after)

    def moved(field_name: str, was) -> int:
        return bool(after[field_name]) - bool(was)

    deltas = {
        "unique_opens": moved("first_opened_at", before.first_opened_at),
        "unique_clicks": moved("first_clicked_at", before.first_clicked_at),
        "machine_opens": moved("machine_opens", before.machine_opens),
        "machine_clicks": moved("machine_clicks", before.machine_clicks),
    }
    changes = {name: F(name) + delta for name, delta in deltas.items() if delta}
    if changes:
        Campaign.objects.filter(pk=before.campaign_id).update(**changes)


def stored_payload(payload: dict | None, *, whole: bool) -> dict:
    """What is kept of an ESP's raw event: small ones whole when they matched a delivery, else an excerpt.

    An ESP event can carry a whole bounced message (MBs); an unmatched one is kept only as a
    capped excerpt, enough for an operator to see what arrived.
    """
    if not payload:
        return {}
    text = json.dumps(payload, default=str, ensure_ascii=False)
    if whole and len(text) <= PAYLOAD_MAX_CHARS:
        return payload
    return {"excerpt": text[:EXCERPT_CHARS], "truncated": len(text) > EXCERPT_CHARS}


def _apply_without_delivery(event: TrackingEvent) -> str:
    """An event that matched no delivery: a bounce or complaint still applies to a known address.

    Confirmation and other transactional emails have no campaign delivery, and their bounces say
    as much about the address as a newsletter's. Anything else is kept (as an excerpt) and pruned.
    """
    kind = _feedback_kind(event)
    if kind in (Feedback.HARD_BOUNCE, Feedback.COMPLAINT) and event.esp != OWN_ESP:
        reason = _bounce_reason(event) if kind == Feedback.HARD_BOUNCE else _complaint_reason(event)
        if apply_feedback(event.recipient, kind, reason=reason, source=event.esp) is not None:
            return RECORDED
    logger.info("Tracking event %s for unknown message %r (%s)", event.event_type, event.message_id, event.esp)
    transaction.on_commit(prune_unmatched_events)
    return UNMATCHED


def prune_unmatched_events() -> int:
    """Delete unmatched events older than ``UNMATCHED_EVENTS_DAYS`` and all but the newest
    ``UNMATCHED_EVENTS_MAX``; returns how many went. Runs after each unmatched event is stored."""
    unmatched = DeliveryEvent.objects.filter(delivery__isnull=True)
    days = int(settings.BROADSHEET["UNMATCHED_EVENTS_DAYS"])
    deleted, _ = unmatched.filter(created_at__lt=timezone.now() - timedelta(days=days)).delete()
    keep = int(settings.BROADSHEET["UNMATCHED_EVENTS_MAX"])
    oldest_kept = unmatched.order_by("-pk").values_list("pk", flat=True)[keep : keep + 1]
    if oldest_kept:
        deleted += unmatched.filter(pk__lte=oldest_kept[0]).delete()[0]
    return deleted


def _feedback_kind(event: TrackingEvent) -> Feedback | None:
    """The subscriber-level meaning of an event, or None when it has none."""
    kind = event.event_type
    if kind == REJECTED:
        return Feedback.HARD_BOUNCE if event.reject_reason in HARD_REJECT_REASONS else None
    if kind == BOUNCED:
        return Feedback.SOFT_BOUNCE if event.soft_bounce else Feedback.HARD_BOUNCE
    return {DEFERRED: Feedback.SOFT_BOUNCE, COMPLAINED: Feedback.COMPLAINT, UNSUBSCRIBED: Feedback.UNSUBSCRIBE}.get(
        kind
    )


def _apply(delivery: Delivery, event: TrackingEvent, at: datetime, *, machine: bool = False) -> str:
    changes, counters = {}, []
    kind = event.event_type
    feedback = _feedback_kind(event)
    if feedback is None and kind not in (DELIVERED, OPENED, CLICKED):
        return IGNORED  # queued, sent, failed, autoresponded, subscribed, soft rejects: kept, nothing to change
    source = event.esp

    if kind in (DELIVERED, OPENED, CLICKED):
        _first(delivery, "delivered_at", at, changes, counters, "delivered")
        suppression.delivered(delivery.subscriber_id)
    if machine:
        # Proves the message arrived (above), but no person opened or clicked (campaigns.bots).
        field_name = "machine_opens" if kind == OPENED else "machine_clicks"
        if not getattr(delivery, field_name):
            counters.append(field_name)
        changes[field_name] = F(field_name) + 1
    elif kind == OPENED or (kind == CLICKED and delivery.first_opened_at is None):
        _first(delivery, "first_opened_at", at, changes, counters, "unique_opens")
        changes["open_count"] = F("open_count") + 1
    if kind == CLICKED and not machine:
        _first(delivery, "first_clicked_at", at, changes, counters, "unique_clicks")
        changes["click_count"] = F("click_count") + 1
    if feedback == Feedback.HARD_BOUNCE:
        was_hard = delivery.bounce_type == "hard"
        _earliest(delivery, "bounced_at", at, changes)
        if not was_hard:
            changes["bounce_type"] = "hard"
            counters.append("bounced")
        apply_feedback(delivery.subscriber_id, feedback, reason=_bounce_reason(event), source=source, delivery=delivery)
    if feedback == Feedback.SOFT_BOUNCE:
        # Once per campaign, and not when the message got through after all (a retry succeeded).
        first_soft = delivery.bounce_type == "" and delivery.delivered_at is None
        _earliest(delivery, "bounced_at", at, changes)
        if delivery.bounce_type == "":
            changes["bounce_type"] = "soft"
        if first_soft:
            apply_feedback(delivery.subscriber_id, feedback, source=source, delivery=delivery)
    if feedback == Feedback.COMPLAINT:
        _first(delivery, "complained_at", at, changes, counters, "complained")
        apply_feedback(
            delivery.subscriber_id, feedback, reason=_complaint_reason(event), source=source, delivery=delivery
        )
    if feedback == Feedback.UNSUBSCRIBE:
        _first(delivery, "unsubscribed_at", at, changes, counters, "unsubscribed")
        list_ids = list(delivery.campaign.lists.values_list("pk", flat=True))
        # No lists left on the campaign (deleted since): leave nothing rather than everything.
        if list_ids:
            apply_feedback(delivery.subscriber_id, feedback, source=source, delivery=delivery, list_ids=list_ids)

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


def _complaint_reason(event: TrackingEvent) -> str:
    return f"Spam complaint reported by {event.esp}"


def own_event_id() -> str:
    """A fresh id for an event from our own endpoints: every request is a real, separate event."""
    return uuid.uuid4().hex
