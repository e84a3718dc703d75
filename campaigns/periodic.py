"""Periodic work without cron: ONE chain of runs of a task, each enqueueing the next with
``run_after`` (the database backend and RQ's scheduler both honour it: docs/tasks.md).

The chain's token and next run time live in the shared cache (the database cache, or Redis when
REDIS_URL is set), so starting several workers, or restarting one, never starts a second chain: a
run whose token is no longer the current one stops. A chain whose next run is long overdue (its
task was lost with a killed worker, a flushed Redis) is replaced by the next ``start``. Used by the
bounce mailbox reader (campaigns.bounces.tasks) and the automations' scheduler (automations.tasks).
"""

import datetime
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.utils import timezone


class TaskChain:
    """The chain of ``task`` runs under cache key ``key``, one every ``interval()``; the task takes
    the chain's token as its one argument."""

    def __init__(self, key: str, interval: Callable[[], datetime.timedelta]):
        self.key = key
        self.interval = interval

    def start(self, task, *, now=None) -> bool:
        """Start the chain unless a live one exists (or the backend cannot defer); True if started."""
        if not task.get_backend().supports_defer:
            return False
        now = now or timezone.now()
        state = cache.get(self.key)
        # Alive: its next run is due no more than two intervals (and a minute of slack) ago.
        if state and state["next"] > now - 2 * self.interval() - datetime.timedelta(minutes=1):
            return False
        token = uuid.uuid4().hex
        cache.set(self.key, {"token": token, "next": now}, timeout=None)
        task.enqueue(token)
        return True

    def is_current(self, token: str) -> bool:
        state = cache.get(self.key)
        return bool(state) and state["token"] == token

    def enqueue_next(self, task, token: str) -> None:
        """Record and enqueue the chain's next run, ``interval()`` from now."""
        next_run = timezone.now() + self.interval()
        cache.set(self.key, {"token": token, "next": next_run}, timeout=None)
        task.using(run_after=next_run).enqueue(token)
