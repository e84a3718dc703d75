"""Hostile requests against every ESP tracking webhook (issue 8: "prove the boundary").

Hypothesis posts arbitrary bodies (bytes, text, JSON of any shape, ESP-shaped events naming real
Message-IDs and addresses) with arbitrary credentials to every webhook URL of ``mail.esps``, all
ESPs enabled at once. Properties:

- never a 5xx, whatever the body, headers or credentials;
- without the basic-auth secret, or without the ESP's own signature where it signs, the answer is
  a 4xx and nothing in the database changes (events, subscribers, subscriptions, deliveries);
- with valid credentials a malformed body is still never a 5xx.

Each example's request count is ``EXAMPLES`` per test (run with ``--hypothesis-show-statistics``
to see them).
"""

import base64
import hashlib
import hmac
import json
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import Delivery, DeliveryEvent
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from mail.esps import ESPS
from subscribers.models import Subscriber, Subscription

# anymail warns on every SendGrid view that it no longer supports SendGrid officially.
pytestmark = pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")

EXAMPLES = 150
SECRET = "hostile-user:a-long-random-webhook-password"
VALID_AUTH = "Basic " + base64.b64encode(SECRET.encode()).decode()
MAILGUN_KEY = "mailgun-signing-key-for-the-hostile-tests"
WEBHOOK_ESPS = sorted(name for name, esp in ESPS.items() if esp.tracking_view)
SIGNED_ESPS = sorted(name for name in WEBHOOK_ESPS if ESPS[name].signature_setting or name == "amazon_ses")
BASIC_AUTH_ONLY_ESPS = sorted(set(WEBHOOK_ESPS) - set(SIGNED_ESPS))
MESSAGE_ID = "<20260321090000.c1.0123456789abcdef.d1@example.com>"

hypothesis_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
nasty_text = st.sampled_from(
    ["", "\x00", "\r\nBcc: x@example.org", "‮evil", "a" * 5000, "9" * 40, "-1", "1e309", "NaN", "😀", "<>", "@"]
) | st.text(max_size=60)
timestamps = st.sampled_from(["2026-03-21T09:01:50Z", "0000-00-00", "9999-99-99T99:99:99", "", "yesterday"]) | (
    st.integers(min_value=-(2**63), max_value=2**63).map(str)
)


@st.composite
def esp_events(draw, email):
    """Dicts that look like one ESP's events or another's, naming the real Message-ID and address."""
    message_id = draw(st.sampled_from([MESSAGE_ID, MESSAGE_ID.strip("<>")]) | nasty_text)
    address = draw(st.sampled_from([email, email.upper()]) | nasty_text)
    kind = draw(
        st.sampled_from(
            ["Bounce", "SpamComplaint", "SubscriptionChange", "Delivery", "Open", "Click", "bounce", "spamreport"]
        )
        | nasty_text
    )
    event = {
        "RecordType": kind,
        "Type": draw(st.sampled_from(["HardBounce", "SoftBounce", "SpamComplaint", "Notification"]) | nasty_text),
        "MessageID": message_id,
        "Email": address,
        "Recipient": address,
        "BouncedAt": draw(timestamps),
        "event": kind.lower(),
        "email": address,
        "timestamp": draw(timestamps | st.integers()),
        "sg_event_id": draw(nasty_text),
        "smtp-id": message_id,
        "event-data": {"event": kind.lower(), "recipient": address, "message": {"headers": {"message-id": message_id}}},
        "msys": {"message_event": {"type": kind.lower(), "rcpt_to": address, "message_id": message_id}},
        "type": f"email.{kind.lower()}",
        "data": {"email_id": message_id, "to": [address]},
        "MessageId": draw(nasty_text),
        "Message": draw(nasty_text | json_values.map(json.dumps)),
    }
    keys = draw(st.sets(st.sampled_from(sorted(event)), max_size=len(event)))
    extra = draw(st.dictionaries(st.text(max_size=12), json_values, max_size=3))
    return {**{key: event[key] for key in keys}, **extra}


def bodies(email):
    event = esp_events(email)
    return st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(lambda text: text.encode("utf-8", "surrogatepass")),
        json_values.map(lambda value: json.dumps(value).encode()),
        event.map(lambda value: json.dumps(value).encode()),
        st.lists(event, min_size=1, max_size=3).map(lambda value: json.dumps(value).encode()),
        st.sampled_from([b"\xff\xfe\x00", b"[" * 5000, b'{"a":' * 3000, b"null", b"\xef\xbb\xbf{}"]),
    )


