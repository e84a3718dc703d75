"""The batch workflow: claim rows, send them, record every outcome exactly once.

Every status change goes through the ledger's named transitions (campaigns.models.campaign:
``Delivery.objects.claim / mark_sending / mark_sent / requeue / fail / mark_unknown / release /
skip / settle_dead_worker``, ``Campaign.objects.pause / finish / wait_for_relay``); this module
decides when.

Durability rules (what a kill -9 can lose):

- A row is handed to the transport only after it has been marked ``sending`` (with a strictly
  increasing ``sending_at`` per worker) in its own committed UPDATE: one write per message.
- A successful row stays ``sending`` until the next checkpoint (every CHECKPOINT_EVERY messages,
  every ESP call, any failure, the end of the batch), which marks it ``sent`` and adds it to the
  campaign counters with F() in ONE transaction: counters always equal the ledger.
- Failures and temporary refusals are written at once (also with their counters).
- So the ``sending`` rows of a dead worker are: the newest ``sending_at`` (the message, or the ESP
  call, in flight: ``unknown``, never re-sent) and older ones that went out successfully before
  the worker died (recorded as sent). Its claimed ``queued`` rows go back to the queue.

A worker is dead (``worker_is_dead``) when its process is gone (same host: the pid is checked),
its heartbeat is older than HEARTBEAT_TIMEOUT_SECONDS (other hosts), its run has ended with rows
still held, or, for a worker that never registered, none of its rows was touched for
CLAIM_TIMEOUT_SECONDS.

When the mail relay cannot be reached, the CAMPAIGN waits (``next_try_at``, exponential backoff):
no batch claims before then and only the task that recorded the failure comes back, so a relay
that is down costs one waiting task, not a storm of batches. A login refused (SMTP 535, HTTP
401/403), or a relay still down after RELAY_DOWN_PAUSE_SECONDS, pauses the campaign with the
error and tells the staff (NOTIFY_STAFF).
"""

import contextlib
import datetime
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import replace
from email.utils import formatdate

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

import campaigns.sending.mailers as mailers
from campaigns.editions import edition_contents
from campaigns.models import Campaign, Delivery, SendingWorker
from campaigns.models.campaign import UNKNOWN_ERROR, marker_prelude, relay_wait_message
from campaigns.sending.headers import Recipient, build_content, recipient_values
from campaigns.sending.throttle import Throttle
from campaigns.sending.transports import (
    FAILED,
    SENT,
    TEMPORARY,
    UNKNOWN,
    Outcome,
    Outgoing,
    TransportAuthenticationFailed,
    TransportUnavailable,
)
from subscribers.links import RecipientLinks

logger = logging.getLogger(__name__)

__all__ = ["UNKNOWN_ERROR", "marker_prelude"]

CHECKPOINT_EVERY = 100
# Consecutive temporary refusals after which the batch stops and hands its rows back.
TEMPORARY_STREAK_LIMIT = 3
# Campaigns a worker process keeps built messages and hints for (LRU; a worker sends few at once).
CACHE_CAMPAIGNS = 16


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff_seconds(attempts: int) -> float:
    """Exponential: RETRY_BACKOFF_SECONDS * 2**(attempts-1), at most RETRY_BACKOFF_MAX_SECONDS."""
    base = float(settings.BROADSHEET["RETRY_BACKOFF_SECONDS"])
    return min(base * 2 ** max(attempts - 1, 0), float(settings.BROADSHEET["RETRY_BACKOFF_MAX_SECONDS"]))


