"""Merge tags end to end: an issue with tags in its subject and body, sent over SMTP and through an
ESP batch, refused at the start when a tag is unknown, and tested as a subscriber would get it."""

import email
import email.policy

import pytest
from bs4 import BeautifulSoup
from django.core import mail
from django.urls import reverse
from wagtail.test.utils.form_data import rich_text, streamfield

from campaigns import services
from campaigns.models import Campaign, DeliveryEvent
from campaigns.sending import send_batch
from campaigns.tests.factories import esp_merged, make_issue
from campaigns.tests.fake_smtp import FakeSMTPServer
from campaigns.tests.test_preview import edit_form_data
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

BODY = [
    ("heading", {"text": "News for {{ attributes.city }}", "level": "h2"}),
    ("paragraph", "<p>Dear {{ first_name|default:&quot;reader&quot; }}, this is for {{ email }}.</p>"),
    (
        "button",
        {
            "label": "Weather in {{attributes.city}}",
            "page": None,
            "link_url": "https://example.org/w?c={{attributes.city}}",
        },
    ),
]
SUBJECT = 'Hello {{ first_name|default:"friend" }} in {{ attributes.city }}'


@pytest.fixture
def tagged_issue(archive_page, newsletter_settings):
    return make_issue(archive_page, slug="tagged", subject=SUBJECT, body=BODY)


def subscribe(email_address, name="", **attributes):
    weekly = MailingListFactory(name="Weekly", slug="weekly")
    reader = SubscriberFactory(email=email_address, name=name, attributes=attributes)
    SubscriptionFactory(subscriber=reader, list=weekly)
    return weekly, reader


def start(issue, lists, capture):
    campaign = services.create_campaign(issue, lists)
    with capture(execute=False):
        services.start_campaign(campaign.pk)
    return campaign


@pytest.fixture
def smtp_server(settings):
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        yield server


def test_smtp_message_is_personalised_in_subject_html_text_and_links(
    tagged_issue, smtp_server, django_capture_on_commit_callbacks
):
    weekly, _reader = subscribe("zoe@example.com", "Zoë <b>O'Brien</b>", city="São Paulo & Co")
    campaign = start(tagged_issue, [weekly], django_capture_on_commit_callbacks)

    send_batch(campaign.pk, worker_id="w")

    (received,) = smtp_server.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert message["Subject"] == "Hello Zoë in São Paulo & Co"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "Dear Zoë, this is for zoe@example.com." in html
    assert "News for São Paulo &amp; Co" in html
    assert 'href="https://example.org/w?c=S%C3%A3o%20Paulo%20%26%20Co"' in html
    assert "Dear Zoë, this is for zoe@example.com." in " ".join(text.split())
    assert "https://example.org/w?c=S%C3%A3o%20Paulo%20%26%20Co" in text
    assert "{{" not in html + text and "%%" not in html + text


def test_hostile_names_are_text_and_never_reach_a_header(tagged_issue, smtp_server, django_capture_on_commit_callbacks):
    weekly, _reader = subscribe(
        "eve@example.com", "{{ email }}<script>x</script>", city="Leeds\r\nBcc: all@example.com"
    )
    campaign = start(tagged_issue, [weekly], django_capture_on_commit_callbacks)

    send_batch(campaign.pk, worker_id="w")

    (received,) = smtp_server.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert message["Bcc"] is None
    assert message["Subject"] == "Hello {{ in Leeds Bcc: all@example.com"
    html = message.get_body(("html",)).get_content()
    assert "Dear {{, this is" in html  # the first word of the name, as text
    assert "<script>" not in html
    assert message.defects == []
    assert Campaign.objects.get(pk=campaign.pk).sent == 1


def test_first_name_falls_back_and_prefers_the_imported_attribute(
    tagged_issue, smtp_server, django_capture_on_commit_callbacks
):
    weekly, _ = subscribe("a@example.com", "", city="Leeds")
    other = SubscriberFactory(email="b@example.com", name="Robert Smith", attributes={"first_name": "Bob"})
    SubscriptionFactory(subscriber=other, list=weekly)
    campaign = start(tagged_issue, [weekly], django_capture_on_commit_callbacks)

    send_batch(campaign.pk, worker_id="w")

    subjects = sorted(
        email.message_from_bytes(m.data, policy=email.policy.default)["Subject"] for m in smtp_server.messages
    )
    assert subjects == ["Hello Bob in ", "Hello friend in Leeds"]


def test_esp_batch_carries_each_slot_as_merge_data(tagged_issue, settings, django_capture_on_commit_callbacks):
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    weekly, _ = subscribe("zoe@example.com", "Zoë <O'Brien>", city="Leeds & York")
    campaign = start(tagged_issue, [weekly], django_capture_on_commit_callbacks)

    send_batch(campaign.pk, worker_id="w")

    (message,) = mail.outbox
    params = message.anymail_test_params
    assert params["is_batch_send"] is True
    assert esp_merged(params, "zoe@example.com", "subject") == "Hello Zoë in Leeds & York"
    html = esp_merged(params, "zoe@example.com", "html_body")
    assert "Dear Zoë, this is for zoe@example.com." in html
    assert "News for Leeds &amp; York" in html
    assert "https://example.org/w?c=Leeds%20%26%20York" in html
    assert "Leeds & York" in esp_merged(params, "zoe@example.com")


