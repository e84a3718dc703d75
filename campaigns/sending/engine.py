"""The batch workflow: claim rows, send them, record every outcome exactly once.

Durability rules (what a kill -9 can lose):

- A row is handed to the transport only after it has been marked ``sending`` (with a strictly
  increasing ``sending_at`` per worker) in its own committed UPDATE: one write per message.
- A successful row stays ``sending`` until the next checkpoint (every CHECKPOINT_EVERY messages,
  every ESP call, any failure, the end of the batch), which marks it ``sent`` and adds it to the
  campaign counters with F() in ONE transaction: counters always equal the ledger.
- Failures and temporary refusals are written at once (also with their counters).
- So the ``sending`` rows of a dead worker are: the newest ``sending_at`` (the message, or the ESP
  call, in flight: reported failed as "unknown", never re-sent) and older ones that went out
  successfully before the worker died (recorded as sent). Its claimed ``queued`` rows go back to
  the queue. A worker is dead when none of its rows was touched for CLAIM_TIMEOUT_SECONDS.
"""

import datetime
import logging
import os
import socket
import time
import uuid
from collections import Counter, defaultdict
from email.utils import formatdate

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.sending import transports as transports_module
from campaigns.sending.headers import Recipient, build_content, recipient_values
from campaigns.sending.throttle import Throttle
from campaigns.sending.transports import FAILED, SENT, TEMPORARY, UNKNOWN, Outcome, Outgoing, TransportUnavailable
from subscribers.services import RecipientLinks

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY = 100
# Consecutive temporary refusals after which the batch stops and hands its rows back.
TEMPORARY_STREAK_LIMIT = 3
UNKNOWN_ERROR = "unknown: worker died while sending"
# Rows per UPDATE ... FROM (VALUES ...) statement when an ESP reports one id per recipient.
MESSAGE_ID_CHUNK = 500
# Up to this many distinct ESP message ids in a checkpoint, one plain UPDATE per id is cheaper.
GROUPED_MESSAGE_IDS = 8


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff_seconds(attempts: int) -> float:
    """Exponential: RETRY_BACKOFF_SECONDS * 2**(attempts-1), at most RETRY_BACKOFF_MAX_SECONDS."""
    base = float(settings.BROADSHEET["RETRY_BACKOFF_SECONDS"])
    return min(base * 2 ** max(attempts - 1, 0), float(settings.BROADSHEET["RETRY_BACKOFF_MAX_SECONDS"]))


# --- Claiming and recovery --------------------------------------------------------------------


