"""manage.py check_mailers: connect to every configured mailer and the bounce mailbox, say what is wrong."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaigns.bounces.mailboxes import check_mailbox, describe
from campaigns.sending.mailers import check_mailer, mailer_names


class Command(BaseCommand):
    help = "Connect and log in to every mailer (MAILERS) and the bounce mailbox; report capabilities and problems."

    def handle(self, *args, **options):
        problems = 0
        for name in mailer_names():
            check = check_mailer(name)
            problems += not check.ok
            self._report(f"mailer {name}: {check.where}", check.ok, check.lines)
        config = settings.BROADSHEET["BOUNCE_MAILBOX"]
        if config:
            ok, lines = check_mailbox(config)
            problems += not ok
            self._report(f"bounce mailbox: {describe(config)}", ok, lines)
        else:
            self.stdout.write("bounce mailbox: none (BOUNCE_MAILBOX_URL is not set; only ESP webhooks report bounces)")
        if problems:
            raise CommandError(f"{problems} problem{'s' if problems > 1 else ''} found.")
        self.stdout.write(self.style.SUCCESS("All mailers answered."))

    def _report(self, title: str, ok: bool, lines: list[str]) -> None:
        status = self.style.SUCCESS("OK") if ok else self.style.ERROR("PROBLEM")
        self.stdout.write(f"{title} [{status}]")
        for line in lines:
            self.stdout.write(f"    {line}")
