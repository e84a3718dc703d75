"""The ledger's named transitions (issue 10 part 2) and the deliberate bugs the suite must catch:
a claim without SKIP LOCKED, a cancel that puts claimed rows back, backoff that stops growing,
sending_at not strictly increasing, recovery without its re-check inside the transaction."""

import datetime
import importlib
import itertools
import os
import socket
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from campaigns import migrations, services
from campaigns.models import Campaign, Delivery, SendingWorker
from campaigns.sending import claim_deliveries, engine, recover_stale_deliveries, send_batch, worker_is_dead
from campaigns.sending.engine import LRUCache, backoff_seconds
from campaigns.sending.headers import Recipient
from campaigns.sending.transports import SENT, TEMPORARY, UNKNOWN, Outcome, Outgoing

pytestmark = pytest.mark.django_db

HOST = socket.gethostname()


def ids_of(campaign):
    return list(Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))


# --- Claim ------------------------------------------------------------------------------------


@pytest.fixture
def claim_sql(monkeypatch):
    """The SQL of every statement, as Django would send it to a database that locks rows.

    SQLite has no FOR UPDATE, so Django leaves it out there; here the features say it has them and
    the lock clause is taken off again just before SQLite runs the statement (the claim's SQL is
    the same on PostgreSQL, where test_the_claim_locks_on_postgresql runs it for real)."""
    statements = []
    if connection.vendor == "sqlite":
        monkeypatch.setattr(connection.features, "has_select_for_update", True)
        monkeypatch.setattr(connection.features, "has_select_for_update_skip_locked", True)
        monkeypatch.setattr(connection.features, "has_select_for_update_nowait", True)

    def wrapper(execute, sql, params, many, context):
        statements.append(sql)
        if connection.vendor == "sqlite":
            sql = sql.replace(" FOR UPDATE SKIP LOCKED", "").replace(" FOR UPDATE", "")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield statements


def test_the_claim_selects_with_for_update_skip_locked(campaign, claim_sql):
    claimed = claim_deliveries(campaign.pk, "w1", 3)

    assert len(claimed) == 3
    (select,) = [sql for sql in claim_sql if sql.lstrip().upper().startswith("SELECT")]
    assert select.rstrip().endswith("FOR UPDATE SKIP LOCKED"), select


@pytest.mark.services
def test_the_claim_locks_on_postgresql(campaign):
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (make test-services)")
    with CaptureQueriesContext(connection) as queries:
        claim_deliveries(campaign.pk, "w1", 2)
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert any(sql.endswith("FOR UPDATE SKIP LOCKED") for sql in selects), selects


# --- Cancel, pause, resume ----------------------------------------------------------------------


def test_a_cancel_mid_batch_skips_the_claimed_rows_instead_of_queueing_them(campaign, monkeypatch):
    monkeypatch.setattr(engine, "CHECKPOINT_EVERY", 2)
    original = engine._Batch.checkpoint

    def checkpoint_then_cancel(self, **kwargs):
        original(self, **kwargs)
        if Campaign.objects.get(pk=self.campaign_id).status == Campaign.Status.SENDING:
            services.cancel_campaign(self.campaign_id)

    monkeypatch.setattr(engine._Batch, "checkpoint", checkpoint_then_cancel)

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["sent"], result["released"]) == (2, 3)
    assert Delivery.objects.filter(status="queued").count() == 0
    assert Delivery.objects.filter(status="skipped", last_error="campaign cancelled").count() == 3
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.skipped) == (Campaign.Status.CANCELLED, 2, 3)


def test_pause_resume_cancel_are_named_transitions_that_refuse_the_wrong_state(campaign):
    assert campaign.pause() is True and campaign.status == Campaign.Status.PAUSED
    assert campaign.pause() is False
    assert campaign.resume() is True and campaign.status == Campaign.Status.SENDING
    assert campaign.resume() is False
    assert campaign.cancel() is True
    assert (campaign.status, campaign.skipped) == (Campaign.Status.CANCELLED, 5)
    assert campaign.cancel() is False
    with pytest.raises(services.CampaignError, match="A cancelled campaign cannot be paused"):
        services.pause_campaign(campaign.pk)


# --- Backoff and sending_at ---------------------------------------------------------------------


def test_backoff_doubles_until_its_cap(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "RETRY_BACKOFF_SECONDS": 60, "RETRY_BACKOFF_MAX_SECONDS": 1000}

    assert [backoff_seconds(n) for n in range(1, 7)] == [60, 120, 240, 480, 960, 1000]


