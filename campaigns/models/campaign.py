"""The sending ledger: a Campaign sends one published issue to lists; a Delivery per recipient.

Every status change is a named transition on a QuerySet or model here (claim, mark sending, mark
sent, requeue, fail, mark unknown, release, skip, settle a dead worker's rows; pause, resume,
cancel, finish), never an ``.update(status=...)`` elsewhere. The workflows that combine them
(campaigns.sending.engine, campaigns.services) decide when.
"""

import datetime
import os
import socket
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, models, transaction
from django.db.models import Case, ExpressionWrapper, F, Max, Q, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from mail.addresses import validate_header_address
from subscribers.audience import Audience
from subscribers.models import Subscriber

# The A/B test's order (Campaign._test_order): Knuth's multiplicative hash constant and the
# largest prime below 2**32; products stay below 2**63 for ids below 3 * 10**9.
AB_HASH_MULTIPLIER = 2654435761
AB_HASH_MODULUS = 4294967291


def relay_wait_message(down_since, next_try_at) -> str:
    """What the campaign page and campaign_status say while the mail relay is down."""
    since, next_try = timezone.localtime(down_since), timezone.localtime(next_try_at)
    return _("Waiting for the relay since %(since)s, next try at %(next)s") % {
        "since": f"{since:%Y-%m-%d %H:%M:%S %Z}",
        "next": f"{next_try:%H:%M:%S %Z}",
    }


class CampaignQuerySet(models.QuerySet):
    def active(self):
        """Campaigns a worker may still have work for."""
        return self.filter(status__in=[Campaign.Status.SENDING, Campaign.Status.PAUSED])

    def due(self, now=None):
        """Scheduled campaigns whose time has come."""
        return self.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now or timezone.now())

    # Named transitions: each a conditional UPDATE returning how many campaigns changed, so that
    # of several workers or people acting at once exactly one makes each change.

    def count_outcomes(self, *, sent: int = 0, failed: int = 0, skipped: int = 0) -> int:
        """Add to the exact counters (call it in the transaction that records the rows' outcomes)."""
        if not (sent or failed or skipped):
            return 0
        return self.update(sent=F("sent") + sent, failed=F("failed") + failed, skipped=F("skipped") + skipped)

    def pause(self, reason: str = "") -> int:
        """sending -> paused; ``reason`` (when the engine pauses, e.g. the relay refused our
        login) becomes ``last_error`` for the campaign page and campaign_status."""
        fields = {"status": Campaign.Status.PAUSED, "next_try_at": None}
        if reason:
            fields["last_error"] = reason[:2000]
        return self.filter(status=Campaign.Status.SENDING).update(**fields)

    def resume(self) -> int:
        """paused -> sending, forgetting any relay outage (a person has looked at it)."""
        return self.filter(status=Campaign.Status.PAUSED).update(
            status=Campaign.Status.SENDING, last_error="", **Campaign.RELAY_OK
        )

    def cancel(self) -> int:
        """draft/scheduled/sending/paused -> cancelled (the deliveries are skipped separately)."""
        return self.filter(status__in=Campaign.CANCELLABLE).update(
            status=Campaign.Status.CANCELLED, finished_at=timezone.now(), next_try_at=None
        )

    def finish(self) -> int:
        """sending -> sent (the caller checked that no row is left to send)."""
        return self.filter(status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, finished_at=timezone.now(), **Campaign.RELAY_OK
        )

    def reopen(self, added: int) -> int:
        """``added`` recipients were snapshotted into a started campaign: count them, and a sent
        campaign sends again (a paused one stays paused)."""
        was_sent = Q(status=Campaign.Status.SENT)
        return self.filter(status__in=Campaign.REOPENABLE).update(
            status=Case(When(was_sent, then=Value(Campaign.Status.SENDING)), default=F("status")),
            finished_at=Case(When(was_sent, then=None), default=F("finished_at")),
            recipients=F("recipients") + added,
        )

    def fail_to_start(self, reason: str) -> int:
        """scheduled -> failed: the start at its time was refused (e.g. the audience is now empty)."""
        return self.filter(status=Campaign.Status.SCHEDULED).update(
            status=Campaign.Status.FAILED, last_error=reason, finished_at=timezone.now()
        )

    def reopen_for_retry(self, count: int, *, paused: bool) -> int:
        """``count`` failed rows were queued again: take them off ``failed`` and send (or stay paused)."""
        status = Campaign.Status.PAUSED if paused else Campaign.Status.SENDING
        return self.update(failed=F("failed") - count, status=status, finished_at=None)

    def wait_for_relay(self, *, failures: int, down_since, next_try_at, reason: str) -> int:
        """Record that the mail relay could not be reached: no batch claims before ``next_try_at``."""
        return self.filter(status=Campaign.Status.SENDING).update(
            relay_failures=failures, relay_down_since=down_since, next_try_at=next_try_at, last_error=reason[:2000]
        )

    def relay_recovered(self) -> int:
        """The relay answers again: forget the outage (1 for the one caller that noticed first)."""
        return self.filter(relay_failures__gt=0).update(last_error="", **Campaign.RELAY_OK)


