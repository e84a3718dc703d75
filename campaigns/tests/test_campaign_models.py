"""Campaign, Delivery and DeliveryEvent: constraints and querysets."""

import datetime
import threading
from types import SimpleNamespace

import pytest
from django.db import DatabaseError, IntegrityError, connection
from django.utils import timezone

from campaigns.models import Campaign, Delivery, DeliveryEvent, SendingWorker
from campaigns.models import campaign as campaign_models
from campaigns.models.campaign import GROUPED_MESSAGE_IDS, UNKNOWN_ERROR
from campaigns.sending import engine
from subscribers.tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(issue_page):
    return Campaign.objects.create(page=issue_page, from_email="news@example.com")


def make_delivery(campaign, subscriber=None, **fields):
    subscriber = subscriber or SubscriberFactory()
    return Delivery.objects.create(
        campaign=campaign, subscriber=subscriber, email=subscriber.email, subscriber_uid=subscriber.uid, **fields
    )


def test_one_delivery_per_campaign_and_subscriber(campaign):
    subscriber = SubscriberFactory()
    make_delivery(campaign, subscriber)

    with pytest.raises(IntegrityError):
        make_delivery(campaign, subscriber)


def test_claimable_excludes_claimed_waiting_and_settled_rows(campaign):
    ready = make_delivery(campaign)
    make_delivery(campaign, claimed_by="w1", claimed_at=timezone.now())
    make_delivery(campaign, retry_at=timezone.now() + datetime.timedelta(minutes=5))
    due = make_delivery(campaign, retry_at=timezone.now() - datetime.timedelta(minutes=5))
    make_delivery(campaign, status=Delivery.Status.SENT)

    assert set(Delivery.objects.claimable()) == {ready, due}


def test_unfinished_is_queued_or_in_flight(campaign):
    queued = make_delivery(campaign)
    sending = make_delivery(campaign, status=Delivery.Status.SENDING)
    make_delivery(campaign, status=Delivery.Status.FAILED)
    make_delivery(campaign, status=Delivery.Status.SKIPPED)

    assert set(Delivery.objects.unfinished()) == {queued, sending}


def test_due_scheduled_campaigns(campaign, issue_page):
    campaign.status, campaign.scheduled_at = Campaign.Status.SCHEDULED, timezone.now() - datetime.timedelta(minutes=1)
    campaign.save()
    Campaign.objects.create(
        page=issue_page, status=Campaign.Status.SCHEDULED, scheduled_at=timezone.now() + datetime.timedelta(hours=1)
    )

    assert list(Campaign.objects.due()) == [campaign]


def test_remaining_is_what_is_not_settled(campaign):
    campaign.recipients, campaign.sent, campaign.failed, campaign.skipped = 10, 6, 1, 1
    assert campaign.remaining == 2


def test_delivery_event_ids_are_unique_but_optional(campaign):
    DeliveryEvent.objects.create(esp="mailgun", event_type="delivered", event_id="evt-1")
    DeliveryEvent.objects.create(esp="mailgun", event_type="opened", event_id=None)
    DeliveryEvent.objects.create(esp="mailgun", event_type="opened", event_id=None)

    with pytest.raises(IntegrityError):
        DeliveryEvent.objects.create(esp="mailgun", event_type="delivered", event_id="evt-1")


def test_erasing_a_subscriber_keeps_the_delivery_record(campaign):
    delivery = make_delivery(campaign, status=Delivery.Status.SENT)

    delivery.subscriber.delete()

    delivery.refresh_from_db()
    assert delivery.subscriber is None and delivery.status == "sent"


# --- Each named transition writes exactly its fields (issue 10). Every delivery starts "dirty"
# (claimed, in flight, waiting for a retry, with an old error and an ESP id), so a transition that
# forgets to clear or set a field leaves a value the test sees. -----------------------------------

T0 = timezone.make_aware(datetime.datetime(2026, 3, 1, 12, 0))
T1, T2, T3 = (T0 + datetime.timedelta(minutes=minutes) for minutes in (1, 2, 3))
LONG = "x" * 1500


