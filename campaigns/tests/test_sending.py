"""The batch engine: claims, crash-and-resume, exact counters, throttle, task chaining."""

import datetime
from email import message_from_bytes, policy
from email.utils import parseaddr
from types import SimpleNamespace

import pytest
from django.core import mail
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Delivery, SendingWorker, SendWindow
from campaigns.sending import claim_deliveries, engine, recover_stale_deliveries, send_batch
from campaigns.sending.engine import UNKNOWN_ERROR, finish_if_done, work_remaining
from campaigns.sending.throttle import Throttle
from campaigns.tests.factories import run_now, started_campaign
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory
from subscribers.tokens import read_unsubscribe_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(issue_page, django_capture_on_commit_callbacks):
    """A started campaign to 6 readers whose batch tasks have not run."""
    return started_campaign(issue_page, 6, django_capture_on_commit_callbacks)


def sent_addresses():
    return sorted(address for message in mail.outbox for address in message.to)


def test_claimed_rows_are_not_claimed_again(campaign):
    first = claim_deliveries(campaign.pk, "w1", 4)
    second = claim_deliveries(campaign.pk, "w2", 4)

    assert len(first) == 4 and len(second) == 2
    assert not set(first) & set(second)
    assert claim_deliveries(campaign.pk, "w3", 4) == []


def test_a_claim_above_a_hint_takes_due_retries_first_and_still_finds_the_rows_below_it(campaign):
    ids = list(Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))
    Delivery.objects.filter(pk=ids[0]).update(retry_at=timezone.now() - datetime.timedelta(seconds=1))

    first = claim_deliveries(campaign.pk, "w1", 3, after=ids[3])
    second = claim_deliveries(campaign.pk, "w1", 4, after=ids[5])

    assert first == [ids[0], ids[4], ids[5]]
    assert second == ids[1:4]


def test_a_batch_sends_only_its_claim_and_leaves_the_rest_queued(campaign):
    result = send_batch(campaign.pk, worker_id="w1", limit=4)

    assert (result["claimed"], result["sent"], result["more"]) == (4, 4, True)
    assert Delivery.objects.filter(status="queued", claimed_by="").count() == 2
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING


def test_crash_and_resume_reports_the_message_in_flight_and_sends_the_rest_once(campaign, caplog):
    # A worker claimed four rows, sent the first successfully (still 'sending', not checkpointed),
    # handed the second to the transport and was killed.
    ids = claim_deliveries(campaign.pk, "dead-worker", 4)
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    Delivery.objects.filter(pk=ids[0]).update(status="sending", sending_at=long_ago, claimed_at=long_ago, attempts=1)
    in_flight = long_ago + datetime.timedelta(seconds=1)
    Delivery.objects.filter(pk=ids[1]).update(status="sending", sending_at=in_flight, claimed_at=in_flight, attempts=1)
    Delivery.objects.filter(pk__in=ids[2:]).update(claimed_at=long_ago)

    result = send_batch(campaign.pk, worker_id="new-worker")

    assert result["recovered"] == 4  # 2 requeued, 1 recorded sent, 1 unknown
    assert (
        f"campaign {campaign.pk}: worker dead-worker died; 1 in flight recorded unknown, 1 recorded sent, 2 requeued"
    ) in caplog.text
    lost = Delivery.objects.get(pk=ids[1])
    assert (lost.status, lost.last_error) == ("unknown", UNKNOWN_ERROR)
    assert Delivery.objects.get(pk=ids[0]).status == "sent"
    resent = {row.email for row in Delivery.objects.filter(pk__in=ids[:2])}
    assert not resent & set(sent_addresses())  # neither is sent again
    assert len(sent_addresses()) == 4 == len(set(sent_addresses()))
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.failed) == (Campaign.Status.SENT, 5, 1)


def test_a_live_workers_claim_is_left_alone(campaign):
    claim_deliveries(campaign.pk, "busy-worker", 3)

    assert recover_stale_deliveries(campaign.pk) == {}
    result = send_batch(campaign.pk, worker_id="other")

    assert result["sent"] == 3
    assert Delivery.objects.filter(claimed_by="busy-worker", status="queued").count() == 3
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING


