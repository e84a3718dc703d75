"""The "Send as newsletter" flow, driven through the admin with the Django test client."""

import datetime
import zoneinfo
from email.utils import parseaddr

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from wagtail.models import PageLogEntry
from wagtail.users.models import UserProfile

from campaigns import audit
from campaigns.models import Campaign, Delivery
from campaigns.tests.factories import make_issue
from subscribers.models import Subscriber, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lists(db):
    news, offers = MailingListFactory(name="News", slug="news"), MailingListFactory(name="Offers", slug="offers")
    both = [SubscriberFactory() for _ in range(3)]
    for subscriber in both:
        SubscriptionFactory(subscriber=subscriber, list=news)
        SubscriptionFactory(subscriber=subscriber, list=offers)
    SubscriptionFactory(list=news)  # news only
    SubscriptionFactory(list=offers)  # offers only
    SubscriptionFactory(list=news, status=Subscription.Status.PENDING)  # unconfirmed: never counted
    SubscriptionFactory(list=news, subscriber=SubscriberFactory(state=Subscriber.State.BOUNCED))  # suppressed
    return news, offers


def send_url(page):
    return reverse("campaigns_admin:send", args=[page.pk])


def form_data(lists, **extra):
    data = {
        "lists": [item.pk for item in lists],
        "subject": "Spring issue",
        "from_email": "The Broadsheet <news@example.com>",
        "reply_to": "editor@example.com",
        "when": "now",
        "send_at": "",
        "test_addresses": "",
    }
    data.update(extra)
    return data


# --- Who sees the action -------------------------------------------------------------------------


def test_editor_without_send_permission_sees_no_send_action(client, editor, issue_page, lists):
    client.force_login(editor)

    edit = client.get(reverse("wagtailadmin_pages:edit", args=[issue_page.pk]))
    listing = client.get(reverse("wagtailadmin_explore", args=[issue_page.get_parent().pk]))

    assert edit.status_code == listing.status_code == 200
    assert send_url(issue_page) not in edit.text
    assert send_url(issue_page) not in listing.text


def test_editor_without_send_permission_gets_403_on_the_send_form(client, editor, issue_page, lists):
    client.force_login(editor)

    assert client.get(send_url(issue_page)).status_code == 403
    assert client.post(send_url(issue_page), form_data(lists, action="confirm")).status_code == 403
    assert not Campaign.objects.exists()


def test_sender_sees_send_action_in_editor_and_page_listing(client, sender, issue_page, lists):
    client.force_login(sender)

    edit = client.get(reverse("wagtailadmin_pages:edit", args=[issue_page.pk]))
    listing = client.get(reverse("wagtailadmin_explore", args=[issue_page.get_parent().pk]))

    assert "Send as newsletter" in edit.text and send_url(issue_page) in edit.text
    assert send_url(issue_page) in listing.text


def test_draft_page_offers_no_send_action_and_its_url_refuses(client, sender, archive_page, newsletter_settings, lists):
    draft = make_issue(archive_page, title="Draft issue", slug="draft", publish=False)
    client.force_login(sender)

    edit = client.get(reverse("wagtailadmin_pages:edit", args=[draft.pk]))
    response = client.get(send_url(draft), follow=True)

    assert send_url(draft) not in edit.text
    assert response.redirect_chain[0][0] == reverse("wagtailadmin_pages:edit", args=[draft.pk])
    assert "only a published issue can be sent" in response.text
    assert client.post(send_url(draft), form_data(lists, action="confirm")).status_code == 302
    assert not Campaign.objects.exists()


# --- The form ----------------------------------------------------------------------------------


def test_form_is_prefilled_from_page_and_settings(client, sender, issue_page, newsletter_settings, lists):
    news, _ = lists
    newsletter_settings.default_lists.set([news])
    client.force_login(sender)

    form = client.get(send_url(issue_page)).context["form"]
    test_form = client.get(send_url(issue_page)).context["test_form"]

    assert form["subject"].value() == "Spring issue: news from the press"
    assert form["from_email"].value() == "The Broadsheet <news@example.com>"
    assert form["reply_to"].value() == "editor@example.com"
    assert list(form["lists"].initial) == [news]
    assert test_form["test_addresses"].value() == "sender@example.com"


