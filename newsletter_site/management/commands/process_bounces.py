"""manage.py process_bounces: read the bounce mailbox once and say what became of each message."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from campaigns.bounces.mailboxes import MailboxError, describe
from campaigns.bounces.processing import process_mailbox
from newsletter_site.config import mailbox_from_url


class Command(BaseCommand):
    help = "Read the bounce mailbox (BOUNCE_MAILBOX_URL) once: apply bounces and complaints, print each message."

    def add_arguments(self, parser):
        parser.add_argument("--mailbox", help="A mailbox URL instead of BOUNCE_MAILBOX_URL (same syntax).")

    def handle(self, *args, mailbox=None, **options):
        try:
            config = mailbox_from_url("--mailbox", mailbox) if mailbox else settings.BROADSHEET["BOUNCE_MAILBOX"]
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        if not config:
            raise CommandError(_("No bounce mailbox: set BOUNCE_MAILBOX_URL (or pass --mailbox)."))
        self.stdout.write(_("Reading %(mailbox)s") % {"mailbox": describe(config)})
        try:
            results = process_mailbox(config, echo=self.stdout.write)
        except MailboxError as error:
            raise CommandError(str(error)) from None
        kinds: dict[str, int] = {}
        for result in results:
            kinds[result.kind] = kinds.get(result.kind, 0) + 1
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or _("no messages")
        self.stdout.write(_("Done: %(summary)s.") % {"summary": summary})
