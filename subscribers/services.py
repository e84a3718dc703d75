"""Subscriber workflows: subscribe, confirm, unsubscribe, preferences, and the emails they send.

Views and tasks call these functions; they own the transactions, the consent record, the
``SubscriberEvent`` history (one event per change) and the after-commit enqueueing. Nothing here
deletes a subscription: leaving a list changes its status and records when and how.
"""

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mail.addresses import reformat_address
from mail.senders import sender_for
from subscribers import signals, tokens
from subscribers.languages import supported_language
from subscribers.models import MailingList, Subscriber, SubscriberEvent, Subscription, Suppression, normalise_email

logger = logging.getLogger(__name__)

# SubscriberEvent.kind values written here (the admin history shows them).
EVENT_CREATED = "created"
EVENT_SUBSCRIBE_REQUESTED = "subscribe_requested"
EVENT_SUBSCRIBE_REFUSED = "subscribe_refused"
EVENT_CONFIRMATION_SENT = "confirmation_sent"
EVENT_SUBSCRIBED = "subscribed"
EVENT_UNSUBSCRIBED = "unsubscribed"
EVENT_PROFILE_UPDATED = "profile_updated"

# How a subscription became active, in the SUBSCRIBED event's detail["via"]; staff hear about these.
VIA_CONFIRMATION = "confirmation"
VIA_FORM = "form"
VIA_PREFERENCES = "preferences"
STAFF_NOTIFY_VIA = (VIA_CONFIRMATION, VIA_FORM)

# The first confirmation email and one reminder (STANDARDS.md: "at most one reminder").
CONFIRMATION_MAX_SENDS = 2
# A person who asks again for the same list within a day gets at most one "already subscribed" note.
ALREADY_SUBSCRIBED_NOTICE_SECONDS = 24 * 60 * 60

PREFERENCES_CONSENT_TEXT = "Chosen in the preference centre reached from a newsletter email."


def confirmation_window() -> datetime.timedelta:
    return datetime.timedelta(days=int(settings.BROADSHEET["CONFIRM_TOKEN_DAYS"]))


def confirmation_resend_after() -> datetime.timedelta:
    return datetime.timedelta(minutes=int(settings.BROADSHEET["CONFIRM_RESEND_MINUTES"]))


def _record(subscriber, kind: str, *, mlist=None, actor=None, at=None, **detail) -> SubscriberEvent:
    return SubscriberEvent.objects.create(
        subscriber=subscriber, list=mlist, kind=kind, detail=detail, actor=actor, at=at or timezone.now()
    )


def _on_commit_enqueue(task_name: str, *args):
    # Imported here: tasks import this module at load time.
    from subscribers import tasks

    transaction.on_commit(lambda: getattr(tasks, task_name).enqueue(*args))


def _notify_staff_after_commit(subscriber_id: int, list_ids: list[int]):
    if settings.BROADSHEET["NOTIFY_STAFF"] and settings.BROADSHEET["NOTIFY_STAFF_MODE"] == "each":
        _on_commit_enqueue("notify_staff", subscriber_id, list_ids)


