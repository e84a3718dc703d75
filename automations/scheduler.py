"""The automations' due work, set-based: who enters, who is due for which step now, and handing
them to the campaign engine.

``advance(automation_id)`` runs, per step and in ONE transaction each (a savepoint inside the
automation's): the due subscribers are selected by one query, written to the ``StepSend`` ledger
by one INSERT ... SELECT, and snapshotted into the step's run campaign by another
(``campaigns.services.start_campaign`` / ``add_recipients``); the batch tasks are enqueued after
commit. A step due for 1,000,000 subscribers at once is three statements and the engine's usual
batch tasks, never a task per person. A process killed during ``advance`` rolls its transaction
back (nothing was queued, the next tick does it again); killed while sending, the engine's
ledger resumes without duplicates. Two ticks at once: the automation row is locked
(``select_for_update``) and the ledger's unique constraint refuses a second row anyway.
"""

import datetime
import logging
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Value
from django.utils import timezone

from automations.models import Automation, Enrollment, Step, StepRun, StepSend
from campaigns.models import Campaign, Delivery
from campaigns.services import CampaignError, add_recipients, create_campaign, start_campaign
from subscribers.audience import Audience
from subscribers.models import Subscriber, SubscriberEvent, Subscription

logger = logging.getLogger(__name__)

# The send window (Automation.send_window): local time, start inclusive, end exclusive.
WINDOW_START = datetime.time(9, 0)
WINDOW_END = datetime.time(18, 0)
# The subscriber attribute that names their time zone (an IANA name, e.g. "Europe/Berlin").
TIME_ZONE_ATTRIBUTE = "time_zone"


# --- Entering ----------------------------------------------------------------------------------


def enroll(subscriber, lists, *, via: str, at) -> int:
    """``subscriber`` became subscribed to ``lists`` (``subscribers.signals.subscribed``): enter the
    automations of those lists, once ever per automation. Runs inside the subscribing transaction,
    so a rolled-back subscription enters nothing. Returns how many enrollments were created."""
    automations = Automation.objects.filter(list__in=[mlist.pk for mlist in lists])
    if via == SubscriberEvent.Via.IMPORT:
        automations = automations.filter(include_imports=True)
    created = 0
    for automation in automations:
        _enrollment, new = Enrollment.objects.get_or_create(
            automation=automation, subscriber=subscriber, defaults={"entered_at": at}
        )
        created += new
    return created


def stop(subscriber, lists, *, at) -> int:
    """``subscriber`` left ``lists`` (``subscribers.signals.unsubscribed``): their enrollments stop
    for good (rejoining does not resume them; an editor's restart does)."""
    return Enrollment.objects.filter(automation__list__in=[mlist.pk for mlist in lists], subscriber=subscriber).stop(at)


def enroll_imported(automation: Automation) -> int:
    """Enter everyone an import subscribed to the list since the automation was created (imports
    send no per-subscriber signal; only automations with ``include_imports``). One INSERT ... SELECT."""
    source = (
        Subscription.objects.filter(
            list_id=automation.list_id,
            status=Subscription.Status.SUBSCRIBED,
            consent_source=Subscription.Source.IMPORT,
            consent_at__gte=automation.created_at,
        )
        .filter(~Exists(Enrollment.objects.filter(automation=automation, subscriber=OuterRef("subscriber_id"))))
        .order_by()
        .annotate(
            e_automation=Value(automation.pk),
            e_state=Value(Enrollment.State.ACTIVE),
            e_round=Value(0),
        )
        .values_list("e_automation", "subscriber_id", "consent_at", "e_state", "e_round")
    )
    return insert_select(Enrollment, ["automation_id", "subscriber_id", "entered_at", "state", "round"], source)


def insert_select(model, columns: list[str], source: QuerySet, *, hash_joins: bool = False) -> int:
    """INSERT INTO ``model`` (``columns``) SELECT ``source`` (a values_list in the same order), in
    the database: no row passes through Python. Returns the row count.

    ``hash_joins`` (PostgreSQL): the SELECT reads the table it inserts into (the ledger's NOT
    EXISTS). Planned as a nested loop over a freshly filled table, each probe scanned the pages
    this very statement was filling: quadratic (100,000 due took 104-165 s, bench/automation_bench.py).
    Without nested loops for this one statement the ledger is hashed once, as of its start."""
    select_sql, params = source.query.sql_with_params()
    table = connection.ops.quote_name(model._meta.db_table)
    column_sql = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in columns)
    hash_only = hash_joins and connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if hash_only:
            cursor.execute("SET LOCAL enable_nestloop = off")
        # Identifiers from the model's _meta, every value a parameter of the SELECT.
        cursor.execute(f"INSERT INTO {table} ({column_sql}) {select_sql}", params)
        count = cursor.rowcount
        if hash_only:
            cursor.execute("SET LOCAL enable_nestloop = on")
        return count


