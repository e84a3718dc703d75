"""The Campaigns admin: listing, live progress, controls, deliveries, report, dashboard panel."""

import datetime
import uuid
import xml.etree.ElementTree as ET

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from campaigns import audit
from campaigns.models import Campaign, Delivery, DeliveryEvent
from subscribers.tests.factories import MailingListFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return MailingListFactory(name="News", slug="news")


@pytest.fixture
def campaign(issue_page, news):
    campaign = Campaign.objects.create(
        page=issue_page,
        status=Campaign.Status.SENDING,
        started_at=timezone.now() - datetime.timedelta(minutes=5),
        recipients=60,
        sent=40,
        failed=2,
    )
    campaign.lists.set([news])
    for n in range(60):
        status = "sent" if n < 40 else "failed" if n < 42 else "queued"
        Delivery.objects.create(
            campaign=campaign,
            email=f"reader{n:02d}@example.com",
            name=f"Reader {n}",
            subscriber_uid=uuid.uuid4(),
            status=status,
            sent_at=timezone.now() - datetime.timedelta(seconds=30) if status == "sent" else None,
            last_error="550 5.1.1 mailbox unavailable" if status == "failed" else "",
        )
    return campaign


def url(name, campaign, *args):
    return reverse(f"campaigns_admin:{name}", args=[campaign.pk, *args])


def log_entries(campaign):
    return ModelLogEntry.objects.filter(object_id=str(campaign.pk), content_type__model="campaign")


# --- Permissions ---------------------------------------------------------------------------------


def test_editor_without_send_permission_has_no_campaigns_menu(client, editor, sender):
    client.force_login(editor)
    assert 'href="/admin/campaigns/"' not in client.get(reverse("wagtailadmin_home")).text

    client.force_login(sender)
    assert "/admin/campaigns/" in client.get(reverse("wagtailadmin_home")).text


def test_editor_without_send_permission_gets_403_on_every_campaign_url(client, editor, campaign):
    client.force_login(editor)
    urls = [
        reverse("campaigns_admin:index"),
        reverse("campaigns_admin:index_results"),
        url("detail", campaign),
        url("progress", campaign),
        url("report", campaign),
    ]

    assert [client.get(u).status_code for u in urls] == [403] * len(urls)
    for action in ("pause", "resume", "cancel", "retry"):
        assert client.post(url("action", campaign, action)).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    assert not log_entries(campaign).exists()


# --- Listing -------------------------------------------------------------------------------------


def test_listing_shows_campaign_columns(client, sender, campaign):
    client.force_login(sender)

    response = client.get(reverse("campaigns_admin:index"))

    assert response.status_code == 200
    for text in ("Issue 1: Spring", "News", "Sending", "Recipients", "Opens", "Clicks", url("detail", campaign)):
        assert text in response.text


def test_listing_filters_by_status_and_list(client, sender, campaign, issue_page):
    other_list = MailingListFactory(name="Offers", slug="offers")
    sent = Campaign.objects.create(page=issue_page, status=Campaign.Status.SENT)
    sent.lists.set([other_list])
    client.force_login(sender)
    index = reverse("campaigns_admin:index")

    by_status = client.get(index, {"status": "sent"}).context["object_list"]
    by_list = client.get(index, {"list": campaign.lists.get().pk}).context["object_list"]

    assert list(by_status) == [sent]
    assert list(by_list) == [campaign]


def test_listing_filters_by_date(client, sender, campaign, issue_page):
    old = Campaign.objects.create(page=issue_page, created_at=timezone.now() - datetime.timedelta(days=40))
    client.force_login(sender)
    since = (timezone.now() - datetime.timedelta(days=7)).date().isoformat()

    listed = client.get(reverse("campaigns_admin:index"), {"created_from": since}).context["object_list"]

    assert campaign in listed and old not in listed


# --- Progress ------------------------------------------------------------------------------------


def test_progress_json_carries_status_counts_rate_and_eta(client, sender, campaign):
    client.force_login(sender)

    data = client.get(url("progress", campaign)).json()

    assert data["status"] == "sending"
    assert (data["recipients"], data["sent"], data["failed"], data["remaining"]) == (60, 40, 2, 18)
    assert data["percent"] == 70.0
    assert data["rate"] == round(40 / 60, 2)  # 40 sent in the last minute
    assert data["eta_seconds"] == 27  # 18 left at 2/3 msg/s
    assert data["actions"] == ["pause", "retry", "cancel"]


def test_campaign_page_shows_progress_bar_and_polls_the_json(client, sender, campaign):
    client.force_login(sender)

    response = client.get(url("detail", campaign))

    assert response.status_code == 200
    assert 'role="progressbar"' in response.text and 'aria-valuenow="70.0"' in response.text
    assert f'data-url="{url("progress", campaign)}"' in response.text
    assert "campaigns/progress.js" in response.text


# --- Controls ------------------------------------------------------------------------------------


