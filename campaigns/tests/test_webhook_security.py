"""Issue 8, finding 1: forged ESP events. Nobody without the operator's credentials changes anything.

Reproduced first against the settings an operator gets from the environment (no ESP configured for
sending, ``ANYMAIL_WEBHOOK_SECRET`` set): an unauthenticated Postmark ``SpamComplaint`` naming a
real Message-ID used to answer 200 and complain the subscriber, unsubscribing them everywhere.
"""

import base64
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction as django_transaction
from django.utils import timezone

from campaigns import tracking, webhooks
from campaigns.models import DeliveryEvent
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from campaigns.tracking import TrackingEvent, record_tracking_event
from newsletter_site import config
from subscribers.gdpr import erase_subscriber
from subscribers.models import Subscriber
from subscribers.tests.factories import SubscriptionFactory

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


# --- Routing: only the ESPs the operator enabled ----------------------------------------------


@pytest.fixture
def postmark_enabled(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACKING_WEBHOOKS": ["postmark"]}


@pytest.mark.parametrize("esp", ["postmark", "mailgun", "sendgrid", "amazon_ses", "mandrill", "nosuchesp"])
def test_with_no_esp_configured_every_webhook_is_a_404(client, db, esp, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}

    assert post(client, esp, {"RecordType": "Delivery"}, **AUTH).status_code == 404


def test_an_esp_that_is_not_configured_is_a_404(client, delivery, postmark_enabled):
    assert post(client, "mailgun", {"signature": {}}, **AUTH).status_code == 404
    assert client.post("/anymail/postmark/inbound/", data="{}", content_type="application/json").status_code == 404


def test_a_wrong_password_changes_nothing(client, delivery, postmark_enabled):
    wrong = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"esp-user:guess").decode()}

    response = post(client, "postmark", complaint(delivery.esp_message_id, delivery.email), **wrong)

    assert response.status_code == 400
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.ACTIVE


def test_an_enabled_webhook_without_a_secret_refuses_everything(client, delivery, settings):
    settings.ANYMAIL = {}
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACKING_WEBHOOKS": ["postmark"]}

    response = post(client, "postmark", complaint(delivery.esp_message_id, delivery.email))

    assert response.status_code == 403
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.ACTIVE


def test_the_authenticated_complaint_still_works(client, delivery, postmark_enabled):
    response = post(client, "postmark", complaint(delivery.esp_message_id, delivery.email), **AUTH)

    assert response.status_code == 200
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.COMPLAINED


# --- Settings: the environment decides, a system check refuses to run without a secret -------


def test_tracking_webhooks_default_to_the_email_url_esp_and_can_be_set_for_smtp_relays():
    postmark = config.mailer_from_url("EMAIL_URL", "anymail://postmark", outbox_dir=None)
    smtp = config.mailer_from_url("EMAIL_URL", "smtp://smtp.postmarkapp.com:587?tls=1", outbox_dir=None)

    assert config.tracking_webhooks_from_env("TRACKING_WEBHOOKS", postmark, env={}) == ["postmark"]
    assert config.tracking_webhooks_from_env("TRACKING_WEBHOOKS", smtp, env={}) == []
    env = {"TRACKING_WEBHOOKS": "postmark, mailgun"}
    assert config.tracking_webhooks_from_env("TRACKING_WEBHOOKS", smtp, env=env) == ["postmark", "mailgun"]
    assert config.tracking_webhooks_from_env("TRACKING_WEBHOOKS", postmark, env={"TRACKING_WEBHOOKS": "none"}) == []


def test_an_unknown_tracking_esp_names_the_variable():
    smtp = config.mailer_from_url("EMAIL_URL", "smtp://relay.example.com", outbox_dir=None)

    with pytest.raises(ImproperlyConfigured, match=r"^TRACKING_WEBHOOKS="):
        config.tracking_webhooks_from_env("TRACKING_WEBHOOKS", smtp, env={"TRACKING_WEBHOOKS": "test"})


def test_signature_keys_come_from_the_environment_for_each_tracking_esp():
    smtp = config.mailer_from_url("EMAIL_URL", "smtp://relay.example.com", outbox_dir=None)
    env = {"MAILGUN_WEBHOOK_SIGNING_KEY": "mg-key", "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": "sg-key"}

    anymail = config.anymail_settings(smtp, env, tracking=["mailgun", "sendgrid"])

    assert anymail == {"MAILGUN_WEBHOOK_SIGNING_KEY": "mg-key", "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": "sg-key"}


