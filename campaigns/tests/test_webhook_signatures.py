"""The ESPs' own webhook signatures, verified on top of the basic-auth secret.

Real keys are made here (cryptography): Amazon SNS signs with an RSA certificate it publishes,
SendGrid with an ECDSA key whose public half the operator copies. Nothing below the HTTP fetch of
the SNS certificate is mocked.
"""

import base64
import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from campaigns import webhooks
from campaigns.models import DeliveryEvent
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from subscribers.models import Subscriber

SECRET = "esp-user:long-random-webhook-password"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"


@pytest.fixture
def delivery(issue_page):
    return make_delivery(make_sent_campaign(issue_page), message_id="0102018e-ses-message-id")


# --- Amazon SES over SNS -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sns_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def ses_enabled(settings, sns_key, monkeypatch):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACKING_WEBHOOKS": ["amazon_ses"], "SES_SNS_TOPIC_ARNS": [TOPIC]}
    fetched = []
    monkeypatch.setattr(webhooks, "fetch_certificate", lambda url: fetched.append(url) or sns_key[1])
    monkeypatch.setattr(webhooks, "_certificates", {})
    return fetched


def sns_notification(key, ses_event, *, message_id="sns-1", cert_url=CERT_URL, topic=TOPIC):
    message = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-03-21T09:01:50.000Z",
        "SignatureVersion": "2",
        "SigningCertURL": cert_url,
    }
    signed = "".join(f"{name}\n{message[name]}\n" for name in ("Message", "MessageId", "Timestamp", "TopicArn", "Type"))
    message["Signature"] = base64.b64encode(key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return message


def ses_complaint(delivery):
    return {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": delivery.email}], "complaintFeedbackType": "abuse"},
        "mail": {"messageId": delivery.esp_message_id, "destination": [delivery.email], "headers": []},
    }


def post_sns(client, message, **auth):
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": message["Type"], "HTTP_X_AMZ_SNS_MESSAGE_ID": message["MessageId"]}
    return client.post(
        "/anymail/amazon_ses/tracking/", data=json.dumps(message), content_type="text/plain", **headers, **auth
    )


def test_a_signed_ses_complaint_is_applied(client, delivery, sns_key, ses_enabled):
    response = post_sns(client, sns_notification(sns_key[0], ses_complaint(delivery)), **AUTH)

    assert response.status_code == 200
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.COMPLAINED
    assert ses_enabled == [CERT_URL]


def test_sns_asks_for_basic_auth_with_a_401(client, delivery, sns_key, ses_enabled):
    response = post_sns(client, sns_notification(sns_key[0], ses_complaint(delivery)))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert ses_enabled == []  # no certificate fetched for an unauthenticated request


def test_a_forged_ses_signature_is_refused(client, delivery, ses_enabled):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = post_sns(client, sns_notification(other_key, ses_complaint(delivery)), **AUTH)

    assert response.status_code == 400
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.ACTIVE


def test_a_certificate_outside_amazon_sns_is_never_fetched(client, delivery, sns_key, ses_enabled):
    message = sns_notification(sns_key[0], ses_complaint(delivery), cert_url="https://evil.example.com/cert.pem")

    assert post_sns(client, message, **AUTH).status_code == 400
    assert ses_enabled == []


def test_a_tampered_ses_message_is_refused(client, delivery, sns_key, ses_enabled):
    message = sns_notification(sns_key[0], ses_complaint(delivery))
    message["Message"] = message["Message"].replace("abuse", "fraud")

    assert post_sns(client, message, **AUTH).status_code == 400


def test_a_signed_complaint_from_another_sns_topic_is_refused(client, delivery, sns_key, ses_enabled):
    """Genuinely signed by SNS, but published to a stranger's topic that was subscribed to the URL."""
    foreign = "arn:aws:sns:eu-west-1:999999999999:ses-events"
    message = sns_notification(sns_key[0], ses_complaint(delivery), topic=foreign)

    response = post_sns(client, message, **AUTH)

    assert response.status_code == 403
    assert "SES_SNS_TOPIC_ARNS" in response.content.decode()
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.ACTIVE
    assert ses_enabled == []  # refused before any certificate is fetched


def test_a_subscription_to_another_sns_topic_is_never_confirmed(client, sns_key, ses_enabled, monkeypatch, db):
    confirmed = []
    monkeypatch.setattr(
        webhooks.AmazonSESTrackingWebhookView,
        "auto_confirm_sns_subscription",
        lambda view, message: confirmed.append(1),
    )
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "sns-2",
        "Token": "token",
        "TopicArn": "arn:aws:sns:eu-west-1:999999999999:stranger",
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "2026-03-21T09:01:50.000Z",
        "SignatureVersion": "2",
        "SigningCertURL": CERT_URL,
        "Signature": "",
    }

    assert post_sns(client, message, **AUTH).status_code == 403
    assert confirmed == []


