"""The nasty-string corpus through the "Send as newsletter" form (issue 8: "prove the boundary").

Every free-text field of the send form (subject, sender, reply-to, mailer, send time) is posted
with every nasty string, to review, to confirm (which creates and starts the campaign) and as the
test-send addresses, and so is every text field of the issue editor (title, subject, preheader,
alt text, a paragraph), published and then sent: never a 5xx; either a form error and no
campaign, or a campaign whose message carries each header once, with exactly one From address,
one Reply-To and the subject as typed.
"""

import email
import email.policy
import uuid
from html import escape

import pytest
from django.urls import reverse
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from campaigns.models import Campaign, NewsletterIssuePage
from campaigns.sending.headers import CompiledMessage, Recipient, build_content, recipient_values
from mail.tests.mail_client import assert_rfc_folded
from subscribers.links import RecipientLinks
from subscribers.tests.factories import MailingListFactory, SubscriptionFactory
from subscribers.tests.nasty_strings import NASTY_STRINGS

pytestmark = pytest.mark.django_db

SEND_FIELDS = ["subject", "from_email", "reply_to", "mailer", "send_at"]


@pytest.fixture
def news(db):
    news = MailingListFactory(name="News", slug="news")
    SubscriptionFactory(list=news)
    return news


def form_data(news, field, value, action):
    data = {"lists": [news.pk], "subject": "Spring issue", "from_email": "The Broadsheet <news@example.com>",
            "reply_to": "editor@example.com", "mailer": "", "when": "now", "send_at": "", "test_addresses": "",
            "action": action}  # fmt: skip
    if field:
        data[field] = value
    if field == "send_at":
        data["when"] = "later"
    return data


def assert_the_message_has_one_of_each_header(campaign):
    content = build_content(campaign)
    recipient = Recipient(delivery_id=1, email="reader@example.com", name="Reader", uid=uuid.uuid4())
    raw = CompiledMessage(content).render(
        recipient_values(content, RecipientLinks(content.list_ids, campaign.pk), recipient)
    )
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert sorted(set(message.keys())) == sorted(message.keys())  # no header twice
    assert len(message["From"].addresses) == 1
    assert len(message["Reply-To"].addresses) == 1 if campaign.reply_to else message["Reply-To"] is None
    assert message["Subject"] == campaign.subject
    for field in ("From", "Reply-To", "To"):
        assert_rfc_folded(raw, field)


@pytest.mark.parametrize("action", ["review", "confirm"])
@pytest.mark.parametrize("field", SEND_FIELDS)
def test_every_nasty_string_in_every_field_of_the_send_form(
    client, sender, issue_page, news, field, action, django_capture_on_commit_callbacks
):
    client.force_login(sender)
    url = reverse("campaigns_admin:send", args=[issue_page.pk])
    for value in NASTY_STRINGS:
        with django_capture_on_commit_callbacks(execute=False):  # started, its batches not run
            response = client.post(url, form_data(news, field, value, action))

        assert response.status_code < 500, (field, value[:60], response.status_code)
        campaign = Campaign.objects.first()
        if response.status_code == 302:
            assert action == "confirm" and campaign is not None, (field, value[:60])
            assert_the_message_has_one_of_each_header(campaign)
            Campaign.objects.all().delete()
        else:
            assert campaign is None and response.status_code == 200
            if response.context["form"].errors:
                continue  # refused with the field's error on the form
            if action == "review":
                assert "recipients" in response.context  # valid: the confirmation step
            else:
                assert list(response.context["messages"]), (field, value[:60])  # refused with a message


def test_every_nasty_string_as_the_test_send_addresses(client, sender, issue_page, news, mailoutbox):
    client.force_login(sender)
    url = reverse("campaigns_admin:send", args=[issue_page.pk])
    for value in NASTY_STRINGS:
        mailoutbox.clear()

        response = client.post(url, form_data(news, "test_addresses", value, "test"))

        assert response.status_code == 200, (value[:60], response.status_code)
        test_form = response.context["test_form"]
        assert bool(mailoutbox) == test_form.is_valid(), value[:60]
        for sent in mailoutbox:
            message = email.message_from_bytes(sent.message().as_bytes(), policy=email.policy.default)
            assert len(message["To"].addresses) == 1 and len(message.get_all("To")) == 1
        assert not Campaign.objects.exists()


ISSUE_FIELDS = ["title", "subject", "preheader", "hero_alt_text", "body paragraph"]


@pytest.mark.parametrize("field", ISSUE_FIELDS)
def test_every_nasty_string_in_every_text_field_of_the_issue_editor(
    client, sender, archive_page, newsletter_settings, news, field
):
    """Creating and publishing an issue (what a campaign is made from), then starting its campaign."""
    client.force_login(sender)
    add = reverse("wagtailadmin_pages:add", args=["campaigns", "newsletterissuepage", archive_page.pk])
    for number, value in enumerate(NASTY_STRINGS):
        fields = {"title": f"Issue {number}", "slug": f"issue-{number}", "subject": "Summer issue",
                  "preheader": "", "issue_date": "2026-06-21", "hero_alt_text": "",
                  "body": streamfield([("paragraph", rich_text("<p>Hello</p>"))]), "comments": inline_formset([]),
                  "action-publish": "action-publish"}  # fmt: skip
        if field == "body paragraph":
            fields["body"] = streamfield([("paragraph", rich_text(f"<p>{escape(value)}</p>"))])
        else:
            fields[field] = value

        response = client.post(add, nested_form_data(fields))

        assert response.status_code < 500, (field, value[:60], response.status_code)
        page = NewsletterIssuePage.objects.filter(slug=f"issue-{number}").first()
        if response.status_code != 302:
            assert page is None and response.context["form"].errors, (field, value[:60])
            continue
        assert client.get(page.url).status_code == 200
        send = client.post(reverse("campaigns_admin:send", args=[page.pk]), form_data(news, "", "", "confirm"))
        assert send.status_code == 302, (field, value[:60])
        assert_the_message_has_one_of_each_header(Campaign.objects.get(page=page))
