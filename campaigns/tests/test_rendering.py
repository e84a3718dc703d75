import re
import uuid

import pytest
from bs4 import BeautifulSoup
from django.core.cache import cache
from django.core.files.base import ContentFile
from wagtail.documents.models import Document
from wagtail.images.models import Image
from wagtail.images.tests.utils import get_test_image_file

from campaigns.issue_email import render_issue
from campaigns.tests.factories import make_issue
from mail.plaintext import display_width
from mail.rendering import PLACEHOLDERS, RenderedEmail, render_transactional
from subscribers.links import RecipientLinks

BASE = "https://news.example.com"
GMAIL_CLIP_BYTES = 102 * 1024


@pytest.fixture
def image(db):
    # Wagtail caches renditions by image id in the (locmem, process-wide) cache; ids repeat
    # between tests after rollback, so a stale rendition of another test's image could be served.
    cache.clear()
    return Image.objects.create(title="Printing press", file=get_test_image_file(filename="press.png"))


@pytest.fixture
def document(db):
    return Document.objects.create(title="Annual report", file=ContentFile(b"%PDF-1.4 report", name="report.pdf"))


@pytest.fixture
def full_issue(archive_page, newsletter_settings, image, document):
    """An issue using every block type, a hero image and rich-text links to a page and a document."""
    body = [
        ("heading", {"text": "Inside this issue", "level": "h2"}),
        (
            "paragraph",
            f'<p>See <a linktype="page" id="{archive_page.pk}">the archive</a>, '
            f'<a linktype="document" id="{document.pk}">the report</a> and '
            '<a href="https://example.org/story">a story</a>.</p>',
        ),
        ("image", {"image": image, "alt_text": "A printing press at work", "caption": "Our press"}),
        ("button", {"label": "Browse the archive", "page": archive_page, "link_url": ""}),
        ("quote", {"text": "Print is not dead.", "attribution": "An editor"}),
        ("divider", None),
        (
            "article_teaser",
            {
                "left": {
                    "image": image,
                    "alt_text": "Type cases",
                    "title": "Type",
                    "summary": "On lead.",
                    "page": None,
                    "link_url": "https://example.org/type",
                },
                "right": {
                    "image": None,
                    "alt_text": "",
                    "title": "Ink",
                    "summary": "On ink.",
                    "page": archive_page,
                    "link_url": "",
                },
            },
        ),
    ]
    return make_issue(archive_page, body=body, hero_image=image, hero_alt_text="The newsroom at dawn")


@pytest.fixture
def rendered(full_issue):
    return render_issue(full_issue)


def soup(html):
    return BeautifulSoup(html, "html.parser")


def test_subject_and_preheader_come_from_the_page(rendered, full_issue):
    assert rendered.subject == full_issue.subject
    assert rendered.preheader == full_issue.preheader


def test_every_link_and_image_is_absolute_or_a_placeholder(rendered):
    doc = soup(rendered.html)
    urls = [a["href"] for a in doc.find_all("a", href=True)] + [img["src"] for img in doc.find_all("img")]

    assert len(urls) >= 10
    for url in urls:
        assert url.startswith((BASE + "/", "https://example.org/")) or url in PLACEHOLDERS.values(), url


def test_rich_text_page_and_document_links_resolve_against_base_url(rendered, full_issue, document):
    hrefs = {a.get_text(strip=True): a["href"] for a in soup(rendered.html).find_all("a", href=True)}

    assert hrefs["the archive"] == f"{BASE}/archive/"
    assert hrefs["the report"] == BASE + document.url
    assert document.url.startswith(f"/documents/{document.pk}/")


def test_relative_urls_follow_the_base_url_argument(full_issue):
    html = render_issue(full_issue, base_url="https://mail.example.net/").html

    srcs = [img["src"] for img in soup(html).find_all("img")]
    assert srcs
    assert all(src.startswith("https://mail.example.net/media/") for src in srcs)