class LRUCache:
    """A dict bounded to ``maxsize`` entries, dropping the least recently used one."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()

    def get(self, key, default=None):
        if key not in self._data:
            return default
        self._data.move_to_end(key)
        return self._data[key]

    def __setitem__(self, key, value):
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self):
        return len(self._data)

    def clear(self):
        self._data.clear()


# --- Claiming and recovery --------------------------------------------------------------------


def claim_deliveries(campaign_id: int, worker_id: str, limit: int, *, after: int | None = None) -> list[int]:
    """Claim up to ``limit`` claimable rows of the campaign for ``worker_id`` (DeliveryQuerySet.claim)."""
    return Delivery.objects.filter(campaign_id=campaign_id).claim(worker_id, limit, after=after)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def worker_is_dead(worker_id: str, last_touched, *, stale_after: float | None = None, now=None) -> bool:
    """Whether the worker holding rows last touched at ``last_touched`` is gone.

    Same host: its process id is checked (seconds after a kill -9). Other hosts: its heartbeat
    (every HEARTBEAT_SECONDS) older than HEARTBEAT_TIMEOUT_SECONDS. A run that ended with rows
    still held (an exception after its last checkpoint) is gone too. A worker that never
    registered is only dead when it touched nothing for ``stale_after`` (CLAIM_TIMEOUT_SECONDS).
    """
    now = now or timezone.now()
    stale_after = float(settings.BROADSHEET["CLAIM_TIMEOUT_SECONDS"] if stale_after is None else stale_after)
    if last_touched < now - datetime.timedelta(seconds=stale_after):
        return True
    worker = SendingWorker.objects.filter(worker_id=worker_id).first()
    return worker is not None and run_is_gone(worker, last_touched, now)


def run_is_gone(worker: SendingWorker, last_touched, now) -> bool:
    """Whether a registered run has ended: stopped, its process gone (same host), or silent
    (its heartbeat and ``last_touched`` older than HEARTBEAT_TIMEOUT_SECONDS, when it beats)."""
    if worker.stopped_at is not None:
        return True
    if worker.hostname == socket.gethostname()[:255] and not process_alive(worker.pid):
        return True
    config = settings.BROADSHEET
    if float(config["HEARTBEAT_SECONDS"]) > 0:
        timeout = datetime.timedelta(seconds=float(config["HEARTBEAT_TIMEOUT_SECONDS"]))
        return max(worker.heartbeat_at, last_touched) < now - timeout
    return False


def reap_dead_workers() -> int:
    """Every run still registered as going whose process is gone: marked stopped, and its task
    result (django-tasks-db) failed with the reason (``SendingWorker.reap``), so nothing shows
    "running" for a dead process. Returns the number of task results failed."""
    now = timezone.now()
    failed = 0
    for worker in SendingWorker.objects.filter(stopped_at__isnull=True):
        if run_is_gone(worker, worker.heartbeat_at, now) and worker.reap():
            failed += 1
            # What an operator looks for when a task shows "failed" without a traceback of its own.
            logger.warning(
                "sending run %s (host %s, pid %s) died; its task %s is marked failed",
                worker.worker_id,
                worker.hostname,
                worker.pid,
                worker.task_id,
            )
    return failed


def recover_stale_deliveries(campaign_id: int, *, stale_after: float | None = None) -> dict:
    """Settle the rows of every dead worker of the campaign (``worker_is_dead``).

    Claimed queued rows go back to the queue; the newest ``sending`` rows of each dead worker
    become ``unknown``; its older ``sending`` rows were sent. Dead runs are reaped first
    (``reap_dead_workers``: their task results failed). Returns {"requeued", "sent", "unknown"}.
    """
    reap_dead_workers()
    result = Counter()
    candidates = (
        Delivery.objects.unfinished()
        .filter(campaign_id=campaign_id)
        .exclude(claimed_by="")
        .values("claimed_by")
        .annotate(last=Max("claimed_at"))
    )

    def is_dead(worker_id, last_touched):
        return worker_is_dead(worker_id, last_touched, stale_after=stale_after)

    for candidate in list(candidates):
        if candidate["last"] is None or not is_dead(candidate["claimed_by"], candidate["last"]):
            continue
        settled = Delivery.objects.settle_dead_worker(campaign_id, candidate["claimed_by"], is_dead)
        if settled:
            result.update(settled)
            logger.warning(
                "campaign %s: worker %s died; %s in flight recorded unknown, %s recorded sent, %s requeued",
                campaign_id,
                candidate["claimed_by"],
                settled["unknown"],
                settled["sent"],
                settled["requeued"],
            )
    return dict(result)


def release_claims(campaign_id: int, worker_id: str, ids: list[int] | None = None) -> int:
    """Hand back the claimed, unsent rows of ``worker_id`` (skipped if the campaign was cancelled).

    ``ids``, the rows the batch claimed, narrows the UPDATE to them (a primary key lookup rather
    than a search of the campaign's queued rows for the worker's name).
    """
    with transaction.atomic():
        status = _campaign_status(campaign_id)
        rows = Delivery.objects.filter(campaign_id=campaign_id).held_by(worker_id)
        if ids is not None:
            rows = rows.filter(id__any_of=ids)
        if status == Campaign.Status.CANCELLED:
            count = rows.skip("campaign cancelled")
            Campaign.objects.filter(pk=campaign_id).count_outcomes(skipped=count)
            return count
        return rows.release()


def finish_if_done(campaign_id: int) -> bool:
    """Mark the campaign sent when no queued or in-flight row remains; True for the one caller that did."""
    if Delivery.objects.unfinished().filter(campaign_id=campaign_id).exists():
        return False
    # Conditional UPDATE: of several workers finishing together exactly one flips the status.
    return bool(Campaign.objects.filter(pk=campaign_id).finish())


def work_remaining(campaign_id: int) -> dict:
    """{"claimable": rows a worker could claim now, "unfinished": rows not settled, "next_retry_at",
    "quota_spent": False} (True only from a batch that found its mailer's hour or day spent)."""
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
        "quota_spent": False,
    }


