"""manage.py gdpr_export ADDRESS [-o FILE]: everything held about one address, as JSON."""

import json

from django.core.management.base import BaseCommand, CommandError

from subscribers.gdpr import NotFound, export_subscriber_data, find_subscriber


class Command(BaseCommand):
    help = "Export everything held about one email address as JSON (GDPR access request)."

    def add_arguments(self, parser):
        parser.add_argument("address")
        parser.add_argument("-o", "--output", help="File to write (default: standard output).")

    def handle(self, *args, address, output, **options):
        try:
            subscriber = find_subscriber(address)
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        text = json.dumps(export_subscriber_data(subscriber), indent=2, ensure_ascii=False)
        if output:
            with open(output, "w", encoding="utf-8") as out:
                out.write(text + "\n")
        else:
            self.stdout.write(text)
