"""GDPR export and erasure."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from subscribers.gdpr import erase_subscriber, export_subscriber_data, find_subscriber
from subscribers.importing import ImportOptions, import_csv
from subscribers.models import Subscriber, SubscriberEvent, Subscription, Suppression, email_hash
from subscribers.tests.factories import MailingListFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription():
    sub = SubscriptionFactory(
        subscriber__email="Ann@Example.com",
        subscriber__name="Ann",
        subscriber__attributes={"city": "Leeds"},
        list__slug="news",
        consent_ip="203.0.113.5",
        consent_user_agent="Firefox",
        confirm_ip="203.0.113.6",
    )
    SubscriberEvent.objects.create(
        subscriber=sub.subscriber, list=sub.list, kind="confirmed", detail={"ip": "203.0.113.6"}
    )
    return sub


def test_export_contains_subscriber_subscriptions_consent_and_events(subscription):
    data = export_subscriber_data(find_subscriber("ann@example.COM"))

    assert data["subscriber"]["email"] == "Ann@Example.com"
    assert data["subscriber"]["attributes"] == {"city": "Leeds"}
    assert data["subscriptions"][0]["list"] == "news"
    assert data["subscriptions"][0]["consent"]["ip"] == "203.0.113.5"
    assert data["subscriptions"][0]["confirmation"]["ip"] == "203.0.113.6"
    assert data["events"] == [{"at": data["events"][0]["at"], "kind": "confirmed", "list": "news",
                               "detail": {"ip": "203.0.113.6"}}]  # fmt: skip
    json.dumps(data)  # Serialisable as is.


def test_erase_removes_personal_data(subscription):
    subscriber = erase_subscriber(subscription.subscriber)

    assert "ann" not in subscriber.email.lower()
    assert subscriber.email.endswith("@erased.invalid")
    assert (subscriber.name, subscriber.attributes, subscriber.state) == ("", {}, Subscriber.State.BLOCKED)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    assert (subscription.consent_ip, subscription.consent_user_agent, subscription.confirm_ip) == (None, "", None)
    assert SubscriberEvent.objects.get(kind="confirmed").detail == {}
    assert SubscriberEvent.objects.filter(kind="erased").exists()


def test_erase_leaves_a_suppression_that_blocks_reimport(subscription):
    erase_subscriber(subscription.subscriber)

    assert Suppression.objects.filter(email_hash=email_hash("ann@example.com")).exists()
    options = ImportOptions(lists=[MailingListFactory()], column_map={"email": "email"}, mode="subscribe",
                            consent_note="x")  # fmt: skip
    result = import_csv(io.BytesIO(b"email\nANN@example.com\n"), options)
    assert result.suppressed_count == 1
    assert not Subscriber.objects.filter(email_normalised="ann@example.com").exists()


def test_gdpr_export_command_prints_json(subscription):
    out = io.StringIO()

    call_command("gdpr_export", "ann@example.com", stdout=out)

    assert json.loads(out.getvalue())["subscriber"]["name"] == "Ann"


def test_gdpr_erase_command(subscription):
    call_command("gdpr_erase", "ann@example.com", "--yes", stdout=io.StringIO())

    assert not Subscriber.objects.filter(email_normalised="ann@example.com").exists()


def test_gdpr_commands_reject_unknown_address(db):
    with pytest.raises(CommandError, match="No subscriber"):
        call_command("gdpr_export", "nobody@example.com")