def test_a_recipients_retries_wait_longer_each_time(campaign, smtp_server, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "MAX_ATTEMPTS": 5}
    smtp_server.reject_recipient("reader0@example.com", code=451, message="4.7.1 Try again later")
    waits = []
    for _ in range(3):
        before = timezone.now()
        send_batch(campaign.pk, worker_id="w1")
        row = Delivery.objects.get(email="reader0@example.com")
        waits.append((row.retry_at - before).total_seconds())
        Delivery.objects.filter(pk=row.pk).update(retry_at=timezone.now())  # the wait passes
    assert waits[0] < waits[1] < waits[2]
    assert waits[1] == pytest.approx(2 * waits[0], rel=0.05)


def test_sending_at_is_strictly_increasing_even_when_the_clock_stands_still(campaign, monkeypatch):
    frozen = timezone.now()
    monkeypatch.setattr(engine.timezone, "now", lambda: frozen)
    batch = engine._Batch(campaign, "w1")

    stamps = [batch.next_sending_at() for _ in range(5)]

    assert all(earlier < later for earlier, later in itertools.pairwise(stamps))


def test_each_message_of_a_batch_gets_a_later_sending_at(campaign, smtp_server):
    send_batch(campaign.pk, worker_id="w1")

    stamps = list(Delivery.objects.order_by("pk").values_list("sending_at", flat=True))
    assert len(set(stamps)) == 5 and stamps == sorted(stamps)


# --- A batch's bookkeeping (_Batch) --------------------------------------------------------------


def outgoing(pk):
    return Outgoing(Recipient(pk, f"r{pk}@example.com", "", ""), {"message_id": f"<{pk}@example.com>"})


def test_a_checkpoint_writes_every_buffered_outcome_and_the_counters_once(campaign, settings, monkeypatch):
    settings.BROADSHEET = {**settings.BROADSHEET, "MAX_ATTEMPTS": 3}
    now = timezone.now()
    monkeypatch.setattr(engine.timezone, "now", lambda: now)
    sent_a, sent_b, retried, exhausted, unknown = claim_deliveries(campaign.pk, "w1", 5)
    Delivery.objects.filter(pk=retried).update(attempts=1)
    Delivery.objects.filter(pk=exhausted).update(attempts=3)
    batch = engine._Batch(campaign, "w1")

    temporary = batch.record(
        [
            Outcome(sent_a, SENT),
            Outcome(sent_b, SENT),
            Outcome(retried, TEMPORARY, error="451 greylisted"),
            Outcome(exhausted, TEMPORARY, error="452 mailbox full"),
            Outcome(unknown, UNKNOWN, error="connection lost after DATA"),
        ]
    )

    assert temporary == 2
    # Buffered only: nothing is written before the checkpoint.
    assert not Delivery.objects.filter(campaign=campaign).exclude(status="queued").exists()

    batch.checkpoint(esp_ids=False)

    rows = {row.pk: row for row in Delivery.objects.filter(campaign=campaign)}
    assert (rows[sent_a].status, rows[sent_a].sent_at, rows[sent_a].claimed_by) == ("sent", now, "")
    assert rows[sent_b].status == "sent"
    assert (rows[retried].status, rows[retried].claimed_by, rows[retried].last_error) == (
        "queued",
        "",
        "451 greylisted",
    )
    assert rows[retried].retry_at == now + datetime.timedelta(seconds=backoff_seconds(1))
    assert (rows[exhausted].status, rows[exhausted].last_error) == (
        "failed",
        "gave up after 3 attempts: 452 mailbox full",
    )
    assert (rows[unknown].status, rows[unknown].last_error) == ("unknown", "connection lost after DATA")
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (2, 2)  # unknown outcomes count as failed
    assert batch.counts == {"sent": 2, "retried": 1, "failed": 1, "unknown": 1}

    # The buffers were emptied: a second checkpoint (every batch ends with one) adds nothing.
    batch.checkpoint(esp_ids=False)
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (2, 2)
    assert batch.counts["sent"] == 2


def test_a_checkpoint_keeps_the_esps_message_ids(campaign, monkeypatch):
    now = timezone.now()
    monkeypatch.setattr(engine.timezone, "now", lambda: now)
    first, second = claim_deliveries(campaign.pk, "w1", 2)
    batch = engine._Batch(campaign, "w1")
    batch.record([Outcome(first, SENT, message_id="esp-1"), Outcome(second, SENT, message_id="esp-2")])

    batch.checkpoint(esp_ids=True)

    rows = Delivery.objects.filter(pk__in=[first, second]).values_list("pk", "status", "sent_at", "esp_message_id")
    assert set(rows) == {(first, "sent", now, "esp-1"), (second, "sent", now, "esp-2")}


