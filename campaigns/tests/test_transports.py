"""Transports against a fault-injecting SMTP server, anymail's test backend and a mocked ESP."""

import re

import pytest
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus
from django.core import mail
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.sending import send_batch
from campaigns.tests.factories import esp_merged

pytestmark = pytest.mark.django_db


# ``campaign`` and ``smtp_server``: campaigns/tests/conftest.py.


def statuses(campaign):
    return dict(Delivery.objects.filter(campaign=campaign).values_list("email", "status"))


def test_smtp_sends_every_message_over_one_connection(campaign, smtp_server):
    result = send_batch(campaign.pk, worker_id="w1")

    assert result["sent"] == 5
    assert sorted(smtp_server.recipients()) == [f"reader{i}@example.com" for i in range(5)]
    assert smtp_server.connections == 1
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent) == (Campaign.Status.SENT, 5)


def test_permanent_550_fails_only_that_recipient(campaign, smtp_server):
    smtp_server.reject_recipient("reader2@example.com")

    send_batch(campaign.pk, worker_id="w1")

    assert statuses(campaign)["reader2@example.com"] == "failed"
    assert "550" in Delivery.objects.get(email="reader2@example.com").last_error
    assert len(smtp_server.messages) == 4
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.failed) == (Campaign.Status.SENT, 4, 1)


def test_pipelining_is_used_only_when_the_server_advertises_it(campaign, smtp_server):
    send_batch(campaign.pk, worker_id="w1")

    assert len(smtp_server.messages) == 5
    # With PIPELINING each MAIL arrives in one write with its RCPT and DATA; without, never.
    assert smtp_server.pipelined == (5 if smtp_server.pipelining else 0)


def test_temporary_refusal_of_a_recipient_is_retried_and_the_rest_go_out(campaign, smtp_server):
    smtp_server.reject_recipient("reader1@example.com", code=451, message="4.7.1 Try again later")

    send_batch(campaign.pk, worker_id="w1")

    retried = Delivery.objects.get(email="reader1@example.com")
    assert (retried.status, retried.retry_at is not None) == ("queued", True)
    assert retried.last_error.startswith("RCPT TO 451")
    assert sorted(smtp_server.recipients()) == [f"reader{i}@example.com" for i in (0, 2, 3, 4)]
    assert smtp_server.connections == 1  # RSET, not a new connection


def test_temporary_421_is_retried_later_not_now(campaign, smtp_server):
    smtp_server.fail_temporarily(at=3)

    first = send_batch(campaign.pk, worker_id="w1")

    retried = Delivery.objects.get(status="queued")
    assert (first["sent"], first["retried"], retried.attempts) == (4, 1, 1)
    assert retried.retry_at is not None and "421" in retried.last_error
    assert first["more"] and first["retry_at"] is not None
    assert send_batch(campaign.pk, worker_id="w1")["claimed"] == 0  # not due yet

    Delivery.objects.filter(pk=retried.pk).update(retry_at=None)  # time passes
    send_batch(campaign.pk, worker_id="w1")

    assert sorted(smtp_server.recipients()) == [f"reader{i}@example.com" for i in range(5)]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.failed) == (Campaign.Status.SENT, 5, 0)
    assert Delivery.objects.get(pk=retried.pk).attempts == 2


def test_attempts_are_bounded(campaign, smtp_server, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "MAX_ATTEMPTS": 2}
    smtp_server.fail_temporarily(at=1, times=10)

    for _ in range(2):
        send_batch(campaign.pk, worker_id="w1", limit=1)
        # The backoff passes (retry_at stays set, as it would: the row is a due retry).
        Delivery.objects.filter(retry_at__isnull=False).update(retry_at=timezone.now())

    first = Delivery.objects.order_by("pk").first()
    assert (first.status, first.attempts) == ("failed", 2)
    assert first.last_error.startswith("gave up after 2 attempts")


def test_a_streak_of_temporary_refusals_stops_the_batch(campaign, smtp_server):
    smtp_server.fail_temporarily(at=1, times=100)

    result = send_batch(campaign.pk, worker_id="w1")

    assert result["retried"] == 3
    assert result["released"] == 2  # handed back unsent, still queued for a later batch
    assert Delivery.objects.filter(status="queued", claimed_by="").count() == 5


def test_dropped_connection_reconnects_and_sends_the_rest(campaign, smtp_server):
    smtp_server.drop_connection(after=2)

    send_batch(campaign.pk, worker_id="w1")

    assert sorted(smtp_server.recipients()) == [f"reader{i}@example.com" for i in range(5)]
    assert smtp_server.connections == 2
    assert set(statuses(campaign).values()) == {"sent"}


def test_connection_cut_during_data_is_reported_never_resent(campaign, smtp_server):
    smtp_server.drop_connection(after=2, in_flight=True)

    send_batch(campaign.pk, worker_id="w1")

    lost = Delivery.objects.get(status="unknown")
    assert lost.last_error.startswith("connection lost after the message was sent")
    assert len(smtp_server.messages) == 4
    assert lost.email not in smtp_server.recipients()
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed, campaign.status) == (4, 1, Campaign.Status.SENT)


def test_unreachable_server_leaves_everything_queued(campaign, settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 1, "timeout": 2},
        }
    }
    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["sent"], result["released"], result["more"]) == (0, 5, True)
    assert set(statuses(campaign).values()) == {"queued"}


