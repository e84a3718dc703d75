"""Subscriber workflows: subscribe, confirm, unsubscribe, preferences.

Views and tasks call these functions; they own the transactions, the consent record, the
``SubscriberEvent`` history (one event per change, through ``SubscriberEvent.record``) and the
after-commit enqueueing. Nothing here deletes a subscription: leaving a list changes its status and
records when and how. The links in emails live in ``subscribers.links``, the emails themselves in
``subscribers.emails`` (sent by ``subscribers.tasks``).
"""

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from subscribers import signals, tasks
from subscribers.languages import supported_language
from subscribers.links import confirmation_window
from subscribers.models import MailingList, Subscriber, SubscriberEvent, Subscription, Suppression, normalise_email

logger = logging.getLogger(__name__)

Kind = SubscriberEvent.Kind
Via = SubscriberEvent.Via

# The first confirmation email and one reminder (STANDARDS.md: "at most one reminder").
CONFIRMATION_MAX_SENDS = 2
# A person who asks again for the same list within a day gets at most one "already subscribed" note.
ALREADY_SUBSCRIBED_NOTICE_SECONDS = 24 * 60 * 60

PREFERENCES_CONSENT_TEXT = "Chosen in the preference centre reached from a newsletter email."


def confirmation_resend_after() -> datetime.timedelta:
    return datetime.timedelta(minutes=int(settings.BROADSHEET["CONFIRM_RESEND_MINUTES"]))


def _on_commit_enqueue(task, *args):
    transaction.on_commit(lambda: task.enqueue(*args))


def became_subscribed(subscriber, subscriptions: list[Subscription], *, via: str, at, **detail) -> None:
    """The one place a subscription becomes active, called inside the transaction that saved
    ``subscriptions`` as SUBSCRIBED: one SUBSCRIBED event per list (``via`` a ``SubscriberEvent.Via``,
    ``detail`` stored with it), then ``subscribers.signals.subscribed`` (staff notices and welcome
    emails hang off it; receivers enqueue with ``transaction.on_commit``)."""
    if not subscriptions:
        return
    for subscription in subscriptions:
        SubscriberEvent.record(subscriber, Kind.SUBSCRIBED, mlist=subscription.list, at=at, via=via, **detail)
    signals.subscribed.send(
        sender=Subscriber, subscriber=subscriber, lists=[s.list for s in subscriptions], via=via, at=at
    )


# --- Subscribe --------------------------------------------------------------------------------


@dataclass
class SubscribeOutcome:
    """What ``subscribe()`` did. Views must not show any of it (no enumeration); tests and logs may."""

    subscriber_id: int | None = None
    refused: bool = False  # suppressed address: nothing changed, nothing sent
    confirmation_list_ids: list[int] = field(default_factory=list)  # a confirmation email was queued
    throttled_list_ids: list[int] = field(default_factory=list)  # pending, but no email this time
    subscribed_list_ids: list[int] = field(default_factory=list)  # single opt-in: subscribed now
    already_list_ids: list[int] = field(default_factory=list)  # were subscribed before
    notice_sent: bool = False  # an "already subscribed" note was queued


