"""The public page cache (newsletter_site/page_cache.py): what it serves, to whom, and when it
forgets. Each test asks the question a visitor or an editor would notice: a stale page after
publishing, someone else's CSRF token, a page in the wrong language, an editor's user bar."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import constants
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client

from campaigns.tests.factories import make_issue
from newsletter_site import page_cache
from pages.models import SubscribePage
from subscribers.models import MailingList
from subscribers.tests.factories import MailingListFactory

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})"')


@pytest.fixture
def subscribe_page(home_page, newsletter_settings):
    return home_page.add_child(instance=SubscribePage(title="Subscribe", slug="subscribe"))


@pytest.fixture
def home_with_form(home_page, subscribe_page):
    MailingListFactory(name="The Broadsheet", slug="broadsheet", is_public=True)
    home_page.body = [("subscribe_form", {"heading": "Get the next issue", "page": subscribe_page})]
    home_page.save_revision().publish()
    return home_page


def test_a_page_is_served_from_the_cache_without_touching_the_database(issue_page, django_assert_num_queries):
    first = Client().get(issue_page.url)
    with django_assert_num_queries(0):
        again = Client().get(issue_page.url)

    assert again.status_code == 200
    assert again.content == first.content
    assert "Hello, readers" in again.content.decode()


def test_publishing_a_change_is_seen_at_once(issue_page):
    Client().get(issue_page.url)
    Client().get(issue_page.get_parent().url)
    issue_page.subject = "Summer issue"
    issue_page.save_revision().publish()

    assert "Summer issue" in Client().get(issue_page.url).content.decode()
    assert "Summer issue" in Client().get(issue_page.get_parent().url).content.decode()


def test_a_new_issue_appears_in_the_archive_and_feed_at_once(archive_page, issue_page):
    Client().get(archive_page.url)
    Client().get(archive_page.url + "feed/")
    make_issue(archive_page, title="Issue 2: Autumn", slug="issue-2", subject="Autumn issue")

    assert "Autumn issue" in Client().get(archive_page.url).content.decode()
    assert "Autumn issue" in Client().get(archive_page.url + "feed/").content.decode()


def test_an_unpublished_page_is_gone_at_once(issue_page):
    url = issue_page.url
    assert Client().get(url).status_code == 200
    issue_page.unpublish()

    assert Client().get(url).status_code == 404


def test_changed_newsletter_settings_are_seen_at_once(issue_page, newsletter_settings):
    Client().get(issue_page.url)
    newsletter_settings.postal_address = "2 Printing House Square"
    newsletter_settings.save()

    assert "2 Printing House Square" in Client().get(issue_page.url).content.decode()


def test_a_new_public_list_is_offered_by_a_cached_form_at_once(home_with_form):
    Client().get("/")
    MailingListFactory(name="Culture desk", slug="culture", is_public=True)

    assert "Culture desk" in Client().get("/").content.decode()


def test_an_editor_gets_the_live_page_with_the_user_bar_and_nothing_is_stored(issue_page):
    editor = get_user_model().objects.create_superuser("editor", "editor@example.com", "pw")
    client = Client()
    client.force_login(editor)

    assert "wagtail-userbar" in client.get(issue_page.url).content.decode()
    assert "wagtail-userbar" not in Client().get(issue_page.url).content.decode()
    # and the anonymous copy is not what the editor sees afterwards
    assert "wagtail-userbar" in client.get(issue_page.url).content.decode()


def test_a_cached_form_gives_each_visitor_their_own_csrf_token_and_cookie(home_with_form):
    ann, bob = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first = ann.get("/")
    second = bob.get("/")  # from the cache

    token_ann, token_bob = TOKEN.search(first.content.decode())[1], TOKEN.search(second.content.decode())[1]
    assert "csrftoken" in second.cookies  # the visitor who had none gets one
    assert second.cookies["csrftoken"].value != first.cookies["csrftoken"].value
    assert token_ann != token_bob
    assert "private" in second["Cache-Control"] and not second.has_header("ETag")
    # Bob's token from the cached page is valid for Bob: the form posts (303 to the thank-you text).
    form = {"email": "bob@example.com", "lists": [MailingList.objects.get().pk], "csrfmiddlewaretoken": token_bob}
    posted = bob.post("/subscribe/", form)
    assert posted.status_code == 303


def test_the_stored_page_holds_no_csrf_token(home_with_form):
    response = Client().get("/")
    token = TOKEN.search(response.content.decode())[1]

    # LocMemCache's own keys are ":1:<key>"; each entry's content is what later visitors get.
    keys = [key.split(":", 2)[2] for key in cache._cache if page_cache.KEY_PREFIX in key]
    entries = [cache.get(key) for key in keys if key != page_cache.GENERATION_KEY]
    assert len(entries) == 1
    content = entries[0]["content"]
    assert token.encode() not in content
    assert not TOKEN.search(content.decode())
    assert b"csrfmiddlewaretoken" in content


def test_each_language_gets_its_own_page(client, archive_page, translate_page):
    translate_page(archive_page, "zh-hans", title="往期")

    english = Client().get(archive_page.url)
    chinese = Client(headers={"accept-language": "zh-Hans"}).get(archive_page.url)
    english_again = Client().get(archive_page.url)

    assert english.status_code == 200 and english_again.status_code == 200
    assert english_again.content == english.content
    assert chinese.status_code == 302 and chinese["Location"].startswith("/zh-hans/")
    assert Client(headers={"accept-language": "zh-Hans"}).get(archive_page.url)["Location"] == chinese["Location"]
    assert Client(headers={"accept-language": "en"}).get(archive_page.url).status_code == 200
    assert english["Content-Language"] == "en"
    assert "往期" in Client().get(chinese["Location"]).content.decode()


def test_the_archive_has_an_etag_and_answers_304(archive_page, issue_page, settings):
    first = Client().get(archive_page.url)
    etag = first["ETag"]
    assert "max-age=60" in first["Cache-Control"]

    again = Client(headers={"if-none-match": etag}).get(archive_page.url)
    assert again.status_code == 304
    feed = Client().get(archive_page.url + "feed/")
    assert Client(headers={"if-none-match": feed["ETag"]}).get(archive_page.url + "feed/").status_code == 304

    issue_page.title = "Issue 1: Summer"
    issue_page.save_revision().publish()
    assert Client(headers={"if-none-match": etag}).get(archive_page.url).status_code == 200


def test_other_query_strings_are_not_stored(archive_page, issue_page, django_assert_max_num_queries):
    Client().get(archive_page.url + "?utm_source=x")
    with django_assert_max_num_queries(50) as queries:
        Client().get(archive_page.url + "?utm_source=x")
    assert len(queries) > 0
    Client().get(archive_page.url + "?page=1")
    with django_assert_max_num_queries(0):
        Client().get(archive_page.url + "?page=1")
    # Counting pages past the end (or writing one differently) stores nothing new.
    for query in ("?page=1000", "?page=01", "?page=0"):
        Client().get(archive_page.url + query)
        with django_assert_max_num_queries(50) as queries:
            assert Client().get(archive_page.url + query).status_code == 200
        assert len(queries) > 0, query


def test_a_visitor_with_a_message_gets_a_fresh_page(issue_page, rf):
    Client().get(issue_page.url)
    client = Client()
    request = rf.get("/")
    storage = CookieStorage(request)
    storage.add(constants.INFO, "Saved")
    response = HttpResponse()
    storage.update(response)
    client.cookies["messages"] = response.cookies["messages"].value

    response = client.get(issue_page.url)
    assert response.status_code == 200
    assert not response.has_header("ETag")  # not from the cache, and not stored


def test_a_response_that_sets_a_cookie_is_not_stored(issue_page, monkeypatch):
    from campaigns.models import NewsletterIssuePage

    original = NewsletterIssuePage.serve

    def serve_with_cookie(self, request, *args, **kwargs):
        response = original(self, request, *args, **kwargs)
        response.set_cookie("tracker", "visitor-42")
        return response

    monkeypatch.setattr(NewsletterIssuePage, "serve", serve_with_cookie)
    Client().get(issue_page.url)
    monkeypatch.setattr(NewsletterIssuePage, "serve", original)

    # Had it been stored, this visitor would get the first visitor's cookie.
    assert "tracker" not in Client().get(issue_page.url).cookies


def test_the_cache_can_be_switched_off(issue_page, settings, django_assert_max_num_queries):
    settings.BROADSHEET = {**settings.BROADSHEET, "PAGE_CACHE_SECONDS": 0}
    client = Client()
    client.get(issue_page.url)
    with django_assert_max_num_queries(50) as queries:
        response = client.get(issue_page.url)
    assert len(queries) > 0 and not response.has_header("ETag")