# --- Who is due --------------------------------------------------------------------------------


def _same_round(queryset: QuerySet) -> QuerySet:
    return queryset.filter(subscriber_id=OuterRef("subscriber_id"), round=OuterRef("round"))


def waiting_for(step: Step, steps: list[Step]) -> QuerySet[Enrollment]:
    """Active enrollments still in the audience that have reached ``step``'s turn (the previous step
    was queued, or they entered) and not this step or a later one: due now or later."""
    index = next(i for i, item in enumerate(steps) if item.pk == step.pk)
    later = [item.pk for item in steps[index + 1 :]]
    enrollments = (
        Enrollment.objects.active()
        .filter(automation_id=step.automation_id)
        .filter(subscriber__in=audience(step.automation))
        .filter(~Exists(_same_round(StepSend.objects.filter(step_id=step.pk))))
    )
    if later:
        enrollments = enrollments.filter(~Exists(_same_round(StepSend.objects.filter(step_id__in=later))))
    if index:
        enrollments = enrollments.filter(Exists(_same_round(StepSend.objects.filter(step_id=steps[index - 1].pk))))
    return enrollments


def due_for(step: Step, steps: list[Step], now) -> QuerySet[Enrollment]:
    """The enrollments due for ``step`` at ``now``: its delay passed since they entered (first
    step) or since the previous step was queued, and, with a send window, inside it for them."""
    index = next(i for i, item in enumerate(steps) if item.pk == step.pk)
    since = now - step.delay
    due = waiting_for(step, steps)
    if index:
        previous = StepSend.objects.filter(step_id=steps[index - 1].pk, queued_at__lte=since)
        due = due.filter(Exists(_same_round(previous)))
    else:
        due = due.filter(entered_at__lte=since)
    if step.automation.send_window:
        due = in_send_window(due, now)
    return due


def audience(automation: Automation) -> QuerySet[Subscriber]:
    """Who may receive the automation's emails: the list's sendable subscribers (confirmed, not
    unsubscribed, not suppressed), narrowed by the automation's segment -- asked at every tick for
    each step, so leaving, a bounce or dropping out of the segment holds the next email."""
    return Audience([automation.list_id], automation.segment).subscribers()


def valid_time_zone(name) -> zoneinfo.ZoneInfo | None:
    """The zone an attribute value names, or None (not text, not an IANA name: hostile input)."""
    if not isinstance(name, str) or not name or len(name) > 64 or name not in zoneinfo.available_timezones():
        return None
    return zoneinfo.ZoneInfo(name)


def _open_at(zone, now) -> bool:
    local = now.astimezone(zone).time()
    return WINDOW_START <= local < WINDOW_END


def in_send_window(enrollments: QuerySet[Enrollment], now) -> QuerySet[Enrollment]:
    """Narrow ``enrollments`` to subscribers for whom it is 09:00-18:00 now: in the zone of their
    ``time_zone`` attribute when it is a valid IANA name, else the site's (settings.TIME_ZONE).
    One query for the distinct zones named, then one filter: set-based whatever the count."""
    attribute = f"attributes__{TIME_ZONE_ATTRIBUTE}"
    key = f"subscriber__{attribute}"
    named = set(enrollments.order_by().values_list(key, flat=True).distinct())
    zones = {name: zone for name in named if (zone := valid_time_zone(name)) is not None}
    open_names = [name for name, zone in zones.items() if _open_at(zone, now)]
    closed_names = [name for name in zones if name not in open_names]
    # By subscriber id (NOT IN / IN a subquery): a NOT IN over the JSON value itself would also
    # drop the subscribers without the attribute (SQL's NULL), who follow the site's window.
    if _open_at(zoneinfo.ZoneInfo(settings.TIME_ZONE), now):
        # Everyone except those whose own (valid) zone is closed.
        if not closed_names:
            return enrollments
        return enrollments.exclude(subscriber__in=Subscriber.objects.filter(**{f"{attribute}__in": closed_names}))
    if not open_names:
        return enrollments.none()
    return enrollments.filter(subscriber__in=Subscriber.objects.filter(**{f"{attribute}__in": open_names}))


# --- Sending what is due -----------------------------------------------------------------------


@dataclass
class StepOutcome:
    queued: int = 0
    error: str = ""


