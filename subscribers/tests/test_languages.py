"""Each subscriber's language: recorded at signup from the page used, editable in the preference
centre, used for every email and page sent to them; staff get the site's language."""

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from pages.models import SubscribePage
from subscribers import emails, tokens
from subscribers.languages import supported_language
from subscribers.models import Subscriber
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory
from subscribers.tests.test_views import CONSENT, csrf_post, preferences_path


@pytest.fixture
def news(db):
    return MailingListFactory(name="Morning News", slug="news")


@pytest.fixture
def subscribe_page(home_page, newsletter_settings, news):
    return home_page.add_child(instance=SubscribePage(title="Subscribe", slug="subscribe", consent_text=CONSENT))


@pytest.fixture
def chinese_subscribe_page(subscribe_page, translate_page):
    return translate_page(subscribe_page, "zh-hans", title="订阅", consent_text="我同意通过电子邮件接收通讯。")


@pytest.fixture
def subscribe(django_capture_on_commit_callbacks):
    def post(path, news, **headers):
        data = {"email": "li@example.com", "name": "", "lists": [news.pk], "website": ""}
        with django_capture_on_commit_callbacks(execute=True):
            return Client(HTTP_HOST="news.example.com").post(path, data, **headers)

    return post


@pytest.mark.parametrize(
    ("code", "expected"),
    [("zh-CN", "zh-hans"), ("zh_Hans", "zh-hans"), ("ZH", "zh-hans"), ("en-us", "en"), ("fr", "en"), ("", "en")],
)
def test_stored_and_browser_codes_map_to_an_interface_language(code, expected):
    assert supported_language(code) == expected


def test_subscribing_from_the_chinese_page_records_chinese_and_sends_a_chinese_confirmation(
    chinese_subscribe_page, news, mailoutbox, subscribe
):
    response = subscribe("/zh-hans/subscribe/", news)

    assert (response.status_code, response["Location"]) == (303, "/zh-hans/subscribe/?sent=1")
    assert Subscriber.objects.get().language == "zh-hans"
    message = mailoutbox[0]
    assert message.subject == "请确认您的订阅"
    assert "确认我的订阅" in message.body
    assert "此链接在 7 天内有效" in message.body
    html = message.alternatives[0][0]
    assert "确认我的订阅" in html
    # No space between two Chinese sentences: browsers render a line break in the source as one.
    assert "天内有效。如果" in message.body or "天内有效。\n" in message.body
    assert not re.search(r"天内有效。\s+如果", html)
    # The confirmation link is the usual one: the page it opens speaks the subscriber's language.
    link = re.search(r"https://news\.example\.com(/newsletter/confirm/[^/\s]+/)", message.body).group(1)
    page = Client().get(link)
    assert page["Content-Language"] == "zh-hans"
    assert "确认您的订阅" in page.content.decode()


def test_subscribing_from_the_english_page_records_english(chinese_subscribe_page, news, mailoutbox, subscribe):
    subscribe("/subscribe/", news)

    assert Subscriber.objects.get().language == "en"
    assert mailoutbox[0].subject == "Please confirm your subscription"


def test_already_subscribed_notice_is_in_the_subscribers_language(chinese_subscribe_page, news, mailoutbox, subscribe):
    SubscriptionFactory(subscriber__email="li@example.com", subscriber__language="zh-hans", list=news)

    subscribe("/subscribe/", news)

    assert mailoutbox[0].subject == "您已订阅"
    assert "管理我的订阅偏好" in mailoutbox[0].body


def test_staff_notice_is_in_the_sites_language_whoever_subscribed(
    chinese_subscribe_page, news, mailoutbox, subscribe, settings
):
    settings.BROADSHEET = {**settings.BROADSHEET, "NOTIFY_STAFF": ["editor@example.com"], "NOTIFY_STAFF_MODE": "each"}
    news.double_opt_in = False
    news.save()

    subscribe("/zh-hans/subscribe/", news)

    staff = [m for m in mailoutbox if m.to == ["editor@example.com"]]
    assert staff and staff[0].subject == "New subscriber: li@example.com"