def claim_deliveries(campaign_id: int, worker_id: str, limit: int, *, after: int | None = None) -> list[int]:
    """Claim up to ``limit`` claimable rows for ``worker_id``; returns their ids in id order.

    ``after`` (a hint: the highest id this process claimed before; send_batch passes it on
    PostgreSQL) takes, in this order, rows due for a retry (found through delivery_retry_idx),
    rows above ``after``, and only if still too few, rows below it: every claimable row is still
    found, but a row handed back below the hint (pause, throttle) may go after those above it.
    Why: PostgreSQL plans ``ORDER BY id LIMIT n`` as a walk of the primary key that filters out
    the rows already sent (it assumes queued rows are spread evenly, but they all sit after the
    sent ones), so without a bound each claim read every row sent so far: 80 ms per claim after
    160,000 of 1,000,000, growing with the campaign. SQLite plans it on delivery_claim_idx.

    On PostgreSQL, SELECT ... FOR UPDATE SKIP LOCKED lets any number of workers claim at the
    same time without waiting for each other or taking the same row: a row locked by another
    worker's claim transaction is simply skipped. The transaction only lasts for the claim, so
    the lock never spans the network sends. On SQLite (one writer at a time) it is a no-op.
    """
    now = timezone.now()
    with transaction.atomic():
        claimable = (
            Delivery.objects.claimable(now)
            .filter(campaign_id=campaign_id)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
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
            Delivery.objects.filter(pk__in=ids).update(claimed_by=worker_id, claimed_at=now)
    return ids


def recover_stale_deliveries(campaign_id: int, *, stale_after: float | None = None) -> dict:
    """Settle the rows of workers that stopped touching them ``stale_after`` seconds ago.

    Claimed queued rows go back to the queue; the newest ``sending`` rows of each dead worker
    become failed ("unknown: worker died while sending"); its older ``sending`` rows were sent.
    Returns {"requeued", "sent", "unknown"}.
    """
    stale_after = float(settings.BROADSHEET["CLAIM_TIMEOUT_SECONDS"] if stale_after is None else stale_after)
    cutoff = timezone.now() - datetime.timedelta(seconds=stale_after)
    result = Counter()
    workers = (
        Delivery.objects.unfinished()
        .filter(campaign_id=campaign_id)
        .exclude(claimed_by="")
        .values("claimed_by")
        .annotate(last=Max("claimed_at"))
        .filter(last__lt=cutoff)
    )
    for worker in list(workers):
        worker_id = worker["claimed_by"]
        with transaction.atomic():
            rows = Delivery.objects.filter(campaign_id=campaign_id, claimed_by=worker_id)
            # Re-check inside the transaction: the worker may have come back to life.
            if rows.unfinished().filter(claimed_at__gte=cutoff).exists():
                continue
            result["requeued"] += rows.filter(status=Delivery.Status.QUEUED).update(claimed_by="", claimed_at=None)
            sending = rows.filter(status=Delivery.Status.SENDING)
            newest = sending.aggregate(newest=Max("sending_at"))["newest"]
            if newest is None:
                continue
            now = timezone.now()
            unknown = sending.filter(sending_at=newest).update(
                status=Delivery.Status.FAILED, last_error=UNKNOWN_ERROR, claimed_by=""
            )
            sent = sending.filter(sending_at__lt=newest).update(status=Delivery.Status.SENT, sent_at=now, claimed_by="")
            Campaign.objects.filter(pk=campaign_id).update(sent=F("sent") + sent, failed=F("failed") + unknown)
            result["sent"] += sent
            result["unknown"] += unknown
            logger.warning(
                "campaign %s: worker %s died; %s in flight reported failed, %s recorded sent, %s requeued",
                campaign_id,
                worker_id,
                unknown,
                sent,
                result["requeued"],
            )
    return dict(result)


def release_claims(campaign_id: int, worker_id: str, ids: list[int] | None = None) -> int:
    """Hand back the claimed, unsent rows of ``worker_id`` (skipped if the campaign was cancelled).

    ``ids``, the rows the batch claimed, narrows the UPDATE to them (a primary key lookup rather
    than a search of the campaign's queued rows for the worker's name).
    """
    with transaction.atomic():
        status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
        rows = Delivery.objects.filter(campaign_id=campaign_id, claimed_by=worker_id, status=Delivery.Status.QUEUED)
        if ids is not None:
            rows = rows.filter(pk__in=ids)
        if status == Campaign.Status.CANCELLED:
            count = rows.update(status=Delivery.Status.SKIPPED, claimed_by="", last_error="campaign cancelled")
            Campaign.objects.filter(pk=campaign_id).update(skipped=F("skipped") + count)
            return count
        return rows.update(claimed_by="", claimed_at=None)


def finish_if_done(campaign_id: int) -> bool:
    """Mark the campaign sent when no queued or in-flight row remains; True for the one caller that did."""
    if Delivery.objects.unfinished().filter(campaign_id=campaign_id).exists():
        return False
    # Conditional UPDATE: of several workers finishing together exactly one flips the status.
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, finished_at=timezone.now()
        )
    )