def test_images_are_wagtail_renditions_with_their_alt_text(rendered):
    images = soup(rendered.html).find_all("img")

    alts = [img.get("alt") for img in images]
    assert alts == ["The newsroom at dawn", "A printing press at work", "Type cases"]
    srcs = [img["src"] for img in images]
    assert all(re.search(r"/media/images/press\w*\.[\w.-]+\.png$", src) for src in srcs), srcs


def test_css_is_inlined_and_only_media_queries_stay_in_a_style_block(rendered):
    doc = soup(rendered.html)

    assert doc.find("link", rel="stylesheet") is None
    assert "font-size" in doc.find("h1")["style"]
    assert "margin" in doc.find("p")["style"]
    assert "color" in doc.find("td", class_="content")["style"]
    styles = "".join(tag.get_text() for tag in doc.find_all("style"))
    assert "@media only screen and (max-width: 620px)" in styles
    assert "@media (prefers-color-scheme: dark)" in styles
    assert ".content p" not in styles.split("@media")[0]


def test_layout_is_a_600px_table_that_works_without_style_support(rendered):
    container = soup(rendered.html).find("table", class_="container")

    assert container["width"] == "600"
    assert container["role"] == "presentation"
    assert container["bgcolor"]


def test_email_declares_light_and_dark_colour_schemes(rendered):
    meta = soup(rendered.html).find("meta", attrs={"name": "color-scheme"})

    assert meta["content"] == "light dark"


def test_preheader_is_hidden_in_html_and_absent_from_text(rendered, full_issue):
    preheader = soup(rendered.html).find(class_="preheader")

    assert preheader.get_text().startswith(full_issue.preheader)
    assert "display:none" in preheader["style"].replace(" ", "")
    assert full_issue.preheader not in rendered.text


def test_footer_has_sender_postal_address_and_recipient_links(rendered, full_issue):
    footer = soup(rendered.html).find("td", class_="footer")
    links = {a.get_text(): a["href"] for a in footer.find_all("a")}

    assert "The Broadsheet" in footer.get_text()
    assert "1 Fleet Street" in footer.get_text()
    assert "London EC4Y 1AA" in footer.get_text()
    assert links == {
        "Unsubscribe": "%%unsubscribe_url%%",
        "Manage preferences": "%%preferences_url%%",
        "View in browser": full_issue.full_url,
    }
    assert full_issue.full_url.startswith(BASE + "/")


def test_plaintext_has_content_buttons_alt_text_and_footer(rendered):
    text = rendered.text

    assert "Inside this issue\n=================" in text
    assert f"the archive ({BASE}/archive/)" in text
    assert f"Browse the archive: {BASE}/archive/" in text
    assert "A printing press at work" in text
    assert "1 Fleet Street\nLondon EC4Y 1AA" in text
    # Each per-recipient link on a line of its own, so its filled value cannot overflow a line.
    assert "Unsubscribe\n(%%unsubscribe_url%%)\n" in text
    assert "Manage preferences\n(%%preferences_url%%)\n" in text
    assert max(len(line) for line in text.splitlines()) <= 78


def test_personalise_fills_every_placeholder(rendered):
    html, text = rendered.personalise(
        {
            "name": "Ada",
            "email": "ada@example.com",
            "unsubscribe_url": f"{BASE}/newsletter/unsubscribe/tok1/",
            "preferences_url": f"{BASE}/newsletter/preferences/tok1/",
        }
    )

    assert "%%" not in html
    assert "%%" not in text
    assert f'href="{BASE}/newsletter/unsubscribe/tok1/"' in html
    assert f"Unsubscribe\n({BASE}/newsletter/unsubscribe/tok1/)" in text