# --- The relay (issue 8 finding 4) -------------------------------------------------------------


def pause_for_relay(campaign_id: int, reason: str) -> bool:
    """Pause a sending campaign because of its relay; True if this call paused it (send_batch
    then reports ``paused``, and its task tells the staff)."""
    paused = bool(Campaign.objects.filter(pk=campaign_id).pause(reason))
    if paused:
        logger.error("campaign %s paused: %s", campaign_id, reason)
    return paused


def record_relay_failure(campaign_id: int, error: Exception) -> dict:
    """The relay could not be reached: back off at the campaign level, or pause after too long.

    In one transaction with the campaign row locked: if another batch already recorded this
    outage (``next_try_at`` in the future) nothing changes and the caller just goes away;
    otherwise the failure count grows, ``next_try_at = now + backoff(failures)`` and the caller
    is the ONE task that comes back then (``waiter``). A relay down for RELAY_DOWN_PAUSE_SECONDS
    pauses the campaign. Returns {"next_try_at", "waiter", "paused"}.
    """
    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.SENDING:
            return {"next_try_at": None, "waiter": False, "paused": False}
        if campaign.next_try_at is not None and campaign.next_try_at > now:
            return {"next_try_at": campaign.next_try_at, "waiter": False, "paused": False}
        failures = campaign.relay_failures + 1
        down_since = campaign.relay_down_since or now
        limit = float(settings.BROADSHEET["RELAY_DOWN_PAUSE_SECONDS"])
        if (now - down_since).total_seconds() >= limit:
            since = timezone.localtime(down_since)
            reason = (
                f"Paused: the mail relay has been unreachable since {since:%Y-%m-%d %H:%M:%S %Z} "
                f"({failures} tries): {error}. Resume the campaign once it is back."
            )
            return {"next_try_at": None, "waiter": False, "paused": pause_for_relay(campaign_id, reason)}
        next_try_at = now + datetime.timedelta(seconds=backoff_seconds(failures))
        Campaign.objects.filter(pk=campaign_id).wait_for_relay(
            failures=failures,
            down_since=down_since,
            next_try_at=next_try_at,
            reason=f"{_waiting_message(down_since, next_try_at)}: {error}",
        )
    logger.warning(
        "campaign %s: relay unreachable (%s tries), next try at %s: %s", campaign_id, failures, next_try_at, error
    )
    return {"next_try_at": next_try_at, "waiter": True, "paused": False}