def check_ids(settings, esps, anymail):
    settings.ANYMAIL = anymail
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACKING_WEBHOOKS": esps}
    return [(error.id, error.msg) for error in webhooks.check_webhook_settings()]


def test_system_check_refuses_enabled_webhooks_without_the_secret(settings):
    errors = check_ids(settings, ["postmark"], {})

    assert [error_id for error_id, _ in errors] == ["broadsheet.E101"]
    assert "ANYMAIL_WEBHOOK_SECRET" in errors[0][1]
    assert check_ids(settings, ["postmark"], {"WEBHOOK_SECRET": SECRET}) == []
    assert check_ids(settings, [], {}) == []


def test_system_check_names_the_missing_signature_key(settings):
    errors = check_ids(settings, ["mailgun"], {"WEBHOOK_SECRET": SECRET})

    assert [error_id for error_id, _ in errors] == ["broadsheet.E102"]
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in errors[0][1]


def test_system_check_refuses_ses_tracking_without_the_sns_topic_allow_list(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "SES_SNS_TOPIC_ARNS": []}
    errors = check_ids(settings, ["amazon_ses"], {"WEBHOOK_SECRET": SECRET})

    assert [error_id for error_id, _ in errors] == ["broadsheet.E104"]
    assert "SES_SNS_TOPIC_ARNS" in errors[0][1]

    settings.BROADSHEET = {**settings.BROADSHEET, "SES_SNS_TOPIC_ARNS": ["ses-events", "arn:aws:sns:eu-west-1:1:x"]}
    errors = check_ids(settings, ["amazon_ses"], {"WEBHOOK_SECRET": SECRET})
    assert [error_id for error_id, _ in errors] == ["broadsheet.E105", "broadsheet.E105"]

    topics = ["arn:aws:sns:eu-west-1:123456789012:ses-events", "arn:aws-cn:sns:cn-north-1:123456789012:events.fifo"]
    settings.BROADSHEET = {**settings.BROADSHEET, "SES_SNS_TOPIC_ARNS": topics}
    assert check_ids(settings, ["amazon_ses"], {"WEBHOOK_SECRET": SECRET}) == []
    assert check_ids(settings, ["postmark"], {"WEBHOOK_SECRET": SECRET}) == []  # only SES needs it


def production_env(tmp_path, **extra):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "newsletter_site.settings.production",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "news.example.com",
        "BASE_URL": "https://news.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "EMAIL_URL": "anymail://postmark",
        "POSTMARK_SERVER_TOKEN": "token",
        **extra,
    }
    env.pop("TRACKING_WEBHOOKS", None)
    if "ANYMAIL_WEBHOOK_SECRET" not in extra:
        env.pop("ANYMAIL_WEBHOOK_SECRET", None)
    return env


def run(command, env):
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=settings_dir(), check=False)


def test_production_settings_fail_the_check_without_a_secret(tmp_path):
    result = run([sys.executable, "manage.py", "check"], production_env(tmp_path))

    assert result.returncode != 0
    assert "broadsheet.E101" in result.stderr and "ANYMAIL_WEBHOOK_SECRET" in result.stderr


def test_the_production_wsgi_application_refuses_to_start_without_a_secret(tmp_path):
    load_wsgi = [sys.executable, "-c", "import newsletter_site.wsgi"]

    refused = run(load_wsgi, production_env(tmp_path))
    started = run(load_wsgi, production_env(tmp_path, ANYMAIL_WEBHOOK_SECRET=SECRET))

    assert refused.returncode != 0
    assert "ANYMAIL_WEBHOOK_SECRET" in refused.stderr.splitlines()[-1]
    assert started.returncode == 0, started.stderr


