"""Environment parsing: good values become settings, bad ones stop start-up naming the variable."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from newsletter_site import config

ROOT = Path(__file__).resolve().parents[2]
OUTBOX = Path("/tmp/outbox")


def test_smtp_url_with_starttls_and_credentials():
    mailer = config.mailer_from_url("EMAIL_URL", "smtp://user%40x:p%3Ass@smtp.example.com:587?tls=1", OUTBOX)
    assert mailer["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert mailer["OPTIONS"] == {
        "host": "smtp.example.com",
        "port": 587,
        "username": "user@x",
        "password": "p:ss",
        "use_tls": True,
        "use_ssl": False,
        "timeout": 30,
    }


def test_smtps_url_defaults_to_port_465_with_ssl():
    options = config.mailer_from_url("EMAIL_URL", "smtps://u:p@mail.example.com", OUTBOX)["OPTIONS"]
    assert (options["port"], options["use_ssl"], options["use_tls"]) == (465, True, False)


def test_plain_smtp_without_port_uses_25():
    assert config.mailer_from_url("EMAIL_URL", "smtp://localhost", OUTBOX)["OPTIONS"]["port"] == 25


def test_outbox_url_defaults_to_var_outbox_and_accepts_a_path():
    assert config.mailer_from_url("EMAIL_URL", "outbox://", OUTBOX)["OPTIONS"]["directory"] == str(OUTBOX)
    assert config.mailer_from_url("EMAIL_URL", "outbox:///srv/mail", OUTBOX)["OPTIONS"]["directory"] == "/srv/mail"


def test_console_and_anymail_urls():
    assert config.mailer_from_url("EMAIL_URL", "console://", OUTBOX)["BACKEND"].endswith("console.EmailBackend")
    assert config.mailer_from_url("EMAIL_URL", "anymail://postmark", OUTBOX)["BACKEND"] == (
        "anymail.backends.postmark.EmailBackend"
    )


def test_anymail_settings_read_the_esp_key_and_api_url_from_the_environment():
    mailer = config.mailer_from_url("EMAIL_URL", "anymail://mailgun", OUTBOX)
    env = {"MAILGUN_API_KEY": "key-123", "ANYMAIL_API_URL": "http://127.0.0.1:9999/v3", "ANYMAIL_WEBHOOK_SECRET": "a:b"}
    assert config.anymail_settings(mailer, env) == {
        "MAILGUN_API_KEY": "key-123",
        "MAILGUN_API_URL": "http://127.0.0.1:9999/v3",
        "WEBHOOK_SECRET": "a:b",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://host", "unknown scheme 'ftp'"),
        ("smtp://", "needs a host"),
        ("smtp://host:notaport", "not a valid URL"),
        ("smtps://host?tls=1", "not both"),
        ("smtp://host?tls=maybe", "not a boolean"),
        ("anymail://nosuchesp", "unknown anymail ESP"),
    ],
)
def test_bad_email_urls_name_the_variable(value, message):
    with pytest.raises(ImproperlyConfigured) as error:
        config.mailer_from_url("EMAIL_URL", value, OUTBOX)
    assert str(error.value).startswith("EMAIL_URL=")
    assert message in str(error.value)


def test_tasks_url_selects_backend():
    assert config.tasks_from_url("TASKS_URL", "db://", None)["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    assert config.tasks_from_url("TASKS_URL", "rq://", "redis://h:6379/0")["default"]["BACKEND"] == (
        "django_tasks_rq.RQBackend"
    )


def test_rq_tasks_without_redis_url_is_refused():
    with pytest.raises(ImproperlyConfigured, match=r"TASKS_URL='rq://' needs REDIS_URL"):
        config.tasks_from_url("TASKS_URL", "rq://", "")


def test_unknown_tasks_scheme_is_refused():
    with pytest.raises(ImproperlyConfigured, match=r"TASKS_URL='celery://'"):
        config.tasks_from_url("TASKS_URL", "celery://", None)


def test_database_url_default_is_a_sqlite_file_and_postgres_is_parsed(tmp_path):
    sqlite = config.database_from_env("DATABASE_URL", tmp_path / "db.sqlite3", env={})
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3"
    assert sqlite["NAME"] == str(tmp_path / "db.sqlite3")
    pg = config.database_from_env("DATABASE_URL", tmp_path / "x", env={"DATABASE_URL": "postgres://u:p@db:5432/news"})
    assert (pg["ENGINE"], pg["HOST"], pg["NAME"], pg["USER"]) == ("django.db.backends.postgresql", "db", "news", "u")


def test_postgresql_connections_persist_between_requests_unless_told_otherwise(tmp_path):
    url = {"DATABASE_URL": "postgres://u:p@db:5432/news"}
    pg = config.database_from_env("DATABASE_URL", tmp_path / "x", env=url)
    assert (pg["CONN_MAX_AGE"], pg["CONN_HEALTH_CHECKS"]) == (600, True)
    once = config.database_from_env("DATABASE_URL", tmp_path / "x", env={**url, "DATABASE_CONN_MAX_AGE": "0"})
    assert once["CONN_MAX_AGE"] == 0
    assert config.database_from_env("DATABASE_URL", tmp_path / "db.sqlite3", env={})["CONN_MAX_AGE"] == 0


def test_malformed_database_url_names_the_variable(tmp_path):
    with pytest.raises(ImproperlyConfigured, match=r"^DATABASE_URL="):
        config.database_from_env("DATABASE_URL", tmp_path / "x", env={"DATABASE_URL": "nosuch://x"})


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("off", False), ("0", False)])
def test_booleans(raw, expected):
    assert config.env_bool("DEBUG", env={"DEBUG": raw}) is expected


def test_bad_boolean_and_number_name_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"^DEBUG='perhaps'"):
        config.env_bool("DEBUG", env={"DEBUG": "perhaps"})
    with pytest.raises(ImproperlyConfigured, match=r"^SEND_BATCH_SIZE='ten'"):
        config.env_int("SEND_BATCH_SIZE", 500, env={"SEND_BATCH_SIZE": "ten"})
    with pytest.raises(ImproperlyConfigured, match=r"^SEND_BATCH_SIZE=0 must be at least 1"):
        config.env_int("SEND_BATCH_SIZE", 500, env={"SEND_BATCH_SIZE": "0"}, minimum=1)


def _boot(settings_module, env):
    """Import a settings module in a fresh interpreter, as start-up would."""
    return subprocess.run(
        [sys.executable, "-c", f"import {settings_module}"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "VAR_DIR": "/tmp/broadsheet-test-var", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_secret_key():
    result = _boot("newsletter_site.settings.production", {"ALLOWED_HOSTS": "news.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_starts_with_its_required_variables():
    env = {
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "news.example.com",
        "BASE_URL": "https://news.example.com",
        "DATABASE_URL": "postgres://u@localhost/news",
        "EMAIL_URL": "smtp://mail.example.com:587?tls=1",
    }
    result = _boot("newsletter_site.settings.production", env)
    assert result.returncode == 0, result.stderr


PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 50,
    "ALLOWED_HOSTS": "news.example.com",
    "DATABASE_URL": "postgres://u@localhost/news",
    "EMAIL_URL": "smtp://mail.example.com:587?tls=1",
}


def test_production_refuses_a_plain_http_base_url():
    result = _boot("newsletter_site.settings.production", {**PRODUCTION_ENV, "BASE_URL": "http://news.example.com"})
    assert result.returncode != 0
    assert "BASE_URL must be https://" in result.stderr


def test_production_accepts_plain_http_on_loopback_only_for_make_serve_prod():
    result = _boot("newsletter_site.settings.production", {**PRODUCTION_ENV, "BASE_URL": "http://127.0.0.1:8142"})
    assert result.returncode == 0, result.stderr


def test_bad_email_url_stops_start_up_naming_the_variable():
    result = _boot("newsletter_site.settings.dev", {"EMAIL_URL": "carrier-pigeon://coop"})
    assert result.returncode != 0
    assert "EMAIL_URL='carrier-pigeon://coop'" in result.stderr


def test_choice_settings_refuse_unknown_values():
    assert config.env_choice("NOTIFY_STAFF_MODE", "each", ["each", "daily"], env={}) == "each"
    with pytest.raises(ImproperlyConfigured, match=r"^NOTIFY_STAFF_MODE='weekly': choose one of each, daily"):
        config.env_choice("NOTIFY_STAFF_MODE", "each", ["each", "daily"], env={"NOTIFY_STAFF_MODE": "weekly"})
