"""Own click and open tracking for plain SMTP: link rewriting, the signed redirect and the pixel."""

import datetime
import re
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.utils import timezone

from campaigns.click_tracking import (
    DELIVERY_PLACEHOLDER,
    delivery_token,
    read_link,
    rewrite_links,
    sign_link,
)
from campaigns.models import DeliveryEvent
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign

HTML = (
    "<!DOCTYPE html><html><body>"
    '<p><a href="https://example.org/story?a=1&amp;b=2">story</a> '
    "<a href='https://example.org/more'>more</a> "
    '<a href="%%unsubscribe_url%%">Unsubscribe</a> '
    '<a href="mailto:editor@example.com">write</a> <a href="#top">top</a></p>'
    "</body></html>"
)


def hrefs(html):
    return re.findall(r"""href=["']([^"']*)["']""", html)


@pytest.fixture
def campaign(issue_page):
    return make_sent_campaign(issue_page)


@pytest.fixture
def delivery(campaign):
    return make_delivery(campaign, message_id="<local.1@news.example.com>")


def personalised_link(html, delivery, index=0):
    """What one recipient's email holds: the engine fills %%delivery%% with the delivery token."""
    url = hrefs(html.replace(DELIVERY_PLACEHOLDER, delivery_token(delivery.pk)))[index]
    return url.replace("&amp;", "&")


def path_of(url):
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_tracking_is_off_by_default(settings):
    assert settings.BROADSHEET["TRACK_CLICKS"] is False
    assert settings.BROADSHEET["TRACK_OPENS"] is False
    assert rewrite_links(HTML, 1) == HTML


def test_web_links_become_signed_redirects_and_others_are_left_alone():
    html = rewrite_links(HTML, 7, clicks=True)

    links = hrefs(html)
    assert all(link.startswith("https://news.example.com/campaigns/c/") for link in links[:2])
    assert all(link.endswith(f"?d={DELIVERY_PLACEHOLDER}") for link in links[:2])
    assert links[2:] == ["%%unsubscribe_url%%", "mailto:editor@example.com", "#top"]
    signed = urlsplit(links[0]).path.split("/")[3]
    assert read_link(signed) == (7, "https://example.org/story?a=1&b=2")


def test_rewriting_twice_does_not_wrap_links_again():
    once = rewrite_links(HTML, 7, clicks=True)

    assert rewrite_links(once, 7, clicks=True) == once


