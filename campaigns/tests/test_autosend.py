"""Issues that send themselves (issue 12): on publish with a review delay, and weekly digests."""

import datetime

import pytest
from django.utils import timezone

from campaigns import autosend, services
from campaigns.models import AutoSendRule, Campaign, IssueSend, NewsletterIssuePage
from campaigns.tests.factories import make_issue
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def weekly(newsletter_settings):
    """A list with three confirmed readers."""
    mailing_list = MailingListFactory(slug="weekly", name="Weekly")
    for index in range(3):
        SubscriptionFactory(list=mailing_list, subscriber=SubscriberFactory(email=f"reader{index}@example.com"))
    return mailing_list


@pytest.fixture
def on_publish(weekly):
    return AutoSendRule.objects.create(
        mailing_list=weekly, mode=AutoSendRule.Mode.ON_PUBLISH, review_delay=30, active_since=timezone.now()
    )


@pytest.fixture
def publish(archive_page, django_capture_on_commit_callbacks):
    """``publish(slug, **fields)``: a new issue published as an editor would (the publish signal's
    task runs once the publish commits); ``publish(page)`` publishes an existing one again."""

    def publish_issue(page_or_slug, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            if isinstance(page_or_slug, str):
                fields.setdefault("title", page_or_slug.replace("-", " ").title())
                return make_issue(archive_page, slug=page_or_slug, **fields)
            page_or_slug.save_revision().publish()
        page_or_slug.refresh_from_db()
        return page_or_slug

    return publish_issue


def automatic_campaigns(mailing_list):
    return Campaign.objects.filter(lists=mailing_list, autosends__isnull=False).distinct()


# --- On publish -----------------------------------------------------------------------------------


def test_publishing_schedules_exactly_one_campaign_after_the_review_delay(on_publish, weekly, publish):
    issue = publish("issue-7")

    campaign = automatic_campaigns(weekly).get()
    assert campaign.page_id == issue.pk
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at == issue.last_published_at + datetime.timedelta(minutes=30)
    assert list(campaign.lists.all()) == [weekly]
    # Not before its time: the start task refuses, and nothing is queued yet.
    assert services.start_scheduled_campaign(campaign.pk) == "not due"
    assert not campaign.deliveries.exists()


def test_the_scheduled_campaign_sends_like_any_other_when_due(
    on_publish, weekly, publish, mailoutbox, django_capture_on_commit_callbacks
):
    publish("issue-7")
    campaign = automatic_campaigns(weekly).get()
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now() - datetime.timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert services.start_scheduled_campaign(campaign.pk) == "started"

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert campaign.sent == 3
    assert sorted(message.to[0].split("<")[-1].rstrip(">") for message in mailoutbox) == [
        f"reader{i}@example.com" for i in range(3)
    ]


def test_cancelling_during_the_review_delay_sends_nothing(on_publish, weekly, publish, mailoutbox):
    publish("issue-7")
    campaign = automatic_campaigns(weekly).get()

    services.cancel_campaign(campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now() - datetime.timedelta(seconds=1))

    assert services.start_scheduled_campaign(campaign.pk) == "not scheduled"
    assert mailoutbox == []
    # ... and publishing the issue again does not bring it back.
    publish(NewsletterIssuePage.objects.get(pk=campaign.page_id))
    assert automatic_campaigns(weekly).count() == 1


def test_republishing_an_edited_issue_does_not_make_a_second_campaign(on_publish, weekly, publish):
    issue = publish("issue-7")
    issue.subject = "Corrected subject"
    publish(issue)

    assert automatic_campaigns(weekly).count() == 1
    assert IssueSend.objects.filter(mailing_list=weekly).count() == 1
    # A task run twice does nothing the second time either.
    assert autosend.issue_published(issue.pk) == {"weekly": "already sent"}


def test_a_translation_is_the_same_issue(
    on_publish, weekly, publish, translate_page, django_capture_on_commit_callbacks
):
    issue = publish("issue-7")
    with django_capture_on_commit_callbacks(execute=True):
        translate_page(issue, "zh-hans", subject="春季号")

    assert automatic_campaigns(weekly).count() == 1


def test_an_issue_sent_by_hand_is_not_sent_again_automatically(on_publish, weekly, archive_page, publish):
    on_publish.paused = True
    on_publish.save()
    issue = publish("issue-7")  # while paused: nothing automatic
    manual = services.create_campaign(issue, [weekly])
    services.start_campaign(manual.pk, at=timezone.now() + datetime.timedelta(hours=2))
    autosend.resume_rule(on_publish.pk)

    publish(issue)

    assert autosend.issue_published(issue.pk) == {"weekly": "sent by hand"}
    assert list(Campaign.objects.filter(page=issue)) == [manual]


def test_a_paused_rule_creates_nothing_and_other_lists_are_not_touched(on_publish, weekly, publish):
    other = MailingListFactory(slug="monthly")
    AutoSendRule.objects.create(mailing_list=other, mode=AutoSendRule.Mode.DIGEST)
    autosend.pause_rule(on_publish.pk)

    publish("issue-7")

    assert not Campaign.objects.exists()


def test_an_issue_published_before_the_rule_existed_is_not_sent(weekly, publish):
    issue = publish("issue-7")
    AutoSendRule.objects.create(mailing_list=weekly, mode=AutoSendRule.Mode.ON_PUBLISH)

    publish(issue)

    assert not Campaign.objects.exists()


def test_a_campaign_that_cannot_start_leaves_nothing_and_says_why(newsletter_settings, publish):
    empty = MailingListFactory(slug="empty")
    rule = AutoSendRule.objects.create(mailing_list=empty, mode=AutoSendRule.Mode.ON_PUBLISH)

    issue = publish("issue-7")  # the publish itself succeeds

    assert issue.live
    assert not Campaign.objects.exists()
    assert not IssueSend.objects.exists()
    rule.refresh_from_db()
    assert "Nobody on these lists can receive it" in rule.last_error
