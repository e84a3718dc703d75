"""Against a real Postfix: a campaign arrives intact, and Postfix's own bounce suppresses.

Postfix (apt: postfix) runs from a private configuration on 127.0.0.1:25171 with STARTTLS,
delivering to Maildirs (campaigns.tests.mta). Marked ``mta``: ``make test-services`` runs these,
``make test`` leaves them out; they skip with the reason when Postfix cannot be started.
"""

import email
import email.policy
from unittest import mock

import pytest

from campaigns import services
from campaigns.bounces.processing import process_mailbox
from campaigns.models import Delivery
from campaigns.sending import send_batch
from campaigns.sending.transports import SMTPTransport
from campaigns.sending.verp import delivery_from_address
from campaigns.tests.factories import make_issue
from campaigns.tests.mta import BOUNCE_DOMAIN, Postfix
from subscribers.models import Subscriber
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.mta]

PORT = 25171
SUBJECT = "Frühling: news from the press – 春天"
DOT_LINE = ".dot at the start of a line survives"


@pytest.fixture
def postfix(settings, monkeypatch):
    with Postfix(port=PORT, mailboxes=["reader@example.test", "zoë@example.test"]) as server:
        # The transport verifies the certificate with the default trust store: trust the test's.
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "localhost", "port": PORT, "use_tls": True, "timeout": 10},
            }
        }
        settings.BROADSHEET = {
            **settings.BROADSHEET,
            "BOUNCE_DOMAIN": BOUNCE_DOMAIN,
            "BOUNCE_MAILBOX": {"protocol": "maildir", "path": str(server.maildir("bounces")), "kept": "Kept"},
        }
        yield server


@pytest.fixture
def campaign(archive_page, newsletter_settings, django_capture_on_commit_callbacks):
    issue = make_issue(
        archive_page,
        subject=SUBJECT,
        body=[
            ("paragraph", "<p>Dear readers, Zoë wrote this.</p>"),
            ("paragraph", f"<p>{DOT_LINE}</p>"),
        ],
    )
    weekly = MailingListFactory(slug="weekly", name="Weekly")
    readers = (
        ("reader@example.test", "Zoë Ångström 读者"),
        ("ghost@example.test", "Ghost"),
        ("zoe@example.test", "Zoë"),
    )
    for address, name in readers:
        SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email=address, name=name))
    # A non-ASCII local part (RFC 6531) is refused by the forms today, but rows from before that
    # (or imported by other means) exist, and the engine sends them with SMTPUTF8.
    Subscriber.objects.filter(email="zoe@example.test").update(
        email="zoë@example.test", email_normalised="zoë@example.test"
    )
    campaign = services.create_campaign(issue, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)
    return campaign


def send(campaign):
    """send_batch, and how many messages went over a connection that pipelined (RFC 2920)."""
    pipelined = []
    original = SMTPTransport.send_one

    def send_one(self, item, *, date):
        pipelined.append(self.pipelining)
        return original(self, item, date=date)

    with mock.patch.object(SMTPTransport, "send_one", send_one):
        result = send_batch(campaign.pk, worker_id="w1")
    return result, sum(pipelined)


def test_a_campaign_arrives_intact_through_postfix(postfix, campaign):
    result, pipelined = send(campaign)

    assert result["sent"] == 3
    assert pipelined == 3, "Postfix advertises PIPELINING: every message used it"
    (path,) = postfix.delivered("reader")
    raw = path.read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    delivery = Delivery.objects.get(email="reader@example.test")
    assert message["Subject"] == SUBJECT
    assert message["To"].addresses[0].display_name == "Zoë Ångström 读者"
    assert message["Message-ID"] == delivery.esp_message_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://news.example.com/")
    # Postfix records the envelope sender as Return-Path: this delivery's signed VERP address.
    assert delivery_from_address(message["Return-Path"]) == delivery.pk
    # STARTTLS was used (Postfix notes the TLS session in its Received header).
    assert "using TLS" in message["Received"] and "ESMTPS" in message["Received"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Zoë wrote this" in text and "Zoë wrote this" in html
    assert f"\n{DOT_LINE}" in text, "a line starting with a dot must not lose it (SMTP dot-stuffing)"
    assert DOT_LINE in html
    # Deliberately 7-bit (quoted-printable parts, RFC 2047 headers), so BODY=8BITMIME is never
    # declared: no relay on the way needs 8BITMIME, and none can break the DKIM body hash by
    # converting 8-bit to 7-bit (RFC 6376 section 5.3 asks signers for 7-bit content).
    assert raw.isascii()


def test_a_non_ascii_address_goes_through_with_smtputf8(postfix, campaign):
    send(campaign)

    (path,) = postfix.delivered("zoë")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    # Postfix names the protocol UTF8SMTPS when the client used SMTPUTF8 over TLS (RFC 6531).
    assert "UTF8SMTPS" in message["Received"]
    assert message["Delivered-To"] == "zoë@example.test"


def test_postfix_bounce_for_an_unknown_user_comes_back_and_suppresses(postfix, campaign):
    send(campaign)
    (bounce,) = postfix.delivered("bounces")

    results = process_mailbox()

    assert [result.kind for result in results] == ["hard"]
    assert Subscriber.objects.get(email="ghost@example.test").state == Subscriber.State.BOUNCED
    assert Subscriber.objects.get(email="reader@example.test").state == Subscriber.State.ACTIVE
    assert Delivery.objects.get(email="ghost@example.test").bounce_type == "hard"
    assert not bounce.exists(), "the processed bounce is deleted from the Maildir"