def test_settings_switch_click_tracking_on(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACK_CLICKS": True}

    assert "/campaigns/c/" in rewrite_links(HTML, 7)


def test_open_pixel_is_added_before_the_end_of_the_body(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "TRACK_OPENS": True}

    html = rewrite_links(HTML, 7)

    assert re.search(r'<img src="https://news\.example\.com/campaigns/o/7\.gif\?d=%%delivery%%"[^>]*/></body>', html)
    assert "/campaigns/c/" not in html


def test_valid_link_redirects_and_counts_the_click(client, delivery):
    html = rewrite_links(HTML, delivery.campaign_id, clicks=True)

    response = client.get(path_of(personalised_link(html, delivery)))

    assert response.status_code == 302
    assert response["Location"] == "https://example.org/story?a=1&b=2"
    delivery.refresh_from_db()
    assert delivery.click_count == 1
    assert delivery.first_clicked_at is not None
    delivery.campaign.refresh_from_db()
    assert (delivery.campaign.unique_clicks, delivery.campaign.unique_opens) == (1, 1)
    assert DeliveryEvent.objects.get().url == "https://example.org/story?a=1&b=2"


def test_two_clicks_count_two_on_the_delivery_and_one_unique(client, delivery):
    html = rewrite_links(HTML, delivery.campaign_id, clicks=True)

    client.get(path_of(personalised_link(html, delivery, 0)))
    client.get(path_of(personalised_link(html, delivery, 1)))

    delivery.refresh_from_db()
    delivery.campaign.refresh_from_db()
    assert (delivery.click_count, delivery.campaign.unique_clicks) == (2, 1)


def test_forged_link_is_refused_and_does_not_redirect(client, delivery):
    signed = sign_link(delivery.campaign_id, "https://example.org/story")
    forged = signing.dumps([delivery.campaign_id, "https://evil.example.net/"], salt="another-salt")
    tampered = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")

    for value in (forged, tampered, "not-a-signature"):
        response = client.get(f"/campaigns/c/{value}/?d={delivery_token(delivery.pk)}")
        assert response.status_code == 400
        assert "Location" not in response

    delivery.refresh_from_db()
    assert delivery.click_count == 0
    assert not DeliveryEvent.objects.exists()


def test_link_without_a_valid_delivery_token_redirects_without_counting(client, delivery):
    html = rewrite_links(HTML, delivery.campaign_id, clicks=True)
    url = path_of(hrefs(html)[0]).replace("&amp;", "&")

    for query in (url.replace(DELIVERY_PLACEHOLDER, ""), url.replace(DELIVERY_PLACEHOLDER, f"{delivery.pk}:forged")):
        response = client.get(query)
        assert response.status_code == 302

    delivery.refresh_from_db()
    assert delivery.click_count == 0


def test_delivery_token_of_another_campaign_records_nothing(client, delivery, issue_page):
    other = make_delivery(make_sent_campaign(issue_page), message_id="<local.2@news.example.com>")
    html = rewrite_links(HTML, delivery.campaign_id, clicks=True)

    response = client.get(path_of(personalised_link(html, other)))

    assert response.status_code == 302
    other.refresh_from_db()
    assert other.click_count == 0


def test_open_pixel_returns_a_gif_and_counts_the_open(client, delivery):
    html = rewrite_links(HTML, delivery.campaign_id, opens=True)
    pixel = re.search(r'<img src="([^"]+)"', html.replace(DELIVERY_PLACEHOLDER, delivery_token(delivery.pk))).group(1)

    response = client.get(path_of(pixel))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    delivery.refresh_from_db()
    assert (delivery.open_count, delivery.delivered_at is not None) == (1, True)
    delivery.campaign.refresh_from_db()
    assert delivery.campaign.unique_opens == 1


def test_open_pixel_with_a_bad_token_still_returns_the_image(client, delivery):
    response = client.get(f"/campaigns/o/{delivery.campaign_id}.gif?d=garbage")

    assert (response.status_code, response["Content-Type"]) == (200, "image/gif")
    delivery.refresh_from_db()
    assert delivery.open_count == 0


def test_a_campaign_sent_with_click_tracking_counts_a_readers_click(
    issue_page, settings, client, mailoutbox, django_capture_on_commit_callbacks
):
    from campaigns import services
    from campaigns.models import Delivery
    from subscribers.tests.factories import SubscriptionFactory

    settings.BROADSHEET = {**settings.BROADSHEET, "TRACK_CLICKS": True}
    subscription = SubscriptionFactory()
    campaign = services.create_campaign(issue_page, [subscription.list])
    with django_capture_on_commit_callbacks(execute=True):
        services.start_campaign(campaign.pk)  # ImmediateBackend: the batches run after commit

    [message] = mailoutbox
    html = message.alternatives[0].content
    story = next(url for url in hrefs(html) if "/campaigns/c/" in url)
    assert DELIVERY_PLACEHOLDER not in html
    # The reader clicks a minute after the send (a click seconds after it is a scanner's: campaigns.bots).
    minute_ago = timezone.now() - datetime.timedelta(minutes=1)
    Delivery.objects.filter(campaign=campaign).update(sending_at=minute_ago, sent_at=minute_ago)
    response = client.get(story.replace("https://news.example.com", ""))

    assert response.status_code == 302
    assert response["Location"] == "https://example.org/story"  # the factory issue's first link
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.click_count == 1
    assert "/campaigns/c/" not in message.body, "the plain text part keeps the real links"
