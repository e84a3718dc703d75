"""Run the automations' scheduler once (the worker's tick chain does it every minute by itself)."""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from automations.scheduler import tick


class Command(BaseCommand):
    help = "Queue every automation email due now (welcome emails, sequence steps)."

    def handle(self, *args, **options):
        queued = sum(sum(steps.values()) for steps in tick().values())
        self.stdout.write(_("Queued %(count)d automation emails.") % {"count": queued})
