"""GDPR: everything held about one address (Art. 15/20) and its erasure (Art. 17).

Other apps add their own data through the two registries below, e.g. campaigns registers a
contributor returning the deliveries sent to the subscriber and an eraser that blanks their
recipient addresses::

    from subscribers import gdpr
    gdpr.export_contributors["deliveries"] = lambda subscriber: [...]
    gdpr.erasers.append(lambda subscriber: ...)

Register them in the app's ``AppConfig.ready()``.
"""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from subscribers.models import (
    ImportJob,
    Subscriber,
    SubscriberEvent,
    Subscription,
    Suppression,
    email_hash,
    normalise_email,
)

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: can never be a real mailbox.

# name -> function(subscriber) returning JSON-serialisable data for the export.
export_contributors: dict[str, Callable[[Subscriber], Any]] = {}
# functions(subscriber) removing what another app holds about the subscriber; run in the transaction.
erasers: list[Callable[[Subscriber], None]] = []


class NotFound(Exception):
    """No subscriber has this address."""


def find_subscriber(address: str) -> Subscriber:
    """The subscriber with ``address`` (any case); raises NotFound."""
    try:
        return Subscriber.objects.get(email_normalised=normalise_email(address))
    except (ValidationError, Subscriber.DoesNotExist) as exc:
        raise NotFound(f"No subscriber with the address {address!r}.") from exc


def _time(value):
    return value.isoformat() if value else None


def _subscription(s: Subscription) -> dict:
    return {
        "list": s.list.slug,
        "list_name": s.list.name,
        "status": s.status,
        "created_at": _time(s.created_at),
        "consent": {
            "at": _time(s.consent_at),
            "source": s.consent_source,
            "detail": s.consent_detail,
            "text": s.consent_text,
            "text_hash": s.consent_text_hash,
            "ip": s.consent_ip,
            "user_agent": s.consent_user_agent,
        },
        "confirmation": {
            "sent_at": _time(s.confirmation_sent_at),
            "count": s.confirmation_count,
            "confirmed_at": _time(s.confirmed_at),
            "ip": s.confirm_ip,
            "user_agent": s.confirm_user_agent,
        },
        "unsubscribed_at": _time(s.unsubscribed_at),
        "unsubscribe_method": s.unsubscribe_method,
    }


def export_subscriber_data(subscriber: Subscriber) -> dict:
    """A JSON-serialisable dict of every record held about ``subscriber``."""
    data = {
        "exported_at": _time(timezone.now()),
        "subscriber": {
            "uid": str(subscriber.uid),
            "email": subscriber.email,
            "name": subscriber.name,
            "language": subscriber.language,
            "attributes": subscriber.attributes,
            "state": subscriber.state,
            "state_reason": subscriber.state_reason,
            "state_changed_at": _time(subscriber.state_changed_at),
            "created_at": _time(subscriber.created_at),
            "updated_at": _time(subscriber.updated_at),
        },
        "subscriptions": [
            _subscription(s) for s in subscriber.subscriptions.select_related("list").order_by("created_at", "pk")
        ],
        "events": [
            {"at": _time(e.at), "kind": e.kind, "list": e.list.slug if e.list else None, "detail": e.detail}
            for e in subscriber.events.select_related("list").order_by("at", "pk")
        ],
    }
    for name, contributor in export_contributors.items():
        data[name] = contributor(subscriber)
    return data


ERASED_VALUE = "[erased]"


def _erase_from_import_reports(subscriber: Subscriber) -> None:
    """Blank the address where import reports quote it (duplicate and invalid-row notes)."""
    spellings = {subscriber.email_normalised, subscriber.email.strip().lower()}
    for job in ImportJob.objects.exclude(errors=[]).only("pk", "errors"):
        changed = False
        for note in job.errors:
            if isinstance(note, dict) and str(note.get("value", "")).strip().lower() in spellings:
                note["value"], changed = ERASED_VALUE, True
        if changed:
            ImportJob.objects.filter(pk=job.pk).update(errors=job.errors)


@transaction.atomic
def erase_subscriber(subscriber: Subscriber, *, actor=None) -> Subscriber:
    """Remove the personal data of ``subscriber`` and keep only an anonymous suppression hash.

    The row stays (blocked, address replaced by ``erased-<uid>@erased.invalid``) so that
    statistics and foreign keys hold; subscriptions are ended; IPs, user agents, names,
    attributes and event details are cleared, and so is the address where import reports quote
    it. The keyed hash of the normalised address goes into
    Suppression, so neither an import nor a form can add the address again. Returns the
    erased subscriber.
    """
    now = timezone.now()
    Suppression.objects.matching([subscriber.email_normalised])  # Re-keys an older row of the address.
    _erase_from_import_reports(subscriber)
    Suppression.objects.get_or_create(
        email_hash=email_hash(subscriber.email_normalised), defaults={"reason": "erased", "created_at": now}
    )
    anonymous = f"erased-{subscriber.uid.hex}@{ERASED_DOMAIN}"
    Subscriber.objects.filter(pk=subscriber.pk).update(
        email=anonymous,
        email_normalised=anonymous,
        name="",
        attributes={},
        state=Subscriber.State.BLOCKED,
        state_reason="erased",
        state_changed_at=now,
        updated_at=now,
    )
    subscriber.subscriptions.exclude(status=Subscription.Status.UNSUBSCRIBED).update(
        status=Subscription.Status.UNSUBSCRIBED,
        unsubscribed_at=now,
        unsubscribe_method=Subscription.UnsubscribeMethod.ADMIN,
    )
    subscriber.subscriptions.update(
        consent_ip=None, consent_user_agent="", confirm_ip=None, confirm_user_agent="", consent_detail=""
    )
    subscriber.events.update(detail={})
    SubscriberEvent.objects.create(subscriber=subscriber, kind="erased", actor=actor, at=now)
    for eraser in erasers:
        eraser(subscriber)
    subscriber.refresh_from_db()
    return subscriber
