"""The public side: home page, the paginated archive, its Atom feed and each issue as a web page."""

import datetime
import xml.etree.ElementTree as ET

import pytest
from bs4 import BeautifulSoup
from django.core.cache import cache
from wagtail.images.models import Image
from wagtail.images.tests.utils import get_test_image_file

from campaigns.tests.factories import make_issue

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def twelve_issues(archive_page, newsletter_settings):
    """Issues 1..12, dated one week apart, created in shuffled order; one extra draft."""
    start = datetime.date(2026, 1, 1)
    issues = {}
    for n in (5, 1, 12, 3, 9, 2, 7, 11, 4, 8, 10, 6):
        issues[n] = make_issue(
            archive_page,
            title=f"Issue {n}",
            slug=f"issue-{n}",
            subject=f"Subject {n}",
            issue_date=start + datetime.timedelta(weeks=n),
        )
    make_issue(archive_page, title="Draft", slug="draft", subject="Draft subject", publish=False)
    return issues


def subjects(response):
    doc = BeautifulSoup(response.content, "html.parser")
    return [strong.get_text() for strong in doc.select(".issue-list .issue-list__title")]


def test_archive_lists_newest_first_ten_per_page(client, twelve_issues):
    response = client.get("/archive/")

    assert response.status_code == 200
    assert subjects(response) == [f"Subject {n}" for n in range(12, 2, -1)]


def test_archive_second_page_has_the_oldest_issues(client, twelve_issues):
    assert subjects(client.get("/archive/?page=2")) == ["Subject 2", "Subject 1"]


def test_archive_out_of_range_or_bad_page_numbers_fall_back(client, twelve_issues):
    assert subjects(client.get("/archive/?page=99")) == ["Subject 2", "Subject 1"]
    assert subjects(client.get("/archive/?page=abc"))[0] == "Subject 12"


def test_archive_hides_drafts(client, twelve_issues):
    assert "Draft subject" not in client.get("/archive/").content.decode()


def test_archive_links_its_atom_feed(client, twelve_issues):
    doc = BeautifulSoup(client.get("/archive/").content, "html.parser")

    alternate = doc.find("link", rel="alternate", type="application/atom+xml")
    assert alternate["href"] == "/archive/feed/"
    assert doc.find("a", href="/archive/feed/")


def test_feed_lists_published_issues_newest_first_with_absolute_links(client, twelve_issues):
    response = client.get("/archive/feed/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)  # noqa: S314 - our own feed, produced by the test
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == [f"Subject {n}" for n in range(12, 0, -1)]
    assert entries[0].find(f"{ATOM}link").get("href") == "https://news.example.com/archive/issue-12/"
    assert entries[0].find(f"{ATOM}updated").text


def test_feed_is_titled_with_the_newsletters_name(client, twelve_issues, newsletter_settings):
    feed = ET.fromstring(client.get("/archive/feed/").content)  # noqa: S314 - our own feed

    assert feed.find(f"{ATOM}title").text == "The Broadsheet"


def test_issue_page_shows_subject_date_hero_and_body(client, archive_page, newsletter_settings):
    cache.clear()  # Wagtail's rendition cache is keyed by image id, and ids repeat between tests
    image = Image.objects.create(title="Hero", file=get_test_image_file(filename="hero.png"))
    make_issue(archive_page, slug="with-hero", hero_image=image, hero_alt_text="Readers at a kiosk")

    response = client.get("/archive/with-hero/")

    assert response.status_code == 200
    doc = BeautifulSoup(response.content, "html.parser")
    assert doc.find("h1").get_text() == "Spring issue: news from the press"
    assert doc.find("time")["datetime"] == "2026-03-21"
    assert doc.select_one(".issue__hero img")["alt"] == "Readers at a kiosk"
    body = doc.select_one(".issue-body")
    assert body.find("h2").get_text() == "Hello, readers"
    assert body.find("a", href="https://example.org/story").get_text() == "first story"
    assert body.find("blockquote")
    assert body.find("hr")
    assert body.find("a", class_="button")["href"] == "https://example.org/more"


def test_home_page_shows_the_latest_three_issues_and_links_the_archive(client, twelve_issues):
    response = client.get("/")

    assert response.status_code == 200
    assert subjects(response) == ["Subject 12", "Subject 11", "Subject 10"]
    assert BeautifulSoup(response.content, "html.parser").find("a", href="/archive/")


def test_home_page_links_the_subscribe_page(client, home_page):
    from pages.models import SubscribePage

    home_page.add_child(instance=SubscribePage(title="Subscribe", slug="subscribe"))

    doc = BeautifulSoup(client.get("/").content, "html.parser")

    assert doc.select_one(".content a.button")["href"] == "/subscribe/"