def test_a_preselected_list_with_its_own_sender_prefills_it(client, sender, issue_page, newsletter_settings, lists):
    news, _ = lists
    news.from_name, news.from_email, news.reply_to = "News desk", "desk@example.com", "desk-replies@example.com"
    news.save()
    newsletter_settings.default_lists.set([news])
    client.force_login(sender)

    form = client.get(send_url(issue_page)).context["form"]

    assert form["from_email"].value() == "News desk <desk@example.com>"
    assert form["reply_to"].value() == "desk-replies@example.com"


def test_list_checkboxes_show_live_subscriber_counts(client, sender, issue_page, lists):
    client.force_login(sender)

    response = client.get(send_url(issue_page))

    assert "News (4 can receive)" in response.text
    assert "Offers (4 can receive)" in response.text


def test_confirmation_states_deduplicated_recipient_count(client, sender, issue_page, lists):
    client.force_login(sender)

    response = client.post(send_url(issue_page), form_data(lists, action="review"))

    assert response.context["recipients"] == 5  # 3 on both lists, 1 on each only
    assert "5 recipients" in response.text
    assert not Campaign.objects.exists()


def test_confirmation_warns_about_unpublished_changes(client, sender, issue_page, lists):
    issue_page.title = "Edited after publishing"
    issue_page.save_revision()
    client.force_login(sender)

    response = client.post(send_url(issue_page), form_data(lists, action="review"))

    assert response.context["has_unpublished_changes"] is True
    assert "This page has unpublished changes." in response.text


def test_confirmation_of_a_clean_page_has_no_unpublished_warning(client, sender, issue_page, lists):
    client.force_login(sender)

    response = client.post(send_url(issue_page), form_data(lists, action="review"))

    assert "unpublished changes" not in response.text


def test_sending_again_to_a_list_warns_with_the_list_and_date(client, sender, issue_page, lists):
    news, offers = lists
    earlier = Campaign.objects.create(
        page=issue_page,
        status=Campaign.Status.SENT,
        started_at=datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC),
    )
    earlier.lists.set([news])
    client.force_login(sender)

    to_news = client.post(send_url(issue_page), form_data([news, offers], action="review"))
    to_offers = client.post(send_url(issue_page), form_data([offers], action="review"))

    assert [(item.name, campaign.pk) for item, campaign in to_news.context["already_sent"]] == [("News", earlier.pk)]
    assert "Already sent." in to_news.text and "March 1, 2026" in to_news.text
    assert to_offers.context["already_sent"] == []


def test_invalid_form_stays_on_the_form_with_errors(client, sender, issue_page, lists):
    client.force_login(sender)

    response = client.post(send_url(issue_page), form_data([], action="review", from_email="not an address"))

    assert response.context["form"].errors.keys() == {"lists", "from_email"}
    assert "recipients" not in response.context


# --- Sending -----------------------------------------------------------------------------------


def test_confirm_sends_now_and_logs_it(client, sender, issue_page, lists, django_capture_on_commit_callbacks):
    client.force_login(sender)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(send_url(issue_page), form_data(lists, action="confirm"))

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("campaigns_admin:detail", args=[campaign.pk])
    assert campaign.recipients == 5
    assert campaign.subject_override == "Spring issue"
    assert campaign.started_by == sender
    entry = campaign_log(campaign).get()
    assert (entry.action, entry.user) == (audit.SEND, sender)


def campaign_log(campaign):
    from wagtail.models import ModelLogEntry

    return ModelLogEntry.objects.filter(object_id=str(campaign.pk), content_type__model="campaign")


def test_scheduling_reads_the_time_in_the_editors_time_zone(client, sender, issue_page, lists):
    profile = UserProfile.get_for_user(sender)
    profile.current_time_zone = "Europe/Paris"
    profile.save()
    next_year = timezone.now().year + 1
    client.force_login(sender)

    response = client.post(
        send_url(issue_page), form_data(lists, action="confirm", when="later", send_at=f"{next_year}-01-15 10:00")
    )

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert campaign.status == Campaign.Status.SCHEDULED
    # 10:00 in Paris in winter (UTC+1) is 09:00 UTC.
    assert campaign.scheduled_at == datetime.datetime(next_year, 1, 15, 9, 0, tzinfo=datetime.UTC)
    assert not Delivery.objects.exists()
    entry = campaign_log(campaign).get()
    assert (entry.action, entry.user) == (audit.SCHEDULE, sender)
    assert entry.data["scheduled_at"] == f"{next_year}-01-15 10:00 (Europe/Paris)"


