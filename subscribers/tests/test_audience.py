"""Audience: the one answer to "who gets this mailing", asked by the snapshot, counts and checks."""

import pytest

from subscribers.audience import Audience
from subscribers.models import Subscriber, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_active_confirmed_subscribers_of_any_list_each_once():
    news, sport = MailingListFactory(slug="news"), MailingListFactory(slug="sport")
    both = SubscriberFactory(email="both@example.com")
    SubscriptionFactory(subscriber=both, list=news)
    SubscriptionFactory(subscriber=both, list=sport)
    SubscriptionFactory(subscriber=SubscriberFactory(email="pending@example.com"), list=news, status="pending")
    SubscriptionFactory(subscriber=SubscriberFactory(email="left@example.com"), list=news, status="unsubscribed")
    SubscriptionFactory(
        subscriber=SubscriberFactory(email="bounced@example.com", state=Subscriber.State.BOUNCED), list=sport
    )

    audience = Audience([news, sport])
    assert [s.email for s in audience.subscribers()] == ["both@example.com"]
    assert (audience.count(), audience.exists()) == (1, True)
    assert Audience([news.pk]).count() == 1


def test_counts_per_list_match_each_lists_audience():
    news, sport = MailingListFactory(slug="news"), MailingListFactory(slug="sport")
    for _ in range(3):
        SubscriptionFactory(list=news)
    SubscriptionFactory(list=sport, status=Subscription.Status.PENDING)
    assert Audience.counts_per_list() == {news.pk: 3}
    assert Audience.counts_per_list().get(news.pk) == Audience([news]).count()
    assert not Audience([sport]).exists()