def work_remaining(campaign_id: int) -> dict:
    """{"claimable": rows a worker could claim now, "unfinished": rows not settled, "next_retry_at"}."""
    now = timezone.now()
    unfinished = Delivery.objects.unfinished().filter(campaign_id=campaign_id)
    next_retry = (
        unfinished.filter(status=Delivery.Status.QUEUED, retry_at__gt=now)
        .aggregate(Min("retry_at"))
        .get("retry_at__min")
    )
    return {
        "claimable": Delivery.objects.claimable(now).filter(campaign_id=campaign_id).exists(),
        "unfinished": unfinished.exists(),
        "next_retry_at": next_retry,
    }


# --- Sending ----------------------------------------------------------------------------------


def marker_prelude() -> list[str]:
    """Statements run in the per-message marker's transaction before the marker itself."""
    if connection.vendor == "postgresql" and not settings.BROADSHEET["SYNCHRONOUS_MARKER"]:
        return ["SET LOCAL synchronous_commit = off"]
    return []


class _Batch:
    """The state of one send_batch call."""

    def __init__(self, campaign: Campaign, worker_id: str):
        self.campaign_id = campaign.pk
        self.worker_id = worker_id
        self.pending_sent: list[tuple[int, str]] = []
        self.settled: list[tuple[int, str, str]] = []  # (id, status, error) failures and retries
        self.counts = Counter()
        self.last_sending_at = None
        self.max_attempts = int(settings.BROADSHEET["MAX_ATTEMPTS"])
        self.attempts: dict[int, int] = {}

    def next_sending_at(self):
        # Strictly increasing per worker, so recovery can tell the newest (in flight) apart.
        now = timezone.now()
        if self.last_sending_at is not None and now <= self.last_sending_at:
            now = self.last_sending_at + datetime.timedelta(microseconds=1)
        self.last_sending_at = now
        return now

    def mark_sending(self, items: list[Outgoing], message_ids: bool) -> None:
        if message_ids and len(items) == 1:
            self.mark_one_sending(items[0])
            return
        ids = [item.recipient.delivery_id for item in items]
        now = self.next_sending_at()
        update = {
            "status": Delivery.Status.SENDING,
            "sending_at": now,
            "claimed_at": now,
            "attempts": F("attempts") + 1,
        }
        Delivery.objects.filter(pk__in=ids).update(**update)

    def mark_one_sending(self, item: Outgoing) -> None:
        """The per-message marker of the SMTP path: one committed UPDATE, kept cheap.

        This write is what limits a kill -9 to the one message in flight, so it stays one
        committed statement per message. Building it with the ORM cost about five times the
        statement itself (docs/performance.md), so it is formatted once (_marker_sql) and executed
        raw. On PostgreSQL its transaction sets ``synchronous_commit = off``: the commit does not
        wait for the WAL flush, so the marker survives a killed worker (the server has it) but
        not a power cut of the database server, the same class as SQLite's WAL with
        synchronous=NORMAL (docs/sending.md). BROADSHEET["SYNCHRONOUS_MARKER"] keeps the flush for
        operators who want no re-send even after a database-server power cut, at its fsync cost.
        """
        now = connection.ops.adapt_datetimefield_value(self.next_sending_at())
        params = [Delivery.Status.SENDING.value, now, now, item.values["message_id"][:255], item.recipient.delivery_id]
        prelude = marker_prelude()
        if prelude:
            with transaction.atomic(savepoint=False), connection.cursor() as cursor:
                for statement in prelude:
                    cursor.execute(statement)
                cursor.execute(_marker_sql(), params)
        else:
            with connection.cursor() as cursor:
                cursor.execute(_marker_sql(), params)

    def record(self, outcomes) -> int:
        """Buffer outcomes; returns how many were temporary."""
        temporary = 0
        for outcome in outcomes:
            if outcome.status == SENT:
                self.pending_sent.append((outcome.delivery_id, outcome.message_id))
            elif outcome.status == TEMPORARY:
                temporary += 1
                self.settled.append((outcome.delivery_id, TEMPORARY, outcome.error))
            else:
                self.settled.append((outcome.delivery_id, outcome.status, outcome.error))
        return temporary

    def checkpoint(self, *, esp_ids: bool) -> None:
        """Write buffered outcomes and their counter increments in one transaction."""
        if not self.pending_sent and not self.settled:
            return
        now = timezone.now()
        sent = failed = 0
        with transaction.atomic():
            if self.pending_sent:
                if esp_ids:
                    _write_sent_with_message_ids(self.pending_sent, now)
                else:
                    # SMTP: the Message-ID was written with the marker.
                    ids = [pk for pk, _ in self.pending_sent]
                    Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.SENT, sent_at=now, claimed_by="")
                sent = len(self.pending_sent)
            for pk, status, error in self.settled:
                row = Delivery.objects.filter(pk=pk)
                if status == TEMPORARY:
                    attempts = row.values_list("attempts", flat=True).first() or 0
                    if attempts < self.max_attempts:
                        retry_at = now + datetime.timedelta(seconds=backoff_seconds(attempts))
                        row.update(
                            status=Delivery.Status.QUEUED,
                            claimed_by="",
                            claimed_at=None,
                            retry_at=retry_at,
                            last_error=error[:1000],
                        )
                        self.counts["retried"] += 1
                        continue
                    error = f"gave up after {attempts} attempts: {error}"
                row.update(status=Delivery.Status.FAILED, claimed_by="", last_error=error[:1000])
                failed += 1
                self.counts["unknown" if status == UNKNOWN else "failed"] += 1
            Campaign.objects.filter(pk=self.campaign_id).update(sent=F("sent") + sent, failed=F("failed") + failed)
        self.counts["sent"] += sent
        self.pending_sent.clear()
        self.settled.clear()