def test_an_unknown_tag_refuses_the_start_and_the_test_send(
    archive_page, newsletter_settings, django_capture_on_commit_callbacks
):
    issue = make_issue(
        archive_page, slug="broken", body=[("paragraph", "<p>Hi {{ nickname }} {{ first_<i>name</i> }}</p>")]
    )
    weekly, _ = subscribe("a@example.com", "Ann")
    campaign = services.create_campaign(issue, [weekly])

    with pytest.raises(services.CampaignError) as error:
        start(issue, [weekly], django_capture_on_commit_callbacks)
    assert "nickname" in str(error.value) and "broken by formatting" in str(error.value)
    with pytest.raises(services.CampaignError):
        services.send_test(issue, ["me@example.com"])
    assert services.merge_tag_errors(issue)[0].startswith("“{{ nickname }}”")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert mail.outbox == []


def test_an_unknown_tag_in_the_campaign_subject_refuses_the_start(tagged_issue, django_capture_on_commit_callbacks):
    weekly, _ = subscribe("a@example.com", "Ann")
    campaign = services.create_campaign(tagged_issue, [weekly], subject="Hi {{ surname }}")

    with pytest.raises(services.CampaignError, match="surname"), django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)


def test_test_send_as_a_subscriber_uses_their_values(tagged_issue):
    _weekly, reader = subscribe("zoe@example.com", "Zoë Smith", city="Leeds")

    services.send_test(tagged_issue, ["me@example.com"], subscriber=reader)

    (message,) = mail.outbox
    assert message.subject == "[TEST] Hello Zoë in Leeds"
    assert "Dear Zoë, this is for zoe@example.com." in message.alternatives[0].content


# --- The web archive, the feed, previews and the send page ---------------------------------------


def test_the_web_archive_and_the_feed_show_fallbacks_never_raw_tags(client, tagged_issue):
    page = client.get(tagged_issue.url).content.decode()
    archive = client.get("/archive/").content.decode()
    feed = client.get("/archive/feed/").content.decode()

    for shown in (page, archive, feed):
        assert "{{" not in shown and "%%" not in shown
    assert "Hello friend in </h1>" in page  # the subject: the fallback, and nothing for the city
    assert "Dear reader, this is for ." in page
    assert 'href="https://example.org/w?c="' in page
    assert "Hello friend in " in archive
    assert "<title>Hello friend in </title>" in feed


def test_the_email_preview_uses_sample_values(client, admin_user, tagged_issue):
    client.force_login(admin_user)
    url = reverse("wagtailadmin_pages:preview_on_edit", args=[tagged_issue.pk])
    body = streamfield(
        [("paragraph", rich_text('<p>Dear {{ first_name|default:"reader" }}, this is for {{ email }}.</p>'))]
    )
    assert client.post(url, edit_form_data(tagged_issue, subject=SUBJECT, body=body)).json()["is_valid"]

    html = client.get(url, {"mode": "email"}).content.decode()
    text = client.get(url, {"mode": "text"}).content.decode()

    assert "Dear Sample, this is for sample.reader@example.com." in html
    assert "Hello Sample in" in text  # the subject line of the text preview, personalised
    assert "{{" not in html + text


def test_preview_as_a_subscriber_shows_their_values(client, admin_user, tagged_issue):
    _weekly, reader = subscribe("zoe@example.com", "Zoë Smith", city="Leeds <North>")
    client.force_login(admin_user)
    url = reverse("campaigns_admin:preview_as", args=[tagged_issue.pk])

    html = client.get(url, {"subscriber": "ZOE@example.com", "mode": "email"}).content.decode()
    text = client.get(url, {"subscriber": str(reader.pk), "mode": "text"}).content.decode()

    assert "Dear Zoë, this is for zoe@example.com." in html
    assert "News for Leeds &lt;North&gt;" in html
    assert "Hello Zoë in Leeds &lt;North&gt;" in text
    assert client.get(url, {"subscriber": "nobody@example.com"}).status_code == 404
    for hostile in ("@@@", "x@", "9" * 30, "١٢", "\x00@x", ""):
        assert client.get(url, {"subscriber": hostile}).status_code == 404, hostile
    assert client.get(url, {"subscriber": "x", "mode": "pdf"}).status_code == 400


def test_preview_as_a_subscriber_needs_the_permission_to_view_subscribers(client, sender, tagged_issue):
    subscribe("zoe@example.com", "Zoë")
    client.force_login(sender)

    response = client.get(
        reverse("campaigns_admin:preview_as", args=[tagged_issue.pk]), {"subscriber": "zoe@example.com"}
    )

    assert response.status_code in (302, 403)
    assert "Zoë" not in response.content.decode()


