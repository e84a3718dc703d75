"""Static files can never silently go missing: every public page is rendered with the production
static storage (a manifest of hashed names, as `collectstatic` builds it), and every `{% static %}`
reference must resolve to a collected file."""

import re

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string
from django.test import Client

from pages.models import SubscribePage
from subscribers import tokens
from subscribers.tests.factories import MailingListFactory, SubscriptionFactory

STATIC_REF = re.compile(r"""(?:href|src)=["'](/static/[^"'?#]+)""")


@pytest.fixture
def collected(settings, tmp_path):
    """collectstatic into a temporary STATIC_ROOT with the manifest storage production uses."""
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        # Whitenoise's compressed variant adds only compression on top of this manifest storage.
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


@pytest.fixture
def public_pages(archive_page, issue_page, newsletter_settings):
    """Every public page's path (GET), plus the POST answers, with what they need in the database."""
    subscribe = archive_page.get_parent().add_child(instance=SubscribePage(title="Subscribe", slug="subscribe"))
    news = MailingListFactory(slug="news", name="News")
    pending = SubscriptionFactory(list=news, status="pending", subscriber__email="pending@example.com")
    subscribed = SubscriptionFactory(list=news, subscriber__email="reader@example.com")
    uid = subscribed.subscriber.uid
    return {
        "home": "/",
        "archive": archive_page.url,
        "issue": issue_page.url,
        "subscribe": subscribe.url,
        "thank you": subscribe.url + "?sent=1",
        "confirm": f"/newsletter/confirm/{tokens.confirm_token(pending.subscriber.uid, [news.pk])}/",
        "preferences": f"/newsletter/preferences/{tokens.preferences_token(uid)}/",
        "unsubscribe": f"/newsletter/unsubscribe/{tokens.unsubscribe_token(uid, [news.pk])}/",
        "bad link": "/newsletter/confirm/forged/",
        "not found": "/no-such-page/",
    }


def static_refs(html: str) -> list[str]:
    return STATIC_REF.findall(html)


def assert_collected(html: str, static_root, page: str) -> None:
    refs = static_refs(html)
    assert refs, f"{page}: no stylesheet at all"
    for ref in refs:
        assert (static_root / ref.removeprefix("/static/")).is_file(), f"{page}: {ref} was not collected"


def test_every_public_page_references_only_collected_static_files(collected, public_pages):
    client = Client()
    for name, path in public_pages.items():
        # A {% static %} name missing from the manifest raises here (manifest_strict), as it would
        # be a 500 in production; a found name must point at a file collectstatic wrote.
        response = client.get(path)
        assert response.status_code in (200, 400, 404), name
        html = response.content.decode()
        assert "/static/broadsheet/site." in html, name
        assert_collected(html, collected, name)
    # The answers to form posts render the same frame.
    unsubscribe = client.post(public_pages["unsubscribe"])
    assert_collected(unsubscribe.content.decode(), collected, "unsubscribed")
    confirm = client.post(public_pages["confirm"])
    assert_collected(confirm.content.decode(), collected, "confirmed")
    already = client.get(public_pages["confirm"])
    assert_collected(already.content.decode(), collected, "already confirmed")
    leave = client.post(public_pages["preferences"], {"unsubscribe_all": "1"})
    assert "Unsubscribe from everything?" in leave.content.decode()
    assert_collected(leave.content.decode(), collected, "unsubscribe from everything?")
    assert_collected(render_to_string("500.html"), collected, "500")


def test_every_public_page_links_to_its_own_site_relatively_and_needs_no_inline_code(public_pages, settings):
    """Same-site links are paths (the site works at any address), and nothing inline: a strict
    Content-Security-Policy (no 'unsafe-inline') breaks no page."""
    client = Client()
    answers = {name: client.get(path) for name, path in public_pages.items()}
    answers["confirmed"] = client.post(public_pages["confirm"])
    answers["unsubscribed"] = client.post(public_pages["unsubscribe"])
    for name, response in answers.items():
        html = response.content.decode()
        # Only the canonical and hreflang links name the site's address (search engines want it whole).
        body = re.sub(r'<link rel="canonical"[^>]*>|<link rel="alternate" hreflang=[^>]*>', "", html)
        assert settings.BASE_URL not in body, name
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), f"{name}: inline script"
        assert not re.search(r"<style|\sstyle=", html), f"{name}: inline style"
        assert not re.search(r"\son[a-z]+=", html), f"{name}: inline event handler"


def test_a_missing_static_file_fails_the_check(collected, settings, tmp_path):
    """The check itself can fail: a template naming a file nobody committed does not render."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "broken.html").write_text("{% load static %}<link href=\"{% static 'gone.css' %}\">")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates"]}]

    with pytest.raises(ValueError, match=r"gone\.css"):
        render_to_string("broken.html")
