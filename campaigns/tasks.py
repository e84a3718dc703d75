"""Background tasks for campaigns: thin, JSON ids in, safe to run twice."""

import datetime

from django.conf import settings
from django.utils import timezone
from django_tasks import task
from django_tasks.backends.immediate import ImmediateBackend


@task(queue_name="campaigns")
def start_campaign_task(campaign_id: int) -> str:
    """Start a scheduled campaign; refuses (returns "not due") before its scheduled time."""
    from campaigns.services import start_scheduled_campaign

    return start_scheduled_campaign(campaign_id)


@task(queue_name="campaigns")
def send_batch_task(campaign_id: int) -> dict:
    """Send one batch of a campaign; enqueues its own successor while work remains.

    The successor is enqueued as soon as the rows are claimed (before sending), so a worker
    killed mid-batch never breaks the chain: the successor settles the dead worker's rows once
    their claim is stale. Each run enqueues at most one successor, so the number of batch tasks
    per campaign stays what start_campaign enqueued.
    """
    from campaigns.sending import new_worker_id, send_batch

    worker_id = new_worker_id()
    backend = send_batch_task.get_backend()
    if isinstance(backend, ImmediateBackend) or not backend.supports_defer:
        # Running inline: loop here instead of recursing through enqueue.
        total: dict = {}
        while True:
            result = send_batch(campaign_id, worker_id=worker_id)
            for key, value in result.items():
                counted = isinstance(value, int) and not isinstance(value, bool)
                total[key] = total.get(key, 0) + value if counted else value
            if not result["more"] or not result["claimed"] or result["retry_at"]:
                return total

    def enqueue_successor(state: dict) -> None:
        if state["claimable"]:
            run_after = None
        elif state["unfinished"]:
            stale = float(settings.BROADSHEET["CLAIM_TIMEOUT_SECONDS"])
            run_after = timezone.now() + datetime.timedelta(seconds=stale + 1)
            if state["next_retry_at"] is not None:
                run_after = min(run_after, state["next_retry_at"])
        else:
            return
        next_task = send_batch_task.using(run_after=run_after) if run_after else send_batch_task
        next_task.enqueue(campaign_id)

    return send_batch(campaign_id, worker_id=worker_id, on_claimed=enqueue_successor)
