"""Test data for the tracking tests: a sent campaign with deliveries that carry ESP message ids."""

import datetime

from django.utils import timezone

from campaigns.models import Campaign, Delivery
from subscribers.tests.factories import MailingListFactory, SubscriptionFactory


def make_sent_campaign(page, *, lists=None):
    """A campaign of ``page`` marked sent to ``lists`` (one new list by default)."""
    lists = lists or [MailingListFactory()]
    campaign = Campaign.objects.create(
        page=page, status=Campaign.Status.SENT, started_at=timezone.now(), finished_at=timezone.now()
    )
    campaign.lists.set(lists)
    return campaign


def make_delivery(campaign, subscriber=None, *, message_id="", email=None):
    """A delivery of ``campaign`` to ``subscriber`` (subscribed to the campaign's first list by
    default), sent an hour ago: opens and clicks now are a person's, not a scanner's seconds after
    the send (campaigns.bots)."""
    if subscriber is None:
        subscriber = SubscriptionFactory(list=campaign.lists.first()).subscriber
    return Delivery.objects.create(
        campaign=campaign,
        subscriber=subscriber,
        email=email or subscriber.email,
        name=subscriber.name,
        subscriber_uid=subscriber.uid,
        status=Delivery.Status.SENT,
        sent_at=timezone.now() - datetime.timedelta(hours=1),
        esp_message_id=message_id,
    )