def _waiting_message(down_since, next_try_at) -> str:
    return relay_wait_message(down_since, next_try_at)


# --- Heartbeat (issue 8 finding 5) ----------------------------------------------------------------


@contextlib.contextmanager
def heartbeat(worker_id: str, task_id: str = ""):
    """Register this run (SendingWorker) and beat every HEARTBEAT_SECONDS from a thread while it lasts.

    The thread writes one row of its own (never a delivery row: no lock is shared with the
    batch's transactions) over its own database connection. At the end the run is marked stopped:
    rows it still holds then are settled at once by anyone's recovery.
    """
    SendingWorker.start(worker_id, task_id)
    interval = float(settings.BROADSHEET["HEARTBEAT_SECONDS"])
    stop = threading.Event()
    thread = None
    if interval > 0:
        thread = threading.Thread(
            target=_beat, args=(worker_id, interval, stop), name="broadsheet-heartbeat", daemon=True
        )
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=interval + 5)
        SendingWorker.stop(worker_id)


def _beat(worker_id: str, interval: float, stop: threading.Event) -> None:
    try:
        while not stop.wait(interval):
            try:
                SendingWorker.beat(worker_id)
            except Exception:  # a missed beat is retried next time; the batch must not notice
                logger.debug("heartbeat of %s failed", worker_id, exc_info=True)
                close_old_connections()
    finally:
        connection.close()


# --- Sending ----------------------------------------------------------------------------------


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

    def next_sending_at(self):
        # Strictly increasing per worker, so recovery can tell the newest (in flight) apart.
        now = timezone.now()
        if self.last_sending_at is not None and now <= self.last_sending_at:
            now = self.last_sending_at + datetime.timedelta(microseconds=1)
        self.last_sending_at = now
        return now

    def mark_sending(self, items: list[Outgoing], message_ids: bool) -> list[Outgoing]:
        """Mark ``items`` sending; returns those this worker still held (only they may be sent)."""
        now = self.next_sending_at()
        if message_ids and len(items) == 1:
            item = items[0]
            held = Delivery.objects.mark_one_sending(
                item.recipient.delivery_id, self.worker_id, now, item.values["message_id"]
            )
            return items if held else []
        ids = [item.recipient.delivery_id for item in items]
        rows = Delivery.objects.filter(id__any_of=ids).held_by(self.worker_id)
        if rows.mark_sending(now) == len(ids):
            return items
        mine = set(rows.filter(status=Delivery.Status.SENDING, sending_at=now).values_list("pk", flat=True))
        return [item for item in items if item.recipient.delivery_id in mine]

    def record(self, outcomes) -> int:
        """Buffer outcomes; returns how many were temporary."""
        temporary = 0
        for outcome in outcomes:
            if outcome.status == SENT:
                self.pending_sent.append((outcome.delivery_id, outcome.message_id))
            else:
                temporary += outcome.status == TEMPORARY
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
                    Delivery.objects.mark_sent_with_message_ids(self.pending_sent, now)
                else:
                    # SMTP: the Message-ID was written with the marker.
                    Delivery.objects.filter(id__any_of=[pk for pk, _ in self.pending_sent]).mark_sent(now)
                sent = len(self.pending_sent)
            for pk, status, error in self.settled:
                row = Delivery.objects.filter(pk=pk)
                if status == TEMPORARY:
                    attempts = row.values_list("attempts", flat=True).first() or 0
                    if attempts < self.max_attempts:
                        row.requeue(retry_at=now + datetime.timedelta(seconds=backoff_seconds(attempts)), error=error)
                        self.counts["retried"] += 1
                        continue
                    status, error = FAILED, f"gave up after {attempts} attempts: {error}"
                if status == UNKNOWN:
                    row.mark_unknown(error)
                else:
                    row.fail(error)
                failed += 1  # Campaign.failed counts unknown outcomes too
                self.counts["unknown" if status == UNKNOWN else "failed"] += 1
            Campaign.objects.filter(pk=self.campaign_id).count_outcomes(sent=sent, failed=failed)
        self.counts["sent"] += sent
        self.pending_sent.clear()
        self.settled.clear()


