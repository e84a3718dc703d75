"""The scheduler's tick: one self-re-enqueueing chain however many workers start, and a kick per
burst of sign-ups (no cron)."""

import pytest
from django.db import transaction

from automations import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def dummy_backend(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default"]}}
    return tasks.tick_task.get_backend()


def test_the_worker_start_begins_one_chain_that_re_enqueues_itself(dummy_backend):
    assert tasks.ensure_ticking() is True
    assert tasks.ensure_ticking() is False, "a second worker start must not start a second chain"
    (first,) = dummy_backend.results
    tasks.tick_task.call(*first.args)
    following = dummy_backend.results[-1]
    assert following.args == first.args and following.task.run_after is not None
    assert tasks.tick_task.call("stale-token") == {"skipped": "superseded by another tick chain"}
    assert len(dummy_backend.results) == 2, "a superseded run enqueues nothing"


def test_a_burst_of_sign_ups_kicks_one_tick(dummy_backend, django_capture_on_commit_callbacks):
    tasks.ensure_ticking()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            tasks.kick()
    kicks = [result for result in dummy_backend.results if result.args == [""]]
    assert len(kicks) == 1
    tasks.tick_task.call("")  # the kick's tick runs: the next sign-up may kick again
    with django_capture_on_commit_callbacks(execute=True):
        tasks.kick()
    assert len([result for result in dummy_backend.results if result.args == [""]]) == 2


def test_a_rolled_back_sign_up_kicks_nothing(dummy_backend, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                tasks.kick()
                raise RuntimeError
        except RuntimeError:
            pass
    assert dummy_backend.results == []
