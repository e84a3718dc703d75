"""A subscriber's GDPR export includes the campaigns sent to them; erasure reaches the deliveries."""

import pytest

from campaigns import services
from campaigns.models import Delivery, DeliveryEvent
from subscribers.gdpr import erase_subscriber, export_subscriber_data
from subscribers.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(issue_page, django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory(subscriber__email="Ann@Example.com", subscriber__name="Ann Example")
    campaign = services.create_campaign(issue_page, [subscription.list])
    with django_capture_on_commit_callbacks(execute=True):
        services.start_campaign(campaign.pk)
    delivery = Delivery.objects.get(campaign=campaign)
    DeliveryEvent.objects.create(
        delivery=delivery, campaign=campaign, esp="postmark", event_type="opened",
        recipient="Ann@Example.com", payload={"Recipient": "Ann@Example.com"},
    )  # fmt: skip
    campaign.refresh_from_db()
    return subscription.subscriber, campaign


def test_export_lists_the_campaigns_sent_to_the_subscriber(delivered):
    subscriber, campaign = delivered

    [entry] = export_subscriber_data(subscriber)["deliveries"]

    assert (entry["campaign"], entry["address"], entry["status"]) == (campaign.pk, "Ann@Example.com", "sent")
    assert entry["subject"] == campaign.subject


def test_erasure_blanks_the_address_kept_on_deliveries_and_esp_events(delivered):
    subscriber, _campaign = delivered

    erase_subscriber(subscriber)

    delivery = Delivery.objects.get()
    assert "ann" not in delivery.email.lower() and delivery.email.endswith("@erased.invalid")
    assert delivery.name == ""
    assert delivery.status == "sent", "the record that the issue went out stays"
    event = DeliveryEvent.objects.get()
    assert (event.recipient, event.payload) == ("", {})