def test_without_an_sns_topic_allow_list_nothing_is_accepted(client, delivery, sns_key, ses_enabled, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "SES_SNS_TOPIC_ARNS": []}

    response = post_sns(client, sns_notification(sns_key[0], ses_complaint(delivery)), **AUTH)

    assert response.status_code == 403
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.ACTIVE


def test_a_transient_ses_bounce_is_soft(client, delivery, sns_key, ses_enabled):
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Transient",
            "bounceSubType": "MailboxFull",
            "bouncedRecipients": [{"emailAddress": delivery.email, "diagnosticCode": "452 4.2.2 mailbox full"}],
        },
        "mail": {"messageId": delivery.esp_message_id, "destination": [delivery.email], "headers": []},
    }

    assert post_sns(client, sns_notification(sns_key[0], bounce), **AUTH).status_code == 200

    subscriber = Subscriber.objects.get(pk=delivery.subscriber_id)
    assert (subscriber.state, subscriber.soft_bounce_streak) == (Subscriber.State.ACTIVE, 1)


# --- SendGrid signed event webhook ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sendgrid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def sendgrid_enabled(settings, sendgrid_key):
    public = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": SECRET,
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": base64.b64encode(public).decode(),
    }
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACKING_WEBHOOKS": ["sendgrid"]}


def sendgrid_post(client, key, events, *, timestamp="1774083600", tamper=False):
    body = json.dumps(events).encode()
    signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    if tamper:
        body = body.replace(b"spamreport", b"delivered")
    return client.post(
        "/anymail/sendgrid/tracking/",
        data=body,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=signature,
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
        **AUTH,
    )


def sendgrid_spamreport(delivery):
    return [
        {
            "email": delivery.email,
            "timestamp": 1774083600,
            "event": "spamreport",
            "sg_event_id": "sg-event-1",
            "sg_message_id": f"{delivery.esp_message_id}.filter0001",
            "smtp-id": f"<{delivery.esp_message_id}>",
        }
    ]


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_a_signed_sendgrid_event_is_applied(client, sendgrid_key, sendgrid_enabled, issue_page):
    delivery = make_delivery(make_sent_campaign(issue_page), message_id="sg-message-id")

    assert sendgrid_post(client, sendgrid_key, sendgrid_spamreport(delivery)).status_code == 200

    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.COMPLAINED


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_a_sendgrid_batch_is_counted_once_however_often_it_is_posted(
    client, sendgrid_key, sendgrid_enabled, issue_page
):
    """One POST carries many events (recorded together, campaigns.tracking.record_tracking_events);
    SendGrid posts it again when it saw no 200 in time."""
    campaign = make_sent_campaign(issue_page)
    deliveries = [make_delivery(campaign, message_id=f"sg-{n}") for n in range(3)]
    events = [
        {"email": item.email, "timestamp": 1774083600 + n, "event": "delivered", "sg_event_id": f"ev-d{n}",
         "anymail_id": item.esp_message_id}
        for n, item in enumerate(deliveries)
    ]  # fmt: skip
    events.append(
        {"email": deliveries[0].email, "timestamp": 1774087200, "event": "open", "sg_event_id": "ev-o0",
         "anymail_id": deliveries[0].esp_message_id, "useragent": "Mozilla/5.0 (Macintosh)"}
    )  # fmt: skip

    for _ in range(2):
        assert sendgrid_post(client, sendgrid_key, events).status_code == 200

    campaign.refresh_from_db()
    assert (campaign.delivered, campaign.unique_opens) == (3, 1)
    assert DeliveryEvent.objects.filter(campaign=campaign).count() == 4


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_an_unsigned_or_tampered_sendgrid_event_is_refused(client, sendgrid_key, sendgrid_enabled, issue_page):
    delivery = make_delivery(make_sent_campaign(issue_page), message_id="sg-message-id")
    unsigned = client.post(
        "/anymail/sendgrid/tracking/",
        data=json.dumps(sendgrid_spamreport(delivery)),
        content_type="application/json",
        **AUTH,
    )

    assert unsigned.status_code == 400
    assert sendgrid_post(client, sendgrid_key, sendgrid_spamreport(delivery), tamper=True).status_code == 400
    assert Subscriber.objects.get(pk=delivery.subscriber_id).state == Subscriber.State.ACTIVE