def test_counters_match_the_ledger_after_mixed_outcomes(campaign, settings, monkeypatch):
    from anymail.backends.test import EmailBackend
    from anymail.message import AnymailRecipientStatus

    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    first = Delivery.objects.order_by("pk").first()
    original = EmailBackend.post_to_esp

    def post_to_esp(self, payload, message):
        original(self, payload, message)
        return {
            "recipient_status": {
                address: AnymailRecipientStatus("id", "rejected" if address == first.email else "sent")
                for address in payload.recipient_emails
            }
        }

    monkeypatch.setattr(EmailBackend, "post_to_esp", post_to_esp)

    send_batch(campaign.pk, worker_id="w1")

    campaign.refresh_from_db()
    ledger = {status: Delivery.objects.filter(status=status).count() for status in ("sent", "failed")}
    assert (campaign.sent, campaign.failed) == (ledger["sent"], ledger["failed"]) == (5, 1)
    assert campaign.status == Campaign.Status.SENT


def test_only_one_finisher_marks_the_campaign_sent(campaign):
    from campaigns.sending import finish_if_done

    send_batch(campaign.pk, worker_id="w1")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING, finished_at=None)

    assert [finish_if_done(campaign.pk), finish_if_done(campaign.pk)] == [True, False]


def test_pause_takes_effect_within_a_batch(campaign, monkeypatch):
    from campaigns.sending import engine

    monkeypatch.setattr(engine, "CHECKPOINT_EVERY", 2)
    original = engine._Batch.checkpoint

    def checkpoint_then_pause(self, **kwargs):
        original(self, **kwargs)
        Campaign.objects.filter(pk=self.campaign_id, status="sending").update(status=Campaign.Status.PAUSED)

    monkeypatch.setattr(engine._Batch, "checkpoint", checkpoint_then_pause)

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["sent"], result["released"]) == (2, 4)
    assert Delivery.objects.filter(status="queued", claimed_by="").count() == 4


def test_send_batch_task_runs_the_campaign_to_the_end_inline(campaign, settings):
    from campaigns.tasks import send_batch_task

    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 2}
    result = send_batch_task.enqueue(campaign.pk)

    assert result.return_value["sent"] == 6
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_send_batch_task_enqueues_its_successor_before_sending(campaign, settings):
    from django_tasks import default_task_backend

    from campaigns.tasks import send_batch_task

    settings.TASKS = {
        "default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default", "campaigns"]}
    }
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 4}

    run_now(send_batch_task, campaign.pk)  # run in-process, as a worker would
    (successor,) = default_task_backend.results
    assert successor.task.name == "send_batch_task" and successor.task.run_after is None

    default_task_backend.clear()
    run_now(send_batch_task, campaign.pk)  # takes the last two: only a watchdog in case this worker dies
    (watchdog,) = default_task_backend.results
    assert watchdog.task.run_after > timezone.now() + datetime.timedelta(seconds=500)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT

    default_task_backend.clear()
    run_now(send_batch_task, campaign.pk)  # the watchdog finds the campaign done: the chain ends
    assert default_task_backend.results == []


# --- Throttle ---------------------------------------------------------------------------------


def test_throttle_grants_at_most_the_rate_per_second_across_throttles(clock):
    one = Throttle("default", per_second=10, per_hour=0, clock=clock, sleep=clock.sleep)
    two = Throttle("default", per_second=10, per_hour=0, clock=clock, sleep=clock.sleep)

    second = int(clock.now)
    granted = [one.take(1) for _ in range(5)] + [two.take(1) for _ in range(5)]
    assert sum(granted) == 10 and clock.slept == []

    assert one.take(1) == 1  # the 11th waits for the next second
    assert clock.slept and clock.now >= second + 1
    assert SendWindow.objects.filter(period=1, window=second).get().count == 10


