"""manage.py campaign_status <id> [--pause | --resume | --cancel]: where a campaign stands, from its
exact counters and ledger; optionally pause, resume or cancel it first (the same workflows as the
admin's buttons)."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from campaigns import services
from campaigns.models import Campaign, Delivery

ACTIONS = {
    "pause": (services.pause_campaign, "Paused"),
    "resume": (services.resume_campaign, "Resumed"),
    "cancel": (services.cancel_campaign, "Cancelled"),
}


class Command(BaseCommand):
    help = "Show a campaign's status, counters, times and the most common failure reasons; --pause, --resume, --cancel."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)
        actions = parser.add_mutually_exclusive_group()
        actions.add_argument("--pause", action="store_const", const="pause", dest="action", help="Pause sending.")
        actions.add_argument(
            "--resume", action="store_const", const="resume", dest="action", help="Resume a paused campaign."
        )
        actions.add_argument(
            "--cancel", action="store_const", const="cancel", dest="action", help="Cancel: unsent rows are skipped."
        )

    def handle(self, *args, campaign_id, action=None, **options):
        if not Campaign.objects.filter(pk=campaign_id).exists():
            raise CommandError(f"No campaign {campaign_id}.")
        write = self.stdout.write
        if action:
            workflow, done = ACTIONS[action]
            try:
                workflow(campaign_id)
            except services.CampaignError as error:
                raise CommandError(str(error)) from error
            write(f"{done} campaign {campaign_id}.")
        campaign = Campaign.objects.select_related("page").get(pk=campaign_id)
        write(f"Campaign {campaign.pk}: {campaign.page.title}")
        write(f"Subject:    {campaign.subject or campaign.subject_override or campaign.page.subject}")
        write(f"Lists:      {', '.join(campaign.lists.values_list('slug', flat=True))}")
        write(f"Status:     {campaign.get_status_display()}")
        for label, value in (
            ("Scheduled", campaign.scheduled_at),
            ("Started", campaign.started_at),
            ("Finished", campaign.finished_at),
        ):
            if value:
                write(f"{label + ':':<11} {value:%Y-%m-%d %H:%M:%S %Z}")
        # The share of the recipients still to go (it used to print the share done).
        percent = f" ({100 * campaign.remaining / campaign.recipients:.1f}%)" if campaign.recipients else ""
        write(f"Recipients: {campaign.recipients}")
        write(f"Sent:       {campaign.sent}")
        write(f"Failed:     {campaign.failed}")
        write(f"Skipped:    {campaign.skipped}")
        write(f"Remaining:  {campaign.remaining}{percent}")
        if campaign.waiting_for_relay:
            write(f"Relay:      {campaign.waiting_for_relay}")
        if campaign.last_error:
            write(f"Error:      {campaign.last_error}")
        reasons = (
            Delivery.objects.filter(campaign=campaign, status__in=[Delivery.Status.FAILED, Delivery.Status.UNKNOWN])
            .values("last_error")
            .annotate(count=Count("pk"))
            .order_by("-count")[:5]
        )
        for reason in reasons:
            write(f"  {reason['count']:>6} x {reason['last_error'][:100]}")
