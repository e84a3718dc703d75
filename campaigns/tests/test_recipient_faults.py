"""One recipient never stalls a campaign (issue 8, finding 3): IDN domains, non-ASCII local parts,
and any exception while building or sending one message fail that delivery only."""

import pytest
from django.core import mail
from django.urls import reverse

from campaigns.models import Campaign, Delivery
from campaigns.sending import send_batch
from campaigns.sending.transports import AddressRefused, envelope_address
from campaigns.tests.factories import esp_merged
from campaigns.tests.fake_smtp import FakeSMTPServer

pytestmark = pytest.mark.django_db

# Fixtures (campaigns/tests/conftest.py): ``campaign`` (5 readers, batches not run) and
# ``smtp_server`` (the fake server with and without PIPELINING: both SMTP paths).


def readdress(address: str, *, name: str = "", reader: int = 2) -> Delivery:
    """Give reader<N>'s delivery another address (and name), as a hostile sign-up would."""
    delivery = Delivery.objects.get(email=f"reader{reader}@example.com")
    Delivery.objects.filter(pk=delivery.pk).update(email=address, name=name)
    return Delivery.objects.get(pk=delivery.pk)


def test_an_idn_domain_is_encoded_with_idna_2008_on_the_envelope(campaign, smtp_server):
    delivery = readdress("bob@bücher.de")

    send_batch(campaign.pk, worker_id="w1")

    assert "bob@xn--bcher-kva.de" in smtp_server.recipients()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_envelope_address_uses_idna_2008_not_python_idna_2003():
    # IDNA 2003 (Python's "idna" codec) maps "ß" to "ss"; IDNA 2008 keeps it (xn--fa-hia).
    assert envelope_address("kontakt@faß.de") == ("kontakt@xn--fa-hia.de", False)
    assert envelope_address("ünïcode@example.com") == ("ünïcode@example.com", True)
    assert envelope_address("plain@example.com") == ("plain@example.com", False)
    for hostile in ("a@b>\r\nRCPT TO:<evil@example.com", "no-at-sign", "a@-bad-.\u2028de"):
        with pytest.raises(AddressRefused):
            envelope_address(hostile)


def test_a_recipient_whose_header_cannot_be_built_fails_alone_and_the_campaign_finishes(campaign, smtp_server):
    # bob@bücher.de with a name made the header builder raise UnicodeEncodeError: the batch died
    # and every retry claimed that row first (issue 8). Any value the builder refuses (here a
    # control character the old address validator let through) is now that recipient's outcome.
    delivery = readdress("a\x0bb@example.com", name="Bob")

    send_batch(campaign.pk, worker_id="w1")

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_error.startswith("could not build the message: HeaderValueError")
    assert sorted(smtp_server.recipients()) == [f"reader{i}@example.com" for i in (0, 1, 3, 4)]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.failed) == (Campaign.Status.SENT, 4, 1)


def test_an_idn_address_with_a_name_is_sent_with_ascii_headers(campaign, smtp_server):
    readdress("bob@bücher.de", name="Bob Bücher")

    send_batch(campaign.pk, worker_id="w1")

    (message,) = [m for m in smtp_server.messages if m.rcpt_tos == ("bob@xn--bcher-kva.de",)]
    assert "xn--bcher-kva.de" in message.parsed()["To"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_non_ascii_local_part_goes_with_smtputf8_when_the_server_offers_it(campaign, smtp_server):
    readdress("jürgen@example.com")

    send_batch(campaign.pk, worker_id="w1")

    (message,) = [m for m in smtp_server.messages if m.rcpt_tos == ("jürgen@example.com",)]
    assert "SMTPUTF8" in message.mail_options
    # ASCII recipients' transactions do not ask for it.
    assert all("SMTPUTF8" not in m.mail_options for m in smtp_server.messages if m is not message)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_non_ascii_local_part_fails_permanently_without_smtputf8(campaign, settings):
    with FakeSMTPServer(smtputf8=False) as server:
        settings.MAILERS = server.mailers_setting()
        delivery = readdress("jürgen@example.com")

        send_batch(campaign.pk, worker_id="w1")

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "SMTPUTF8" in delivery.last_error and "not ASCII" in delivery.last_error
    assert delivery.retry_at is None  # permanent: never retried
    assert len(server.messages) == 4
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.failed) == (Campaign.Status.SENT, 4, 1)


def test_an_exception_while_sending_one_message_fails_only_that_delivery(campaign, smtp_server, monkeypatch):
    from campaigns.sending.headers import CompiledMessage

    original = CompiledMessage.render

    def render(self, values, *, date=None):
        if values["email"] == "reader1@example.com":
            raise RuntimeError("a value the message builder choked on")
        return original(self, values, date=date)

    monkeypatch.setattr(CompiledMessage, "render", render)

    send_batch(campaign.pk, worker_id="w1")

    poisoned = Delivery.objects.get(email="reader1@example.com")
    assert poisoned.status == Delivery.Status.FAILED
    assert "RuntimeError: a value the message builder choked on" in poisoned.last_error
    assert sorted(smtp_server.recipients()) == [f"reader{i}@example.com" for i in (0, 2, 3, 4)]
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_a_poison_row_is_never_claimed_again(campaign, smtp_server, monkeypatch):
    from campaigns.sending import engine

    original = engine.recipient_values

    def recipient_values(content, links, recipient):
        if recipient.email == "reader0@example.com":
            raise ValueError("poison")
        return original(content, links, recipient)

    monkeypatch.setattr(engine, "recipient_values", recipient_values)

    first = send_batch(campaign.pk, worker_id="w1", limit=2)
    second = send_batch(campaign.pk, worker_id="w1", limit=2)

    assert (first["failed"], first["sent"]) == (1, 1)
    poisoned = Delivery.objects.get(email="reader0@example.com")
    assert poisoned.pk not in [d.pk for d in Delivery.objects.filter(claimed_by="w1")]
    assert poisoned.status == Delivery.Status.FAILED and second["claimed"] == 2
    send_batch(campaign.pk, worker_id="w1")
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_the_reason_is_shown_in_the_campaigns_deliveries_table(campaign, settings, client, django_user_model):
    from campaigns.tests.factories import make_user

    with FakeSMTPServer(smtputf8=False) as server:
        settings.MAILERS = server.mailers_setting()
        readdress("jürgen@example.com")
        send_batch(campaign.pk, worker_id="w1")

    client.force_login(make_user(django_user_model, "sender", send=True))
    page = client.get(reverse("campaigns_admin:detail", args=[campaign.pk])).content.decode()

    assert "jürgen@example.com" in page
    assert "does not offer SMTPUTF8" in page


def test_an_idn_address_sent_through_an_esp_batch_is_personalised_and_recorded_sent(campaign, settings):
    # The batch's To carries the IDNA form; merge data and the ESP's per-recipient status are keyed
    # by address, so they must use the same form, or the unsubscribe link stays empty and the
    # delivery is recorded "unknown".
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    delivery = readdress("bob@bücher.de", name="Bob Bücher")

    send_batch(campaign.pk, worker_id="w1")

    (message,) = mail.outbox
    params = message.anymail_test_params
    assert "/unsubscribe/" in esp_merged(params, "bob@xn--bcher-kva.de")
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