def subscribe(
    *,
    email: str,
    lists: Iterable[MailingList],
    consent_text: str,
    consent_detail: str = "",
    source: str = Subscription.Source.FORM,
    name: str = "",
    ip: str | None = None,
    user_agent: str = "",
    language: str = "",
) -> SubscribeOutcome:
    """Ask for ``email`` to join ``lists``, recording consent (text, its hash, IP, user agent, source, UTC time).

    Double opt-in lists become pending and one confirmation email covering them is queued after
    commit (throttled: a first email and at most one reminder per token lifetime); single opt-in
    lists are subscribed at once. Suppressed addresses (subscriber state or ``Suppression``) are
    never (re-)activated. An existing subscriber's name is not changed: the form is anonymous.
    Raises ``ValidationError`` for a malformed address. Returns a ``SubscribeOutcome``.
    """
    normalised = normalise_email(email)
    lists = list(lists)
    if Suppression.covers(normalised):
        return SubscribeOutcome(refused=True)
    now = timezone.now()
    outcome = SubscribeOutcome()
    with transaction.atomic():
        subscriber, created = Subscriber.objects.get_or_create(
            email_normalised=normalised,
            defaults={
                "email": email.strip(),
                "name": name.strip()[:200],
                "language": supported_language(language),
            },
        )
        # Serialise concurrent requests for one address (PostgreSQL; SQLite locks the whole file).
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        outcome.subscriber_id = subscriber.pk
        list_ids = [mlist.pk for mlist in lists]
        if created:
            SubscriberEvent.record(subscriber, Kind.CREATED, at=now, source=source)
        if subscriber.is_suppressed:
            SubscriberEvent.record(subscriber, Kind.SUBSCRIBE_REFUSED, at=now, reason=subscriber.state, lists=list_ids)
            outcome.refused = True
            return outcome

        to_confirm, subscribed_now, subscribed_consent = [], [], {}
        for mlist in lists:
            subscription, _created = Subscription.objects.select_for_update().get_or_create(
                subscriber=subscriber, list=mlist, defaults={"status": Subscription.Status.PENDING, "created_at": now}
            )
            if subscription.status == Subscription.Status.SUBSCRIBED:
                outcome.already_list_ids.append(mlist.pk)
                continue
            # A new request is a new consent: the record describes the request being confirmed.
            subscription.record_consent(
                source=source, detail=consent_detail, text=consent_text, ip=ip, user_agent=user_agent, at=now
            )
            consent = {"source": source, "detail": subscription.consent_detail, "ip": ip}
            consent["consent_text_hash"] = subscription.consent_text_hash
            if subscription.status == Subscription.Status.UNSUBSCRIBED:
                subscription.unsubscribed_at = None
                subscription.unsubscribe_method = ""
                subscription.confirmed_at = None
                subscription.confirm_ip = None
                subscription.confirm_user_agent = ""
            if mlist.double_opt_in:
                subscription.status = Subscription.Status.PENDING
                subscription.save()
                SubscriberEvent.record(subscriber, Kind.SUBSCRIBE_REQUESTED, mlist=mlist, at=now, **consent)
                to_confirm.append(subscription)
            else:
                subscription.status = Subscription.Status.SUBSCRIBED
                subscription.save()
                subscribed_now.append(subscription)
                subscribed_consent = consent
                outcome.subscribed_list_ids.append(mlist.pk)
        became_subscribed(subscriber, subscribed_now, via=Via.FORM, at=now, **subscribed_consent)

        window, resend_after = confirmation_window(), confirmation_resend_after()
        for subscription in to_confirm:
            if subscription.confirmation_due(
                now, resend_after=resend_after, max_sends=CONFIRMATION_MAX_SENDS, window=window
            ):
                subscription.mark_confirmation_sent(now, window=window)
                outcome.confirmation_list_ids.append(subscription.list_id)
            else:
                outcome.throttled_list_ids.append(subscription.list_id)
        if outcome.confirmation_list_ids:
            _on_commit_enqueue(tasks.send_confirmation, subscriber.pk, outcome.confirmation_list_ids)
        # Everything asked for is already theirs. A short note to the mailbox (never shown on the
        # page) helps someone who forgot; the cache key keeps it to one a day per address.
        only_already = outcome.already_list_ids and not (to_confirm or outcome.subscribed_list_ids)
        if only_already and cache.add(
            f"subscribers:already-notice:{subscriber.pk}", 1, ALREADY_SUBSCRIBED_NOTICE_SECONDS
        ):
            _on_commit_enqueue(tasks.send_already_subscribed, subscriber.pk, outcome.already_list_ids)
            outcome.notice_sent = True
    return outcome


