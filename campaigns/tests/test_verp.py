"""VERP return paths: one signed address per delivery, only with a bounce domain."""

import pytest

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
def test_each_smtp_message_has_its_own_return_path(
    bounce_domain, settings, issue_page, django_capture_on_commit_callbacks, pipelining
):
    campaign = started_campaign(issue_page, 3, django_capture_on_commit_callbacks)
    with FakeSMTPServer(pipelining=pipelining) as server:
        settings.MAILERS = server.mailers_setting()
        send_batch(campaign.pk, worker_id="w1")

    by_recipient = {message.rcpt_tos[0]: message.mail_from for message in server.messages}
    for delivery in Delivery.objects.filter(campaign=campaign):
        assert delivery_from_address(by_recipient[delivery.email]) == delivery.pk


def test_without_bounce_domain_the_envelope_sender_is_the_from_address(
    settings, issue_page, django_capture_on_commit_callbacks
):
    campaign = started_campaign(issue_page, 2, django_capture_on_commit_callbacks)
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        send_batch(campaign.pk, worker_id="w1")

    assert {message.mail_from for message in server.messages} == {"news@example.com"}
