import datetime
import hashlib

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import resolve
from django.utils import timezone

from subscribers import links, services, signals
from subscribers.models import (
    MailingList,
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


# --- What the workflows record (issue 10: one instant per request, the request's IP and user
# agent, who acted, what the signals carry; a suppressed subscriber changes nothing) ---------------

UA = "U" * 600


@pytest.fixture
def received():
    """The keyword arguments of every unsubscribed/subscribed signal sent during the test."""
    calls = []

    def receiver(signal, **kwargs):
        calls.append((signal, kwargs))

    signals.unsubscribed.connect(receiver, dispatch_uid="test-unsubscribed")
    signals.subscribed.connect(receiver, dispatch_uid="test-subscribed")
    yield calls
    signals.unsubscribed.disconnect(dispatch_uid="test-unsubscribed")
    signals.subscribed.disconnect(dispatch_uid="test-subscribed")


def test_unsubscribing_records_one_event_per_list_at_the_instant_of_the_request(news, sport, admin_user, received):
    subscriber = SubscriptionFactory(list=news).subscriber
    SubscriptionFactory(list=sport, subscriber=subscriber)

    left = services.unsubscribe(
        subscriber.uid, method="admin", ip="192.0.2.7", user_agent=UA, actor=admin_user, campaign_id=42
    )

    assert sorted(mlist.slug for mlist in left) == ["news", "sport"]
    events = SubscriberEvent.objects.filter(kind=SubscriberEvent.Kind.UNSUBSCRIBED).order_by("list__slug")
    assert [event.list.slug for event in events] == ["news", "sport"]
    instants = {s.unsubscribed_at for s in subscriber.subscriptions.all()} | {event.at for event in events}
    assert len(instants) == 1
    for event in events:
        assert event.actor == admin_user
        assert event.detail == {"method": "admin", "ip": "192.0.2.7", "user_agent": "U" * 500}
    assert {s.unsubscribe_method for s in subscriber.subscriptions.all()} == {"admin"}
    [(signal, sent)] = received
    assert signal is signals.unsubscribed
    assert (sent["subscriber"], sent["method"], sent["campaign_id"], sent["at"]) == (subscriber, "admin", 42, *instants)
    assert sorted(mlist.slug for mlist in sent["lists"]) == ["news", "sport"]
    assert sent["sender"].__name__ == "Subscriber"


def test_unsubscribing_without_a_user_agent_records_an_empty_one(news):
    subscriber = SubscriptionFactory(list=news).subscriber
    services.unsubscribe(subscriber.uid, [news.pk], method="link")
    assert SubscriberEvent.objects.get(kind="unsubscribed").detail == {"method": "link", "ip": None, "user_agent": ""}


def test_confirming_records_the_request_on_the_subscription_and_the_event(news, received):
    subscription = SubscriptionFactory(list=news, status=Subscription.Status.PENDING, confirmed_at=None)

    result = services.confirm_subscription(subscription.subscriber.uid, [news.pk], ip="192.0.2.8", user_agent=UA)

    assert result == services.CONFIRM_PENDING
    subscription.refresh_from_db()
    event = SubscriberEvent.objects.get(kind=SubscriberEvent.Kind.SUBSCRIBED)
    assert subscription.confirmed_at == event.at == received[0][1]["at"]
    assert (subscription.confirm_ip, subscription.confirm_user_agent) == ("192.0.2.8", "U" * 500)
    assert event.detail == {"via": "confirmation", "ip": "192.0.2.8", "user_agent": "U" * 500}
    assert event.list == news


def test_confirming_without_a_user_agent_records_an_empty_one(news):
    subscription = SubscriptionFactory(list=news, status=Subscription.Status.PENDING, confirmed_at=None)
    services.confirm_subscription(subscription.subscriber.uid, [news.pk], ip=None, user_agent=None)
    assert SubscriberEvent.objects.get(kind="subscribed").detail["user_agent"] == ""


def test_a_suppressed_subscriber_cannot_confirm_by_post(news, received):
    subscription = SubscriptionFactory(
        list=news, status=Subscription.Status.PENDING, confirmed_at=None, subscriber__state="complained"
    )

    assert services.confirm_subscription(subscription.subscriber.uid, [news.pk], ip=None, user_agent="") == "gone"

    subscription.refresh_from_db()
    assert (subscription.status, subscription.confirmed_at, received) == ("pending", None, [])


@pytest.mark.parametrize(
    ("status", "state"), [("pending", "bounced"), ("subscribed", "active"), ("unsubscribed", "active")]
)
def test_no_confirmation_is_resent_unless_pending_and_not_suppressed(news, mailoutbox, status, state):
    subscription = SubscriptionFactory(list=news, status=status, subscriber__state=state)
    assert services.resend_confirmation(subscription) is False
    subscription.refresh_from_db()
    assert (subscription.confirmation_count, mail.outbox) == (0, [])


def test_preference_choices_are_the_public_lists_with_only_confirmed_ones_ticked(news, sport):
    private = MailingListFactory(slug="vip", is_public=False)
    for index in range(3):  # subscription ids unlike list ids: a mix-up of the two shows
        SubscriptionFactory(list=MailingListFactory(slug=f"other-{index}", is_public=False))
    subscriber = SubscriptionFactory(list=news).subscriber
    SubscriptionFactory(list=sport, subscriber=subscriber, status=Subscription.Status.PENDING)
    SubscriptionFactory(list=private, subscriber=subscriber)

    choices = services.preference_choices(subscriber)

    assert sorted((mlist.slug, ticked) for mlist, ticked in choices) == [("news", True), ("sport", False)]
    assert all(isinstance(mlist, MailingList) for mlist, _ticked in choices)


def test_the_preference_centre_records_joins_and_leaves_at_one_instant(news, sport):
    subscriber = SubscriptionFactory(list=news).subscriber
    left_before = SubscriptionFactory(
        list=sport, subscriber=subscriber, status=Subscription.Status.UNSUBSCRIBED, unsubscribe_method="link"
    )

    services.update_preferences(
        subscriber.uid, list_ids=[sport.pk], name=subscriber.name, ip="192.0.2.9", user_agent=UA,
        page_url="https://news.example.com/newsletter/preferences/t/",
    )  # fmt: skip

    joined = Subscription.objects.get(pk=left_before.pk)
    left = subscriber.subscriptions.get(list=news)
    assert (joined.status, joined.unsubscribed_at, joined.unsubscribe_method) == ("subscribed", None, "")
    assert (joined.confirm_ip, joined.confirm_user_agent) == ("192.0.2.9", "U" * 500)
    assert (joined.consent_source, joined.consent_detail) == (
        "preferences", "https://news.example.com/newsletter/preferences/t/"
    )  # fmt: skip
    assert joined.consent_text == services.PREFERENCES_CONSENT_TEXT and joined.consent_user_agent == "U" * 500
    assert (left.status, left.unsubscribe_method) == ("unsubscribed", "preferences")
    leaving = SubscriberEvent.objects.get(kind="unsubscribed")
    assert (leaving.list, leaving.detail) == (news, {"method": "preferences", "ip": "192.0.2.9"})
    joining = SubscriberEvent.objects.get(kind="subscribed")
    assert (joining.list, joining.detail) == (sport, {"via": "preferences", "ip": "192.0.2.9"})
    assert len({joined.confirmed_at, joined.consent_at, left.unsubscribed_at, leaving.at, joining.at}) == 1


def test_a_list_first_joined_in_the_preference_centre_is_created_at_that_instant(news):
    subscriber = SubscriberFactory()
    services.update_preferences(subscriber.uid, list_ids=[news.pk], name=subscriber.name, ip=None, user_agent="")
    subscription = subscriber.subscriptions.get()
    assert subscription.created_at == subscription.confirmed_at and subscription.confirm_ip is None
    assert subscription.consent_detail == ""


def test_subscribing_with_only_the_required_fields_stores_empty_optional_ones(news):
    outcome = services.subscribe(email="Ann@Example.com", lists=[news], consent_text="Yes")

    subscription = Subscription.objects.get(subscriber_id=outcome.subscriber_id)
    assert (subscription.subscriber.name, subscription.subscriber.language) == ("", "en")
    assert (subscription.consent_detail, subscription.consent_user_agent, subscription.consent_ip) == ("", "", None)


def test_subscribing_records_the_history_at_one_instant(news, sport):
    outcome = services.subscribe(
        email="ann@example.com", lists=[news, sport], consent_text="Yes", consent_detail="/subscribe/", ip="192.0.2.1"
    )

    subscriber = Subscriber.objects.get(pk=outcome.subscriber_id)
    created = SubscriberEvent.objects.get(kind="created")
    assert created.detail == {"source": "form"}
    requested = SubscriberEvent.objects.filter(kind="subscribe_requested").order_by("list__slug")
    assert [event.list for event in requested] == [news, sport]
    consent_hash = subscriber.subscriptions.get(list=news).consent_text_hash
    assert requested[0].detail == {"source": "form", "detail": "/subscribe/", "ip": "192.0.2.1",
                                   "consent_text_hash": consent_hash}  # fmt: skip
    instants = {created.at, *(event.at for event in requested)}
    instants |= {s.consent_at for s in subscriber.subscriptions.all()} | {
        s.created_at for s in subscriber.subscriptions.all()
    }
    assert len(instants) == 1


def test_a_suppressed_subscriber_asking_again_is_refused_with_the_reason(news, sport):
    subscriber = SubscriberFactory(email="gone@example.com", state="bounced")

    assert services.subscribe(email="gone@example.com", lists=[news, sport], consent_text="Yes").refused

    refused = SubscriberEvent.objects.get(subscriber=subscriber, kind="subscribe_refused")
    assert refused.detail == {"reason": "bounced", "lists": [news.pk, sport.pk]}
    assert not subscriber.subscriptions.exists()


def test_a_single_opt_in_subscription_records_its_consent_with_the_subscribed_event(news):
    single = MailingListFactory(slug="single", double_opt_in=False)
    services.subscribe(
        email="ann@example.com", lists=[single], consent_text="Yes", consent_detail="/s/", ip="192.0.2.2"
    )
    event = SubscriberEvent.objects.get(kind="subscribed")
    subscription = Subscription.objects.get(list=single)
    assert event.detail == {"via": "form", "source": "form", "detail": "/s/", "ip": "192.0.2.2",
                            "consent_text_hash": subscription.consent_text_hash}  # fmt: skip
    assert event.at == subscription.consent_at


def test_asking_again_after_leaving_starts_a_fresh_pending_subscription(news):
    subscription = SubscriptionFactory(
        list=news, status=Subscription.Status.UNSUBSCRIBED, unsubscribe_method="link", confirm_ip="192.0.2.3",
        unsubscribed_at=timezone.now(),
    )  # fmt: skip
    services.subscribe(email=subscription.subscriber.email, lists=[news], consent_text="Yes")
    subscription.refresh_from_db()
    assert (subscription.status, subscription.unsubscribed_at, subscription.unsubscribe_method) == ("pending", None, "")
    assert (subscription.confirmed_at, subscription.confirm_ip, subscription.confirm_user_agent) == (None, None, "")


def test_a_list_already_subscribed_does_not_stop_the_next_one(news, sport):
    subscriber = SubscriptionFactory(list=news).subscriber
    outcome = services.subscribe(email=subscriber.email, lists=[news, sport], consent_text="Yes")
    assert (outcome.already_list_ids, outcome.confirmation_list_ids) == ([news.pk], [sport.pk])
    assert outcome.notice_sent is False  # something new was asked for: no "already subscribed" note


def test_the_already_subscribed_note_goes_once_a_day_per_subscriber(news):
    ann, bob = SubscriptionFactory(list=news).subscriber, SubscriptionFactory(list=news).subscriber

    assert services.subscribe(email=ann.email, lists=[news], consent_text="Yes").notice_sent is True
    assert services.subscribe(email=ann.email, lists=[news], consent_text="Yes").notice_sent is False
    assert services.subscribe(email=bob.email, lists=[news], consent_text="Yes").notice_sent is True


def test_a_throttled_confirmation_names_its_list(news):
    for _ in range(2):
        services.subscribe(email="ann@example.com", lists=[news], consent_text="Yes")
    outcome = services.subscribe(email="ann@example.com", lists=[news], consent_text="Yes")
    assert (outcome.throttled_list_ids, outcome.confirmation_list_ids) == ([news.pk], [])


def test_a_new_subscribers_name_and_language_come_from_the_request(news):
    outcome = services.subscribe(email="li@example.com", lists=[news], consent_text="Yes", name=" " + "L" * 300,
                                 language="zh-hans")  # fmt: skip
    subscriber = Subscriber.objects.get(pk=outcome.subscriber_id)
    assert (subscriber.name, subscriber.language) == ("L" * 200, "zh-hans")


def test_the_preference_centre_changes_the_name_and_the_language_and_records_which(news):
    subscriber = SubscriptionFactory(list=news, subscriber__name="Ann").subscriber

    outcome = services.update_preferences(
        subscriber.uid, list_ids=[news.pk], name=" " + "B" * 300, ip=None, user_agent="", language="zh-hans"
    )

    subscriber.refresh_from_db()
    assert (subscriber.name, subscriber.language) == ("B" * 200, "zh-hans")
    assert (outcome.name_changed, outcome.language_changed) == (True, True)
    updates = SubscriberEvent.objects.filter(subscriber=subscriber, kind="profile_updated").order_by("pk")
    assert [event.detail for event in updates] == [{"fields": ["name"]}, {"fields": ["language"]}]
    assert len({event.at for event in updates}) == 1


def test_the_preference_centre_leaves_the_language_alone_unless_it_changes(news):
    subscriber = SubscriptionFactory(list=news, subscriber__name="Ann", subscriber__language="zh-hans").subscriber

    for language in (None, "zh-hans"):
        outcome = services.update_preferences(
            subscriber.uid, list_ids=[news.pk], name=None, ip=None, user_agent="", language=language
        )
        assert outcome.language_changed is False

    subscriber.refresh_from_db()
    assert (subscriber.language, subscriber.name) == ("zh-hans", "")
    assert SubscriberEvent.objects.filter(subscriber=subscriber, kind="profile_updated").count() == 1  # the name


def test_joining_in_the_preference_centre_without_a_user_agent_records_an_empty_one(news):
    subscriber = SubscriberFactory()
    services.update_preferences(subscriber.uid, list_ids=[news.pk], name=subscriber.name, ip=None, user_agent=None)
    assert subscriber.subscriptions.get().confirm_user_agent == ""


def test_a_confirmation_link_reads_pending_done_or_gone(news, sport):
    subscriber = SubscriptionFactory(list=news, status=Subscription.Status.PENDING).subscriber
    SubscriptionFactory(list=sport, subscriber=subscriber)
    left = SubscriptionFactory(list=MailingListFactory(slug="left"), status=Subscription.Status.UNSUBSCRIBED)

    assert services.confirmation_status(subscriber.uid, [news.pk, sport.pk]) == services.CONFIRM_PENDING
    assert services.confirmation_status(subscriber.uid, [sport.pk]) == services.CONFIRM_DONE
    assert services.confirmation_status(left.subscriber.uid, [left.list_id]) == services.CONFIRM_GONE
    assert services.confirmation_status("00000000-0000-0000-0000-000000000000", [news.pk]) == services.CONFIRM_GONE
    Subscriber.objects.filter(pk=subscriber.pk).update(state="complained")
    assert services.confirmation_status(subscriber.uid, [news.pk]) == services.CONFIRM_GONE
