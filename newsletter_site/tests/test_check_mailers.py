"""manage.py check_mailers: connects to every mailer and the bounce mailbox, says what is wrong."""

import io
import mailbox
import os
import subprocess
import sys

import pytest
from django.conf import settings
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


def run_manage_py(email_url: str) -> subprocess.CompletedProcess:
    """``manage.py check_mailers`` as an operator runs it: its own process, settings from the environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("EMAIL_URL", "BOUNCE_"))}
    env.update(DJANGO_SETTINGS_MODULE="newsletter_site.settings.test", EMAIL_URL=email_url, NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "manage.py", "check_mailers"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_wrong_password_is_named_and_the_command_exits_non_zero():
    with FakeSMTPServer(auth=("news", "right")) as server:
        wrong = run_manage_py(f"smtp://news:wrong@{server.host}:{server.port}")
        right = run_manage_py(f"smtp://news:right@{server.host}:{server.port}")

    assert wrong.returncode != 0
    assert "mailer default: smtp://news@" in wrong.stdout and "[PROBLEM]" in wrong.stdout
    assert "wrong user name or password for 'news' (535 5.7.8 Authentication credentials invalid)" in wrong.stdout
    assert "1 problem found." in wrong.stderr
    # The same server with the right password: logged in, exit 0 (the failure above is the password's).
    assert right.returncode == 0, right.stdout + right.stderr
    assert "logged in as news" in right.stdout and "wrong user name" not in right.stdout


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (
            "534 5.7.9 Application-specific password required",
            "the server wants an app password for 'news', not the account password (534 5.7.9",
        ),
        ("454 4.7.0 Temporary authentication failure", "could not check the login of 'news' right now (454 4.7.0"),
    ],
    ids=["gmail-app-password", "temporary"],
)
def test_other_login_refusals_are_not_called_a_wrong_password(settings, reply, said):
    with FakeSMTPServer(auth=("news", "right")) as server:
        server.auth_failure = reply
        settings.MAILERS = server.mailers_setting()
        settings.MAILERS["default"]["OPTIONS"].update(username="news", password="account-password")
        out, error = run()

    assert said in out
    assert "wrong user name or password" not in out
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
