"""The tracking workflow (campaigns.tracking.record_tracking_event), event by event."""

import datetime
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from campaigns import tracking
from campaigns.models import Campaign, Delivery, DeliveryEvent
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from campaigns.tracking import TrackingEvent, record_tracking_event
from subscribers import suppression
from subscribers.models import Subscriber, SubscriberEvent, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriptionFactory

T0 = datetime.datetime(2026, 3, 21, 9, 0, tzinfo=datetime.UTC)


def at(minutes):
    return T0 + datetime.timedelta(minutes=minutes)


def event(delivery, event_type, *, minutes=0, event_id=None, **fields):
    fields.setdefault("message_id", delivery.esp_message_id)
    fields.setdefault("recipient", delivery.email)
    return TrackingEvent(esp="postmark", event_type=event_type, timestamp=at(minutes), event_id=event_id, **fields)


@pytest.fixture
def campaign(issue_page):
    return make_sent_campaign(issue_page)


@pytest.fixture
def delivery(campaign):
    return make_delivery(campaign, message_id="msg-1")


def reload(obj):
    obj.refresh_from_db()
    return obj


def test_delivered_sets_delivered_at_and_counts_the_campaign(delivery):
    assert record_tracking_event(event(delivery, "delivered")) == tracking.RECORDED

    assert reload(delivery).delivered_at == T0
    assert reload(delivery.campaign).delivered == 1


def test_two_opens_count_twice_on_the_delivery_and_once_on_the_campaign(delivery):
    record_tracking_event(event(delivery, "opened", minutes=5))
    record_tracking_event(event(delivery, "opened", minutes=9))

    delivery = reload(delivery)
    assert (delivery.open_count, delivery.first_opened_at) == (2, at(5))
    assert reload(delivery.campaign).unique_opens == 1


def test_click_stores_the_url_and_counts_unique_click(delivery):
    record_tracking_event(event(delivery, "clicked", minutes=3, url="https://example.org/story"))
    record_tracking_event(event(delivery, "clicked", minutes=4, url="https://example.org/more"))

    delivery = reload(delivery)
    assert (delivery.click_count, delivery.first_clicked_at) == (2, at(3))
    assert reload(delivery.campaign).unique_clicks == 1
    assert sorted(DeliveryEvent.objects.filter(delivery=delivery).values_list("url", flat=True)) == [
        "https://example.org/more",
        "https://example.org/story",
    ]


def test_click_without_a_seen_open_counts_as_the_first_open(delivery):
    record_tracking_event(event(delivery, "clicked", minutes=3, url="https://example.org/story"))

    campaign = reload(delivery.campaign)
    assert (campaign.unique_opens, campaign.unique_clicks) == (1, 1)
    assert reload(delivery).first_opened_at == at(3)


def test_open_before_delivered_marks_delivered_once_and_keeps_the_earliest_time(delivery):
    record_tracking_event(event(delivery, "opened", minutes=10))
    record_tracking_event(event(delivery, "delivered", minutes=1))

    delivery = reload(delivery)
    assert delivery.delivered_at == at(1)
    assert delivery.first_opened_at == at(10)
    campaign = reload(delivery.campaign)
    assert (campaign.delivered, campaign.unique_opens) == (1, 1)


def test_late_earlier_open_moves_first_opened_at_back_without_recounting(delivery):
    record_tracking_event(event(delivery, "opened", minutes=30))
    record_tracking_event(event(delivery, "opened", minutes=20))

    delivery = reload(delivery)
    assert delivery.first_opened_at == at(20)
    assert reload(delivery.campaign).unique_opens == 1


def test_same_event_id_twice_counts_once(delivery):
    first = record_tracking_event(event(delivery, "opened", event_id="evt-1"))
    second = record_tracking_event(event(delivery, "opened", event_id="evt-1"))

    assert (first, second) == (tracking.RECORDED, tracking.DUPLICATE)
    assert reload(delivery).open_count == 1
    assert DeliveryEvent.objects.count() == 1


def test_same_event_without_id_twice_counts_once(delivery):
    record_tracking_event(event(delivery, "opened", minutes=2))
    assert record_tracking_event(event(delivery, "opened", minutes=2)) == tracking.DUPLICATE

    assert reload(delivery).open_count == 1


def test_unknown_message_id_is_stored_without_a_delivery(delivery):
    outcome = record_tracking_event(
        TrackingEvent(esp="postmark", event_type="opened", message_id="nope", recipient="x@example.com")
    )

    assert outcome == tracking.UNMATCHED
    stored = DeliveryEvent.objects.get()
    assert (stored.delivery, stored.campaign, stored.message_id) == (None, None, "nope")
    assert reload(delivery.campaign).unique_opens == 0