def test_a_batchs_figures_add_up_over_its_checkpoints(campaign):
    # A batch checkpoints every CHECKPOINT_EVERY messages; send_batch reports the sum of them all.
    ids = claim_deliveries(campaign.pk, "w1", 5)
    Delivery.objects.filter(pk__in=ids).update(attempts=1)
    batch = engine._Batch(campaign, "w1")
    for sent, retried, unknown in ((ids[0], ids[1], ids[2]), (ids[3], ids[1], ids[4])):
        batch.record([Outcome(sent, SENT), Outcome(retried, TEMPORARY, error="451"), Outcome(unknown, UNKNOWN)])
        batch.checkpoint(esp_ids=False)

    assert batch.counts == {"sent": 2, "retried": 2, "unknown": 2}
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (2, 2)


def test_marking_a_chunk_sending_returns_only_the_rows_this_worker_still_holds(campaign):
    ids = claim_deliveries(campaign.pk, "w1", 3)
    Delivery.objects.filter(pk=ids[1]).update(claimed_by="w2")  # recovery gave it away
    batch = engine._Batch(campaign, "w1")

    held = batch.mark_sending([outgoing(pk) for pk in ids], message_ids=False)

    assert [item.recipient.delivery_id for item in held] == [ids[0], ids[2]]
    statuses = dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {ids[0]: "sending", ids[1]: "queued", ids[2]: "sending"}
    assert Delivery.objects.get(pk=ids[0]).attempts == 1


def test_marking_one_message_sending_writes_its_message_id_and_refuses_a_row_given_away(campaign):
    mine, lost = claim_deliveries(campaign.pk, "w1", 2)
    Delivery.objects.filter(pk=lost).update(claimed_by="w2")
    batch = engine._Batch(campaign, "w1")

    assert batch.mark_sending([outgoing(mine)], message_ids=True) != []
    assert batch.mark_sending([outgoing(lost)], message_ids=True) == []

    row = Delivery.objects.get(pk=mine)
    assert (row.status, row.esp_message_id) == ("sending", f"<{mine}@example.com>")
    assert Delivery.objects.get(pk=lost).status == "queued"


# --- Recovery -------------------------------------------------------------------------------------


def test_recovery_re_checks_inside_its_transaction(campaign):
    # The caller thought the worker dead; by the time the rows are locked it has touched one.
    ids = claim_deliveries(campaign.pk, "w-alive", 3)
    cutoff = timezone.now() - datetime.timedelta(seconds=60)

    settled = Delivery.objects.settle_dead_worker(campaign.pk, "w-alive", lambda worker, last: last < cutoff)

    assert settled == {}
    assert set(Delivery.objects.filter(pk__in=ids).values_list("claimed_by", "status")) == {("w-alive", "queued")}


def test_settling_a_dead_worker_records_unknown_sent_and_requeued_with_the_counters(campaign):
    ids = claim_deliveries(campaign.pk, "w-dead", 4)
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    Delivery.objects.filter(pk=ids[0]).update(status="sending", sending_at=long_ago, claimed_at=long_ago)
    later = long_ago + datetime.timedelta(seconds=1)
    Delivery.objects.filter(pk=ids[1]).update(status="sending", sending_at=later, claimed_at=later)
    Delivery.objects.filter(pk__in=ids[2:]).update(claimed_at=long_ago)

    assert recover_stale_deliveries(campaign.pk) == {"requeued": 2, "sent": 1, "unknown": 1}
    assert Delivery.objects.get(pk=ids[1]).status == Delivery.Status.UNKNOWN
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (1, 1)


def test_a_worker_whose_row_was_given_away_does_not_mark_or_send_it(campaign):
    (pk,) = claim_deliveries(campaign.pk, "w-slow", 1)
    Delivery.objects.filter(pk=pk).update(claimed_by="w-new")  # recovery gave it to another worker

    assert Delivery.objects.mark_one_sending(pk, "w-slow", timezone.now(), "<m@example.com>") is False
    assert Delivery.objects.get(pk=pk).status == Delivery.Status.QUEUED


# --- Dead workers in seconds (issue 8 finding 5) -------------------------------------------------


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def register(worker_id, *, hostname=HOST, pid=None, beat_ago=0.0, stopped=False):
    now = timezone.now()
    return SendingWorker.objects.create(
        worker_id=worker_id,
        hostname=hostname,
        pid=pid or os.getpid(),
        heartbeat_at=now - datetime.timedelta(seconds=beat_ago),
        stopped_at=now if stopped else None,
    )


