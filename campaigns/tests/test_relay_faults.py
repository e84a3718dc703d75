"""A relay that is down or refuses our login (issue 8 finding 4): the campaign waits with
exponential backoff in ONE task, then pauses with the error shown and the staff told; resume
works once it is fixed. Tasks are driven by hand through the dummy backend, as a worker would
run them, so every enqueued task is counted."""

import datetime
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_tasks import default_task_backend
from wagtail.models import ModelLogEntry

from campaigns import services, tasks
from campaigns.models import Campaign, Delivery
from campaigns.tests.factories import make_user, run_task_result
from campaigns.tests.fake_smtp import FakeSMTPServer

pytestmark = pytest.mark.django_db

PASSWORD = "right-password"


@pytest.fixture
def relay(settings):
    """The fake relay with a login; the campaign's mailer logs in with the right password."""
    with FakeSMTPServer(auth=("news", PASSWORD)) as server:
        settings.MAILERS = mailers(server, PASSWORD)
        yield server


def mailers(server, password):
    setting = server.mailers_setting()
    setting["default"]["OPTIONS"].update(username="news", password=password)
    return setting


@pytest.fixture
def dummy_tasks(settings):
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default", "campaigns"]}
    }
    settings.BROADSHEET = {
        **settings.BROADSHEET,
        "BATCH_SIZE": 2,
        "PARALLEL_BATCHES": 3,
        "RETRY_BACKOFF_SECONDS": 60,
        "RETRY_BACKOFF_MAX_SECONDS": 3600,
        "RELAY_DOWN_PAUSE_SECONDS": 3600,
        "NOTIFY_STAFF": ["editor@example.com"],
    }
    default_task_backend.clear()
    yield default_task_backend
    default_task_backend.clear()


class Worker:
    """Runs the due tasks the dummy backend holds, as db_worker would, and counts them."""

    def __init__(self, backend):
        self.backend = backend
        self.runs = 0

    def pending(self):
        return [result for result in self.backend.results if result.task.name == "send_batch_task"]

    def run_due(self, *, limit=100):
        """Run tasks whose time has come (and those they enqueue) until none is due."""
        for _ in range(limit):
            now = timezone.now()
            due = [r for r in self.backend.results if r.task.run_after is None or r.task.run_after <= now]
            if not due:
                return
            result = due[0]
            self.backend.results.remove(result)
            self.runs += 1
            run_task_result(result)
        raise AssertionError(f"still running tasks after {limit}: a storm")

    def time_passes(self, campaign):
        """The waiting task's time comes (without sleeping): move it and next_try_at to now."""
        now = timezone.now()
        Campaign.objects.filter(pk=campaign.pk, next_try_at__isnull=False).update(next_try_at=now)
        for result in self.pending():
            if result.task.run_after is not None:
                object.__setattr__(result.task, "run_after", now)


@pytest.fixture
def started(issue_page, relay, dummy_tasks, django_capture_on_commit_callbacks):
    from campaigns.tests.factories import started_campaign

    campaign = started_campaign(issue_page, 5, django_capture_on_commit_callbacks)
    tasks.enqueue_batches(campaign.pk)  # what the start enqueues after commit: 3 chains
    return campaign


def page_text(client, campaign) -> str:
    return client.get(reverse("campaigns_admin:detail", args=[campaign.pk])).content.decode()


def status_output(campaign) -> str:
    out = StringIO()
    call_command("campaign_status", str(campaign.pk), stdout=out)
    return out.getvalue()


def test_a_relay_that_refuses_then_rejects_the_login_then_recovers(
    started, relay, dummy_tasks, settings, client, django_user_model, caplog
):
    campaign, worker = started, Worker(dummy_tasks)

    # 1. Connections refused: the three chains stop; ONE task waits for the relay.
    relay.refuse_connections()
    worker.run_due()
    campaign.refresh_from_db()
    assert worker.runs <= 6, worker.runs  # the three chains and their immediate successors, no storm
    (waiting,) = worker.pending()
    assert waiting.task.run_after == campaign.next_try_at
    assert campaign.status == Campaign.Status.SENDING and campaign.relay_failures == 1
    delay = (campaign.next_try_at - timezone.now()).total_seconds()
    assert 50 < delay <= 60
    assert campaign.last_error.startswith("Waiting for the relay since ")
    assert "next try at" in campaign.last_error and "Connection refused" in campaign.last_error
    assert "Waiting for the relay since" in status_output(campaign)
    client.force_login(make_user(django_user_model, "sender", send=True))
    assert (
        "Waiting for the relay since"
        in client.get(reverse("campaigns_admin:detail", args=[campaign.pk])).content.decode()
    )
    assert set(Delivery.objects.values_list("status", "attempts")) == {("queued", 0)}  # nothing consumed

    # 2. Still refused at the next try: the wait doubles, still one task.
    runs = worker.runs
    worker.time_passes(campaign)
    worker.run_due()
    campaign.refresh_from_db()
    assert (
        worker.runs - runs <= 2 and len(worker.pending()) == 1
    )  # the waiter (and its successor, which finds the campaign waiting)
    assert campaign.relay_failures == 2
    assert 110 < (campaign.next_try_at - timezone.now()).total_seconds() <= 120

    # 3. The relay is back but refuses the password (535): paused, error shown, staff told.
    relay.accept_connections()
    settings.MAILERS = mailers(relay, "wrong-password")
    worker.time_passes(campaign)
    worker.run_due()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "535" in campaign.last_error and "refused the login" in campaign.last_error
    assert worker.pending() == []  # nothing spins while paused
    # The staff notice went through the same relay: it could not go, and says so in the log.
    assert "the staff notice could not be sent" in caplog.text
    assert ModelLogEntry.objects.for_instance(campaign).get().action == "campaigns.pause"
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    assert services.send_campaign_paused_notice(campaign.pk)
    (notice,) = mail.outbox
    assert notice.to == ["editor@example.com"] and "paused" in notice.subject.lower()
    assert "535" in notice.body and reverse("campaigns_admin:detail", args=[campaign.pk]) in notice.body
    assert "refused the login" in page_text(client, campaign)
    assert "535" in status_output(campaign)
    assert relay.messages == []

    # 4. The password is fixed and the campaign resumed: everyone gets it exactly once.
    settings.MAILERS = mailers(relay, PASSWORD)
    services.resume_campaign(campaign.pk, enqueue=False)
    tasks.enqueue_batches(campaign.pk)
    worker.run_due()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.failed) == (Campaign.Status.SENT, 5, 0)
    assert sorted(relay.recipients()) == [f"reader{i}@example.com" for i in range(5)]
    assert (campaign.relay_failures, campaign.next_try_at, campaign.last_error) == (0, None, "")
    assert worker.runs < 30


