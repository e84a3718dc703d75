"""Real-format ESP webhooks (Postmark, Mailgun) posted to anymail's tracking URLs end in our counters.

The payloads follow the ESPs' documented webhook formats as anymail's parsers read them
(anymail/webhooks/postmark.py, anymail/webhooks/mailgun.py); nothing below anymail's view is mocked.
"""

import base64
import hashlib
import hmac
import json

import pytest

from campaigns.models import DeliveryEvent
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from subscribers.models import Subscriber, SubscriberEvent, Subscription

WEBHOOK_SECRET = "anymail-user:webhook-pass"
MAILGUN_KEY = "mailgun-webhook-signing-key-for-tests"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()}


@pytest.fixture(autouse=True)
def anymail_webhooks(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACKING_WEBHOOKS": ["postmark", "mailgun"]}


@pytest.fixture
def campaign(issue_page):
    return make_sent_campaign(issue_page)


def reload(obj):
    obj.refresh_from_db()
    return obj


# --- Postmark -----------------------------------------------------------------------------------


def postmark(client, payload, auth=AUTH):
    return client.post("/anymail/postmark/tracking/", data=json.dumps(payload), content_type="application/json", **auth)


def postmark_delivery(message_id, recipient, delivered_at="2026-03-21T09:00:01.2735393-04:00"):
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "MessageID": message_id,
        "Recipient": recipient,
        "Tag": "",
        "DeliveredAt": delivered_at,
        "Details": "smtp;250 2.0.0 OK",
        "Metadata": {},
    }


def postmark_open(message_id, recipient, received_at="2026-03-21T09:05:41.2493688-04:00"):
    return {
        "RecordType": "Open",
        "MessageStream": "broadcast",
        "FirstOpen": True,
        "Client": {"Name": "Gmail", "Company": "Google", "Family": "Gmail"},
        "OS": {"Name": "unknown", "Company": "unknown", "Family": "unknown"},
        "Platform": "WebMail",
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "ReadSeconds": 5,
        "Geo": {},
        "MessageID": message_id,
        "ReceivedAt": received_at,
        "Tag": "",
        "Recipient": recipient,
        "Metadata": {},
    }


def postmark_click(message_id, recipient, link="https://example.org/story"):
    return {
        "RecordType": "Click",
        "MessageStream": "broadcast",
        "ClickLocation": "HTML",
        "Client": {"Name": "Chrome 120", "Company": "Google", "Family": "Chrome"},
        "OS": {"Name": "OS X 14", "Company": "Apple Computer, Inc.", "Family": "OS X"},
        "Platform": "Desktop",
        "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)",
        "OriginalLink": link,
        "Geo": {"CountryISOCode": "GB", "Country": "United Kingdom", "City": "London", "IP": "192.0.2.10"},
        "MessageID": message_id,
        "ReceivedAt": "2026-03-21T13:07:11.9065619Z",
        "Tag": "",
        "Recipient": recipient,
        "Metadata": {},
    }


def postmark_bounce(message_id, email, *, bounce_id=901542550, kind="HardBounce", type_code=1):
    return {
        "RecordType": "Bounce",
        "ID": bounce_id,
        "Type": kind,
        "TypeCode": type_code,
        "Name": "Hard bounce" if kind == "HardBounce" else "Soft bounce",
        "Tag": "",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "broadcast",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "news@example.com",
        "BouncedAt": "2026-03-21T09:01:50.3963933-04:00",
        "DumpAvailable": True,
        "Inactive": kind == "HardBounce",
        "CanActivate": True,
        "Subject": "Spring issue: news from the press",
        "Content": "...",
    }


def postmark_complaint(message_id, email):
    return {
        "RecordType": "SpamComplaint",
        "ID": 901542551,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Tag": "",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "broadcast",
        "Description": "",
        "Details": "Test spam complaint details",
        "Email": email,
        "From": "news@example.com",
        "BouncedAt": "2026-03-21T10:28:50.3963933-04:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "Spring issue: news from the press",
    }


def postmark_unsubscribe(message_id, recipient):
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "broadcast",
        "ChangedAt": "2026-03-21T17:17:32Z",
        "Recipient": recipient,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "",
        "Metadata": {},
    }


