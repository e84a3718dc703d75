"""manage.py sweep_imports: delete import uploads abandoned at the mapping step (run it from cron too)."""

from django.core.management.base import BaseCommand

from subscribers.importing import sweep_imports


class Command(BaseCommand):
    help = (
        "Delete uploaded import files whose columns nobody mapped within IMPORT_ABANDON_HOURS, and stray "
        "files no import refers to. Each upload also schedules this sweep on the task queue; cron is a backstop."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"Deleted {sweep_imports()} abandoned import file(s).")
