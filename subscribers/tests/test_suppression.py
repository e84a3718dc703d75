"""subscribers.suppression: delivery feedback applied to a subscriber, with or without a campaign delivery."""

from types import SimpleNamespace

import pytest

from subscribers import suppression
from subscribers.models import Subscriber, SubscriberEvent, Subscription
from subscribers.suppression import Feedback, apply_feedback
from subscribers.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription():
    return SubscriptionFactory(status=Subscription.Status.SUBSCRIBED)


def reload(obj):
    obj.refresh_from_db()
    return obj


def test_a_hard_bounce_by_address_suppresses_and_keeps_the_subscriptions(subscription):
    address = subscription.subscriber.email.upper()

    found = apply_feedback(address, Feedback.HARD_BOUNCE, reason="550 5.1.1 no such user", source="bounce-mailbox")

    subscriber = reload(subscription.subscriber)
    assert found == subscriber
    assert (subscriber.state, subscriber.state_reason) == (Subscriber.State.BOUNCED, "550 5.1.1 no such user")
    event = SubscriberEvent.objects.get(subscriber=subscriber, kind=suppression.EVENT_SUPPRESSED)
    assert event.detail["source"] == "bounce-mailbox" and "campaign_id" not in event.detail
    assert reload(subscription).status == Subscription.Status.SUBSCRIBED


def test_an_unknown_or_malformed_address_is_nobody(subscription):
    assert apply_feedback("nobody@example.org", Feedback.HARD_BOUNCE, source="x") is None
    assert apply_feedback("not an address\r\n", Feedback.COMPLAINT, source="x") is None
    assert reload(subscription.subscriber).state == Subscriber.State.ACTIVE


def test_a_complaint_suppresses_and_unsubscribes_everywhere(subscription):
    other = SubscriptionFactory(subscriber=subscription.subscriber, status=Subscription.Status.SUBSCRIBED)

    apply_feedback(subscription.subscriber, Feedback.COMPLAINT, source="postmark")

    assert reload(subscription.subscriber).state == Subscriber.State.COMPLAINED
    assert {reload(s).unsubscribe_method for s in (subscription, other)} == {"complaint"}


def test_an_esp_unsubscribe_leaves_only_the_given_lists(subscription):
    other = SubscriptionFactory(subscriber=subscription.subscriber, status=Subscription.Status.SUBSCRIBED)

    apply_feedback(subscription.subscriber.pk, Feedback.UNSUBSCRIBE, source="mailgun", list_ids=[subscription.list_id])

    assert (reload(subscription).status, reload(subscription).unsubscribe_method) == ("unsubscribed", "esp")
    assert reload(other).status == Subscription.Status.SUBSCRIBED
    assert reload(subscription.subscriber).state == Subscriber.State.ACTIVE


def test_soft_bounces_count_only_with_a_delivery_and_suppress_at_the_limit(subscription, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "SOFT_BOUNCE_LIMIT": 2}
    subscriber = subscription.subscriber

    apply_feedback(subscriber, Feedback.SOFT_BOUNCE, source="smtp")  # a confirmation email: no campaign
    assert reload(subscriber).soft_bounce_streak == 0
    for number in (1, 2):
        apply_feedback(
            subscriber, Feedback.SOFT_BOUNCE, source="smtp", delivery=SimpleNamespace(pk=number, campaign_id=number)
        )

    subscriber = reload(subscriber)
    assert (subscriber.state, subscriber.soft_bounce_streak) == (Subscriber.State.BOUNCED, 2)
    assert "2 consecutive campaigns" in subscriber.state_reason


def test_delivered_resets_the_streak(subscription):
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(soft_bounce_streak=2)

    suppression.delivered(subscription.subscriber_id)

    assert reload(subscription.subscriber).soft_bounce_streak == 0


def test_an_already_suppressed_address_keeps_its_first_reason(subscription):
    apply_feedback(subscription.subscriber, Feedback.HARD_BOUNCE, reason="first", source="a")
    apply_feedback(subscription.subscriber, Feedback.COMPLAINT, source="b")

    subscriber = reload(subscription.subscriber)
    assert (subscriber.state, subscriber.state_reason) == (Subscriber.State.BOUNCED, "first")
    assert SubscriberEvent.objects.filter(kind=suppression.EVENT_SUPPRESSED).count() == 1


def test_an_unknown_kind_is_refused(subscription):
    with pytest.raises(ValueError):
        apply_feedback(subscription.subscriber, "deleted", source="x")
