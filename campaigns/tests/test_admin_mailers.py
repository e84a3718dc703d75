"""The admin's Mailers page: each mailer's limits, use and health, and the bounce mailbox; senders only."""

import datetime
import html
import mailbox
import socket
import time

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from django.utils import timezone

from campaigns.admin_views import MailerCheckView
from campaigns.bounces.processing import process_mailbox
from campaigns.models import Campaign, Delivery, SendWindow
from campaigns.sending import mailers, send_batch
from campaigns.sending.throttle import HOUR
from campaigns.sending.verp import return_path
from campaigns.tests import bounce_samples as samples
from campaigns.tests.factories import started_campaign
from campaigns.tests.fake_smtp import FakeSMTPServer
from subscribers.tests.factories import MailingListFactory

pytestmark = pytest.mark.django_db

LOCMEM = {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
URL = "/admin/campaigns/mailers/"


def field(section, name) -> str:
    element = section.select_one(f'[data-field="{name}"]')
    assert element is not None, f"no {name} on the page"
    return " ".join(element.get_text(" ").split())


def mailer_section(response, name):
    assert response.status_code == 200
    section = BeautifulSoup(response.content, "html.parser").select_one(f'[data-mailer="{name}"]')
    assert section is not None, f"mailer {name} is not shown"
    return section


@pytest.fixture
def two_mailers(settings):
    settings.MAILERS = {
        "default": LOCMEM,
        "gmail": {**LOCMEM, "LIMITS": {"per_second": 1, "per_hour": 100, "per_day": 500}, "FAILOVER": "default"},
    }


def sent_through(mailer, *, hours_ago, count):
    """``count`` messages counted in ``mailer``'s hourly window ``hours_ago`` hours back."""
    window = int(time.time() // HOUR) - hours_ago
    SendWindow.objects.create(mailer=mailer, period=HOUR, window=window, count=count)


def test_url_is_the_named_route():
    assert reverse("campaigns_admin:mailers") == URL


def test_a_sender_sees_limits_use_remaining_lists_and_health(client, sender, two_mailers):
    MailingListFactory(slug="weekly", name="Weekly", mailer="gmail")
    MailingListFactory(slug="daily", name="Daily")
    sent_through("gmail", hours_ago=0, count=40)
    sent_through("gmail", hours_ago=5, count=200)
    sent_through("gmail", hours_ago=30, count=999)  # older than the rolling day: not counted
    mailers.record_health("gmail", error="SMTP smtp.gmail.com:587: login refused (535 5.7.8)")
    mailers.record_health("default")
    client.force_login(sender)

    response = client.get(URL)

    gmail = mailer_section(response, "gmail")
    assert field(gmail, "limits") == "1 a second · 100 an hour · 500 a day (rolling 24 hours)"
    assert field(gmail, "this-hour") == "40"
    assert field(gmail, "last-day") == "240"
    assert field(gmail, "remaining-today") == "260"
    assert field(gmail, "failover") == "default"
    assert field(gmail, "lists") == "Weekly"
    assert "Problem" in field(gmail, "health")
    assert field(gmail, "error") == "SMTP smtp.gmail.com:587: login refused (535 5.7.8)"
    default = mailer_section(response, "default")
    assert field(default, "limits") == "none"
    assert "not counted" in field(default, "usage")
    assert field(default, "lists") == "Daily"
    assert "OK" in field(default, "health")


def test_a_spent_hourly_allowance_says_when_sending_resumes(client, sender, two_mailers):
    sent_through("gmail", hours_ago=0, count=100)
    client.force_login(sender)

    gmail = mailer_section(client.get(URL), "gmail")

    next_hour = datetime.datetime.fromtimestamp((int(time.time() // HOUR) + 1) * HOUR, tz=datetime.UTC)
    assert field(gmail, "blocked-until") == f"sending resumes at {timezone.localtime(next_hour):%Y-%m-%d %H:%M}"


def sending_through_gmail(issue_page, *specs) -> list[Campaign]:
    """Sending campaigns to a list on the gmail mailer, one per (minutes ago started, recipients, sent)."""
    weekly = MailingListFactory(slug="weekly", name="Weekly", mailer="gmail")
    campaigns = []
    for minutes, recipients, sent in specs:
        campaign = Campaign.objects.create(
            page=issue_page,
            status=Campaign.Status.SENDING,
            started_at=timezone.now() - datetime.timedelta(minutes=minutes),
            recipients=recipients,
            sent=sent,
        )
        campaign.lists.set([weekly])
        campaigns.append(campaign)
    return campaigns


def test_running_campaigns_show_remaining_and_expected_finish_over_days(client, sender, two_mailers, issue_page):
    first, second = sending_through_gmail(issue_page, (10, 700, 100), (5, 300, 0))
    client.force_login(sender)

    response = client.get(URL)

    rows = {int(row["data-campaign"]): row for row in mailer_section(response, "gmail").select("[data-campaign]")}
    assert field(rows[first.pk], "remaining") == "600"
    assert field(rows[second.pk], "remaining") == "300"
    finishes = {
        running.campaign.pk: running.expected_finish for row in response.context["mailers"] for running in row.campaigns
    }
    # 500 a day: the first campaign's 600 need a second day, the second waits behind it (900).
    assert datetime.timedelta(days=1) < finishes[first.pk] - timezone.now() < finishes[second.pk] - timezone.now()
    assert field(rows[first.pk], "expected-finish") == f"{timezone.localtime(finishes[first.pk]):%Y-%m-%d %H:%M}"


def test_a_campaign_waiting_for_its_relay_says_so(client, sender, two_mailers, issue_page):
    now = timezone.now()
    campaign = Campaign.objects.create(
        page=issue_page,
        status=Campaign.Status.SENDING,
        started_at=now,
        recipients=10,
        relay_failures=2,
        relay_down_since=now - datetime.timedelta(minutes=3),
        next_try_at=now + datetime.timedelta(minutes=1),
    )
    client.force_login(sender)

    default = mailer_section(client.get(URL), "default")

    assert field(default.select_one(f'[data-campaign="{campaign.pk}"]'), "waiting").startswith(
        "Waiting for the relay since"
    )


def test_an_editor_without_the_send_permission_is_refused_page_and_actions(client, editor, settings):
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        client.force_login(editor)

        page = client.get(URL)
        check = client.post(reverse("campaigns_admin:mailer_check", args=["default"]))

    assert page.status_code == 403 and "Can send campaigns" in page.text
    assert check.status_code == 403
    assert mailers.health("default") is None, "the refused check connected nowhere"
    index = client.get(reverse("wagtailadmin_home"))
    assert URL not in index.text


def test_the_campaigns_listing_links_to_the_mailers_page(client, sender):
    client.force_login(sender)

    assert f'href="{URL}"' in client.get(reverse("campaigns_admin:index")).text


def test_test_connection_reports_the_server_and_records_health(client, sender, settings):
    with FakeSMTPServer() as server:
        settings.MAILERS = server.mailers_setting()
        client.force_login(sender)
        response = client.post(reverse("campaigns_admin:mailer_check", args=["default"]), follow=True)

    message = [str(item) for item in response.context["messages"]]
    assert len(message) == 1 and f"connected to {server.host}:{server.port}" in message[0]
    assert "answered" in message[0]
    assert mailers.health("default")["ok"] is True
    assert "OK" in field(mailer_section(response, "default"), "health")


def test_test_connection_names_a_wrong_password(client, sender, settings):
    with FakeSMTPServer(auth=("news", "right")) as server:
        settings.MAILERS = server.mailers_setting()
        settings.MAILERS["default"]["OPTIONS"].update(username="news", password="wrong")
        client.force_login(sender)
        response = client.post(reverse("campaigns_admin:mailer_check", args=["default"]), follow=True)

    [message] = list(response.context["messages"])
    assert message.level_tag == "error"
    text = html.unescape(str(message))  # Wagtail escapes the message (a server's reply is outside text)
    assert "PROBLEM" in text and "wrong user name or password for 'news' (535" in text
    assert "wrong user name or password" in field(mailer_section(response, "default"), "error")


def test_test_connection_of_an_unknown_mailer_is_404(client, sender, two_mailers):
    client.force_login(sender)

    assert client.post(reverse("campaigns_admin:mailer_check", args=["hotmail"])).status_code == 404
    assert client.get(reverse("campaigns_admin:mailer_check", args=["gmail"])).status_code == 405


@pytest.fixture
def maildir(tmp_path, settings):
    path = tmp_path / "bounces"
    box = mailbox.Maildir(path, create=True)
    config = {"protocol": "maildir", "path": str(path), "kept": "Kept"}
    settings.BROADSHEET = {**settings.BROADSHEET, "BOUNCE_DOMAIN": "bounce.example.com", "BOUNCE_MAILBOX": config}
    return box


def test_bounce_mailbox_shows_last_read_kept_messages_and_what_it_applied(
    client, sender, maildir, issue_page, django_capture_on_commit_callbacks
):
    campaign = started_campaign(issue_page, 2, django_capture_on_commit_callbacks)
    send_batch(campaign.pk, worker_id="w1")
    for sample, email in ((samples.dsn, "reader1@example.com"), (samples.exim_mailbox_full, "reader0@example.com")):
        maildir.add(sample(email, to=return_path(Delivery.objects.get(email=email).pk)))
    maildir.add(samples.human_reply())
    maildir.add(samples.out_of_office())
    process_mailbox()
    client.force_login(sender)

    section = BeautifulSoup(client.get(URL).content, "html.parser").select_one("[data-mailbox]")

    assert field(section, "mailbox-where").startswith(f"maildir://{maildir._path}")
    assert field(section, "last-read") == f"{timezone.localtime():%Y-%m-%d %H:%M}"
    assert set(field(section, "last-read-kinds").split(", ")) == {"1 hard", "1 soft", "1 unknown", "1 auto-reply"}
    assert field(section, "kept") == "1"
    assert field(section, "applied") == "1 hard bounces, 1 soft bounces, 0 complaints"


def test_a_failed_read_is_shown_with_its_error(client, sender, maildir, settings, tmp_path):
    settings.BROADSHEET = {
        **settings.BROADSHEET,
        "BOUNCE_MAILBOX": {"protocol": "maildir", "path": str(tmp_path / "gone"), "kept": "Kept"},
    }
    with pytest.raises(Exception, match="not a Maildir"):
        process_mailbox()
    client.force_login(sender)

    section = BeautifulSoup(client.get(URL).content, "html.parser").select_one("[data-mailbox]")

    assert "Problem" in field(section, "last-read")
    assert field(section, "last-ok-read") == "never"
    assert "not a Maildir" in field(section, "mailbox-error")


def test_bounce_mailbox_test_connection_counts_waiting_messages(client, sender, maildir):
    maildir.add(samples.human_reply())
    client.force_login(sender)

    response = client.post(reverse("campaigns_admin:mailbox_check"), follow=True)

    [message] = [str(item) for item in response.context["messages"]]
    assert "answered" in message and "1 message waiting" in message


def test_without_a_bounce_mailbox_the_page_says_so_and_there_is_nothing_to_test(client, sender, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "BOUNCE_MAILBOX": None}
    client.force_login(sender)

    section = BeautifulSoup(client.get(URL).content, "html.parser").select_one("[data-mailbox]")

    assert "BOUNCE_MAILBOX_URL is not set" in field(section, "mailbox-where")
    assert client.post(reverse("campaigns_admin:mailbox_check")).status_code == 404


def test_the_campaign_page_links_to_its_mailers_limits_and_health(client, sender, two_mailers, issue_page):
    campaign = Campaign.objects.create(page=issue_page, status=Campaign.Status.SENDING, started_at=timezone.now())
    campaign.lists.set([MailingListFactory(slug="weekly", mailer="gmail")])
    client.force_login(sender)

    detail = BeautifulSoup(client.get(reverse("campaigns_admin:detail", args=[campaign.pk])).content, "html.parser")
    link = detail.find("a", string="limits and health")

    assert link["href"] == f"{URL}#mailer-gmail-section"
    assert BeautifulSoup(client.get(URL).content, "html.parser").select_one("#mailer-gmail-section [data-mailer=gmail]")


def test_test_connection_gives_up_on_a_silent_server_within_its_own_limit(client, sender, settings, monkeypatch):
    # A server that accepts the connection and never says a word; the mailer's own timeout is 30 s.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 30},
            }
        }
        monkeypatch.setattr(MailerCheckView, "timeout", 0.3)
        client.force_login(sender)
        response = client.post(reverse("campaigns_admin:mailer_check", args=["default"]), follow=True)

    [message] = [html.unescape(str(item)) for item in response.context["messages"]]
    assert f"no answer from 127.0.0.1:{port} within 0.3 s" in message


def test_the_campaign_page_expects_the_same_finish_as_the_mailers_page_behind_earlier_campaigns(
    client, sender, two_mailers, issue_page
):
    _first, second = sending_through_gmail(issue_page, (10, 600, 0), (5, 300, 0))
    client.force_login(sender)

    overview = client.get(URL).context["mailers"]
    expected = {running.campaign.pk: running.expected_finish for row in overview for running in row.campaigns}
    detail = client.get(reverse("campaigns_admin:detail", args=[second.pk]))

    # 500 a day: the second campaign's 300 go after the first's 600, on the second day (not in 3 hours).
    finish = detail.context["expected_finish"]
    assert finish - timezone.now() > datetime.timedelta(days=1)
    assert abs(finish - expected[second.pk]) < datetime.timedelta(minutes=1)
