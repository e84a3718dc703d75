import datetime
import uuid

import pytest
from django.utils import timezone

from campaigns import reporting
from campaigns.models import Campaign, Delivery, DeliveryEvent
from subscribers.models import Subscription
from subscribers.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

START = datetime.datetime(2026, 3, 21, 9, 30, tzinfo=datetime.UTC)


@pytest.fixture
def campaign(issue_page):
    return Campaign.objects.create(
        page=issue_page, status=Campaign.Status.SENT, started_at=START, recipients=200, sent=190, failed=10
    )


def delivery(campaign, n, **fields):
    return Delivery.objects.create(campaign=campaign, email=f"r{n}@example.com", subscriber_uid=uuid.uuid4(), **fields)


def event(campaign, kind, at, *, delivery=None, url=""):
    return DeliveryEvent.objects.create(
        campaign=campaign,
        delivery=delivery,
        esp="test",
        event_type=kind,
        event_id=str(uuid.uuid4()),
        timestamp=at,
        url=url,
    )


def test_report_numbers_and_rates(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(
        delivered=180, unique_opens=90, unique_clicks=36, bounced=10, complained=1, unsubscribed=3
    )
    campaign.refresh_from_db()

    figures = {f.key: (f.count, f.rate) for f in reporting.report_figures(campaign)}

    assert figures == {
        "sent": (190, 0.95),
        "delivered": (180, pytest.approx(180 / 190)),
        "unique_opens": (90, 0.5),
        "unique_clicks": (36, 0.2),
        "bounced": (10, pytest.approx(10 / 190)),
        "complained": (1, pytest.approx(1 / 180)),
        "unsubscribed": (3, pytest.approx(3 / 180)),
    }


def test_engagement_rates_are_relative_to_sent_when_no_deliveries_are_reported(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(unique_opens=19)
    campaign.refresh_from_db()

    opens = reporting.campaign_report(campaign).figure("unique_opens")

    assert (opens.rate, opens.base) == (0.1, "sent")


def test_rates_are_none_for_an_empty_campaign(issue_page):
    empty = Campaign.objects.create(page=issue_page)

    assert {f.rate for f in reporting.report_figures(empty)} == {None}


def test_top_links_count_clicks_and_unique_clickers(campaign):
    first, second = delivery(campaign, 1), delivery(campaign, 2)
    for d in (first, first, second):
        event(campaign, "clicked", START, delivery=d, url="https://example.org/a")
    event(campaign, "clicked", START, delivery=second, url="https://example.org/b")
    event(campaign, "opened", START, delivery=second)

    links = reporting.top_links(campaign)

    assert [(link.url, link.clicks, link.unique_clicks) for link in links] == [
        ("https://example.org/a", 3, 2),
        ("https://example.org/b", 1, 1),
    ]


def test_hourly_activity_buckets_opens_and_clicks_from_the_start_hour(campaign):
    event(campaign, "opened", START + datetime.timedelta(minutes=5))
    event(campaign, "opened", START + datetime.timedelta(minutes=20))  # 09:50, still the first hour
    event(campaign, "opened", START + datetime.timedelta(minutes=45))  # 10:15, second hour
    event(campaign, "clicked", START + datetime.timedelta(hours=47))  # 08:30 two days on: last bucket
    event(campaign, "opened", START + datetime.timedelta(hours=49))  # outside the 48 hours
    event(campaign, "delivered", START + datetime.timedelta(minutes=1))  # not an open or click

    hours = reporting.hourly_activity(campaign)

    assert len(hours) == 48
    assert (hours[0].opens, hours[1].opens, hours[47].clicks) == (2, 1, 1)
    assert sum(h.opens for h in hours) == 3
    assert sum(h.clicks for h in hours) == 1


def test_hourly_activity_is_empty_before_the_campaign_starts(issue_page):
    assert reporting.hourly_activity(Campaign.objects.create(page=issue_page)) == []


def test_progress_reports_counts_rate_and_time_left(issue_page):
    now = timezone.now()
    campaign = Campaign.objects.create(
        page=issue_page,
        status=Campaign.Status.SENDING,
        started_at=now - datetime.timedelta(minutes=10),
        recipients=1000,
        sent=390,
        failed=8,
        skipped=2,
    )
    for n in range(120):  # 120 in the last minute: 2 msgs/s
        delivery(campaign, n, status="sent", sent_at=now - datetime.timedelta(seconds=n % 59 + 1))
    delivery(campaign, 999, status="sent", sent_at=now - datetime.timedelta(minutes=5))  # too old to count

    data = reporting.progress(campaign, now=now)

    assert data["status"] == "sending"
    assert (data["done"], data["remaining"], data["percent"]) == (400, 600, 40.0)
    assert data["rate"] == 2.0
    assert data["eta_seconds"] == 300


def test_progress_rate_of_a_young_campaign_uses_the_time_since_it_started(issue_page):
    now = timezone.now()
    campaign = Campaign.objects.create(
        page=issue_page, status=Campaign.Status.SENDING, started_at=now - datetime.timedelta(seconds=10), recipients=50
    )
    for n in range(20):
        delivery(campaign, n, status="sent", sent_at=now - datetime.timedelta(seconds=5))

    assert reporting.progress(campaign, now=now)["rate"] == 2.0


def test_progress_of_a_paused_campaign_has_no_time_left(issue_page):
    campaign = Campaign.objects.create(page=issue_page, status=Campaign.Status.PAUSED, recipients=10, sent=5)

    data = reporting.progress(campaign)

    assert (data["rate"], data["eta_seconds"], data["is_final"]) == (0.0, None, False)


def test_subscriber_growth_counts_confirmed_subscriptions_per_day():
    today = datetime.date(2026, 3, 31)

    def at(days_ago):
        return datetime.datetime.combine(
            today - datetime.timedelta(days=days_ago), datetime.time(12), tzinfo=datetime.UTC
        )

    SubscriptionFactory(confirmed_at=at(200))  # before the window: the baseline
    SubscriptionFactory(confirmed_at=at(200), status=Subscription.Status.UNSUBSCRIBED, unsubscribed_at=at(150))
    SubscriptionFactory(confirmed_at=at(10))
    SubscriptionFactory(confirmed_at=at(10))
    SubscriptionFactory(confirmed_at=at(20), status=Subscription.Status.UNSUBSCRIBED, unsubscribed_at=at(5))
    SubscriptionFactory(confirmed_at=None, consent_at=at(3), status=Subscription.Status.PENDING)  # never counts

    series = dict(reporting.subscriber_growth(days=90, today=today))

    assert len(series) == 90
    assert min(series) == today - datetime.timedelta(days=89)
    assert series[today - datetime.timedelta(days=89)] == 1
    assert series[today - datetime.timedelta(days=20)] == 2
    assert series[today - datetime.timedelta(days=10)] == 4
    assert series[today - datetime.timedelta(days=5)] == 3
    assert series[today] == 3