def _column(name: str) -> str:
    return connection.ops.quote_name(Delivery._meta.get_field(name).column)


_marker_sql_cache: dict[str, str] = {}


def _marker_sql() -> str:
    """UPDATE <delivery> SET status, sending_at, claimed_at, attempts+1, esp_message_id WHERE id (per vendor)."""
    sql = _marker_sql_cache.get(connection.vendor)
    if sql is None:
        table = connection.ops.quote_name(Delivery._meta.db_table)
        attempts = _column("attempts")
        # Identifiers from the model's _meta, values as parameters: nothing user-supplied.
        sql = _marker_sql_cache[connection.vendor] = (
            f"UPDATE {table} SET {_column('status')} = %s, {_column('sending_at')} = %s, "  # noqa: S608
            f"{_column('claimed_at')} = %s, {attempts} = {attempts} + 1, {_column('esp_message_id')} = %s "
            f"WHERE {_column('id')} = %s"
        )
    return sql


def _supports_update_from() -> bool:
    if connection.vendor == "postgresql":
        return True
    # SQLite has UPDATE ... FROM since 3.33.
    return connection.vendor == "sqlite" and connection.Database.sqlite_version_info >= (3, 33, 0)


def _write_sent_with_message_ids(pending: list[tuple[int, str]], now) -> None:
    """Mark ``pending`` [(delivery id, ESP message id)] sent, with their ids, in few statements.

    Django's bulk_update writes a CASE WHEN id=... THEN ... per row and field; building it was
    73% of the ESP path's time (docs/performance.md). Mailgun and other batch APIs return ONE id
    for the whole call: one UPDATE per distinct id. ESPs with one id per recipient get one
    UPDATE ... FROM (VALUES (id, message id), ...) per chunk where the database has it
    (PostgreSQL, SQLite >= 3.33), otherwise one UPDATE per id.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for pk, message_id in pending:
        groups[message_id[:255]].append(pk)
    fields = {"status": Delivery.Status.SENT, "sent_at": now, "claimed_by": ""}
    if len(groups) <= GROUPED_MESSAGE_IDS or not _supports_update_from():
        for message_id, ids in groups.items():
            Delivery.objects.filter(pk__in=ids).update(esp_message_id=message_id, **fields)
        return
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


_content_cache: dict[int, tuple] = {}


def _content(campaign: Campaign):
    """The campaign's MessageContent, built once per process (it never changes after start)."""
    key = (campaign.pk, campaign.started_at)
    cached = _content_cache.get(campaign.pk)
    if cached is None or cached[0] != key:
        content = build_content(campaign)
        cached = _content_cache[campaign.pk] = (key, content, RecipientLinks(content.list_ids, content.campaign_id))
    return cached[1], cached[2]


