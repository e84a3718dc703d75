"""Per-mailer quotas: a rolling daily limit shared by every worker, campaigns spread over days."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone
from django_tasks import default_task_backend

from campaigns.models import Campaign, Delivery
from campaigns.sending import send_batch
from campaigns.sending.throttle import DAY, HOUR, Throttle, expected_finish
from campaigns.tasks import send_batch_task
from campaigns.tests.factories import run_now, started_campaign

pytestmark = pytest.mark.django_db


def daily(clock, per_day, mailer="gmail"):
    return Throttle(mailer, per_second=0, per_hour=0, per_day=per_day, clock=clock, sleep=clock.sleep)


def test_daily_quota_is_shared_by_every_worker(clock):
    one, two = daily(clock, 5), daily(clock, 5)

    assert one.take(3) == 3
    assert two.take(3) == 2
    assert two.take(1) == 0
    assert one.take(1) == 0


def test_daily_quota_is_a_rolling_24_hours_not_a_calendar_day(clock):
    assert daily(clock, 5).take(5) == 5
    clock.now += 23 * HOUR  # past midnight, but within 24 hours of the sends

    throttle = daily(clock, 5)
    assert throttle.take(1) == 0
    # They stop counting once 24 hours (plus the hour they were counted in) have passed.
    assert throttle.resume_at == pytest.approx(clock.start + 25 * HOUR)
    clock.now = clock.start + 25 * HOUR + 1
    assert daily(clock, 5).take(5) == 5


def test_daily_quota_is_per_mailer(clock):
    assert daily(clock, 2, "gmail").take(2) == 2

    assert daily(clock, 2, "qq").take(2) == 2


def test_blocked_until_says_when_the_day_frees(clock):
    throttle = daily(clock, 3)
    assert throttle.blocked_until() is None
    throttle.take(3)

    assert daily(clock, 3).blocked_until() == pytest.approx(clock.start + 25 * HOUR)


@pytest.fixture
def gmail(settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LIMITS": {"per_second": 0, "per_hour": 0, "per_day": 4},
        }
    }


def test_a_campaign_larger_than_a_days_quota_stops_at_the_quota_and_comes_back(
    gmail, issue_page, django_capture_on_commit_callbacks
):
    campaign = started_campaign(issue_page, 6, django_capture_on_commit_callbacks)

    first = send_batch(campaign.pk, worker_id="w1")

    assert first["sent"] == 4 and len(mail.outbox) == 4
    assert first["retry_at"] is not None
    # The next batch (the successor task) claims nothing while the day's quota is spent, and
    # says when to come back: about a day later, not in a busy loop.
    succeeded = []
    second = send_batch(campaign.pk, worker_id="w2", on_claimed=succeeded.append)
    assert second["claimed"] == 0 and second["more"] is True
    retry_at = datetime.datetime.fromisoformat(second["retry_at"])
    assert retry_at - timezone.now() > datetime.timedelta(hours=23)
    # What the successor task is told: rows remain, none claimable before the day frees.
    assert succeeded == [{"claimable": False, "unfinished": True, "next_retry_at": retry_at, "quota_spent": True}]
    assert Delivery.objects.filter(campaign=campaign, status="queued", claimed_by="").count() == 2
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_expected_finish_spreads_over_days(gmail, settings):
    settings.MAILERS["default"]["LIMITS"] = {"per_second": 0, "per_hour": 100, "per_day": 500}
    now = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=datetime.UTC)

    assert expected_finish(300, now=now) == now + datetime.timedelta(hours=3)
    # 500 today, 500 tomorrow, 200 the day after at 100 an hour.
    assert expected_finish(1200, now=now) == now + datetime.timedelta(seconds=2 * DAY + 2 * HOUR)


def test_no_expected_finish_without_limits(settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

    assert expected_finish(1000) is None


def test_a_spent_days_quota_puts_the_batch_chain_to_sleep_until_it_frees(
    gmail, issue_page, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default", "campaigns"]}
    }
    campaign = started_campaign(issue_page, 6, django_capture_on_commit_callbacks)
    run_now(send_batch_task, campaign.pk)  # sends the day's 4; its successor comes to look
    assert len(mail.outbox) == 4
    default_task_backend.clear()

    run_now(send_batch_task, campaign.pk)  # the successor finds the day spent

    # One successor, due when the rolling day frees (not every watchdog interval all day long).
    (successor,) = default_task_backend.results
    assert successor.task.run_after - timezone.now() > datetime.timedelta(hours=23)
    assert len(mail.outbox) == 4
