"""A campaign of a translated issue: each subscriber gets the version in their language, else the
issue's own; rendered once per language; reports split by language; single-language lists."""

from email.utils import parseaddr

import pytest
from django.core import mail
from django.utils import translation

from campaigns import services
from campaigns.models import CampaignEdition, Delivery
from campaigns.reporting import language_figures
from campaigns.sending import send_batch
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

CHINESE_SUBJECT = "春季刊：来自印刷厂的消息"


@pytest.fixture
def chinese_issue(issue_page, translate_page):
    return translate_page(
        issue_page,
        "zh-hans",
        title="第一期：春季",
        subject=CHINESE_SUBJECT,
        preheader="三篇报道和一句引语",
        body=[("paragraph", "<p>欢迎阅读我们的第一篇报道。印刷术是中国古代四大发明之一。</p>")],
    )


@pytest.fixture
def readers(db):
    weekly = MailingListFactory(slug="weekly")
    for email, language in [
        ("ann@example.com", "en"),
        ("li@example.com", "zh-hans"),
        ("wang@example.com", "zh-CN"),  # as an import file may have it
        ("marie@example.com", "fr"),  # no French edition: the issue's own language
    ]:
        SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email=email, language=language))
    return weekly


def send_all(campaign):
    while send_batch(campaign.pk, worker_id="w1")["more"]:
        pass


def messages_by_address():
    return {parseaddr(message.to[0])[1]: message for message in mail.outbox}


def start(page, lists, capture):
    campaign = services.create_campaign(page, lists)
    with capture(execute=False):
        services.start_campaign(campaign.pk)
    return campaign


def test_chinese_subscribers_get_the_chinese_issue_and_the_others_the_english_one(
    chinese_issue, issue_page, readers, django_capture_on_commit_callbacks
):
    campaign = start(issue_page, [readers], django_capture_on_commit_callbacks)
    send_all(campaign)

    messages = messages_by_address()
    assert set(messages) == {"ann@example.com", "li@example.com", "wang@example.com", "marie@example.com"}
    for address in ("li@example.com", "wang@example.com"):
        message = messages[address]
        assert message.subject == CHINESE_SUBJECT
        assert "印刷术是中国古代四大发明之一" in message.body
        assert "Welcome to" not in message.body
        assert "退订" in message.body  # the layout's own words are Chinese too
    for address in ("ann@example.com", "marie@example.com"):
        message = messages[address]
        assert message.subject == "Spring issue: news from the press"
        assert "Welcome to" in message.body
        assert "印刷术" not in message.body
        assert "Unsubscribe" in message.body
    assert dict(Delivery.objects.values_list("email", "language")) == {
        "ann@example.com": "en",
        "li@example.com": "zh-hans",
        "wang@example.com": "zh-hans",
        "marie@example.com": "en",
    }


def test_each_language_is_rendered_once_at_the_start(
    chinese_issue, issue_page, readers, django_capture_on_commit_callbacks
):
    campaign = start(issue_page, [readers], django_capture_on_commit_callbacks)

    edition = CampaignEdition.objects.get(campaign=campaign)
    assert (edition.language, edition.subject, edition.page_id) == ("zh-hans", CHINESE_SUBJECT, chinese_issue.pk)
    assert "%%unsubscribe_url%%" in edition.html and "%%unsubscribe_url%%" in edition.text
    assert "印刷术" not in campaign.html


def test_the_english_version_stays_english_when_an_editor_works_in_chinese(
    chinese_issue, issue_page, readers, django_capture_on_commit_callbacks
):
    with translation.override("zh-hans"):
        campaign = start(issue_page, [readers], django_capture_on_commit_callbacks)

    campaign.refresh_from_db()
    assert "Unsubscribe" in campaign.text and "退订" not in campaign.text


def test_an_untranslated_issue_goes_to_everyone_in_its_own_language(
    issue_page, readers, django_capture_on_commit_callbacks
):
    campaign = start(issue_page, [readers], django_capture_on_commit_callbacks)
    send_all(campaign)

    assert {message.subject for message in mail.outbox} == {"Spring issue: news from the press"}
    assert not CampaignEdition.objects.exists()


