from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print where to find the site, the admin and the outbox (used by `make run`)."

    def handle(self, *args, **options):
        # `make run` sets BASE_URL from HOST and PORT (unless given): the banner shows what emails link to.
        base = settings.BASE_URL
        mailer = settings.MAILERS["default"]
        outbox = mailer.get("OPTIONS", {}).get("directory") if mailer["BACKEND"].endswith("OutboxBackend") else None
        lines = [
            "",
            "Broadsheet is starting (web server + task worker). Open:",
            f"  Site:         {base}/",
            f"  Archive:      {base}/archive/",
            f"  Subscribe:    {base}/subscribe/",
            f"  Wagtail admin {base}/admin/  (login printed above)",
        ]
        if outbox:
            lines.append(f"  Outbox:       {outbox}/new/*.eml  (every email sent, openable in a mail client)")
        else:
            lines.append(f"  Mail goes to: {mailer['BACKEND']}")
        lines.append("Stop with Ctrl+C.\n")
        self.stdout.write("\n".join(lines))