def test_throttle_stops_when_the_hourly_allowance_is_spent(clock):
    throttle = Throttle("default", per_second=0, per_hour=3, clock=clock, sleep=clock.sleep)

    assert throttle.take(5) == 3
    assert throttle.take(1) == 0
    assert throttle.resume_at == pytest.approx((int(clock.now // 3600) + 1) * 3600)
    assert clock.slept == []


def test_engine_honours_the_hourly_rate(campaign, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "SEND_RATE_PER_HOUR": 4}

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["sent"], result["released"]) == (4, 2)
    assert result["retry_at"] is not None
    assert len(mail.outbox) == 4


# --- Bookkeeping shortcuts (campaigns/sending/engine.py, docs/performance.md) ------------------


def test_per_recipient_esp_message_ids_are_each_recorded(campaign, settings, monkeypatch):
    from anymail.backends.test import EmailBackend
    from anymail.message import AnymailRecipientStatus

    from campaigns.models import campaign as ledger

    # Force the UPDATE ... FROM (VALUES ...) path that ESPs with one id per recipient take.
    monkeypatch.setattr(ledger, "GROUPED_MESSAGE_IDS", 0)
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    original = EmailBackend.post_to_esp

    def post_to_esp(self, payload, message):
        original(self, payload, message)
        return {
            "recipient_status": {
                address: AnymailRecipientStatus(f"id-{address}", "queued") for address in payload.recipient_emails
            }
        }

    monkeypatch.setattr(EmailBackend, "post_to_esp", post_to_esp)

    send_batch(campaign.pk, worker_id="w1")

    rows = Delivery.objects.filter(campaign=campaign).values_list("email", "esp_message_id", "status", "claimed_by")
    assert sorted(rows) == [(f"reader{i}@example.com", f"id-reader{i}@example.com", "sent", "") for i in range(6)]
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.status) == (6, Campaign.Status.SENT)


def test_smtp_marker_records_the_message_id_and_the_attempt(campaign, settings):
    from campaigns.tests.fake_smtp import FakeSMTPServer

    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        send_batch(campaign.pk, worker_id="w1")

    rows = list(Delivery.objects.filter(campaign=campaign).values_list("pk", "esp_message_id", "attempts", "status"))
    assert len(rows) == 6
    for pk, message_id, attempts, status in rows:
        assert (attempts, status) == (1, "sent")
        assert message_id.startswith("<") and f".d{pk}@example.com>" in message_id


def test_a_dead_workers_claim_is_settled_when_nothing_else_is_claimable(campaign):
    # w1's batch looked for dead workers a moment ago, so the next look is not due yet ...
    send_batch(campaign.pk, worker_id="w1", limit=2)
    ids = claim_deliveries(campaign.pk, "dead-worker", 4)
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    Delivery.objects.filter(pk__in=ids).update(claimed_at=long_ago)

    # ... but with nothing left to claim it looks at once and takes the dead worker's rows.
    result = send_batch(campaign.pk, worker_id="w2")

    assert (result["recovered"], result["sent"]) == (4, 4)
    assert len(sent_addresses()) == 6 == len(set(sent_addresses()))
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_synchronous_marker_setting_keeps_the_wal_flush_on_postgresql(settings, monkeypatch):
    from django.db import connection

    from campaigns.sending.engine import marker_prelude

    monkeypatch.setattr(connection, "vendor", "postgresql")
    settings.BROADSHEET = {**settings.BROADSHEET, "SYNCHRONOUS_MARKER": False}
    assert marker_prelude() == ["SET LOCAL synchronous_commit = off"]
    settings.BROADSHEET = {**settings.BROADSHEET, "SYNCHRONOUS_MARKER": True}
    assert marker_prelude() == []


# --- What one batch reports, and the engine's per-process caches ------------------------------


def test_a_whole_batch_reports_every_count_and_flag(campaign, caplog):
    result = send_batch(campaign.pk, worker_id="w1")

    assert result == {
        "claimed": 6, "sent": 6, "failed": 0, "unknown": 0, "retried": 0, "released": 0, "recovered": 0,
        "waiting": False, "waiter": False, "paused": False, "relay_recovered": False,
        "status": Campaign.Status.SENT, "more": False, "retry_at": None,
    }  # fmt: skip
    # Run outside a django-tasks-db task: the run names no task result for recovery to fail.
    assert SendingWorker.objects.get(worker_id="w1").task_id == ""
    assert "lost its claim" not in caplog.text


def test_a_batch_of_a_campaign_no_longer_sending_does_nothing_and_says_so(campaign):
    Campaign.objects.filter(pk=campaign.pk).pause()

    assert send_batch(campaign.pk, worker_id="w1") == {
        "claimed": 0, "sent": 0, "failed": 0, "unknown": 0, "retried": 0, "released": 0, "recovered": 0,
        "waiting": False, "waiter": False, "paused": False, "relay_recovered": False,
        "status": Campaign.Status.PAUSED, "more": False, "retry_at": None,
    }  # fmt: skip
    assert mail.outbox == []


def test_work_remaining_names_the_next_retry_of_a_queued_row_only(campaign):
    now = timezone.now()
    ids = list(Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))
    later, soon = now + datetime.timedelta(minutes=10), now + datetime.timedelta(minutes=5)
    Delivery.objects.filter(pk=ids[0]).update(retry_at=later)
    # A retry time already passed (claimable now), and one on a row in flight: neither is "next".
    Delivery.objects.filter(pk=ids[1]).update(retry_at=now - datetime.timedelta(minutes=1))
    Delivery.objects.filter(pk=ids[2]).update(status=Delivery.Status.SENDING, claimed_by="w9", retry_at=soon)

    assert work_remaining(campaign.pk) == {
        "claimable": True, "unfinished": True, "next_retry_at": later, "quota_spent": False
    }  # fmt: skip