content_types = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
bad_auth = st.sampled_from(
    [
        None,
        "Basic " + base64.b64encode(b"hostile-user:guess").decode(),
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer " + SECRET,
        SECRET,
        "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
    ]
)


@pytest.fixture
def target(settings, issue_page):
    """Every ESP's webhook enabled, with its keys; one sent delivery whose Message-ID the attacker knows."""
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        # A real ECDSA P-256 public key (SendGrid's format: base64 DER); its private half is thrown away.
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": base64.b64encode(
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).decode(),
        "RESEND_SIGNING_SECRET": "whsec_" + base64.b64encode(b"resend-signing-secret-bytes").decode(),
        "MAILERSEND_SIGNING_SECRET": "mailersend-signing-secret",
    }
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACKING_WEBHOOKS": WEBHOOK_ESPS}
    campaign = make_sent_campaign(issue_page)
    return make_delivery(campaign, message_id=MESSAGE_ID)


def state():
    """Everything a forged event could change."""
    return (
        list(DeliveryEvent.objects.values_list("pk", flat=True)),
        list(Subscriber.objects.values_list("pk", "state", "soft_bounce_streak")),
        list(Subscription.objects.values_list("pk", "status")),
        list(Delivery.objects.values_list("pk", "delivered_at", "bounce_type", "open_count", "complained_at")),
    )


def post(client, esp, body, content_type, authorization, extra_headers=None):
    headers = dict(extra_headers or {})
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    return client.generic("POST", f"/anymail/{esp}/tracking/", body, content_type=content_type, **headers)


def sns_headers(body: bytes) -> dict:
    """SNS's own headers copied from the body when it looks like SNS, so the signature check is reached."""
    try:
        message = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(message, dict):
        return {}
    return {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": str(message.get("Type", "Notification")),
        "HTTP_X_AMZ_SNS_MESSAGE_ID": str(message.get("MessageId", "")),
    }


@hypothesis_settings
@given(data=st.data(), esp=st.sampled_from(WEBHOOK_ESPS), content_type=content_types, authorization=bad_auth)
def test_without_the_secret_nothing_changes_on_any_webhook(client, target, data, esp, content_type, authorization):
    body = data.draw(bodies(target.email))
    before = state()

    response = post(client, esp, body, content_type, authorization, sns_headers(body))

    assert 400 <= response.status_code < 500
    assert state() == before


@hypothesis_settings
@given(data=st.data(), esp=st.sampled_from(SIGNED_ESPS), content_type=content_types)
def test_with_the_secret_but_no_esp_signature_nothing_changes(client, target, data, esp, content_type):
    body = data.draw(bodies(target.email))
    before = state()

    response = post(client, esp, body, content_type, VALID_AUTH, sns_headers(body))

    assert 400 <= response.status_code < 500
    assert state() == before


@hypothesis_settings
@given(data=st.data(), esp=st.sampled_from(BASIC_AUTH_ONLY_ESPS), content_type=content_types)
def test_authenticated_hostile_bodies_are_never_a_server_error(client, target, data, esp, content_type):
    body = data.draw(bodies(target.email))

    response = post(client, esp, body, content_type, VALID_AUTH)

    assert response.status_code < 500


@hypothesis_settings
@given(event=st.data(), token=nasty_text, timestamp=timestamps)
def test_correctly_signed_mailgun_bodies_of_any_shape_are_never_a_server_error(client, target, event, token, timestamp):
    event_data = event.draw(esp_events(target.email) | st.dictionaries(st.text(max_size=12), json_values, max_size=4))
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}

    response = post(client, "mailgun", json.dumps(body).encode(), "application/json", VALID_AUTH)

    assert response.status_code < 500


@hypothesis_settings
@given(esp=nasty_text, body=st.binary(max_size=200))
def test_unconfigured_names_are_a_404(client, target, esp, body):
    if esp in WEBHOOK_ESPS:
        return  # configured ESPs are the other tests' subject
    before = state()

    response = client.post(f"/anymail/{quote(esp, safe='')}/tracking/", body, content_type="application/json")

    assert response.status_code == 404
    assert state() == before
