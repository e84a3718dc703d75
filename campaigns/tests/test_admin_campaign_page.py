"""The campaign page when sending ends, the report's honesty about what is tracked, whole-number charts."""

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from campaigns import reporting
from campaigns.charts import Series, bar_chart, count_axis
from campaigns.click_tracking import rewrite_links
from campaigns.models import Campaign
from campaigns.tests.test_admin_send import make_user
from subscribers.tests.factories import MailingListFactory

pytestmark = pytest.mark.django_db

STARTED = datetime.datetime(2026, 3, 21, 9, 30, tzinfo=datetime.UTC)


@pytest.fixture
def sender(django_user_model):
    return make_user(django_user_model, "sender", send=True)


@pytest.fixture
def finished(issue_page):
    campaign = Campaign.objects.create(
        page=issue_page,
        status=Campaign.Status.SENT,
        started_at=STARTED,
        finished_at=STARTED + datetime.timedelta(minutes=2, seconds=5),
        recipients=1250,
        sent=1250,
        html="<html><body><p>Hi</p></body></html>",
    )
    campaign.lists.set([MailingListFactory(name="News")])
    return campaign


def url(name, campaign):
    return reverse(f"campaigns_admin:{name}", args=[campaign.pk])


# --- The campaign page when sending ends -------------------------------------------------------


def test_a_finished_campaign_shows_average_rate_and_duration_not_zero_msg_per_second(client, sender, finished):
    client.force_login(sender)

    html = client.get(url("detail", finished)).text

    assert "Average rate" in html and "10.0 msg/s" in html  # 1,250 in 125 s
    assert "Duration" in html and "2 min 5 s" in html
    assert ">0.0 msg/s" not in html and "Time left" not in html
    assert 'data-final="true"' in html


def test_a_finished_campaign_shows_when_it_finished_in_the_admin_date_format(client, sender, finished, settings):
    settings.TIME_ZONE = "UTC"
    client.force_login(sender)

    html = client.get(url("detail", finished)).text

    assert "2026-03-21 09:32" in html  # finished
    assert "2026-03-21 09:30" in html  # started


def test_live_progress_and_the_page_use_one_number_format(client, sender, finished):
    Campaign.objects.filter(pk=finished.pk).update(status=Campaign.Status.SENDING, finished_at=None, sent=1234)
    client.force_login(sender)

    data = client.get(url("progress", finished)).json()
    html = client.get(url("detail", finished)).text

    assert data["labels"]["sent"] == "1,234" and data["labels"]["recipients"] == "1,250"
    assert f'data-field="sent">{data["labels"]["sent"]}<' in html
    assert f'data-field="percent">{data["labels"]["percent"]}<' in html
    assert data["labels"]["eta"] == "–" or data["labels"]["eta"].endswith((" s", " min"))


def test_progress_json_of_a_finished_campaign_carries_its_average_rate_and_duration(finished):
    data = reporting.progress(finished)

    assert data["is_final"] is True
    assert (data["duration_seconds"], data["average_rate"]) == (125.0, 10.0)
    assert data["labels"]["finished_at"].startswith("2026-03-21")


def test_the_live_script_reloads_the_page_when_the_campaign_finishes(client, sender, finished):
    client.force_login(sender)
    Campaign.objects.filter(pk=finished.pk).update(status=Campaign.Status.SENDING, finished_at=None)

    html = client.get(url("detail", finished)).text

    # While sending, the page polls; the script takes every figure from the server's labels.
    assert 'data-final="false"' in html
    script = Path(finders.find("campaigns/progress.js")).read_text()
    assert "data.labels" in script and "location.reload()" in script


# --- The report says what is tracked -----------------------------------------------------------


def test_report_without_tracking_says_so_instead_of_zeros(client, sender, finished):
    client.force_login(sender)

    html = client.get(url("report", finished)).text
    figures = {f.key: f for f in reporting.report_figures(finished)}

    assert not figures["delivered"].tracked and "does not report deliveries" in html
    assert not figures["unique_opens"].tracked and "Not tracked: turn on TRACK_OPENS" in html
    assert not figures["unique_clicks"].tracked and "Not tracked: turn on TRACK_CLICKS" in html
    assert "Neither opens nor clicks are tracked" in html
    assert 'class="campaign-chart"' not in html


def test_report_with_own_open_tracking_shows_opens_relative_to_sent(client, sender, finished):
    finished.html = rewrite_links(finished.html, finished.pk, opens=True, clicks=False)
    finished.unique_opens = 125
    finished.save()
    client.force_login(sender)

    html = client.get(url("report", finished)).text
    opens = reporting.campaign_report(finished).figure("unique_opens")

    assert opens.tracked and (opens.rate, opens.base) == (0.1, "sent")
    assert "10.0 % of sent" in html
    assert "Opens per hour" in html and "Clicks per hour" not in html
    assert "Clicks are not tracked for this campaign." in html


def test_report_through_an_esp_shows_deliveries_even_before_any_arrive(finished, settings):
    settings.MAILERS = {**settings.MAILERS, "default": {"BACKEND": "anymail.backends.test.EmailBackend"}}

    figures = {f.key: f for f in reporting.report_figures(finished)}

    assert figures["delivered"].tracked and figures["unique_opens"].tracked
    assert figures["unique_opens"].base == "delivered"


# --- Charts count in whole numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("highest", "axis"),
    [(0, (1, 1)), (1, (1, 1)), (3, (3, 1)), (7, (8, 2)), (9, (10, 2)), (23, (25, 5)), (180, (200, 50))],
)
def test_count_axis_steps_are_whole_numbers(highest, axis):
    assert count_axis(highest) == axis


def test_a_chart_of_counts_labels_its_axis_in_whole_numbers():
    svg = ET.fromstring(str(bar_chart(["0h", "1h"], [Series("Opens", [1, 0])], title="T")))  # noqa: S314

    labels = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.get("text-anchor") == "end"]

    assert labels == ["0", "1"]


# --- One date format ---------------------------------------------------------------------------


def test_campaign_listing_dates_use_the_admin_date_format(client, sender, finished, settings):
    settings.TIME_ZONE = "UTC"
    client.force_login(sender)

    html = client.get(reverse("campaigns_admin:index")).text

    assert "2026-03-21 09:30" in html and "2026-03-21 09:32" in html
