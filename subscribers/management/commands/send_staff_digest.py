import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from subscribers import emails


class Command(BaseCommand):
    help = (
        "Email the NOTIFY_STAFF addresses a digest of one day's new subscriptions (default: yesterday, UTC). "
        "Run it daily from cron when NOTIFY_STAFF_MODE=daily."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="The day to report, YYYY-MM-DD (UTC). Default: yesterday.")

    def handle(self, *args, **options):
        if options["date"]:
            try:
                day = datetime.date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError(
                    _("--date %(value)r is not a YYYY-MM-DD date.") % {"value": options["date"]}
                ) from None
        else:
            day = timezone.now().astimezone(datetime.UTC).date() - datetime.timedelta(days=1)
        count = emails.send_staff_digest(day)
        self.stdout.write(
            _("%(day)s: %(count)s new subscription(s) reported.") % {"day": day.isoformat(), "count": count}
        )
