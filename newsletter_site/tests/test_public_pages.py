"""The public site's frame, error pages and uploaded files, through Django's test client."""

import pytest
from django.template.loader import render_to_string
from django.test import Client

from pages.models import SubscribePage


@pytest.fixture
def subscribe_page(home_page, newsletter_settings):
    return home_page.add_child(instance=SubscribePage(title="Subscribe", slug="subscribe"))


def test_pages_link_to_the_site_relatively_and_load_the_committed_stylesheet(archive_page, issue_page, subscribe_page):
    html = Client().get(issue_page.url).content.decode()

    assert 'href="/static/broadsheet/site.css"' in html
    assert 'href="/archive/"' in html and 'href="/subscribe/"' in html
    assert 'href="/archive/feed/"' in html
    # Only the canonical and hreflang links name the site's address (search engines want it whole).
    links = [line for line in html.splitlines() if "https://news.example.com/" in line]
    assert all('<link rel="canonical"' in line or "hreflang=" in line for line in links), links


def test_buttons_and_teasers_linking_to_a_page_of_the_site_use_its_path(archive_page, newsletter_settings):
    from campaigns.tests.factories import make_issue

    teaser = {
        "image": None,
        "alt_text": "",
        "title": "All issues",
        "summary": "",
        "page": archive_page,
        "link_url": "",
    }
    issue = make_issue(
        archive_page,
        body=[
            ("button", {"label": "Back to the archive", "page": archive_page, "link_url": ""}),
            ("article_teaser", {"left": teaser, "right": {**teaser, "title": "Again"}}),
        ],
    )
    html = Client().get(issue.url).content.decode()

    assert '<a class="button" href="/archive/">Back to the archive</a>' in html
    assert '<a href="/archive/">All issues</a>' in html


def test_every_issue_page_ends_with_a_subscribe_call_to_action(issue_page, subscribe_page):
    html = Client().get(issue_page.url).content.decode()

    cta = html[html.index('class="subscribe-cta"') :]
    assert 'href="/subscribe/"' in cta


def test_skip_link_leads_to_the_main_content(issue_page):
    html = Client().get(issue_page.url).content.decode()

    assert '<a class="skip-link" href="#main">' in html
    assert '<main id="main"' in html


def test_unknown_address_gets_the_designed_404_page(home_page, archive_page):
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "We couldn’t find that page" in html
    assert "broadsheet/site.css" in html and 'href="/archive/"' in html


def test_500_page_renders_without_a_request_or_database():
    html = render_to_string("500.html")

    assert "Something went wrong on our side" in html
    assert "broadsheet/site.css" in html


def test_uploads_are_served_only_when_serve_media_is_on(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "photo.txt").write_text("pixels")

    settings.SERVE_MEDIA = False
    assert Client().get("/media/images/photo.txt").status_code == 404
    settings.SERVE_MEDIA = True
    response = Client().get("/media/images/photo.txt")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"pixels"
    assert Client().get("/media/../settings.py").status_code in (400, 404)
