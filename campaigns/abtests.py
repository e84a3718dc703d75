"""A/B subject tests: 2-4 subjects sent to a test share of the audience, the winner to the rest.

How it runs:

1. ``configure()`` stores the variants (the first is the campaign's own subject), the test share
   (``ab_percent`` % of the audience, at least one reader per variant), the window and the metric
   on a draft campaign. The campaign then starts as any other (``services.start_campaign``): its
   audience is narrowed to the test share (``Campaign.test_share``: a fixed pseudo-random order,
   ORDER BY ... LIMIT inside the snapshot's INSERT ... SELECT) and each reader's ``variant`` is
   their rank in that order modulo the number of variants (``Campaign.variant_expression``), so
   the parts differ by one reader at most. The engine sends each reader their variant's subject.
2. ``schedule_decision()`` enqueues ``decide_ab_test_task`` for the end of the window (counted from
   the start, or from the scheduled time when the campaign is scheduled; the task looks again
   when the campaign started later than that).
3. ``decide()`` picks the variant with the highest rate of unique HUMAN opens (or clicks) per
   message sent in its part (campaigns.bots: machines' opens never decide), records it
   (``ab_winner``, when, by whom: nobody for the task) and creates and starts the campaign that
   sends the winning subject to the rest (``Campaign.winner_of``; its audience is the lists' and
   segment's, less everyone the test went to, so nobody gets two subjects). Ties go to the
   variant written first (the campaign's own subject, then B, C, D): a deterministic rule an
   editor can predict, favouring the subject they wrote first. An editor may decide by hand
   (``decide(..., variant=i, user=...)``) before the task: whoever comes first wins, the other
   finds the decision made and changes nothing (safe to run twice; one rest campaign per test,
   a unique constraint).

Decisions where the issue is silent: an issue with live translations is not tested (each language
would need its own variants); the test share is 1-90 %; the window 1 hour to 7 days; when nobody is
left for the rest (a small audience) the winner is recorded and nothing more is sent.
"""

import datetime
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import audit, background, editions, services
from campaigns.models import Campaign, Delivery
from campaigns.services import CampaignError
from mail.addresses import HeaderValueError, check_header_text

MIN_VARIANTS, MAX_VARIANTS = 2, 4
MIN_PERCENT, MAX_PERCENT = 1, 90
MIN_WINDOW, MAX_WINDOW = datetime.timedelta(hours=1), datetime.timedelta(days=7)
METRICS = ("opens", "clicks")
# Variant names as editors see them.
LETTERS = "ABCD"
# An undecided test in these states still waits for its decision.
WAITING = [Campaign.Status.SCHEDULED, Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SENT]
# When the test share is still sending at the end of the window, look again this much later.
STILL_SENDING_RETRY = datetime.timedelta(minutes=10)


def configure(campaign: Campaign, subjects: list[str], *, percent: int, window: datetime.timedelta, metric: str):
    """Make the draft ``campaign`` an A/B test of ``subjects`` (2-4, the first its own subject).

    Raises CampaignError for anything out of range, a subject that cannot be a header, or an
    issue with live translations.
    """
    subjects = [subject.strip() for subject in subjects if subject and subject.strip()]
    if not MIN_VARIANTS <= len(subjects) <= MAX_VARIANTS:
        raise CampaignError(_("An A/B test needs two to four different subjects."))
    if len(set(subjects)) != len(subjects):
        raise CampaignError(_("An A/B test needs two to four different subjects."))
    try:
        for subject in subjects:
            check_header_text(subject, "subject")
    except HeaderValueError as error:
        raise CampaignError(_("This campaign cannot be sent: %(error)s.") % {"error": error}) from None
    if not MIN_PERCENT <= percent <= MAX_PERCENT:
        raise CampaignError(_("The test share is 1 to 90 % of the audience."))
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise CampaignError(_("The test lasts from one hour to seven days."))
    if metric not in METRICS:
        raise CampaignError(_("The winner is chosen by unique opens or unique clicks."))
    if editions.live_translations(campaign.page):
        raise CampaignError(
            _("An issue with translations cannot be A/B tested: each language would need its subjects.")
        )
    campaign.subject_override = subjects[0]
    campaign.subject_variants = subjects
    campaign.ab_percent, campaign.ab_window, campaign.ab_metric = percent, window, metric
    campaign.save(update_fields=["subject_override", "subject_variants", "ab_percent", "ab_window", "ab_metric"])
    return campaign


def decision_due_at(campaign: Campaign):
    """When the test's window ends: from the start, or from the scheduled time before it."""
    begun = campaign.started_at or campaign.scheduled_at or timezone.now()
    return begun + campaign.ab_window


def schedule_decision(campaign: Campaign) -> None:
    """After the start (or schedule) commits, enqueue the automatic decision for the window's end."""
    if campaign.is_ab_test:
        at = decision_due_at(campaign)
        transaction.on_commit(lambda: background.enqueue_ab_decision(campaign.pk, at))


@dataclass(frozen=True)
class VariantFigures:
    index: int
    letter: str
    subject: str
    sent: int
    opened: int
    clicked: int
    machine_opened: int

    @property
    def open_rate(self) -> float | None:
        return self.opened / self.sent if self.sent else None

    @property
    def click_rate(self) -> float | None:
        return self.clicked / self.sent if self.sent else None

    @property
    def open_percent(self) -> str:
        return _percent(self.open_rate)

    @property
    def click_percent(self) -> str:
        return _percent(self.click_rate)

    def rate(self, metric: str) -> float:
        return (self.open_rate if metric == "opens" else self.click_rate) or 0.0