def test_pause_then_resume_change_status_and_are_audited(client, sender, campaign, django_capture_on_commit_callbacks):
    client.force_login(sender)

    client.post(url("action", campaign, "pause"))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED

    with django_capture_on_commit_callbacks(execute=False):  # do not actually send the queued rows
        client.post(url("action", campaign, "resume"))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING

    assert [(e.action, e.user) for e in log_entries(campaign).order_by("pk")] == [
        (audit.PAUSE, sender),
        (audit.RESUME, sender),
    ]


def test_cancel_stops_the_campaign_and_is_audited(client, sender, campaign):
    client.force_login(sender)

    response = client.post(url("action", campaign, "cancel"))

    campaign.refresh_from_db()
    assert response.status_code == 302
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.deliveries.filter(status="queued").count() == 0
    assert log_entries(campaign).get().action == audit.CANCEL


def test_controls_need_post(client, sender, campaign):
    client.force_login(sender)

    assert client.get(url("action", campaign, "cancel")).status_code == 405
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_a_control_that_does_not_apply_shows_an_error_and_changes_nothing(client, sender, campaign):
    client.force_login(sender)

    response = client.post(url("action", campaign, "resume"), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    assert "A sending campaign cannot be resumed." in response.text  # was "cannot be sending"
    assert not log_entries(campaign).exists()


def test_retry_failed_queues_failed_deliveries_again(client, sender, campaign, django_capture_on_commit_callbacks):
    client.force_login(sender)

    with django_capture_on_commit_callbacks(execute=False):
        client.post(url("action", campaign, "retry"))

    campaign.refresh_from_db()
    assert campaign.failed == 0
    assert campaign.deliveries.filter(status="failed").count() == 0
    entry = log_entries(campaign).get()
    assert (entry.action, entry.user, entry.data["count"]) == (audit.RETRY_FAILED, sender, 2)


# --- Deliveries table ----------------------------------------------------------------------------


def test_deliveries_are_paginated(client, sender, campaign):
    client.force_login(sender)

    first = client.get(url("detail", campaign)).context["deliveries"]
    second = client.get(url("detail", campaign), {"p": 2}).context["deliveries"]

    assert (len(first.object_list), len(second.object_list)) == (50, 10)


def test_deliveries_search_by_address(client, sender, campaign):
    client.force_login(sender)

    response = client.get(url("detail", campaign), {"q": "reader07@"})

    assert [d.email for d in response.context["deliveries"]] == ["reader07@example.com"]


def test_deliveries_filter_by_status_shows_the_last_error(client, sender, campaign):
    client.force_login(sender)

    response = client.get(url("detail", campaign), {"status": "failed"})

    assert [d.email for d in response.context["deliveries"]] == ["reader40@example.com", "reader41@example.com"]
    assert "550 5.1.1 mailbox unavailable" in response.text


# --- Report and dashboard ------------------------------------------------------------------------


def test_report_shows_numbers_rates_top_links_and_chart(client, sender, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SENT, delivered=40, unique_opens=20, unique_clicks=5, bounced=2, complained=1
    )
    first = campaign.deliveries.first()
    for minutes in (5, 65):
        DeliveryEvent.objects.create(
            campaign=campaign,
            delivery=first,
            esp="test",
            event_type="clicked",
            event_id=str(uuid.uuid4()),
            timestamp=campaign.started_at + datetime.timedelta(minutes=minutes),
            url="https://example.org/story",
        )
    client.force_login(sender)

    response = client.get(url("report", campaign))

    assert response.status_code == 200
    text = response.text
    assert "Unique opens" in text and "50.0 % of delivered" in text
    assert "Bounces" in text and "5.0 % of sent" in text
    assert "https://example.org/story" in text
    start = text.rindex("<svg", 0, text.index('class="campaign-chart"'))
    svg = text[start : text.index("</svg>", start) + 6]
    bars = ET.fromstring(svg).findall(".//{http://www.w3.org/2000/svg}rect[@class='bar']")  # noqa: S314
    assert len(bars) == 96  # 48 hours x (opens, clicks)
    assert sum(float(bar.get("data-value")) for bar in bars) == 2


def test_dashboard_panel_lists_recent_campaigns_and_growth_chart(client, sender, campaign):
    client.force_login(sender)

    response = client.get(reverse("wagtailadmin_home"))

    assert response.status_code == 200
    assert "Latest campaigns" in response.text
    assert url("detail", campaign) in response.text
    assert "Subscriptions, last 90 days" in response.text


def test_dashboard_panel_dates_use_the_admin_format(client, sender, campaign, settings):
    settings.TIME_ZONE = "UTC"
    Campaign.objects.filter(pk=campaign.pk).update(
        started_at=datetime.datetime(2026, 3, 21, 9, 30, tzinfo=datetime.UTC)
    )
    client.force_login(sender)

    panel = BeautifulSoup(client.get(reverse("wagtailadmin_home")).text, "html.parser").select_one(
        ".campaign-dashboard"
    )

    assert "2026-03-21 09:30" in panel.get_text()


def test_dashboard_panel_is_hidden_without_send_permission(client, editor, campaign):
    client.force_login(editor)

    response = client.get(reverse("wagtailadmin_home"))

    assert "Latest campaigns" not in response.text
