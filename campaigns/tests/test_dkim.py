"""In-app DKIM signing: signed messages verify, and the signature covers the unsubscribe headers."""

import base64
import subprocess

import dkim
import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.sending import send_batch
from campaigns.sending.dkim_signing import Signer
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


def test_changing_the_unsubscribe_header_breaks_the_signature(private_key, public_txt):
    message = (
        b"From: news@example.com\r\nTo: a@example.org\r\nSubject: Hi\r\n"
        b"List-Unsubscribe: <https://news.example.com/u/1/>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b"\r\nHello\r\n"
    )
    signed = Signer(domain="example.com", selector="news", key=private_key.read_bytes()).sign(message)
    assert verify(signed, public_txt)

    tampered = signed.replace(b"/u/1/", b"/u/2/")
    assert not verify(tampered, public_txt)
    # Over-signed: a second List-Unsubscribe added on the way also breaks it.
    added = signed.replace(b"\r\n\r\nHello", b"\r\nList-Unsubscribe: <https://evil.example/>\r\n\r\nHello")
    assert not verify(added, public_txt)


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
