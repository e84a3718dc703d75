"""Run the background task worker for whichever backend TASKS_URL selects.

Lets the Procfile say `worker: python manage.py worker` for every deployment: the database
backend's db_worker on a laptop, RQ's rqworker when TASKS_URL=rq://.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from automations.tasks import ensure_ticking
from campaigns.abtests import restart_decisions
from campaigns.autosend import restart_digests
from campaigns.bounces.tasks import start_bounce_polling


class Command(BaseCommand):
    help = "Run the task worker of the configured backend (db_worker or rqworker)."

    def add_arguments(self, parser):
        parser.add_argument("--batch", action="store_true", help="Run until the queue is empty, then exit.")

    def handle(self, *args, **options):
        backend = settings.TASKS["default"]["BACKEND"]
        # Periodic work is a task chain the worker starts (no cron); idempotent across workers.
        if start_bounce_polling():
            self.stdout.write(_("Started reading the bounce mailbox every BOUNCE_POLL_SECONDS."))
        try:
            if ensure_ticking():
                self.stdout.write(_("Started the automations' scheduler (every AUTOMATION_TICK_SECONDS)."))
        except Exception as error:
            # The chain's state lives in the shared cache (a missing cache table, Redis down); the
            # worker must still run campaigns, and the next start or sign-up starts the chain.
            self.stderr.write(
                _("The automations' scheduler could not start: %(error)s (run manage.py createcachetable?)")
                % {"error": error}
            )
        if digests := restart_digests():
            self.stdout.write(_("Digests scheduled for %(count)s lists.") % {"count": digests})
        if tests := restart_decisions():
            self.stdout.write(_("A/B tests waiting for their winner: %(count)s.") % {"count": tests})
        queues = settings.TASKS["default"].get("QUEUES", ["default"])
        if backend.startswith("django_tasks_db"):
            extra = ["--batch"] if options["batch"] else []
            call_command("db_worker", "--queue-name", ",".join(queues), *extra)
        elif backend.startswith("django_tasks_rq"):
            extra = ["--burst"] if options["batch"] else []
            # The scheduler moves jobs enqueued with run_after (scheduled campaigns, retries with
            # backoff) onto the queue when due; without it they would wait forever.
            call_command("rqworker", *queues, "--job-class", "django_tasks_rq.Job", "--with-scheduler", *extra)
        else:
            self.stderr.write(
                _("The task backend %(backend)s runs tasks in-process; no worker is needed.") % {"backend": backend}
            )
