"""Scale-out: several workers share one campaign, on any task backend, with nobody mailed twice.

The tests marked ``services`` need a real PostgreSQL (``DATABASE_URL=postgres://...``, for
``SELECT ... FOR UPDATE SKIP LOCKED`` between concurrent workers) or Redis (``REDIS_URL``, for the
RQ backend); ``make test-services`` runs them and each skips with its reason otherwise. The last
test runs the database backend's own worker on whatever database the suite uses.
"""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from campaigns import services
from campaigns.models import Campaign, Delivery, SendingWorker
from campaigns.sending import send_batch
from campaigns.tests.fake_smtp import FakeSMTPServer
from newsletter_site.config import rq_queues
from subscribers.models import MailingList, Subscriber, Subscription

ROOT = Path(__file__).resolve().parents[2]
DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "campaigns"]}}
RQ_TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default", "campaigns"]}}


# ``postgresql`` and ``redis_url`` (skip with the reason when unset): campaigns/tests/conftest.py.


@pytest.fixture
def smtp_server(settings):
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting(timeout=30)
        yield server


def make_audience(count: int) -> tuple[MailingList, list[str]]:
    """A list with ``count`` confirmed readers, created in two bulk INSERTs."""
    mailing_list = MailingList.objects.create(name="Everyone", slug="everyone", double_opt_in=False)
    addresses = [f"reader{index}@example.com" for index in range(count)]
    Subscriber.objects.bulk_create(
        Subscriber(email=address, email_normalised=address, name=f"Reader {index}")
        for index, address in enumerate(addresses)
    )
    Subscription.objects.bulk_create(
        Subscription(subscriber=subscriber, list=mailing_list, status=Subscription.Status.SUBSCRIBED)
        for subscriber in Subscriber.objects.filter(email_normalised__in=addresses)
    )
    return mailing_list, addresses


def start(issue_page, mailing_list) -> Campaign:
    campaign = services.create_campaign(issue_page, [mailing_list])
    services.start_campaign(campaign.pk)  # autocommit: its batch tasks are enqueued right away
    return Campaign.objects.get(pk=campaign.pk)


def assert_sent_exactly_once(campaign: Campaign, received: list[str], addresses: list[str]):
    campaign.refresh_from_db()
    assert sorted(received) == sorted(addresses)  # each address exactly once: no loss, no duplicate
    assert campaign.status == Campaign.Status.SENT
    counters = (campaign.recipients, campaign.sent, campaign.failed, campaign.skipped)
    assert counters == (len(addresses), len(addresses), 0, 0)
    assert Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT).count() == len(addresses)


def worker_env(**extra) -> dict:
    """Environment for a ``manage.py worker`` subprocess using this test run's database."""
    db = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "EMAIL_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="newsletter_site.settings.dev",
        DEBUG="0",
        SECRET_KEY=django_settings.SECRET_KEY,
        BASE_URL=django_settings.BASE_URL,
        LOG_LEVEL="WARNING",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        **extra,
    )
    if not env.get("REDIS_URL"):
        # Without Redis the workers share the database cache (settings.base): the mailers' health,
        # quotas and the periodic chains read it, so its table must exist in this test database.
        call_command("createcachetable", "broadsheet_cache", verbosity=0)
    return env


