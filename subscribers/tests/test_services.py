import datetime
import hashlib

import pytest
from django.core.management import call_command
from django.urls import resolve
from django.utils import timezone

from subscribers import links, services
from subscribers.models import (
    Subscriber,
    SubscriberEvent,
    Subscription,
    Suppression,
    email_hash,
)
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

CONSENT = "I agree to receive the newsletters I selected by email."


@pytest.fixture
def news(db):
    return MailingListFactory(name="Morning News", slug="news")


@pytest.fixture
def sport(db):
    return MailingListFactory(name="Sport", slug="sport")


@pytest.fixture
def mail_ready(newsletter_settings):
    """A site with sender settings: what the email layout needs."""
    return newsletter_settings


def subscribe(email="ann@example.com", lists=(), **kwargs):
    kwargs = {
        "consent_text": CONSENT,
        "consent_detail": "https://news.example.com/subscribe/",
        "ip": "203.0.113.9",
        "user_agent": "Test browser",
        **kwargs,
    }
    return services.subscribe(email=email, lists=lists, **kwargs)


def test_subscribe_records_the_consent_and_leaves_the_subscription_pending(news, mail_ready):
    before = timezone.now()
    subscribe(lists=[news], name="Ann")

    subscription = Subscription.objects.get()
    assert subscription.status == "pending"
    assert subscription.consent_source == "form"
    assert subscription.consent_text == CONSENT
    assert subscription.consent_text_hash == hashlib.sha256(CONSENT.encode()).hexdigest()
    assert subscription.consent_detail == "https://news.example.com/subscribe/"
    assert (subscription.consent_ip, subscription.consent_user_agent) == ("203.0.113.9", "Test browser")
    assert before <= subscription.consent_at <= timezone.now()
    assert subscription.consent_at.utcoffset() == datetime.timedelta(0)
    assert subscription.subscriber.name == "Ann"


