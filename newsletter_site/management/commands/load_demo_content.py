from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from newsletter_site.demo import load_demo_content


class Command(BaseCommand):
    help = "Create the demo site, issues, lists, subscribers and admin user (safe to run again)."

    def handle(self, *args, **options):
        result = load_demo_content()
        lists = ", ".join(
            _("%(list)s: %(count)s can receive") % {"list": name, "count": count}
            for name, count in result["lists"].items()
        )
        lines = [
            self.style.SUCCESS(_("Demo content ready.")),
            _("%(issues)s published issues (%(translated)s also in Chinese); lists: %(lists)s")
            % {"issues": result["issues"], "translated": result["translated_issues"], "lists": lists},
        ]
        if result["subscribers_created"]:
            lines.append(_("%(count)s demo subscribers created") % {"count": result["subscribers_created"]})
        lines.append(
            _("Admin login: %(username)s / %(password)s (password kept in var/demo-admin-password.txt)")
            % {"username": result["username"], "password": result["password"]}
        )
        self.stdout.write("\n  ".join(lines))
