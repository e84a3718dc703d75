"""Real-browser test fixtures (Playwright for Python driving Debian's Chromium), shared by every app.

Loaded as a pytest plugin by the root ``conftest.py``. The API is three fixtures:

- ``page``: a fresh Playwright page on a live Django server (``live_server``, so the test runs
  against a transactional database). ``page.goto("/archive/")`` works: URLs are relative to the
  server. The test FAILS at teardown if the page logged a console error, threw an uncaught
  exception, or any request failed or answered 4xx/5xx. A test that expects one calls
  ``browser_problems.allow(...)`` first.
- ``browser_problems``: what went wrong on ``page`` so far (``.allow(substring)`` to accept a
  known URL or message, ``.problems`` to read them, ``.check()`` to assert none now).
- ``public_site``: the demo site's pages, lists and settings (no subscribers), on the live server.
- ``axe_violations(page)``: axe-core's serious and critical WCAG 2.1 AA findings on a page.
- ``browser``: the session's Chromium, for tests that need another context (another viewport,
  another server such as ``make serve-prod``); use ``new_checked_page(browser, base_url)``.
- ``save_screenshot(page_or_locator, name)``: the README's pictures (docs/screenshots/NAME), taken
  by the journeys themselves only when ``SCREENSHOTS=1`` (``make screenshots``); otherwise
  nothing is written, so ``make test`` never changes tracked files.

Tests using ``page`` or ``browser`` get the ``browser`` marker (``pytest -m browser`` runs them,
``-m "not browser"`` skips them). They skip, with the reason, only when Chromium is missing
(``CHROMIUM`` names another binary) or the ``playwright`` package is not installed; ``.ci/run``
installs Debian's ``chromium``. Playwright never downloads a browser here: we launch the system
binary through ``executable_path``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.core.servers.basehttp import WSGIServer

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
AXE_SCRIPT = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Fixtures whose users are browser tests (get the marker).
BROWSER_FIXTURES = {"browser", "page", "browser_problems"}


def chromium_path() -> str | None:
    """The Chromium binary to drive: $CHROMIUM, else Debian's /usr/bin/chromium, else on PATH."""
    candidate = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    if Path(candidate).is_file() and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserProblems:
    """Collects console errors, page errors, failed requests and error responses of one page."""

    def __init__(self):
        self.problems: list[str] = []
        self._allowed: list[str] = []

    def allow(self, substring: str) -> None:
        """Accept problems whose text contains ``substring`` (a URL part, a status, a message)."""
        self._allowed.append(substring)

    def record(self, text: str) -> None:
        self.problems.append(text)

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(a in p for a in self._allowed)]

    def check(self) -> None:
        unexpected = self.unexpected()
        assert not unexpected, "The browser reported problems:\n  " + "\n  ".join(unexpected)

    def watch(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.record(f"uncaught exception: {error}"))
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.record(f"console error: {message.text} at {message.location.get('url', '')}")

    def _on_request_failed(self, request) -> None:
        # ERR_ABORTED: the page navigated away first (a favicon still loading); nothing failed.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.record(f"request failed: {request.url} ({request.failure})")

    def _on_response(self, response) -> None:
        if response.status >= 400:
            self.record(f"HTTP {response.status} for {response.url}")