def test_the_send_page_lists_bad_tags_and_the_known_ones(client, admin_user, archive_page, newsletter_settings):
    issue = make_issue(archive_page, slug="broken", body=[("paragraph", "<p>Hi {{ nickname }}</p>")])
    client.force_login(admin_user)

    response = client.get(reverse("campaigns_admin:send", args=[issue.pk]))

    doc = BeautifulSoup(response.content, "html.parser")
    assert "nickname" in doc.select_one("[data-merge-tag-errors]").get_text()
    assert "{{ attributes.city }}" in doc.select_one(".merge-tags-help").get_text()


def test_the_editor_sees_the_tags_next_to_the_fields(client, admin_user, tagged_issue):
    client.force_login(admin_user)

    page = client.get(reverse("wagtailadmin_pages:edit", args=[tagged_issue.pk])).content.decode()

    assert page.count("{{ first_name|default:&quot;reader&quot; }}") >= 3  # subject, preheader, body


# --- Own click tracking over links with merge tags ---------------------------------------------


def test_a_tracked_link_with_merge_tags_redirects_to_the_readers_own_link(
    tagged_issue, smtp_server, settings, client, django_capture_on_commit_callbacks
):
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACK_CLICKS": True}
    weekly, _reader = subscribe("zoe@example.com", "Zoë", city="São Paulo/x?&y")
    campaign = start(tagged_issue, [weekly], django_capture_on_commit_callbacks)
    send_batch(campaign.pk, worker_id="w")
    (received,) = smtp_server.messages
    html = email.message_from_bytes(received.data, policy=email.policy.default).get_body(("html",)).get_content()
    doc = BeautifulSoup(html, "html.parser")
    link = next(a["href"] for a in doc.find_all("a") if "Weather" in a.get_text())
    assert link.startswith("https://news.example.com/campaigns/c/")

    response = client.get(link.removeprefix("https://news.example.com"))

    assert response.status_code == 302
    assert response["Location"] == "https://example.org/w?c=S%C3%A3o%20Paulo%2Fx%3F%26y"
    # Recorded for the delivery, as the link the editor wrote (seconds after sending: a machine's).
    assert DeliveryEvent.objects.get(delivery__campaign=campaign).url == "https://example.org/w?c=%%attributes.city%%"
    # Without the values (a forwarded or altered link) the link's own fallback (here: nothing).
    bare = link.split("&attributes.city=")[0]
    assert client.get(bare.removeprefix("https://news.example.com"))["Location"] == "https://example.org/w?c="
    # A value typed into the query cannot leave the path: it is quoted.
    forged = bare + "&attributes.city=//evil.example/"
    assert client.get(forged.removeprefix("https://news.example.com"))["Location"] == (
        "https://example.org/w?c=%2F%2Fevil.example%2F"
    )


def test_review_stays_on_the_form_while_a_tag_cannot_be_sent(client, admin_user, tagged_issue):
    weekly, _ = subscribe("a@example.com", "Ann")
    client.force_login(admin_user)
    data = {
        "action": "review",
        "lists": [weekly.pk],
        "subject": "Hi {{ surname }}",
        "from_email": "news@example.com",
        "reply_to": "",
        "when": "now",
    }

    response = client.post(reverse("campaigns_admin:send", args=[tagged_issue.pk]), data)

    doc = BeautifulSoup(response.content, "html.parser")
    assert "surname" in doc.select_one("[data-merge-tag-errors]").get_text()
    assert not Campaign.objects.exists()


def test_the_plain_text_preview_lists_tags_that_cannot_be_sent(client, admin_user, tagged_issue):
    client.force_login(admin_user)
    url = reverse("wagtailadmin_pages:preview_on_edit", args=[tagged_issue.pk])
    body = streamfield([("paragraph", rich_text("<p>Hi {{ nickname }}</p>"))])
    assert client.post(url, edit_form_data(tagged_issue, subject=SUBJECT, body=body)).json()["is_valid"]

    doc = BeautifulSoup(client.get(url, {"mode": "text"}).content, "html.parser")

    assert "nickname" in doc.select_one("[data-merge-tag-errors]").get_text()
    assert "{{" not in doc.select_one("[data-plaintext-preview]").get_text()


def test_a_test_send_can_take_a_subscribers_values(client, admin_user, sender, tagged_issue):
    _weekly, reader = subscribe("zoe@example.com", "Zoë Smith", city="Leeds")
    url = reverse("campaigns_admin:send", args=[tagged_issue.pk])
    data = {"action": "test", "test_addresses": "me@example.com", "as_subscriber": "zoe@example.com"}

    client.force_login(sender)  # may send, may not view subscribers
    refused = client.post(url, data)
    client.force_login(admin_user)
    unknown = client.post(url, {**data, "as_subscriber": "@@@"})
    sent = client.post(url, {**data, "as_subscriber": str(reader.pk)})

    assert "permission to view subscribers" in refused.content.decode()
    assert "No subscriber has this address or id." in unknown.content.decode()
    assert sent.status_code == 200
    (message,) = mail.outbox
    assert message.to[0].endswith("<me@example.com>")
    assert message.subject == "[TEST] Hello Zoë in Leeds"