@pytest.fixture
def ongoing(issue_page):
    return Campaign.objects.create(page=issue_page, from_email="news@example.com", status=Campaign.Status.SENDING)


# A delivery claimed by w1, in flight since T0, due for a retry at T1, with an old error and ESP id.
DIRTY = {
    "claimed_by": "w1",
    "claimed_at": T0,
    "sending_at": T0,
    "retry_at": T1,
    "attempts": 2,
    "last_error": "old error",
    "esp_message_id": "old-id",
}


def dirty(campaign, status=Delivery.Status.SENDING, **fields):
    subscriber = SubscriberFactory()
    return Delivery.objects.create(
        campaign=campaign, subscriber=subscriber, email=subscriber.email, subscriber_uid=subscriber.uid,
        **{"status": status, **DIRTY, **fields},
    )  # fmt: skip


FIELDS = ("status", "claimed_by", "claimed_at", "sending_at", "retry_at", "attempts", "last_error", "esp_message_id")


def state(delivery) -> dict:
    delivery.refresh_from_db()
    return {name: getattr(delivery, name) for name in FIELDS}


def changed(delivery, **fields) -> dict:
    """The dirty row's fields (its status as last read) with ``fields`` changed."""
    return {"status": delivery.status, **DIRTY, **fields}


def test_mark_sending_stamps_the_send_and_counts_the_attempt(ongoing):
    row = dirty(ongoing, status=Delivery.Status.QUEUED)
    assert Delivery.objects.filter(pk=row.pk).mark_sending(T2) == 1
    assert state(row) == changed(row, status="sending", sending_at=T2, claimed_at=T2, attempts=3)


def test_mark_sent_releases_the_claim_and_keeps_at_most_255_characters_of_the_esp_id(ongoing):
    row, without_id = dirty(ongoing), dirty(ongoing)
    assert Delivery.objects.filter(pk=row.pk).mark_sent(T2, esp_message_id="m" * 300) == 1
    assert state(row) == changed(row, status="sent", claimed_by="", esp_message_id="m" * 255)
    assert Delivery.objects.get(pk=row.pk).sent_at == T2

    Delivery.objects.filter(pk=without_id.pk).mark_sent(T2)
    assert state(without_id) == changed(without_id, status="sent", claimed_by="")


def test_requeue_frees_the_row_until_its_retry_time_with_the_error(ongoing):
    row = dirty(ongoing)
    assert Delivery.objects.filter(pk=row.pk).requeue(retry_at=T3, error=LONG) == 1
    assert state(row) == changed(
        row, status="queued", claimed_by="", claimed_at=None, retry_at=T3, last_error="x" * 1000
    )


def test_requeue_unsent_undoes_the_attempt_of_rows_in_flight_only(ongoing):
    in_flight, sent = dirty(ongoing), dirty(ongoing, status=Delivery.Status.SENT)
    assert Delivery.objects.filter(campaign=ongoing).requeue_unsent() == 1
    assert state(in_flight) == changed(in_flight, status="queued", claimed_by="", claimed_at=None, attempts=1)
    assert state(sent) == changed(sent)


@pytest.mark.parametrize(("transition", "status"), [("fail", "failed"), ("mark_unknown", "unknown")])
def test_fail_and_unknown_release_the_claim_and_keep_1000_characters_of_the_error(ongoing, transition, status):
    row = dirty(ongoing)
    assert getattr(Delivery.objects.filter(pk=row.pk), transition)(LONG) == 1
    assert state(row) == changed(row, status=status, claimed_by="", last_error="x" * 1000)


def test_release_hands_claimed_queued_rows_back_and_leaves_rows_in_flight(ongoing):
    queued, in_flight = dirty(ongoing, status=Delivery.Status.QUEUED), dirty(ongoing)
    assert Delivery.objects.filter(campaign=ongoing).release() == 1
    assert state(queued) == changed(queued, claimed_by="", claimed_at=None)
    assert state(in_flight) == changed(in_flight)


