"""The welcome email: sent when a subscription becomes active, exactly once per subscriber and list."""

import pytest
from django.core import mail

from automations.models import Enrollment, StepSend
from automations.scheduler import tick
from automations.tests.factories import make_welcome
from campaigns.models import Delivery
from subscribers import services
from subscribers.models import Subscriber
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def weekly(newsletter_settings):
    return MailingListFactory(slug="weekly", name="The Weekly", double_opt_in=True)


def welcomes(address):
    return [m for m in mail.outbox if address in m.to[0] and m.subject == "Welcome aboard"]


def sign_up(address, mailing_list, capture):
    with capture(execute=True):
        services.subscribe(email=address, lists=[mailing_list], consent_text="Yes please")
    return Subscriber.objects.get(email=address)


def confirm(subscriber, mailing_list, capture):
    with capture(execute=True):
        return services.confirm_subscription(subscriber.uid, [mailing_list.pk], ip="192.0.2.1", user_agent="test")


def test_double_opt_in_confirmation_sends_the_welcome_once(weekly, django_capture_on_commit_callbacks):
    make_welcome(weekly)
    subscriber = sign_up("new@example.com", weekly, django_capture_on_commit_callbacks)
    assert welcomes("new@example.com") == []  # pending: not subscribed yet
    confirm(subscriber, weekly, django_capture_on_commit_callbacks)
    confirm(subscriber, weekly, django_capture_on_commit_callbacks)  # the link clicked twice
    with django_capture_on_commit_callbacks(execute=True):
        tick()
        tick()
    [message] = welcomes("new@example.com")
    # The same headers and footer as any campaign.
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Unsubscribe" in message.extra_headers
    html = message.alternatives[0][0]
    assert "Glad you are here." in html
    assert "1 Fleet Street" in html
    assert StepSend.objects.count() == 1
    assert Delivery.objects.get(subscriber=subscriber).status == Delivery.Status.SENT


def test_resubscribing_does_not_welcome_again(weekly, django_capture_on_commit_callbacks):
    make_welcome(weekly)
    subscriber = sign_up("back@example.com", weekly, django_capture_on_commit_callbacks)
    confirm(subscriber, weekly, django_capture_on_commit_callbacks)
    assert len(welcomes("back@example.com")) == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.unsubscribe(subscriber.uid, [weekly.pk], method="link")
    sign_up("back@example.com", weekly, django_capture_on_commit_callbacks)
    confirm(subscriber, weekly, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        tick()
    assert len(welcomes("back@example.com")) == 1


def test_existing_subscribers_are_not_welcomed_when_the_welcome_is_created(weekly, django_capture_on_commit_callbacks):
    SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email="old@example.com"))
    make_welcome(weekly)
    with django_capture_on_commit_callbacks(execute=True):
        tick()
    assert welcomes("old@example.com") == []


def test_an_import_is_not_a_signup_unless_asked(weekly, django_capture_on_commit_callbacks):
    from subscribers.models import Subscription

    welcome = make_welcome(weekly)
    imported = SubscriptionFactory(
        list=weekly, subscriber=SubscriberFactory(email="csv@example.com"), consent_source=Subscription.Source.IMPORT
    )
    with django_capture_on_commit_callbacks(execute=True):
        tick()
    assert welcomes("csv@example.com") == []
    welcome.include_imports = True
    welcome.save()
    with django_capture_on_commit_callbacks(execute=True):
        tick()
        tick()
    assert len(welcomes("csv@example.com")) == 1
    assert Enrollment.objects.get(subscriber=imported.subscriber).automation == welcome


def test_never_to_a_suppressed_address(weekly, django_capture_on_commit_callbacks):
    make_welcome(weekly)
    subscriber = sign_up("gone@example.com", weekly, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.confirm_subscription(subscriber.uid, [weekly.pk], ip=None, user_agent="")
        subscriber.refresh_from_db()
        subscriber.suppress(Subscriber.State.BOUNCED, "hard bounce")
    with django_capture_on_commit_callbacks(execute=True):
        tick()
    assert welcomes("gone@example.com") == []