def test_postmark_webhook_without_the_secret_is_refused(client, campaign):
    delivery = make_delivery(campaign, message_id="883953f4-6105-42a2-a16a-77a8eac79483")

    response = postmark(client, postmark_delivery(delivery.esp_message_id, delivery.email), auth={})

    assert response.status_code == 400
    assert reload(delivery).delivered_at is None


def test_postmark_delivery_open_and_click_update_the_delivery_and_campaign(client, campaign):
    delivery = make_delivery(campaign, message_id="883953f4-6105-42a2-a16a-77a8eac79483")
    other = make_delivery(campaign, message_id="0f1c2d3e-0000-4000-8000-000000000002")

    for payload in (
        postmark_delivery(delivery.esp_message_id, delivery.email),
        postmark_delivery(other.esp_message_id, other.email),
        postmark_open(delivery.esp_message_id, delivery.email),
        postmark_click(delivery.esp_message_id, delivery.email),
    ):
        assert postmark(client, payload).status_code == 200

    delivery = reload(delivery)
    assert delivery.delivered_at.isoformat() == "2026-03-21T13:00:01.273539+00:00"
    assert (delivery.open_count, delivery.click_count) == (1, 1)
    assert delivery.first_clicked_at.isoformat() == "2026-03-21T13:07:11.906561+00:00"
    campaign = reload(campaign)
    assert (campaign.delivered, campaign.unique_opens, campaign.unique_clicks) == (2, 1, 1)
    assert DeliveryEvent.objects.get(event_type="clicked").url == "https://example.org/story"


def test_postmark_hard_bounce_suppresses_and_records_why(client, campaign):
    delivery = make_delivery(campaign, message_id="2706ee8a-737c-4285-b032-ccd317af53ed")

    assert postmark(client, postmark_bounce(delivery.esp_message_id, delivery.email)).status_code == 200

    subscriber = reload(delivery.subscriber)
    assert subscriber.state == Subscriber.State.BOUNCED
    assert "unable to deliver" in subscriber.state_reason
    assert SubscriberEvent.objects.filter(subscriber=subscriber, kind="suppressed").exists()
    assert reload(campaign).bounced == 1
    assert reload(delivery).bounce_type == "hard"


def test_postmark_soft_bounce_is_counted_not_suppressed(client, campaign):
    delivery = make_delivery(campaign, message_id="2706ee8a-737c-4285-b032-ccd317af53ee")

    postmark(client, postmark_bounce(delivery.esp_message_id, delivery.email, kind="SoftBounce", type_code=4096))

    subscriber = reload(delivery.subscriber)
    assert (subscriber.state, subscriber.soft_bounce_streak) == (Subscriber.State.ACTIVE, 1)
    assert reload(delivery).bounce_type == "soft"
    assert reload(campaign).bounced == 0


def test_postmark_soft_bounces_on_three_campaigns_in_a_row_suppress(client, issue_page):
    first = make_sent_campaign(issue_page)
    subscriber = make_delivery(first, message_id="pm-soft-0").subscriber
    deliveries = [subscriber.deliveries.get()]
    for number in (1, 2):
        campaign = make_sent_campaign(issue_page, lists=list(first.lists.all()))
        deliveries.append(make_delivery(campaign, subscriber, message_id=f"pm-soft-{number}"))

    for number, delivery in enumerate(deliveries):
        payload = postmark_bounce(delivery.esp_message_id, delivery.email, bounce_id=700 + number, kind="SoftBounce")
        assert postmark(client, payload).status_code == 200

    subscriber = reload(subscriber)
    assert subscriber.state == Subscriber.State.BOUNCED
    assert "3 consecutive campaigns" in subscriber.state_reason


def test_postmark_complaint_suppresses_and_unsubscribes(client, campaign):
    delivery = make_delivery(campaign, message_id="2706ee8a-737c-4285-b032-ccd317af53ef")

    assert postmark(client, postmark_complaint(delivery.esp_message_id, delivery.email)).status_code == 200

    subscriber = reload(delivery.subscriber)
    assert subscriber.state == Subscriber.State.COMPLAINED
    subscription = subscriber.subscriptions.get()
    assert (subscription.status, subscription.unsubscribe_method) == ("unsubscribed", "complaint")
    assert reload(campaign).complained == 1