def test_batch_message_id_is_matched_by_recipient(campaign):
    # Mailgun gives one message id to a whole batch; the recipient picks the delivery.
    first = make_delivery(campaign, message_id="<batch@mg.example.org>")
    second = make_delivery(campaign, message_id="<batch@mg.example.org>")

    record_tracking_event(event(second, "opened", message_id="batch@mg.example.org", recipient=second.email.upper()))

    assert (reload(first).open_count, reload(second).open_count) == (0, 1)


def test_metadata_delivery_id_matches_when_the_message_id_is_unknown(campaign):
    delivery = make_delivery(campaign, message_id="")
    record_tracking_event(event(delivery, "delivered", message_id="esp-id", metadata={"delivery_id": str(delivery.pk)}))

    assert reload(delivery).delivered_at == T0


def test_event_types_that_change_nothing_are_kept_and_ignored(delivery):
    assert record_tracking_event(event(delivery, "queued")) == tracking.IGNORED
    assert DeliveryEvent.objects.get().delivery == delivery
    assert reload(delivery).delivered_at is None


def test_hard_bounce_suppresses_the_subscriber_and_records_why(delivery):
    record_tracking_event(event(delivery, "bounced", event_id="b1", description="Mailbox does not exist"))

    subscriber = reload(delivery.subscriber)
    assert subscriber.state == Subscriber.State.BOUNCED
    assert "Mailbox does not exist" in subscriber.state_reason
    history = SubscriberEvent.objects.get(subscriber=subscriber, kind=suppression.EVENT_SUPPRESSED)
    assert history.detail["state"] == "bounced"
    assert history.detail["campaign_id"] == delivery.campaign_id
    delivery = reload(delivery)
    assert (delivery.bounce_type, delivery.bounced_at) == ("hard", T0)
    assert reload(delivery.campaign).bounced == 1
    # A bounce is not a withdrawal of consent: the subscription is kept, the state stops sending.
    assert subscriber.subscriptions.get().status == Subscription.Status.SUBSCRIBED


def test_hard_bounce_twice_counts_once(delivery):
    record_tracking_event(event(delivery, "bounced", event_id="b1"))
    record_tracking_event(event(delivery, "bounced", event_id="b2", minutes=5))

    assert reload(delivery.campaign).bounced == 1
    assert SubscriberEvent.objects.filter(kind=suppression.EVENT_SUPPRESSED).count() == 1


def test_rejected_as_invalid_counts_as_a_hard_bounce(delivery):
    record_tracking_event(event(delivery, "rejected", reject_reason="invalid"))

    assert reload(delivery.subscriber).state == Subscriber.State.BOUNCED


def test_complaint_suppresses_and_unsubscribes_from_every_list(delivery):
    other = SubscriptionFactory(subscriber=delivery.subscriber, list=MailingListFactory())

    record_tracking_event(event(delivery, "complained", event_id="c1"))

    subscriber = reload(delivery.subscriber)
    assert subscriber.state == Subscriber.State.COMPLAINED
    assert "complaint" in subscriber.state_reason.lower()
    assert set(subscriber.subscriptions.values_list("status", "unsubscribe_method")) == {("unsubscribed", "complaint")}
    assert reload(other).status == Subscription.Status.UNSUBSCRIBED
    assert reload(delivery.campaign).complained == 1


def test_esp_unsubscribe_leaves_only_the_campaigns_lists(delivery):
    other = SubscriptionFactory(subscriber=delivery.subscriber, list=MailingListFactory())

    record_tracking_event(event(delivery, "unsubscribed"))

    on_campaign_list = delivery.subscriber.subscriptions.get(list=delivery.campaign.lists.first())
    assert (on_campaign_list.status, on_campaign_list.unsubscribe_method) == ("unsubscribed", "esp")
    assert reload(other).status == Subscription.Status.SUBSCRIBED
    assert reload(delivery.subscriber).state == Subscriber.State.ACTIVE
    assert reload(delivery.campaign).unsubscribed == 1
    assert reload(delivery).unsubscribed_at == T0


def test_events_for_an_erased_subscriber_still_count(delivery):
    Subscriber.objects.filter(pk=delivery.subscriber_id).delete()

    assert record_tracking_event(event(delivery, "complained")) == tracking.RECORDED
    assert reload(delivery.campaign).complained == 1