def test_skip_settles_queued_rows_with_the_reason_and_leaves_rows_in_flight(ongoing):
    queued, in_flight = dirty(ongoing, status=Delivery.Status.QUEUED), dirty(ongoing)
    assert Delivery.objects.filter(campaign=ongoing).skip("campaign cancelled") == 1
    assert state(queued) == changed(queued, status="skipped", claimed_by="", last_error="campaign cancelled")
    assert state(in_flight) == changed(in_flight)


def test_retry_queues_the_row_from_the_start(ongoing):
    row = dirty(ongoing, status=Delivery.Status.FAILED)
    assert Delivery.objects.filter(pk=row.pk).retry() == 1
    assert state(row) == changed(row, status="queued", claimed_by="", claimed_at=None, retry_at=None, attempts=0)


@pytest.mark.parametrize("distinct", [1, 3, GROUPED_MESSAGE_IDS + 2], ids=["one-id", "grouped", "update-from"])
def test_mark_sent_with_message_ids_gives_each_row_its_own_id(ongoing, distinct):
    rows = [dirty(ongoing) for _ in range(GROUPED_MESSAGE_IDS + 2)]
    pending = [(row.pk, f"<{index % distinct}-{'i' * 300}>") for index, row in enumerate(rows)]

    assert Delivery.objects.mark_sent_with_message_ids(pending, T2) == len(rows)

    for (pk, message_id), row in zip(pending, rows, strict=True):
        assert state(row) == changed(row, status="sent", claimed_by="", esp_message_id=message_id[:255])
        assert Delivery.objects.get(pk=pk).sent_at == T2


def test_settling_a_dead_worker_stamps_the_sent_rows(ongoing):
    older, newest = dirty(ongoing), dirty(ongoing, sending_at=T1, claimed_at=T1)

    settled = Delivery.objects.settle_dead_worker(ongoing.pk, "w1", lambda worker, last: True)

    assert settled == {"requeued": 0, "sent": 1, "unknown": 1}
    older.refresh_from_db()
    assert older.status == Delivery.Status.SENT and older.sent_at is not None and older.claimed_by == ""
    assert state(newest) == changed(newest, status="unknown", claimed_by="", sending_at=T1, claimed_at=T1,
                                    last_error=UNKNOWN_ERROR)  # fmt: skip


# --- Campaign -------------------------------------------------------------------------------


def test_active_is_sending_or_paused(issue_page):
    by_status = {status: Campaign.objects.create(page=issue_page, status=status) for status in Campaign.Status}
    assert set(Campaign.objects.active()) == {by_status["sending"], by_status["paused"]}


def test_only_scheduled_campaigns_are_due(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).update(scheduled_at=T0)  # sending, with a past schedule
    assert not Campaign.objects.due()


def test_pause_keeps_the_reason_and_forgets_the_next_try(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).update(next_try_at=T1)
    assert ongoing.pause("the relay refused our login")
    assert (ongoing.status, ongoing.last_error, ongoing.next_try_at) == (
        "paused", "the relay refused our login", None
    )  # fmt: skip


def test_cancel_records_when_and_skips_the_queued_rows_with_the_reason(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).update(next_try_at=T1)
    queued = dirty(ongoing, status=Delivery.Status.QUEUED, claimed_by="", claimed_at=None)
    before = timezone.now()

    assert ongoing.cancel()

    assert ongoing.status == "cancelled" and ongoing.next_try_at is None and ongoing.finished_at >= before
    assert (ongoing.skipped, state(queued)["last_error"]) == (1, "campaign cancelled")


def test_fail_to_start_fails_only_a_scheduled_campaign_with_the_reason(ongoing, issue_page):
    scheduled = Campaign.objects.create(page=issue_page, status=Campaign.Status.SCHEDULED)
    before = timezone.now()

    assert Campaign.objects.filter(pk__in=[ongoing.pk, scheduled.pk]).fail_to_start("nobody to send to") == 1

    scheduled.refresh_from_db()
    assert (scheduled.status, scheduled.last_error) == ("failed", "nobody to send to")
    assert scheduled.finished_at >= before
    ongoing.refresh_from_db()
    assert (ongoing.status, ongoing.finished_at) == ("sending", None)