def _percent(rate: float | None) -> str:
    """As the report writes rates: "12.3 %" ("" without one)."""
    return "" if rate is None else f"{rate * 100:.1f} %"


def variant_figures(campaign: Campaign) -> list[VariantFigures]:
    """Per variant: messages sent, unique human opens and clicks, deliveries only machines opened."""
    rows = {
        row["variant"]: row
        for row in Delivery.objects.filter(campaign=campaign, variant__isnull=False)
        .values("variant")
        .annotate(
            sent=Count("pk", filter=Q(status=Delivery.Status.SENT)),
            opened=Count("pk", filter=Q(first_opened_at__isnull=False)),
            clicked=Count("pk", filter=Q(first_clicked_at__isnull=False)),
            machine_opened=Count("pk", filter=Q(first_opened_at__isnull=True, machine_opens__gt=0)),
        )
    }
    empty = {"sent": 0, "opened": 0, "clicked": 0, "machine_opened": 0}
    return [
        VariantFigures(index, LETTERS[index], subject, **{key: rows.get(index, empty)[key] for key in empty})
        for index, subject in enumerate(campaign.subject_variants)
    ]


def leader(figures: list[VariantFigures], metric: str) -> int:
    """The index of the best variant by ``metric``'s rate; a tie goes to the one written first."""
    return max(figures, key=lambda figure: (figure.rate(metric), -figure.index)).index


def decide(campaign_id: int, *, variant: int | None = None, user=None, now=None) -> str:
    """Choose the test's winner and send it to the rest; returns what happened.

    ``variant`` None: the automatic decision (the task), only once the window has ended and the
    test share has finished sending. Given: an editor's choice (``user`` needs the send
    permission), at any time after the start. Safe to call any number of times: once a winner is
    recorded nothing changes ("decided").
    """
    services.check_send_permission(user)
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().select_related("page").get(pk=campaign_id)
        if not campaign.is_ab_test:
            raise CampaignError(_("This campaign is not an A/B test."))
        if campaign.ab_winner is not None:
            return "decided"
        if campaign.status not in (Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SENT):
            if variant is not None:
                raise CampaignError(_("The test has not been sent: there is no winner to choose."))
            return f"not decided: the test is {campaign.status}"
        if variant is None:
            due = decision_due_at(campaign)
            if now < due:
                transaction.on_commit(lambda: background.enqueue_ab_decision(campaign_id, due))
                return "not due"
            if campaign.status != Campaign.Status.SENT:
                later = now + STILL_SENDING_RETRY
                transaction.on_commit(lambda: background.enqueue_ab_decision(campaign_id, later))
                return "still sending"
            variant = leader(variant_figures(campaign), campaign.ab_metric)
        elif not 0 <= variant < len(campaign.subject_variants):
            raise CampaignError(_("There is no such variant."))
        campaign.ab_winner, campaign.ab_decided_at = variant, now
        campaign.ab_decided_by = user if getattr(user, "pk", None) else None
        campaign.save(update_fields=["ab_winner", "ab_decided_at", "ab_decided_by"])
        audit.log_action(
            campaign, audit.AB_WINNER, user, variant=LETTERS[variant], subject=campaign.subject_variants[variant]
        )
        rest = _send_rest(campaign, variant, user)
    return f"variant {LETTERS[variant]} won; " + (f"the rest is campaign {rest.pk}" if rest else "nobody was left")


def _send_rest(campaign: Campaign, variant: int, user) -> Campaign | None:
    """Create and start the campaign that sends the winning subject to the rest (None: nobody left)."""
    try:
        with transaction.atomic():
            rest = services.create_campaign(
                campaign.page,
                campaign.lists.all(),
                user=user,
                subject=campaign.subject_variants[variant],
                from_email=campaign.from_email,
                reply_to=campaign.reply_to,
                mailer=campaign.mailer,
                segment=campaign.segment,
            )
            rest.winner_of = campaign
            rest.save(update_fields=["winner_of"])
            return services.start_campaign(rest.pk, user=None)
    except IntegrityError:
        return campaign.winner_sends.first()
    except CampaignError as error:
        # Nobody left (the test reached everyone), or the issue was unpublished meanwhile: the
        # winner stays recorded; the reason is on the test's page.
        Campaign.objects.filter(pk=campaign.pk).update(last_error=str(error)[:2000])
        return None


def restart_decisions(now=None) -> int:
    """When a worker starts (``manage.py worker``): decide the A/B tests whose window ended while
    no task did (a lost task: a flushed Redis), and enqueue the decision of the others again (a
    decision enqueued twice decides once). Returns how many tests are still waiting."""
    now = now or timezone.now()
    waiting = 0
    undecided = Campaign.objects.filter(ab_winner__isnull=True, status__in=WAITING).exclude(subject_variants=[])
    for campaign in undecided:
        if not campaign.is_ab_test:
            continue
        if decision_due_at(campaign) <= now and campaign.status == Campaign.Status.SENT:
            decide(campaign.pk, now=now)
            continue
        with transaction.atomic():
            schedule_decision(campaign)
        waiting += 1
    return waiting