# --- anymail ----------------------------------------------------------------------------------


@pytest.fixture
def anymail_test_backend(settings):
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    settings.BROADSHEET = {**settings.BROADSHEET, "ESP_BATCH_LIMIT": 2}


def test_anymail_batches_are_chunked_to_the_esp_limit(campaign, anymail_test_backend):
    send_batch(campaign.pk, worker_id="w1")

    assert [len(message.to) for message in mail.outbox] == [2, 2, 1]
    params = mail.outbox[0].anymail_test_params
    assert params["is_batch_send"] is True
    first = Delivery.objects.order_by("pk").first()
    # Each slot of the parts is one merge field; the values are written as the slot says.
    assert first.email in esp_merged(params, first.email)
    assert "%%" not in esp_merged(params, first.email)
    assert params["merge_metadata"][first.email] == {"delivery_id": str(first.pk)}
    assert params["merge_headers"][first.email]["List-Unsubscribe"].startswith("<https://news.example.com/")
    assert params["extra_headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.search(r"https://news.example.com/\S*/unsubscribe/[^\s)]+", esp_merged(params, first.email)).group(0)
    assert f'href="{link}"' in esp_merged(params, first.email, "html_body")
    assert "{{" not in params["subject"]


def test_anymail_per_recipient_status_and_message_ids(campaign, anymail_test_backend):
    send_batch(campaign.pk, worker_id="w1")

    rows = list(Delivery.objects.order_by("pk").values_list("status", "esp_message_id"))
    assert rows == [("sent", "0"), ("sent", "0"), ("sent", "1"), ("sent", "1"), ("sent", "2")]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent) == (Campaign.Status.SENT, 5)


def test_mocked_esp_reports_per_recipient_rejections(campaign, anymail_test_backend, monkeypatch):
    """The ESP accepts the call but rejects one address and calls another invalid."""
    from anymail.backends.test import EmailBackend

    original = EmailBackend.post_to_esp

    def post_to_esp(self, payload, message):
        original(self, payload, message)
        answers = {"reader1@example.com": "rejected", "reader3@example.com": "invalid"}
        return {
            "recipient_status": {
                address: AnymailRecipientStatus(message_id=f"esp-{address}", status=answers.get(address, "queued"))
                for address in payload.recipient_emails
            }
        }

    monkeypatch.setattr(EmailBackend, "post_to_esp", post_to_esp)

    send_batch(campaign.pk, worker_id="w1")

    assert statuses(campaign) == {
        "reader0@example.com": "sent",
        "reader1@example.com": "failed",
        "reader2@example.com": "sent",
        "reader3@example.com": "failed",
        "reader4@example.com": "sent",
    }
    assert Delivery.objects.get(email="reader0@example.com").esp_message_id == "esp-reader0@example.com"
    assert Delivery.objects.get(email="reader3@example.com").last_error == "ESP status invalid"
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (3, 2)


def test_esp_rate_limit_429_requeues_the_chunk(campaign, anymail_test_backend, monkeypatch):
    from anymail.backends.test import EmailBackend

    class Response:
        status_code = 429

    def post_to_esp(self, payload, message):
        raise AnymailAPIError("Too many requests", response=Response())

    monkeypatch.setattr(EmailBackend, "post_to_esp", post_to_esp)

    result = send_batch(campaign.pk, worker_id="w1", limit=2)

    assert result["retried"] == 2
    assert set(Delivery.objects.filter(attempts=1).values_list("status", flat=True)) == {"queued"}
    assert Delivery.objects.filter(retry_at__isnull=False).count() == 2


def test_esp_without_inline_batching_sends_one_message_per_recipient(campaign, settings):
    from campaigns.sending.headers import build_content
    from campaigns.sending.transports import DjangoBackendTransport, get_transport

    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.postmark.EmailBackend"}}
    transport = get_transport(build_content(campaign))
    assert type(transport) is DjangoBackendTransport
    assert transport.batch_size == 1


def test_locmem_fallback_sends_the_same_headers(campaign):
    send_batch(campaign.pk, worker_id="w1")

    message = mail.outbox[0].message()
    for header in (
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Id",
        "Precedence",
        "Auto-Submitted",
        "Feedback-ID",
        "Message-ID",
        "Date",
        "Reply-To",
    ):
        assert message[header], header
    assert message.get_content_type() == "multipart/alternative"


def test_lines_starting_with_a_dot_arrive_intact(campaign, smtp_server):
    # SMTP transparency (RFC 5321 4.5.2): the transport doubles a leading "." and the server strips it.
    Campaign.objects.filter(pk=campaign.pk).update(text=".A line with a leading dot\nDear %%name%%,\n")
    Delivery.objects.filter(campaign=campaign, email="reader0@example.com").update(name=".Dotty")

    send_batch(campaign.pk, worker_id="w1")

    (message,) = [m for m in smtp_server.messages if m.rcpt_tos == ("reader0@example.com",)]
    text = message.parsed().get_body(("plain",)).get_content()
    assert text.splitlines()[:2] == [".A line with a leading dot", "Dear .Dotty,"]
    assert message.parsed()["To"] == '".Dotty" <reader0@example.com>'