def test_dead_workers_are_looked_for_at_most_once_per_interval_unless_forced(campaign, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(engine, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    engine._last_recovery.clear()
    # HEARTBEAT_SECONDS is 0 in the tests: the interval is its floor, one second.

    assert engine._recover_if_due(campaign) is not None
    assert engine._recover_if_due(campaign) is None
    assert engine._recover_if_due(campaign, force=True) is not None
    clock[0] = 100.5
    assert engine._recover_if_due(campaign) is None
    clock[0] = 101.0  # a whole interval after the forced look
    assert engine._recover_if_due(campaign) is not None
    clock[0] = 101.9
    assert engine._recover_if_due(campaign) is None


def test_the_issue_is_built_once_per_campaign_and_process(campaign, monkeypatch):
    built = []
    real_build = engine.build_content
    monkeypatch.setattr(engine, "build_content", lambda *args, **kwargs: built.append(1) or real_build(*args, **kwargs))
    engine._content_cache.clear()

    for _ in range(3):
        send_batch(campaign.pk, worker_id="w1", limit=2)

    assert len(mail.outbox) == 6 and len(built) == 1


def test_each_message_one_click_link_names_its_campaign(campaign):
    send_batch(campaign.pk, worker_id="w1")

    for message in mail.outbox:
        parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
        url = str(parsed["List-Unsubscribe"]).split("<https://")[1].split(">")[0]
        token = url.rstrip("/").split("/")[-2]  # .../unsubscribe/<token>/one-click/
        assert read_unsubscribe_token(token).campaign_id == campaign.pk


def test_a_translation_whose_tags_need_attributes_gets_them_though_the_issue_does_not(
    issue_page, translate_page, django_capture_on_commit_callbacks
):
    translate_page(
        issue_page, "zh-hans", subject="春季刊", body=[("paragraph", "<p>你好，{{ attributes.city }}的读者</p>")]
    )
    weekly = MailingListFactory(slug="weekly")
    for email, language in (("ann@example.com", "en"), ("li@example.com", "zh-hans")):
        subscriber = SubscriberFactory(email=email, language=language, attributes={"city": "Leeds"})
        SubscriptionFactory(list=weekly, subscriber=subscriber)
    campaign = services.create_campaign(issue_page, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["claimed"], result["sent"]) == (2, 2)  # one per language, added up
    messages = {parseaddr(message.to[0])[1]: message for message in mail.outbox}
    assert messages["li@example.com"].subject == "春季刊"
    assert "你好，Leeds的读者" in messages["li@example.com"].body
    assert messages["ann@example.com"].subject == "Spring issue: news from the press"
    assert "Leeds" not in messages["ann@example.com"].body


def test_a_campaign_with_rows_left_is_not_finished(campaign):
    assert finish_if_done(campaign.pk) is False
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING

    Delivery.objects.filter(campaign=campaign).update(status=Delivery.Status.SENT)
    assert finish_if_done(campaign.pk) is True
    assert finish_if_done(campaign.pk) is False  # only the caller that flipped it
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_a_batch_while_the_relay_is_awaited_sends_nothing_and_says_when_to_come_back(campaign):
    next_try_at = timezone.now() + datetime.timedelta(minutes=3)
    Campaign.objects.filter(pk=campaign.pk).update(next_try_at=next_try_at)

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["status"], result["more"], result["waiting"]) == (Campaign.Status.SENDING, True, True)
    assert result["retry_at"] == next_try_at.isoformat() and result["claimed"] == 0
    assert mail.outbox == []


def test_a_batch_run_by_a_database_task_names_its_task_result(campaign):
    send_batch(campaign.pk, worker_id="w1", task_id="0f7c2f0e-task")

    assert SendingWorker.objects.get(worker_id="w1").task_id == "0f7c2f0e-task"


def test_when_every_row_left_waits_for_a_retry_the_batch_says_when_the_first_is_due(campaign):
    soon, later = (timezone.now() + datetime.timedelta(minutes=minutes) for minutes in (5, 9))
    ids = list(Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids[4:]).update(retry_at=later)
    Delivery.objects.filter(pk=ids[5]).update(retry_at=soon)

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["sent"], result["more"], result["retry_at"]) == (4, True, soon.isoformat())


