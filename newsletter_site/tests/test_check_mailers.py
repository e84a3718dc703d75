"""manage.py check_mailers: connects to every mailer and the bounce mailbox, says what is wrong."""

import io
import mailbox

import pytest
from django.core.management import CommandError, call_command

from campaigns.sending import mailers
from campaigns.tests.fake_smtp import FakeSMTPServer

pytestmark = pytest.mark.django_db


def run():
    out = io.StringIO()
    try:
        call_command("check_mailers", stdout=out)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def test_reports_capabilities_and_limits_of_a_working_relay(settings):
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        settings.MAILERS["default"]["LIMITS"] = {"per_second": 0, "per_hour": 0, "per_day": 500}
        out, error = run()

    assert error is None
    assert f"connected to {server.host}:{server.port}" in out
    assert "PIPELINING" in out
    assert "limits: 500 per day" in out
    assert "TLS: not used" in out
    assert mailers.health("default")["ok"] is True


def test_an_unreachable_mailer_is_a_problem_in_plain_words(settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 25199, "timeout": 2},
        }
    }

    out, error = run()

    assert "cannot connect to 127.0.0.1:25199" in out
    assert error == "1 problem found."
    assert mailers.health("default")["ok"] is False


def test_a_wrong_password_is_named_as_such(settings):
    with FakeSMTPServer(auth=("news", "right")) as server:
        settings.MAILERS = server.mailers_setting()
        settings.MAILERS["default"]["OPTIONS"].update(username="news", password="wrong")
        out, error = run()

    assert "wrong user name or password for 'news'" in out
    assert error == "1 problem found."


def test_checks_the_bounce_mailbox_too(settings, tmp_path):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(b"Subject: x\r\n\r\nx\r\n")
    settings.BROADSHEET = {
        **settings.BROADSHEET,
        "BOUNCE_MAILBOX": {"protocol": "maildir", "path": str(tmp_path / "bounces"), "kept": "Kept"},
    }

    out, error = run()

    assert error is None
    assert "bounce mailbox" in out and "1 message waiting" in out


def test_a_missing_bounce_mailbox_is_a_problem(settings, tmp_path):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    settings.BROADSHEET = {
        **settings.BROADSHEET,
        "BOUNCE_MAILBOX": {"protocol": "maildir", "path": str(tmp_path / "none"), "kept": "Kept"},
    }

    out, error = run()

    assert "not a Maildir" in out
    assert error == "1 problem found."
