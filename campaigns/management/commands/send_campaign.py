"""manage.py send_campaign <campaign id | issue page slug> [--lists ...] [--segment SLUG] [--mailer NAME] [--dry-run]
[--test-to ...] [--at ISO]"""

import datetime
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django_tasks.backends.immediate import ImmediateBackend
from tqdm import tqdm

from campaigns import services
from campaigns.models import Campaign, NewsletterIssuePage
from campaigns.sending import new_worker_id, send_batch
from campaigns.sending.mailers import mailer_names
from campaigns.tasks import notify_staff_campaign_paused, send_batch_task
from subscribers.audience import Audience
from subscribers.models import MailingList, Segment


class Command(BaseCommand):
    help = (
        "Send a campaign (by id) or a published issue (by page slug) to lists, with a progress bar. "
        "--dry-run shows who would receive it, --test-to sends a [TEST] copy, --at schedules it."
    )

    def add_arguments(self, parser):
        parser.add_argument("target", help="A campaign id, or the slug of a published issue page.")
        parser.add_argument("--lists", nargs="+", metavar="SLUG", help="Target lists (for a page slug).")
        parser.add_argument(
            "--segment", metavar="SLUG", help="Only the subscribers of the lists this saved segment matches."
        )
        parser.add_argument(
            "--mailer", metavar="NAME", help="Send through this mailer (a MAILERS name) instead of the lists'."
        )
        parser.add_argument("--dry-run", action="store_true", help="Check and count, send nothing.")
        parser.add_argument("--test-to", nargs="+", metavar="ADDRESS", help="Send a [TEST] copy only.")
        parser.add_argument("--at", help="Schedule for this ISO 8601 time (e.g. 2026-05-01T09:00+01:00).")
        parser.add_argument("--wait", action="store_true", help="Follow the background workers until done.")
        parser.add_argument("--resume", action="store_true", help="Resume a paused campaign.")

    def handle(self, *args, target, lists, segment, mailer, dry_run, test_to, at, wait, resume, **options):
        campaign, page = self._resolve(target, lists)
        if segment and campaign is not None:
            raise CommandError(_("--segment only applies to a page slug; the campaign has its audience."))
        segment = self._segment(segment)
        if mailer and campaign is not None:
            raise CommandError(_("--mailer only applies to a page slug; the campaign has its mailer."))
        if mailer and mailer not in settings.MAILERS:
            names = ", ".join(mailer_names())
            raise CommandError(_("No mailer named %(name)r; configured: %(names)s.") % {"name": mailer, "names": names})
        if test_to:
            sent = services.send_test(campaign or page, test_to)
            self.stdout.write(
                self.style.SUCCESS(
                    _("Sent %(count)s test message(s) to %(addresses)s.")
                    % {"count": sent, "addresses": ", ".join(test_to)}
                )
            )
            return
        if campaign is None:
            chosen = self._lists(lists, page)
            if dry_run:
                self._describe(page, Audience(chosen, segment))
                return
            campaign = services.create_campaign(page, chosen, mailer=mailer or "", segment=segment)
            self.stdout.write(_("Created campaign %(id)s.") % {"id": campaign.pk})
        elif dry_run:
            self._describe(campaign.page, Audience.of(campaign), campaign)
            return
        immediate = isinstance(send_batch_task.get_backend(), ImmediateBackend)
        try:
            if resume:
                campaign = services.resume_campaign(campaign.pk, enqueue=not immediate)
            else:
                when = self._parse_at(at)
                campaign = services.start_campaign(campaign.pk, at=when, enqueue=not immediate)
        except services.CampaignError as error:
            raise CommandError(str(error)) from error
        if campaign.status == Campaign.Status.SCHEDULED:
            self.stdout.write(
                self.style.SUCCESS(
                    _("Campaign %(id)s scheduled for %(time)s.") % {"id": campaign.pk, "time": campaign.scheduled_at}
                )
            )
            return
        self.stdout.write(
            _("Campaign %(id)s: %(count)s recipient(s).") % {"id": campaign.pk, "count": campaign.recipients}
        )
        if immediate:
            self._drive(campaign)
        elif wait:
            self._follow(campaign)
        else:
            self.stdout.write(
                _("Batches enqueued; follow with: %(command)s")
                % {"command": f"manage.py campaign_status {campaign.pk}"}
            )
            return
        campaign.refresh_from_db()
        self.stdout.write(
            self.style.SUCCESS(
                _("Campaign %(id)s %(status)s: %(sent)s sent, %(failed)s failed, %(skipped)s skipped.")
                % {
                    "id": campaign.pk,
                    "status": campaign.get_status_display().lower(),
                    "sent": campaign.sent,
                    "failed": campaign.failed,
                    "skipped": campaign.skipped,
                }
            )
        )

    def _resolve(self, target, lists):
        if target.isdigit():
            campaign = Campaign.objects.filter(pk=int(target)).first()
            if campaign is None:
                raise CommandError(_("No campaign %(id)s.") % {"id": target})
            if lists:
                raise CommandError(_("--lists only applies to a page slug; the campaign has its lists."))
            return campaign, campaign.page
        page = NewsletterIssuePage.objects.filter(slug=target).first()
        if page is None:
            raise CommandError(_("No campaign id or issue page slug %(target)r.") % {"target": target})
        return None, page

    def _lists(self, slugs, page):
        if slugs:
            found = list(MailingList.objects.filter(slug__in=slugs))
            missing = set(slugs) - {item.slug for item in found}
            if missing:
                raise CommandError(_("Unknown list(s): %(slugs)s.") % {"slugs": ", ".join(sorted(missing))})
            return found
        defaults = list(services._newsletter_settings(page).default_lists.all())
        if not defaults:
            raise CommandError(_("Give --lists (no default lists in the newsletter settings)."))
        return defaults

    def _segment(self, slug):
        if not slug:
            return None
        segment = Segment.objects.filter(slug=slug).first()
        if segment is None:
            raise CommandError(_("Unknown segment: %(slug)s.") % {"slug": slug})
        return segment

    def _describe(self, page, audience, campaign=None):
        count = audience.count()
        self.stdout.write(_("Issue: %(title)s (subject: %(subject)s)") % {"title": page.title, "subject": page.subject})
        self.stdout.write(_("Lists: %(slugs)s") % {"slugs": ", ".join(item.slug for item in audience.lists)})
        if audience.segment is not None:
            self.stdout.write(_("Segment: %(slug)s") % {"slug": audience.segment.slug})
        self.stdout.write(_("Would send to %(count)s recipient(s). Dry run: nothing sent.") % {"count": count})
        if campaign is not None:
            self.stdout.write(
                _("Campaign %(id)s is %(status)s.")
                % {"id": campaign.pk, "status": campaign.get_status_display().lower()}
            )

    def _parse_at(self, value):
        if not value:
            return None
        when = parse_datetime(value)
        if when is None:
            raise CommandError(_("--at %(value)r is not an ISO 8601 date and time.") % {"value": value})
        if timezone.is_naive(when):
            when = timezone.make_aware(when)
        return when

    def _drive(self, campaign):
        """Send every batch in this process (immediate task backend), with a progress bar."""
        worker_id = new_worker_id()
        announced = None
        with tqdm(total=campaign.recipients, unit="msg", file=self.stderr._out) as bar:
            bar.update(campaign.recipients - campaign.remaining)
            while True:
                result = send_batch(campaign.pk, worker_id=worker_id)
                bar.update(result["sent"] + result["failed"] + result["unknown"])
                if result["paused"]:
                    # The relay refused the login or stayed down too long: tell the staff, stop here.
                    notify_staff_campaign_paused.enqueue(campaign.pk)
                if not result["more"]:
                    break
                if not result["claimed"]:
                    # Waiting for retries, the relay, a dead worker's claim, or the mailer's spent
                    # hourly or daily allowance: say so once per wait longer than a minute, then look
                    # again every few minutes at most (a pause or cancel in the admin is seen).
                    wait = _seconds_until(result["retry_at"])
                    if wait > 60 and result["retry_at"] != announced:
                        announced = result["retry_at"]
                        bar.write(
                            _(
                                "Nothing can be sent before %(time)s (the mailer's hourly or daily allowance, "
                                "retries or the relay): waiting. Ctrl-C stops this command, not the campaign."
                            )
                            % {"time": timezone.localtime(datetime.datetime.fromisoformat(announced))},
                            file=self.stderr._out,
                        )
                    time.sleep(min(max(wait, 1), 300))
        campaign.refresh_from_db()
        if campaign.status == Campaign.Status.PAUSED and campaign.last_error:
            self.stderr.write(campaign.last_error)

    def _follow(self, campaign):
        """Poll the campaign's exact counters while background workers send."""
        with tqdm(total=campaign.recipients, unit="msg", file=self.stderr._out) as bar:
            done = 0
            while True:
                campaign.refresh_from_db()
                now_done = campaign.sent + campaign.failed + campaign.skipped
                bar.update(now_done - done)
                done = now_done
                if campaign.is_final or campaign.status == Campaign.Status.PAUSED:
                    break
                time.sleep(1)


def _seconds_until(iso: str | None) -> float:
    """Seconds from now until the ISO time ``iso`` (0 when None or past)."""
    if not iso:
        return 0.0
    return max((datetime.datetime.fromisoformat(iso) - timezone.now()).total_seconds(), 0.0)
