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
    env.update(VAR_DIR=str(var), ENV_FILE="/dev/null")
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
        yield base_url, var
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def outbox_link(var: Path, pattern: str) -> str:
    """The first link matching ``pattern`` in the HTML part of a message in the outbox Maildir."""
    for path in sorted((var / "outbox" / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = message.get_body(preferencelist=("html",)).get_content()
        if match := re.search(rf'href="([^"]*{pattern}[^"]*)"', html):
            return match.group(1)
    raise AssertionError(f"no message in the outbox links to {pattern}")


def test_visitor_journey_on_gunicorn_with_the_production_settings(browser, serve_prod):
    base_url, var = serve_prod
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

        page.goto("/archive/issue-1-the-return-of-print/")
        assert page.locator(".issue__hero img").evaluate("img => img.complete && img.naturalWidth > 0")
        assert axe_violations(page) == []
    finally:
        context.close()
    problems.check()
