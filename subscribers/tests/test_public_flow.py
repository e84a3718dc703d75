"""The visitor's side of subscribing and leaving: pre-ticked main list, Post/Redirect/Get, the
thank-you text that matches the email, and "Unsubscribe from everything" asked twice."""

import re
from importlib import import_module

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from pages.models import SubscribePage
from subscribers import tokens
from subscribers.forms import SubscribeForm
from subscribers.models import MailingList, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriptionFactory


@pytest.fixture
def subscribe_page(home_page, newsletter_settings):
    return home_page.add_child(instance=SubscribePage(title="Subscribe", slug="subscribe"))


@pytest.fixture
def main_list(db):
    return MailingListFactory(name="The Broadsheet", slug="broadsheet", preselected=True)


@pytest.fixture
def other_list(db):
    return MailingListFactory(name="Culture desk", slug="culture")


def checkbox(html: str, mailing_list) -> str:
    return re.search(rf'<input[^>]*value="{mailing_list.pk}"[^>]*>', html).group(0)


def test_the_main_list_starts_ticked_and_the_others_do_not(subscribe_page, main_list, other_list):
    html = Client().get("/subscribe/").content.decode()

    assert "checked" in checkbox(html, main_list)
    assert "checked" not in checkbox(html, other_list)


def test_the_subscribe_block_ticks_the_main_list_too(main_list, other_list):
    form = SubscribeForm(lists=MailingList.objects.all())

    assert form["lists"].initial == [main_list.pk]


def test_subscribing_redirects_to_the_thank_you_text(subscribe_page, main_list, django_capture_on_commit_callbacks):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/subscribe/", {"email": "ann@example.com", "lists": [main_list.pk]})

    assert response.status_code == 303
    assert response["Location"] == "/subscribe/?sent=1"
    thanks = client.get(response["Location"]).content.decode()
    assert "check your inbox" in thanks
    assert 'name="email"' not in thanks  # the form is gone: reloading posts nothing
    assert Subscription.objects.get().status == "pending"


def test_the_subscribe_post_queues_the_confirmation_and_sends_nothing_itself(
    subscribe_page, main_list, settings, mailoutbox, django_capture_on_commit_callbacks
):
    """The request answers without talking to the mail server: the confirmation is a task a worker
    sends (subscribers.tasks), so a slow relay never slows the form (issue 15: 200 POSTs/s)."""
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "campaigns"]}}
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post("/subscribe/", {"email": "ann@example.com", "lists": [main_list.pk]})

    assert response.status_code == 303
    assert mailoutbox == []
    queued = DBTaskResult.objects.get()
    assert queued.task_path == "subscribers.tasks.send_confirmation" and queued.status == "READY"
    assert queued.args_kwargs["args"][1] == [main_list.pk]


def test_an_invalid_form_is_shown_again_with_its_errors_not_redirected(subscribe_page, main_list):
    response = Client().post("/subscribe/", {"email": "not-an-address", "lists": [main_list.pk]})

    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()


def test_thank_you_text_names_the_button_the_confirmation_email_really_has(
    subscribe_page, main_list, mailoutbox, django_capture_on_commit_callbacks
):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/subscribe/", {"email": "ann@example.com", "lists": [main_list.pk]}, follow=True)

    html_email = mailoutbox[0].alternatives[0][0]
    button = re.search(r'<a [^>]*class="[^"]*button[^"]*"[^>]*>([^<]+)</a>', html_email)
    assert button, "the confirmation email has a button"
    assert f"“{button.group(1).strip()}” button" in response.content.decode()


def test_the_migration_ticks_the_oldest_public_list(db):
    migration = import_module("subscribers.migrations.0004_mailinglist_preselected")
    MailingListFactory(slug="private", is_public=False)
    oldest = MailingListFactory(slug="oldest")
    MailingListFactory(slug="newer")
    MailingList.objects.update(preselected=False)

    migration.tick_the_main_list(apps, None)

    assert list(MailingList.objects.filter(preselected=True)) == [oldest]


# --- Unsubscribe from everything ----------------------------------------------------------------


@pytest.fixture
def reader(main_list, other_list):
    subscription = SubscriptionFactory(list=main_list, subscriber__email="reader@example.com")
    SubscriptionFactory(list=other_list, subscriber=subscription.subscriber)
    return subscription.subscriber


def preferences_page(client, subscriber) -> tuple[str, str]:
    path = reverse("subscribers:preferences", args=[tokens.preferences_token(subscriber.uid)])
    html = client.get(path).content.decode()
    return path, html


def test_unsubscribe_from_everything_is_its_own_form_styled_apart_from_save(reader, subscribe_page):
    _, html = preferences_page(Client(), reader)

    save = re.search(r'<button[^>]*name="save"[^>]*>', html).group(0)
    leave = re.search(r'<button[^>]*name="unsubscribe_all"[^>]*>', html).group(0)
    assert "button--danger" in leave and "button--danger" not in save
    # Two forms: pressing Enter in the name field can never mean "leave everything".
    assert html.index("</form>") < html.index('name="unsubscribe_all"')


def test_unsubscribe_from_everything_asks_first_and_changes_nothing_until_confirmed(reader, subscribe_page):
    client = Client(enforce_csrf_checks=True)
    path, _ = preferences_page(client, reader)
    csrf = client.cookies["csrftoken"].value

    asked = client.post(path, {"unsubscribe_all": "1", "csrfmiddlewaretoken": csrf})

    assert asked.status_code == 200
    assert "Unsubscribe from everything?" in asked.content.decode()
    assert set(reader.subscriptions.values_list("status", flat=True)) == {"subscribed"}

    done = client.post(path, {"unsubscribe_all": "1", "confirm": "1", "csrfmiddlewaretoken": csrf})

    assert done.status_code == 302
    assert set(reader.subscriptions.values_list("status", flat=True)) == {"unsubscribed"}
    assert "unsubscribed from everything" in client.get(done["Location"]).content.decode()
