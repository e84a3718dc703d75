"""The editor's day in the admin: finding "Send as newsletter", the schedule field, starting a campaign."""

import io
import re

import pytest
from bs4 import BeautifulSoup
from django.core.management import call_command
from django.urls import reverse
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from campaigns.models import Campaign, NewsletterIssuePage
from campaigns.tests.factories import make_issue
from campaigns.tests.test_admin_send import send_url
from subscribers.audience import Audience
from subscribers.models import MailingList, Subscriber
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def issue_form(**fields):
    data = {
        "title": "Issue 2: Summer",
        "slug": "issue-2",
        "subject": "Summer issue",
        "preheader": "",
        "issue_date": "2026-06-21",
        "hero_alt_text": "",
        "body": streamfield([("paragraph", rich_text("<p>Hello</p>"))]),
        "comments": inline_formset([]),
        **fields,
    }
    return nested_form_data(data)


def published_message(response):
    return next(str(m) for m in response.context["messages"] if "published." in str(m))


# --- "Send as newsletter" where an editor looks for it ------------------------------------------


def test_the_published_message_of_a_new_issue_offers_send_as_newsletter(client, sender, archive_page):
    client.force_login(sender)
    add = reverse("wagtailadmin_pages:add", args=["campaigns", "newsletterissuepage", archive_page.pk])

    response = client.post(add, issue_form(**{"action-publish": "action-publish"}), follow=True)

    page = NewsletterIssuePage.objects.get(slug="issue-2")
    message = published_message(response)
    assert f'href="{send_url(page)}"' in message
    assert "Send as newsletter" in message
    assert "Edit" in message  # Wagtail's own buttons stay


def test_the_published_message_of_an_edited_issue_offers_send_as_newsletter(client, sender, issue_page):
    client.force_login(sender)
    edit = reverse("wagtailadmin_pages:edit", args=[issue_page.pk])

    data = issue_form(title=issue_page.title, slug=issue_page.slug, **{"action-publish": "action-publish"})
    response = client.post(edit, data, follow=True)

    assert f'href="{send_url(issue_page)}"' in published_message(response)


def test_saving_a_draft_or_publishing_without_send_permission_offers_no_send(client, sender, editor, issue_page):
    edit = reverse("wagtailadmin_pages:edit", args=[issue_page.pk])
    data = issue_form(title=issue_page.title, slug=issue_page.slug)

    client.force_login(sender)
    draft = client.post(edit, data, follow=True)
    client.force_login(editor)
    published = client.post(edit, {**data, "action-publish": "action-publish"}, follow=True)

    assert send_url(issue_page) not in " ".join(str(m) for m in draft.context["messages"])
    assert send_url(issue_page) not in published_message(published)


def header_send_buttons(client, page):
    """The "Send as newsletter" links shown in the editor's header itself (not in its "..." menu)."""
    doc = BeautifulSoup(client.get(reverse("wagtailadmin_pages:edit", args=[page.pk])).text, "html.parser")
    header = doc.select_one("header.w-slim-header")
    return [
        link
        for link in header.find_all("a", href=send_url(page))
        if not link.find_parent(attrs={"data-controller": re.compile(r"\bw-dropdown\b")})
    ]


def test_the_issue_editor_header_shows_a_send_as_newsletter_button(client, sender, issue_page):
    client.force_login(sender)

    (button,) = header_send_buttons(client, issue_page)

    assert button.get_text(strip=True) == "Send as newsletter"
    assert "button" in button["class"]


def test_the_header_button_is_not_shown_for_a_draft_issue_or_without_send_permission(
    client, sender, editor, archive_page, issue_page
):
    draft = make_issue(archive_page, title="Issue 2: Draft", slug="issue-2", publish=False)

    client.force_login(sender)
    assert header_send_buttons(client, draft) == []
    client.force_login(editor)
    assert header_send_buttons(client, issue_page) == []


def test_the_footer_action_menu_offers_send_as_newsletter(client, sender, issue_page):
    client.force_login(sender)

    html = client.get(reverse("wagtailadmin_pages:edit", args=[issue_page.pk])).text

    _, _, footer = html.partition("<footer")
    assert send_url(issue_page) in footer  # the drop-up next to Publish


def test_campaigns_listing_has_a_new_campaign_button_that_chooses_an_issue(client, sender, issue_page, archive_page):
    draft = make_issue(archive_page, title="Unpublished", slug="draft", publish=False)
    client.force_login(sender)

    listing = client.get(reverse("campaigns_admin:index"))
    new = client.get(reverse("campaigns_admin:new"))

    assert reverse("campaigns_admin:new") in listing.text and "New campaign" in listing.text
    assert new.status_code == 200
    assert send_url(issue_page) in new.text
    assert send_url(draft) not in new.text and "Unpublished" not in new.text


