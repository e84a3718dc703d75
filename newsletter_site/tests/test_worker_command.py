"""`manage.py worker` runs the worker of whichever task backend TASKS_URL configured."""

from unittest import mock

import pytest
from django.core.management import call_command

# Starting a worker also starts the periodic chains (automations' tick, digests): they read the database.
pytestmark = pytest.mark.django_db


def run_worker(settings, backend, *args):
    settings.TASKS = {"default": {"BACKEND": backend, "QUEUES": ["default", "campaigns"]}}
    with mock.patch("newsletter_site.management.commands.worker.call_command") as inner:
        call_command("worker", *args)
    return inner.call_args.args


def test_database_backend_runs_db_worker_on_every_queue(settings):
    assert run_worker(settings, "django_tasks_db.DatabaseBackend", "--batch") == (
        "db_worker",
        "--queue-name",
        "default,campaigns",
        "--batch",
    )


def test_rq_backend_runs_rqworker_with_its_scheduler(settings):
    args = run_worker(settings, "django_tasks_rq.RQBackend")

    assert args[:3] == ("rqworker", "default", "campaigns")
    assert "--with-scheduler" in args, "scheduled campaigns and retries (run_after) need RQ's scheduler"
    assert args[args.index("--job-class") + 1] == "django_tasks_rq.Job"
