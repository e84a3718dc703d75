"""Background task for CSV imports (kept apart from the flows' subscribers/tasks.py)."""

from django_tasks import task

from subscribers.importing import run_import_job, sweep_imports


@task()
def run_import_task(job_id: int, encoding: str = "utf-8", delimiter: str = "") -> str:
    """Run ImportJob ``job_id``; safe to run twice (a job that already started is left alone)."""
    job = run_import_job(job_id, encoding=encoding, delimiter=delimiter)
    return job.status if job else "skipped"


@task()
def sweep_imports_task() -> int:
    """Delete abandoned import uploads (see ``sweep_imports``); safe to run twice."""
    return sweep_imports()
