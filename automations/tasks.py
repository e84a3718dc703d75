"""The automations' scheduler tick: a task that re-enqueues itself, without cron.

``ensure_ticking()`` (called by ``manage.py worker`` when it starts, and by every kick) starts ONE
chain of ``tick_task`` runs, each enqueueing the next with ``run_after`` AUTOMATION_TICK_SECONDS
later (the database backend and RQ's scheduler both honour it: docs/tasks.md). As for the bounce
mailbox, the chain's token and next run time live in the shared cache: several workers or a
restart never start a second chain (a run whose token is no longer current stops), and a chain
whose next run is long overdue (its task lost with a killed worker, a flushed Redis) is replaced
at the next worker start or kick.

``kick()`` asks for a tick as soon as possible (a new subscriber's welcome email): after the
subscribing transaction commits, one extra ``tick_task`` is enqueued unless one is already
waiting (a cache key the tick clears when it starts), so a burst of sign-ups costs one tick.

Every tick is safe to run at any time and twice at once: the work is ``scheduler.tick()``, which
locks each automation and writes through a ledger with a unique constraint.
"""

import datetime
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from automations import scheduler

CHAIN_KEY = "broadsheet:automations-tick-chain"
KICK_KEY = "broadsheet:automations-kick"
# A kick's tick that never ran (a lost task) lets the next kick through after this long.
KICK_TIMEOUT_SECONDS = 30


def tick_interval() -> datetime.timedelta:
    return datetime.timedelta(seconds=int(settings.BROADSHEET["AUTOMATION_TICK_SECONDS"]))


def ensure_ticking(*, now=None) -> bool:
    """Start the tick chain unless a live one exists; True when this call started it."""
    if not tick_task.get_backend().supports_defer:
        return False  # the immediate backend: kicks run the tick in-process, nothing waits
    now = now or timezone.now()
    state = cache.get(CHAIN_KEY)
    # Alive: its next run is due no more than two intervals (and a minute of slack) ago.
    if state and state["next"] > now - 2 * tick_interval() - datetime.timedelta(minutes=1):
        return False
    token = uuid.uuid4().hex
    cache.set(CHAIN_KEY, {"token": token, "next": now}, timeout=None)
    tick_task.enqueue(token)
    return True


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
    else:
        state = cache.get(CHAIN_KEY)
        if not state or state["token"] != token:
            return {"skipped": "superseded by another tick chain"}
    try:
        results = scheduler.tick()
    finally:
        if token:
            next_run = timezone.now() + tick_interval()
            cache.set(CHAIN_KEY, {"token": token, "next": next_run}, timeout=None)
            tick_task.using(run_after=next_run).enqueue(token)
    # JSON keys are strings.
    return {
        str(automation): {str(step): queued for step, queued in steps.items()} for automation, steps in results.items()
    }
