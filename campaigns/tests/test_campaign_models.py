"""Campaign, Delivery and DeliveryEvent: constraints and querysets."""

import datetime

import pytest
from django.db import IntegrityError
from django.utils import timezone

from campaigns.models import Campaign, Delivery, DeliveryEvent
from subscribers.tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(issue_page):
    return Campaign.objects.create(page=issue_page, from_email="news@example.com")


def make_delivery(campaign, subscriber=None, **fields):
    subscriber = subscriber or SubscriberFactory()
    return Delivery.objects.create(
        campaign=campaign, subscriber=subscriber, email=subscriber.email, subscriber_uid=subscriber.uid, **fields
    )


def test_one_delivery_per_campaign_and_subscriber(campaign):
    subscriber = SubscriberFactory()
    make_delivery(campaign, subscriber)

    with pytest.raises(IntegrityError):
        make_delivery(campaign, subscriber)


def test_claimable_excludes_claimed_waiting_and_settled_rows(campaign):
    ready = make_delivery(campaign)
    make_delivery(campaign, claimed_by="w1", claimed_at=timezone.now())
    make_delivery(campaign, retry_at=timezone.now() + datetime.timedelta(minutes=5))
    due = make_delivery(campaign, retry_at=timezone.now() - datetime.timedelta(minutes=5))
    make_delivery(campaign, status=Delivery.Status.SENT)

    assert set(Delivery.objects.claimable()) == {ready, due}


def test_unfinished_is_queued_or_in_flight(campaign):
    queued = make_delivery(campaign)
    sending = make_delivery(campaign, status=Delivery.Status.SENDING)
    make_delivery(campaign, status=Delivery.Status.FAILED)
    make_delivery(campaign, status=Delivery.Status.SKIPPED)

    assert set(Delivery.objects.unfinished()) == {queued, sending}


def test_due_scheduled_campaigns(campaign, issue_page):
    campaign.status, campaign.scheduled_at = Campaign.Status.SCHEDULED, timezone.now() - datetime.timedelta(minutes=1)
    campaign.save()
    Campaign.objects.create(
        page=issue_page, status=Campaign.Status.SCHEDULED, scheduled_at=timezone.now() + datetime.timedelta(hours=1)
    )

    assert list(Campaign.objects.due()) == [campaign]


def test_remaining_is_what_is_not_settled(campaign):
    campaign.recipients, campaign.sent, campaign.failed, campaign.skipped = 10, 6, 1, 1
    assert campaign.remaining == 2


def test_delivery_event_ids_are_unique_but_optional(campaign):
    DeliveryEvent.objects.create(esp="mailgun", event_type="delivered", event_id="evt-1")
    DeliveryEvent.objects.create(esp="mailgun", event_type="opened", event_id=None)
    DeliveryEvent.objects.create(esp="mailgun", event_type="opened", event_id=None)

    with pytest.raises(IntegrityError):
        DeliveryEvent.objects.create(esp="mailgun", event_type="delivered", event_id="evt-1")


def test_erasing_a_subscriber_keeps_the_delivery_record(campaign):
    delivery = make_delivery(campaign, status=Delivery.Status.SENT)

    delivery.subscriber.delete()

    delivery.refresh_from_db()
    assert delivery.subscriber is None and delivery.status == "sent"
