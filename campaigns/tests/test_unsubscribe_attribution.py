"""An unsubscribe through a campaign's own links counts in that campaign's report, once."""

import re
from email import message_from_bytes, policy

import pytest
from django.test import Client

from campaigns import services
from campaigns.models import Campaign, Delivery
from subscribers import services as subscriber_services
from subscribers.models import Subscription
from subscribers.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(issue_page, mailoutbox, django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory()
    SubscriptionFactory(list=subscription.list)
    campaign = services.create_campaign(issue_page, [subscription.list])
    with django_capture_on_commit_callbacks(execute=True):
        services.start_campaign(campaign.pk)
    message = next(m for m in mailoutbox if subscription.subscriber.email in m.to[0])
    return campaign, subscription, message


def one_click_path(message):
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    url = re.search(r"<(https://[^>]+)>", str(parsed["List-Unsubscribe"])).group(1)
    return url.replace("https://news.example.com", "")


def test_one_click_from_the_header_counts_once_in_the_campaign(sent):
    campaign, subscription, message = sent
    path = one_click_path(message)

    for _ in range(2):  # mail clients may retry: idempotent, counted once
        assert Client().post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200

    campaign.refresh_from_db()
    assert campaign.unsubscribed == 1
    delivery = Delivery.objects.get(campaign=campaign, subscriber=subscription.subscriber)
    assert delivery.unsubscribed_at is not None
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED


def test_the_visible_unsubscribe_link_counts_too(sent):
    campaign, _subscription, message = sent
    link = re.search(r"https://news\.example\.com(/newsletter/unsubscribe/[^/\s]+/)", message.body).group(1)

    Client().post(link)

    assert Campaign.objects.get(pk=campaign.pk).unsubscribed == 1


def test_leaving_from_the_preference_centre_credits_no_campaign(sent):
    campaign, subscription, _message = sent
    subscriber_services.unsubscribe(subscription.subscriber.uid, method=Subscription.UnsubscribeMethod.PREFERENCES)

    assert Campaign.objects.get(pk=campaign.pk).unsubscribed == 0