def test_a_single_language_list_gets_its_language_whatever_the_subscribers_say(
    chinese_issue, issue_page, django_capture_on_commit_callbacks
):
    chinese_list = MailingListFactory(slug="zh", language="zh-hans")
    SubscriptionFactory(list=chinese_list, subscriber=SubscriberFactory(email="ann@example.com", language="en"))

    campaign = start(issue_page, [chinese_list], django_capture_on_commit_callbacks)
    send_all(campaign)

    assert mail.outbox[0].subject == CHINESE_SUBJECT


def test_the_report_splits_the_figures_by_language(
    chinese_issue, issue_page, readers, django_capture_on_commit_callbacks
):
    campaign = start(issue_page, [readers], django_capture_on_commit_callbacks)
    send_all(campaign)
    Delivery.objects.filter(email="li@example.com").update(open_count=1, click_count=2)

    rows = {row.language: row for row in language_figures(campaign)}

    assert set(rows) == {"en", "zh-hans"}
    assert (rows["en"].recipients, rows["en"].sent, rows["en"].opened) == (2, 2, 0)
    assert (rows["zh-hans"].recipients, rows["zh-hans"].sent, rows["zh-hans"].opened, rows["zh-hans"].clicked) == (
        2,
        2,
        1,
        1,
    )
    assert rows["zh-hans"].name == "简体中文"


def test_a_campaign_in_one_language_has_no_language_breakdown_and_reads_no_deliveries(
    issue_page, readers, django_capture_on_commit_callbacks, django_assert_num_queries
):
    campaign = start(issue_page, [readers], django_capture_on_commit_callbacks)
    send_all(campaign)

    with django_assert_num_queries(1):  # is there an edition? no: the deliveries are not aggregated
        assert language_figures(campaign) == []


def test_each_edition_carries_the_footer_text_of_its_language(
    chinese_issue, issue_page, readers, newsletter_settings, django_capture_on_commit_callbacks
):
    from mail.models import FooterTranslation

    newsletter_settings.footer_text = "You signed up on our website."
    newsletter_settings.save()
    FooterTranslation.objects.create(
        newsletter_settings=newsletter_settings, language="zh-hans", text="您在我们的网站上订阅了本通讯。"
    )

    campaign = start(issue_page, [readers], django_capture_on_commit_callbacks)
    send_all(campaign)

    messages = messages_by_address()
    assert "您在我们的网站上订阅了本通讯。" in messages["li@example.com"].body
    assert "You signed up" not in messages["li@example.com"].body
    assert "You signed up on our website." in messages["ann@example.com"].body
    assert "您在我们的网站上" not in messages["ann@example.com"].body
    # The line naming the list and the address is the reader's language too.
    assert (
        "li@example.com" in messages["li@example.com"].body
        and "You are receiving" not in messages["li@example.com"].body
    )


def test_the_sent_chinese_text_keeps_the_long_unsubscribe_link_whole_and_the_wire_lines_short(
    chinese_issue, issue_page, readers, django_capture_on_commit_callbacks
):
    """RFC 5322 2.1.1: wire lines SHOULD be at most 78 characters, MUST be at most 998. The
    filled unsubscribe link is longer than 78 columns; it stands alone and whole in the text, and
    the text part goes out quoted-printable, so every line on the wire is short."""
    campaign = start(issue_page, [readers], django_capture_on_commit_callbacks)
    send_all(campaign)

    message = messages_by_address()["li@example.com"]
    long_lines = [line for line in message.body.splitlines() if len(line) > 78]
    assert long_lines and all(line.startswith("(http") and " " not in line for line in long_lines), long_lines
    assert any("/newsletter/unsubscribe/" in line for line in long_lines)
    wire = message.message().as_bytes()
    assert max(len(line.rstrip(b"\r")) for line in wire.split(b"\n")) <= 78