@pytest.fixture
def subscriber_on_three_campaigns(issue_page):
    mlist = MailingListFactory()
    subscriber = SubscriptionFactory(list=mlist).subscriber
    deliveries = []
    for number in range(3):
        campaign = make_sent_campaign(issue_page, lists=[mlist])
        deliveries.append(make_delivery(campaign, subscriber, message_id=f"msg-{number}"))
    return subscriber, deliveries


def soft_bounce_limit(settings, limit):
    settings.BROADSHEET = {**settings.BROADSHEET, "SOFT_BOUNCE_LIMIT": limit}


def test_soft_bounces_on_consecutive_campaigns_suppress_at_the_limit(subscriber_on_three_campaigns, settings):
    soft_bounce_limit(settings, 3)
    subscriber, deliveries = subscriber_on_three_campaigns

    record_tracking_event(event(deliveries[0], "deferred"))
    record_tracking_event(event(deliveries[1], "deferred"))
    assert reload(subscriber).state == Subscriber.State.ACTIVE
    record_tracking_event(event(deliveries[2], "bounced", soft_bounce=True))

    subscriber = reload(subscriber)
    assert subscriber.soft_bounce_streak == 3
    assert subscriber.state == Subscriber.State.BOUNCED
    assert "3 consecutive campaigns" in subscriber.state_reason
    assert reload(deliveries[2]).bounce_type == "soft"
    # Soft bounces are not counted as (hard) bounces on the campaign.
    assert reload(deliveries[2].campaign).bounced == 0


def test_a_delivery_resets_the_soft_bounce_streak(subscriber_on_three_campaigns, settings):
    soft_bounce_limit(settings, 3)
    subscriber, deliveries = subscriber_on_three_campaigns

    record_tracking_event(event(deliveries[0], "deferred"))
    record_tracking_event(event(deliveries[1], "deferred"))
    record_tracking_event(event(deliveries[1], "delivered", minutes=30))
    record_tracking_event(event(deliveries[2], "deferred"))

    subscriber = reload(subscriber)
    assert (subscriber.soft_bounce_streak, subscriber.state) == (1, Subscriber.State.ACTIVE)


def test_several_soft_bounces_in_one_campaign_count_once(subscriber_on_three_campaigns, settings):
    soft_bounce_limit(settings, 2)
    subscriber, deliveries = subscriber_on_three_campaigns

    record_tracking_event(event(deliveries[0], "deferred", minutes=1))
    record_tracking_event(event(deliveries[0], "deferred", minutes=31))

    subscriber = reload(subscriber)
    assert (subscriber.soft_bounce_streak, subscriber.state) == (1, Subscriber.State.ACTIVE)


def test_a_deferral_reported_after_delivery_does_not_grow_the_streak(delivery):
    record_tracking_event(event(delivery, "delivered", minutes=5))
    record_tracking_event(event(delivery, "deferred", minutes=1))

    assert reload(delivery.subscriber).soft_bounce_streak == 0


def test_counters_only_change_for_the_events_campaign(delivery, issue_page):
    other_campaign = make_sent_campaign(issue_page)

    record_tracking_event(event(delivery, "opened"))

    assert Campaign.objects.get(pk=other_campaign.pk).unique_opens == 0
    assert Delivery.objects.get(pk=delivery.pk).open_count == 1


def run_concurrently(events):
    """Record ``events`` from one thread each, all released at once; returns the outcomes."""
    barrier = threading.Barrier(len(events))

    def worker(tracking_event):
        try:
            barrier.wait()
            return record_tracking_event(tracking_event)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(worker, events))


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_copies_of_one_event_count_once(issue_page):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite serialises writers")
    delivery = make_delivery(make_sent_campaign(issue_page), message_id="msg-race")

    outcomes = run_concurrently([event(delivery, "opened", minutes=1) for _ in range(6)])

    assert sorted(outcomes) == [tracking.DUPLICATE] * 5 + [tracking.RECORDED]
    assert reload(delivery).open_count == 1
    assert reload(delivery.campaign).unique_opens == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_opens_of_one_delivery_all_count_and_count_unique_once(issue_page):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite serialises writers")
    delivery = make_delivery(make_sent_campaign(issue_page), message_id="msg-race")

    outcomes = run_concurrently([event(delivery, "opened", minutes=minute) for minute in range(6)])

    assert outcomes == [tracking.RECORDED] * 6
    delivery = reload(delivery)
    assert (delivery.open_count, delivery.first_opened_at) == (6, at(0))
    campaign = reload(delivery.campaign)
    assert (campaign.unique_opens, campaign.delivered) == (1, 1)
