"""manage.py gdpr_erase ADDRESS [--yes]: erase one address, keeping an anonymous suppression hash."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from subscribers.gdpr import NotFound, erase_subscriber, find_subscriber


class Command(BaseCommand):
    help = "Erase the personal data of one email address (GDPR Art. 17); it can never be re-imported."

    def add_arguments(self, parser):
        parser.add_argument("address")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, address, yes, **options):
        try:
            subscriber = find_subscriber(address)
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        if (
            not yes
            and input(_("Erase %(email)s for good? Type 'yes': ") % {"email": subscriber.email}).strip() != "yes"
        ):
            raise CommandError(_("Not erased."))
        erase_subscriber(subscriber)
        self.stdout.write(_("Erased; the address is now suppressed (subscriber %(uid)s).") % {"uid": subscriber.uid})
