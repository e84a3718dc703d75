"""Issue 8 finding 10 on the campaigns side: out-of-range ids answered 500."""

import pytest
from django.urls import reverse

from campaigns.click_tracking import delivery_token, sign_link
from campaigns.models import Campaign, DeliveryEvent
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from subscribers.tests.factories import MailingListFactory

HUGE_ID = 99999999999999999999999  # Larger than any 64-bit integer column.


@pytest.fixture
def delivery(issue_page):
    return make_delivery(make_sent_campaign(issue_page), message_id="<local.1@news.example.com>")


def test_open_pixel_for_an_out_of_range_campaign_still_returns_the_image(client, delivery):
    response = client.get(f"/campaigns/o/{HUGE_ID}.gif", {"d": delivery_token(delivery.pk)})

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert not DeliveryEvent.objects.exists()


def test_click_for_an_out_of_range_campaign_still_redirects(client, delivery):
    path = reverse("campaigns:click", args=[sign_link(HUGE_ID, "https://example.org/story")])

    response = client.get(path, {"d": delivery_token(delivery.pk)})

    assert response.status_code == 302
    assert response["Location"] == "https://example.org/story"
    assert not DeliveryEvent.objects.exists()


def test_send_form_with_an_out_of_range_list_id_is_a_form_error(client, django_user_model, issue_page):
    MailingListFactory(slug="news")
    user = django_user_model.objects.create_superuser("sender", "sender@example.com", "pw")
    client.force_login(user)
    data = {"lists": [str(HUGE_ID)], "subject": "Spring", "from_email": "News <news@example.com>",
            "reply_to": "", "when": "now", "send_at": "", "action": "review"}  # fmt: skip

    response = client.post(reverse("campaigns_admin:send", args=[issue_page.pk]), data)

    assert response.status_code == 200
    assert "lists" in response.context["form"].errors
    assert not Campaign.objects.exists()
