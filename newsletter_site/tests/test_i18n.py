"""The visitor's language: URL prefix, switcher cookie, Accept-Language; URLs in emails unchanged."""

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation

from campaigns.models import NewsletterIndexPage


@pytest.fixture
def client():
    return Client(HTTP_HOST="news.example.com")


@pytest.fixture
def chinese_archive(archive_page, translate_page):
    """The archive translated into Chinese (Wagtail's own localisation; the home page an alias)."""
    return translate_page(archive_page, "zh-hans", title="往期")


def test_accept_language_chinese_is_sent_to_the_chinese_translation(client, chinese_archive):
    response = client.get("/archive/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")

    assert response.status_code == 302
    assert response["Location"] == "/zh-hans/archive/"
    assert "Accept-Language" in response["Vary"]
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert page["Content-Language"] == "zh-hans"
    assert page.context["page"].pk == chinese_archive.pk


def test_browsing_with_accept_language_chinese_shows_chinese_pages(client, home_page, translate_page):
    translate_page(home_page, "zh-hans", title="大字报")

    response = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN", follow=True)

    assert response.redirect_chain == [("/zh-hans/", 302)]
    html = response.content.decode()
    assert '<html lang="zh-hans">' in html
    assert "跳到正文" in html  # the interface: skip link
    assert "大字报" in html  # the content: the translated page


