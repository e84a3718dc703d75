"""Background task for CSV imports (kept apart from the flows' subscribers/tasks.py)."""

import datetime

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from subscribers.importing import abandon_after, run_import_job, sweep_imports


@task()
def run_import_task(job_id: int, encoding: str = "utf-8", delimiter: str = "") -> str:
    """Run ImportJob ``job_id``; safe to run twice (a job that already started is left alone)."""
    job = run_import_job(job_id, encoding=encoding, delimiter=delimiter)
    return job.status if job else "skipped"


@task()
def sweep_imports_task() -> int:
    """Delete abandoned import uploads (see ``sweep_imports``); safe to run twice."""
    return sweep_imports()


def schedule_sweep() -> None:
    """After an upload: run the sweep once the upload could be abandoned (after commit).

    Backends that can defer (database, RQ) hold the task until then; the immediate backend cannot
    wait, so there `manage.py sweep_imports` (cron) does the work.
    """
    if sweep_imports_task.get_backend().supports_defer:
        run_after = timezone.now() + abandon_after() + datetime.timedelta(minutes=1)
        transaction.on_commit(lambda: sweep_imports_task.using(run_after=run_after).enqueue())
