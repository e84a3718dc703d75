"""The subscriber admin reads as people: one page per subscriber, events and values in words, counts that agree."""

import datetime

import pytest
from django.urls import reverse

from campaigns.admin_forms import sendable_counts
from subscribers.models import Subscriber, SubscriberEvent
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return MailingListFactory(name="News", slug="news")


@pytest.fixture
def ann(news):
    return SubscriptionFactory(list=news, subscriber__email="ann@example.com", subscriber__name="Ann").subscriber


def test_a_click_on_a_subscriber_opens_their_page_not_the_edit_form(admin_client, ann):
    listing = admin_client.get(reverse("subscribers_subscriber:index")).text
    inspect = reverse("subscribers_subscriber:inspect", args=[ann.pk])

    link = listing[listing.find("ann@example.com") - 300 : listing.find("ann@example.com")]
    assert f'href="{inspect}"' in link


def test_the_subscriber_page_is_titled_by_the_person_and_offers_the_actions(admin_client, ann):
    html = admin_client.get(reverse("subscribers_subscriber:inspect", args=[ann.pk])).text

    assert "<title>History" not in html and ">History<" not in html.split("<main", 1)[-1][:2000]
    assert "ann@example.com" in html
    assert reverse("subscribers_subscriber:edit", args=[ann.pk]) in html
    assert reverse("subscribers_import:gdpr_export", args=[ann.pk]) in html
    assert "Lists and consent" in html and "News" in html


def test_history_shows_events_lists_and_booleans_in_words(admin_client, ann, news):
    at = datetime.datetime(2026, 3, 21, 9, 30, tzinfo=datetime.UTC)
    SubscriberEvent.objects.create(subscriber=ann, kind="confirmation_sent", detail={"lists": [news.pk]}, at=at)
    SubscriberEvent.objects.create(subscriber=ann, kind="subscribed", list=news, detail={"via": "form", "vip": True})

    html = admin_client.get(reverse("subscribers_subscriber:inspect", args=[ann.pk])).text

    assert "Confirmation email sent" in html and "Lists: News" in html
    assert "lists: [" not in html and "confirmation_sent" not in html
    assert "How: subscribe form" in html and "Vip: Yes" in html and "True" not in html
    assert "2026-03-21" in html  # the admin's one date format


def test_list_listing_says_how_many_can_receive_as_the_send_form_counts(admin_client, news, ann):
    SubscriptionFactory(list=news, subscriber=SubscriberFactory(state=Subscriber.State.BOUNCED))

    response = admin_client.get(reverse("subscribers_list:index"))

    row = next(m for m in response.context["object_list"] if m.pk == news.pk)
    assert (row.suppressed_count, row.receiving_count) == (1, 1)
    assert row.receiving_count == sendable_counts()[news.pk]
    assert "Can receive" in response.text
    assert ">True<" not in response.text and ">False<" not in response.text


def test_dates_on_the_subscriber_listing_use_the_admin_format(admin_client, ann, settings):
    settings.TIME_ZONE = "UTC"
    Subscriber.objects.filter(pk=ann.pk).update(created_at=datetime.datetime(2026, 3, 21, 9, 30, tzinfo=datetime.UTC))

    assert "2026-03-21 09:30" in admin_client.get(reverse("subscribers_subscriber:index")).text