# Per worker process, bounded (LRU): (campaign id, started_at) -> (MessageContent, RecipientLinks),
# the highest delivery id this process claimed (claim's hint), and when it last looked for dead workers.
_content_cache = LRUCache(CACHE_CAMPAIGNS)
_claim_floor = LRUCache(CACHE_CAMPAIGNS)
_last_recovery = LRUCache(CACHE_CAMPAIGNS)


def _content(campaign: Campaign, language: str = "", variant: int | None = None):
    """The MessageContent of the campaign's edition in ``language`` (its own content when it has
    none, campaigns.editions), or of its A/B test's subject ``variant``, and its RecipientLinks,
    built once per process (they never change after start)."""
    key = (campaign.pk, campaign.started_at)
    cached = _content_cache.get(key)
    if cached is None:
        content = build_content(campaign)
        links = RecipientLinks(content.list_ids, content.campaign_id)
        # The other versions: {language: its edition, variant index: the A/B test's subject} (an
        # issue with translations is not tested, campaigns.abtests).
        versions = edition_contents(campaign, content)
        versions.update(enumerate(replace(content, subject=subject) for subject in campaign.subject_variants))
        cached = _content_cache[key] = (content, links, versions)
    content, links, versions = cached
    return versions.get(language if variant is None else variant, content), links


def _wants_attributes(campaign: Campaign) -> bool:
    """Whether any edition of the campaign has merge tags that need subscribers' attributes."""
    _content(campaign)  # built once per process, then cached
    content, _links, editions = _content_cache.get((campaign.pk, campaign.started_at))
    return content.wants_attributes or any(edition.wants_attributes for edition in editions.values())


def _recover_if_due(campaign: Campaign, *, force: bool = False) -> dict | None:
    """recover_stale_deliveries at most every HEARTBEAT_SECONDS per process (None: not run).

    A dead worker is noticed within seconds (worker_is_dead), so its rows are looked for that
    often, but not every batch: that was a query per batch for nothing almost always.
    """
    interval = max(float(settings.BROADSHEET["HEARTBEAT_SECONDS"]), 1.0)
    key = (campaign.pk, campaign.started_at)
    now = time.monotonic()
    last = _last_recovery.get(key)
    if not force and last is not None and now - last < interval:
        return None
    _last_recovery[key] = now
    return recover_stale_deliveries(campaign.pk)


def _reason(what: str, error: Exception) -> str:
    return f"{what}: {type(error).__name__}: {error}"[:1000]


def _campaign_status(campaign_id: int) -> str | None:
    return Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()


def _iso(timestamp: float | None) -> str | None:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).isoformat() if timestamp else None


