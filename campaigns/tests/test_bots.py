"""Machine opens and clicks (campaigns.bots): each rule, and how the tracking workflow and the
report keep people's figures apart from the machines'."""

import datetime

import pytest
from django.urls import reverse

from campaigns import bots, reporting
from campaigns.click_tracking import delivery_token, rewrite_links, sign_link
from campaigns.models import DeliveryEvent
from campaigns.tests.test_webhooks import MAILGUN_BATCH_ID, anymail_webhooks, mailgun, mailgun_event
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from campaigns.tracking import TrackingEvent, record_tracking_event

T0 = datetime.datetime(2026, 3, 21, 9, 0, tzinfo=datetime.UTC)
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"


def hit(event_type="opened", *, seconds=600, **fields):
    fields.setdefault("user_agent", BROWSER)
    fields.setdefault("ip", "198.51.100.7")
    return bots.Hit(event_type=event_type, at=T0 + datetime.timedelta(seconds=seconds), handed_over_at=T0, **fields)


# --- The rules --------------------------------------------------------------------------------


def test_a_reader_opening_and_clicking_minutes_later_is_a_person():
    assert bots.machine_reason(hit("opened")) == ""
    assert bots.machine_reason(hit("clicked")) == ""


def test_the_esp_flag_makes_a_machine():
    assert bots.machine_reason(hit(esp_flag=True)) == bots.ESP_FLAG


@pytest.mark.parametrize("fields", [{"user_agent": "Mozilla/5.0"}, {"ip": "17.58.101.4"}])
def test_apple_privacy_proxy_opens_are_a_machine_by_agent_or_network(fields):
    assert bots.machine_reason(hit("opened", **fields)) == bots.APPLE_PROXY


def test_apple_network_rule_is_for_opens_only_and_bad_addresses_are_ignored():
    assert bots.machine_reason(hit("clicked", ip="17.58.101.4")) == ""
    assert bots.machine_reason(hit("opened", ip="not an address")) == ""


@pytest.mark.parametrize("agent", ["Mozilla/5.0 (compatible; Barracuda Sentinel)", "python-requests/2.32", "curl/8.5"])
def test_scanner_user_agents_are_a_machine(agent):
    assert bots.machine_reason(hit("clicked", user_agent=agent)) == bots.SCANNER_AGENT


def test_a_head_request_is_a_machine():
    assert bots.machine_reason(hit("clicked", method="HEAD")) == bots.HEAD_REQUEST
    assert bots.machine_reason(hit("clicked", method="GET")) == ""


def test_seconds_after_the_send_is_a_machine_and_the_thresholds_differ_for_opens_and_clicks():
    assert bots.machine_reason(hit("opened", seconds=bots.MACHINE_OPEN_SECONDS - 1)) == bots.TOO_FAST
    assert bots.machine_reason(hit("opened", seconds=bots.MACHINE_OPEN_SECONDS)) == ""
    assert bots.machine_reason(hit("clicked", seconds=bots.MACHINE_CLICK_SECONDS - 1)) == bots.TOO_FAST
    assert bots.machine_reason(hit("clicked", seconds=bots.MACHINE_CLICK_SECONDS)) == ""


def test_an_event_dated_before_the_send_is_not_judged_by_time():
    assert bots.machine_reason(hit("opened", seconds=-30)) == ""


def test_esp_flags_sendgrid_and_mailgun_but_not_gmails_proxy():
    assert bots.esp_flag("sendgrid", {"event": "open", "sg_machine_open": True})
    assert not bots.esp_flag("sendgrid", {"event": "open", "sg_machine_open": False})
    assert bots.esp_flag("mailgun", {"event-data": {"client-info": {"bot": "apple"}}})
    assert bots.esp_flag("mailgun", {"event-data": {"client-info": {"bot": "generic"}}})
    assert not bots.esp_flag("mailgun", {"event-data": {"client-info": {"bot": "gmail"}}})
    assert not bots.esp_flag("mailgun", {"event-data": {"client-info": "garbage"}})
    assert not bots.esp_flag("postmark", ["not", "a", "dict"])