def test_a_campaign_paused_during_a_batch_asks_for_no_more_batches(campaign):
    def pause_now(_remaining):
        Campaign.objects.filter(pk=campaign.pk).pause()

    result = send_batch(campaign.pk, worker_id="w1", limit=2, on_claimed=pause_now)

    assert (result["status"], result["more"]) == (Campaign.Status.PAUSED, False)
    assert Delivery.objects.filter(campaign=campaign, status="queued").exists()


def test_the_watchdog_settling_a_dead_workers_claim_still_claims_only_its_batch(campaign, monkeypatch):
    monkeypatch.setattr(engine, "time", SimpleNamespace(monotonic=lambda: 100.0))
    engine._last_recovery.clear()
    assert engine._recover_if_due(campaign) == {}  # a look just now: the next one is not due yet
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    ids = claim_deliveries(campaign.pk, "dead-worker", 6)
    Delivery.objects.filter(pk__in=ids).update(claimed_at=long_ago)

    result = send_batch(campaign.pk, worker_id="watchdog", limit=2)

    assert (result["recovered"], result["claimed"], result["sent"]) == (6, 2, 2)
    assert Delivery.objects.filter(campaign=campaign, status="queued", claimed_by="").count() == 4


def test_a_pause_between_two_languages_hands_the_second_languages_rows_back(
    issue_page, translate_page, monkeypatch, django_capture_on_commit_callbacks
):
    translate_page(issue_page, "zh-hans", subject="春季刊")
    weekly = MailingListFactory(slug="weekly")
    for email, language in (("ann@example.com", "en"), ("bob@example.com", "en"), ("li@example.com", "zh-hans")):
        SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email=email, language=language))
    campaign = services.create_campaign(issue_page, [weekly])
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk)
    send_rows = engine._send_rows

    def send_then_pause(*args, **kwargs):
        try:
            return send_rows(*args, **kwargs)
        finally:
            Campaign.objects.filter(pk=campaign.pk).pause()  # an editor pauses meanwhile

    monkeypatch.setattr(engine, "_send_rows", send_then_pause)

    result = send_batch(campaign.pk, worker_id="w1")

    first_language_size = len(mail.outbox)
    assert result["claimed"] == 3 and result["released"] == 3 - first_language_size
    assert result["sent"] == first_language_size and first_language_size in (1, 2)
    left = Delivery.objects.filter(campaign=campaign, status="queued")
    assert left.count() == 3 - first_language_size and not left.exclude(claimed_by="").exists()


class _Outbox(list):
    """mail.outbox that calls ``hook(number of messages so far)`` after each message arrives."""

    def __init__(self, hook):
        super().__init__()
        self.hook = hook

    def append(self, message):
        super().append(message)
        self.hook(len(self))

    def extend(self, messages):
        for message in messages:
            self.append(message)