@pytest.fixture
def heartbeats(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "HEARTBEAT_SECONDS": 5, "HEARTBEAT_TIMEOUT_SECONDS": 15}


def test_a_worker_on_this_host_is_dead_as_soon_as_its_process_is_gone(heartbeats):
    now = timezone.now()
    register("here:dead", pid=dead_pid())
    register("here:alive")

    assert worker_is_dead("here:dead", now) is True
    assert worker_is_dead("here:alive", now) is False


def test_a_worker_on_another_host_is_dead_when_its_heartbeat_is_older_than_the_timeout(heartbeats):
    now = timezone.now()
    register("there:quiet", hostname="elsewhere", pid=1, beat_ago=20)
    register("there:beating", hostname="elsewhere", pid=1, beat_ago=3)

    assert worker_is_dead("there:quiet", now - datetime.timedelta(seconds=20)) is True
    assert worker_is_dead("there:beating", now - datetime.timedelta(seconds=20)) is False


def test_a_run_that_ended_with_rows_still_held_is_dead_and_an_unregistered_one_only_by_timeout(heartbeats):
    now = timezone.now()
    register("ended", stopped=True)

    assert worker_is_dead("ended", now) is True
    assert worker_is_dead("never-registered", now) is False
    assert worker_is_dead("never-registered", now - datetime.timedelta(hours=1)) is True


