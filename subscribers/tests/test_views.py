import re
import time
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from pages.blocks import SubscribeFormBlock
from pages.models import SubscribePage
from subscribers import links, tokens
from subscribers.models import Subscriber, SubscriberEvent, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

CONSENT = "I agree to receive The Broadsheet by email and can leave at any time."


@pytest.fixture
def news(db):
    return MailingListFactory(name="Morning News", slug="news", description="Every weekday at 7.")


@pytest.fixture
def sport(db):
    return MailingListFactory(name="Sport", slug="sport")


@pytest.fixture
def subscribe_page(home_page, newsletter_settings):
    page = SubscribePage(title="Subscribe", slug="subscribe", consent_text=CONSENT)
    return home_page.add_child(instance=page)


@pytest.fixture
def flows(subscribe_page, news, sport):
    """The subscribe page with two public lists."""
    return subscribe_page


@pytest.fixture
def post_subscribe(django_capture_on_commit_callbacks):
    """POST the subscribe form and follow the redirect; the after-commit work (the confirmation
    email) runs before it returns."""

    def post(client, email="ann@example.com", lists=(), **extra):
        data = {"email": email, "name": "", "lists": [m.pk for m in lists], "website": "", **extra}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/subscribe/", data, HTTP_USER_AGENT="Test browser", follow=True)

    return post


def confirm_link(message) -> str:
    return re.search(r"https://news\.example\.com(/newsletter/confirm/[^/\s]+/)", message.body).group(1)