def advance(automation_id: int, now=None) -> dict[int, StepOutcome]:
    """Queue every step due now of one active automation; {step id: outcome}. Safe to run twice."""
    now = now or timezone.now()
    outcomes: dict[int, StepOutcome] = {}
    with transaction.atomic():
        automation = Automation.objects.select_for_update().filter(pk=automation_id).first()
        if automation is None or not automation.is_active:
            return outcomes
        if automation.include_imports:
            enroll_imported(automation)
        steps = list(automation.steps.select_related("page", "automation__segment").order_by("sort_order", "pk"))
        for step in steps:
            outcome = outcomes[step.pk] = StepOutcome()
            try:
                with transaction.atomic():  # a savepoint: a refused step queues nothing, the others go on
                    outcome.queued = _queue_step(step, steps, now)
            except (CampaignError, IntegrityError) as error:
                outcome.error = str(error)
                logger.warning("automation %s step %s: %s", automation.pk, step.pk, error)
        _unstrand(automation)
    return outcomes


def _queue_step(step: Step, steps: list[Step], now) -> int:
    due = due_for(step, steps, now)
    if not due.exists():
        return 0
    run, new = _run_for(step)
    ledger = (
        due.order_by()
        .annotate(s_step=Value(step.pk), s_run=Value(run.pk), s_queued=Value(now))
        .values_list("s_step", "subscriber_id", "round", "s_run", "s_queued")
    )
    queued = insert_select(
        StepSend, ["step_id", "subscriber_id", "round", "run_id", "queued_at"], ledger, hash_joins=True
    )
    analyze(StepSend, queued)
    recipients = Subscriber.objects.filter(pk__in=StepSend.objects.filter(run=run).values("subscriber_id")).filter(
        ~Exists(Delivery.objects.filter(campaign_id=run.campaign_id, subscriber_id=OuterRef("pk")))
    )
    if new:
        start_campaign(run.campaign_id, recipients=recipients)
    else:
        add_recipients(run.campaign_id, recipients)
    return queued


# Ledger inserts at least this large refresh the planner's statistics (PostgreSQL).
ANALYZE_AFTER_ROWS = 10_000


def analyze(model, rows: int) -> bool:
    """ANALYZE ``model``'s table on PostgreSQL after inserting ``rows``; True if it ran. Until
    autovacuum gets to it the planner believes a freshly filled ledger holds a handful of rows and
    plans the snapshot's lookup into it as a nested loop: 104 s instead of seconds for 100,000
    (bench/automation_bench.py). Inside the transaction: ANALYZE sees the rows this one inserted."""
    if connection.vendor != "postgresql" or rows < ANALYZE_AFTER_ROWS:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return True


def _run_for(step: Step) -> tuple[StepRun, bool]:
    """The open run of ``step`` for its email's live revision, or a new one (with a draft
    campaign the caller starts). Runs of older revisions, or whose campaign was cancelled or
    failed, are closed: editing a step affects everyone who has not reached it yet."""
    page = step.page
    revision_id = page.live_revision_id if page.live else None
    if revision_id is None:
        raise CampaignError(f"the email '{page.title}' is not published")
    open_runs = StepRun.objects.filter(step=step, is_open=True).select_related("campaign")
    for run in open_runs:
        if run.revision_id == revision_id and run.campaign.status in Campaign.REOPENABLE:
            return run, False
    open_runs.update(is_open=False)
    campaign = create_campaign(page, [step.automation.list])
    return StepRun.objects.create(step=step, campaign=campaign, revision_id=revision_id), True


def _unstrand(automation: Automation) -> None:
    """A run whose campaign finished while rows were being added (the engine's finish raced the
    snapshot) is reopened, so those rows go."""
    stranded = Campaign.objects.filter(
        automation_run__step__automation=automation,
        automation_run__is_open=True,
        status=Campaign.Status.SENT,
    ).filter(Exists(Delivery.objects.unfinished().filter(campaign_id=OuterRef("pk"))))
    for campaign_id in stranded.values_list("pk", flat=True):
        add_recipients(campaign_id, None)


def tick(now=None) -> dict:
    """One scheduler pass over every active automation: {automation id: {step id: queued}}."""
    results = {}
    for automation_id in Automation.objects.active().values_list("pk", flat=True):
        outcomes = advance(automation_id, now)
        results[automation_id] = {step_id: outcome.queued for step_id, outcome in outcomes.items()}
    return results


def restart(automation: Automation, subscriber_ids=None) -> int:
    """An editor's decision: the given subscribers (default: everyone enrolled) go through the
    automation again from the first step, from now, in a new round (new run campaigns)."""
    with transaction.atomic():
        enrollments = Enrollment.objects.filter(automation=automation)
        if subscriber_ids is not None:
            enrollments = enrollments.filter(subscriber_id__in=list(subscriber_ids))
        StepRun.objects.filter(step__automation=automation).update(is_open=False)
        return enrollments.update(
            state=Enrollment.State.ACTIVE, stopped_at=None, entered_at=timezone.now(), round=F("round") + 1
        )
