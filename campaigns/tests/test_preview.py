"""The three preview modes of an issue, through Wagtail's admin preview endpoint (POST the edit
form, then GET the preview), as the editor's preview panel does."""

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from campaigns.models import NewsletterIssuePage


def edit_form_data(page, **overrides):
    data = {
        "title": page.title,
        "slug": page.slug,
        "subject": "Draft subject: the unsaved one",
        "preheader": "Unsaved preheader",
        "issue_date": "2026-04-01",
        "hero_image": "",
        "hero_alt_text": "",
        "body": streamfield(
            [
                ("heading", {"text": "Fresh heading", "level": "h2"}),
                ("paragraph", rich_text('<p>Hello %%name%%, read <a href="https://example.org/x">this</a>.</p>')),
                ("button", {"label": "Go", "page": "", "link_url": "https://example.org/go"}),
            ]
        ),
        "comments": inline_formset([]),
    }
    data.update(overrides)
    return nested_form_data(data)


@pytest.fixture
def preview(client, admin_user, issue_page):
    """GET the preview of ``issue_page`` with unsaved edits in a given mode; returns the response."""
    client.force_login(admin_user)
    url = reverse("wagtailadmin_pages:preview_on_edit", args=[issue_page.pk])
    posted = client.post(url, edit_form_data(issue_page))
    assert posted.json() == {"is_valid": True, "is_available": True}

    def get(mode):
        return client.get(url, {"mode": mode})

    return get


def test_issue_offers_web_email_and_plain_text_previews(db):  # a new Page reads the default Locale
    assert NewsletterIssuePage().preview_modes == [("", "Web page"), ("email", "Email (HTML)"), ("text", "Plain text")]


def test_web_preview_shows_the_unsaved_issue_as_a_page(preview):
    response = preview("")

    assert response.status_code == 200
    doc = BeautifulSoup(response.content, "html.parser")
    assert doc.find("h1").get_text() == "Draft subject: the unsaved one"
    assert doc.select_one(".issue-body h2").get_text() == "Fresh heading"
    assert doc.find("table", class_="container") is None


def test_email_preview_is_the_rendered_email_with_sample_recipient(preview, issue_page):
    response = preview("email")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    doc = BeautifulSoup(html, "html.parser")
    assert doc.find("table", class_="container")["width"] == "600"
    assert doc.find("h1").get_text() == "Draft subject: the unsaved one"
    assert "Hello Sample Reader" in html
    assert "%%" not in html
    unsubscribe = doc.find("a", string="Unsubscribe")["href"]
    assert unsubscribe == issue_page.sample_recipient()["unsubscribe_url"]
    assert unsubscribe.startswith("https://news.example.com/")


def test_text_preview_shows_the_plaintext_part_with_sample_recipient(preview):
    response = preview("text")

    assert response.status_code == 200
    doc = BeautifulSoup(response.content, "html.parser")
    text = doc.find("pre").get_text()
    assert text.startswith("The Broadsheet\n")
    assert "Draft subject: the unsaved one\n==============================" in text
    assert "Hello Sample Reader, read this (https://example.org/x)." in text
    assert "Go: https://example.org/go" in text
    assert "Unsubscribe\n(https://news.example.com/newsletter/unsubscribe/" in text
    assert "%%" not in text


def test_preview_does_not_save_the_edits(preview, issue_page):
    preview("email")

    issue_page.refresh_from_db()
    assert issue_page.subject == "Spring issue: news from the press"


@pytest.mark.parametrize("mode", ["email", "text"])
def test_email_and_text_previews_are_not_held_to_the_public_pages_policy(preview, mode):
    """Wagtail renders a preview through the middleware as a request for the page's public URL;
    the strict public CSP (no inline styles) blanked the email's inline styles and the plain-text
    preview's stylesheet. Those documents are never served on the site."""
    response = preview(mode)

    assert "Content-Security-Policy" not in response.headers


def test_web_preview_keeps_the_public_pages_policy(preview):
    policy = preview("").headers.get("Content-Security-Policy", "")

    assert "style-src 'self'" in policy and "'unsafe-inline'" not in policy
