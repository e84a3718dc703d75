"""Background tasks for campaigns: thin, JSON ids in, safe to run twice."""

import datetime
import math

from django.conf import settings
from django.utils import timezone
from django_tasks import TaskContext, task
from django_tasks.backends.immediate import ImmediateBackend
from django_tasks_db import DatabaseBackend

from campaigns import abtests, autosend, services
from campaigns.models import Delivery
from campaigns.sending import new_worker_id, send_batch


@task(queue_name="campaigns")
def start_campaign_task(campaign_id: int) -> str:
    """Start a scheduled campaign; refuses (returns "not due") before its scheduled time."""
    return services.start_scheduled_campaign(campaign_id)


@task(queue_name="campaigns")
def decide_ab_test_task(campaign_id: int) -> str:
    """Choose an A/B test's winner once its window has ended and send it to the rest (once)."""
    return abtests.decide(campaign_id)


@task(queue_name="campaigns")
def notify_staff_campaign_paused(campaign_id: int) -> bool:
    """Tell NOTIFY_STAFF that the engine paused a campaign (its relay), with the reason."""
    return services.send_campaign_paused_notice(campaign_id)


@task(queue_name="campaigns")
def autosend_published_task(page_id: int) -> dict:
    """Schedule a just-published issue for the lists that send each issue on publish."""
    return autosend.issue_published(page_id)


@task(queue_name="campaigns")
def digest_task(rule_id: int, due_at: str) -> str:
    """Make a list's digest for its slot ``due_at`` (ISO 8601); refuses before it ("not due")."""
    return autosend.run_digest(rule_id, datetime.datetime.fromisoformat(due_at))


def watchdog_delay() -> datetime.timedelta:
    """How soon a waiting task looks again for a dead worker's rows: just past the heartbeat timeout."""
    config = settings.BROADSHEET
    if float(config["HEARTBEAT_SECONDS"]) > 0:
        return datetime.timedelta(
            seconds=float(config["HEARTBEAT_TIMEOUT_SECONDS"]) + float(config["HEARTBEAT_SECONDS"])
        )
    return datetime.timedelta(seconds=float(config["CLAIM_TIMEOUT_SECONDS"]) + 1)


@task(queue_name="campaigns", takes_context=True)
def send_batch_task(context: TaskContext, campaign_id: int) -> dict:
    """Send one batch of a campaign; enqueues its own successor while work remains.

    The successor is enqueued as soon as the rows are claimed (before sending), so a worker
    killed mid-batch never breaks the chain: the successor settles the dead worker's rows once
    it is seen dead (seconds: engine.worker_is_dead). Each run enqueues at most one successor, so
    the number of batch tasks per campaign stays what start_campaign enqueued. While the relay
    is down nothing is claimed and no successor is enqueued, except by the one run that recorded
    the failure: it comes back at the campaign's ``next_try_at``.

    On the database backend the run records its task result's id: if the process dies, the
    recovery of its deliveries also fails that row (db_worker would leave it "running").
    """
    worker_id = new_worker_id()
    backend = send_batch_task.get_backend()
    task_id = str(context.task_result.id) if isinstance(backend, DatabaseBackend) else ""
    if isinstance(backend, ImmediateBackend) or not backend.supports_defer:
        # Running inline: loop here instead of recursing through enqueue.
        total: dict = {}
        while True:
            result = send_batch(campaign_id, worker_id=worker_id)
            if result["paused"]:
                notify_staff_campaign_paused.enqueue(campaign_id)
            for key, value in result.items():
                counted = isinstance(value, int) and not isinstance(value, bool)
                total[key] = total.get(key, 0) + value if counted else value
            if not result["more"] or not result["claimed"] or result["retry_at"]:
                return total

    def enqueue_successor(state: dict) -> None:
        if state["claimable"]:
            run_after = None
        elif state["quota_spent"]:
            # Nobody can send before the mailer's hour or day frees, so neither retries nor a dead
            # worker's rows need a look sooner: without this a spent daily quota woke every
            # chain each watchdog interval (20 s) for the rest of the day.
            run_after = state["next_retry_at"]
        elif state["unfinished"]:
            run_after = timezone.now() + watchdog_delay()
            if state["next_retry_at"] is not None:
                run_after = min(run_after, state["next_retry_at"])
        else:
            return
        next_task = send_batch_task.using(run_after=run_after) if run_after else send_batch_task
        next_task.enqueue(campaign_id)

    result = send_batch(campaign_id, worker_id=worker_id, on_claimed=enqueue_successor, task_id=task_id)
    if result["paused"]:
        notify_staff_campaign_paused.enqueue(campaign_id)
    if result["waiter"] and result["retry_at"]:
        # This run recorded the relay failure: it is the one task that waits for the relay.
        send_batch_task.using(run_after=datetime.datetime.fromisoformat(result["retry_at"])).enqueue(campaign_id)
    if result["relay_recovered"]:
        # After an outage one chain was left (the waiter): bring back the parallel batches.
        enqueue_batches(campaign_id, extra=True)
    return result


def enqueue_batches(campaign_id: int, recipients: int | None = None, *, extra: bool = False) -> int:
    """Enqueue min(ceil(recipients / BATCH_SIZE), PARALLEL_BATCHES) batch tasks; returns how many.

    ``extra``: one chain already runs (the task that saw the relay come back), so one fewer.
    """
    if recipients is None:
        recipients = Delivery.objects.unfinished().filter(campaign_id=campaign_id).count()
    batch_size = int(settings.BROADSHEET["BATCH_SIZE"])
    parallel = int(settings.BROADSHEET["PARALLEL_BATCHES"])
    count = max(1, min(math.ceil(recipients / batch_size), parallel)) - extra
    for _ in range(count):
        send_batch_task.enqueue(campaign_id)
    return count


def enqueue_start(campaign_id: int, at: datetime.datetime) -> None:
    """Enqueue start_campaign_task to run at ``at`` (a scheduled campaign)."""
    task = start_campaign_task
    if task.get_backend().supports_defer:
        task = task.using(run_after=at)
    # Without run_after support (the immediate backend) the task runs now and refuses to start
    # early; start_due_campaigns() (the send_campaign --due command) starts it when due.
    task.enqueue(campaign_id)


def enqueue_digest(rule_id: int, at: datetime.datetime) -> None:
    """Enqueue digest_task for the slot ``at`` (with run_after where the backend defers)."""
    task = digest_task
    if task.get_backend().supports_defer:
        task = task.using(run_after=at)
    # Without run_after (the immediate backend) it runs now and refuses: "not due".
    task.enqueue(rule_id, at.isoformat())


def enqueue_ab_decision(campaign_id: int, at: datetime.datetime) -> None:
    """Enqueue decide_ab_test_task to run at ``at`` (the end of an A/B test's window).

    Without run_after support (the immediate backend) nothing is enqueued: the task would run
    now, find the window open and enqueue itself again, for ever. There the editor picks the
    winner on the report (as after a lost task: the report keeps offering the choice).
    """
    task = decide_ab_test_task
    if task.get_backend().supports_defer:
        task.using(run_after=at).enqueue(campaign_id)