@pytest.fixture
def chinese_reader(news, subscribe_page):
    return SubscriptionFactory(subscriber__email="li@example.com", subscriber__language="zh-hans", list=news).subscriber


def test_preference_centre_opens_in_the_subscribers_language(chinese_reader):
    response = Client().get(preferences_path(chinese_reader))

    assert response["Content-Language"] == "zh-hans"
    html = response.content.decode()
    assert "保存偏好" in html
    assert re.search(r'<option value="zh-hans" selected>简体中文</option>', html)


@pytest.mark.parametrize("view", ["subscribers:unsubscribe", "subscribers:one_click"])
def test_unsubscribe_pages_open_in_the_subscribers_language(chinese_reader, news, view):
    """The List-Unsubscribe address too: a mail client without RFC 8058 opens it in a browser."""
    path = reverse(view, args=[tokens.unsubscribe_token(chinese_reader.uid, [news.pk])])

    page = Client().get(path)
    left = Client().post(path)

    assert page["Content-Language"] == "zh-hans"
    assert '<html lang="zh-hans">' in page.content.decode() and "Unsubscribe" not in page.content.decode()
    assert left.status_code == 200 and "unsubscribed" not in left.content.decode()


def test_the_switcher_cookie_overrides_the_subscribers_language_on_token_pages(chinese_reader):
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    assert client.get(preferences_path(chinese_reader))["Content-Language"] == "en"


def test_language_chosen_in_the_preference_centre_is_used_for_the_next_email(chinese_reader, news, mailoutbox):
    client = Client(enforce_csrf_checks=True)
    response = csrf_post(
        client, preferences_path(chinese_reader), {"name": "", "lists": [news.pk], "language": "en", "save": "1"}
    )

    assert response.status_code == 302
    chinese_reader.refresh_from_db()
    assert chinese_reader.language == "en"
    assert chinese_reader.events.filter(kind="profile_updated", detail__fields=["language"]).exists()
    emails.send_already_subscribed_email(chinese_reader.pk, [news.pk])
    assert mailoutbox[-1].subject == "You are already subscribed"


def test_preference_form_without_language_leaves_it_unchanged(chinese_reader, news):
    client = Client(enforce_csrf_checks=True)
    csrf_post(client, preferences_path(chinese_reader), {"name": "Li", "lists": [news.pk], "save": "1"})

    chinese_reader.refresh_from_db()
    assert (chinese_reader.name, chinese_reader.language) == ("Li", "zh-hans")


def test_an_unknown_language_is_a_form_error_not_a_change(chinese_reader, news):
    client = Client(enforce_csrf_checks=True)
    response = csrf_post(client, preferences_path(chinese_reader), {"lists": [news.pk], "language": "xx"})

    assert response.status_code == 200
    chinese_reader.refresh_from_db()
    assert chinese_reader.language == "zh-hans"


def test_old_rows_with_a_region_code_still_get_their_language(news, mailoutbox):
    subscriber = SubscriberFactory(email="wang@example.com", language="zh-CN")
    SubscriptionFactory(subscriber=subscriber, list=news)

    emails.send_already_subscribed_email(subscriber.pk, [news.pk])

    assert mailoutbox[0].subject == "您已订阅"


def test_a_single_language_list_is_offered_only_on_pages_in_its_language(chinese_subscribe_page, news):
    MailingListFactory(name="Broadsheet 中文版", slug="zh", language="zh-hans")
    client = Client(HTTP_HOST="news.example.com")

    assert "Broadsheet 中文版" in client.get("/zh-hans/subscribe/").content.decode()
    english = client.get("/subscribe/").content.decode()
    assert "Broadsheet 中文版" not in english and "Morning News" in english
