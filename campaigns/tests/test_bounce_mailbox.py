"""Reading the bounce mailbox (Maildir here; POP3/IMAP in test_bounce_servers.py) and applying it."""

import datetime
import mailbox
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from campaigns.bounces import tasks as bounce_tasks
from campaigns.bounces.mailboxes import MaildirMailbox
from campaigns.bounces.processing import process_mailbox
from campaigns.models import Delivery, DeliveryEvent
from campaigns.sending import send_batch
from campaigns.sending.verp import return_path
from campaigns.tests import bounce_samples as samples
from campaigns.tests.factories import started_campaign
from subscribers.models import Subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def maildir(tmp_path, settings):
    path = tmp_path / "bounces"
    box = mailbox.Maildir(path, create=True)
    config = {"protocol": "maildir", "path": str(path), "kept": "Kept"}
    settings.BROADSHEET = {**settings.BROADSHEET, "BOUNCE_DOMAIN": "bounce.example.com", "BOUNCE_MAILBOX": config}
    return box


@pytest.fixture
def sent_campaign(issue_page, django_capture_on_commit_callbacks, maildir):
    campaign = started_campaign(issue_page, 3, django_capture_on_commit_callbacks)
    send_batch(campaign.pk, worker_id="w1")
    return campaign


def delivery(email):
    return Delivery.objects.get(email=email)


def state(email):
    return Subscriber.objects.get(email=email).state


def test_hard_bounce_to_verp_address_suppresses_that_subscriber(sent_campaign, maildir):
    target = delivery("reader1@example.com")
    # The DSN names another address (a forward), but the VERP return path names the delivery.
    maildir.add(samples.dsn("forwarded@elsewhere.example", to=return_path(target.pk)))

    process_mailbox()

    assert state("reader1@example.com") == Subscriber.State.BOUNCED
    assert state("reader0@example.com") == Subscriber.State.ACTIVE
    assert delivery("reader1@example.com").bounce_type == "hard"
    assert len(maildir) == 0, "processed messages are deleted"


def test_bounce_without_verp_is_matched_by_message_id_and_recipient(sent_campaign, maildir):
    target = delivery("reader2@example.com")
    maildir.add(samples.dsn("reader2@example.com", original_message_id=target.esp_message_id))

    process_mailbox()

    assert state("reader2@example.com") == Subscriber.State.BOUNCED


def test_complaint_suppresses_as_complained(sent_campaign, maildir):
    target = delivery("reader0@example.com")
    maildir.add(samples.arf("reader0@example.com", to=return_path(target.pk)))

    process_mailbox()

    assert state("reader0@example.com") == Subscriber.State.COMPLAINED
    sent_campaign.refresh_from_db()
    assert sent_campaign.complained == 1


def test_soft_bounce_counts_towards_the_streak_without_suppressing(sent_campaign, maildir):
    target = delivery("reader0@example.com")
    maildir.add(samples.exim_mailbox_full("reader0@example.com", to=return_path(target.pk)))

    process_mailbox()

    subscriber = Subscriber.objects.get(email="reader0@example.com")
    assert (subscriber.state, subscriber.soft_bounce_streak) == (Subscriber.State.ACTIVE, 1)


def test_a_plain_bounce_quoting_the_sender_suppresses_the_recipient_not_the_sender(sent_campaign, maildir):
    # The sender reads their own newsletter (reader0 stands for them); 163 lists the sender first.
    maildir.add(samples.netease_bounce("reader1@example.com", sender="reader0@example.com"))

    process_mailbox()

    assert state("reader1@example.com") == Subscriber.State.BOUNCED
    assert state("reader0@example.com") == Subscriber.State.ACTIVE


def test_reading_the_same_message_twice_changes_nothing(sent_campaign, maildir):
    raw = samples.dsn("reader1@example.com", to=return_path(delivery("reader1@example.com").pk))
    maildir.add(raw)
    process_mailbox()
    maildir.add(raw)  # e.g. the process died after the commit and before the delete

    results = process_mailbox()

    assert results[0].outcomes == ["reader1@example.com: duplicate"]
    sent_campaign.refresh_from_db()
    assert sent_campaign.bounced == 1
    assert DeliveryEvent.objects.filter(esp="mailbox").count() == 1


def test_auto_replies_are_deleted_and_never_counted(sent_campaign, maildir):
    maildir.add(samples.out_of_office(to=return_path(delivery("reader0@example.com").pk)))

    process_mailbox()

    assert state("reader0@example.com") == Subscriber.State.ACTIVE
    assert not DeliveryEvent.objects.exists()
    assert len(maildir) == 0


def test_reply_to_address_in_the_bounce_mailbox_discards_out_of_office_and_keeps_a_persons_reply(
    sent_campaign, maildir
):
    """The documented set-up: the campaign's Reply-To is an address delivered into the bounce mailbox."""
    original = delivery("reader0@example.com")
    # Outlook's automatic reply: no RFC 3834 header, the reader's own address, the original quoted.
    out_of_office = (
        "From: Reader 0 <reader0@example.com>\r\n"
        "To: replies@bounce.example.com\r\n"
        "Subject: Automatic reply: Spring issue: news from the press\r\n"
        f"In-Reply-To: {original.esp_message_id}\r\n"
        "X-Auto-Response-Suppress: All\r\n"
        "Message-ID: <ooo-outlook-1@example.com>\r\n"
        "\r\n"
        "I am away until 4 January with no access to email.\r\n"
        "\r\n"
        "-----Original Message-----\r\n"
        "From: The Broadsheet <news@example.com>\r\n"
        "To: reader0@example.com\r\n"
        "Subject: Spring issue: news from the press\r\n"
    ).encode()
    maildir.add(out_of_office)
    maildir.add(samples.human_reply(to="replies@bounce.example.com"))

    results = process_mailbox()

    assert sorted((result.kind, result.disposition) for result in results) == [
        ("auto-reply", "deleted"),
        ("unknown", "kept"),
    ]
    subscriber = Subscriber.objects.get(email="reader0@example.com")
    assert (subscriber.state, subscriber.soft_bounce_streak) == (Subscriber.State.ACTIVE, 0)
    assert not DeliveryEvent.objects.exists()
    assert len(maildir) == 0 and len(maildir.get_folder("Kept")) == 1


