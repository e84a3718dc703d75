"""Sequences: each subscriber on their own clock (a frozen one here: the scheduler's ``now``),
stopped by leaving, never a step twice, crash-safe."""

import datetime

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automations import scheduler
from automations.models import Enrollment, StepRun, StepSend
from automations.scheduler import restart, tick
from automations.tests.factories import make_automation, make_email
from campaigns.models import Campaign, Delivery
from subscribers import services
from subscribers.models import Subscriber
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def weekly(newsletter_settings):
    return MailingListFactory(slug="weekly", name="The Weekly")


@pytest.fixture
def sequence(weekly):
    """Three emails: at once, a day later, then two days and three hours after that."""
    emails = [make_email(f"Step {n}", subject=f"Step {n}", text=f"Text of step {n}.") for n in (1, 2, 3)]
    return make_automation(weekly, *emails, delays=[(0, 0, 0), (1, 0, 0), (2, 3, 0)])


def enter(sequence, address, at=T0):
    subscriber = SubscriberFactory(email=address)
    SubscriptionFactory(list=sequence.list, subscriber=subscriber)
    return Enrollment.objects.create(automation=sequence, subscriber=subscriber, entered_at=at).subscriber


def received(address):
    """The automation emails ``address`` received, in order (not the confirmation emails)."""
    return [m.subject for m in mail.outbox if address in m.to[0] and not m.subject.startswith("Please confirm")]


def run(capture, now):
    with capture(execute=True):
        return tick(now)


def test_each_step_at_its_time_on_each_subscribers_clock(sequence, django_capture_on_commit_callbacks):
    enter(sequence, "early@example.com")
    enter(sequence, "late@example.com", at=T0 + 5 * HOUR)
    run(django_capture_on_commit_callbacks, T0)
    assert received("early@example.com") == ["Step 1"]
    assert received("late@example.com") == []
    run(django_capture_on_commit_callbacks, T0 + DAY - datetime.timedelta(minutes=1))
    assert received("early@example.com") == ["Step 1"]
    assert received("late@example.com") == ["Step 1"]  # entered at T0+5h
    run(django_capture_on_commit_callbacks, T0 + DAY)
    assert received("early@example.com") == ["Step 1", "Step 2"]
    assert received("late@example.com") == ["Step 1"]
    step3_due = T0 + DAY + 2 * DAY + 3 * HOUR
    run(django_capture_on_commit_callbacks, step3_due - datetime.timedelta(seconds=1))
    assert received("early@example.com") == ["Step 1", "Step 2"]
    run(django_capture_on_commit_callbacks, step3_due)
    run(django_capture_on_commit_callbacks, step3_due + 30 * DAY)
    assert received("early@example.com") == ["Step 1", "Step 2", "Step 3"]
    assert received("late@example.com") == ["Step 1", "Step 2", "Step 3"]
    # One ordinary campaign per step (and published revision), each with both readers once.
    assert sorted(Campaign.objects.values_list("recipients", flat=True)) == [2, 2, 2]


def test_leaving_stops_it_and_rejoining_does_not_repeat_or_resume(sequence, django_capture_on_commit_callbacks):
    subscriber = enter(sequence, "leaver@example.com")
    run(django_capture_on_commit_callbacks, T0)
    with django_capture_on_commit_callbacks(execute=True):
        services.unsubscribe(subscriber.uid, [sequence.list_id], method="link")
    run(django_capture_on_commit_callbacks, T0 + 10 * DAY)
    assert received("leaver@example.com") == ["Step 1"]
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(email="leaver@example.com", lists=[sequence.list], consent_text="Again")
    run(django_capture_on_commit_callbacks, T0 + 20 * DAY)
    assert received("leaver@example.com") == ["Step 1"]
    assert Enrollment.objects.get(subscriber=subscriber).state == Enrollment.State.STOPPED


def test_an_editor_restart_sends_the_steps_again(sequence, django_capture_on_commit_callbacks):
    subscriber = enter(sequence, "again@example.com")
    run(django_capture_on_commit_callbacks, T0 + 10 * DAY)
    run(django_capture_on_commit_callbacks, T0 + 20 * DAY)
    run(django_capture_on_commit_callbacks, T0 + 30 * DAY)
    assert received("again@example.com") == ["Step 1", "Step 2", "Step 3"]
    assert restart(sequence, [subscriber.pk]) == 1
    run(django_capture_on_commit_callbacks, Enrollment.objects.get().entered_at)
    assert received("again@example.com") == ["Step 1", "Step 2", "Step 3", "Step 1"]


def test_suppression_holds_the_next_step(sequence, django_capture_on_commit_callbacks):
    subscriber = enter(sequence, "bounced@example.com")
    run(django_capture_on_commit_callbacks, T0)
    Subscriber.objects.get(pk=subscriber.pk).suppress(Subscriber.State.BOUNCED, "550 no such user")
    run(django_capture_on_commit_callbacks, T0 + 10 * DAY)
    assert received("bounced@example.com") == ["Step 1"]


