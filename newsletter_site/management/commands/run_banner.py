from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from mail.plaintext import display_width


class Command(BaseCommand):
    help = "Print where to find the site, the admin and the outbox (used by `make run`)."

    def handle(self, *args, **options):
        # `make run` sets BASE_URL from HOST and PORT (unless given): the banner shows what emails link to.
        base = settings.BASE_URL
        mailer = settings.MAILERS["default"]
        outbox = mailer.get("OPTIONS", {}).get("directory") if mailer["BACKEND"].endswith("OutboxBackend") else None
        rows = [
            (_("Site:"), f"{base}/"),
            (_("Archive:"), f"{base}/archive/"),
            (_("Subscribe:"), f"{base}/subscribe/"),
            (_("Wagtail admin"), f"{base}/admin/  " + _("(login printed above)")),
        ]
        if outbox:
            rows.append((_("Outbox:"), f"{outbox}/new/*.eml  " + _("(every email sent, openable in a mail client)")))
        else:
            rows.append((_("Mail goes to:"), mailer["BACKEND"]))
        # Labels padded to one column (by display width: a Chinese character takes two).
        width = max(display_width(label) for label, _value in rows)
        lines = [
            "",
            _("Broadsheet is starting (web server + task worker). Open:"),
            *(f"  {label}{' ' * (width - display_width(label))} {value}" for label, value in rows),
            _("Stop with Ctrl+C.") + "\n",
        ]
        self.stdout.write("\n".join(lines))
