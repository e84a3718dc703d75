"""manage.py sweep_imports: delete import uploads abandoned at the mapping step (run it from cron too)."""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from subscribers.importing import sweep_imports


class Command(BaseCommand):
    help = (
        "Delete uploaded import files whose columns nobody mapped within IMPORT_ABANDON_HOURS, and stray "
        "files no import refers to. Each upload also schedules this sweep on the task queue; cron is a backstop."
    )

    def handle(self, *args, **options):
        self.stdout.write(_("Deleted %(count)s abandoned import file(s).") % {"count": sweep_imports()})