def resend_confirmation(subscription: Subscription) -> bool:
    """Queue the confirmation email again for one pending subscription, if the throttle allows.

    Returns True when an email was queued; False when it is not pending, the subscriber is
    suppressed, or the first email and its one reminder already went out within the token lifetime.
    """
    now = timezone.now()
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().select_related("subscriber").get(pk=subscription.pk)
        if subscription.status != Subscription.Status.PENDING or subscription.subscriber.is_suppressed:
            return False
        window = confirmation_window()
        if not subscription.confirmation_due(
            now, resend_after=confirmation_resend_after(), max_sends=CONFIRMATION_MAX_SENDS, window=window
        ):
            return False
        subscription.mark_confirmation_sent(now, window=window)
        _on_commit_enqueue(tasks.send_confirmation, subscription.subscriber_id, [subscription.list_id])
    return True


# --- Confirm ----------------------------------------------------------------------------------

CONFIRM_PENDING = "pending"  # something to confirm
CONFIRM_DONE = "confirmed"  # nothing pending, at least one of the lists is subscribed
CONFIRM_GONE = "gone"  # nothing to confirm: unsubscribed since, suppressed, or erased


def confirmation_status(subscriber_uid, list_ids: Iterable[int]) -> str:
    """Read-only: ``CONFIRM_PENDING``, ``CONFIRM_DONE`` or ``CONFIRM_GONE`` for a confirmation link."""
    subscriber = Subscriber.objects.filter(uid=subscriber_uid).first()
    if subscriber is None or subscriber.is_suppressed:
        return CONFIRM_GONE
    statuses = set(subscriber.subscriptions.filter(list_id__in=list(list_ids)).values_list("status", flat=True))
    if Subscription.Status.PENDING in statuses:
        return CONFIRM_PENDING
    if Subscription.Status.SUBSCRIBED in statuses:
        return CONFIRM_DONE
    return CONFIRM_GONE


def confirm_subscription(subscriber_uid, list_ids: Iterable[int], *, ip: str | None, user_agent: str) -> str:
    """Confirm the pending subscriptions to ``list_ids`` (a POST from the confirmation page).

    Records confirmation time, IP and user agent and notifies staff after commit. Only pending
    subscriptions change: one that was unsubscribed since stays unsubscribed, a suppressed
    subscriber stays suppressed. Returns ``CONFIRM_PENDING`` when it confirmed something (the
    state the link was in), else what ``confirmation_status`` would say.
    """
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(uid=subscriber_uid).first()
        if subscriber is None or subscriber.is_suppressed:
            return CONFIRM_GONE
        subscriptions = list(
            subscriber.subscriptions.select_for_update().select_related("list").filter(list_id__in=list(list_ids))
        )
        confirmed = [s for s in subscriptions if s.mark_confirmed(ip=ip, user_agent=user_agent, at=now)]
        became_subscribed(
            subscriber, confirmed, via=Via.CONFIRMATION, at=now, ip=ip, user_agent=(user_agent or "")[:500]
        )
        if confirmed:
            return CONFIRM_PENDING
        if any(s.status == Subscription.Status.SUBSCRIBED for s in subscriptions):
            return CONFIRM_DONE
        return CONFIRM_GONE


# --- Unsubscribe and preferences --------------------------------------------------------------


def unsubscribe(
    subscriber_uid,
    list_ids: Iterable[int] = (),
    *,
    method: str,
    ip: str | None = None,
    user_agent: str = "",
    actor=None,
    campaign_id: int | None = None,
) -> list[MailingList]:
    """End the subscriber's pending or confirmed subscriptions to ``list_ids`` (empty: all lists).

    Idempotent: returns the lists actually left now (empty when there was nothing to do, also for
    an unknown uid, e.g. an erased subscriber). Records time and ``method`` on each subscription
    and one event per list; nothing is deleted. When lists were left, sends
    ``subscribers.signals.unsubscribed`` (``campaign_id``: the campaign whose link was used).
    """
    list_ids = list(list_ids)
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(uid=subscriber_uid).first()
        if subscriber is None:
            return []
        subscriptions = subscriber.subscriptions.current().select_for_update().select_related("list")
        if list_ids:
            subscriptions = subscriptions.filter(list_id__in=list_ids)
        left = []
        for subscription in subscriptions:
            if subscription.mark_unsubscribed(method, at=now):
                SubscriberEvent.record(
                    subscriber,
                    Kind.UNSUBSCRIBED,
                    mlist=subscription.list,
                    actor=actor,
                    at=now,
                    method=method,
                    ip=ip,
                    user_agent=(user_agent or "")[:500],
                )
                left.append(subscription.list)
        if left:
            signals.unsubscribed.send(
                sender=Subscriber, subscriber=subscriber, lists=left, method=method, campaign_id=campaign_id, at=now
            )
    return left