class Campaign(models.Model):
    """One send of one issue (as of one published revision) to one or more lists."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    FINAL_STATUSES = (Status.SENT, Status.CANCELLED, Status.FAILED)
    CANCELLABLE = (Status.DRAFT, Status.SCHEDULED, Status.SENDING, Status.PAUSED)
    # Started campaigns that may take more recipients (services.add_recipients).
    REOPENABLE = (Status.SENDING, Status.PAUSED, Status.SENT)
    # The relay fields of a campaign whose mail relay answers.
    RELAY_OK = {"relay_failures": 0, "relay_down_since": None, "next_try_at": None}

    page = models.ForeignKey("campaigns.NewsletterIssuePage", on_delete=models.PROTECT, related_name="campaigns")
    # The revision that was live when the campaign started: what went out, whatever is edited later.
    page_revision = models.ForeignKey(
        "wagtailcore.Revision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lists = models.ManyToManyField("subscribers.MailingList", related_name="campaigns")
    # Narrows the lists (subscribers.audience.Audience). PROTECT: a segment a campaign used cannot
    # be deleted, so its report keeps saying who it went to (the admin offers no delete then).
    segment = models.ForeignKey(
        "subscribers.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    # A resend to the non-openers of ``resend_of`` (campaigns.resends): same issue, own subject;
    # its audience is narrowed to the original's deliveries nobody opened (audience_only()).
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resends", editable=False
    )
    subject_override = models.CharField(max_length=200, blank=True)
    # A/B subject test (campaigns.abtests): 2-4 subjects (the first is subject_override), each sent
    # to an even part of ``ab_percent`` % of the audience; after ``ab_window`` the variant with
    # the most human unique opens or clicks (``ab_metric``) is the winner (``ab_winner``, its
    # index), sent to the rest of the audience by a campaign of its own (``winner_of``).
    subject_variants = models.JSONField(default=list, blank=True)
    ab_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    ab_window = models.DurationField(null=True, blank=True)
    ab_metric = models.CharField(
        max_length=8, blank=True, default="", choices=[("opens", _("unique opens")), ("clicks", _("unique clicks"))]
    )
    ab_winner = models.PositiveSmallIntegerField(null=True, blank=True)
    ab_decided_at = models.DateTimeField(null=True, blank=True)
    ab_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    winner_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="winner_sends", editable=False
    )
    from_email = models.CharField(max_length=320, blank=True, help_text=_('e.g. "The Broadsheet <news@example.com>".'))
    reply_to = models.EmailField(blank=True, validators=[validate_header_address])
    # A MAILERS name (EMAIL_URL_<NAME>); blank: the first list's mailer, else "default".
    mailer = models.CharField(max_length=40, blank=True, default="")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The mail relay could not be reached (issue 8 finding 4): failures in a row, since when,
    # and before when no batch may try again (exponential backoff, one waiting task).
    relay_failures = models.PositiveIntegerField(default=0)
    relay_down_since = models.DateTimeField(null=True, blank=True)
    next_try_at = models.DateTimeField(null=True, blank=True)

    # Kept exact: changed only with F() in the transaction that records the deliveries' outcomes.
    recipients = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)

    # Tracking counters (campaigns.tracking): each delivery counts once, the first time it reaches
    # the state; changed only with F() so concurrent webhook requests never lose an update.
    delivered = models.PositiveIntegerField(default=0)
    unique_opens = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    # Deliveries opened / clicked by a machine (campaigns.bots), counted apart from the people
    # above: a delivery a machine opened first and a person later is in both.
    machine_opens = models.PositiveIntegerField(default=0)
    machine_clicks = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)

    # Rendered once at start, so every worker sends the identical content.
    subject = models.CharField(max_length=998, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("send_campaign", _("Can send campaigns"))]
        constraints = [
            # One live resend per campaign: a double click creates it once. A cancelled or failed
            # resend leaves room for another (which skips whoever the first one reached).
            models.UniqueConstraint(
                fields=["resend_of"],
                condition=Q(resend_of__isnull=False) & ~Q(status__in=["cancelled", "failed"]),
                name="one_live_resend_per_campaign",
            ),
            # The rest of an A/B test is sent once, whoever decides first (the task or an editor).
            models.UniqueConstraint(
                fields=["winner_of"], condition=Q(winner_of__isnull=False), name="one_winner_send_per_test"
            ),
        ]

    def __str__(self):
        return f"{self.page.title} ({self.get_status_display()})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def remaining(self) -> int:
        return max(self.recipients - self.sent - self.failed - self.skipped, 0)

    @property
    def waiting_for_relay(self) -> str:
        """ "Waiting for the relay since ..., next try at ..." while the relay is down, else ""."""
        if self.status != self.Status.SENDING or self.next_try_at is None or self.relay_down_since is None:
            return ""
        return relay_wait_message(self.relay_down_since, self.next_try_at)

    def audience_only(self):
        """The subscriber ids this campaign's audience is narrowed to (subscribers.audience), or
        None. A resend's: the original's deliveries that reached their reader and that no person
        opened (``DeliveryQuerySet.reached_unopened``), less anyone an earlier (cancelled) resend
        of it reached. An A/B test's: its test share (``test_share``). The rest of an A/B test:
        whoever the test did not go to."""
        if self.winner_of_id is not None:
            # The rest of an A/B test: everyone but the readers the test went to.
            tested = Delivery.objects.filter(campaign_id=self.winner_of_id, subscriber__isnull=False)
            return Subscriber.objects.exclude(pk__in=tested.values("subscriber_id")).values("pk")
        if self.is_ab_test:
            return self.test_share()
        if self.resend_of_id is None:
            return None
        return Campaign.non_openers(self.resend_of_id, resend_id=self.pk)

    @staticmethod
    def non_openers(campaign_id: int, *, resend_id: int | None = None):
        """The subscriber ids a resend of ``campaign_id`` to its non-openers goes to: its
        deliveries that reached their reader unopened, less anyone another resend of it (not
        ``resend_id``) already reached (a cancelled one)."""
        reached = (
            Delivery.objects.filter(campaign__resend_of_id=campaign_id, subscriber__isnull=False)
            .exclude(campaign_id=resend_id)
            .exclude(status__in=[Delivery.Status.QUEUED, Delivery.Status.SKIPPED])
            .values("subscriber_id")
        )
        return (
            Delivery.objects.filter(campaign_id=campaign_id)
            .reached_unopened()
            .exclude(subscriber_id__in=reached)
            .values("subscriber_id")
        )

    @property
    def is_ab_test(self) -> bool:
        return len(self.subject_variants) > 1

    def _test_order(self):
        """A pseudo-random order of subscribers, fixed per campaign (a multiplicative hash of the
        id, seeded with the campaign's): the test share is its first rows, split evenly in turn."""
        key = (F("pk") * AB_HASH_MULTIPLIER + self.pk) % AB_HASH_MODULUS
        return [key.asc(), F("pk").asc()]

    def test_share(self):
        """The ids of the A/B test's readers: ``ab_percent`` % of the audience (lists and segment),
        at least one per variant, chosen by ``_test_order`` (a subquery with ORDER BY ... LIMIT)."""
        audience = Audience(self.lists.all(), self.segment).subscribers()
        size = max(len(self.subject_variants), round(audience.count() * (self.ab_percent or 0) / 100))
        return audience.order_by(*self._test_order()).values("pk")[:size]

    def variant_expression(self):
        """The variant each test reader gets, for the recipient snapshot (over Subscriber rows):
        their rank in ``_test_order`` modulo the number of variants, so the parts differ by one
        at most. None for a campaign that is not an A/B test (the column stays NULL)."""
        if not self.is_ab_test:
            return None
        rank = Window(RowNumber(), order_by=self._test_order())
        return ExpressionWrapper((rank - 1) % len(self.subject_variants), output_field=models.IntegerField())

    def pause(self, reason: str = "") -> bool:
        return self._transition(Campaign.objects.filter(pk=self.pk).pause(reason))

    def resume(self) -> bool:
        return self._transition(Campaign.objects.filter(pk=self.pk).resume())

    def cancel(self) -> bool:
        """Cancel, and skip every queued row nobody holds (held rows are skipped by their worker)."""
        with transaction.atomic():
            if not Campaign.objects.filter(pk=self.pk).cancel():
                self.refresh_from_db()
                return False
            skipped = self.deliveries.unclaimed_queued().skip("campaign cancelled")
            Campaign.objects.filter(pk=self.pk).count_outcomes(skipped=skipped)
        self.refresh_from_db()
        return True

    def _transition(self, changed: int) -> bool:
        self.refresh_from_db()
        return bool(changed)


class AnyOf(models.Lookup):
    """``id__any_of=[...]``: ``id = ANY(%s)`` with the ids as ONE array parameter on PostgreSQL,
    ``id IN (...)`` elsewhere. A batch's statements name its 1,000 claimed ids: as an IN list,
    building and binding them cost the worker 1.8 ms per statement against 0.7 ms, and PostgreSQL
    planned the list 2.5 times slower (docs/performance.md, issue 15)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self):
        return [int(value) for value in self.rhs]

    def as_sql(self, compiler, connection):
        if not self.rhs:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, self.rhs]
        return f"{lhs} IN ({', '.join(['%s'] * len(self.rhs))})", [*lhs_params, *self.rhs]


class DeliveryQuerySet(models.QuerySet):
    """The ledger's states (adjectives) and transitions (verbs): every status change of a delivery
    is one of these, in the style of django-tasks-db's DBTaskResult.claim()/set_successful().
    Each transition is one UPDATE of the rows in the queryset and returns how many changed; the
    caller adds them to the campaign counters (CampaignQuerySet.count_outcomes) in the same
    transaction."""

    def claimable(self, now=None):
        """Queued, claimed by nobody, and not waiting for a retry."""
        now = now or timezone.now()
        return self.filter(status=Delivery.Status.QUEUED, claimed_by="").filter(
            Q(retry_at__isnull=True) | Q(retry_at__lte=now)
        )

    def unfinished(self):
        """Rows that still need a worker: queued (claimed or not) or in flight."""
        return self.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING])

    def reached_unopened(self):
        """Sent to a subscriber who is still on record, and since then not bounced, complained
        about or unsubscribed from, and opened by no person (a machine's open does not count,
        campaigns.bots): who a resend to non-openers goes to."""
        return self.filter(
            status=Delivery.Status.SENT,
            subscriber__isnull=False,
            bounced_at__isnull=True,
            complained_at__isnull=True,
            unsubscribed_at__isnull=True,
            first_opened_at__isnull=True,
        )

    def unclaimed_queued(self):
        return self.filter(status=Delivery.Status.QUEUED, claimed_by="")

    def held_by(self, worker_id: str):
        """Rows ``worker_id`` claimed and has not settled."""
        return self.filter(claimed_by=worker_id)

    def claim(self, worker_id: str, limit: int, *, after: int | None = None) -> list[int]:
        """Claim up to ``limit`` claimable rows of this queryset for ``worker_id``; their ids, in order.

        SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL) lets any number of workers claim at once
        without waiting for each other or taking the same row: a row locked by another worker's
        claim transaction is skipped. The transaction lasts only for the claim, so the lock never
        spans the network sends. On SQLite (one writer at a time) FOR UPDATE is a no-op.

        ``after`` (a hint: the highest id this process claimed before; the engine passes it on
        PostgreSQL) takes, in this order, rows due for a retry (delivery_retry_idx), rows above
        ``after``, and only if still too few, rows below it: every claimable row is still found,
        but a row handed back below the hint may go after those above it. Without a bound,
        PostgreSQL plans ``ORDER BY id LIMIT n`` as a walk of the primary key past every row
        already sent (80 ms per claim after 160,000 of 1,000,000, growing; docs/performance.md).
        """
        now = timezone.now()
        with transaction.atomic():
            claimable = (
                self.claimable(now).order_by("pk").select_for_update(skip_locked=True).values_list("pk", flat=True)
            )
            if after is None:
                ids = list(claimable[:limit])
            else:
                ids = list(claimable.filter(retry_at__isnull=False)[:limit])
                for bound in (Q(pk__gt=after), Q(pk__lte=after)):
                    if len(ids) < limit:
                        ids += claimable.filter(bound, retry_at__isnull=True)[: limit - len(ids)]
                ids.sort()
            if ids:
                Delivery.objects.filter(id__any_of=ids).update(claimed_by=worker_id, claimed_at=now)
        return ids

    def mark_sending(self, sending_at) -> int:
        """Handed to the transport now (one call for a batch ESP); ``claimed_at`` doubles as heartbeat."""
        return self.update(
            status=Delivery.Status.SENDING, sending_at=sending_at, claimed_at=sending_at, attempts=F("attempts") + 1
        )

    def mark_sent(self, now, *, esp_message_id: str | None = None) -> int:
        fields = {"status": Delivery.Status.SENT, "sent_at": now, "claimed_by": ""}
        if esp_message_id is not None:
            fields["esp_message_id"] = esp_message_id[:255]
        return self.update(**fields)

    def requeue(self, *, retry_at, error: str) -> int:
        """A temporary refusal: back to the queue, not claimable before ``retry_at``."""
        return self.update(
            status=Delivery.Status.QUEUED, claimed_by="", claimed_at=None, retry_at=retry_at, last_error=error[:1000]
        )

    def requeue_unsent(self) -> int:
        """Marked sending but never handed over (the relay went away first): the attempt is undone."""
        return self.filter(status=Delivery.Status.SENDING).update(
            status=Delivery.Status.QUEUED, claimed_by="", claimed_at=None, attempts=F("attempts") - 1
        )

    def fail(self, error: str) -> int:
        """Permanently failed for this recipient (never retried automatically)."""
        return self.update(status=Delivery.Status.FAILED, claimed_by="", last_error=error[:1000])

    def mark_unknown(self, error: str) -> int:
        """May or may not have been delivered (in flight when a worker died or a link was cut)."""
        return self.update(status=Delivery.Status.UNKNOWN, claimed_by="", last_error=error[:1000])

    def release(self) -> int:
        """Claimed rows not sent (pause, throttle, stop) go back to the queue as they were."""
        return self.filter(status=Delivery.Status.QUEUED).update(claimed_by="", claimed_at=None)

    def skip(self, reason: str) -> int:
        """Queued rows of a cancelled campaign: never sent."""
        return self.filter(status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.SKIPPED, claimed_by="", last_error=reason
        )

    def retry(self) -> int:
        """Failed (or unknown, when the caller includes them) rows queued again from the start."""
        return self.update(status=Delivery.Status.QUEUED, claimed_by="", claimed_at=None, retry_at=None, attempts=0)


class DeliveryManager(models.Manager.from_queryset(DeliveryQuerySet)):
    """The two transitions written as raw SQL for speed (docs/performance.md), and recovery."""

    def mark_one_sending(self, pk: int, worker_id: str, sending_at, message_id: str) -> bool:
        """The per-message marker of the SMTP path: one committed UPDATE, kept cheap.

        This write is what limits a kill -9 to the one message in flight, so it stays one
        committed statement per message. Built with the ORM it cost about five times the
        statement itself, so it is formatted once (_marker_sql) and executed raw. It only marks a
        row this worker still holds: False when recovery gave the row away (the worker was
        thought dead), and then the message must not be sent. On PostgreSQL its transaction sets
        ``synchronous_commit = off`` unless BROADSHEET["SYNCHRONOUS_MARKER"]: the commit does not
        wait for the WAL flush, so the marker survives a killed worker but not a power cut of the
        database server (docs/sending.md).
        """
        when = connection.ops.adapt_datetimefield_value(sending_at)
        params = [Delivery.Status.SENDING.value, when, when, message_id[:255], pk, worker_id]
        prelude = marker_prelude()
        if prelude:
            with transaction.atomic(savepoint=False), connection.cursor() as cursor:
                for statement in prelude:
                    cursor.execute(statement)
                cursor.execute(_marker_sql(), params)
                return cursor.rowcount == 1
        with connection.cursor() as cursor:
            cursor.execute(_marker_sql(), params)
            return cursor.rowcount == 1

    def mark_sent_with_message_ids(self, pending: list[tuple[int, str]], now) -> int:
        """Mark ``pending`` [(delivery id, ESP message id)] sent, with their ids, in few statements.

        Django's bulk_update writes a CASE WHEN id=... THEN ... per row and field; building it was
        73% of the ESP path's time (docs/performance.md). Mailgun and other batch APIs return ONE
        id for the whole call: one UPDATE per distinct id. ESPs with one id per recipient get one
        UPDATE ... FROM (VALUES (id, message id), ...) per chunk where the database has it
        (PostgreSQL, SQLite >= 3.33), otherwise one UPDATE per id.
        """
        groups: dict[str, list[int]] = defaultdict(list)
        for pk, message_id in pending:
            groups[message_id[:255]].append(pk)
        if len(groups) <= GROUPED_MESSAGE_IDS or not _supports_update_from():
            for message_id, ids in groups.items():
                self.filter(id__any_of=ids).mark_sent(now, esp_message_id=message_id)
            return len(pending)
        table = connection.ops.quote_name(Delivery._meta.db_table)
        sent_at = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            for start in range(0, len(pending), MESSAGE_ID_CHUNK):
                chunk = pending[start : start + MESSAGE_ID_CHUNK]
                values = ", ".join(["(%s, %s)"] * len(chunk))
                params = [value for pk, message_id in chunk for value in (pk, message_id[:255])]
                # Identifiers from _meta, every value a parameter.
                cursor.execute(
                    f"WITH v (id, message_id) AS (VALUES {values}) "  # noqa: S608
                    f"UPDATE {table} SET {_column('status')} = %s, {_column('sent_at')} = %s, "
                    f"{_column('claimed_by')} = '', {_column('esp_message_id')} = v.message_id "
                    f"FROM v WHERE {table}.{_column('id')} = v.id",
                    [*params, Delivery.Status.SENT.value, sent_at],
                )
        return len(pending)

    def write_fields(self, deliveries: list, fields: tuple[str, ...]) -> int:
        """Write ``fields`` of each of ``deliveries`` (loaded and locked by the caller) as they stand
        on the objects: one UPDATE ... FROM (VALUES ...) per chunk where the database has it
        (the tracking webhooks' batches: bulk_update's CASE per row and field costs more than the
        rest of the batch), else one UPDATE per row."""
        if not deliveries:
            return 0
        if not _supports_update_from():
            for delivery in deliveries:
                self.filter(pk=delivery.pk).update(**{name: getattr(delivery, name) for name in fields})
            return len(deliveries)
        table = connection.ops.quote_name(Delivery._meta.db_table)
        postgres = connection.vendor == "postgresql"
        placeholders = []
        for name in ("id", *fields):
            # PostgreSQL types a VALUES column from its values: NULLs alone would be text.
            db_type = Delivery._meta.get_field(name).cast_db_type(connection) if postgres else None
            placeholders.append(f"CAST(%s AS {db_type})" if db_type else "%s")
        row = f"({', '.join(placeholders)})"
        adapt = {
            name: connection.ops.adapt_datetimefield_value
            for name in fields
            if isinstance(Delivery._meta.get_field(name), models.DateTimeField)
        }
        assignments = ", ".join(f"{_column(name)} = v.{_column(name)}" for name in fields)
        names = ", ".join(_column(name) for name in ("id", *fields))
        with connection.cursor() as cursor:
            for start in range(0, len(deliveries), MESSAGE_ID_CHUNK):
                chunk = deliveries[start : start + MESSAGE_ID_CHUNK]
                params = []
                for delivery in chunk:
                    params.append(delivery.pk)
                    for name in fields:
                        value = getattr(delivery, name)
                        params.append(adapt[name](value) if name in adapt and value is not None else value)
                # Identifiers from _meta, every value a parameter.
                cursor.execute(
                    f"WITH v ({names}) AS (VALUES {', '.join([row] * len(chunk))}) "  # noqa: S608
                    f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{_column('id')} = v.{_column('id')}",
                    params,
                )
        return len(deliveries)

    def settle_dead_worker(self, campaign_id: int, worker_id: str, is_dead) -> dict:
        """Settle the rows of a worker that died, in ONE transaction with the counters.

        ``is_dead(worker_id, last_touched)`` is asked again INSIDE the transaction, with the
        worker's rows locked: the worker may have come back to life (touched a row) since the
        caller looked, and then nothing is changed. Its claimed ``queued`` rows go back to the
        queue; its ``sending`` rows with the newest ``sending_at`` (the message or ESP call in
        flight) become ``unknown`` (reported, never silently re-sent); its older ``sending`` rows
        went out before it moved on: ``sent``. Returns {"requeued", "sent", "unknown"}.
        """
        with transaction.atomic():
            rows = self.filter(campaign_id=campaign_id).held_by(worker_id)
            last = rows.unfinished().select_for_update().values_list("claimed_at", flat=True)
            touched = [value for value in last if value is not None]
            if not touched or not is_dead(worker_id, max(touched)):
                return {}
            requeued = rows.release()
            sending = rows.filter(status=Delivery.Status.SENDING)
            newest = sending.aggregate(newest=Max("sending_at"))["newest"]
            unknown = sent = 0
            if newest is not None:
                unknown = sending.filter(sending_at=newest).mark_unknown(UNKNOWN_ERROR)
                sent = sending.filter(sending_at__lt=newest).mark_sent(timezone.now())
                Campaign.objects.filter(pk=campaign_id).count_outcomes(sent=sent, failed=unknown)
        return {"requeued": requeued, "sent": sent, "unknown": unknown}


# The error recorded on the message a dead worker had in flight.
UNKNOWN_ERROR = "the worker died while sending it: it may or may not have been delivered"
# Rows per UPDATE ... FROM (VALUES ...) statement when an ESP reports one id per recipient.
MESSAGE_ID_CHUNK = 500
# Up to this many distinct ESP message ids in a checkpoint, one plain UPDATE per id is cheaper.
GROUPED_MESSAGE_IDS = 8


def marker_prelude() -> list[str]:
    """Statements run in the per-message marker's transaction before the marker itself."""
    if connection.vendor == "postgresql" and not settings.BROADSHEET["SYNCHRONOUS_MARKER"]:
        return ["SET LOCAL synchronous_commit = off"]
    return []


