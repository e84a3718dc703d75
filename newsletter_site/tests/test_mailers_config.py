"""MAILERS from EMAIL_URL and EMAIL_URL_<NAME>: limits and failover in the URL, bad values named."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from newsletter_site.config import mailers_from_env

OUTBOX = Path("/tmp/outbox")


def test_default_only():
    mailers = mailers_from_env(OUTBOX, {})

    assert list(mailers) == ["default"]
    assert mailers["default"]["BACKEND"] == "newsletter_site.outbox.OutboxBackend"
    assert mailers["default"]["LIMITS"] == {"per_second": 0, "per_hour": 0, "per_day": 0}


def test_named_mailers_with_limits_and_failover():
    env = {
        "EMAIL_URL": "smtp://relay.example.com:25?failover=gmail",
        "EMAIL_URL_GMAIL": "smtp://me%40gmail.com:app-pass@smtp.gmail.com:587?tls=1&per_day=500&per_second=1",
        "EMAIL_URL_QQ": "smtps://me%40qq.com:auth-code@smtp.qq.com:465?per_hour=100",
    }

    mailers = mailers_from_env(OUTBOX, env)

    assert sorted(mailers) == ["default", "gmail", "qq"]
    assert mailers["default"]["FAILOVER"] == "gmail"
    assert mailers["gmail"]["OPTIONS"]["username"] == "me@gmail.com"
    assert mailers["gmail"]["LIMITS"] == {"per_second": 1, "per_hour": 0, "per_day": 500}
    assert mailers["qq"]["LIMITS"]["per_hour"] == 100
    assert "per_day" not in mailers["gmail"]["OPTIONS"], "Django's backend must not get our keys"


def test_default_mailer_takes_the_send_rate_variables():
    mailers = mailers_from_env(OUTBOX, {"SEND_RATE_PER_DAY": "2000", "SEND_RATE_PER_SECOND": "5"})

    assert mailers["default"]["LIMITS"] == {"per_second": 5, "per_hour": 0, "per_day": 2000}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EMAIL_URL": "smtp://h?failover=nope"}, "EMAIL_URL: failover='nope' must name another mailer"),
        ({"EMAIL_URL_A": "smtp://h?failover=a"}, "EMAIL_URL_A: failover='a' must name another mailer"),
        ({"EMAIL_URL_GMAIL": "smtp://h?per_day=lots"}, "EMAIL_URL_GMAIL=.*per_day='lots' is not a number"),
        ({"EMAIL_URL_GMAIL": "smtp://h?per_day=-1"}, "must not be negative"),
        ({"EMAIL_URL_GMAIL": ""}, "EMAIL_URL_GMAIL is empty"),
        ({"EMAIL_URL_DEFAULT": "smtp://h"}, "EMAIL_URL_DEFAULT"),
        ({"EMAIL_URL_BAD-NAME": "smtp://h"}, "EMAIL_URL_BAD-NAME"),
        ({"EMAIL_URL_X": "ftp://h"}, "EMAIL_URL_X=.*unknown scheme"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        mailers_from_env(OUTBOX, env)