def run_two_workers(campaign: Campaign, *, limit: int, counted: str) -> dict[str, int]:
    """Two threads call send_batch(limit=...) until a call claims nothing and (``claimed``) has
    nothing more, or (``sent``) claims nothing; {worker id: the ``counted`` total}. Each thread has
    its own database connection, so their claims and reservations really run concurrently."""
    ready = threading.Barrier(2)
    totals: dict[str, int] = {}
    errors = []

    def work(worker_id):
        try:
            ready.wait()
            totals[worker_id] = 0
            while True:
                result = send_batch(campaign.pk, worker_id=worker_id, limit=limit)
                totals[worker_id] += result[counted]
                if not result["claimed"] and (counted == "sent" or not result["more"]):
                    return
        except Exception as error:  # reported below: a thread cannot fail the test itself
            errors.append(error)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert all(count > 0 for count in totals.values()), totals  # both really took part
    return totals


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_worker_threads_share_a_campaign_on_postgresql_without_duplicates(
    postgresql, issue_page, smtp_server, settings
):
    settings.TASKS = DB_TASKS  # batch tasks wait in the table; the two threads below do the work
    mailing_list, addresses = make_audience(2000)
    campaign = start(issue_page, mailing_list)

    claimed = run_two_workers(campaign, limit=50, counted="claimed")

    assert sum(claimed.values()) == 2000
    assert_sent_exactly_once(campaign, smtp_server.recipients(), addresses)


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_worker_threads_on_postgresql_send_no_more_than_the_days_quota(
    postgresql, issue_page, smtp_server, settings
):
    settings.TASKS = DB_TASKS
    settings.MAILERS["default"]["LIMITS"] = {"per_second": 0, "per_hour": 0, "per_day": 150}
    mailing_list, _addresses = make_audience(400)
    campaign = start(issue_page, mailing_list)

    # One message per batch: a reservation per message, so the two workers' reservations really
    # contend (without the window row lock this test sends 151). They stop when the day is spent.
    sent = run_two_workers(campaign, limit=1, counted="sent")

    # Concurrent reservations on one mailer's windows: the day's 150 exactly, not one more.
    assert len(smtp_server.recipients()) == sum(sent.values()) == 150
    assert Delivery.objects.filter(campaign=campaign, status=Delivery.Status.QUEUED).count() == 250
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_worker_processes_finish_a_campaign_on_postgresql_without_duplicates(
    postgresql, issue_page, smtp_server, settings
):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = DB_TASKS
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 100}
    mailing_list, addresses = make_audience(2000)
    campaign = start(issue_page, mailing_list)
    env = worker_env(TASKS_URL="db://", EMAIL_URL=f"{smtp_server.url}?timeout=30", SEND_BATCH_SIZE="100")

    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--batch"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=300)[0].decode() for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    batch_tasks = DBTaskResult.objects.filter(task_path__endswith="send_batch_task")
    batch_workers = {worker_id for ids in batch_tasks.values_list("worker_ids", flat=True) for worker_id in ids}
    assert len(batch_workers) == 2, outputs  # both processes ran batches of this campaign
    assert_sent_exactly_once(campaign, smtp_server.recipients(), addresses)


@pytest.fixture
def rq_settings(settings, redis_url):
    import django_rq

    settings.TASKS = RQ_TASKS
    settings.RQ_QUEUES = rq_queues(redis_url)
    # Jobs run in this process (no fork per job), so they use this test's database connection.
    settings.RQ = {"WORKER_CLASS": "rq.worker.SimpleWorker"}
    queues = [django_rq.get_queue(name) for name in RQ_TASKS["default"]["QUEUES"]]

    def clear():
        for queue in queues:
            queue.empty()
            registry = queue.scheduled_job_registry
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)

    clear()
    yield queues
    clear()


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_campaign_completes_on_the_rq_backend(rq_settings, issue_page, smtp_server, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 50}
    mailing_list, addresses = make_audience(300)
    campaign = start(issue_page, mailing_list)
    assert sum(queue.count for queue in rq_settings) > 0  # the batches really went through Redis

    call_command("worker", "--batch")  # rqworker --burst, as TASKS_URL=rq:// would run it

    assert_sent_exactly_once(campaign, smtp_server.recipients(), addresses)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_campaign_completes_on_the_database_backend_worker(issue_page, smtp_server, settings):
    settings.TASKS = DB_TASKS
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 50}
    mailing_list, addresses = make_audience(300)
    campaign = start(issue_page, mailing_list)

    call_command("worker", "--batch")  # db_worker --batch, the embedded default

    assert_sent_exactly_once(campaign, smtp_server.recipients(), addresses)
    # Every run recorded the task result it ran in (failed by recovery, were its process killed).
    runs = set(SendingWorker.objects.values_list("task_id", flat=True))
    batch_tasks = DBTaskResult.objects.filter(task_path__endswith="send_batch_task", status="SUCCESSFUL")
    assert runs and runs <= {str(pk) for pk in batch_tasks.values_list("pk", flat=True)}
    assert campaign.finished_at is not None and campaign.finished_at <= timezone.now()
