"""manage.py export_subscribers --list SLUG [--status subscribed] [-o FILE]: streamed CSV."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from subscribers.exporting import export_list
from subscribers.models import MailingList, Subscription


class Command(BaseCommand):
    help = "Export a list's subscriptions (with consent records) as CSV, formula cells escaped."

    def add_arguments(self, parser):
        parser.add_argument("--list", dest="slug", required=True)
        parser.add_argument("--status", action="append", choices=Subscription.Status.values, default=[])
        parser.add_argument("-o", "--output", help="File to write (default: standard output).")

    def handle(self, *args, slug, status, output, **options):
        try:
            mailing_list = MailingList.objects.get(slug=slug)
        except MailingList.DoesNotExist:
            raise CommandError(_("No list with slug %(slug)s.") % {"slug": slug}) from None
        lines = export_list(mailing_list, status)
        if output:
            with open(output, "w", newline="", encoding="utf-8") as out:
                out.writelines(lines)
        else:
            for line in lines:
                self.stdout.write(line, ending="")