def test_postmark_unsubscribe_leaves_the_campaigns_lists(client, campaign):
    delivery = make_delivery(campaign, message_id="a4909a96-73d7-4c49-b148-a54522d3f7ac")

    assert postmark(client, postmark_unsubscribe(delivery.esp_message_id, delivery.email)).status_code == 200

    subscription = delivery.subscriber.subscriptions.get()
    assert (subscription.status, subscription.unsubscribe_method) == (Subscription.Status.UNSUBSCRIBED, "esp")
    assert reload(campaign).unsubscribed == 1


def test_postmark_event_for_an_unknown_message_is_accepted(client, campaign):
    response = postmark(client, postmark_open("00000000-dead-beef-0000-000000000000", "stranger@example.com"))

    assert response.status_code == 200
    assert DeliveryEvent.objects.get().delivery is None
    assert reload(campaign).unique_opens == 0


def test_postmark_open_posted_twice_counts_once(client, campaign):
    delivery = make_delivery(campaign, message_id="f4830d10-9c35-4f0c-bca3-3d9b459821f8")
    payload = postmark_open(delivery.esp_message_id, delivery.email)

    assert postmark(client, payload).status_code == 200
    assert postmark(client, payload).status_code == 200

    assert reload(delivery).open_count == 1
    assert reload(campaign).unique_opens == 1
    assert DeliveryEvent.objects.count() == 1


def test_postmark_open_before_delivery_counts_delivered_once(client, campaign):
    delivery = make_delivery(campaign, message_id="f4830d10-9c35-4f0c-bca3-3d9b459821f9")

    postmark(client, postmark_open(delivery.esp_message_id, delivery.email))
    postmark(client, postmark_delivery(delivery.esp_message_id, delivery.email))

    delivery = reload(delivery)
    assert delivery.delivered_at.isoformat() == "2026-03-21T13:00:01.273539+00:00"  # the delivery's own, earlier time
    assert delivery.first_opened_at.isoformat() == "2026-03-21T13:05:41.249368+00:00"
    assert reload(campaign).delivered == 1


# --- Mailgun ------------------------------------------------------------------------------------


def mailgun(client, event_data, *, token="5f1e0c9a7b3d4e2f8a6c1b0d9e8f7a6b5c4d3e2f1a0b9c8d7e", key=MAILGUN_KEY):
    timestamp = str(int(event_data["timestamp"]))
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    payload = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}
    return client.post("/anymail/mailgun/tracking/", data=json.dumps(payload), content_type="application/json", **AUTH)


def mailgun_event(event, recipient, message_id, *, timestamp=1774083600.153125, **extra):
    data = {
        "id": "hTWCTD81RtiDN-" + event,
        "event": event,
        "timestamp": timestamp,
        "log-level": "info",
        "recipient": recipient,
        "recipient-domain": recipient.rpartition("@")[2],
        "tags": [],
        "campaigns": [],
        "user-variables": {},
        "flags": {"is-routed": False, "is-authenticated": True, "is-system-test": False, "is-test-mode": False},
        "envelope": {"sender": "news@mg.example.com", "transport": "smtp", "targets": recipient},
        "message": {
            "headers": {
                "to": recipient,
                "message-id": message_id,
                "from": "The Broadsheet <news@mg.example.com>",
                "subject": "Spring issue: news from the press",
            },
            "attachments": [],
            "size": 20480,
        },
    }
    data.update(extra)
    return data


def mailgun_delivered(recipient, message_id, **extra):
    status = {"tls": True, "mx-host": "mx.example.com", "attempt-no": 1, "description": "", "code": 250}
    return mailgun_event(
        "delivered", recipient, message_id, **{"delivery-status": {**status, "message": "OK"}}, **extra
    )


def mailgun_failed(recipient, message_id, *, severity, reason, code, message, **extra):
    return mailgun_event(
        "failed",
        recipient,
        message_id,
        severity=severity,
        reason=reason,
        **{
            "log-level": "error" if severity == "permanent" else "warn",
            "delivery-status": {"attempt-no": 1, "description": "", "code": code, "message": message},
        },
        **extra,
    )


# Mailgun's API answers "<id>" (what the engine stores); its webhooks send the bare id in the header.
MAILGUN_BATCH_ID = "20260321090000.1.DF5966851B4BAA99@mg.example.com"


@pytest.fixture
def mailgun_batch(campaign):
    return [make_delivery(campaign, message_id=f"<{MAILGUN_BATCH_ID}>") for _ in range(2)]