def test_unparseable_messages_are_set_aside_for_a_person(sent_campaign, maildir):
    maildir.add(samples.human_reply())

    process_mailbox()

    assert len(maildir) == 0
    assert len(maildir.get_folder("Kept")) == 1


def test_message_is_left_in_place_when_its_outcome_cannot_be_committed(sent_campaign, maildir, monkeypatch):
    maildir.add(samples.dsn("reader1@example.com", to=return_path(delivery("reader1@example.com").pk)))

    def broken(event):
        raise RuntimeError("database went away")

    monkeypatch.setattr("campaigns.bounces.processing.record_tracking_event", broken)
    process_mailbox()

    assert len(maildir) == 1
    assert state("reader1@example.com") == Subscriber.State.ACTIVE


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_process_bounces_deletes_and_sets_aside_only_what_is_already_committed(sent_campaign, maildir, monkeypatch):
    """Real commits (a transactional test): when a message leaves the inbox, no transaction is
    open and its outcome is in the database, so a crash at any point loses nothing."""
    target = delivery("reader1@example.com")
    maildir.add(samples.dsn("reader1@example.com", to=return_path(target.pk)))
    maildir.add(samples.human_reply())
    seen = []

    def watched(name):
        original = getattr(MaildirMailbox, name)

        def method(self, key):
            seen.append((name, connection.in_atomic_block, DeliveryEvent.objects.filter(esp="mailbox").count()))
            return original(self, key)

        monkeypatch.setattr(MaildirMailbox, name, method)

    watched("done")
    watched("keep")

    call_command("process_bounces", stdout=StringIO())

    # The bounce's event was committed before its delete; the kept reply changed nothing (a
    # Maildir keeps by copying to .Kept, then deleting).
    assert sorted(seen) == [("done", False, 1), ("done", False, 1), ("keep", False, 1)]
    assert len(maildir) == 0 and len(maildir.get_folder("Kept")) == 1


def test_process_bounces_prints_what_it_did_with_each_message(sent_campaign, maildir, capsys):
    maildir.add(samples.dsn("reader1@example.com", to=return_path(delivery("reader1@example.com").pk)))
    maildir.add(samples.out_of_office())

    call_command("process_bounces")

    out = capsys.readouterr().out
    assert "hard: hard bounce (DSN) for reader1@example.com: 5.1.1" in out
    assert "[reader1@example.com: recorded] -> deleted" in out
    assert "auto-reply" in out
    assert "Done: 1 auto-reply, 1 hard." in out


def test_process_bounces_without_a_mailbox_says_so(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "BOUNCE_MAILBOX": None}

    with pytest.raises(CommandError, match="BOUNCE_MAILBOX_URL"):
        call_command("process_bounces")


def test_process_bounces_names_a_missing_maildir(tmp_path):
    with pytest.raises(CommandError, match="not a Maildir"):
        call_command("process_bounces", "--mailbox", f"maildir://{tmp_path}/missing")


def test_polling_chain_starts_once_and_re_enqueues_itself(maildir, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default"]}}
    backend = bounce_tasks.process_bounces_task.get_backend()

    assert bounce_tasks.start_bounce_polling() is True
    assert bounce_tasks.start_bounce_polling() is False, "a second worker start must not start a second chain"
    (first,) = backend.results
    maildir.add(samples.human_reply())

    bounce_tasks.process_bounces_task.call(*first.args)

    assert len(maildir.get_folder("Kept")) == 1, "the run read the mailbox"
    following = backend.results[-1]
    assert following.args == first.args and following.task.run_after is not None
    assert bounce_tasks.process_bounces_task.call("stale-token") == {"skipped": "superseded by another polling chain"}
    assert len(backend.results) == 2, "a superseded run enqueues nothing"


def test_a_chain_whose_next_run_is_long_overdue_is_replaced(maildir, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default"]}}
    assert bounce_tasks.start_bounce_polling(now=timezone.now() - datetime.timedelta(hours=1)) is True

    assert bounce_tasks.start_bounce_polling() is True
    assert len(bounce_tasks.process_bounces_task.get_backend().results) == 2


def test_no_polling_without_a_mailbox(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": ["default"]}}
    settings.BROADSHEET = {**settings.BROADSHEET, "BOUNCE_MAILBOX": None}

    assert bounce_tasks.start_bounce_polling() is False


def test_bounce_naming_only_an_address_suppresses_that_subscriber(sent_campaign, maildir):
    # No VERP, no Message-ID we sent (e.g. a bounced confirmation email): the address decides,
    # through the same subscriber-level rules as the ESP webhooks (subscribers.suppression).
    maildir.add(samples.qmail_bounce("reader2@example.com"))

    results = process_mailbox()

    assert results[0].kind == "hard"
    assert state("reader2@example.com") == Subscriber.State.BOUNCED
    assert state("reader1@example.com") == Subscriber.State.ACTIVE
