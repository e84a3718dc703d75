"""Transactional emails about subscriptions: confirmation, "already subscribed", staff notices.

Called by subscribers.tasks; each re-reads what is still true, so running one twice is safe.
"""

import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mail.addresses import reformat_address
from mail.rendering import render_transactional
from mail.senders import sender_for
from subscribers.languages import supported_language
from subscribers.links import confirm_url, confirmation_window, recipient_urls
from subscribers.models import MailingList, Subscriber, SubscriberEvent

# Staff hear about subscriptions that became active these ways (not from the preference centre).
STAFF_NOTIFY_VIA = (SubscriberEvent.Via.CONFIRMATION, SubscriberEvent.Via.FORM)


def _sender(lists: list[MailingList]) -> tuple[str, list[str]]:
    """(From, Reply-To) for mail about ``lists``: a single list's override, else the site's settings."""
    sender = sender_for(lists[0] if len(lists) == 1 else None)
    return sender.from_email, [sender.reply_to] if sender.reply_to else []


def _send_to_subscriber(subscriber: Subscriber, *, lists, subject, preheader, template_name: str, context: dict):
    """Render ``template_name`` in the newsletter layout and send it to ``subscriber``, in their
    language: ``subject`` and ``preheader`` are lazy strings, translated here."""
    with translation.override(supported_language(subscriber.language)):
        rendered = render_transactional(
            subject=str(subject), preheader=str(preheader), template_name=template_name, context=context
        )
        from_email, reply_to = _sender(list(lists))
    message = EmailMultiAlternatives(
        rendered.subject,
        rendered.text,
        from_email,
        [subscriber.email],
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
    _send_to_subscriber(
        subscriber,
        lists=lists,
        subject=gettext_lazy("Please confirm your subscription"),
        preheader=gettext_lazy("One click and you are on the list."),
        template_name="subscribers/email/confirm.html",
        context={
            "subscriber_name": subscriber.name,
            "lists": lists,
            "confirm_url": confirm_url(subscriber.uid, [m.pk for m in lists]),
            "expires_days": settings.BROADSHEET["CONFIRM_TOKEN_DAYS"],
        },
    )
    SubscriberEvent.record(subscriber, SubscriberEvent.Kind.CONFIRMATION_SENT, lists=[m.pk for m in lists])
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
    _send_to_subscriber(
        subscriber,
        lists=lists,
        subject=gettext_lazy("You are already subscribed"),
        preheader=gettext_lazy("Nothing to do: you already receive these newsletters."),
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
            kind=SubscriberEvent.Kind.SUBSCRIBED,
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
