"""manage.py check_mailers: connect to every configured mailer and the bounce mailbox, say what is wrong."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.bounces.mailboxes import check_mailbox, describe
from campaigns.sending.mailers import check_mailer, mailer_names


class Command(BaseCommand):
    help = "Connect and log in to every mailer (MAILERS) and the bounce mailbox; report capabilities and problems."

    def handle(self, *args, **options):
        problems = 0
        for name in mailer_names():
            check = check_mailer(name)
            problems += not check.ok
            self._report(_("mailer %(name)s: %(where)s") % {"name": name, "where": check.where}, check.ok, check.lines)
        config = settings.BROADSHEET["BOUNCE_MAILBOX"]
        if config:
            ok, lines = check_mailbox(config)
            problems += not ok
            self._report(_("bounce mailbox: %(mailbox)s") % {"mailbox": describe(config)}, ok, lines)
        else:
            self.stdout.write(
                _("bounce mailbox: none (BOUNCE_MAILBOX_URL is not set; only ESP webhooks report bounces)")
            )
        if problems:
            raise CommandError(
                ngettext("%(count)s problem found.", "%(count)s problems found.", problems) % {"count": problems}
            )
        self.stdout.write(self.style.SUCCESS(_("All mailers answered.")))

    def _report(self, title: str, ok: bool, lines: list[str]) -> None:
        status = self.style.SUCCESS(_("OK")) if ok else self.style.ERROR(_("PROBLEM"))
        self.stdout.write(f"{title} [{status}]")
        for line in lines:
            self.stdout.write(f"    {line}")