def send_batch(
    campaign_id: int, *, worker_id: str, limit: int | None = None, on_claimed=None, task_id: str = ""
) -> dict:
    """Claim up to ``limit`` (default BATCH_SIZE) queued deliveries of a sending campaign and send them.

    Returns counts: claimed, sent, failed, unknown, retried, released, recovered, plus ``status``
    (the campaign's status afterwards), ``more`` (rows remain for some worker), ``retry_at``
    (ISO time before which nothing is claimable, or None), ``waiting`` (the campaign waits for
    its relay: nothing was claimed), ``waiter`` (this call recorded the relay failure and is
    the one to come back at ``retry_at``), ``paused`` (this call paused the campaign: its relay
    refused the login or stayed down too long; the caller tells the staff) and
    ``relay_recovered``. Safe to call from any number of workers.
    ``on_claimed(work_remaining(...))`` is called right after the claim (used to enqueue the next
    batch before sending, so a killed worker does not end the chain). ``task_id``: the
    django-tasks-db task result running this call, failed by recovery if the process dies.
    """
    result = {"claimed": 0, "sent": 0, "failed": 0, "unknown": 0, "retried": 0, "released": 0, "recovered": 0}
    result.update(waiting=False, waiter=False, paused=False, relay_recovered=False)
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SENDING:
        result.update(status=campaign.status if campaign else None, more=False, retry_at=None)
        return result
    if campaign.next_try_at is not None and campaign.next_try_at > timezone.now():
        # Waiting for the relay: the one task that recorded the failure comes back then.
        result.update(status=campaign.status, more=True, retry_at=campaign.next_try_at.isoformat(), waiting=True)
        return result
    with heartbeat(worker_id, task_id):
        retry_at = _claim_and_send(campaign, worker_id, limit, on_claimed, result)
    finish_if_done(campaign_id)
    remaining = work_remaining(campaign_id)
    status = _campaign_status(campaign_id)
    if retry_at is None and not remaining["claimable"] and remaining["next_retry_at"]:
        retry_at = remaining["next_retry_at"].timestamp()
    result.update(
        status=status,
        more=status == Campaign.Status.SENDING and remaining["unfinished"],
        retry_at=_iso(retry_at),
    )
    return result


def _claim_and_send(campaign: Campaign, worker_id: str, limit, on_claimed, result: dict) -> float | None:
    recovered = _recover_if_due(campaign)
    blocked = Throttle(mailers.mailer_for(campaign)).blocked_until()
    if blocked is not None:
        # The mailer's hourly or daily allowance is spent: claim nothing, come back when it frees
        # (the successor task waits until then instead of spinning: quotas spread over days).
        if on_claimed is not None:
            blocked_at = datetime.datetime.fromtimestamp(blocked, tz=datetime.UTC)
            on_claimed({"claimable": False, "unfinished": True, "next_retry_at": blocked_at, "quota_spent": True})
        return blocked
    limit = limit or int(settings.BROADSHEET["BATCH_SIZE"])
    key = (campaign.pk, campaign.started_at)
    after = _claim_floor.get(key) if connection.vendor == "postgresql" else None
    ids = claim_deliveries(campaign.pk, worker_id, limit, after=after)
    if not ids and recovered is None:
        # Nothing to claim: the rest may be a dead worker's claim (this is how the watchdog task
        # settles it), so look now rather than waiting for the interval.
        recovered = _recover_if_due(campaign, force=True)
        ids = claim_deliveries(campaign.pk, worker_id, limit)
    if ids:
        _claim_floor[key] = max(ids[-1], _claim_floor.get(key, 0))
    result["recovered"] = sum((recovered or {}).values())
    result["claimed"] = len(ids)
    if on_claimed is not None:
        on_claimed(work_remaining(campaign.pk))
    if not ids:
        return None
    return _send_claimed(campaign, worker_id, ids, result)


def _relay_down(campaign: Campaign, error: TransportUnavailable, result: dict) -> float | None:
    """The relay refused our login or could not be reached: pause, or wait for it (campaign-wide)."""
    if isinstance(error, TransportAuthenticationFailed):
        reason = f"Paused: {error}. Fix the mail settings, then resume the campaign."
        result["paused"] = pause_for_relay(campaign.pk, reason)
        return None
    state = record_relay_failure(campaign.pk, error)
    result["waiter"], result["paused"] = state["waiter"], state["paused"]
    return state["next_try_at"].timestamp() if state["next_try_at"] else None


