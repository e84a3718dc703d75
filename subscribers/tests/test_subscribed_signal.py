"""One "becomes subscribed" function: every way into a list records the event and sends `subscribed`."""

import pytest

from subscribers import services, signals
from subscribers.models import SubscriberEvent, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    calls = []

    def receiver(sender, subscriber, lists, via, at, **kwargs):
        calls.append((subscriber.email, sorted(mlist.slug for mlist in lists), via))

    signals.subscribed.connect(receiver, dispatch_uid="test-subscribed")
    yield calls
    signals.subscribed.disconnect(dispatch_uid="test-subscribed")


def _subscribe(email, lists):
    return services.subscribe(email=email, lists=lists, consent_text="Yes please", ip="203.0.113.9")


def test_single_opt_in_confirmation_and_preferences_each_send_subscribed_once(received, newsletter_settings):
    news = MailingListFactory(slug="news", double_opt_in=False)
    sport = MailingListFactory(slug="sport", double_opt_in=True)
    extra = MailingListFactory(slug="extra", double_opt_in=False)

    _subscribe("ann@example.com", [news, sport])
    ann = Subscription.objects.get(list=sport).subscriber
    services.confirm_subscription(ann.uid, [sport.pk], ip=None, user_agent="")
    services.update_preferences(ann.uid, list_ids=[news.pk, sport.pk, extra.pk], name="", ip=None, user_agent="")

    assert received == [
        ("ann@example.com", ["news"], SubscriberEvent.Via.FORM),
        ("ann@example.com", ["sport"], SubscriberEvent.Via.CONFIRMATION),
        ("ann@example.com", ["extra"], SubscriberEvent.Via.PREFERENCES),
    ]
    vias = SubscriberEvent.objects.filter(kind=SubscriberEvent.Kind.SUBSCRIBED).values_list("list__slug", "detail__via")
    assert sorted(vias) == [("extra", "preferences"), ("news", "form"), ("sport", "confirmation")]


def test_nothing_is_sent_when_nothing_became_subscribed(received, newsletter_settings):
    sport = MailingListFactory(slug="sport", double_opt_in=True)
    _subscribe("bob@example.com", [sport])  # pending only
    assert received == []


def test_staff_notice_hangs_off_the_signal(
    newsletter_settings, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.BROADSHEET = {**settings.BROADSHEET, "NOTIFY_STAFF": ["desk@example.com"], "NOTIFY_STAFF_MODE": "each"}
    news = MailingListFactory(slug="news", double_opt_in=False)
    subscriber = SubscriberFactory(email="cy@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        signals.subscribed.send(sender=type(subscriber), subscriber=subscriber, lists=[news], via="form", at=None)
        assert mailoutbox == []  # only after commit

    assert [message.to for message in mailoutbox] == [["desk@example.com"]]


def test_record_writes_one_event_of_a_known_kind(db):
    subscriber = SubscriberFactory()
    event = SubscriberEvent.record(subscriber, SubscriberEvent.Kind.PROFILE_UPDATED, fields=["name"])
    assert (event.kind, event.detail, event.get_kind_display()) == (
        "profile_updated",
        {"fields": ["name"]},
        "Profile updated",
    )
