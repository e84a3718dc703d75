"""The editor's day in a real browser, failing on any console error or failed request (``page``).

An editor logs in, writes an issue (heading, rich text with a link, an image), previews it as web
page, email and plain text, publishes it, sends a test, schedules it with the date picker (and
cancels that), sends it to a list and watches the campaign page reach "Sent" while a live database
worker sends it, then opens the report. With SCREENSHOTS=1 (`make screenshots`) it writes the
README's screenshots (docs/screenshots/) on the way, of a campaign really sent by the worker; off
by default, so `make test` never changes tracked files.
"""

import os
import re
import threading
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection
from django_tasks_db.management.commands.db_worker import Worker
from playwright.sync_api import expect

from campaigns.models import Campaign, NewsletterIssuePage
from newsletter_site.tests.browser import DESKTOP
from subscribers.models import MailingList
from subscribers.tests.factories import SubscriberFactory, SubscriptionFactory

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "campaigns"]}}
READERS = 12


class LiveWorker:
    """django-tasks-db's own worker loop in a thread: what `manage.py worker` runs, polling every 0.2 s."""

    def __init__(self):
        self.worker = Worker(
            queue_names=DB_TASKS["default"]["QUEUES"],
            interval=0.2,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="journey-worker",
        )
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.worker.run()
        except Exception as error:  # reported by stop(): a thread cannot fail the test itself
            self.errors.append(error)
        finally:
            connection.close()

    def start(self):
        self.thread.start()

    def stop(self):
        self.worker.running = False
        self.thread.join(timeout=30)
        assert self.errors == []