# (campaign id, started_at) -> the highest delivery id this process claimed (claim_deliveries' hint).
_claim_floor: dict[tuple, int] = {}

# (campaign id, started_at) -> time.monotonic() of this process's last recover_stale_deliveries.
_last_recovery: dict[tuple, float] = {}


def _recover_if_due(campaign: Campaign, *, force: bool = False) -> dict | None:
    """recover_stale_deliveries at most every CLAIM_TIMEOUT_SECONDS / 2 per process (None: not run).

    A claim only becomes stale after CLAIM_TIMEOUT_SECONDS, so looking every batch (several times
    a second) found nothing almost always and cost a query over the claimed rows each time.
    Half the timeout bounds the extra delay before a dead worker's rows are settled.
    """
    interval = float(settings.BROADSHEET["CLAIM_TIMEOUT_SECONDS"]) / 2
    key = (campaign.pk, campaign.started_at)
    now = time.monotonic()
    last = _last_recovery.get(key)
    if not force and last is not None and now - last < interval:
        return None
    if len(_last_recovery) > 100:
        _last_recovery.clear()
    _last_recovery[key] = now
    return recover_stale_deliveries(campaign.pk)


def _reason(what: str, error: Exception) -> str:
    return f"{what}: {type(error).__name__}: {error}"[:1000]


def _campaign_status(campaign_id: int) -> str | None:
    return Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()


def send_batch(campaign_id: int, *, worker_id: str, limit: int | None = None, on_claimed=None) -> dict:
    """Claim up to ``limit`` (default BATCH_SIZE) queued deliveries of a sending campaign and send them.

    Returns counts: claimed, sent, failed, unknown, retried, released, recovered, plus ``status``
    (the campaign's status afterwards), ``more`` (rows remain for some worker) and ``retry_at``
    (ISO time before which nothing is claimable, or None). Safe to call from any number of workers.
    ``on_claimed(work_remaining(...))`` is called right after the claim (used to enqueue the next
    batch before sending, so a killed worker does not end the chain).
    """
    result = {"claimed": 0, "sent": 0, "failed": 0, "unknown": 0, "retried": 0, "released": 0, "recovered": 0}
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SENDING:
        result.update(status=campaign.status if campaign else None, more=False, retry_at=None)
        return result
    recovered = _recover_if_due(campaign)
    limit = limit or int(settings.BROADSHEET["BATCH_SIZE"])
    key = (campaign.pk, campaign.started_at)
    after = _claim_floor.get(key) if connection.vendor == "postgresql" else None
    ids = claim_deliveries(campaign_id, worker_id, limit, after=after)
    if not ids and recovered is None:
        # Nothing to claim: the rest may be a dead worker's claim (this is how the watchdog task
        # settles it), so look now rather than waiting for the interval.
        recovered = _recover_if_due(campaign, force=True)
        ids = claim_deliveries(campaign_id, worker_id, limit)
    if ids:
        if len(_claim_floor) > 100:
            _claim_floor.clear()
        _claim_floor[key] = max(ids[-1], _claim_floor.get(key, 0))
    result["recovered"] = sum((recovered or {}).values())
    result["claimed"] = len(ids)
    if on_claimed is not None:
        on_claimed(work_remaining(campaign_id))
    retry_at = None
    if ids:
        retry_at = _send_claimed(campaign, worker_id, ids, result)
    finish_if_done(campaign_id)
    remaining = work_remaining(campaign_id)
    status = _campaign_status(campaign_id)
    if retry_at is None and not remaining["claimable"] and remaining["next_retry_at"]:
        retry_at = remaining["next_retry_at"].timestamp()
    result.update(
        status=status,
        more=status == Campaign.Status.SENDING and remaining["unfinished"],
        retry_at=datetime.datetime.fromtimestamp(retry_at, tz=datetime.UTC).isoformat() if retry_at else None,
    )
    return result


