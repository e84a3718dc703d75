"""VERP return paths: one signed address per delivery, only with a bounce domain."""

import pytest
from django.core import mail

from campaigns.models import Delivery
from campaigns.sending import send_batch
from campaigns.sending.verp import delivery_from_address, return_path
from campaigns.tests.factories import started_campaign
from campaigns.tests.fake_smtp import FakeSMTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def bounce_domain(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "BOUNCE_DOMAIN": "bounce.example.com"}


def test_no_bounce_domain_no_return_path():
    assert return_path(7) is None


def test_return_path_round_trips_in_any_case(bounce_domain):
    address = return_path(123456)

    assert address.startswith("bounces+123456-") and address.endswith("@bounce.example.com")
    assert len(address.partition("@")[0]) <= 64
    assert delivery_from_address(address.upper()) == 123456
    assert delivery_from_address(f"<{address}>") == 123456


@pytest.mark.parametrize("address", ["bounces@bounce.example.com", "bounces+12-aaaaaaaaaaaaa@x", "reader@example.com"])
def test_unsigned_or_plain_addresses_name_no_delivery(bounce_domain, address):
    assert delivery_from_address(address) is None


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "sequential"])
def test_every_delivery_of_a_campaign_has_its_own_signed_return_path(
    bounce_domain, settings, issue_page, django_capture_on_commit_callbacks, pipelining
):
    campaign = started_campaign(issue_page, 8, django_capture_on_commit_callbacks)
    with FakeSMTPServer(pipelining=pipelining) as server:
        settings.MAILERS = server.mailers_setting()
        # Two batches (two SMTP sessions), as two workers would send them.
        send_batch(campaign.pk, worker_id="w1", limit=5)
        send_batch(campaign.pk, worker_id="w2", limit=5)

    deliveries = {delivery.email: delivery.pk for delivery in Delivery.objects.filter(campaign=campaign)}
    assert sorted(message.rcpt_tos[0] for message in server.messages) == sorted(deliveries)
    return_paths = {message.rcpt_tos[0]: message.mail_from for message in server.messages}
    assert len(set(return_paths.values())) == len(deliveries), "one return path per delivery"
    for email, address in return_paths.items():
        assert address.endswith("@bounce.example.com")
        assert delivery_from_address(address) == deliveries[email], f"{address} names {email}'s delivery"
    # Signed: the signature part differs for every delivery, and another delivery's id under
    # this signature (a forged bounce for someone else) names nothing.
    tokens = [address.partition("@")[0].rpartition("-") for address in return_paths.values()]
    assert len({signature for _head, _dash, signature in tokens}) == len(deliveries)
    first, second = list(return_paths.values())[:2]
    forged = second.partition("-")[0] + "-" + first.partition("-")[2]
    assert delivery_from_address(forged) is None
    # ...and the signature is keyed by SECRET_KEY: a bounce site cannot compute it.
    settings.SECRET_KEY = "another-secret-key-another-secret-key-another"
    assert all(delivery_from_address(address) is None for address in return_paths.values())


def test_without_bounce_domain_the_envelope_sender_is_the_from_address(
    settings, issue_page, django_capture_on_commit_callbacks
):
    campaign = started_campaign(issue_page, 2, django_capture_on_commit_callbacks)
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        send_batch(campaign.pk, worker_id="w1")

    assert {message.mail_from for message in server.messages} == {"news@example.com"}


def test_esp_sends_carry_no_verp_address(bounce_domain, settings, issue_page, django_capture_on_commit_callbacks):
    """ESPs set their own return path and report bounces by webhook (docs/sending-without-an-esp.md)."""
    campaign = started_campaign(issue_page, 3, django_capture_on_commit_callbacks)
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}

    send_batch(campaign.pk, worker_id="w1")

    assert mail.outbox, "the ESP batch was sent"
    for message in mail.outbox:
        params = message.anymail_test_params
        assert not params.get("envelope_sender")
        assert "bounce.example.com" not in str(params.get("extra_headers", {}))
        assert "bounce.example.com" not in str(params.get("merge_headers", {}))
