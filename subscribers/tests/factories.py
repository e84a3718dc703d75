import factory
from django.utils import timezone

from subscribers.models import MailingList, Subscriber, Subscription


class MailingListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MailingList
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"List {n}")
    slug = factory.Sequence(lambda n: f"list-{n}")


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    name = factory.Sequence(lambda n: f"Reader {n}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A confirmed subscription with a consent record."""

    class Meta:
        model = Subscription

    subscriber = factory.SubFactory(SubscriberFactory)
    list = factory.SubFactory(MailingListFactory)
    status = Subscription.Status.SUBSCRIBED
    consent_at = factory.LazyFunction(timezone.now)
    confirmed_at = factory.LazyFunction(timezone.now)
    consent_source = Subscription.Source.FORM
    consent_text = "I agree to receive the newsletters I selected by email."