def _column(name: str) -> str:
    return connection.ops.quote_name(Delivery._meta.get_field(name).column)


_marker_sql_cache: dict[str, str] = {}


def _marker_sql() -> str:
    """UPDATE <delivery> SET status, sending_at, claimed_at, attempts+1, esp_message_id
    WHERE id AND claimed_by (per vendor)."""
    sql = _marker_sql_cache.get(connection.vendor)
    if sql is None:
        table = connection.ops.quote_name(Delivery._meta.db_table)
        attempts = _column("attempts")
        # Identifiers from the model's _meta, values as parameters: nothing user-supplied.
        sql = _marker_sql_cache[connection.vendor] = (
            f"UPDATE {table} SET {_column('status')} = %s, {_column('sending_at')} = %s, "  # noqa: S608
            f"{_column('claimed_at')} = %s, {attempts} = {attempts} + 1, {_column('esp_message_id')} = %s "
            f"WHERE {_column('id')} = %s AND {_column('claimed_by')} = %s"
        )
    return sql


def _supports_update_from() -> bool:
    if connection.vendor == "postgresql":
        return True
    # SQLite has UPDATE ... FROM since 3.33.
    return connection.vendor == "sqlite" and connection.Database.sqlite_version_info >= (3, 33, 0)


class Delivery(models.Model):
    """One recipient of one campaign: the snapshot and the ledger that prevents a second send."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        # In flight when its worker died or the link was cut: may or may not have arrived.
        # Counted in Campaign.failed; retried only on an explicit decision (retry_failed).
        UNKNOWN = "unknown", _("Unknown")
        SKIPPED = "skipped", _("Skipped")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    # SET_NULL: erasing a subscriber must not erase the record that a campaign went out.
    subscriber = models.ForeignKey(
        "subscribers.Subscriber", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    email = models.CharField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    subscriber_uid = models.UUIDField()
    # The language of the version this recipient gets (the translation, campaigns.editions).
    language = models.CharField(max_length=16, blank=True, default="")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # A claim is (worker, time); a claim older than the stale timeout belongs to a dead worker.
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When the row was last handed to the transport; the newest 'sending' rows of a dead
    # worker are the ones that were in flight.
    sending_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    esp_message_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The A/B test's subject this recipient got (an index into campaign.subject_variants), else None.
    variant = models.PositiveSmallIntegerField(null=True, blank=True)

    # Tracking (filled from ESP events and the tracking endpoints). Opens and clicks are a
    # person's (campaigns.bots); machine_opens / machine_clicks count the machines' events apart
    # (db_default: the recipient snapshot inserts rows without naming them).
    delivered_at = models.DateTimeField(null=True, blank=True)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    first_clicked_at = models.DateTimeField(null=True, blank=True)
    click_count = models.PositiveIntegerField(default=0)
    machine_opens = models.PositiveIntegerField(default=0, db_default=0)
    machine_clicks = models.PositiveIntegerField(default=0, db_default=0)
    bounced_at = models.DateTimeField(null=True, blank=True)
    bounce_type = models.CharField(max_length=16, blank=True, default="")
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "subscriber"], name="unique_delivery")]
        indexes = [
            # The claim query: WHERE campaign_id = ? AND status = 'queued' ORDER BY id.
            models.Index(fields=["campaign", "status", "id"], name="delivery_claim_idx"),
            # Per-batch bookkeeping (recover_stale_deliveries groups the claimed rows by worker;
            # work_remaining looks for the next retry) touches only the few claimed rows and the
            # few waiting for a retry. Without these partial indexes each of those queries walked
            # every queued row of the campaign: about 1 s per batch at the start of a 1,000,000
            # recipient campaign on PostgreSQL (docs/performance.md). The conditions are written
            # exactly as the queries filter, so the planner can match them.
            models.Index(
                fields=["campaign", "claimed_by"],
                name="delivery_claimed_idx",
                condition=~Q(claimed_by=""),
            ),
            models.Index(
                fields=["campaign", "retry_at"],
                name="delivery_retry_idx",
                condition=Q(status="queued", retry_at__isnull=False),
            ),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self):
        return f"{self.email}: {self.status}"


class DeliveryEventQuerySet(models.QuerySet):
    def human(self):
        """Events a person made (every event but the machine opens and clicks, campaigns.bots)."""
        return self.filter(machine_reason="")

    def machine(self):
        """Opens and clicks a machine made (Apple's privacy proxy, link scanners: campaigns.bots)."""
        return self.exclude(machine_reason="")


Delivery._meta.get_field("id").register_lookup(AnyOf)


class DeliveryEvent(models.Model):
    """One tracking event from an ESP (delivered, bounced, opened...); ``event_id`` makes it idempotent."""

    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    esp = models.CharField(max_length=40)
    event_type = models.CharField(max_length=40)
    event_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    message_id = models.CharField(max_length=255, blank=True, db_index=True)
    recipient = models.CharField(max_length=254, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    # The clicked link, for "clicked" events (the report's top links).
    url = models.CharField(max_length=2000, blank=True, default="")
    # Why a machine made this open or click (campaigns.bots reasons); "" for a person.
    machine_reason = models.CharField(max_length=32, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The report's machine figures: the few events no person made, found without reading
            # a campaign's hundreds of thousands of human ones (partial: human events stay out).
            models.Index(fields=["campaign"], condition=~models.Q(machine_reason=""), name="deliveryevent_machine_idx"),
        ]

    def __str__(self):
        return f"{self.esp} {self.event_type} for {self.recipient}"


class SendWindow(models.Model):
    """Messages reserved in one rate window of one mailer: the throttle every worker shares."""

    mailer = models.CharField(max_length=64)
    period = models.PositiveIntegerField(help_text="Window length in seconds (1 or 3600).")
    window = models.BigIntegerField(help_text="Unix time // period.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailer", "period", "window"], name="unique_send_window")]

    def __str__(self):
        return f"{self.mailer} {self.period}s #{self.window}: {self.count}"