def test_schedule_form_shows_the_editors_time_zone(client, sender, issue_page, lists):
    profile = UserProfile.get_for_user(sender)
    profile.current_time_zone = "Europe/Paris"
    profile.save()
    client.force_login(sender)

    response = client.get(send_url(issue_page))

    assert "In your time zone (Europe/Paris)." in response.text


def test_scheduling_in_the_past_is_refused(client, sender, issue_page, lists):
    client.force_login(sender)
    past = timezone.localtime(timezone.now() - datetime.timedelta(hours=1), zoneinfo.ZoneInfo("UTC"))

    response = client.post(
        send_url(issue_page), form_data(lists, action="confirm", when="later", send_at=past.strftime("%Y-%m-%d %H:%M"))
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"send_at": ["Choose a time in the future."]}
    assert not Campaign.objects.exists()


def test_a_campaign_that_cannot_start_leaves_no_draft_behind(client, sender, issue_page, newsletter_settings, lists):
    newsletter_settings.postal_address = ""
    newsletter_settings.save()
    client.force_login(sender)

    response = client.post(send_url(issue_page), form_data(lists, action="confirm"))

    assert response.status_code == 200
    assert "postal address" in response.text
    assert not Campaign.objects.exists()


# --- Test sends ----------------------------------------------------------------------------------


def test_test_send_mails_the_addresses_stays_on_form_and_creates_no_delivery(client, sender, issue_page, lists):
    client.force_login(sender)

    response = client.post(
        send_url(issue_page), form_data(lists, action="test", test_addresses="a@example.com, b@example.com")
    )

    assert response.status_code == 200
    assert response.context["form"]["subject"].value() == "Spring issue"  # what the editor typed is kept
    assert sorted(parseaddr(m.to[0])[1] for m in mail.outbox) == ["a@example.com", "b@example.com"]
    assert all(m.subject.startswith("[TEST] ") for m in mail.outbox)
    assert "Test sent to a@example.com, b@example.com" in response.text
    assert not Campaign.objects.exists()
    assert not Delivery.objects.exists()
    entry = PageLogEntry.objects.get(page=issue_page, action=audit.TEST_SEND)
    assert entry.user == sender


def test_test_send_with_a_bad_address_sends_nothing(client, sender, issue_page, lists):
    client.force_login(sender)

    response = client.post(send_url(issue_page), form_data(lists, action="test", test_addresses="a@example.com, nope"))

    assert response.context["test_form"].errors == {
        "test_addresses": ["Enter valid email addresses, separated by commas."]
    }
    assert mail.outbox == []


# --- Mailers and quotas (issue 14) ---------------------------------------------------------------


@pytest.fixture
def quota_mailers(settings):
    locmem = {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    settings.MAILERS = {"default": locmem, "gmail": {**locmem, "LIMITS": {"per_hour": 2, "per_day": 2}}}


def test_the_confirm_step_names_the_chosen_mailer_and_when_a_quota_lets_it_finish(
    client, sender, issue_page, lists, quota_mailers
):
    client.force_login(sender)

    response = client.post(send_url(issue_page), form_data(lists, mailer="gmail", action="review"))

    page = response.content.decode()
    assert 'data-field="mailer">gmail<' in page
    # 5 recipients at 2 a day: today's 2, tomorrow's 2, the last one the day after.
    finish = response.context["expected_finish"]
    assert datetime.timedelta(days=2) < finish - timezone.now() < datetime.timedelta(days=3)
    assert 'data-field="expected-finish"' in page


def test_the_confirm_step_says_nothing_of_a_finish_for_a_mailer_without_limits(
    client, sender, issue_page, lists, quota_mailers
):
    client.force_login(sender)

    response = client.post(send_url(issue_page), form_data(lists, action="review"))

    assert 'data-field="mailer">default<' in response.content.decode()
    assert response.context["expected_finish"] is None


def test_the_campaign_goes_through_the_mailer_chosen_on_the_send_form(
    client, sender, issue_page, lists, quota_mailers, django_capture_on_commit_callbacks
):
    client.force_login(sender)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(send_url(issue_page), form_data(lists, mailer="gmail", action="confirm"))

    campaign = Campaign.objects.get()
    assert campaign.mailer == "gmail"
    # gmail's day allows 2 of the 5; the rest wait for tomorrow.
    assert len(mail.outbox) == 2 and campaign.deliveries.filter(status="queued").count() == 3
