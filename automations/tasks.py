"""The automations' scheduler tick: a task that re-enqueues itself, without cron.

``ensure_ticking()`` (called by ``manage.py worker`` when it starts, and by every kick) starts ONE
chain of ``tick_task`` runs, each enqueueing the next AUTOMATION_TICK_SECONDS later
(``campaigns.periodic.TaskChain``, as for the bounce mailbox: several workers or a restart never
start a second chain, and a lost chain is replaced at the next worker start or kick).

``kick()`` asks for a tick as soon as possible (a new subscriber's welcome email): after the
subscribing transaction commits, one extra ``tick_task`` is enqueued unless one is already
waiting (a cache key the tick clears when it starts), so a burst of sign-ups costs one tick.

Every tick is safe to run at any time and twice at once: the work is ``scheduler.tick()``, which
locks each automation and writes through a ledger with a unique constraint.
"""

import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django_tasks import task

from automations import scheduler
from campaigns.periodic import TaskChain

KICK_KEY = "broadsheet:automations-kick"
# A kick's tick that never ran (a lost task) lets the next kick through after this long.
KICK_TIMEOUT_SECONDS = 30


def tick_interval() -> datetime.timedelta:
    return datetime.timedelta(seconds=int(settings.BROADSHEET["AUTOMATION_TICK_SECONDS"]))


CHAIN = TaskChain("broadsheet:automations-tick-chain", tick_interval)


def ensure_ticking(*, now=None) -> bool:
    """Start the tick chain unless a live one exists; True when this call started it. With the
    immediate backend (no worker, no run_after) nothing starts: kicks run the tick in-process."""
    return CHAIN.start(tick_task, now=now)


def kick() -> None:
    """Tick soon (after the current transaction commits): someone just subscribed."""
    transaction.on_commit(_kick_now)


def _kick_now() -> None:
    ensure_ticking()
    if cache.add(KICK_KEY, 1, timeout=KICK_TIMEOUT_SECONDS):
        tick_task.enqueue("")


@task(queue_name="default")
def tick_task(token: str = "") -> dict:
    """Queue everything due now; a chain run (``token``) then enqueues the next run, if current."""
    if not token:
        cache.delete(KICK_KEY)  # kicks arriving from now on need a tick of their own
    elif not CHAIN.is_current(token):
        return {"skipped": "superseded by another tick chain"}
    try:
        results = scheduler.tick()
    finally:
        if token:
            CHAIN.enqueue_next(tick_task, token)
    # JSON keys are strings.
    return {
        str(automation): {str(step): queued for step, queued in steps.items()} for automation, steps in results.items()
    }
