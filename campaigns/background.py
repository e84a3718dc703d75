"""The background work the campaign workflows ask for, behind one seam.

``campaigns.tasks`` runs the workflows (a task takes an id and calls ``campaigns.services``), so
the workflows must not import the task module back. They call the functions here, after their
transaction commits; ``campaigns.signal_handlers.connect()`` (run by ``CampaignsConfig.ready()``)
installs ``campaigns.tasks`` as the implementation, the way it connects signal receivers. A test
or a second queue (another task library) installs its own object with the same functions.
"""

import datetime
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


class TaskQueue(Protocol):
    def enqueue_batches(self, campaign_id: int, recipients: int | None = None, *, extra: bool = False) -> int: ...

    def enqueue_start(self, campaign_id: int, at: datetime.datetime) -> None: ...

    def enqueue_ab_decision(self, campaign_id: int, at: datetime.datetime) -> None: ...

    def enqueue_digest(self, rule_id: int, at: datetime.datetime) -> None: ...


_queue: TaskQueue | None = None


def install(queue: TaskQueue) -> None:
    """Make ``queue`` the one the workflows enqueue on (``CampaignsConfig.ready()`` installs campaigns.tasks)."""
    global _queue
    _queue = queue


def _installed() -> TaskQueue:
    if _queue is None:
        raise ImproperlyConfigured("No task queue installed: CampaignsConfig.ready() installs campaigns.tasks.")
    return _queue


def enqueue_batches(campaign_id: int, recipients: int | None = None, *, extra: bool = False) -> int:
    """Enqueue the campaign's batch tasks (see ``campaigns.tasks.enqueue_batches``); returns how many."""
    return _installed().enqueue_batches(campaign_id, recipients, extra=extra)


def enqueue_start(campaign_id: int, at: datetime.datetime) -> None:
    """Enqueue the start of a scheduled campaign for ``at``."""
    _installed().enqueue_start(campaign_id, at)


def enqueue_digest(rule_id: int, at: datetime.datetime) -> None:
    """Enqueue the digest of an automatic-send rule for its slot ``at`` (campaigns.autosend)."""
    _installed().enqueue_digest(rule_id, at)


def enqueue_ab_decision(campaign_id: int, at: datetime.datetime) -> None:
    """Enqueue the automatic choice of an A/B test's winner for ``at`` (campaigns.abtests)."""
    _installed().enqueue_ab_decision(campaign_id, at)