# --- Recording --------------------------------------------------------------------------------


@pytest.fixture
def campaign(issue_page):
    return make_sent_campaign(issue_page)


@pytest.fixture
def delivery(campaign):
    return make_delivery(campaign, message_id="msg-1")


def record(delivery, event_type, *, at, **fields):
    return record_tracking_event(
        TrackingEvent(
            esp="postmark",
            event_type=event_type,
            message_id=delivery.esp_message_id,
            recipient=delivery.email,
            timestamp=at,
            event_id=f"{event_type}-{at.isoformat()}-{fields.get('url', '')}",
            **fields,
        )
    )


def reload(obj):
    obj.refresh_from_db()
    return obj


def test_a_machine_open_is_recorded_and_counted_apart(delivery):
    record(delivery, "opened", at=delivery.sent_at + datetime.timedelta(minutes=1), user_agent="Mozilla/5.0")

    delivery, campaign = reload(delivery), reload(delivery.campaign)
    assert (delivery.first_opened_at, delivery.open_count, delivery.machine_opens) == (None, 0, 1)
    assert (campaign.unique_opens, campaign.machine_opens, campaign.delivered) == (0, 1, 1)
    assert DeliveryEvent.objects.get().machine_reason == bots.APPLE_PROXY


def test_a_persons_open_after_a_machines_is_the_first_open(delivery):
    sent = delivery.sent_at
    record(delivery, "opened", at=sent + datetime.timedelta(seconds=1))  # a gateway's scan
    record(delivery, "opened", at=sent + datetime.timedelta(minutes=2), user_agent="Mozilla/5.0")  # Apple's proxy
    person = sent + datetime.timedelta(minutes=30)
    record(delivery, "opened", at=person, user_agent=BROWSER)

    delivery, campaign = reload(delivery), reload(delivery.campaign)
    assert (delivery.first_opened_at, delivery.open_count, delivery.machine_opens) == (person, 1, 2)
    assert (campaign.unique_opens, campaign.machine_opens) == (1, 1)


def test_a_machine_click_proves_neither_an_open_nor_a_click(delivery):
    record(delivery, "clicked", at=delivery.sent_at + datetime.timedelta(seconds=2), url="https://example.org/a")

    delivery, campaign = reload(delivery), reload(delivery.campaign)
    assert (delivery.click_count, delivery.first_opened_at, delivery.machine_clicks) == (0, None, 1)
    assert (campaign.unique_clicks, campaign.unique_opens, campaign.machine_clicks) == (0, 0, 1)


def test_clicks_on_every_link_at_once_move_to_the_machine_figures(delivery):
    start = delivery.sent_at + datetime.timedelta(minutes=5)
    for second, link in enumerate(["a", "b"]):
        record(delivery, "clicked", at=start + datetime.timedelta(seconds=second), url=f"https://example.org/{link}")
    assert reload(delivery.campaign).unique_clicks == 1  # two links: could be a person

    record(delivery, "clicked", at=start + datetime.timedelta(seconds=2), url="https://example.org/c")

    delivery, campaign = reload(delivery), reload(delivery.campaign)
    assert (delivery.click_count, delivery.first_clicked_at, delivery.first_opened_at) == (0, None, None)
    assert (delivery.open_count, delivery.machine_clicks) == (0, 3)
    assert (campaign.unique_clicks, campaign.unique_opens, campaign.machine_clicks) == (0, 0, 1)
    assert set(DeliveryEvent.objects.values_list("machine_reason", flat=True)) == {bots.EVERY_LINK}


def test_a_persons_open_survives_a_scanner_burst_of_clicks(delivery):
    opened = delivery.sent_at + datetime.timedelta(minutes=1)
    record(delivery, "opened", at=opened)
    start = delivery.sent_at + datetime.timedelta(minutes=5)
    for second, link in enumerate(["a", "b", "c"]):
        record(delivery, "clicked", at=start + datetime.timedelta(seconds=second), url=f"https://example.org/{link}")

    delivery, campaign = reload(delivery), reload(delivery.campaign)
    assert (delivery.first_opened_at, delivery.open_count, delivery.click_count) == (opened, 1, 0)
    assert (campaign.unique_opens, campaign.unique_clicks, campaign.machine_clicks) == (1, 0, 1)


