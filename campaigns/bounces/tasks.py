"""The periodic bounce mailbox read: a task that re-enqueues itself, without cron.

``start_bounce_polling()`` is called by ``manage.py worker`` when it starts. It starts ONE chain
of ``process_bounces_task`` runs, each enqueueing the next BOUNCE_POLL_SECONDS later
(``campaigns.periodic.TaskChain``: one chain however many workers start, a lost one replaced).
"""

import datetime
import logging

from django.conf import settings
from django_tasks import task

from campaigns.bounces.mailboxes import MailboxError
from campaigns.bounces.processing import process_mailbox
from campaigns.periodic import TaskChain

logger = logging.getLogger(__name__)


def _poll_interval() -> datetime.timedelta:
    return datetime.timedelta(seconds=int(settings.BROADSHEET["BOUNCE_POLL_SECONDS"]))


CHAIN = TaskChain("broadsheet:bounce-poll-chain", _poll_interval)


def start_bounce_polling(*, now=None) -> bool:
    """Start the polling chain unless a live one exists; True when this call started it."""
    if not settings.BROADSHEET["BOUNCE_MAILBOX"]:
        return False
    return CHAIN.start(process_bounces_task, now=now)


@task(queue_name="default")
def process_bounces_task(token: str) -> dict:
    """Read the bounce mailbox once, then enqueue the next run (only if this chain is current)."""
    if not CHAIN.is_current(token):
        return {"skipped": "superseded by another polling chain"}
    counts: dict = {}
    try:
        for result in process_mailbox():
            counts[result.kind] = counts.get(result.kind, 0) + 1
    except MailboxError as error:
        logger.warning("bounce mailbox: %s", error)
        counts["error"] = str(error)
    finally:
        CHAIN.enqueue_next(process_bounces_task, token)
    return counts
