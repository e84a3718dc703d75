"""Delivery feedback applied to a subscriber: bounces, spam complaints and unsubscribes reported by
an ESP's webhook or found in the bounce mailbox.

One entry point, ``apply_feedback()``, for every source (``campaigns.tracking`` for ESP webhooks,
the bounce-mailbox reader for plain SMTP). This module owns the subscriber side of feedback: the
suppression state, the soft-bounce streak and the ``SubscriberEvent`` that says why. Callers own
their own records (a delivery's timestamps, a campaign's counters) and never write these.

Rules:

- Hard bounce: the address is suppressed as BOUNCED (the subscriptions stay: a bounce is not a
  withdrawal of consent). With or without a campaign delivery: a bounced confirmation email
  proves the address dead as much as a bounced newsletter does.
- Soft bounce: counts one towards ``soft_bounce_streak`` when it is about a campaign delivery
  (``delivery`` given; the caller calls once per delivery); at ``BROADSHEET["SOFT_BOUNCE_LIMIT"]``
  consecutive campaigns the address is suppressed as BOUNCED. Without a delivery it changes
  nothing (a transactional email's temporary failure says nothing about the next campaign).
- Complaint: suppressed as COMPLAINED and unsubscribed from every list (method "complaint").
- Unsubscribe (the ESP's own unsubscribe link or list): leaves ``list_ids`` (every list when
  empty) with method "esp".
- ``delivered()``: a message got through, the streak starts again from 0.

An already suppressed address keeps its first reason. Everything here is idempotent in effect
except the soft-bounce count, which is why the caller decides when a delivery first soft-bounced.
"""

from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F

from subscribers.models import Subscriber, SubscriberEvent, Subscription
from subscribers.services import unsubscribe

# SubscriberEvent.kind written here (the admin history shows it).
EVENT_SUPPRESSED = SubscriberEvent.Kind.SUPPRESSED


class Feedback(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    SOFT_BOUNCE = "soft_bounce", "Soft bounce"
    COMPLAINT = "complaint", "Spam complaint"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed at the ESP"


def find_subscriber(who: Subscriber | str | int | None) -> Subscriber | None:
    """The subscriber for a Subscriber, a primary key or an address in any spelling; None if unknown."""
    if who is None or isinstance(who, Subscriber):
        return who
    if isinstance(who, int):
        return Subscriber.objects.filter(pk=who).first()
    try:
        return Subscriber.objects.for_email(who).first()
    except ValidationError:
        return None  # not an address: nobody we know


def apply_feedback(
    who: Subscriber | str | int | None,
    kind: str,
    *,
    reason: str = "",
    source: str = "",
    delivery=None,
    list_ids: Iterable[int] = (),
) -> Subscriber | None:
    """Apply one piece of delivery feedback to a subscriber.

    ``who``: the Subscriber, its primary key, or an address (any spelling; an unknown or malformed
    address is nobody). ``kind``: a ``Feedback`` value. ``reason``: the ESP's or the DSN's words,
    kept as the suppression reason. ``source``: who said so ("postmark", "bounce-mailbox").
    ``delivery``: the campaign delivery the feedback is about, if any (any object with ``pk`` and
    ``campaign_id``, e.g. ``campaigns.models.Delivery``). ``list_ids``: the lists an UNSUBSCRIBE
    leaves (all when empty).

    Returns the subscriber it applied to (re-read under a row lock), or None when nobody matched.
    Runs in its own transaction, or in the caller's.
    """
    kind = Feedback(kind)
    with transaction.atomic():
        subscriber = find_subscriber(who)
        if subscriber is None:
            return None
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber.pk).first()
        if subscriber is None:
            return None  # erased meanwhile
        context = _context(kind, source, delivery)
        if kind == Feedback.HARD_BOUNCE:
            _suppress(subscriber, Subscriber.State.BOUNCED, reason or f"Hard bounce reported by {source}", context)
        elif kind == Feedback.SOFT_BOUNCE:
            if delivery is not None:
                _count_soft_bounce(subscriber, source, context)
        elif kind == Feedback.COMPLAINT:
            _suppress(
                subscriber, Subscriber.State.COMPLAINED, reason or f"Spam complaint reported by {source}", context
            )
            unsubscribe(subscriber.uid, (), method=Subscription.UnsubscribeMethod.COMPLAINT)
        elif kind == Feedback.UNSUBSCRIBE:
            unsubscribe(subscriber.uid, list(list_ids), method=Subscription.UnsubscribeMethod.ESP)
    return subscriber


def delivered(who: Subscriber | int | None) -> None:
    """A message reached ``who`` (a Subscriber or its key): its soft-bounce streak starts again."""
    pk = who.pk if isinstance(who, Subscriber) else who
    if pk is not None:
        delivered_to([pk])


def delivered_to(subscriber_ids) -> None:
    """Messages reached these subscribers (keys; None ignored): one UPDATE for a webhook's batch."""
    ids = {pk for pk in subscriber_ids if pk is not None}
    if ids:
        Subscriber.objects.filter(pk__in=ids, soft_bounce_streak__gt=0).update(soft_bounce_streak=0)


def _context(kind: Feedback, source: str, delivery) -> dict:
    context = {"feedback": kind.value, "source": source}
    if delivery is not None:
        context.update(campaign_id=delivery.campaign_id, delivery_id=delivery.pk)
    return context


def _suppress(subscriber: Subscriber, state: str, reason: str, context: dict) -> None:
    """Suppress an active subscriber and record why; an already suppressed one keeps its first reason."""
    if subscriber.state != Subscriber.State.ACTIVE:
        return
    if subscriber.suppress(state, reason):
        SubscriberEvent.record(subscriber, EVENT_SUPPRESSED, state=state, reason=reason[:255], **context)


def _count_soft_bounce(subscriber: Subscriber, source: str, context: dict) -> None:
    Subscriber.objects.filter(pk=subscriber.pk).update(soft_bounce_streak=F("soft_bounce_streak") + 1)
    subscriber.refresh_from_db(fields=["soft_bounce_streak"])
    if subscriber.soft_bounce_streak >= int(settings.BROADSHEET["SOFT_BOUNCE_LIMIT"]):
        streak = subscriber.soft_bounce_streak
        reason = f"Soft-bounced on {streak} consecutive campaigns (last reported by {source})"
        _suppress(subscriber, Subscriber.State.BOUNCED, reason, context)
