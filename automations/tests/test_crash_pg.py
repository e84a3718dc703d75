"""A step's sends survive a real kill -9 of the worker sending them, and two ticks at once queue
each subscriber once (PostgreSQL, real processes and threads: ``make test-services``)."""

import datetime
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from automations.models import Enrollment, StepRun, StepSend
from automations.scheduler import tick
from automations.tests.factories import make_automation, make_email
from campaigns.models import Delivery
from campaigns.tests.test_dead_worker import assert_completed_exactly_once, kill_mid_batch_and_resume, slow_relay  # noqa: F401
from campaigns.tests.test_scaleout import DB_TASKS, make_audience, worker_env
from subscribers.models import Subscriber

RECIPIENTS = 300


def enroll_everyone(automation):
    entered = timezone.now() - datetime.timedelta(minutes=1)
    Enrollment.objects.bulk_create(
        Enrollment(automation=automation, subscriber=subscriber, entered_at=entered)
        for subscriber in Subscriber.objects.all()
    )


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_step_resumes_and_nobody_gets_the_step_twice(
    postgresql,
    newsletter_settings,
    slow_relay,  # noqa: F811 (the fixture, imported)
    settings,
):
    settings.TASKS = DB_TASKS
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 50, "PARALLEL_BATCHES": 2}
    # The workers' shared cache (the mailers' health, the tick chain): the database cache, as deployed.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "broadsheet_cache"}
    }
    call_command("createcachetable", verbosity=0)
    mailing_list, addresses = make_audience(RECIPIENTS)
    sequence = make_automation(mailing_list, make_email("Hello", subject="Hello"))
    enroll_everyone(sequence)
    assert tick() == {sequence.pk: {sequence.steps.get().pk: RECIPIENTS}}  # autocommit: batches enqueued
    campaign = StepRun.objects.get().campaign
    env = worker_env(TASKS_URL="db://", EMAIL_URL=f"{slow_relay.url}?timeout=30", SEND_BATCH_SIZE="50")

    kill_mid_batch_and_resume(campaign, slow_relay, env)

    assert_completed_exactly_once(campaign, slow_relay, addresses)
    assert tick() == {sequence.pk: {sequence.steps.get().pk: 0}}
    assert StepSend.objects.count() == Delivery.objects.count() == RECIPIENTS


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_ticks_at_once_queue_each_subscriber_once(postgresql, newsletter_settings, settings):
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default", "campaigns"]}
    }
    mailing_list, _addresses = make_audience(RECIPIENTS)
    sequence = make_automation(mailing_list, make_email("Hello", subject="Hello"))
    enroll_everyone(sequence)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            results.append(tick())
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    step = sequence.steps.get().pk
    assert sorted(result[sequence.pk][step] for result in results) == [0, RECIPIENTS]
    assert StepSend.objects.count() == Delivery.objects.count() == RECIPIENTS