def test_a_relay_down_longer_than_the_limit_pauses_the_campaign(started, relay, dummy_tasks):
    worker = Worker(dummy_tasks)
    relay.refuse_connections()
    worker.run_due()
    long_ago = timezone.now() - datetime.timedelta(hours=2)
    Campaign.objects.filter(pk=started.pk).update(relay_down_since=long_ago)
    worker.time_passes(started)

    worker.run_due()

    started.refresh_from_db()
    assert started.status == Campaign.Status.PAUSED
    assert started.last_error.startswith("Paused: the mail relay has been unreachable since ")
    assert worker.pending() == []
    assert ModelLogEntry.objects.for_instance(started).get().data["reason"] == started.last_error


def test_relay_backoff_keeps_growing_and_is_capped(started, relay, dummy_tasks, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "RETRY_BACKOFF_MAX_SECONDS": 500}
    worker = Worker(dummy_tasks)
    relay.refuse_connections()
    delays = []
    for _ in range(6):
        worker.run_due()
        started.refresh_from_db()
        delays.append(round((started.next_try_at - timezone.now()).total_seconds() / 10) * 10)
        worker.time_passes(started)
    assert delays == [60, 120, 240, 480, 500, 500]


def test_the_waiting_campaign_claims_nothing_until_its_next_try(started, relay, dummy_tasks):
    from campaigns.sending import send_batch

    relay.refuse_connections()
    Worker(dummy_tasks).run_due()

    result = send_batch(started.pk, worker_id="another")

    assert (result["claimed"], result["waiting"], result["waiter"]) == (0, True, False)
    assert not Delivery.objects.exclude(claimed_by="").exists()


def test_send_campaign_stops_with_the_error_when_the_login_is_refused(issue_page, settings, caplog):
    from subscribers.tests.factories import MailingListFactory, SubscriptionFactory

    weekly = MailingListFactory(slug="weekly")
    for _ in range(2):
        SubscriptionFactory(list=weekly)
    settings.BROADSHEET = {**settings.BROADSHEET, "NOTIFY_STAFF": ["editor@example.com"]}
    campaign = services.create_campaign(issue_page, [weekly])
    err = StringIO()
    with FakeSMTPServer(auth=("news", PASSWORD)) as relay:
        settings.MAILERS = mailers(relay, "wrong-password")
        call_command("send_campaign", str(campaign.pk), stdout=StringIO(), stderr=err)

    campaign.refresh_from_db()
    # One login for the campaign, one for the staff notice (same relay, refused too): no loop.
    assert campaign.status == Campaign.Status.PAUSED and relay.logins == 2
    assert "535" in err.getvalue()
    assert ModelLogEntry.objects.for_instance(campaign).filter(action="campaigns.pause").exists()


def test_batches_failing_during_the_same_outage_record_it_once(started, relay):
    from campaigns.sending.engine import record_relay_failure

    first = record_relay_failure(started.pk, OSError("Connection refused"))
    second = record_relay_failure(started.pk, OSError("Connection refused"))

    assert (first["waiter"], second["waiter"]) == (True, False)  # one waiting task, not two
    assert second["next_try_at"] == first["next_try_at"]
    started.refresh_from_db()
    assert started.relay_failures == 1


def test_a_batch_that_cannot_reach_the_relay_hands_its_claim_back_and_says_so(started, relay):
    from campaigns.sending import send_batch

    relay.refuse_connections()

    result = send_batch(started.pk, worker_id="w1", limit=2)

    assert (result["claimed"], result["released"], result["sent"]) == (2, 2, 0)
    assert not Delivery.objects.exclude(claimed_by="").exists()
    assert Delivery.objects.filter(campaign=started, status="queued").count() == 5
