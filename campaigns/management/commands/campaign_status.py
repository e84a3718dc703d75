"""manage.py campaign_status <id> [--pause | --resume | --cancel]: where a campaign stands, from its
exact counters and ledger; optionally pause, resume or cancel it first (the same workflows as the
admin's buttons)."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns import services
from campaigns.models import Campaign, Delivery
from mail.plaintext import display_width

ACTIONS = {
    "pause": (services.pause_campaign, gettext_lazy("Paused campaign %(id)s.")),
    "resume": (services.resume_campaign, gettext_lazy("Resumed campaign %(id)s.")),
    "cancel": (services.cancel_campaign, gettext_lazy("Cancelled campaign %(id)s.")),
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
            raise CommandError(_("No campaign %(id)s.") % {"id": campaign_id})
        write = self.stdout.write
        if action:
            workflow, done = ACTIONS[action]
            try:
                workflow(campaign_id)
            except services.CampaignError as error:
                raise CommandError(str(error)) from error
            write(done % {"id": campaign_id})
        campaign = Campaign.objects.select_related("page").get(pk=campaign_id)
        write(_("Campaign %(id)s: %(title)s") % {"id": campaign.pk, "title": campaign.page.title})
        # The share of the recipients still to go (it used to print the share done).
        percent = f" ({100 * campaign.remaining / campaign.recipients:.1f}%)" if campaign.recipients else ""
        rows = [
            (_("Subject:"), campaign.subject or campaign.subject_override or campaign.page.subject),
            (_("Lists:"), ", ".join(campaign.lists.values_list("slug", flat=True))),
            (_("Status:"), campaign.get_status_display()),
            *(
                (label, f"{value:%Y-%m-%d %H:%M:%S %Z}")
                for label, value in (
                    (_("Scheduled:"), campaign.scheduled_at),
                    (_("Started:"), campaign.started_at),
                    (_("Finished:"), campaign.finished_at),
                )
                if value
            ),
            (_("Recipients:"), campaign.recipients),
            (_("Sent:"), campaign.sent),
            (_("Failed:"), campaign.failed),
            (_("Skipped:"), campaign.skipped),
            (_("Remaining:"), f"{campaign.remaining}{percent}"),
            *([(_("Relay:"), campaign.waiting_for_relay)] if campaign.waiting_for_relay else []),
            *([(_("Error:"), campaign.last_error)] if campaign.last_error else []),
        ]
        # Labels padded to one column (by display width: a Chinese character takes two).
        width = max(display_width(label) for label, _value in rows)
        for label, value in rows:
            write(f"{label}{' ' * (width - display_width(label))} {value}")
        reasons = (
            Delivery.objects.filter(campaign=campaign, status__in=[Delivery.Status.FAILED, Delivery.Status.UNKNOWN])
            .values("last_error")
            .annotate(count=Count("pk"))
            .order_by("-count")[:5]
        )
        for reason in reasons:
            write(f"  {reason['count']:>6} x {reason['last_error'][:100]}")
