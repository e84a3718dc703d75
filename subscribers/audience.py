"""Who a mailing goes to: the one question the snapshot, the send form, its confirmation step,
the send_campaign command and the start checks all ask.

Today an audience is a set of lists; segments (filters on subscriber fields or attributes) plug
in here, as a ``filters`` argument narrowing ``subscribers()`` (docs/architecture.md has the recipe).
"""

from django.db.models import Count, QuerySet

from subscribers.models import MailingList, Subscriber, Subscription


class Audience:
    """The active subscribers confirmed on any of ``lists`` (MailingLists, ids or a queryset), each once."""

    def __init__(self, lists):
        self.lists = lists

    @classmethod
    def of(cls, campaign) -> "Audience":
        """The audience of a campaign (anything with a ``lists`` many-to-many of MailingLists)."""
        return cls(campaign.lists.all())

    def subscribers(self) -> QuerySet[Subscriber]:
        """The recipients, as a queryset (the snapshot turns it into one INSERT ... SELECT)."""
        return Subscriber.objects.sendable(self.lists)

    def count(self) -> int:
        return self.subscribers().count()

    def exists(self) -> bool:
        return self.subscribers().exists()

    @staticmethod
    def counts_per_list() -> dict[int, int]:
        """{list id: the audience of that list alone} for every list, in one query.

        The same figure as ``Audience([mailing_list]).count()``: a subscriber has at most one
        subscription per list, so counting subscriptions counts subscribers.
        """
        rows = (
            Subscription.objects.filter(
                status=Subscription.Status.SUBSCRIBED, subscriber__state=Subscriber.State.ACTIVE
            )
            .values_list("list")
            .annotate(n=Count("pk"))
        )
        return dict(rows)

    def __repr__(self):
        names = [item.slug if isinstance(item, MailingList) else str(item) for item in self.lists]
        return f"<Audience lists={names}>"