def shoot(page, name):
    if os.environ.get("SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def add_block(page, name):
    page.locator("#body-root button[title='Insert a block']").last.click()
    page.get_by_role("option", name=name, exact=True).click()


def write_issue(page, archive):
    page.goto(f"/admin/pages/add/campaigns/newsletterissuepage/{archive.pk}/")
    page.fill("#id_title", "Issue 4: The journey")
    page.fill("#id_subject", "The journey: an issue written in a browser")
    add_block(page, "Heading")
    page.fill("#body-0-value-text", "Written in a real browser")
    add_block(page, "Paragraph")
    editor = page.locator("#body-1-value").locator("xpath=..").locator("[contenteditable=true]")
    editor.click()
    page.keyboard.type("Read the whole story today.")
    # Select "story" and link it (Ctrl+K opens Wagtail's link chooser).
    page.keyboard.press("Home")
    for _ in range(15):
        page.keyboard.press("ArrowRight")
    page.keyboard.down("Shift")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.up("Shift")
    page.keyboard.press("Control+k")
    page.get_by_role("link", name="External link").click()
    page.fill("#id_external-link-chooser-url", "https://example.org/story")
    page.locator(".modal").get_by_role("button", name="Insert link").click()
    editor.locator("a").first.wait_for()
    add_block(page, "Image")
    page.locator("#body-2-value-image").locator("xpath=..").get_by_role("button", name="Choose an image").click()
    page.locator(".modal a.image-choice, .modal [data-chooser-modal-choice]").first.click()
    page.locator("#body-2-value-alt_text").wait_for()
    page.fill("#body-2-value-alt_text", "A printing press")


def preview_all_modes(page):
    """The preview panel in its three modes; Wagtail swaps the iframe on each refresh, so the
    assertions re-resolve it until the mode's content shows."""
    page.locator("[data-side-panel-toggle='preview']").click()
    shown = page.frame_locator("#w-preview-iframe").locator("body")
    expect(shown).to_contain_text("Written in a real browser", timeout=20_000)
    modes = page.locator("select[data-w-preview-target='mode'], #id_preview_mode")
    modes.select_option("email")
    expect(shown).to_contain_text("You are receiving The Broadsheet at sample.reader@example.com", timeout=20_000)
    modes.select_option("text")
    expect(shown).to_contain_text("story (https://example.org/story)", timeout=20_000)
    modes.select_option("")
    expect(shown).not_to_contain_text("You are receiving", timeout=20_000)
    page.locator("[data-side-panel-toggle='preview']").click()


def test_editor_writes_previews_tests_schedules_sends_and_reads_the_report(page, public_site, mailoutbox, settings):
    settings.TASKS = DB_TASKS  # campaigns wait for the live worker below, as under `make run`
    broadsheet = MailingList.objects.get(slug="broadsheet")
    for n in range(READERS):
        SubscriptionFactory(list=broadsheet, subscriber=SubscriberFactory(email=f"reader{n}@example.org"))
    get_user_model().objects.create_superuser("editor", "editor@example.org", "a long journey password")
    archive = NewsletterIssuePage.objects.live().first().get_parent()
    page.set_viewport_size(DESKTOP)

    page.goto("/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "a long journey password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")

    write_issue(page, archive)
    preview_all_modes(page)
    page.get_by_role("button", name="More actions").click()
    page.get_by_role("button", name="Publish").click()
    message = page.locator(".messages")
    message.get_by_role("link", name="Send as newsletter").click()

    # A test first.
    page.fill("#id_test_addresses", "proofs@example.org")
    page.get_by_role("button", name="Send test").click()
    page.get_by_text("Test sent to proofs@example.org").wait_for()
    assert any("proofs@example.org" in m.to[0] for m in mailoutbox)

    # Scheduling: "Send at" appears only when chosen, and its date picker opens.
    send_at = page.locator("#id_send_at")
    assert not send_at.is_visible()
    page.get_by_label("Schedule for a date and time").check()
    send_at.click()
    picker = page.locator(".xdsoft_datetimepicker").filter(has=page.locator(".xdsoft_calendar")).first
    picker.wait_for()
    picker.locator(".xdsoft_next").first.click()
    picker.locator("td.xdsoft_date:not(.xdsoft_other_month)[data-date='15']").click()
    assert re.match(r"\d{4}-\d{2}-15 \d{2}:\d{2}", send_at.input_value())
    page.get_by_role("button", name="Review and send").click()
    page.get_by_role("button", name=re.compile(r"Schedule for \d+ recipients")).click()
    page.wait_for_url(re.compile(r"/admin/campaigns/\d+/$"))
    scheduled = Campaign.objects.get(status=Campaign.Status.SCHEDULED)
    page.get_by_role("button", name="Cancel campaign").click()
    page.get_by_text("The campaign is cancelled").wait_for()

    # Sending now, from the Campaigns listing's "New campaign".
    page.goto("/admin/campaigns/")
    page.get_by_role("link", name="New campaign").click()
    page.get_by_role("link", name="Send as newsletter").first.click()
    page.get_by_role("button", name="Review and send").click()
    page.get_by_role("button", name=re.compile(rf"Send to {READERS} recipients now")).click()
    page.wait_for_url(re.compile(r"/admin/campaigns/\d+/$"))
    campaign = Campaign.objects.exclude(pk=scheduled.pk).get()
    assert campaign.status == Campaign.Status.SENDING  # nothing sent until a worker runs
    shoot(page, "campaign-sending.png")

    worker = LiveWorker()
    worker.start()
    try:
        # progress.js polls, then reloads the page at the end: everything shows the end state.
        page.locator(".campaign-facts [data-fact='finished']").wait_for(timeout=60_000)
    finally:
        worker.stop()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent) == (Campaign.Status.SENT, READERS)
    assert page.locator("[data-field='status_label']").inner_text().strip().lower() == "sent"
    assert page.locator("[data-figure='average_rate']").is_visible()
    assert page.locator(".campaign-deliveries").get_by_text("Queued").count() == 0
    shoot(page, "campaign-sent.png")
    delivered = [m for m in mailoutbox if m.subject.startswith("The journey") and "[TEST]" not in m.subject]
    assert len(delivered) == READERS
    html = delivered[0].alternatives[0][0]
    assert 'href="https://example.org/story"' in html and "A printing press" in html

    page.get_by_role("link", name="Report").click()
    page.get_by_text("Not tracked: turn on TRACK_OPENS").wait_for()
    shoot(page, "campaign-report.png")

    page.goto("/admin/")
    panel = page.locator(".campaign-dashboard")
    expect(panel).to_contain_text("Issue 4: The journey")
    if os.environ.get("SCREENSHOTS") == "1":
        panel.screenshot(path=str(SCREENSHOTS / "dashboard-panel.png"))