def test_a_batch_after_a_relay_outage_says_the_relay_answers_again(campaign, caplog):
    Campaign.objects.filter(pk=campaign.pk).update(relay_failures=2, relay_down_since=timezone.now())

    with caplog.at_level("INFO", logger="campaigns.sending.engine"):
        result = send_batch(campaign.pk, worker_id="w1")

    assert f"campaign {campaign.pk}: the relay answers again" in [record.getMessage() for record in caplog.records]

    assert result["relay_recovered"] is True and result["sent"] == 6
    campaign.refresh_from_db()
    assert (campaign.relay_failures, campaign.relay_down_since) == (0, None)


def test_a_worker_whose_claim_was_given_away_mid_batch_stops_and_says_so(campaign, monkeypatch, caplog):
    ids = list(Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))

    def give_away(sent):
        if sent == 2:  # recovery thought w1 dead and gave its next row to another worker
            Delivery.objects.filter(pk=ids[2]).update(claimed_by="w-new")

    monkeypatch.setattr(mail, "outbox", _Outbox(give_away))

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["claimed"], result["sent"]) == (6, 2)
    given = Delivery.objects.get(pk=ids[2])
    assert (given.status, given.claimed_by, given.attempts) == ("queued", "w-new", 0)
    assert f"campaign {campaign.pk}: worker w1 lost its claim; stopping" in caplog.text


def test_a_pause_takes_effect_within_a_large_batch(
    issue_page, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 250}
    campaign = started_campaign(issue_page, 210, django_capture_on_commit_callbacks)

    def pause_at(sent):
        if sent == 30:
            Campaign.objects.filter(pk=campaign.pk).pause()

    monkeypatch.setattr(mail, "outbox", _Outbox(pause_at))

    result = send_batch(campaign.pk, worker_id="w1")

    # Checked at each checkpoint (every 100 messages), not only at the end of the batch.
    assert (result["claimed"], result["sent"], result["released"]) == (210, 100, 110)
    assert Delivery.objects.filter(campaign=campaign, status="queued", claimed_by="").count() == 110


def test_a_relay_lost_mid_batch_puts_the_message_in_hand_back_and_the_campaign_waits(
    campaign, smtp_server, monkeypatch
):
    open_transport = engine.mailers.open_transport

    def open_then_go_down(*args, **kwargs):
        opened = open_transport(*args, **kwargs)
        smtp_server.refuse_connections()  # the open connection lasts; a reconnection is refused
        return opened

    monkeypatch.setattr(engine.mailers, "open_transport", open_then_go_down)
    smtp_server.drop_connection(after=2)

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["sent"], result["waiter"], result["more"]) == (2, True, True)
    assert result["retry_at"] is not None
    queued = Delivery.objects.filter(campaign=campaign, status="queued")
    assert queued.count() == 4 and not queued.exclude(claimed_by="").exists()
    assert set(queued.values_list("attempts", flat=True)) == {0}  # the attempt in hand is undone
    campaign.refresh_from_db()
    assert campaign.relay_failures == 1 and campaign.next_try_at is not None
    assert "Connection refused" in campaign.last_error  # the page says why it waits


def faulty_send(monkeypatch, *, on_call: int, error: Exception):
    """Make the campaign transport's ``send`` raise ``error`` on its ``on_call``-th call."""
    open_transport = engine.mailers.open_transport

    def open_faulty(*args, **kwargs):
        transport, alias = open_transport(*args, **kwargs)
        send, calls = transport.send, []

        def send_or_raise(items, **options):
            calls.append(items)
            if len(calls) == on_call:
                raise error
            return send(items, **options)

        transport.send = send_or_raise
        return transport, alias

    monkeypatch.setattr(engine.mailers, "open_transport", open_faulty)


def test_an_unexpected_error_once_a_message_is_handed_over_leaves_it_unknown(campaign, monkeypatch):
    ids = list(Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))
    faulty_send(monkeypatch, on_call=3, error=RuntimeError("boom"))

    with pytest.raises(RuntimeError, match="boom"):
        send_batch(campaign.pk, worker_id="w1")

    # Handed to the transport: it may have gone, so it is never sent again on its own.
    in_hand = Delivery.objects.get(pk=ids[2])
    assert (in_hand.status, in_hand.claimed_by) == (Delivery.Status.UNKNOWN, "")
    assert in_hand.last_error == "the batch stopped on an unexpected error: RuntimeError: boom"
    assert list(Delivery.objects.filter(pk__in=ids[:2]).values_list("status", flat=True)) == ["sent", "sent"]
    rest = Delivery.objects.filter(pk__in=ids[3:])
    assert set(rest.values_list("status", "claimed_by")) == {("queued", "")}
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (2, 1)


