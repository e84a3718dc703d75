"""A real sent message, parsed back with Python's email package: every header, both parts."""

import email
import email.policy
import re

import pytest
from django.urls import resolve

from campaigns import services
from campaigns.sending import send_batch
from campaigns.sending.headers import Recipient, build_content, recipient_values
from campaigns.tests.factories import make_issue
from campaigns.tests.fake_smtp import FakeSMTPServer
from mail.tests.mail_client import ENCODED_WORD, assert_rfc_folded, header_lines, read_address
from subscribers.links import RecipientLinks
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_server(settings):
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        yield server


@pytest.fixture
def sent_message(archive_page, newsletter_settings, smtp_server, settings, django_capture_on_commit_callbacks):
    settings.BROADSHEET = {**settings.BROADSHEET, "UNSUBSCRIBE_MAILBOX": "unsubscribe@example.com"}
    issue = make_issue(archive_page, slug="personal", body=[("paragraph", "<p>Dear %%name%%, welcome.</p>")])
    weekly = MailingListFactory(name="The Weekly", slug="weekly")
    reader = SubscriberFactory(email="zoe@example.com", name="Zoë O'Brien & Co")
    SubscriptionFactory(subscriber=reader, list=weekly)
    campaign = services.create_campaign(issue, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)
    send_batch(campaign.pk, worker_id="test")
    (received,) = smtp_server.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    return message, reader, campaign, received


def test_every_required_header_is_present(sent_message):
    message, _reader, campaign, _ = sent_message

    assert message["From"] == "The Broadsheet <news@example.com>"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert message["To"].addresses[0].display_name == "Zoë O'Brien & Co"
    assert message["Subject"] == "Spring issue: news from the press"
    assert message["Reply-To"] == "editor@example.com"
    assert message["Date"].datetime is not None
    # On the sender's domain (From: news@example.com), not the web site's.
    assert message["Message-ID"].endswith("@example.com>")
    assert message["MIME-Version"] == "1.0"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == '"The Weekly" <weekly.news.example.com>'
    assert message["Precedence"] == "bulk"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Feedback-ID"] == f"c{campaign.pk}:weekly:broadsheet"
    assert message.defects == []


def test_message_id_is_recorded_on_the_delivery(sent_message):
    message, _, campaign, _ = sent_message
    assert campaign.deliveries.get().esp_message_id == message["Message-ID"]


def test_list_unsubscribe_is_the_one_click_url_then_the_mailbox(sent_message):
    message, reader, *_ = sent_message
    https, mailto = [part.strip() for part in str(message["List-Unsubscribe"]).split(",")]

    assert https.startswith("<https://news.example.com/") and https.endswith(">")
    path = https[1:-1].removeprefix("https://news.example.com")
    match = resolve(path)
    assert match.view_name == "subscribers:one_click"
    from subscribers.tokens import read_unsubscribe_token

    uid, _lists, _campaign = read_unsubscribe_token(match.kwargs["token"])
    assert uid == reader.uid
    assert mailto.startswith("<mailto:unsubscribe@example.com?subject=unsubscribe%20")


def test_one_click_post_to_the_header_url_unsubscribes(sent_message, client):
    message, reader, _campaign, _ = sent_message
    https = str(message["List-Unsubscribe"]).split(",")[0].strip()[1:-1]

    response = client.post(
        https.removeprefix("https://news.example.com"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert not reader.subscriptions.filter(status="subscribed").exists()


def test_multipart_alternative_with_personalised_text_and_html(sent_message):
    message, _reader, *_ = sent_message

    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Dear Zoë O'Brien & Co, welcome." in text
    assert "Dear Zoë O&#x27;Brien &amp; Co, welcome." in html
    assert "%%" not in text and "%%" not in html
    https = str(message["List-Unsubscribe"]).split(",")[0].strip()[1:-1]
    unsubscribe_page = https.removesuffix("one-click/")
    assert unsubscribe_page in text and unsubscribe_page in html


def test_quoted_printable_lines_stay_short(sent_message):
    *_, received = sent_message
    assert max(len(line) for line in received.data.split(b"\r\n")) <= 998
    body = received.data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_message_ids_carry_an_unguessable_part(sent_message):
    message, _, campaign, _ = sent_message
    delivery = campaign.deliveries.get()

    random_part = re.fullmatch(
        rf"<\d{{14}}\.c{campaign.pk}\.([0-9a-f]{{16}})\.d{delivery.pk}@example\.com>", message["Message-ID"]
    )

    assert random_part is not None
    again = recipient_values(
        build_content(campaign), RecipientLinks(), Recipient(delivery.pk, delivery.email, "", delivery.subscriber_uid)
    )
    assert again["message_id"] != message["Message-ID"]


def test_a_long_non_ascii_name_is_encoded_alike_in_from_and_to(
    archive_page, newsletter_settings, smtp_server, django_capture_on_commit_callbacks
):
    """One builder for every address header: the same name becomes the same encoded-words in From
    and To, each word within 75 characters, each line within 78, decoded back exactly (RFC 2047
    s6.2, as mail clients read it)."""
    name = "Ünïcödé Nëwslëttër Fröm Zürich — 读者来信 " * 3
    newsletter_settings.sender_name = name.strip()[:200]
    newsletter_settings.save()
    issue = make_issue(archive_page, slug="long-names")
    weekly = MailingListFactory(name="The Weekly", slug="weekly")
    SubscriptionFactory(subscriber=SubscriberFactory(email="zoe@bücher.de", name=name.strip()), list=weekly)
    campaign = services.create_campaign(issue, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)

    send_batch(campaign.pk, worker_id="test")

    (received,) = smtp_server.messages
    assert read_address(received.data, "From") == (name.strip(), "news@example.com")
    assert read_address(received.data, "To") == (name.strip(), "zoe@xn--bcher-kva.de")
    for field in ("From", "To", "Reply-To"):
        assert_rfc_folded(received.data, field)
    words = [ENCODED_WORD.findall("".join(header_lines(received.data, field))) for field in ("From", "To")]
    assert words[0] == words[1] and len(words[0]) > 1
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert [(field, len(message.get_all(field))) for field in ("From", "To")] == [("From", 1), ("To", 1)]
    assert message["From"].defects == () and message["To"].defects == ()