def csrf_post(client, path, data=None):
    """POST like a browser: GET the page first for the CSRF cookie, send its token back."""
    client.get(path)
    if "csrftoken" not in client.cookies:  # an error page has no form: take the cookie from one that has
        client.get("/subscribe/")
    return client.post(path, {**(data or {}), "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


# --- Subscribe form -------------------------------------------------------------------------


def test_subscribe_form_offers_public_lists_unticked_with_the_consent_sentence(flows, news):
    MailingListFactory(name="Staff only", slug="staff", is_public=False)
    response = Client().get("/subscribe/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "Morning News" in html and "Sport" in html and "Every weekday at 7." in html
    assert "Staff only" not in html
    assert CONSENT in html
    assert "checked" not in html
    assert 'class="honeypot"' in html


def test_subscribe_post_shows_thanks_and_records_consent(flows, news, mailoutbox, post_subscribe):
    response = post_subscribe(Client(REMOTE_ADDR="203.0.113.20"), "Ann@Example.com", [news])

    assert response.status_code == 200
    assert "check your inbox" in response.content.decode()
    subscription = Subscription.objects.get()
    assert subscription.status == "pending"
    assert subscription.consent_text == CONSENT
    assert subscription.consent_detail == "https://news.example.com/subscribe/"
    assert (subscription.consent_ip, subscription.consent_user_agent) == ("203.0.113.20", "Test browser")
    assert [m.to for m in mailoutbox] == [["Ann@Example.com"]]


def test_behind_a_trusted_proxy_the_consent_records_the_visitor_not_the_proxy(flows, news, settings, post_subscribe):
    settings.BROADSHEET = {**settings.BROADSHEET, "TRUSTED_PROXY_COUNT": 1}
    client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.20")

    post_subscribe(client, "ann@example.com", [news])

    # The left entry is whatever the client claimed; the one the proxy appended is the real address.
    assert Subscription.objects.get().consent_ip == "203.0.113.20"


def test_malformed_address_gets_a_clear_error_and_nothing_is_stored(flows, news, post_subscribe):
    response = post_subscribe(Client(), "ann@@example", [news])

    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_a_list_must_be_chosen(flows, post_subscribe):
    response = post_subscribe(Client(), "ann@example.com", [])
    assert "Choose at least one newsletter." in response.content.decode()
    assert not Subscriber.objects.exists()


def test_private_list_cannot_be_posted(flows, post_subscribe):
    private = MailingListFactory(slug="staff", is_public=False)
    post_subscribe(Client(), "ann@example.com", [private])
    assert not Subscription.objects.exists()


def test_honeypot_gets_the_thank_you_page_but_stores_and_sends_nothing(flows, news, mailoutbox, post_subscribe):
    human = post_subscribe(Client(), "ann@example.com", [news])
    Subscriber.objects.all().delete()
    mailoutbox.clear()

    bot = post_subscribe(Client(), "bot@example.com", [news], website="http://spam.example")

    assert bot.status_code == 200 and bot.content == human.content
    assert not Subscriber.objects.exists()
    assert mailoutbox == []


def test_no_enumeration_known_and_unknown_addresses_get_identical_answers(flows, news, post_subscribe):
    SubscriptionFactory(subscriber__email="subscribed@example.com", list=news)
    SubscriptionFactory(subscriber__email="pending@example.com", list=news, status="pending")
    SubscriptionFactory(subscriber__email="left@example.com", list=news, status="unsubscribed")
    SubscriberFactory(email="bounced@example.com", state="bounced")

    responses = [
        post_subscribe(Client(), address, [news])
        for address in (
            "new@example.com",
            "subscribed@example.com",
            "pending@example.com",
            "left@example.com",
            "bounced@example.com",
        )
    ]

    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert all("Set-Cookie" not in r.headers for r in responses)


def test_per_ip_rate_limit_answers_429(flows, news, settings, post_subscribe):
    settings.BROADSHEET = {**settings.BROADSHEET, "SUBSCRIBE_RATE_PER_IP": "3/h"}
    client = Client(REMOTE_ADDR="198.51.100.66")
    answers = [post_subscribe(client, f"reader{n}@example.com", [news]).status_code for n in range(4)]

    assert answers == [200, 200, 200, 429]
    assert Subscriber.objects.count() == 3
    assert post_subscribe(Client(REMOTE_ADDR="198.51.100.67"), "other@example.com", [news]).status_code == 200


def test_per_address_rate_limit_silently_ignores_more_requests(flows, news, sport, settings, post_subscribe):
    settings.BROADSHEET = {**settings.BROADSHEET, "SUBSCRIBE_RATE_PER_ADDRESS": "2/h"}
    first = post_subscribe(Client(REMOTE_ADDR="192.0.2.1"), "ann@example.com", [news])
    post_subscribe(Client(REMOTE_ADDR="192.0.2.2"), "ANN@example.com", [news])

    third = post_subscribe(Client(REMOTE_ADDR="192.0.2.3"), "Ann@Example.COM", [sport])

    assert third.status_code == 200 and third.content == first.content
    assert not Subscription.objects.filter(list=sport).exists()


def test_suppressed_address_is_not_reactivated_by_the_form(flows, news, mailoutbox, post_subscribe):
    subscription = SubscriptionFactory(
        subscriber__email="ann@example.com", subscriber__state="complained", list=news, status="unsubscribed"
    )
    post_subscribe(Client(), "Ann@Example.com", [news])

    subscription.refresh_from_db()
    assert subscription.status == "unsubscribed" and subscription.subscriber.state == "complained"
    assert mailoutbox == []


# --- Confirmation email and page ---------------------------------------------------------------


def test_confirmation_email_has_html_and_text_parts_with_a_working_link(flows, news, mailoutbox, post_subscribe):
    post_subscribe(Client(), "ann@example.com", [news])
    message = mailoutbox[0]

    assert message.subject == "Please confirm your subscription"
    assert message.from_email == "The Broadsheet <news@example.com>"
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "Morning News" in message.body and "Morning News" in html
    assert "1 Fleet Street" in message.body  # the newsletter layout's footer
    link = confirm_link(message)
    assert f'href="https://news.example.com{link}"' in html

    client = Client(enforce_csrf_checks=True)
    page = client.get(link)
    assert page.status_code == 200 and "Confirm" in page.content.decode()
    assert Subscription.objects.get().status == "pending"  # GET changes nothing

    done = csrf_post(client, link)
    assert done.status_code == 200 and "You are subscribed" in done.content.decode()
    assert Subscription.objects.get().status == "subscribed"


def test_get_on_the_confirm_link_never_confirms(flows, news, mailoutbox, post_subscribe):
    post_subscribe(Client(), "ann@example.com", [news])
    link = confirm_link(mailoutbox[0])
    for _ in range(3):
        Client().get(link)
    assert Subscription.objects.get().status == "pending"
    assert not SubscriberEvent.objects.filter(kind="subscribed").exists()


def test_confirm_post_without_csrf_token_is_refused(flows, news, mailoutbox, post_subscribe):
    post_subscribe(Client(), "ann@example.com", [news])
    response = Client(enforce_csrf_checks=True).post(confirm_link(mailoutbox[0]))
    assert response.status_code == 403
    assert Subscription.objects.get().status == "pending"


def test_already_confirmed_link_shows_a_friendly_page(flows, news, mailoutbox, post_subscribe):
    post_subscribe(Client(), "ann@example.com", [news])
    link = confirm_link(mailoutbox[0])
    csrf_post(Client(), link)

    again = Client().get(link)
    assert again.status_code == 200
    assert "already subscribed" in again.content.decode()


def test_expired_confirm_link_is_rejected_without_change(flows, news, mailoutbox, settings, post_subscribe):
    post_subscribe(Client(), "ann@example.com", [news])
    link = confirm_link(mailoutbox[0])
    days = settings.BROADSHEET["CONFIRM_TOKEN_DAYS"]
    later = time.time() + days * 24 * 60 * 60 + 60
    with mock.patch("django.core.signing.time.time", return_value=later):
        get = Client().get(link)
        post = csrf_post(Client(), link)

    assert get.status_code == 410 and post.status_code == 410
    assert "expired" in get.content.decode()
    assert Subscription.objects.get().status == "pending"


def test_forged_confirm_link_is_rejected(flows, news):
    subscription = SubscriptionFactory(list=news, status="pending")
    token = tokens.confirm_token(subscription.subscriber.uid, [news.pk])
    payload, signature = token.rsplit(".", 1)
    forged = f"{payload}.{signature[:-2]}AA"

    response = csrf_post(Client(), reverse("subscribers:confirm", args=[forged]))
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == "pending"


def test_unsubscribe_token_does_not_work_as_a_confirm_link(flows, news):
    subscription = SubscriptionFactory(list=news, status="pending")
    wrong = tokens.unsubscribe_token(subscription.subscriber.uid, [news.pk])
    response = csrf_post(Client(), reverse("subscribers:confirm", args=[wrong]))
    assert response.status_code == 400
    subscription.refresh_from_db()
    assert subscription.status == "pending"


# --- Unsubscribe ---------------------------------------------------------------------------------


@pytest.fixture
def subscribed(news, sport, subscribe_page):
    subscription = SubscriptionFactory(subscriber__email="ann@example.com", list=news)
    SubscriptionFactory(subscriber=subscription.subscriber, list=sport)
    return subscription


def test_unsubscribe_get_shows_a_button_and_preferences_link_without_changing_anything(subscribed, news):
    urls = links.recipient_urls(subscribed.subscriber.uid, [news.pk])
    path = urls["unsubscribe_url"].removeprefix("https://news.example.com")
    html = Client().get(path).content.decode()

    assert '<button type="submit" class="button">Unsubscribe</button>' in html
    assert "/newsletter/preferences/" in html and "Morning News" in html
    assert "ann@example.com" not in html
    subscribed.refresh_from_db()
    assert subscribed.status == "subscribed"


def test_unsubscribe_post_leaves_only_the_lists_in_the_link(subscribed, news, sport):
    path = reverse("subscribers:unsubscribe", args=[tokens.unsubscribe_token(subscribed.subscriber.uid, [news.pk])])
    response = Client(enforce_csrf_checks=True).post(path)

    assert response.status_code == 200 and "You have been unsubscribed" in response.content.decode()
    statuses = dict(subscribed.subscriber.subscriptions.values_list("list__slug", "status"))
    assert statuses == {"news": "unsubscribed", "sport": "subscribed"}
    assert subscribed.subscriber.subscriptions.get(list=news).unsubscribe_method == "link"


@pytest.mark.parametrize("multipart", [False, True])
def test_one_click_post_without_cookies_unsubscribes_with_200_and_no_redirect(subscribed, news, multipart):
    path = reverse("subscribers:one_click", args=[tokens.unsubscribe_token(subscribed.subscriber.uid, [news.pk])])
    client = Client(enforce_csrf_checks=True)
    if multipart:
        response = client.post(path, {"List-Unsubscribe": "One-Click"})
    else:
        response = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    subscribed.refresh_from_db()
    assert (subscribed.status, subscribed.unsubscribe_method) == ("unsubscribed", "one_click")


def test_one_click_is_idempotent(subscribed, news):
    path = reverse("subscribers:one_click", args=[tokens.unsubscribe_token(subscribed.subscriber.uid, [news.pk])])
    client = Client(enforce_csrf_checks=True)
    body = "List-Unsubscribe=One-Click"
    first = client.post(path, body, content_type="application/x-www-form-urlencoded")
    subscribed.refresh_from_db()
    when = subscribed.unsubscribed_at
    second = client.post(path, body, content_type="application/x-www-form-urlencoded")

    assert first.status_code == second.status_code == 200
    subscribed.refresh_from_db()
    assert subscribed.unsubscribed_at == when
    assert SubscriberEvent.objects.filter(kind="unsubscribed").count() == 1


def test_one_click_get_shows_the_button_page_and_changes_nothing(subscribed, news):
    token = tokens.unsubscribe_token(subscribed.subscriber.uid, [news.pk])
    response = Client().get(reverse("subscribers:one_click", args=[token]))

    assert response.status_code == 200
    assert f'action="{reverse("subscribers:unsubscribe", args=[token])}"' in response.content.decode()
    subscribed.refresh_from_db()
    assert subscribed.status == "subscribed"


def test_forged_or_wrong_purpose_unsubscribe_tokens_are_rejected(subscribed, news):
    uid = subscribed.subscriber.uid
    confirm = tokens.confirm_token(uid, [news.pk])
    payload, _sig = tokens.unsubscribe_token(uid, [news.pk]).rsplit(".", 1)
    forged = f"{payload}.{'A' * 43}"
    client = Client(enforce_csrf_checks=True)

    for token in (confirm, forged, tokens.preferences_token(uid)):
        assert client.post(reverse("subscribers:unsubscribe", args=[token])).status_code == 400
        assert client.post(reverse("subscribers:one_click", args=[token])).status_code == 400
    subscribed.refresh_from_db()
    assert subscribed.status == "subscribed"


# --- Preference centre ---------------------------------------------------------------------------


def preferences_path(subscriber):
    return reverse("subscribers:preferences", args=[tokens.preferences_token(subscriber.uid)])


def test_preference_centre_shows_public_lists_with_current_choices(subscribed, news, sport):
    Subscription.objects.filter(list=sport).update(status="unsubscribed")
    MailingListFactory(name="Staff only", slug="staff", is_public=False)
    html = Client().get(preferences_path(subscribed.subscriber)).content.decode()

    news_box = re.search(rf'<input[^>]*value="{news.pk}"[^>]*>', html).group(0)
    sport_box = re.search(rf'<input[^>]*value="{sport.pk}"[^>]*>', html).group(0)
    assert "checked" in news_box and "checked" not in sport_box
    assert "Staff only" not in html
    assert "Unsubscribe from everything" in html


def test_preference_centre_post_needs_the_csrf_token(subscribed, sport):
    response = Client(enforce_csrf_checks=True).post(preferences_path(subscribed.subscriber), {"lists": [sport.pk]})
    assert response.status_code == 403


def test_preference_centre_saves_choices_and_name(subscribed, news, sport):
    client = Client(enforce_csrf_checks=True)
    response = csrf_post(client, preferences_path(subscribed.subscriber), {"lists": [sport.pk], "name": "Ann B"})

    assert response.status_code == 302
    assert "saved" in client.get(response["Location"]).content.decode()
    statuses = dict(subscribed.subscriber.subscriptions.values_list("list__slug", "status"))
    assert statuses == {"news": "unsubscribed", "sport": "subscribed"}
    assert Subscriber.objects.get().name == "Ann B"


def test_preference_centre_unsubscribes_from_everything(subscribed):
    private = MailingListFactory(slug="staff", is_public=False)
    SubscriptionFactory(subscriber=subscribed.subscriber, list=private)
    client = Client(enforce_csrf_checks=True)
    csrf_post(client, preferences_path(subscribed.subscriber), {"unsubscribe_all": "1", "confirm": "1"})

    assert set(subscribed.subscriber.subscriptions.values_list("status", flat=True)) == {"unsubscribed"}
    assert set(subscribed.subscriber.subscriptions.values_list("unsubscribe_method", flat=True)) == {"preferences"}


def test_preference_centre_get_changes_nothing(subscribed):
    Client().get(preferences_path(subscribed.subscriber) + "?lists=&name=")
    subscribed.refresh_from_db()
    assert subscribed.status == "subscribed"
    assert not SubscriberEvent.objects.exists()


# --- Block ---------------------------------------------------------------------------------------


def test_subscribe_block_renders_the_form_for_its_page(subscribe_page, news, rf):
    block = SubscribeFormBlock()
    value = block.to_python({"heading": "Get the newsletter", "page": subscribe_page.pk})
    request = rf.get("/archive/")
    html = block.render(value, context={"request": request, "csrf_token": "tok"})

    assert 'action="/subscribe/"' in html
    assert "Get the newsletter" in html and "Morning News" in html and CONSENT in html
    assert 'value="/archive/"' in html


def test_form_sent_from_a_block_records_the_host_page(flows, news, post_subscribe):
    post_subscribe(Client(), "ann@example.com", [news], source="/archive/")
    assert Subscription.objects.get().consent_detail == (
        "https://news.example.com/subscribe/ (form on https://news.example.com/archive/)"
    )
