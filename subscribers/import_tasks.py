"""Background tasks for CSV imports (kept apart from the flows' subscribers/tasks.py) and the two
entry points that enqueue them: ``queue_import_job`` (the admin's column-map step) and ``start_import``.

The import workflow (``subscribers.importing``) never enqueues its own run: this module runs it."""

import datetime

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from subscribers.importing import (
    abandon_after,
    configure_import_job,
    create_import_job,
    run_import_job,
    sweep_imports,
)
from subscribers.models import ImportJob


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


def queue_import_job(
    job: ImportJob, *, lists, column_map, mode, consent_note="", encoding="utf-8", delimiter="", update_names=False
) -> ImportJob:
    """Set what to import where (``importing.configure_import_job``), then enqueue the run after commit.

    Raises ValueError for options the importer would refuse (no email column, no list,
    subscribing directly without a consent note).
    """
    configure_import_job(
        job, lists=lists, column_map=column_map, mode=mode, consent_note=consent_note, encoding=encoding,
        delimiter=delimiter, update_names=update_names,
    )  # fmt: skip
    # The encoding and delimiter travel as task arguments: ImportJob has no fields for them.
    transaction.on_commit(lambda: run_import_task.enqueue(job.pk, encoding=encoding, delimiter=delimiter or ""))
    return job


def start_import(*, uploaded_file, lists, column_map, mode, consent_note, user, encoding="utf-8", delimiter=""):
    """Create and queue an import in one step (the command line and tests)."""
    job = create_import_job(uploaded_file, user)
    return queue_import_job(
        job, lists=lists, column_map=column_map, mode=mode, consent_note=consent_note, encoding=encoding,
        delimiter=delimiter,
    )  # fmt: skip
