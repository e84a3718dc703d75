"""A webhook's batch (campaigns.tracking.record_tracking_events) ends where the same events,
recorded one by one (record_tracking_event), end: deliveries, counters, stored events, subscribers."""

import pytest

from campaigns.models import Campaign, Delivery, DeliveryEvent
from campaigns.tests.test_tracking import at, event
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from campaigns.tracking import (
    DUPLICATE,
    RECORDED,
    UNMATCHED,
    TrackingEvent,
    record_tracking_event,
    record_tracking_events,
)
from subscribers.models import Subscriber

pytestmark = pytest.mark.django_db

COUNTERS = ("delivered", "unique_opens", "unique_clicks", "bounced", "machine_opens", "machine_clicks")
FIELDS = (
    "delivered_at",
    "first_opened_at",
    "open_count",
    "first_clicked_at",
    "click_count",
    "machine_opens",
    "machine_clicks",
    "bounced_at",
    "bounce_type",
)


def scenario(issue_page, run: str):
    """A campaign of five deliveries and a batch of events about them, ids unique to ``run``."""
    campaign = make_sent_campaign(issue_page)
    deliveries = [make_delivery(campaign, message_id=f"{run}-msg-{n}") for n in range(5)]
    d0, d1, d2, d3, d4 = deliveries
    Subscriber.objects.filter(pk=d4.subscriber_id).update(soft_bounce_streak=2)
    Delivery.objects.filter(pk=d1.pk).update(first_opened_at=at(50), open_count=1)  # seen before this batch

    def ev(delivery, kind, minutes, key, **fields):
        return event(delivery, kind, minutes=minutes, event_id=f"{run}-{key}", **fields)

    link = "https://example.org/story-{}".format
    events = [
        ev(d0, "opened", 10, "o0"),  # before its delivered event: implies delivery
        ev(d0, "delivered", 1, "d0"),
        ev(d0, "opened", 12, "o0b"),
        ev(d0, "opened", 12, "o0b"),  # the same event twice in one POST
        ev(d1, "delivered", 2, "d1", recipient=d1.email.upper()),
        ev(d1, "opened", 40, "o1"),  # earlier than the open seen before
        ev(d1, "opened", 41, "m1", machine_flag=True),  # a machine's
        ev(d2, "clicked", 20, "c2", url=link(1)),  # no open seen: counts as the first open
        ev(d2, "clicked", 21, "c2b", url=link(1)),
        ev(d3, "clicked", 30, "b1", url=link(1)),
        ev(d3, "clicked", 30, "b2", url=link(2)),
        ev(d3, "clicked", 30, "b3", url=link(3)),  # every link at once: a scanner, earlier two moved
        ev(d3, "opened", 31, "o3"),  # after the burst, for the same delivery
        ev(d4, "delivered", 3, "d4"),  # resets the soft-bounce streak
        ev(d4, "bounced", 4, "x4", description="550 no such user"),
        TrackingEvent(
            esp="postmark",
            event_type="delivered",
            message_id=f"{run}-nobody",
            recipient="x@example.org",
            event_id=f"{run}-u",
            timestamp=at(1),
        ),
        ev(d0, "delivered", 1, "wrong-recipient", recipient="someone.else@example.org"),
    ]
    return campaign, deliveries, events


def state(campaign, deliveries, run: str):
    campaign = Campaign.objects.get(pk=campaign.pk)
    rows = [Delivery.objects.filter(pk=delivery.pk).values(*FIELDS)[0] for delivery in deliveries]
    position = {delivery.pk: index for index, delivery in enumerate(deliveries)}
    stored = sorted(
        (position.get(delivery_id, -1), event_id.removeprefix(f"postmark:{run}-"), kind, reason, url)
        for delivery_id, event_id, kind, reason, url in DeliveryEvent.objects.filter(
            event_id__startswith=f"postmark:{run}-"
        ).values_list("delivery_id", "event_id", "event_type", "machine_reason", "url")
    )
    subscribers = [
        Subscriber.objects.filter(pk=delivery.subscriber_id).values("state", "soft_bounce_streak")[0]
        for delivery in deliveries
    ]
    return {name: getattr(campaign, name) for name in COUNTERS}, rows, stored, subscribers


def test_a_batch_ends_where_the_same_events_one_by_one_end(issue_page):
    one_campaign, one_deliveries, one_events = scenario(issue_page, "one")
    one_outcomes = [record_tracking_event(item) for item in one_events]
    batch_campaign, batch_deliveries, batch_events = scenario(issue_page, "batch")

    batch_outcomes = record_tracking_events(batch_events)

    assert batch_outcomes == one_outcomes
    one, batch = state(one_campaign, one_deliveries, "one"), state(batch_campaign, batch_deliveries, "batch")
    assert batch == one
    counters, rows, stored, subscribers = batch
    # What the comparison covers (so that equal cannot mean "both did nothing"):
    assert counters == {
        "delivered": 5,
        "unique_opens": 3,  # d0, d2 (its click), d3 (its open after the burst); d1 was counted before
        "unique_clicks": 1,
        "bounced": 1,
        "machine_opens": 1,
        "machine_clicks": 1,
    }
    assert (rows[0]["delivered_at"], rows[0]["first_opened_at"], rows[0]["open_count"]) == (at(1), at(10), 2)
    assert (rows[1]["first_opened_at"], rows[1]["open_count"], rows[1]["machine_opens"]) == (at(40), 2, 1)
    assert (rows[2]["first_opened_at"], rows[2]["first_clicked_at"], rows[2]["click_count"]) == (at(20), at(20), 2)
    assert [reason for position, _key, kind, reason, _url in stored if position == 3 and kind == "clicked"] == [
        "every_link"
    ] * 3
    assert subscribers[4] == {"state": "bounced", "soft_bounce_streak": 0}
    assert batch_outcomes.count(DUPLICATE) == 1
    assert (batch_outcomes.count(RECORDED), batch_outcomes.count(UNMATCHED)) == (14, 2)


def test_a_replayed_batch_changes_nothing(issue_page):
    campaign, deliveries, events = scenario(issue_page, "replay")
    record_tracking_events(events)
    before = state(campaign, deliveries, "replay")

    outcomes = record_tracking_events(events)

    assert set(outcomes) == {DUPLICATE}
    assert state(campaign, deliveries, "replay") == before
