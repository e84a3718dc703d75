"""manage.py campaign_status <id>: where a campaign stands, from its exact counters and ledger."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from campaigns.models import Campaign, Delivery


class Command(BaseCommand):
    help = "Show a campaign's status, counters, times and the most common failure reasons."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)

    def handle(self, *args, campaign_id, **options):
        campaign = Campaign.objects.filter(pk=campaign_id).select_related("page").first()
        if campaign is None:
            raise CommandError(f"No campaign {campaign_id}.")
        write = self.stdout.write
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
        done = campaign.sent + campaign.failed + campaign.skipped
        percent = f" ({100 * done / campaign.recipients:.1f}%)" if campaign.recipients else ""
        write(f"Recipients: {campaign.recipients}")
        write(f"Sent:       {campaign.sent}")
        write(f"Failed:     {campaign.failed}")
        write(f"Skipped:    {campaign.skipped}")
        write(f"Remaining:  {campaign.remaining}{percent}")
        if campaign.last_error:
            write(f"Error:      {campaign.last_error}")
        reasons = (
            Delivery.objects.filter(campaign=campaign, status=Delivery.Status.FAILED)
            .values("last_error")
            .annotate(count=Count("pk"))
            .order_by("-count")[:5]
        )
        for reason in reasons:
            write(f"  {reason['count']:>6} x {reason['last_error'][:100]}")
