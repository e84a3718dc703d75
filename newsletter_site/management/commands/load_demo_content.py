from django.core.management.base import BaseCommand

from newsletter_site.demo import load_demo_content


class Command(BaseCommand):
    help = "Create the demo site, issues, lists, subscribers and admin user (safe to run again)."

    def handle(self, *args, **options):
        result = load_demo_content()
        lists = ", ".join(f"{name}: {count} subscribed" for name, count in result["lists"].items())
        self.stdout.write(
            self.style.SUCCESS("Demo content ready.")
            + f"\n  {result['issues']} published issues ({result['translated_issues']} also in Chinese); lists: {lists}"
            + (f"\n  {result['subscribers_created']} demo subscribers created" if result["subscribers_created"] else "")
            + f"\n  Admin login: {result['username']} / {result['password']}"
            + "  (password kept in var/demo-admin-password.txt)"
        )
