"""Issue 8 finding 2: no value from a subscriber, a list or an editor reaches a header raw.

Each message is parsed back with Python's email package, as a mail client reads it: it must carry
exactly the headers we meant, with the values we meant.
"""

import email
import email.policy

import pytest

from campaigns import services
from campaigns.admin_forms import SendCampaignForm
from campaigns.models import Campaign
from campaigns.sending import send_batch
from campaigns.sending.headers import CompiledMessage, Recipient, build_content, recipient_values
from campaigns.tests.fake_smtp import FakeSMTPServer
from subscribers.services import RecipientLinks
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

INTENDED_HEADERS = {
    "Subject",
    "From",
    "Reply-To",
    "To",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "Precedence",
    "Auto-Submitted",
    "Feedback-ID",
    "MIME-Version",
    "Content-Type",
}


@pytest.fixture
def smtp_server(settings):
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        yield server


def _send(issue, mailing_list, smtp_server, capture_on_commit, **create):
    campaign = services.create_campaign(issue, [mailing_list], **create)
    with capture_on_commit(execute=False):
        services.start_campaign(campaign.pk)
    send_batch(campaign.pk, worker_id="test")
    return campaign, [email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp_server.messages]


def test_a_name_with_crlf_cannot_add_headers_or_replace_the_body(
    issue_page, smtp_server, django_capture_on_commit_callbacks
):
    weekly = MailingListFactory(name="The Weekly", slug="weekly")
    evil = "Eve\r\nReply-To: thief@evil.example\r\n\r\n<h1>Your account is closed</h1>"
    SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email="eve@example.com", name=evil))

    campaign, (message,) = _send(issue_page, weekly, smtp_server, django_capture_on_commit_callbacks)

    assert set(message.keys()) == INTENDED_HEADERS
    assert [a.addr_spec for a in message["To"].addresses] == ["eve@example.com"]
    assert message["Reply-To"] == "editor@example.com"
    assert "thief@evil.example" not in message.as_string()
    assert "Hello, readers" in message.get_body(("plain",)).get_content()
    assert "<h1>Your account is closed</h1>" not in message.get_body(("html",)).get_content()
    assert campaign.deliveries.get().status == "sent"


def test_a_list_sender_name_with_commas_and_quotes_is_one_quoted_name(
    issue_page, smtp_server, django_capture_on_commit_callbacks
):
    weekly = MailingListFactory(
        name="The Weekly",
        slug="weekly",
        from_name='Weekly", attacker@evil.example, "x',
        from_email="weekly@example.com",
    )
    SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email="ann@example.com"))

    _campaign, (message,) = _send(issue_page, weekly, smtp_server, django_capture_on_commit_callbacks)

    (sender,) = message["From"].addresses
    assert sender.addr_spec == "weekly@example.com"
    assert sender.display_name == 'Weekly", attacker@evil.example, "x'


def test_a_subject_with_crlf_is_refused_at_the_start_not_in_the_batch(issue_page, django_capture_on_commit_callbacks):
    weekly = MailingListFactory(slug="weekly")
    SubscriptionFactory(list=weekly)
    campaign = services.create_campaign(issue_page, [weekly], subject="Hello\r\nBcc: everyone@evil.example")

    with pytest.raises(services.CampaignError, match="subject"), django_capture_on_commit_callbacks(execute=True):
        services.start_campaign(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert not campaign.deliveries.exists()


def test_a_list_name_with_a_line_break_is_refused_at_the_start(issue_page, django_capture_on_commit_callbacks):
    weekly = MailingListFactory(slug="weekly", name="Weekly\nBcc: x@evil.example")
    SubscriptionFactory(list=weekly)
    campaign = services.create_campaign(issue_page, [weekly])

    with pytest.raises(services.CampaignError, match="list name"):
        services.start_campaign(campaign.pk)


def test_an_idn_address_with_a_name_gets_an_a_label_and_does_not_stop_the_batch(
    issue_page, smtp_server, django_capture_on_commit_callbacks
):
    weekly = MailingListFactory(slug="weekly")
    SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email="bob@bücher.de", name="Bob Bücher"))
    SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email="ann@example.com", name="Ann"))
    campaign = services.create_campaign(issue_page, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)

    content = build_content(campaign)
    bob = campaign.deliveries.get(email="bob@bücher.de")
    values = recipient_values(
        content, RecipientLinks(content.list_ids), Recipient(bob.pk, bob.email, bob.name, bob.subscriber_uid)
    )
    message = email.message_from_bytes(CompiledMessage(content).render(values), policy=email.policy.default)
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Bob Bücher", "bob@xn--bcher-kva.de")

    send_batch(campaign.pk, worker_id="test")  # raised UnicodeEncodeError for every retry before
    assert campaign.deliveries.get(email="ann@example.com").status == "sent"


def test_the_send_form_refuses_line_breaks_in_subject_and_sender(issue_page):
    weekly = MailingListFactory(slug="weekly")
    data = {"lists": [weekly.pk], "when": "now", "reply_to": ""}
    form = SendCampaignForm(
        data={
            **data,
            "subject": "Hi\r\nBcc: x@evil.example",
            "from_email": "News <news@example.com>\r\nBcc: x@e.example",
        },
        counts={},
    )
    assert not form.is_valid()
    assert set(form.errors) == {"subject", "from_email"}

    form = SendCampaignForm(
        data={**data, "subject": "Hi", "from_email": '"Smith, \\"News\\"" <news@bücher.de>'}, counts={}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["from_email"] == '"Smith, \\"News\\"" <news@xn--bcher-kva.de>'