def test_an_unexpected_error_before_a_message_is_handed_over_fails_it(campaign, monkeypatch):
    ids = list(Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))
    mark_sending, calls = engine._Batch.mark_sending, []

    def mark_or_raise(self, items, message_ids):
        calls.append(items)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return mark_sending(self, items, message_ids)

    monkeypatch.setattr(engine._Batch, "mark_sending", mark_or_raise)

    with pytest.raises(RuntimeError):
        send_batch(campaign.pk, worker_id="w1")

    never_sent = Delivery.objects.get(pk=ids[2])
    assert never_sent.status == Delivery.Status.FAILED
    assert never_sent.last_error == "the batch stopped on an unexpected error: RuntimeError: database went away"
    assert len(mail.outbox) == 2


def test_three_temporary_failures_in_a_row_stop_the_batch_and_it_comes_back_later(campaign, smtp_server, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "RETRY_BACKOFF_SECONDS": 60}
    smtp_server.fail_temporarily(at=1, times=10)

    before = timezone.now()
    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["retried"], result["sent"], result["released"]) == (3, 0, 3)
    retry_at = datetime.datetime.fromisoformat(result["retry_at"])
    assert before + datetime.timedelta(seconds=60) <= retry_at <= timezone.now() + datetime.timedelta(seconds=60)
    assert Delivery.objects.filter(campaign=campaign, status="queued", claimed_by="").count() == 6


def test_a_success_between_temporary_failures_starts_the_count_again(campaign, smtp_server):
    smtp_server.fail_temporarily(at=1)
    smtp_server.fail_temporarily(at=3, times=2)  # 1 fails, 2 goes, 3 and 4 fail, 5 and 6 go

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["retried"], result["sent"], result["released"]) == (3, 3, 0)


def test_recovery_can_be_told_how_old_a_claim_must_be_to_count_as_abandoned(campaign):
    claim_deliveries(campaign.pk, "unregistered-worker", 3)  # just now, by a worker with no heartbeat row

    assert recover_stale_deliveries(campaign.pk) == {}
    assert recover_stale_deliveries(campaign.pk, stale_after=0) == {"requeued": 3, "sent": 0, "unknown": 0}
    assert not Delivery.objects.exclude(claimed_by="").exists()


def test_a_claim_above_a_hint_that_finds_too_few_takes_only_the_rest_from_below(campaign):
    ids = list(Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))

    assert sorted(claim_deliveries(campaign.pk, "w1", 3, after=ids[4])) == [ids[0], ids[1], ids[5]]
    assert Delivery.objects.filter(claimed_by="w1").count() == 3


def test_a_large_batch_goes_through_its_checkpoints_to_the_end(
    issue_page, settings, django_capture_on_commit_callbacks
):
    settings.BROADSHEET = {**settings.BROADSHEET, "BATCH_SIZE": 250}
    campaign = started_campaign(issue_page, 210, django_capture_on_commit_callbacks)

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["claimed"], result["sent"], result["status"]) == (210, 210, Campaign.Status.SENT)


def test_a_batch_for_a_campaign_that_is_gone_does_nothing():
    result = send_batch(987654, worker_id="w1")

    assert (result["status"], result["more"], result["claimed"]) == (None, False, 0)


def test_a_recipient_whose_message_cannot_be_built_does_not_stop_the_others_in_the_batch(campaign, monkeypatch):
    build = engine.recipient_values
    bad = Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("email", flat=True)[1]

    def build_or_fail(content, links, recipient):
        if recipient.email == bad:
            raise ValueError("unusable merge data")
        return build(content, links, recipient)

    monkeypatch.setattr(engine, "recipient_values", build_or_fail)

    result = send_batch(campaign.pk, worker_id="w1")

    assert (result["sent"], result["failed"], result["status"]) == (5, 1, Campaign.Status.SENT)
    failed = Delivery.objects.get(campaign=campaign, email=bad)
    assert failed.last_error == "could not build the message: ValueError: unusable merge data"