# --- Links ------------------------------------------------------------------------------------


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
            _record(subscriber, EVENT_CREATED, at=now, source=source)
        if subscriber.is_suppressed:
            _record(subscriber, EVENT_SUBSCRIBE_REFUSED, at=now, reason=subscriber.state, lists=list_ids)
            outcome.refused = True
            return outcome

        to_confirm = []
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
                _record(subscriber, EVENT_SUBSCRIBE_REQUESTED, mlist=mlist, at=now, **consent)
                to_confirm.append(subscription)
            else:
                subscription.status = Subscription.Status.SUBSCRIBED
                subscription.save()
                _record(subscriber, EVENT_SUBSCRIBED, mlist=mlist, at=now, via=VIA_FORM, **consent)
                outcome.subscribed_list_ids.append(mlist.pk)

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
            _on_commit_enqueue("send_confirmation", subscriber.pk, outcome.confirmation_list_ids)
        if outcome.subscribed_list_ids:
            _notify_staff_after_commit(subscriber.pk, outcome.subscribed_list_ids)
        # Everything asked for is already theirs. A short note to the mailbox (never shown on the
        # page) helps someone who forgot; the cache key keeps it to one a day per address.
        only_already = outcome.already_list_ids and not (to_confirm or outcome.subscribed_list_ids)
        if only_already and cache.add(
            f"subscribers:already-notice:{subscriber.pk}", 1, ALREADY_SUBSCRIBED_NOTICE_SECONDS
        ):
            _on_commit_enqueue("send_already_subscribed", subscriber.pk, outcome.already_list_ids)
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
        _on_commit_enqueue("send_confirmation", subscription.subscriber_id, [subscription.list_id])
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
        for subscription in confirmed:
            _record(
                subscriber,
                EVENT_SUBSCRIBED,
                mlist=subscription.list,
                at=now,
                via=VIA_CONFIRMATION,
                ip=ip,
                user_agent=(user_agent or "")[:500],
            )
        if confirmed:
            _notify_staff_after_commit(subscriber.pk, [s.list_id for s in confirmed])
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
                _record(
                    subscriber,
                    EVENT_UNSUBSCRIBED,
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
                _record(subscriber, EVENT_SUBSCRIBED, mlist=mlist, at=now, via=VIA_PREFERENCES, ip=ip)
                outcome.joined.append(mlist)
            elif (
                mlist.pk not in wanted
                and subscription is not None
                and subscription.mark_unsubscribed(Subscription.UnsubscribeMethod.PREFERENCES, at=now)
            ):
                _record(
                    subscriber,
                    EVENT_UNSUBSCRIBED,
                    mlist=mlist,
                    at=now,
                    method=Subscription.UnsubscribeMethod.PREFERENCES,
                    ip=ip,
                )
                outcome.left.append(mlist)
        name = (name or "").strip()[:200]
        if name != subscriber.name:
            subscriber.name = name
            subscriber.save(update_fields=["name", "updated_at"])
            # The history says what changed, not the personal data itself.
            _record(subscriber, EVENT_PROFILE_UPDATED, at=now, fields=["name"])
            outcome.name_changed = True
        if language is not None and supported_language(language) != subscriber.language:
            subscriber.language = supported_language(language)
            subscriber.save(update_fields=["language", "updated_at"])
            _record(subscriber, EVENT_PROFILE_UPDATED, at=now, fields=["language"])
            outcome.language_changed = True
    return outcome


# --- Emails (called by tasks; safe to re-run: each re-reads what is still true) -----------------


def _sender(lists: list[MailingList]) -> tuple[str, list[str]]:
    """(From, Reply-To) for mail about ``lists``: a single list's override, else the site's settings."""
    sender = sender_for(lists[0] if len(lists) == 1 else None)
    return sender.from_email, [sender.reply_to] if sender.reply_to else []


def _send_transactional(*, to: str, lists, subject: str, preheader: str, template_name: str, context: dict):
    from campaigns.rendering import render_transactional

    rendered = render_transactional(subject=subject, preheader=preheader, template_name=template_name, context=context)
    from_email, reply_to = _sender(list(lists))
    message = EmailMultiAlternatives(
        rendered.subject,
        rendered.text,
        from_email,
        [to],
        reply_to=reply_to,
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(rendered.html, "text/html")
    message.send()


def send_confirmation_email(subscriber_id: int, list_ids: list[int]) -> bool:
    """Email the double opt-in link for those of ``list_ids`` still pending; True if sent."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.is_suppressed:
        return False
    pending = list(
        subscriber.subscriptions.pending().filter(list_id__in=list_ids).select_related("list").order_by("list__name")
    )
    if not pending:
        return False
    lists = [s.list for s in pending]
    now, window = timezone.now(), confirmation_window()
    for subscription in pending:
        # Requests from the form were counted when queued; other callers (the CSV import) were not.
        if subscription.confirmation_count == 0:
            subscription.mark_confirmation_sent(now, window=window)
    with translation.override(supported_language(subscriber.language)):
        _send_transactional(
            to=subscriber.email,
            lists=lists,
            subject=_("Please confirm your subscription"),
            preheader=_("One click and you are on the list."),
            template_name="subscribers/email/confirm.html",
            context={
                "subscriber_name": subscriber.name,
                "lists": lists,
                "confirm_url": confirm_url(subscriber.uid, [m.pk for m in lists]),
                "expires_days": settings.BROADSHEET["CONFIRM_TOKEN_DAYS"],
            },
        )
    _record(subscriber, EVENT_CONFIRMATION_SENT, lists=[m.pk for m in lists])
    return True


def send_already_subscribed_email(subscriber_id: int, list_ids: list[int]) -> bool:
    """Tell an address that asked again that it is already on ``list_ids``, with its preference link."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.is_suppressed:
        return False
    lists = list(
        MailingList.objects.filter(
            pk__in=list_ids, subscriptions__subscriber=subscriber, subscriptions__status="subscribed"
        )
    )
    if not lists:
        return False
    manage_url = recipient_urls(subscriber.uid)["preferences_url"]
    with translation.override(supported_language(subscriber.language)):
        _send_transactional(
            to=subscriber.email,
            lists=lists,
            subject=_("You are already subscribed"),
            preheader=_("Nothing to do: you already receive these newsletters."),
            template_name="subscribers/email/already_subscribed.html",
            context={
                "subscriber_name": subscriber.name,
                "lists": lists,
                "manage_url": manage_url,
                "preferences_url": manage_url,
            },
        )
    return True


def _staff_recipients() -> list[str]:
    return list(settings.BROADSHEET["NOTIFY_STAFF"])


def send_staff_notification(subscriber_id: int, list_ids: list[int]) -> bool:
    """Tell the NOTIFY_STAFF addresses that someone joined ``list_ids``; True if sent."""
    recipients = _staff_recipients()
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    lists = list(MailingList.objects.filter(pk__in=list_ids))
    if not recipients or subscriber is None or not lists:
        return False
    # Staff read the site's language, whatever language the request or task runs in.
    with translation.override(settings.LANGUAGE_CODE):
        _send_staff_mail(
            recipients,
            subject=_("New subscriber: %(email)s") % {"email": subscriber.email},
            rows=[{"email": subscriber.email, "name": subscriber.name, "lists": lists, "at": timezone.now()}],
        )
    return True


def send_staff_digest(day: datetime.date) -> int:
    """Email NOTIFY_STAFF one digest of the sign-ups on ``day`` (UTC); returns how many it listed.

    Sends nothing on a day without sign-ups. Running it twice for one day sends the digest twice.
    """
    recipients = _staff_recipients()
    start = datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)
    events = (
        SubscriberEvent.objects.filter(
            kind=EVENT_SUBSCRIBED,
            detail__via__in=STAFF_NOTIFY_VIA,
            at__gte=start,
            at__lt=start + datetime.timedelta(days=1),
        )
        .select_related("subscriber", "list")
        .order_by("at")
    )
    rows = [
        {"email": e.subscriber.email, "name": e.subscriber.name, "lists": [e.list] if e.list else [], "at": e.at}
        for e in events
    ]
    if not recipients or not rows:
        return 0
    with translation.override(settings.LANGUAGE_CODE):
        _send_staff_mail(
            recipients,
            subject=_("%(count)s new subscriptions on %(day)s") % {"count": len(rows), "day": day.isoformat()},
            rows=rows,
        )
    return len(rows)


def _send_staff_mail(recipients: list[str], *, subject: str, rows: list[dict]):
    from campaigns.rendering import render_transactional

    rendered = render_transactional(
        subject=subject,
        preheader=subject,
        template_name="subscribers/email/staff_notification.html",
        context={"rows": rows},
    )
    message = EmailMultiAlternatives(
        rendered.subject,
        rendered.text,
        reformat_address(settings.DEFAULT_FROM_EMAIL),
        recipients,
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(rendered.html, "text/html")
    message.send()
