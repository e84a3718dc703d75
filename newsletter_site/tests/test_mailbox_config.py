"""BOUNCE_MAILBOX_URL: one URL for POP3(S), IMAP(S) or a Maildir; a bad value names the variable."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from newsletter_site.config import mailbox_from_url


def test_empty_means_no_mailbox():
    assert mailbox_from_url("BOUNCE_MAILBOX_URL", "") is None


def test_pop3s_with_an_escaped_password():
    config = mailbox_from_url("BOUNCE_MAILBOX_URL", "pop3s://bounces:p%40ss@mail.example.com")

    assert config == {
        "protocol": "pop3",
        "host": "mail.example.com",
        "port": 995,
        "username": "bounces",
        "password": "p@ss",
        "ssl": True,
        "starttls": False,
        "folder": "INBOX",
        "kept": "Kept",
        "timeout": 30,
    }


def test_imap_with_starttls_a_folder_and_a_port():
    config = mailbox_from_url("BOUNCE_MAILBOX_URL", "imap://u:p@mail.example.com:1143/Bounces?tls=1&kept=Later")

    assert (config["protocol"], config["port"], config["folder"], config["kept"]) == ("imap", 1143, "Bounces", "Later")
    assert (config["ssl"], config["starttls"]) == (False, True)


def test_imaps_defaults_to_port_993_and_inbox():
    config = mailbox_from_url("BOUNCE_MAILBOX_URL", "imaps://u:p@mail.example.com")

    assert (config["port"], config["folder"], config["ssl"]) == (993, "INBOX", True)


def test_maildir_path():
    assert mailbox_from_url("BOUNCE_MAILBOX_URL", "maildir:///var/mail/bounces") == {
        "protocol": "maildir",
        "path": "/var/mail/bounces",
        "kept": "Kept",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://u:p@host", "unknown scheme"),
        ("imaps://host/INBOX", "needs a user name"),
        ("pop3s://u:p@/", "needs a host"),
        ("pop3s://u:p@host?tls=1", "not both"),
        ("pop3://u:p@host/INBOX", "POP3 has no folders"),
        ("maildir://", "needs a path"),
        ("imap://u:p@host:notaport", "not a valid URL"),
        ("imap://u:p@host?timeout=soon", "timeout"),
    ],
)
def test_bad_values_name_the_variable(value, message):
    with pytest.raises(ImproperlyConfigured, match=message) as error:
        mailbox_from_url("BOUNCE_MAILBOX_URL", value)
    assert "BOUNCE_MAILBOX_URL" in str(error.value)