@pytest.mark.parametrize(("paused", "status"), [(True, "paused"), (False, "sending")])
def test_reopen_for_retry_takes_the_rows_off_failed_and_reopens(issue_page, paused, status):
    campaign = Campaign.objects.create(page=issue_page, status=Campaign.Status.SENT, failed=3, finished_at=T0)
    Campaign.objects.filter(pk=campaign.pk).reopen_for_retry(2, paused=paused)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.failed, campaign.finished_at) == (status, 1, None)


def test_relay_recovered_forgets_the_outage_once(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).update(
        relay_failures=1, relay_down_since=T0, next_try_at=T1, last_error="relay down"
    )

    assert Campaign.objects.filter(pk=ongoing.pk).relay_recovered() == 1
    assert Campaign.objects.filter(pk=ongoing.pk).relay_recovered() == 0

    ongoing.refresh_from_db()
    assert (ongoing.relay_failures, ongoing.relay_down_since, ongoing.next_try_at, ongoing.last_error) == (
        0, None, None, ""
    )  # fmt: skip


def test_resume_forgets_the_relay_outage(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).update(
        status=Campaign.Status.PAUSED, relay_failures=4, relay_down_since=T0, next_try_at=T1, last_error="down"
    )
    assert ongoing.resume()
    assert (ongoing.status, ongoing.relay_failures, ongoing.relay_down_since, ongoing.next_try_at) == (
        "sending", 0, None, None
    )  # fmt: skip
    assert ongoing.last_error == ""


# --- The engine's relay bookkeeping: exactly one task waits for the relay -------------------------


def test_a_relay_failure_is_recorded_once_and_its_first_reporter_waits(ongoing, settings, caplog):
    settings.BROADSHEET = {**settings.BROADSHEET, "RELAY_DOWN_PAUSE_SECONDS": 3600}
    first = engine.record_relay_failure(ongoing.pk, ConnectionRefusedError("refused"))
    ongoing.refresh_from_db()
    assert (first["waiter"], first["paused"], first["next_try_at"]) == (True, False, ongoing.next_try_at)
    assert ongoing.relay_failures == 1 and ongoing.relay_down_since is not None
    # What the operator reads in the worker's log.
    assert [record.getMessage() for record in caplog.records if record.levelname == "WARNING"] == [
        f"campaign {ongoing.pk}: relay unreachable (1 tries), next try at {ongoing.next_try_at}: refused"
    ]

    second = engine.record_relay_failure(ongoing.pk, ConnectionRefusedError("refused"))
    assert second == {"next_try_at": ongoing.next_try_at, "waiter": False, "paused": False}


def test_a_relay_failure_of_a_campaign_not_sending_changes_nothing(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).update(status=Campaign.Status.PAUSED)
    assert engine.record_relay_failure(ongoing.pk, OSError("down")) == {
        "next_try_at": None, "waiter": False, "paused": False
    }  # fmt: skip
    assert Campaign.objects.get(pk=ongoing.pk).relay_failures == 0


def test_the_next_try_is_due_at_its_time_and_a_relay_down_too_long_pauses(ongoing, settings, caplog):
    settings.BROADSHEET = {**settings.BROADSHEET, "RELAY_DOWN_PAUSE_SECONDS": 0}
    Campaign.objects.filter(pk=ongoing.pk).update(relay_failures=2, relay_down_since=T0, next_try_at=T0)

    result = engine.record_relay_failure(ongoing.pk, OSError("no route to host"))

    assert result == {"next_try_at": None, "waiter": False, "paused": True}
    ongoing.refresh_from_db()
    assert ongoing.status == "paused"
    assert "unreachable since 2026-03-01" in ongoing.last_error and "(3 tries): no route to host" in ongoing.last_error
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert errors == [f"campaign {ongoing.pk} paused: {ongoing.last_error}"]


