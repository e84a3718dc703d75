import datetime
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email as django_validate_email
from django.db import IntegrityError
from django.utils import timezone
from django.utils.crypto import salted_hmac

from subscribers import models
from subscribers.models import Subscriber, Subscription, Suppression, email_hash, normalise_email
from subscribers.tests.factories import SubscriberFactory, SubscriptionFactory
from subscribers.tests.nasty_strings import NASTY_STRINGS

pytestmark = pytest.mark.django_db

WINDOW = datetime.timedelta(days=7)
RESEND = datetime.timedelta(minutes=10)


def test_addresses_differing_only_in_case_are_one_subscriber():
    SubscriberFactory(email="Ann@Example.com")
    with pytest.raises(IntegrityError):
        SubscriberFactory(email="ann@EXAMPLE.com")


def test_for_email_finds_the_subscriber_in_any_spelling():
    ann = SubscriberFactory(email="Ann@Example.com")
    assert list(Subscriber.objects.for_email("  ann@example.COM ")) == [ann]


def test_suppression_covers_any_spelling_of_the_address():
    Suppression.objects.create(email_hash=email_hash(normalise_email("gone@example.com")), reason="erased")
    assert Suppression.covers("Gone@Example.com")
    assert not Suppression.covers("other@example.com")


def test_record_consent_stores_text_hash_ip_and_user_agent():
    subscription = SubscriptionFactory.build(status=Subscription.Status.PENDING)
    subscription.record_consent(
        source="form", detail="https://news.example.com/subscribe/", text="I agree.", ip="203.0.113.5", user_agent="UA"
    )
    assert subscription.consent_text_hash == hashlib.sha256(b"I agree.").hexdigest()
    assert (subscription.consent_ip, subscription.consent_user_agent) == ("203.0.113.5", "UA")
    assert subscription.consent_at is not None


def test_confirmation_allows_a_first_email_and_one_reminder():
    subscription = SubscriptionFactory(status=Subscription.Status.PENDING, confirmed_at=None)
    start = timezone.now()

    def due(at):
        return subscription.confirmation_due(at, resend_after=RESEND, max_sends=2, window=WINDOW)

    assert due(start)
    subscription.mark_confirmation_sent(start, window=WINDOW)
    assert not due(start + datetime.timedelta(minutes=1))
    assert due(start + RESEND)
    subscription.mark_confirmation_sent(start + RESEND, window=WINDOW)
    assert not due(start + datetime.timedelta(days=1))
    # After the token lifetime the old request is dead: a new one starts the count afresh.
    assert due(start + RESEND + WINDOW)
    subscription.mark_confirmation_sent(start + RESEND + WINDOW, window=WINDOW)
    subscription.refresh_from_db()
    assert subscription.confirmation_count == 1


def test_mark_confirmed_only_changes_a_pending_subscription():
    pending = SubscriptionFactory(status=Subscription.Status.PENDING, confirmed_at=None)
    unsubscribed = SubscriptionFactory(status=Subscription.Status.UNSUBSCRIBED)

    assert pending.mark_confirmed(ip="198.51.100.1", user_agent="UA")
    assert not unsubscribed.mark_confirmed(ip="198.51.100.1", user_agent="UA")

    pending.refresh_from_db()
    unsubscribed.refresh_from_db()
    assert pending.status == "subscribed" and pending.confirm_ip == "198.51.100.1"
    assert unsubscribed.status == "unsubscribed"


def test_mark_unsubscribed_keeps_the_first_time_and_method():
    subscription = SubscriptionFactory()
    first = timezone.now() - datetime.timedelta(hours=1)
    assert subscription.mark_unsubscribed("one_click", at=first)
    assert not subscription.mark_unsubscribed("link")
    subscription.refresh_from_db()
    assert (subscription.status, subscription.unsubscribe_method, subscription.unsubscribed_at) == (
        "unsubscribed",
        "one_click",
        first,
    )


def test_current_subscriptions_are_pending_or_subscribed():
    pending = SubscriptionFactory(status=Subscription.Status.PENDING)
    subscribed = SubscriptionFactory()
    SubscriptionFactory(status=Subscription.Status.UNSUBSCRIBED)
    assert set(Subscription.objects.current()) == {pending, subscribed}


def test_suppressed_subscribers_are_those_in_a_suppressed_state():
    bounced = SubscriberFactory(state=Subscriber.State.BOUNCED)
    SubscriberFactory()
    assert list(Subscriber.objects.suppressed()) == [bounced]


@pytest.mark.parametrize("value", ["ann@example.com", *NASTY_STRINGS])
def test_remembered_suppression_key_and_domain_verdicts_answer_as_django_does(value):
    """The import's shortcuts (the HMAC key derived once per secret, a domain's validity and IDNA
    form remembered) give exactly what Django's salted_hmac and validate_email give."""
    for secret in ("current", "an older key ключ"):
        expected = salted_hmac(models.SUPPRESSION_SALT, value, secret=secret, algorithm="sha256").hexdigest()
        assert models._keyed_hash(value, secret) == expected
    for address in (value, f"{value}@example.com", f"ann@{value}"):
        django_says = True
        try:
            django_validate_email(address)
        except ValidationError:
            django_says = False
        ours_says = True
        try:
            models.validate_email(address)
        except ValidationError:
            ours_says = False
        assert ours_says == django_says, address