def new_checked_page(browser, base_url: str, problems: BrowserProblems | None = None, viewport=None):
    """A page in a new context on ``base_url`` whose problems go to ``problems``. Returns (context, page)."""
    context = browser.new_context(base_url=base_url, viewport=viewport or PHONE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    if problems is not None:
        problems.watch(page)
    return context, page


def screenshots_wanted() -> bool:
    return os.environ.get("SCREENSHOTS") == "1"


def save_screenshot(target, name: str) -> Path | None:
    """Save ``target`` (a page, whole length, or a locator) as docs/screenshots/``name`` when
    SCREENSHOTS=1; returns the path written, or None when screenshots were not asked for."""
    if not screenshots_wanted():
        return None
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / name
    if hasattr(target, "goto"):  # a Page: the whole page, not only the viewport
        target.screenshot(path=str(path), full_page=True, animations="disabled")
    else:
        target.screenshot(path=str(path), animations="disabled")
    return path


def axe_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations of ``impacts`` on the page now shown, one line each.

    axe is added through the DevTools protocol (not a <script> the page's CSP would refuse).
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT.read_text())
    results = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
    )
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(str(n['target']) for n in v['nodes'][:3])}"
        for v in results["violations"]
        if v["impact"] in impacts
    ]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser(django_db_setup):
    """The session's headless Chromium (Debian's), or a skip saying why there is none."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium, or set CHROMIUM=/path/to/chromium)")
    # Playwright's sync API keeps an asyncio loop running in this thread, which makes Django
    # refuse ORM calls from the test body ("SynchronousOnlyOperation"). The tests are sync code
    # that only waits on the browser, so the guard does not apply.
    # That running loop also makes Django keep its database connections per context instead of
    # per thread (asgiref's Local), so the test body gets new connection objects: hand them the
    # migrated state pytest-django serialised on the old ones, or serialized rollback restores nothing.
    from django.db import connections

    serialized = {alias: getattr(connections[alias], "_test_serialized_contents", None) for alias in connections}
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            for alias, contents in serialized.items():
                if contents is not None:
                    connections[alias]._test_serialized_contents = contents
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class SerialWSGIServer(WSGIServer):
    """Django's development WSGI server answering one request at a time, for the live server.

    The test database is SQLite in memory, which the live server shares with the test as ONE
    connection object (``connections_override``). Django's default threaded live server hands
    that connection to a thread per request, and a browser sends several requests at once (the
    admin's preview panel posts the form while the previous preview still loads, the editing
    session pings, static files): two transactions interleave on one connection and fail ("no
    such savepoint", an HTML error page where JSON was expected). One request at a time is what
    that connection allows; requests are not lost, they wait in the listen queue, and Django
    closes each connection after its response (no keep-alive without threads).
    """

    def __init__(self, *args, connections_override=None, **kwargs):
        # The server thread itself runs every request, and LiveServerThread.run() already
        # installed the shared connections in that thread.
        super().__init__(*args, **kwargs)


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, answering one request at a time (SerialWSGIServer)."""
    from pytest_django.live_server_helper import LiveServer

    address = request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost"
    server = LiveServer(address, start=False)
    server.thread.server_class = SerialWSGIServer
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser_problems():
    return BrowserProblems()


@pytest.fixture
def live_site_settings(live_server, settings, tmp_path, django_db_serialized_rollback):
    """Settings for a site a browser really uses: links to the live server, uploads on disk and served.

    ``BASE_URL`` is the live server, so links in emails (confirm, unsubscribe, preferences) open in
    the browser; uploaded images go to a temporary MEDIA_ROOT that the live server serves. The
    database is transactional (the server runs in another thread) and restored to what migrations
    left (Wagtail's root page, locale, collection) before each test.
    """
    settings.BASE_URL = live_server.url
    settings.WAGTAILADMIN_BASE_URL = live_server.url
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SERVE_MEDIA = True
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return settings


@pytest.fixture
def public_site(live_site_settings):
    """The demo site without its subscribers: home, archive, three illustrated issues, the subscribe
    page, two public lists ("The Broadsheet" and "Culture desk") and the newsletter settings.
    Returns the HomePage."""
    from newsletter_site import demo

    home = demo.ensure_site()
    lists = demo.ensure_lists()
    demo.ensure_settings(home, lists)
    demo.ensure_subscribe_page(home)
    demo.ensure_issues(home)
    return home


@pytest.fixture
def page(browser, live_site_settings, live_server, browser_problems):
    """A 375 px wide page on the live server; the test fails on any console error or failed request.

    ``page.set_viewport_size(DESKTOP)`` for a wide screen.
    """
    context, browser_page = new_checked_page(browser, live_server.url, browser_problems)
    yield browser_page
    context.close()
    browser_problems.check()
