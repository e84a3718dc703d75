"""The POP3 and IMAP bounce readers against a real Dovecot (apt: dovecot-imapd dovecot-pop3d).

Dovecot runs from a private configuration on 127.0.0.1:25172-25175 (campaigns.tests.mta);
marked ``mta``, so ``make test-services`` runs these and ``make test`` leaves them out.
"""

import ssl

import pytest

from campaigns.bounces.mailboxes import AuthenticationFailed, MailboxError, open_mailbox
from campaigns.bounces.processing import process_mailbox
from campaigns.models import Delivery, DeliveryEvent
from campaigns.sending import send_batch
from campaigns.sending.verp import return_path
from campaigns.tests import bounce_samples as samples
from campaigns.tests.factories import started_campaign
from campaigns.tests.mta import Dovecot
from subscribers.models import Subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.mta]

PORTS = {"imap": 25172, "imaps": 25173, "pop3": 25174, "pop3s": 25175}
PROTOCOLS = ["pop3s", "pop3+tls", "imaps", "imap+tls"]


@pytest.fixture(scope="module")
def dovecot():
    with Dovecot(user="bounces", password="s3cret pass", ports=PORTS) as server:
        yield server


@pytest.fixture
def trust(dovecot):
    return ssl.create_default_context(cafile=str(dovecot.cert))


@pytest.fixture
def campaign(issue_page, django_capture_on_commit_callbacks, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "BOUNCE_DOMAIN": "bounce.example.test"}
    campaign = started_campaign(issue_page, 2, django_capture_on_commit_callbacks)
    send_batch(campaign.pk, worker_id="w1")
    return campaign


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bounce_read_over_the_network_suppresses_and_is_deleted(dovecot, trust, campaign, protocol):
    target = Delivery.objects.get(email="reader1@example.com")
    dovecot.deliver(samples.dsn("reader1@example.com", to=return_path(target.pk)))

    results = process_mailbox(dovecot.config(protocol), ssl_context=trust)

    assert [result.kind for result in results] == ["hard"]
    assert Subscriber.objects.get(email="reader1@example.com").state == Subscriber.State.BOUNCED
    assert dovecot.inbox() == [], "deleted from the server once the outcome was committed"


def test_imap_sets_unparseable_messages_aside_in_the_kept_folder(dovecot, trust, campaign):
    dovecot.deliver(samples.human_reply())

    process_mailbox(dovecot.config("imaps"), ssl_context=trust)

    assert dovecot.inbox() == []
    kept = list((dovecot.maildir_path / ".Kept").rglob("*/*"))
    assert len([path for path in kept if path.parent.name in ("new", "cur")]) == 1


def test_pop3_leaves_unparseable_messages_on_the_server(dovecot, trust, campaign):
    dovecot.deliver(samples.human_reply(), samples.out_of_office())

    results = process_mailbox(dovecot.config("pop3s"), ssl_context=trust)

    assert sorted(result.kind for result in results) == ["auto-reply", "unknown"]
    assert len(dovecot.inbox()) == 1, "the reply stays for a person; the auto-reply is gone"
    for path in dovecot.inbox():
        path.unlink()


def test_pop3_deletes_an_auto_reply_only_when_the_session_ends_and_never_counts_it(dovecot, trust, campaign):
    reader0, reader1 = (Delivery.objects.get(email=f"reader{n}@example.com") for n in (0, 1))
    dovecot.deliver(
        samples.out_of_office(to=return_path(reader0.pk)),
        samples.dsn("reader1@example.com", to=return_path(reader1.pk)),
    )
    seen = []

    def worker_killed_after_the_second_message(line):
        seen.append(line)
        if len(seen) == 2:
            raise ConnectionError("worker killed before QUIT")

    with pytest.raises(ConnectionError):
        process_mailbox(dovecot.config("pop3s"), ssl_context=trust, echo=worker_killed_after_the_second_message)
    # Both had their DELE; without QUIT the server deleted neither (RFC 1939 section 6).
    assert len(dovecot.inbox()) == 2
    assert Subscriber.objects.get(email="reader1@example.com").state == Subscriber.State.BOUNCED, "committed first"

    results = process_mailbox(dovecot.config("pop3s"), ssl_context=trust)

    by_kind = {result.kind: result for result in results}
    assert sorted(by_kind) == ["auto-reply", "hard"]
    assert (by_kind["auto-reply"].disposition, by_kind["auto-reply"].outcomes) == ("deleted", ["not counted"])
    assert by_kind["hard"].outcomes == ["reader1@example.com: duplicate"], "read twice, applied once"
    assert dovecot.inbox() == []
    subscriber = Subscriber.objects.get(email="reader0@example.com")
    assert (subscriber.state, subscriber.soft_bounce_streak) == (Subscriber.State.ACTIVE, 0)
    reader0.refresh_from_db()
    assert reader0.bounce_type == ""
    assert list(DeliveryEvent.objects.values_list("recipient", flat=True)) == ["reader1@example.com"]
    campaign.refresh_from_db()
    assert (campaign.bounced, campaign.complained) == (1, 0)


@pytest.mark.parametrize("protocol", ["pop3s", "imaps"])
def test_a_wrong_password_is_named_as_such(dovecot, trust, protocol):
    box = open_mailbox(dovecot.config(protocol, password="wrong"), ssl_context=trust)
    with pytest.raises(AuthenticationFailed, match="refused the user name or password"):
        box.open()


def test_an_untrusted_certificate_is_refused(dovecot):
    box = open_mailbox(dovecot.config("imaps"), ssl_context=ssl.create_default_context())
    with pytest.raises(MailboxError, match="TLS failed"):
        box.open()