def test_a_page_without_translation_is_served_as_it_is_to_chinese_readers(client, archive_page):
    response = client.get("/archive/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert response.status_code == 200
    assert response["Content-Language"] == "en"
    assert "Accept-Language" in response["Vary"]


def test_pages_outside_the_page_tree_speak_the_negotiated_language(client, db):
    response = client.get("/newsletter/confirm/forged/", HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert response.status_code == 400
    assert response["Content-Language"] == "zh-hans"
    assert "此链接无效" in response.content.decode()


@pytest.mark.parametrize("path", ["/no-such-page/", "/archive/no-such-issue/", "/newsletter/"])
def test_an_unknown_address_answers_in_the_negotiated_language(client, archive_page, path):
    """Not a page (Wagtail's serve finds nothing) or no URL at all: the 404 page speaks the
    visitor's language, as the token pages do, not the default language of unprefixed pages."""
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert response.status_code == 404
    assert response["Content-Language"] == "zh-hans"
    html = response.content.decode()
    assert '<html lang="zh-hans">' in html
    assert "We couldn’t find that page" not in html and "Browse the archive" not in html
    assert "Accept-Language" in response["Vary"]
    english = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
    assert "We couldn’t find that page" in english.content.decode()


def test_the_chinese_archive_feed_is_chinese(client, chinese_archive):
    feed = client.get("/zh-hans/archive/feed/").content.decode()

    assert 'xml:lang="zh-hans"' in feed
    assert "newest first" not in feed and "按时间由新到旧" in feed  # the subtitle
    assert "newest first" in client.get("/archive/feed/").content.decode()


def test_without_accept_language_pages_are_english(client, archive_page):
    response = client.get("/archive/")

    assert response.status_code == 200
    assert response["Content-Language"] == "en"


def test_unsupported_language_falls_back_to_english(client, archive_page):
    assert client.get("/archive/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")["Content-Language"] == "en"


def test_the_url_prefix_wins_over_accept_language(client, chinese_archive):
    response = client.get("/zh-hans/archive/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert response["Content-Language"] == "zh-hans"


def test_the_switcher_cookie_wins_over_accept_language(client, chinese_archive):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = client.get("/archive/", HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert response.status_code == 200
    assert response["Content-Language"] == "en"


def test_switching_language_sets_the_cookie_and_goes_to_the_page_in_that_language(client, chinese_archive):
    response = client.get("/i18n/setlang/", {"language": "en", "next": "/archive/"})

    assert response.status_code == 302
    assert response["Location"] == "/archive/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert client.get("/archive/", HTTP_ACCEPT_LANGUAGE="zh-CN")["Content-Language"] == "en"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", ""])
def test_switcher_never_redirects_off_the_site(client, db, next_url):
    response = client.get("/i18n/setlang/", {"language": "zh-hans", "next": next_url})

    assert response["Location"] == "/"


def test_switcher_refuses_an_unknown_language(client, db):
    assert client.get("/i18n/setlang/", {"language": "xx", "next": "/"}).status_code == 400


def test_switcher_on_a_page_points_each_language_at_its_translation(chinese_archive, archive_page):
    request = RequestFactory().get("/archive/", HTTP_HOST="news.example.com")
    with translation.override("en"):
        html = render_to_string("includes/language_switcher.html", {"page": archive_page}, request=request)

    assert 'href="/i18n/setlang/?language=zh-hans&amp;next=%2Fzh-hans%2Farchive%2F"' in html
    assert 'lang="zh-hans" hreflang="zh-hans" rel="nofollow">简体中文</a>' in html
    assert 'aria-current="true">English<' in html


def test_switcher_on_an_untranslated_page_offers_the_other_languages_home(chinese_archive, archive_page):
    other = archive_page.add_child(instance=NewsletterIndexPage(title="Other", slug="other"))
    request = RequestFactory().get("/archive/other/", HTTP_HOST="news.example.com")
    with translation.override("en"):
        html = render_to_string("includes/language_switcher.html", {"page": other}, request=request)

    assert 'href="/i18n/setlang/?language=zh-hans&amp;next=%2Fzh-hans%2F"' in html


def test_switcher_off_the_page_tree_keeps_the_path_without_prefix(db):
    request = RequestFactory().get("/zh-hans/newsletter/preferences/tok/")
    with translation.override("zh-hans"):
        html = render_to_string("includes/language_switcher.html", {}, request=request)

    assert 'href="/i18n/setlang/?language=en&amp;next=%2Fnewsletter%2Fpreferences%2Ftok%2F"' in html
    assert 'aria-current="true">简体中文<' in html


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_urls_in_emails_stay_unprefixed_in_every_language(language):
    with translation.override(language):
        assert reverse("subscribers:one_click", args=["tok"]) == "/newsletter/unsubscribe/tok/one-click/"
        assert reverse("subscribers:unsubscribe", args=["tok"]) == "/newsletter/unsubscribe/tok/"
        assert reverse("subscribers:preferences", args=["tok"]) == "/newsletter/preferences/tok/"
        assert reverse("subscribers:confirm", args=["tok"]) == "/newsletter/confirm/tok/"
        assert reverse("campaigns:click", args=["sig"]) == "/campaigns/c/sig/"
        assert reverse("campaigns:open", args=[7]) == "/campaigns/o/7.gif"


def test_one_click_post_is_answered_directly_whatever_the_language(client, db):
    # A bad token still proves the route: 400 from the view itself, never a redirect to a prefix.
    response = client.post("/newsletter/unsubscribe/forged/one-click/", HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert response.status_code == 400
    assert response.content.decode() == "此退订链接无效。"


def test_the_switcher_adds_no_csrf_token_or_cookie_to_the_page(client, home_page, translate_page):
    translate_page(home_page, "zh-hans", title="大字报")

    response = client.get("/zh-hans/")

    assert "csrfmiddlewaretoken" not in response.content.decode()
    assert "Set-Cookie" not in response.headers


def test_translated_pages_name_each_other_in_hreflang_links(client, chinese_archive):
    english = client.get("/archive/").content.decode()
    chinese = client.get("/zh-hans/archive/").content.decode()

    alternates = (
        '<link rel="alternate" hreflang="en" href="https://news.example.com/archive/">',
        '<link rel="alternate" hreflang="zh-hans" href="https://news.example.com/zh-hans/archive/">',
        # The unprefixed URL: it sends each visitor to their language.
        '<link rel="alternate" hreflang="x-default" href="https://news.example.com/archive/">',
    )
    for link in alternates:
        assert link in english and link in chinese
    assert '<link rel="canonical" href="https://news.example.com/archive/">' in english
    assert '<link rel="canonical" href="https://news.example.com/zh-hans/archive/">' in chinese


def test_an_untranslated_page_has_a_canonical_link_and_no_alternates(client, archive_page):
    html = client.get("/archive/").content.decode()

    assert '<link rel="canonical" href="https://news.example.com/archive/">' in html
    assert "hreflang=" not in html.split("</head>")[0]