def _send_claimed(campaign: Campaign, worker_id: str, ids: list[int], result: dict) -> float | None:
    """Send the claimed rows; returns a Unix time to come back at if the batch had to stop early."""
    rows = list(Delivery.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "email", "name", "subscriber_uid"))
    content, links = _content(campaign)
    transport = transports_module.get_transport(content)
    throttle = Throttle("default")
    batch = _Batch(campaign, worker_id)
    esp_ids = transport.batch_size > 1
    date = formatdate(usegmt=True)
    come_back_at = None
    index = since_check = streak = 0
    in_hand: list[Outgoing] = []
    handed_over = False
    try:
        transport.open()
    except TransportUnavailable as error:
        logger.warning("campaign %s: %s", campaign.pk, error)
        result["released"] = release_claims(campaign.pk, worker_id, ids)
        return timezone.now().timestamp() + backoff_seconds(1)
    try:
        while index < len(rows):
            if since_check >= CHECKPOINT_EVERY:
                batch.checkpoint(esp_ids=esp_ids)
                since_check = 0
                # Pause and cancel take effect here, within one batch.
                if _campaign_status(campaign.pk) != Campaign.Status.SENDING:
                    break
            want = min(transport.batch_size, len(rows) - index)
            granted = throttle.take(want)
            if not granted:
                come_back_at = throttle.resume_at
                break
            chunk = rows[index : index + granted]
            index += granted
            items = []
            for pk, address, name, uid in chunk:
                recipient = Recipient(pk, address, name, uid)
                try:
                    values = recipient_values(content, links, recipient)
                except Exception as error:
                    # One recipient's data never stops the batch (issue 8): only it fails.
                    batch.record([Outcome(pk, FAILED, error=_reason("could not build the message", error))])
                    continue
                items.append(Outgoing(recipient, values))
            if not items:
                continue
            in_hand, handed_over = items, False
            batch.mark_sending(items, message_ids=not esp_ids)
            handed_over = True
            try:
                outcomes = transport.send(items, date=date)
            except TransportUnavailable as error:
                # Could not reconnect: these were never handed over; queue them again.
                outcomes = [Outcome(item.recipient.delivery_id, TEMPORARY, error=str(error)) for item in items]
            in_hand = []
            temporary = batch.record(outcomes)
            since_check += len(items)
            streak = streak + temporary if temporary == len(items) else 0
            if esp_ids or batch.settled:
                batch.checkpoint(esp_ids=esp_ids)
            if streak >= TEMPORARY_STREAK_LIMIT:
                come_back_at = timezone.now().timestamp() + backoff_seconds(1)
                break
    except Exception as error:
        # Something the transport's own guard did not catch: settle the chunk in hand (once
        # handed over it may have gone, so "unknown"), so these rows are not claimed again and
        # again by every retry of this task.
        status = UNKNOWN if handed_over else FAILED
        reason = _reason("the batch stopped on an unexpected error", error)
        batch.record([Outcome(item.recipient.delivery_id, status, error=reason) for item in in_hand])
        raise
    finally:
        batch.checkpoint(esp_ids=esp_ids)
        transport.close()
        result["released"] = release_claims(campaign.pk, worker_id, ids)
    for key in ("sent", "failed", "unknown", "retried"):
        result[key] = batch.counts[key]
    return come_back_at