def test_one_link_clicked_three_times_is_not_a_burst(delivery):
    start = delivery.sent_at + datetime.timedelta(minutes=5)
    for second in range(3):
        record(delivery, "clicked", at=start + datetime.timedelta(seconds=second), url="https://example.org/a")

    assert reload(delivery).click_count == 3
    assert reload(delivery.campaign).machine_clicks == 0


def test_own_endpoints_record_a_head_request_as_a_machine_click(client, delivery):
    rewrite_links("<html><body></body></html>", delivery.campaign_id, clicks=True)
    path = reverse("campaigns:click", args=[sign_link(delivery.campaign_id, "https://example.org/a")])

    response = client.head(f"{path}?d={delivery_token(delivery.pk)}")

    assert response.status_code == 302
    delivery = reload(delivery)
    assert (delivery.click_count, delivery.machine_clicks) == (0, 1)
    assert DeliveryEvent.objects.get().machine_reason == bots.HEAD_REQUEST


def test_own_open_pixel_from_apples_network_is_a_machine_open(client, delivery):
    url = reverse("campaigns:open", args=[delivery.campaign_id])

    client.get(f"{url}?d={delivery_token(delivery.pk)}", REMOTE_ADDR="17.58.101.4", HTTP_USER_AGENT=BROWSER)
    client.get(f"{url}?d={delivery_token(delivery.pk)}", REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT=BROWSER)

    delivery = reload(delivery)
    assert (delivery.open_count, delivery.machine_opens) == (1, 1)


@pytest.mark.usefixtures(anymail_webhooks.__name__)
def test_mailgun_bot_flag_makes_a_machine_open(client, campaign):
    delivery = make_delivery(campaign, message_id=f"<{MAILGUN_BATCH_ID}>")
    bot = {"client-info": {"user-agent": "Mozilla/5.0", "bot": "apple", "client-type": "unknown"}}

    response = mailgun(client, mailgun_event("opened", delivery.email, MAILGUN_BATCH_ID, **bot), token="t-bot")

    assert response.status_code == 200
    assert (reload(delivery).open_count, reload(delivery).machine_opens) == (0, 1)
    assert DeliveryEvent.objects.get().machine_reason == bots.ESP_FLAG


# --- The report -------------------------------------------------------------------------------


def test_the_report_shows_people_with_the_machines_beside(admin_client, delivery):
    campaign = delivery.campaign
    other = make_delivery(campaign, message_id="msg-2")
    sent = delivery.sent_at
    record(delivery, "opened", at=sent + datetime.timedelta(minutes=3), user_agent="Mozilla/5.0")
    record(other, "opened", at=sent + datetime.timedelta(minutes=9), user_agent=BROWSER)
    record(other, "clicked", at=sent + datetime.timedelta(minutes=10), url="https://example.org/a")
    record(delivery, "clicked", at=sent + datetime.timedelta(minutes=11), url="https://example.org/b", method="HEAD")

    report = reporting.campaign_report(reload(campaign))

    opens, clicks = report.figure("unique_opens"), report.figure("unique_clicks")
    assert (opens.count, opens.machine, clicks.count, clicks.machine) == (1, 1, 1, 1)
    assert [link.url for link in report.top_links] == ["https://example.org/a"]
    assert [(row.reason, row.opens, row.clicks) for row in report.machines] == [
        (bots.APPLE_PROXY, 1, 0),
        (bots.HEAD_REQUEST, 0, 1),
    ]
    response = admin_client.get(reverse("campaigns_admin:report", args=[campaign.pk]))
    page = response.content.decode()
    assert "Machines: 1 (privacy proxies, link scanners), not counted above" in page
    assert "Apple Mail Privacy Protection" in page