def test_new_campaign_needs_the_send_permission(client, editor, issue_page):
    client.force_login(editor)

    assert client.get(reverse("campaigns_admin:new")).status_code == 403


# --- The schedule field --------------------------------------------------------------------------


def test_send_form_loads_the_date_picker_script_before_the_field(client, sender, issue_page):
    client.force_login(sender)

    html = client.get(send_url(issue_page)).text

    script = html.find("wagtailadmin/js/date-time-chooser.js")
    assert script != -1
    assert script < html.find("initDateTimeChooser(")


def test_send_at_is_hidden_until_scheduling_is_chosen(client, sender, issue_page):
    client.force_login(sender)

    html = client.get(send_url(issue_page)).text
    item = html[html.rfind("<li", 0, html.find('name="send_at"')) :]
    item = item[: item.find(">") + 1]

    assert 'data-w-rules-target="show"' in item and "hidden" in item
    assert '"when": ["later"]' in item
    assert 'data-controller="w-rules"' in html


def test_send_at_stays_visible_when_scheduling_was_chosen(client, sender, issue_page):
    client.force_login(sender)

    response = client.post(send_url(issue_page), {"action": "review", "when": "later", "send_at": ""})

    html = response.text
    item = html[html.rfind("<li", 0, html.find('name="send_at"')) :]
    assert " hidden" not in item[: item.find(">") + 1]
    assert "Choose when to send it." in html
    assert not Campaign.objects.exists()


# --- Offline installs --------------------------------------------------------------------------


def test_admin_pages_load_no_gravatar_by_default(client, sender):
    client.force_login(sender)

    html = client.get(reverse("wagtailadmin_home")).text

    assert "gravatar.com" not in html


def test_the_gravatar_setting_turns_avatars_on(client, sender, settings):
    from newsletter_site import config

    assert config.env_bool("GRAVATAR", False, env={"GRAVATAR": "1"})  # the variable base.py reads
    settings.WAGTAIL_GRAVATAR_PROVIDER_URL = "//www.gravatar.com/avatar"
    client.force_login(sender)

    assert "gravatar.com/avatar" in client.get(reverse("wagtailadmin_home")).text


# --- One count of readers, one label ------------------------------------------------------------


def test_every_subscriber_count_an_editor_sees_agrees_and_says_can_receive(client, sender, issue_page, admin_user):
    """The lists page, the send form, the dashboard and the demo loader's summary once showed
    "subscribed" figures that counted suppressed readers, against the lists page's "can receive"."""
    news, sport = MailingListFactory(name="News", slug="news"), MailingListFactory(name="Sport", slug="sport")
    alice = SubscriberFactory(email="alice@example.com")
    SubscriptionFactory(list=news, subscriber=alice)
    SubscriptionFactory(list=sport, subscriber=alice)
    SubscriptionFactory(list=sport, subscriber=SubscriberFactory(email="eve@example.com"))
    SubscriptionFactory(
        list=news, subscriber=SubscriberFactory(email="bob@example.com", state=Subscriber.State.BOUNCED)
    )
    SubscriptionFactory(list=news, subscriber=SubscriberFactory(email="cat@example.com"), status="pending")
    SubscriptionFactory(list=news, subscriber=SubscriberFactory(email="dan@example.com"), status="unsubscribed")
    expected = {news.pk: 1, sport.pk: 2}
    assert {ml.pk: Audience([ml]).count() for ml in (news, sport)} == expected

    client.force_login(admin_user)
    lists_page = client.get(reverse("subscribers_list:index"))
    listed = {row.pk: row.receiving_count for row in lists_page.context["object_list"]}
    send_form = client.get(send_url(issue_page)).text
    dashboard = BeautifulSoup(client.get(reverse("wagtailadmin_home")).text, "html.parser")

    assert listed == expected
    assert "Can receive" in lists_page.text
    assert "News (1 can receive)" in send_form and "Sport (2 can receive)" in send_form
    # Every list, each reader once: alice (on both) and eve; not bob (bounced), cat or dan.
    assert dashboard.select_one("[data-count=receiving]").get_text(" ", strip=True).startswith("Can receive: 2")


def test_the_demo_summary_counts_who_can_receive(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()

    call_command("load_demo_content", stdout=out)

    for mailing_list in MailingList.objects.all():
        assert f"{mailing_list.name}: {Audience([mailing_list]).count()} can receive" in out.getvalue()
    assert Subscriber.objects.exclude(state=Subscriber.State.ACTIVE).exists()  # so the old count differed
