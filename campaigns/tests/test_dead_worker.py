"""A worker killed mid-batch (kill -9, a real process): the campaign resumes within 30 s and
completes with every recipient mailed at most once (issue 8 finding 5), on the database task
worker and on RQ, and the killed task is not left "running". The real kills need PostgreSQL
(and Redis for RQ): ``make test-services``."""

import datetime
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Delivery, SendingWorker
from campaigns.sending import claim_deliveries, recover_stale_deliveries
from campaigns.sending.engine import reap_dead_workers
from campaigns.tasks import send_batch_task
from campaigns.tests.fake_smtp import FakeSMTPServer
from campaigns.tests.test_scaleout import DB_TASKS, ROOT, RQ_TASKS, make_audience, start, worker_env
from newsletter_site.config import rq_queues

RECIPIENTS = 300
RESUME_WITHIN = 30  # seconds from the kill to the campaign moving again (issue 8)


@pytest.fixture
def slow_relay(settings):
    with FakeSMTPServer() as server:
        server.reply_delay = 0.02  # about 50 messages a second: the kill lands mid-batch
        settings.MAILERS = server.mailers_setting(timeout=30)
        yield server


def spawn(env) -> subprocess.Popen:
    # Its own session: the kill takes its whole process group (RQ forks a work horse per job).
    return subprocess.Popen(
        [sys.executable, "manage.py", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kill_mid_batch_and_resume(campaign, relay, env):
    first = spawn(env)
    try:
        wait_for(lambda: len(relay.messages) >= 40, 90, "the first worker to send")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        sent_at_kill = len(relay.messages)
        # Let any buffered reply land, then check the campaign is stuck until someone takes over.
        time.sleep(0.5)
        assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING
    except BaseException:
        os.killpg(first.pid, signal.SIGKILL)
        raise
    second = spawn(env)
    try:
        moving = wait_for(lambda: len(relay.messages) > sent_at_kill + 5, 60, "sending to resume")
        done = wait_for(
            lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT, 120, "the campaign to finish"
        )
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait()
    return moving - killed_at, done - killed_at


def assert_completed_exactly_once(campaign, relay, addresses):
    campaign.refresh_from_db()
    received = relay.recipients()
    assert len(received) == len(set(received)), "somebody got it twice"
    rows = dict(Delivery.objects.filter(campaign=campaign).values_list("email", "status"))
    unknown = [address for address, status in rows.items() if status == Delivery.Status.UNKNOWN]
    assert len(unknown) <= 1, unknown  # at most the message in flight at the kill
    assert {address for address, status in rows.items() if status == Delivery.Status.SENT} <= set(received)
    assert set(received) <= set(addresses)
    assert (campaign.status, campaign.sent + campaign.failed) == (Campaign.Status.SENT, len(addresses))
    assert campaign.failed == len(unknown)


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_batch_is_replaced_within_30_seconds_on_the_database_worker(
    postgresql, issue_page, slow_relay, settings
):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = DB_TASKS
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 50, "PARALLEL_BATCHES": 2}
    mailing_list, addresses = make_audience(RECIPIENTS)
    campaign = start(issue_page, mailing_list)
    env = worker_env(TASKS_URL="db://", EMAIL_URL=f"{slow_relay.url}?timeout=30", SEND_BATCH_SIZE="50")

    resumed, finished = kill_mid_batch_and_resume(campaign, slow_relay, env)

    assert resumed < RESUME_WITHIN, f"resumed {resumed:.1f} s after the kill"
    assert_completed_exactly_once(campaign, slow_relay, addresses)
    # The killed run's task is failed by the recovery, with the reason; nothing shows "running".
    batch_tasks = DBTaskResult.objects.filter(task_path__endswith="send_batch_task")
    assert not batch_tasks.filter(status="RUNNING").exists()
    (killed,) = batch_tasks.filter(status="FAILED")
    assert killed.exception_class_path == "campaigns.models.campaign.WorkerDied"
    assert "The worker process running this task died" in killed.traceback
    print(f"database worker: resumed {resumed:.1f} s and finished {finished:.1f} s after the kill")


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_batch_is_replaced_within_30_seconds_on_rq(
    postgresql, redis_url, issue_page, slow_relay, settings
):
    import django_rq

    settings.TASKS = RQ_TASKS
    settings.RQ_QUEUES = rq_queues(redis_url)
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 50, "PARALLEL_BATCHES": 2}
    queues = [django_rq.get_queue(name) for name in RQ_TASKS["default"]["QUEUES"]]
    for queue in queues:
        queue.empty()
    mailing_list, addresses = make_audience(RECIPIENTS)
    campaign = start(issue_page, mailing_list)
    env = worker_env(
        TASKS_URL="rq://", REDIS_URL=redis_url, EMAIL_URL=f"{slow_relay.url}?timeout=30", SEND_BATCH_SIZE="50"
    )

    try:
        resumed, finished = kill_mid_batch_and_resume(campaign, slow_relay, env)
    finally:
        for queue in queues:
            queue.empty()

    assert resumed < RESUME_WITHIN, f"resumed {resumed:.1f} s after the kill"
    assert_completed_exactly_once(campaign, slow_relay, addresses)
    print(f"RQ: resumed {resumed:.1f} s and finished {finished:.1f} s after the kill")


