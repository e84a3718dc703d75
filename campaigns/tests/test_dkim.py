"""In-app DKIM signing: signed messages verify, and the signature covers the unsubscribe headers."""

import base64
import subprocess

import dkim
import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.sending import send_batch
from campaigns.tests.factories import started_campaign
from campaigns.tests.fake_smtp import FakeSMTPServer
from newsletter_site.config import dkim_from_env

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def private_key(tmp_path_factory):
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def public_txt(private_key):
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(private_key), "-pubout", "-outform", "der"], check=True, capture_output=True
    ).stdout
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def verify(message: bytes, public_txt: bytes) -> bool:
    return dkim.verify(message, dnsfunc=lambda name, timeout=5: public_txt)


def test_campaign_messages_are_signed_and_verify(
    settings, private_key, public_txt, issue_page, django_capture_on_commit_callbacks
):
    settings.BROADSHEET = {
        **settings.BROADSHEET,
        "DKIM": {"domain": "example.com", "selector": "news", "key": private_key.read_bytes()},
    }
    campaign = started_campaign(issue_page, 2, django_capture_on_commit_callbacks)
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        send_batch(campaign.pk, worker_id="w1")

    for received in server.messages:
        assert verify(received.data, public_txt)
        signature = received.parsed()["DKIM-Signature"]
        signed = [name.strip().lower() for name in signature.split("h=")[1].split(";")[0].split(":")]
        assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= set(signed)


@pytest.fixture
def signed_campaign_message(settings, private_key, public_txt, issue_page, django_capture_on_commit_callbacks):
    """One campaign message as the relay received it, signed by Broadsheet (and verifying)."""
    settings.BROADSHEET = {
        **settings.BROADSHEET,
        "DKIM": {"domain": "example.com", "selector": "news", "key": private_key.read_bytes()},
    }
    campaign = started_campaign(issue_page, 1, django_capture_on_commit_callbacks)
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        send_batch(campaign.pk, worker_id="w1")
    [received] = server.messages
    assert verify(received.data, public_txt)
    return received.data


def change_header(message: bytes, name: str, change) -> bytes:
    """``message`` with the (unfolded) value of its header ``name`` replaced by ``change(value)``."""
    head, separator, body = message.partition(b"\r\n\r\n")
    lines, found = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and lines and lines[-1][0]:
            lines[-1] = (True, lines[-1][1] + b"\r\n" + line)
            continue
        matches = line.lower().startswith(name.lower().encode() + b":")
        lines.append((matches, line))
    out = []
    for matches, line in lines:
        if matches and not line.startswith(b"DKIM-Signature"):
            found = True
            value = line.split(b":", 1)[1]
            line = name.encode() + b":" + change(value)
        out.append(line)
    assert found, f"the campaign message has no {name} header"
    return b"\r\n".join(out) + separator + body


# Every header the signature covers (campaigns.sending.dkim_signing.SIGNED_HEADERS) that a
# campaign message has, changed by one visible character.
@pytest.mark.parametrize(
    "header",
    [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "MIME-Version",
        "Content-Type",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Id",
        "Feedback-ID",
    ],
)
def test_a_change_to_any_signed_header_alone_fails_verification(signed_campaign_message, public_txt, header):
    tampered = change_header(signed_campaign_message, header, lambda value: value.replace(b"e", b"E", 1) + b"x")

    assert tampered.partition(b"\r\n\r\n")[2] == signed_campaign_message.partition(b"\r\n\r\n")[2]
    assert not verify(tampered, public_txt)


def test_headers_added_in_transit_do_not_break_it_but_a_second_signed_one_does(signed_campaign_message, public_txt):
    received = b"Received: from relay.example.net by mx.example.org; Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    refolded = change_header(signed_campaign_message, "Subject", lambda value: b"  " + value.strip() + b"  ")

    assert verify(received + signed_campaign_message, public_txt)
    assert verify(refolded, public_txt), "relaxed canonicalisation: whitespace changes are allowed"
    # A verifier reads the last occurrence of a signed header, many mail programs show the first:
    # one added on top would change what the reader sees unless each name is signed once more
    # than it occurs (RFC 6376 section 8.15).
    for name, value in ((b"List-Unsubscribe", b"<https://evil.example/>"), (b"Subject", b"Act now")):
        added = name + b": " + value + b"\r\n" + signed_campaign_message
        assert not verify(added, public_txt), f"over-signed: a second {name.decode()} breaks the signature"


def test_a_change_to_the_body_alone_fails_verification(signed_campaign_message, public_txt):
    head, separator, body = signed_campaign_message.partition(b"\r\n\r\n")
    assert b"Welcome to" in body
    edited = head + separator + body.replace(b"Welcome to", b"Welcome tO", 1)
    appended = signed_campaign_message + b"Click here for a prize: https://evil.example/\r\n"

    assert not verify(edited, public_txt)
    assert not verify(appended, public_txt), "the whole body is signed (no l= length limit)"


def test_no_dkim_domain_no_signing():
    assert dkim_from_env({}) is None


def test_key_from_a_file_or_a_variable(private_key):
    from_file = dkim_from_env(
        {"DKIM_DOMAIN": "Example.com", "DKIM_SELECTOR": "news", "DKIM_PRIVATE_KEY_FILE": str(private_key)}
    )
    pem = private_key.read_text().replace("\n", "\\n")
    from_variable = dkim_from_env({"DKIM_DOMAIN": "example.com", "DKIM_SELECTOR": "news", "DKIM_PRIVATE_KEY": pem})

    assert from_file == from_variable == {"domain": "example.com", "selector": "news", "key": private_key.read_bytes()}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DKIM_DOMAIN": "example.com"}, "DKIM_SELECTOR"),
        ({"DKIM_DOMAIN": "example.com", "DKIM_SELECTOR": "s"}, "DKIM_PRIVATE_KEY_FILE or DKIM_PRIVATE_KEY"),
        ({"DKIM_DOMAIN": "example.com", "DKIM_SELECTOR": "s", "DKIM_PRIVATE_KEY_FILE": "/nope.pem"}, "cannot be read"),
        (
            {"DKIM_DOMAIN": "example.com", "DKIM_SELECTOR": "s", "DKIM_PRIVATE_KEY": "not a key"},
            "not an RSA private key",
        ),
    ],
)
def test_bad_dkim_settings_name_the_variable(env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        dkim_from_env(env)
