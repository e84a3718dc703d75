"""Campaign workflows: snapshot, guards, scheduling, control, test sends."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.utils import timezone, translation

from campaigns import services
from campaigns.models import Campaign, Delivery
from campaigns.tests.factories import make_issue
from subscribers.models import Subscriber, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def weekly():
    return MailingListFactory(name="Weekly", slug="weekly")


@pytest.fixture
def personal_issue(archive_page, newsletter_settings):
    """An issue whose body greets the reader by name (a placeholder editors can type)."""
    body = [("paragraph", "<p>Dear %%name%%, thanks for reading.</p>")]
    return make_issue(archive_page, slug="personal", body=body)


@pytest.fixture
def readers(weekly):
    return [SubscriptionFactory(list=weekly).subscriber for _ in range(3)]


def start(campaign, capture, **kwargs):
    with capture(execute=True):
        return services.start_campaign(campaign.pk, **kwargs)


def test_snapshot_deduplicates_across_lists_and_excludes_the_unsendable(issue_page, weekly):
    daily = MailingListFactory(slug="daily")
    both = SubscriberFactory(email="both@example.com")
    SubscriptionFactory(subscriber=both, list=weekly)
    SubscriptionFactory(subscriber=both, list=daily)
    only_daily = SubscriptionFactory(list=daily).subscriber
    SubscriptionFactory(list=weekly, status=Subscription.Status.UNSUBSCRIBED)
    SubscriptionFactory(list=weekly, status=Subscription.Status.PENDING)
    bounced = SubscriptionFactory(list=weekly).subscriber
    bounced.suppress(Subscriber.State.BOUNCED, "hard bounce")
    SubscriptionFactory(list=MailingListFactory(slug="other"))  # not a target list

    campaign = services.create_campaign(issue_page, [weekly, daily])
    count = services.snapshot_recipients(campaign)

    emails = sorted(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True))
    assert count == 2
    assert emails == sorted([both.email, only_daily.email])
    row = Delivery.objects.get(campaign=campaign, subscriber=both)
    assert (row.status, row.name, row.subscriber_uid) == ("queued", both.name, both.uid)


def test_start_snapshots_renders_and_sends_everyone(issue_page, weekly, readers, django_capture_on_commit_callbacks):
    campaign = services.create_campaign(issue_page, [weekly])

    start(campaign, django_capture_on_commit_callbacks)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert (campaign.recipients, campaign.sent, campaign.failed) == (3, 3, 0)
    assert campaign.page_revision_id == issue_page.live_revision_id
    assert sorted(message.to[0].split("<")[-1].rstrip(">") for message in mail.outbox) == sorted(
        reader.email for reader in readers
    )
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"sent"}


def test_a_campaign_cannot_start_twice(issue_page, weekly, readers, django_capture_on_commit_callbacks):
    campaign = services.create_campaign(issue_page, [weekly])
    start(campaign, django_capture_on_commit_callbacks)

    with pytest.raises(services.CampaignError, match="cannot be sent again"):
        start(campaign, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 3


def test_a_campaign_cannot_start_without_a_postal_address(issue_page, weekly, readers, newsletter_settings):
    newsletter_settings.postal_address = ""
    newsletter_settings.save()
    campaign = services.create_campaign(issue_page, [weekly])

    with pytest.raises(services.CampaignError, match="postal address"):
        services.start_campaign(campaign.pk)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT
    assert not Delivery.objects.exists()


def test_a_campaign_cannot_start_with_an_empty_audience(issue_page, weekly):
    SubscriptionFactory(list=weekly, status=Subscription.Status.PENDING)
    campaign = services.create_campaign(issue_page, [weekly])

    with pytest.raises(services.CampaignError, match="Nobody"):
        services.start_campaign(campaign.pk)


def test_a_campaign_cannot_start_for_a_draft_page(archive_page, newsletter_settings, weekly, readers):
    draft = make_issue(archive_page, slug="draft-issue", publish=False)
    campaign = services.create_campaign(draft, [weekly])

    with pytest.raises(services.CampaignError, match="not published"):
        services.start_campaign(campaign.pk)


def test_starting_needs_the_send_permission(issue_page, weekly, readers, django_user_model):
    editor = django_user_model.objects.create_user("editor", password="x")
    campaign = services.create_campaign(issue_page, [weekly])

    with pytest.raises(PermissionDenied):
        services.start_campaign(campaign.pk, user=editor)

    editor.user_permissions.add(Permission.objects.get(codename="send_campaign", content_type__app_label="campaigns"))
    editor = django_user_model.objects.get(pk=editor.pk)
    services.start_campaign(campaign.pk, user=editor)
    assert Campaign.objects.get(pk=campaign.pk).started_by == editor


def test_the_published_revision_goes_out_not_later_edits(
    issue_page, weekly, readers, django_capture_on_commit_callbacks
):
    campaign = services.create_campaign(issue_page, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)  # started, batches not run yet
    issue_page.subject = "Edited after the start"
    issue_page.save_revision().publish()

    from campaigns.sending import send_batch

    send_batch(campaign.pk, worker_id="w1")

    assert {message.subject for message in mail.outbox} == {"Spring issue: news from the press"}
    issue_page.refresh_from_db()
    assert Campaign.objects.get(pk=campaign.pk).page_revision != issue_page.live_revision


def test_subject_override_is_used(issue_page, weekly, readers, django_capture_on_commit_callbacks):
    campaign = services.create_campaign(issue_page, [weekly], subject="A better subject")
    start(campaign, django_capture_on_commit_callbacks)
    assert {message.subject for message in mail.outbox} == {"A better subject"}


def test_scheduled_campaign_is_not_started_before_its_time(
    issue_page, weekly, readers, django_capture_on_commit_callbacks
):
    campaign = services.create_campaign(issue_page, [weekly])
    at = timezone.now() + datetime.timedelta(hours=1)

    start(campaign, django_capture_on_commit_callbacks, at=at)  # the immediate backend runs the task now

    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == (Campaign.Status.SCHEDULED, at)
    assert not Delivery.objects.exists()
    assert mail.outbox == []


def test_scheduled_campaign_is_started_by_the_task_when_due(
    issue_page, weekly, readers, django_capture_on_commit_callbacks
):
    from campaigns.tasks import start_campaign_task

    campaign = services.create_campaign(issue_page, [weekly])
    start(campaign, django_capture_on_commit_callbacks, at=timezone.now() + datetime.timedelta(hours=1))
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now() - datetime.timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = start_campaign_task.enqueue(campaign.pk)

    assert result.return_value == "started"
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent) == (Campaign.Status.SENT, 3)


def test_scheduled_start_is_enqueued_with_run_after(
    issue_page, weekly, readers, settings, django_capture_on_commit_callbacks
):
    from django_tasks import default_task_backend

    settings.TASKS = {
        "default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default", "campaigns"]}
    }
    at = timezone.now() + datetime.timedelta(hours=2)
    campaign = services.create_campaign(issue_page, [weekly])

    start(campaign, django_capture_on_commit_callbacks, at=at)

    (result,) = default_task_backend.results
    assert result.task.name == "start_campaign_task"
    assert result.task.run_after == at
    assert result.args == [campaign.pk]


def test_pause_then_resume_finishes_the_campaign(issue_page, weekly, readers, django_capture_on_commit_callbacks):
    from campaigns.sending import send_batch

    campaign = services.create_campaign(issue_page, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)
    send_batch(campaign.pk, worker_id="w1", limit=1)
    services.pause_campaign(campaign.pk)

    paused = send_batch(campaign.pk, worker_id="w1")
    assert (paused["claimed"], len(mail.outbox)) == (0, 1)

    with django_capture_on_commit_callbacks(execute=True):
        services.resume_campaign(campaign.pk)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, len(mail.outbox)) == (Campaign.Status.SENT, 3, 3)


def test_cancel_skips_what_was_not_sent(issue_page, weekly, readers, django_capture_on_commit_callbacks):
    from campaigns.sending import send_batch

    campaign = services.create_campaign(issue_page, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)
    send_batch(campaign.pk, worker_id="w1", limit=1)

    services.cancel_campaign(campaign.pk)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.skipped) == (Campaign.Status.CANCELLED, 1, 2)
    assert send_batch(campaign.pk, worker_id="w1")["claimed"] == 0
    assert len(mail.outbox) == 1


def test_retry_failed_requeues_and_sends_them(issue_page, weekly, readers, django_capture_on_commit_callbacks):
    campaign = services.create_campaign(issue_page, [weekly])
    start(campaign, django_capture_on_commit_callbacks)
    Delivery.objects.filter(campaign=campaign, email=readers[0].email).update(status="failed", last_error="550")
    Campaign.objects.filter(pk=campaign.pk).update(sent=2, failed=1)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.retry_failed(campaign.pk) == 1

    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.failed) == (Campaign.Status.SENT, 3, 0)
    assert [message.to for message in mail.outbox] == [[f"{readers[0].name} <{readers[0].email}>"]]


def test_send_test_is_marked_and_never_touches_the_ledger(personal_issue):
    sent = services.send_test(personal_issue, ["editor@example.com", "boss@example.com"])

    assert sent == 2
    assert not Campaign.objects.exists() and not Delivery.objects.exists()
    assert [message.subject for message in mail.outbox] == ["[TEST] Spring issue: news from the press"] * 2
    assert "Dear Sample Reader," in mail.outbox[0].body


def test_send_test_of_a_campaign_uses_a_real_subscriber(personal_issue, weekly, readers):
    campaign = services.create_campaign(personal_issue, [weekly])

    services.send_test(campaign, ["editor@example.com"], subscriber=readers[0])

    assert f"Dear {readers[0].name}," in mail.outbox[0].body
    assert mail.outbox[0].to == [f"{readers[0].name} <editor@example.com>"]
    assert not Delivery.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT


def test_send_permission_exists():
    assert Permission.objects.filter(codename="send_campaign", content_type__app_label="campaigns").exists()


@pytest.mark.parametrize(
    ("site_language", "subject_start", "words"),
    [("en", "Campaign paused", "Sent so far"), ("zh-hans", "邮件活动已暂停", "已发送")],
)
def test_the_paused_notice_speaks_the_sites_language_whatever_is_active(
    campaign, settings, site_language, subject_start, words
):
    """A staff notice, like the new-subscriber one: in LANGUAGE_CODE, not in the language of
    whichever request or worker happens to pause the campaign."""
    settings.LANGUAGE_CODE = site_language
    settings.BROADSHEET = {**settings.BROADSHEET, "NOTIFY_STAFF": ["editor@example.com"]}
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED, last_error="535 5.7.8 refused")

    with translation.override("zh-hans" if site_language == "en" else "en"):
        assert services.send_campaign_paused_notice(campaign.pk)

    (notice,) = mail.outbox
    assert notice.subject.startswith(subject_start) and campaign.page.title in notice.subject
    assert words in notice.body and "535 5.7.8 refused" in notice.body


def test_previews_and_test_sends_of_a_chinese_issue_greet_a_chinese_sample_reader(personal_issue, translate_page):
    chinese = translate_page(personal_issue, "zh-hans", subject="春季刊")

    with translation.override("en"):  # the editor's admin language does not decide
        sent = services.send_test(chinese, ["editor@example.com"])

    assert sent == 1 and "示例读者" in mail.outbox[0].body and "Sample Reader" not in mail.outbox[0].body
    assert chinese.sample_recipient()["name"] == "示例读者"
    with translation.override("zh-hans"):
        assert personal_issue.sample_recipient()["name"] == "Sample Reader"