def preference_choices(subscriber: Subscriber) -> list[tuple[MailingList, bool]]:
    """The public lists, each with whether ``subscriber`` is subscribed (confirmed) to it."""
    subscribed = set(subscriber.subscriptions.subscribed().values_list("list_id", flat=True))
    return [(mlist, mlist.pk in subscribed) for mlist in MailingList.objects.filter(is_public=True)]


@dataclass
class PreferencesOutcome:
    joined: list[MailingList] = field(default_factory=list)
    left: list[MailingList] = field(default_factory=list)
    name_changed: bool = False
    language_changed: bool = False


def update_preferences(
    subscriber_uid,
    *,
    list_ids: Iterable[int],
    name: str,
    ip: str | None,
    user_agent: str,
    page_url: str = "",
    language: str | None = None,
) -> PreferencesOutcome:
    """Save the preference centre: subscribed to exactly the public lists in ``list_ids``, ``name``
    and (unless None) ``language``, the language of every email sent to them.

    The link came to the subscriber's mailbox, so a newly ticked list is subscribed at once (consent
    source "preferences", recorded like a confirmation); unticked lists are left with method
    "preferences". Private lists are untouched. A suppressed subscriber can leave lists but join none.
    Returns what changed.
    """
    wanted = set(list_ids)
    now = timezone.now()
    outcome = PreferencesOutcome()
    joined = []
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(uid=subscriber_uid)
        current = {s.list_id: s for s in subscriber.subscriptions.select_for_update()}
        for mlist in MailingList.objects.filter(is_public=True):
            subscription = current.get(mlist.pk)
            is_subscribed = subscription is not None and subscription.status == Subscription.Status.SUBSCRIBED
            if mlist.pk in wanted and not is_subscribed and not subscriber.is_suppressed:
                subscription = subscription or Subscription(subscriber=subscriber, list=mlist, created_at=now)
                subscription.record_consent(
                    source=Subscription.Source.PREFERENCES,
                    detail=page_url,
                    text=PREFERENCES_CONSENT_TEXT,
                    ip=ip,
                    user_agent=user_agent,
                    at=now,
                )
                subscription.status = Subscription.Status.SUBSCRIBED
                subscription.confirmed_at, subscription.confirm_ip = now, ip or None
                subscription.confirm_user_agent = (user_agent or "")[:500]
                subscription.unsubscribed_at, subscription.unsubscribe_method = None, ""
                subscription.save()
                joined.append(subscription)
                outcome.joined.append(mlist)
            elif (
                mlist.pk not in wanted
                and subscription is not None
                and subscription.mark_unsubscribed(Subscription.UnsubscribeMethod.PREFERENCES, at=now)
            ):
                SubscriberEvent.record(
                    subscriber,
                    Kind.UNSUBSCRIBED,
                    mlist=mlist,
                    at=now,
                    method=Subscription.UnsubscribeMethod.PREFERENCES,
                    ip=ip,
                )
                outcome.left.append(mlist)
        became_subscribed(subscriber, joined, via=Via.PREFERENCES, at=now, ip=ip)
        name = (name or "").strip()[:200]
        if name != subscriber.name:
            subscriber.name = name
            subscriber.save(update_fields=["name", "updated_at"])
            # The history says what changed, not the personal data itself.
            SubscriberEvent.record(subscriber, Kind.PROFILE_UPDATED, at=now, fields=["name"])
            outcome.name_changed = True
        if language is not None and supported_language(language) != subscriber.language:
            subscriber.language = supported_language(language)
            subscriber.save(update_fields=["language", "updated_at"])
            SubscriberEvent.record(subscriber, Kind.PROFILE_UPDATED, at=now, fields=["language"])
            outcome.language_changed = True
    return outcome