def test_editing_a_step_affects_those_who_have_not_reached_it(sequence, django_capture_on_commit_callbacks):
    enter(sequence, "first@example.com")
    run(django_capture_on_commit_callbacks, T0)
    second = sequence.steps.get(sort_order=1).page
    enter(sequence, "second@example.com", at=T0 + 2 * DAY)
    run(django_capture_on_commit_callbacks, T0 + DAY)  # first reaches step 2 as published now
    second.subject = "Step 2, rewritten"
    second.save_revision().publish()
    run(django_capture_on_commit_callbacks, T0 + 3 * DAY)  # second reaches step 1 and then step 2
    run(django_capture_on_commit_callbacks, T0 + 3 * DAY + datetime.timedelta(seconds=1))
    assert received("first@example.com")[:2] == ["Step 1", "Step 2"]
    assert received("second@example.com")[:1] == ["Step 1"]
    run(django_capture_on_commit_callbacks, T0 + 4 * DAY)
    assert received("second@example.com")[:2] == ["Step 1", "Step 2, rewritten"]
    assert StepRun.objects.filter(step__sort_order=1).count() == 2  # one run per published revision


def test_a_step_inserted_before_someones_position_is_not_sent_to_them(sequence, django_capture_on_commit_callbacks):
    enter(sequence, "ahead@example.com")
    run(django_capture_on_commit_callbacks, T0)
    run(django_capture_on_commit_callbacks, T0 + DAY)
    # A new first email: they are past it (they reached steps after it).
    sequence.steps.create(page=make_email("Step 0", subject="Step 0"), sort_order=-1)
    run(django_capture_on_commit_callbacks, T0 + 2 * DAY)
    assert "Step 0" not in received("ahead@example.com")


def test_a_crash_during_the_tick_queues_nothing_and_the_next_tick_sends_once(
    sequence, monkeypatch, django_capture_on_commit_callbacks
):
    enter(sequence, "crash@example.com")

    def killed(*args, **kwargs):
        raise SystemExit("kill -9")  # the process dies after the ledger INSERT, before the snapshot commits

    monkeypatch.setattr(scheduler, "start_campaign", killed)
    with pytest.raises(SystemExit):
        run(django_capture_on_commit_callbacks, T0)
    assert StepSend.objects.count() == 0
    assert Delivery.objects.count() == 0
    monkeypatch.undo()
    run(django_capture_on_commit_callbacks, T0 + HOUR)
    run(django_capture_on_commit_callbacks, T0 + 2 * HOUR)
    assert received("crash@example.com") == ["Step 1"]


def test_a_crash_before_the_batches_ran_resumes_without_duplicates(sequence, django_capture_on_commit_callbacks):
    for index in range(3):
        enter(sequence, f"r{index}@example.com")
    with django_capture_on_commit_callbacks(execute=False):  # the worker dies before sending anything
        tick(T0)
    assert Delivery.objects.filter(status=Delivery.Status.QUEUED).count() == 3
    run(django_capture_on_commit_callbacks, T0 + HOUR)  # queues nobody again; the engine's batches resume
    campaign = Campaign.objects.get()
    from campaigns.tasks import enqueue_batches

    with django_capture_on_commit_callbacks(execute=True):
        enqueue_batches(campaign.pk)
    assert [received(f"r{index}@example.com") for index in range(3)] == [["Step 1"]] * 3
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 3


def test_a_finished_run_campaign_with_rows_left_is_reopened(sequence, django_capture_on_commit_callbacks):
    enter(sequence, "one@example.com")
    run(django_capture_on_commit_callbacks, T0)
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.SENT
    enter(sequence, "two@example.com")
    with django_capture_on_commit_callbacks(execute=False):
        tick(T0 + HOUR)  # snapshotted into the run, batches not yet run
    Campaign.objects.filter(pk=campaign.pk).finish()  # the engine's finish raced the snapshot
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT)
    run(django_capture_on_commit_callbacks, T0 + 2 * HOUR)
    assert received("two@example.com") == ["Step 1"]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.recipients, campaign.sent) == (Campaign.Status.SENT, 2, 2)


def test_the_due_work_is_set_based_not_a_query_per_subscriber(sequence, django_capture_on_commit_callbacks):
    def queries_for(count, at):
        for index in range(count):
            enter(sequence, f"bulk{at.minute}-{index}@example.com", at=at)
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
            assert tick(at) == {
                sequence.pk: {step.pk: (count if step.sort_order == 0 else 0) for step in sequence.steps.all()}
            }
        return len(queries)

    queries_for(1, T0)  # opens the first step's run
    assert queries_for(2, T0 + datetime.timedelta(minutes=1)) == queries_for(40, T0 + datetime.timedelta(minutes=2))


def test_send_window_in_the_subscribers_time_zone_else_the_sites(weekly, settings, django_capture_on_commit_callbacks):
    settings.TIME_ZONE = "UTC"
    sequence = make_automation(weekly, make_email("Hello", subject="Hello"), send_window=True)
    tokyo = enter(sequence, "tokyo@example.com")
    tokyo.attributes = {"time_zone": "Asia/Tokyo"}
    tokyo.save()
    hostile = enter(sequence, "hostile@example.com")
    hostile.attributes = {"time_zone": "'; DROP TABLE x; --"}
    hostile.save()
    enter(sequence, "unknown@example.com")
    # 10:00 UTC is 19:00 in Tokyo: the site's window is open, Tokyo's closed.
    run(django_capture_on_commit_callbacks, T0)
    assert received("unknown@example.com") == ["Hello"]
    assert received("hostile@example.com") == ["Hello"]  # not a zone: the site's
    assert received("tokyo@example.com") == []
    # 01:00 UTC next day is 10:00 in Tokyo; the site's window is closed.
    run(django_capture_on_commit_callbacks, T0 + 15 * HOUR)
    assert received("tokyo@example.com") == ["Hello"]
