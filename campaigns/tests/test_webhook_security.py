"""Issue 8, finding 1: forged ESP events. Nobody without the operator's credentials changes anything.

Reproduced first against the settings an operator gets from the environment (no ESP configured for
sending, ``ANYMAIL_WEBHOOK_SECRET`` set): an unauthenticated Postmark ``SpamComplaint`` naming a
real Message-ID used to answer 200 and complain the subscriber, unsubscribing them everywhere.
"""

import base64
import json

import pytest

from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from newsletter_site import config
from subscribers.models import Subscriber

SECRET = "esp-user:long-random-webhook-password"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}


def complaint(message_id, email):
    return {
        "RecordType": "SpamComplaint",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "MessageID": message_id,
        "Email": email,
        "BouncedAt": "2026-03-21T10:28:50Z",
    }


def post(client, esp, payload, **extra):
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return client.post(f"/anymail/{esp}/tracking/", data=body, content_type="application/json", **extra)


@pytest.fixture
def delivery(issue_page):
    return make_delivery(make_sent_campaign(issue_page), message_id="<20260321090000.c1.d1@example.com>")


def test_an_unauthenticated_spam_complaint_changes_nothing(client, delivery):
    response = post(client, "postmark", complaint(delivery.esp_message_id, delivery.email))

    assert response.status_code in (400, 401, 403, 404)
    subscriber = Subscriber.objects.get(pk=delivery.subscriber_id)
    assert subscriber.state == Subscriber.State.ACTIVE
    assert subscriber.subscriptions.get().status == "subscribed"


def test_the_webhook_secret_is_kept_whatever_the_mailer():
    env = {"ANYMAIL_WEBHOOK_SECRET": SECRET}
    smtp = config.mailer_from_url("EMAIL_URL", "smtp://relay.example.com:587?tls=1", outbox_dir=None)

    assert config.anymail_settings(smtp, env=env)["WEBHOOK_SECRET"] == SECRET