def _send_claimed(campaign: Campaign, worker_id: str, ids: list[int], result: dict) -> float | None:
    """Send the claimed rows, one language edition after the other (campaigns.editions: the
    snapshot recorded each row's); returns a Unix time to come back at if the batch stopped early."""
    columns = ("pk", "email", "name", "subscriber_uid", "language")
    if _wants_attributes(campaign):
        # Merge tags ask for attributes (or first_name): read them with the rows, as they are now.
        columns = ("pk", "email", "name", "subscriber_uid", "subscriber__attributes", "language")
    groups: dict[tuple, list] = {}
    rows = Delivery.objects.filter(id__any_of=ids).order_by("pk").values_list(*columns, "variant")
    for *row, language, variant in rows:
        groups.setdefault((language, variant), []).append(tuple(row))
    come_back_at = None
    waiting = list(groups.items())
    try:
        while waiting and come_back_at is None:
            if len(waiting) < len(groups) and _campaign_status(campaign.pk) != Campaign.Status.SENDING:
                break  # paused or cancelled while an earlier language was being sent
            (language, variant), rows = waiting.pop(0)
            come_back_at = _send_rows(campaign, worker_id, [row[0] for row in rows], rows, language, result, variant)
    finally:
        # The rows of languages not reached go back to the queue at once.
        unsent = [row[0] for _language, rows in waiting for row in rows]
        if unsent:
            result["released"] += release_claims(campaign.pk, worker_id, unsent)
    return come_back_at


def _send_rows(
    campaign: Campaign, worker_id: str, ids: list[int], rows: list, language: str, result: dict, variant=None
):
    """Send claimed ``rows`` (ids ``ids``) of one language edition (or A/B subject ``variant``);
    adds to ``result``'s counts."""
    content, links = _content(campaign, language, variant)
    batch = _Batch(campaign, worker_id)
    date = formatdate(usegmt=True)
    come_back_at = None
    index = since_check = streak = 0
    in_hand: list[Outgoing] = []
    handed_over = False
    try:
        # The campaign's mailer, or its failover when it is down (campaigns.sending.mailers).
        transport, alias = mailers.open_transport(content, mailers.mailer_for(campaign))
    except TransportUnavailable as error:
        result["released"] += release_claims(campaign.pk, worker_id, ids)
        return _relay_down(campaign, error, result)
    throttle = Throttle(alias)
    esp_ids = transport.batch_size > 1
    if campaign.relay_failures and Campaign.objects.filter(pk=campaign.pk).relay_recovered():
        result["relay_recovered"] = True
        logger.info("campaign %s: the relay answers again", campaign.pk)
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
            for row in chunk:
                pk = row[0]
                recipient = Recipient(*row)  # (pk, email, name, uid[, attributes]): Recipient's fields
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
            held = batch.mark_sending(items, message_ids=not esp_ids)
            if len(held) < len(items):
                # Recovery gave rows away (this worker was thought dead): send none of those, stop.
                logger.warning("campaign %s: worker %s lost its claim; stopping", campaign.pk, worker_id)
                in_hand = held
                if not held:
                    break
            handed_over = True
            try:
                outcomes = transport.send(held, date=date)
            except TransportUnavailable as error:
                # Could not reconnect: these were never handed over; the attempt is undone.
                Delivery.objects.filter(pk__in=[item.recipient.delivery_id for item in held]).requeue_unsent()
                in_hand = []
                come_back_at = _relay_down(campaign, error, result)
                break
            in_hand = []
            temporary = batch.record(outcomes)
            since_check += len(held)
            streak = streak + temporary if temporary == len(held) else 0
            if esp_ids or batch.settled:
                batch.checkpoint(esp_ids=esp_ids)
            if len(held) < len(items):
                break
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
        result["released"] += release_claims(campaign.pk, worker_id, ids)
    for key in ("sent", "failed", "unknown", "retried"):
        result[key] += batch.counts[key]
    return come_back_at