def test_subscribe_sends_one_confirmation_for_all_lists_after_commit(
    news, sport, mail_ready, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        subscribe(lists=[news, sport])
    assert mailoutbox == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()

    assert len(mailoutbox) == 1
    assert "Morning News" in mailoutbox[0].body and "Sport" in mailoutbox[0].body
    assert Subscription.objects.get(list=news).confirmation_count == 1
    assert SubscriberEvent.objects.filter(kind="confirmation_sent").count() == 1


def test_single_opt_in_list_subscribes_at_once_with_consent(mail_ready, mailoutbox, django_capture_on_commit_callbacks):
    open_list = MailingListFactory(slug="open", double_opt_in=False)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = subscribe(lists=[open_list])

    subscription = Subscription.objects.get()
    assert outcome.subscribed_list_ids == [open_list.pk]
    assert subscription.status == "subscribed"
    assert subscription.consent_text == CONSENT and subscription.consent_ip == "203.0.113.9"
    assert mailoutbox == []


def test_addresses_in_another_case_join_the_same_subscriber(
    news, sport, mail_ready, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        subscribe("Ann@Example.com", lists=[news])
        subscribe("ann@EXAMPLE.com", lists=[sport])

    subscriber = Subscriber.objects.get()
    assert subscriber.email == "Ann@Example.com"
    assert subscriber.subscriptions.count() == 2


def test_a_form_never_changes_an_existing_subscribers_name(news, mail_ready, django_capture_on_commit_callbacks):
    SubscriptionFactory(subscriber__email="ann@example.com", subscriber__name="Ann", list=news)
    with django_capture_on_commit_callbacks(execute=True):
        subscribe("ann@example.com", lists=[news], name="Mallory")
    assert Subscriber.objects.get().name == "Ann"


@pytest.mark.parametrize("state", ["bounced", "complained", "blocked"])
def test_suppressed_subscriber_is_not_reactivated(
    state, news, mail_ready, mailoutbox, django_capture_on_commit_callbacks
):
    subscription = SubscriptionFactory(
        subscriber__email="ann@example.com", subscriber__state=state, list=news, status="unsubscribed"
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = subscribe("ANN@example.com", lists=[news])

    subscription.refresh_from_db()
    assert outcome.refused
    assert subscription.status == "unsubscribed"
    assert subscription.subscriber.state == state
    assert mailoutbox == []
    assert SubscriberEvent.objects.filter(kind="subscribe_refused").exists()


def test_address_on_the_suppression_list_is_not_added(news, mail_ready, mailoutbox, django_capture_on_commit_callbacks):
    Suppression.objects.create(email_hash=email_hash("gone@example.com"), reason="erased")
    with django_capture_on_commit_callbacks(execute=True):
        outcome = subscribe("Gone@Example.com", lists=[news])

    assert outcome.refused
    assert not Subscriber.objects.exists()
    assert mailoutbox == []


def test_confirmation_is_resent_at_most_once(news, mail_ready, mailoutbox, django_capture_on_commit_callbacks):
    def ask_again_later(minutes):
        Subscription.objects.update(confirmation_sent_at=timezone.now() - datetime.timedelta(minutes=minutes))
        with django_capture_on_commit_callbacks(execute=True):
            subscribe(lists=[news])

    with django_capture_on_commit_callbacks(execute=True):
        subscribe(lists=[news])
        subscribe(lists=[news])  # at once: throttled
    assert len(mailoutbox) == 1
    ask_again_later(minutes=30)  # the one reminder
    assert len(mailoutbox) == 2
    ask_again_later(minutes=60)  # no third email within the token's lifetime
    assert len(mailoutbox) == 2
    assert Subscription.objects.get().confirmation_count == 2


def test_resend_confirmation_respects_the_throttle(news, mail_ready, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(lists=[news])
    subscription = Subscription.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        assert not services.resend_confirmation(subscription)
    Subscription.objects.update(confirmation_sent_at=timezone.now() - datetime.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.resend_confirmation(subscription)
    assert len(mailoutbox) == 2


def test_someone_who_unsubscribed_can_subscribe_again_with_a_new_consent(
    news, mail_ready, mailoutbox, django_capture_on_commit_callbacks
):
    old = SubscriptionFactory(
        subscriber__email="ann@example.com", list=news, status="unsubscribed", consent_text="Old wording."
    )
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(lists=[news])

    old.refresh_from_db()
    assert old.status == "pending"
    assert old.consent_text == CONSENT
    assert len(mailoutbox) == 1


def test_already_subscribed_address_gets_one_harmless_note_a_day(
    news, mail_ready, mailoutbox, django_capture_on_commit_callbacks
):
    subscription = SubscriptionFactory(subscriber__email="ann@example.com", list=news)
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(lists=[news])
        subscribe(lists=[news])

    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "You are already subscribed"
    assert "/newsletter/preferences/" in mailoutbox[0].body
    subscription.refresh_from_db()
    assert subscription.status == "subscribed"


def test_confirm_subscription_records_the_confirmation(news, mail_ready, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(lists=[news])
    subscriber = Subscriber.objects.get()

    state = services.confirm_subscription(subscriber.uid, [news.pk], ip="198.51.100.7", user_agent="Phone")

    subscription = Subscription.objects.get()
    assert state == services.CONFIRM_PENDING
    assert subscription.status == "subscribed"
    assert (subscription.confirm_ip, subscription.confirm_user_agent) == ("198.51.100.7", "Phone")
    assert subscription.confirmed_at is not None
    assert SubscriberEvent.objects.filter(kind="subscribed", detail__via="confirmation").count() == 1
    assert services.confirm_subscription(subscriber.uid, [news.pk], ip=None, user_agent="") == services.CONFIRM_DONE


def test_confirming_does_not_resubscribe_someone_who_unsubscribed_since(news):
    subscription = SubscriptionFactory(list=news, status="unsubscribed")
    state = services.confirm_subscription(subscription.subscriber.uid, [news.pk], ip=None, user_agent="")
    subscription.refresh_from_db()
    assert state == services.CONFIRM_GONE
    assert subscription.status == "unsubscribed"


def test_unsubscribe_is_idempotent_and_records_time_and_method(news, sport):
    subscription = SubscriptionFactory(list=news)
    other = SubscriptionFactory(list=sport, subscriber=subscription.subscriber)
    uid = subscription.subscriber.uid

    assert services.unsubscribe(uid, [news.pk], method="one_click") == [news]
    first_time = Subscription.objects.get(pk=subscription.pk).unsubscribed_at
    assert services.unsubscribe(uid, [news.pk], method="link") == []

    subscription.refresh_from_db()
    other.refresh_from_db()
    assert (subscription.status, subscription.unsubscribe_method) == ("unsubscribed", "one_click")
    assert subscription.unsubscribed_at == first_time
    assert other.status == "subscribed"
    assert SubscriberEvent.objects.filter(kind="unsubscribed").count() == 1
    assert Subscription.objects.count() == 2  # nothing deleted


def test_unsubscribe_without_lists_leaves_every_list(news, sport):
    subscription = SubscriptionFactory(list=news)
    SubscriptionFactory(list=sport, subscriber=subscription.subscriber, status="pending")
    left = services.unsubscribe(subscription.subscriber.uid, method="link")
    assert set(left) == {news, sport}
    assert set(Subscription.objects.values_list("status", flat=True)) == {"unsubscribed"}


def test_unsubscribe_of_an_unknown_subscriber_does_nothing(db):
    assert services.unsubscribe("00000000-0000-0000-0000-000000000000", method="one_click") == []


def test_update_preferences_joins_ticked_and_leaves_unticked_public_lists(news, sport):
    private = MailingListFactory(slug="vip", is_public=False)
    subscription = SubscriptionFactory(list=news, subscriber__name="Ann")
    SubscriptionFactory(list=private, subscriber=subscription.subscriber)
    subscriber = subscription.subscriber

    outcome = services.update_preferences(
        subscriber.uid, list_ids=[sport.pk], name="Ann Smith", ip="192.0.2.1", user_agent="UA"
    )

    statuses = dict(subscriber.subscriptions.values_list("list__slug", "status"))
    assert statuses == {"news": "unsubscribed", "sport": "subscribed", "vip": "subscribed"}
    assert (outcome.joined, outcome.left, outcome.name_changed) == ([sport], [news], True)
    joined = subscriber.subscriptions.get(list=sport)
    assert joined.consent_source == "preferences" and joined.consent_ip == "192.0.2.1"
    assert subscriber.subscriptions.get(list=news).unsubscribe_method == "preferences"
    subscriber.refresh_from_db()
    assert subscriber.name == "Ann Smith"
    kinds = sorted(SubscriberEvent.objects.values_list("kind", flat=True))
    assert kinds == ["profile_updated", "subscribed", "unsubscribed"]


def test_suppressed_subscriber_cannot_join_lists_in_the_preference_centre(news):
    subscriber = SubscriberFactory(state="bounced")
    services.update_preferences(subscriber.uid, list_ids=[news.pk], name=subscriber.name, ip=None, user_agent="")
    assert not subscriber.subscriptions.exists()


def test_recipient_urls_are_absolute_https_and_resolve_to_the_flows(settings):
    settings.BASE_URL = "https://news.example.com"
    subscriber_uid = "12345678-1234-5678-1234-567812345678"
    urls = links.recipient_urls(subscriber_uid, [4])

    expected = {"unsubscribe_url": "unsubscribe", "one_click_url": "one_click", "preferences_url": "preferences"}
    for key, view_name in expected.items():
        assert urls[key].startswith("https://news.example.com/newsletter/")
        match = resolve(urls[key].removeprefix("https://news.example.com"))
        assert match.view_name == f"subscribers:{view_name}"
    assert "@" not in "".join(urls.values())


def test_staff_are_told_about_each_confirmation(
    news, mail_ready, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.BROADSHEET = {**settings.BROADSHEET, "NOTIFY_STAFF": ["editor@example.com"], "NOTIFY_STAFF_MODE": "each"}
    subscription = SubscriptionFactory(subscriber__email="ann@example.com", list=news, status="pending")

    with django_capture_on_commit_callbacks(execute=True):
        services.confirm_subscription(subscription.subscriber.uid, [news.pk], ip=None, user_agent="")

    assert [m.to for m in mailoutbox] == [["editor@example.com"]]
    assert "ann@example.com" in mailoutbox[0].body and "Morning News" in mailoutbox[0].body


def test_daily_mode_sends_no_mail_per_confirmation_but_a_digest(
    news, mail_ready, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.BROADSHEET = {**settings.BROADSHEET, "NOTIFY_STAFF": ["editor@example.com"], "NOTIFY_STAFF_MODE": "daily"}
    for address in ("ann@example.com", "bob@example.com"):
        subscription = SubscriptionFactory(subscriber__email=address, list=news, status="pending")
        with django_capture_on_commit_callbacks(execute=True):
            services.confirm_subscription(subscription.subscriber.uid, [news.pk], ip=None, user_agent="")
    assert mailoutbox == []

    call_command("send_staff_digest", "--date", timezone.now().date().isoformat())

    assert len(mailoutbox) == 1
    assert "2 new subscriptions" in mailoutbox[0].subject
    assert "ann@example.com" in mailoutbox[0].body and "bob@example.com" in mailoutbox[0].body