def zombie_pid():
    """A child that has exited but is not reaped yet: os.kill(pid, 0) still succeeds."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # wait for the exit, leave it unreaped
    return process


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_a_killed_but_unreaped_worker_process_counts_as_gone():
    zombie = zombie_pid()
    try:
        assert engine.process_alive(zombie.pid) is False
        assert engine.process_alive(os.getpid()) is True
    finally:
        zombie.wait()
    assert engine.process_alive(zombie.pid) is False


def test_a_worker_is_dead_only_strictly_after_the_claim_timeout():
    now = timezone.now()
    edge = now - datetime.timedelta(seconds=60)

    assert worker_is_dead("never-registered", edge, stale_after=60, now=now) is False
    assert worker_is_dead("never-registered", edge - datetime.timedelta(microseconds=1), stale_after=60, now=now)
    assert worker_is_dead("never-registered", edge, stale_after=120, now=now - datetime.timedelta(seconds=59)) is False


def test_a_heartbeat_is_late_only_strictly_after_its_timeout(heartbeats):
    now = timezone.now()
    register("there:edge", hostname="elsewhere", pid=1, beat_ago=3600)
    SendingWorker.objects.filter(worker_id="there:edge").update(heartbeat_at=now - datetime.timedelta(seconds=15))

    assert worker_is_dead("there:edge", now - datetime.timedelta(seconds=15), now=now) is False
    later = now + datetime.timedelta(microseconds=1)
    assert worker_is_dead("there:edge", now - datetime.timedelta(seconds=15), now=later) is True


@pytest.mark.parametrize(("interval", "dead"), [(0, False), (0.5, True)])
def test_heartbeats_judge_a_silent_worker_whenever_they_are_on(settings, interval, dead):
    settings.BROADSHEET = {**settings.BROADSHEET, "HEARTBEAT_SECONDS": interval, "HEARTBEAT_TIMEOUT_SECONDS": 15}
    now = timezone.now()
    register("there:silent", hostname="elsewhere", pid=1, beat_ago=60)

    assert worker_is_dead("there:silent", now - datetime.timedelta(seconds=60), now=now) is dead


def test_a_running_worker_on_this_host_without_heartbeats_is_alive(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "HEARTBEAT_SECONDS": 0}
    register("here:running", beat_ago=3600)
    assert worker_is_dead("here:running", timezone.now()) is False


def test_an_error_kept_on_a_delivery_is_at_most_1000_characters():
    assert len(engine._reason("relay refused", RuntimeError("x" * 2000))) == 1000


def test_a_dead_workers_rows_are_settled_within_seconds(campaign, heartbeats):
    ids = claim_deliveries(campaign.pk, "crashed", 3)
    register("crashed", pid=dead_pid())
    Delivery.objects.filter(pk=ids[0]).update(status="sending", sending_at=timezone.now())

    result = send_batch(campaign.pk, worker_id="next")

    assert result["recovered"] == 3  # two requeued, the one in flight unknown: no ten-minute wait
    assert Delivery.objects.get(pk=ids[0]).status == Delivery.Status.UNKNOWN
    send_batch(campaign.pk, worker_id="next")
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_a_batch_registers_its_run_and_marks_it_stopped(campaign):
    register("long-gone", stopped=True)
    SendingWorker.objects.filter(worker_id="long-gone").update(stopped_at=timezone.now() - datetime.timedelta(days=1))

    send_batch(campaign.pk, worker_id="w1")

    worker = SendingWorker.objects.get(worker_id="w1")
    assert (worker.hostname, worker.pid) == (HOST[:255], os.getpid())
    assert worker.stopped_at is not None
    assert not SendingWorker.objects.filter(worker_id="long-gone").exists()  # old runs are pruned


def test_the_heartbeat_thread_beats(campaign, settings, monkeypatch):
    settings.BROADSHEET = {**settings.BROADSHEET, "HEARTBEAT_SECONDS": 0.01}
    beats = []
    monkeypatch.setattr(SendingWorker, "beat", classmethod(lambda cls, worker_id: beats.append(worker_id)))

    with engine.heartbeat("w-beating"):
        deadline = timezone.now() + datetime.timedelta(seconds=5)
        while len(beats) < 2 and timezone.now() < deadline:
            pass

    assert beats[:2] == ["w-beating", "w-beating"]
    assert SendingWorker.objects.get(worker_id="w-beating").stopped_at is not None


# --- Unknown is a status, caches are bounded --------------------------------------------------


def test_unknown_rows_are_retried_only_on_an_explicit_decision(campaign):
    first, second = ids_of(campaign)[:2]
    Delivery.objects.filter(pk=first).mark_unknown("in flight when its worker died")
    Delivery.objects.filter(pk=second).fail("550 no such user")
    Campaign.objects.filter(pk=campaign.pk).count_outcomes(failed=2)

    assert services.retry_failed(campaign.pk) == 1
    assert Delivery.objects.get(pk=first).status == Delivery.Status.UNKNOWN
    assert services.retry_failed(campaign.pk, include_unknown=True) == 1
    assert Campaign.objects.get(pk=campaign.pk).failed == 0


def test_the_migration_turns_the_unknown_prefix_into_the_status(campaign):
    first, second = ids_of(campaign)[:2]
    Delivery.objects.filter(pk=first).update(status="failed", last_error="unknown: worker died while sending")
    Delivery.objects.filter(pk=second).update(status="failed", last_error="550 unknown user")

    (path,) = Path(migrations.__file__).parent.glob("*_ledger_unknown_relay_workers.py")
    importlib.import_module(f"campaigns.migrations.{path.stem}").unknown_prefix_to_status(apps, None)

    assert Delivery.objects.get(pk=first).status == "unknown"
    assert Delivery.objects.get(pk=second).status == "failed"


def test_worker_caches_are_bounded_lru():
    cache = LRUCache(3)
    for key in "abc":
        cache[key] = key
    cache.get("a")
    cache["d"] = "d"

    assert len(cache) == 3 and cache.get("b") is None and cache.get("a") == "a"
    assert engine._content_cache.maxsize == engine._claim_floor.maxsize == engine.CACHE_CAMPAIGNS


# --- campaign_status on the command line (issue 14) ---------------------------------------------


def status(*args) -> str:
    out = StringIO()
    call_command("campaign_status", *args, stdout=out)
    return out.getvalue()


def test_campaign_status_pauses_resumes_and_cancels(campaign):
    assert "Paused campaign" in status(str(campaign.pk), "--pause")
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED
    assert "Status:     Sending" in status(str(campaign.pk), "--resume")
    output = status(str(campaign.pk), "--cancel")
    assert "Status:     Cancelled" in output and "Skipped:    5" in output
    with pytest.raises(Exception, match="A cancelled campaign cannot be paused"):
        status(str(campaign.pk), "--pause")


def test_campaign_status_remaining_is_the_share_remaining(campaign):
    send_batch(campaign.pk, worker_id="w1", limit=1)

    assert "Remaining:  4 (80.0%)" in status(str(campaign.pk))


def test_a_new_run_prunes_only_runs_stopped_over_an_hour_ago():
    now = timezone.now()

    def run(worker_id, **fields):
        return SendingWorker.objects.create(worker_id=worker_id, hostname=HOST, pid=1, **fields)

    recent = run("recent", stopped_at=now - datetime.timedelta(minutes=50))
    old = run("old", stopped_at=now - datetime.timedelta(minutes=70))
    running = run("running", heartbeat_at=now - datetime.timedelta(hours=3))

    new = SendingWorker.start("new")

    assert set(SendingWorker.objects.values_list("worker_id", flat=True)) == {"recent", "running", "new"}
    assert new.task_id == "" and new.stopped_at is None
    assert not SendingWorker.objects.filter(pk=old.pk).exists()
    assert SendingWorker.objects.filter(pk__in=[recent.pk, running.pk]).count() == 2