def test_a_retried_relay_failure_keeps_when_the_outage_began(ongoing, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "RELAY_DOWN_PAUSE_SECONDS": 10**9}
    Campaign.objects.filter(pk=ongoing.pk).update(relay_failures=1, relay_down_since=T0, next_try_at=T0)

    assert engine.record_relay_failure(ongoing.pk, OSError("down"))["waiter"] is True

    ongoing.refresh_from_db()
    assert (ongoing.relay_failures, ongoing.relay_down_since) == (2, T0)


def test_a_heartbeat_moves_only_its_own_workers_time_forward():
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    for worker_id in ("w-beating", "w-other"):
        SendingWorker.objects.create(worker_id=worker_id, hostname="h", pid=1, heartbeat_at=long_ago)

    SendingWorker.objects.create(worker_id="w-stopped", hostname="h", pid=1, heartbeat_at=long_ago, stopped_at=long_ago)

    assert SendingWorker.beat("w-beating") == 1
    assert SendingWorker.beat("w-unknown") == 0
    assert SendingWorker.beat("w-stopped") == 0

    beats = dict(SendingWorker.objects.values_list("worker_id", "heartbeat_at"))
    assert beats["w-beating"] > long_ago + datetime.timedelta(minutes=59)
    assert beats["w-other"] == beats["w-stopped"] == long_ago


def test_the_relay_wait_is_explained_with_when_it_began_and_when_the_next_try_is(ongoing, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "RELAY_DOWN_PAUSE_SECONDS": 10**9}
    Campaign.objects.filter(pk=ongoing.pk).update(relay_failures=1, relay_down_since=T0, next_try_at=T0)

    result = engine.record_relay_failure(ongoing.pk, OSError("connection refused"))

    ongoing.refresh_from_db()
    since, next_try = timezone.localtime(T0), timezone.localtime(result["next_try_at"])
    assert ongoing.last_error == (
        f"Waiting for the relay since {since:%Y-%m-%d %H:%M:%S %Z}, next try at {next_try:%H:%M:%S %Z}: "
        "connection refused"
    )
    assert ongoing.waiting_for_relay == ongoing.last_error.removesuffix(": connection refused")


def test_finish_records_when_and_forgets_any_relay_outage(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).update(relay_failures=2, relay_down_since=T0, next_try_at=T1)
    before = timezone.now()

    assert Campaign.objects.filter(pk=ongoing.pk).finish() == 1

    ongoing.refresh_from_db()
    assert (ongoing.status, ongoing.relay_failures, ongoing.relay_down_since, ongoing.next_try_at) == (
        "sent", 0, None, None
    )  # fmt: skip
    assert ongoing.finished_at >= before


def test_a_campaign_keeps_at_most_2000_characters_of_a_pause_or_relay_reason(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).wait_for_relay(failures=1, down_since=T0, next_try_at=T1, reason=LONG * 2)
    assert len(Campaign.objects.get(pk=ongoing.pk).last_error) == 2000
    Campaign.objects.filter(pk=ongoing.pk).pause(LONG * 2)
    assert len(Campaign.objects.get(pk=ongoing.pk).last_error) == 2000


def test_a_pause_by_a_person_gives_no_reason(ongoing):
    assert ongoing.pause()
    assert Campaign.objects.filter(pk=ongoing.pk).update(status=Campaign.Status.SENDING) == 1
    assert Campaign.objects.filter(pk=ongoing.pk).pause() == 1
    assert Campaign.objects.get(pk=ongoing.pk).last_error == ""


def test_the_per_message_marker_marks_only_a_row_its_worker_holds(ongoing, monkeypatch):
    from campaigns.models import campaign as ledger

    monkeypatch.setattr(ledger, "_marker_sql_cache", {})  # build the statement, as a fresh worker does
    held, other = dirty(ongoing, status=Delivery.Status.QUEUED), dirty(ongoing, status=Delivery.Status.QUEUED)

    assert Delivery.objects.mark_one_sending(held.pk, "w1", T2, "<" + "m" * 300 + ">") is True
    assert Delivery.objects.mark_one_sending(other.pk, "w2", T2, "<other>") is False

    assert state(held) == changed(held, status="sending", sending_at=T2, claimed_at=T2, attempts=3,
                                  esp_message_id=("<" + "m" * 300)[:255])  # fmt: skip
    assert state(other) == changed(other)
    assert list(ledger._marker_sql_cache) == [connection.vendor]


