"""The email's footer says what the reader receives and where; mobile and dark-mode details of the layout."""

import re

import pytest
from bs4 import BeautifulSoup
from django.core import mail

from campaigns.rendering import render_issue, render_transactional
from campaigns.sending import send_batch
from campaigns.tests.factories import started_campaign

pytestmark = pytest.mark.django_db


def styles(html):
    return "\n".join(tag.get_text() for tag in BeautifulSoup(html, "html.parser").find_all("style"))


def media_block(css, query):
    start = css.index(query)
    return css[start : css.index("\n}", start)]


def test_each_campaign_email_names_the_list_and_the_address_it_was_sent_to(
    issue_page, django_capture_on_commit_callbacks
):
    campaign = started_campaign(issue_page, 2, django_capture_on_commit_callbacks)
    list_name = campaign.lists.get().name

    send_batch(campaign.pk, worker_id="w1")

    by_address = {message.to[0].split("<")[-1].rstrip(">"): message for message in mail.outbox}
    message = by_address["reader1@example.com"]
    html = message.alternatives[0][0]
    assert f"You are receiving {list_name} at reader1@example.com." in html
    assert "reader1@example.com." in message.body and f"You are receiving {list_name} at" in message.body
    assert "reader0@example.com" not in html  # per recipient, not the first recipient's address


def test_a_campaign_to_several_lists_names_them_all(issue_page):
    rendered = render_issue(issue_page, lists=["Culture desk", "The Broadsheet"])

    assert "You are receiving Culture desk and The Broadsheet at %%email%%." in rendered.html


def test_previews_and_test_sends_name_the_newsletter(issue_page):
    html, _ = render_issue(issue_page).personalise({"email": "ada@example.org"})

    assert "You are receiving The Broadsheet at ada@example.org." in html


def test_a_confirmation_email_does_not_claim_the_reader_receives_anything(newsletter_settings, tmp_path, settings):
    (tmp_path / "body.html").write_text("<p>Confirm please.</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]

    rendered = render_transactional(subject="Confirm", preheader="", template_name="body.html", context={})

    assert "You are receiving" not in rendered.html


def test_on_mobile_stacked_images_go_full_width_and_the_date_lines_up_with_the_body(issue_page):
    mobile = media_block(styles(render_issue(issue_page).html), "@media only screen and (max-width: 620px)")

    padding_rule = next(line for line in mobile.splitlines() if "padding-left: 16px" in line)
    assert ".date" in padding_rule and ".content" in padding_rule
    fluid = next(line for line in mobile.splitlines() if line.strip().startswith(".fluid"))
    assert "max-width: 100% !important" in fluid  # beats the inline max-width:264px of a teaser image


def test_alt_text_of_blocked_images_is_legible_in_dark_mode(issue_page):
    html = render_issue(issue_page).html
    dark = media_block(styles(html), "@media (prefers-color-scheme: dark)")

    assert re.search(r"^\s*img \{ color: #ece8df !important; \}", dark, re.M)