def test_filled_plaintext_footer_fits_78_columns_with_real_recipient_links(rendered):
    links = RecipientLinks([1, 2], campaign_id=12345).urls(uuid.uuid4())
    assert len(links["unsubscribe_url"]) > 78, "a real unsubscribe link is longer than a line"

    _, text = rendered.personalise({"name": "Ada " * 30, "email": "a" * 60 + "@example.com", **links})

    for line in text.splitlines():
        # A URL cannot be broken: when longer than a line it stands alone, in its parentheses.
        assert display_width(line) <= 78 or re.fullmatch(r"\(https://\S+\)", line), line
    assert f"Unsubscribe\n({links['unsubscribe_url']})\nManage preferences\n({links['preferences_url']})" in text


def test_plaintext_has_no_stray_alt_lines_for_hero_and_teaser_pictures(rendered):
    text = rendered.text

    assert "The newsroom at dawn" not in text  # hero picture: decorative
    assert "Type cases" not in text  # teaser picture beside its own title link
    assert "Type (https://example.org/type)" in text


def test_personalise_escapes_values_in_html_only():
    email = RenderedEmail(subject="s", preheader="p", html="<p>Hi %%name%%</p>", text="Hi %%name%%")

    html, text = email.personalise({"name": '<script>alert("x")</script> & Co'})

    assert html == "<p>Hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co</p>"
    assert text == 'Hi <script>alert("x")</script> & Co'


def test_personalise_blanks_missing_values_instead_of_leaking_tokens():
    email = RenderedEmail(subject="s", preheader="p", html="<p>Hi %%name%%</p>", text="Hi %%name%%")

    assert email.personalise({}) == ("<p>Hi </p>", "Hi ")


def test_personalise_touches_no_database_or_templates(rendered, django_assert_num_queries):
    with django_assert_num_queries(0):
        rendered.personalise({"name": "Ada"})


def test_a_long_issue_stays_under_gmails_clipping_limit(archive_page, newsletter_settings, image):
    paragraph = "<p>" + "A paragraph of a long newsletter issue with a link. " * 8 + "</p>"
    body = []
    for n in range(12):
        body += [
            ("heading", {"text": f"Story {n}", "level": "h2"}),
            ("paragraph", paragraph * 2),
            ("image", {"image": image, "alt_text": f"Picture {n}", "caption": "Caption"}),
            ("button", {"label": "Read on", "page": None, "link_url": f"https://example.org/story/{n}"}),
        ]
    issue = make_issue(archive_page, slug="long", body=body)

    html = render_issue(issue).personalise({"name": "Ada", "unsubscribe_url": BASE + "/u/" + "x" * 60})[0]

    # The lower bound shows the issue is really long (48 blocks), not that the test is trivially small.
    assert 20 * 1024 < len(html.encode()) < GMAIL_CLIP_BYTES


def test_transactional_email_uses_the_layout_without_unsubscribe_links(newsletter_settings, tmp_path, settings):
    template = tmp_path / "confirm.html"
    template.write_text('<p>Hello {{ name }}, <a href="{{ link }}">confirm</a>.</p>')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]

    email = render_transactional(
        subject="Confirm", preheader="One click", template_name="confirm.html", context={"name": "Ada", "link": "/c/1/"}
    )

    doc = soup(email.html)
    assert doc.find("a", string="confirm")["href"] == f"{BASE}/c/1/"
    assert "1 Fleet Street" in doc.find("td", class_="footer").get_text()
    assert "Unsubscribe" not in email.html
    assert f"confirm ({BASE}/c/1/)" in email.text
    # The newsletter footer ("you receive this because you subscribed") is untrue before confirming.
    assert newsletter_settings.footer_text not in email.text


def test_transactional_email_keeps_unsubscribe_link_when_given(newsletter_settings, tmp_path, settings):
    template = tmp_path / "notice.html"
    template.write_text("<p>Notice</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]

    email = render_transactional(
        subject="Notice",
        preheader="",
        template_name="notice.html",
        context={"unsubscribe_url": PLACEHOLDERS["unsubscribe_url"]},
    )

    assert soup(email.html).find("a", string="Unsubscribe")["href"] == "%%unsubscribe_url%%"
    assert "Manage preferences" not in email.html
