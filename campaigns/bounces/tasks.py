"""The periodic bounce mailbox read: a task that re-enqueues itself, without cron.

``start_bounce_polling()`` is called by ``manage.py worker`` when it starts. It starts ONE chain
of ``process_bounces_task`` runs, each enqueueing the next with ``run_after`` BOUNCE_POLL_SECONDS
later (the database backend and RQ's scheduler both honour it: docs/tasks.md). The chain's token
and next run time live in the shared cache (the database cache, or Redis when REDIS_URL is set),
so starting several workers, or restarting one, never starts a second chain: a run whose token
is no longer the current one stops. A chain whose next run is long overdue (its task was lost
with a killed worker) is replaced by the next worker start.
"""

import datetime
import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django_tasks import task

from campaigns.bounces.mailboxes import MailboxError
from campaigns.bounces.processing import process_mailbox

logger = logging.getLogger(__name__)

CHAIN_KEY = "broadsheet:bounce-poll-chain"


def _poll_interval() -> datetime.timedelta:
    return datetime.timedelta(seconds=int(settings.BROADSHEET["BOUNCE_POLL_SECONDS"]))


def start_bounce_polling(*, now=None) -> bool:
    """Start the polling chain unless a live one exists; True when this call started it."""
    if not settings.BROADSHEET["BOUNCE_MAILBOX"] or not process_bounces_task.get_backend().supports_defer:
        return False
    now = now or timezone.now()
    state = cache.get(CHAIN_KEY)
    # Alive: its next run is due no more than two intervals (and a minute of slack) ago.
    if state and state["next"] > now - 2 * _poll_interval() - datetime.timedelta(minutes=1):
        return False
    token = uuid.uuid4().hex
    cache.set(CHAIN_KEY, {"token": token, "next": now}, timeout=None)
    process_bounces_task.enqueue(token)
    return True


@task(queue_name="default")
def process_bounces_task(token: str) -> dict:
    """Read the bounce mailbox once, then enqueue the next run (only if this chain is current)."""
    state = cache.get(CHAIN_KEY)
    if not state or state["token"] != token:
        return {"skipped": "superseded by another polling chain"}
    counts: dict = {}
    try:
        for result in process_mailbox():
            counts[result.kind] = counts.get(result.kind, 0) + 1
    except MailboxError as error:
        logger.warning("bounce mailbox: %s", error)
        counts["error"] = str(error)
    finally:
        next_run = timezone.now() + _poll_interval()
        cache.set(CHAIN_KEY, {"token": token, "next": next_run}, timeout=None)
        process_bounces_task.using(run_after=next_run).enqueue(token)
    return counts