class WorkerDied(Exception):
    """The reason recorded on the task result of a sending run whose process died."""

    def __init__(self, worker: "SendingWorker"):
        beat = timezone.localtime(worker.heartbeat_at)
        super().__init__(
            f"The worker process running this task died (host {worker.hostname}, pid {worker.pid}, "
            f"last heartbeat {beat:%Y-%m-%d %H:%M:%S %Z}); another worker recovered its deliveries."
        )


class SendingWorkerQuerySet(models.QuerySet):
    def stopped_before(self, when):
        return self.filter(stopped_at__lt=when)


class SendingWorker(models.Model):
    """One run of the batch workflow (``worker_id``), with its heartbeat: how a dead worker is
    told apart from a slow one in seconds rather than after CLAIM_TIMEOUT_SECONDS (issue 8
    finding 5). On the worker's own host its process id is checked directly; from other hosts a
    heartbeat older than HEARTBEAT_TIMEOUT_SECONDS means it is gone. ``stopped_at`` is set when
    the run ends: rows it still holds then are orphans, settled at once."""

    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # The django-tasks-db task result this run executes (database backend only; "" otherwise):
    # when the process dies, recovery fails that row, which db_worker itself never will.
    task_id = models.CharField(max_length=64, blank=True, default="")

    objects = SendingWorkerQuerySet.as_manager()

    def __str__(self):
        return self.worker_id

    # Finished runs are kept this long (for a look at who sent what), then pruned by the next start.
    KEEP_STOPPED = datetime.timedelta(hours=1)

    @classmethod
    def start(cls, worker_id: str, task_id: str = "") -> "SendingWorker":
        """Register a run of this process (before it claims anything); prunes old finished runs.

        ``task_id``: the django-tasks-db task result running it, failed by ``reap`` if it dies.
        """
        now = timezone.now()
        cls.objects.stopped_before(now - cls.KEEP_STOPPED).delete()
        worker, _ = cls.objects.update_or_create(
            worker_id=worker_id,
            defaults={
                "hostname": socket.gethostname()[:255],
                "pid": os.getpid(),
                "heartbeat_at": now,
                "stopped_at": None,
                "task_id": task_id,
            },
        )
        return worker

    def reap(self) -> bool:
        """This run's process is gone (``engine.worker_is_dead``): mark it stopped and fail its task.

        db_worker marks a task result failed only when the task raises; a process killed (kill -9,
        OOM, a lost host) leaves it "running" for ever. The row is failed with django-tasks-db's
        own ``set_failed``, the exception naming the process; only while it is still running (a
        worker thought dead that finishes after all overwrites it with its real outcome).
        Returns whether a task row was failed.
        """
        with transaction.atomic():
            stopped = SendingWorker.objects.filter(pk=self.pk, stopped_at__isnull=True).update(
                stopped_at=timezone.now()
            )
            if not stopped or not self.task_id:
                return False
            task_result = (
                DBTaskResult.objects.select_for_update()
                .filter(pk=self.task_id, status=TaskResultStatus.RUNNING)
                .first()
            )
            if task_result is None:
                return False
            task_result.set_failed(WorkerDied(self))
            return True

    @classmethod
    def beat(cls, worker_id: str) -> int:
        return cls.objects.filter(worker_id=worker_id, stopped_at__isnull=True).update(heartbeat_at=timezone.now())

    @classmethod
    def stop(cls, worker_id: str) -> int:
        return cls.objects.filter(worker_id=worker_id).update(stopped_at=timezone.now())