def test_mailgun_webhook_with_a_wrong_signature_is_refused(client, mailgun_batch):
    delivery = mailgun_batch[0]

    response = mailgun(client, mailgun_delivered(delivery.email, MAILGUN_BATCH_ID), key="not-the-key")

    assert response.status_code == 400
    assert reload(delivery).delivered_at is None


def test_mailgun_events_update_the_recipient_of_a_batch(client, campaign, mailgun_batch):
    first, second = mailgun_batch

    responses = [
        mailgun(client, mailgun_delivered(first.email, MAILGUN_BATCH_ID), token="t-delivered-1"),
        mailgun(client, mailgun_delivered(second.email, MAILGUN_BATCH_ID), token="t-delivered-2"),
        mailgun(client, mailgun_event("opened", second.email, MAILGUN_BATCH_ID), token="t-opened-2"),
        mailgun(
            client,
            mailgun_event("clicked", second.email, MAILGUN_BATCH_ID, url="https://example.org/more"),
            token="t-clicked-2",
        ),
    ]

    assert [response.status_code for response in responses] == [200, 200, 200, 200]
    first, second = reload(first), reload(second)
    assert (first.open_count, second.open_count, second.click_count) == (0, 1, 1)
    assert second.delivered_at.isoformat() == "2026-03-21T09:00:00.153125+00:00"
    campaign = reload(campaign)
    assert (campaign.delivered, campaign.unique_opens, campaign.unique_clicks) == (2, 1, 1)
    assert DeliveryEvent.objects.get(event_type="clicked").url == "https://example.org/more"


def test_mailgun_permanent_failure_suppresses(client, mailgun_batch):
    delivery = mailgun_batch[0]
    event = mailgun_failed(
        delivery.email,
        MAILGUN_BATCH_ID,
        severity="permanent",
        reason="bounce",
        code=550,
        message="5.1.1 The email account that you tried to reach does not exist.",
    )

    assert mailgun(client, event).status_code == 200

    subscriber = reload(delivery.subscriber)
    assert subscriber.state == Subscriber.State.BOUNCED
    assert "does not exist" in subscriber.state_reason
    assert reload(mailgun_batch[1].subscriber).state == Subscriber.State.ACTIVE


def test_mailgun_temporary_failure_is_a_soft_bounce(client, mailgun_batch):
    delivery = mailgun_batch[0]
    event = mailgun_failed(
        delivery.email, MAILGUN_BATCH_ID, severity="temporary", reason="generic", code=452, message="Mailbox full"
    )

    assert mailgun(client, event).status_code == 200

    subscriber = reload(delivery.subscriber)
    assert (subscriber.state, subscriber.soft_bounce_streak) == (Subscriber.State.ACTIVE, 1)
    assert reload(delivery).bounce_type == "soft"


def test_mailgun_complaint_suppresses_and_unsubscribes(client, campaign, mailgun_batch):
    delivery = mailgun_batch[0]

    assert mailgun(client, mailgun_event("complained", delivery.email, MAILGUN_BATCH_ID)).status_code == 200

    subscriber = reload(delivery.subscriber)
    assert subscriber.state == Subscriber.State.COMPLAINED
    assert subscriber.subscriptions.get().unsubscribe_method == "complaint"
    assert reload(campaign).complained == 1


def test_mailgun_unsubscribe_is_recorded_with_method_esp(client, campaign, mailgun_batch):
    delivery = mailgun_batch[1]

    assert mailgun(client, mailgun_event("unsubscribed", delivery.email, MAILGUN_BATCH_ID)).status_code == 200

    subscription = delivery.subscriber.subscriptions.get()
    assert (subscription.status, subscription.unsubscribe_method) == ("unsubscribed", "esp")
    assert reload(campaign).unsubscribed == 1


def test_mailgun_event_posted_twice_counts_once(client, campaign, mailgun_batch):
    delivery = mailgun_batch[0]
    event = mailgun_event("opened", delivery.email, MAILGUN_BATCH_ID)

    assert mailgun(client, event, token="same-token").status_code == 200
    assert mailgun(client, event, token="same-token").status_code == 200

    assert reload(delivery).open_count == 1
    assert reload(campaign).unique_opens == 1


def test_mailgun_event_for_an_unknown_message_is_accepted(client, campaign):
    event = mailgun_delivered("stranger@example.com", "20260321090000.9.UNKNOWN@mg.example.com")

    assert mailgun(client, event).status_code == 200
    assert DeliveryEvent.objects.get().delivery is None
    assert reload(campaign).delivered == 0