def test_production_with_ses_tracking_fails_the_check_until_the_sns_topics_are_listed(tmp_path):
    ses = {"EMAIL_URL": "anymail://amazon_ses", "ANYMAIL_WEBHOOK_SECRET": SECRET, "AWS_DEFAULT_REGION": "eu-west-1"}
    topic = "arn:aws:sns:eu-west-1:123456789012:ses-events"

    refused = run([sys.executable, "manage.py", "check"], production_env(tmp_path, **ses))
    started = run([sys.executable, "manage.py", "check"], production_env(tmp_path, **ses, SES_SNS_TOPIC_ARNS=topic))

    assert refused.returncode != 0
    assert "broadsheet.E104" in refused.stderr and "SES_SNS_TOPIC_ARNS" in refused.stderr
    assert started.returncode == 0, started.stderr


def settings_dir():
    return Path(__file__).resolve().parents[2]


# --- Bodies that are not what an ESP sends: a clear 4xx, never a 500 -----------------------------


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe not utf-8", b"[1, 2, 3]", b'"a string"', b"null", b"{not json", b""],
)
def test_malformed_bodies_are_a_400(client, delivery, postmark_enabled, body):
    response = post(client, "postmark", body, **AUTH)

    assert response.status_code == 400


def test_a_huge_body_is_a_413(client, delivery, postmark_enabled):
    response = post(client, "postmark", b"{" + b" " * (webhooks.MAX_BODY_BYTES + 1) + b"}", **AUTH)

    assert response.status_code == 413


def test_get_is_not_allowed_and_head_answers(client, delivery, postmark_enabled):
    assert client.get("/anymail/postmark/tracking/").status_code == 405
    assert client.head("/anymail/postmark/tracking/").status_code == 200


# --- Matching: message id AND recipient; transactional bounces; unmatched events kept small ------


def bounce(message_id, email, *, bounce_id=7, kind="HardBounce"):
    return {
        "RecordType": "Bounce",
        "ID": bounce_id,
        "Type": kind,
        "TypeCode": 1,
        "MessageID": message_id,
        "Email": email,
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 unknown user",
        "BouncedAt": "2026-03-21T09:01:50Z",
        "Content": "x" * 50_000,  # Postmark can attach the whole bounced message
    }


def test_a_real_message_id_with_another_recipient_does_not_touch_that_delivery(client, delivery, postmark_enabled):
    response = post(client, "postmark", complaint(delivery.esp_message_id, "someone-else@example.org"), **AUTH)

    assert response.status_code == 200
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.ACTIVE
    delivery.refresh_from_db()
    assert delivery.complained_at is None


def test_a_bounced_confirmation_email_suppresses_the_known_address(client, db, postmark_enabled):
    subscriber = SubscriptionFactory(status="pending").subscriber

    response = post(client, "postmark", bounce("pm-transactional-1", subscriber.email.upper()), **AUTH)

    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.state == Subscriber.State.BOUNCED
    assert "unable to deliver" in subscriber.state_reason


def test_an_unmatched_event_keeps_only_an_excerpt(client, db, postmark_enabled):
    post(client, "postmark", bounce("unknown-id", "stranger@example.org"), **AUTH)

    stored = DeliveryEvent.objects.get()
    assert stored.delivery is None
    assert set(stored.payload) == {"excerpt", "truncated"}
    assert len(stored.payload["excerpt"]) <= tracking.EXCERPT_CHARS
    assert stored.payload["truncated"] is True


def test_unmatched_events_are_capped_and_pruned(db, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "UNMATCHED_EVENTS_MAX": 3, "UNMATCHED_EVENTS_DAYS": 30}
    old = DeliveryEvent.objects.create(esp="postmark", event_type="opened", event_id="old")
    DeliveryEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))

    for number in range(6):
        event = TrackingEvent(esp="postmark", event_type="opened", message_id=f"m{number}", recipient="x@example.org")
        with django_transaction.atomic():
            assert record_tracking_event(event) == tracking.UNMATCHED
        tracking.prune_unmatched_events()

    assert list(DeliveryEvent.objects.order_by("pk").values_list("message_id", flat=True)) == ["m3", "m4", "m5"]


def test_erasure_blanks_unmatched_events_for_the_address(client, db, postmark_enabled):
    subscriber = SubscriptionFactory().subscriber
    post(client, "postmark", {**complaint("unknown-id", subscriber.email), "RecordType": "Open"}, **AUTH)
    assert DeliveryEvent.objects.filter(recipient=subscriber.email).exists()

    erase_subscriber(subscriber)

    stored = DeliveryEvent.objects.get()
    assert (stored.recipient, stored.payload) == ("", {})
