"""check --deploy with the documented production environment, HSTS and the public pages' CSP."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
# The production environment of docs/security.md and .env.example (a long random SECRET_KEY).
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "newsletter_site.settings.production",
    "SECRET_KEY": "k7Qp2vXz9LmN4rT8wYb3Hc6Jd1Fg5Sa0Ue-Ri_Oy2Pw7Mq4Nt9Lx3Kz8Jv6Hb1Gc",
    "SUPPRESSION_KEY": "s3Vn8Qb1Xw6Lm2Rt9Yk4Hd7Jc0Fp5Ga-Ue_Oz1Pi8Mw3Nq6Ls9Kx2Jy7Hv4Gb",
    "ALLOWED_HOSTS": "news.example.com",
    "BASE_URL": "https://news.example.com",
    "DATABASE_URL": "postgres://broadsheet@localhost/broadsheet",
    "EMAIL_URL": "smtp://mail.example.com:587?tls=1",
    "ANYMAIL_WEBHOOK_SECRET": "hook-user:a-long-random-webhook-password",
}


def manage(*args, env=None):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "VAR_DIR": "/tmp/broadsheet-test-var", **PRODUCTION_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_hsts_is_on_by_default_and_can_be_lowered():
    show = "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS)"
    default = manage("shell", "-c", show)
    lowered = manage("shell", "-c", show, env={"SECURE_HSTS_SECONDS": "300", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "0"})

    assert default.stdout.splitlines()[-1].split() == ["31536000", "True"], default.stderr
    assert lowered.stdout.splitlines()[-1].split() == ["300", "False"], lowered.stderr


def test_turning_hsts_off_is_flagged_by_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={"SECURE_HSTS_SECONDS": "0"})

    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


@pytest.mark.django_db
def test_public_pages_carry_a_strict_content_security_policy(issue_page):
    for path in ["/", issue_page.url, "/newsletter/preferences/bad-token/"]:
        policy = Client().get(path).headers.get("Content-Security-Policy", "")

        assert "default-src 'self'" in policy, path
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "object-src 'none'" in policy and "frame-ancestors 'self'" in policy


@pytest.mark.django_db
def test_the_admins_are_left_without_the_public_policy(admin_client):
    for path in ["/admin/", "/django-admin/"]:
        response = admin_client.get(path)

        assert response.status_code == 200
        assert "Content-Security-Policy" not in response.headers
