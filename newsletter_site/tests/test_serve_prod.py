"""`make serve-prod` (gunicorn, production settings, manifest static files) in a real browser:
the visitor's subscribe-and-confirm journey on the production path, mail read from the outbox."""

import email
import email.policy
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from newsletter_site.tests.browser import BrowserProblems, axe_violations, new_checked_page

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process, timeout: float = 420) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make serve-prod stopped with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback server
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"make serve-prod did not answer at {url} within {timeout} s")


@pytest.fixture(scope="module")
def serve_prod(tmp_path_factory):
    """`make serve-prod` on a free loopback port with its own var/ (database, outbox, static)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    var = tmp_path_factory.mktemp("serve-prod-var")
    port = free_port()
    dropped = (
        "DATABASE_URL",
        "REDIS_URL",
        "BASE_URL",
        "DJANGO_SETTINGS_MODULE",
        "EMAIL_URL",
        "TASKS_URL",
        "SECRET_KEY",
    )
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    # A known key, so the management command below signs links the server accepts.
    env.update(VAR_DIR=str(var), ENV_FILE="/dev/null", SECRET_KEY="serve-prod-test-key-" + "x" * 40)
    log = (var / "serve-prod.log").open("w")
    process = subprocess.Popen(
        ["make", "serve-prod", f"PORT={port}", "HOST=127.0.0.1", "ENV_FILE=/dev/null"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: gunicorn's workers stop with it
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url + "/", process)
        yield base_url, var, env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def manage(base_url: str, var: Path, env: dict, *args: str) -> str:
    """Run a management command with the settings `make serve-prod` gave the server."""
    production = {
        **env,
        "DJANGO_SETTINGS_MODULE": "newsletter_site.settings.production",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BASE_URL": base_url,
        "DATABASE_URL": f"sqlite:///{var}/db.sqlite3",
        "EMAIL_URL": "outbox://",
        "TASKS_URL": "immediate://",
    }
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", *args],
        cwd=ROOT,
        env=production,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def outbox_link(var: Path, pattern: str, to: str = "", newsletter: bool = False) -> str:
    """The first link matching ``pattern`` in the HTML part of a message (to ``to``; a newsletter,
    with List-Unsubscribe, if asked) in the outbox Maildir."""
    for path in sorted((var / "outbox" / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to not in str(message["To"]) or (newsletter and not message["List-Unsubscribe"]):
            continue
        html = message.get_body(preferencelist=("html",)).get_content()
        if match := re.search(rf'href="([^"]*{pattern}[^"]*)"', html):
            return match.group(1)
    raise AssertionError(f"no message in the outbox links to {pattern}")


def test_visitor_journey_on_gunicorn_with_the_production_settings(browser, serve_prod):
    base_url, var, env = serve_prod
    problems = BrowserProblems()
    context, page = new_checked_page(browser, base_url, problems)
    try:
        page.goto("/")
        # Manifest storage: the stylesheet under its hashed name, served by whitenoise.
        stylesheet = page.locator('link[rel="stylesheet"]').get_attribute("href")
        assert re.fullmatch(r"/static/broadsheet/site\.[0-9a-f]{12}\.css", stylesheet)
        assert "Georgia" in page.evaluate("getComputedStyle(document.body).fontFamily")

        form = page.locator(".home-subscribe_form form")
        form.get_by_label("Email address").fill("prod.reader@example.org")
        form.get_by_role("button", name="Subscribe").click()
        page.wait_for_url("**/subscribe/?sent=1")

        confirm = outbox_link(var, "/newsletter/confirm/")
        assert confirm.startswith(base_url + "/")  # BASE_URL follows the port served
        page.goto(confirm)
        page.get_by_role("button", name="Confirm").click()
        page.get_by_role("heading", name="You are subscribed").wait_for()

        page.get_by_role("link", name="preferences").click()
        page.get_by_label("Culture desk").check()
        page.get_by_role("button", name="Save preferences").click()
        page.get_by_text("Your preferences have been saved.").wait_for()

        page.goto("/archive/issue-1-the-return-of-print/")
        assert page.locator(".issue__hero img").evaluate("img => img.complete && img.naturalWidth > 0")
        assert axe_violations(page) == []

        # An issue really sent on this install (one reader on a list of their own), then left
        # from the link in that email.
        manage(
            base_url,
            var,
            env,
            "shell",
            "-c",
            "from subscribers.models import *; from subscribers.tests.factories import SubscriptionFactory; "
            "m = MailingList.objects.create(name='Prod test', slug='prod-test'); "
            "SubscriptionFactory(list=m, subscriber=Subscriber.objects.get(email='prod.reader@example.org'))",
        )
        manage(base_url, var, env, "send_campaign", "issue-1-the-return-of-print", "--lists", "prod-test")
        page.goto(outbox_link(var, "/newsletter/unsubscribe/", to="prod.reader@example.org", newsletter=True))
        page.get_by_role("button", name="Unsubscribe").click()
        page.get_by_role("heading", name="You have been unsubscribed").wait_for()
    finally:
        context.close()
    problems.check()