def dead_pid() -> int:
    """The id of a process of this host that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def running_batch_task(campaign, pid: int, worker_id: str):
    """What db_worker and the batch leave in the tables while a batch runs in process ``pid``: the
    task result claimed ("running") and the run registered with its id, holding claimed rows."""
    from django_tasks_db.models import DBTaskResult

    row = DBTaskResult.objects.get(pk=send_batch_task.enqueue(campaign.pk).id)
    row.claim("db-worker-1")
    SendingWorker.objects.create(worker_id=worker_id, hostname=socket.gethostname(), pid=pid, task_id=str(row.pk))
    return row, claim_deliveries(campaign.pk, worker_id, 2)


def test_recovery_fails_the_task_result_of_a_worker_whose_process_died(campaign, settings):
    settings.TASKS = DB_TASKS
    pid = dead_pid()
    killed, claimed = running_batch_task(campaign, pid, f"{socket.gethostname()}:{pid}:killed")
    alive, _ = running_batch_task(campaign, os.getpid(), f"{socket.gethostname()}:{os.getpid()}:alive")

    assert recover_stale_deliveries(campaign.pk) == {"requeued": 2, "sent": 0, "unknown": 0}

    killed.refresh_from_db()
    assert killed.status == "FAILED" and killed.finished_at is not None
    (error,) = killed.task_result.errors
    assert error.exception_class_path == "campaigns.models.campaign.WorkerDied"
    assert f"pid {pid}" in error.traceback and "another worker recovered its deliveries" in error.traceback
    assert set(Delivery.objects.filter(pk__in=claimed).values_list("status", "claimed_by")) == {("queued", "")}
    assert SendingWorker.objects.get(pid=pid).stopped_at is not None
    # The live worker's task and rows are left alone.
    alive.refresh_from_db()
    assert alive.status == "RUNNING"
    assert SendingWorker.objects.get(pid=os.getpid()).stopped_at is None

    # Recovery runs again and again (every batch): the failed row stays as it is.
    finished_at = killed.finished_at
    recover_stale_deliveries(campaign.pk)
    killed.refresh_from_db()
    assert (killed.status, killed.finished_at) == ("FAILED", finished_at)


def test_reaping_fails_the_dead_runs_own_task_when_a_live_runs_task_is_older(campaign, settings, caplog):
    settings.TASKS = DB_TASKS
    alive, _ = running_batch_task(campaign, os.getpid(), f"{socket.gethostname()}:{os.getpid()}:alive")
    pid = dead_pid()
    killed, _ = running_batch_task(campaign, pid, f"{socket.gethostname()}:{pid}:killed")
    # The live run's task comes first in django-tasks-db's own order (priority, then run_after).
    type(alive).objects.filter(pk=alive.pk).update(priority=10)

    with caplog.at_level("WARNING", logger="campaigns.sending.engine"):
        assert reap_dead_workers() == 1

    killed.refresh_from_db()
    alive.refresh_from_db()
    assert (killed.status, alive.status) == ("FAILED", "RUNNING")
    (message,) = [record.getMessage() for record in caplog.records if "died" in record.getMessage()]
    worker_id = f"{socket.gethostname()}:{pid}:killed"
    assert message == (
        f"sending run {worker_id} (host {socket.gethostname()}, pid {pid}) died; its task {killed.pk} is marked failed"
    )
    # The next recovery (every batch runs one) finds nothing more to fail.
    assert reap_dead_workers() == 0


def test_reaping_never_overwrites_a_task_that_finished_after_all(campaign, settings):
    # A run thought dead that finished meanwhile keeps its real outcome.
    settings.TASKS = DB_TASKS
    pid = dead_pid()
    task, _ = running_batch_task(campaign, pid, f"{socket.gethostname()}:{pid}:finished")
    task.set_successful({"sent": 2})

    assert reap_dead_workers() == 0

    task.refresh_from_db()
    assert task.status == "SUCCESSFUL"
    assert SendingWorker.objects.get(pid=pid).stopped_at is not None


def test_a_dead_run_without_a_database_task_is_stopped_and_fails_nothing(campaign, caplog):
    # RQ runs register no django-tasks-db row: the run is stopped, no task is reported failed.
    pid = dead_pid()
    SendingWorker.objects.create(worker_id=f"{socket.gethostname()}:{pid}:rq", hostname=socket.gethostname(), pid=pid)

    with caplog.at_level("WARNING", logger="campaigns.sending.engine"):
        assert reap_dead_workers() == 0

    assert SendingWorker.objects.get(pid=pid).stopped_at is not None
    assert not [record for record in caplog.records if "died" in record.getMessage()]


def test_two_recoveries_reaping_the_same_run_at_once_stop_it_and_fail_its_task_once(campaign, settings):
    settings.TASKS = DB_TASKS
    pid = dead_pid()
    task, _ = running_batch_task(campaign, pid, f"{socket.gethostname()}:{pid}:raced")
    first, second = SendingWorker.objects.get(pid=pid), SendingWorker.objects.get(pid=pid)

    assert first.reap() is True
    stopped_at = SendingWorker.objects.get(pid=pid).stopped_at
    assert second.reap() is False

    # The loser changes nothing: the run keeps the moment it was found dead, the task one failure.
    assert SendingWorker.objects.get(pid=pid).stopped_at == stopped_at
    task.refresh_from_db()
    assert task.status == "FAILED" and len(task.task_result.errors) == 1


def test_the_failed_task_names_the_dead_runs_last_heartbeat(campaign, settings):
    settings.TASKS = DB_TASKS
    pid = dead_pid()
    task, _ = running_batch_task(campaign, pid, f"{socket.gethostname()}:{pid}:beat")
    beat = timezone.now() - datetime.timedelta(minutes=3)
    SendingWorker.objects.filter(pid=pid).update(heartbeat_at=beat)

    reap_dead_workers()

    task.refresh_from_db()
    (error,) = task.task_result.errors
    assert f"last heartbeat {timezone.localtime(beat):%Y-%m-%d %H:%M:%S}" in error.traceback


def test_reaping_counts_every_dead_run_whose_task_it_failed(campaign, settings):
    settings.TASKS = DB_TASKS
    first, second = dead_pid(), dead_pid()
    running_batch_task(campaign, first, f"{socket.gethostname()}:{first}:one")
    running_batch_task(campaign, second, f"{socket.gethostname()}:{second}:two")

    assert reap_dead_workers() == 2