# --- The tracking webhooks' batch write, reopening a campaign, the outcome counters -------------


@pytest.mark.parametrize("update_from", [True, False], ids=["update-from", "row-by-row"])
def test_write_fields_writes_each_rows_own_values_of_the_named_fields_only(ongoing, monkeypatch, update_from):
    monkeypatch.setattr(campaign_models, "_supports_update_from", lambda: update_from)
    rows = [dirty(ongoing, status=Delivery.Status.SENT, first_opened_at=T0, open_count=1) for _ in range(3)]
    opened = [None, T2, T3]  # the first row's open is taken back: a NULL written over a value
    for row, first_opened_at, count in zip(rows, opened, (5, 6, 7), strict=True):
        row.first_opened_at, row.open_count, row.last_error = first_opened_at, count, "not a named field"

    assert Delivery.objects.write_fields(rows, ("first_opened_at", "open_count")) == 3

    stored = {row.pk: row for row in Delivery.objects.filter(campaign=ongoing)}
    for row, first_opened_at, count in zip(rows, opened, (5, 6, 7), strict=True):
        assert (stored[row.pk].first_opened_at, stored[row.pk].open_count) == (first_opened_at, count)
        assert stored[row.pk].last_error == "old error"
    assert Delivery.objects.write_fields([], ("open_count",)) == 0


def test_reopening_a_sent_campaign_sends_again_and_a_paused_one_stays_paused(issue_page):
    sent = Campaign.objects.create(
        page=issue_page, from_email="news@example.com", status=Campaign.Status.SENT, finished_at=T0, recipients=4
    )
    paused = Campaign.objects.create(
        page=issue_page, from_email="news@example.com", status=Campaign.Status.PAUSED, finished_at=T1, recipients=4
    )

    assert Campaign.objects.filter(pk__in=[sent.pk, paused.pk]).reopen(3) == 2

    sent.refresh_from_db()
    paused.refresh_from_db()
    assert (sent.status, sent.finished_at, sent.recipients) == (Campaign.Status.SENDING, None, 7)
    assert (paused.status, paused.finished_at, paused.recipients) == (Campaign.Status.PAUSED, T1, 7)


def test_count_outcomes_adds_only_what_it_is_given(ongoing):
    Campaign.objects.filter(pk=ongoing.pk).update(sent=2, failed=1, skipped=1)
    campaigns = Campaign.objects.filter(pk=ongoing.pk)

    assert campaigns.count_outcomes() == 0
    assert campaigns.count_outcomes(sent=3) == 1
    assert campaigns.count_outcomes(skipped=2) == 1

    ongoing.refresh_from_db()
    assert (ongoing.sent, ongoing.failed, ongoing.skipped) == (5, 1, 3)


def test_a_failed_heartbeat_is_logged_with_its_error_and_the_beating_goes_on(monkeypatch, caplog):
    stop, beats = threading.Event(), []

    def beat(worker_id):
        beats.append(worker_id)
        if len(beats) == 1:
            raise DatabaseError("database is locked")
        stop.set()

    monkeypatch.setattr(SendingWorker, "beat", beat)
    monkeypatch.setattr(engine, "close_old_connections", lambda: None)
    monkeypatch.setattr(engine, "connection", SimpleNamespace(close=lambda: None))  # the beat's own connection

    with caplog.at_level("DEBUG", logger="campaigns.sending.engine"):
        engine._beat("w1", 0.001, stop)

    assert beats == ["w1", "w1"]
    (record,) = [record for record in caplog.records if "heartbeat" in record.getMessage()]
    assert record.getMessage() == "heartbeat of w1 failed" and record.exc_info[0] is DatabaseError
