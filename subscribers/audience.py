"""Who a mailing goes to: the one question the snapshot, the send form, its confirmation step,
the send_campaign command and the start checks all ask.

An audience is a set of lists, optionally narrowed by a segment (subscribers.segments: saved
rules compiled to one condition on Subscriber), so every figure and the snapshot apply the same
rules the same way.

Every subscriber count an editor sees comes from here and is labelled "can receive": the lists
page, the send form, the dashboard and the demo loader's summary printed by `make run`. A
subscription that is "subscribed" but whose reader bounced, complained or was blocked is not
counted anywhere as receiving (the lists page shows those as "Suppressed").
"""

import logging

from django.core.exceptions import ValidationError
from django.db.models import Count, Expression, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from subscribers import segments
from subscribers.models import MailingList, Segment, Subscriber, Subscription

logger = logging.getLogger(__name__)


class Audience:
    """The active subscribers confirmed on any of ``lists`` (MailingLists, ids or a queryset), each
    once; with a ``segment`` (a Segment, or its rules as a dict: the builder's live count), only
    those its rules match; with ``only`` (a queryset of subscriber ids: a resend's non-openers),
    only those."""

    def __init__(self, lists, segment: Segment | dict | None = None, only: QuerySet | None = None):
        self.lists = lists
        self.segment = segment
        self.only = only

    @classmethod
    def of(cls, campaign) -> "Audience":
        """The audience of a campaign (anything with a ``lists`` many-to-many of MailingLists, a
        ``segment``, which may be None, and optionally ``audience_only()``, the subscriber ids it
        is narrowed to or None)."""
        only = campaign.audience_only() if hasattr(campaign, "audience_only") else None
        return cls(campaign.lists.all(), campaign.segment, only)

    @property
    def rules(self) -> dict | None:
        return self.segment.rules if isinstance(self.segment, Segment) else self.segment

    def subscribers(self) -> QuerySet[Subscriber]:
        """The recipients, as a queryset (the snapshot turns it into one INSERT ... SELECT)."""
        recipients = Subscriber.objects.sendable(self.lists)
        if self.rules is not None:
            recipients = recipients.filter(self._condition())
        if self.only is not None:
            recipients = recipients.filter(pk__in=self.only)
        return recipients

    def _condition(self) -> Q:
        """The segment's rules as a condition. Rules that no longer check (stored by other means
        than the admin form, or checked by older code) match nobody, so a campaign to them is
        refused as empty ("Nobody ... matches the segment"), never sent to the wrong people."""
        try:
            return segments.condition(self.rules)
        except ValidationError as error:
            logger.error(
                "Segment %r has rules that do not check, so it matches nobody: %s", self.segment, error.messages
            )
            return Q(pk__in=[])

    def count(self) -> int:
        return self.subscribers().count()

    def exists(self) -> bool:
        return self.subscribers().exists()

    @classmethod
    def everyone(cls) -> "Audience":
        """The readers of every list, each once: what the dashboard counts."""
        return cls(MailingList.objects.all())

    @staticmethod
    def receiving(prefix: str = "") -> Q:
        """The subscriptions that reach their reader (confirmed, reader not suppressed), as a filter
        on Subscription, or on a relation to it through ``prefix`` (e.g. "subscriptions__")."""
        return Q(
            **{f"{prefix}status": Subscription.Status.SUBSCRIBED, f"{prefix}subscriber__state": Subscriber.State.ACTIVE}
        )

    @classmethod
    def count_per_list(cls) -> Expression:
        """An annotation for MailingList querysets: each list's audience (sortable, one query).

        Counted as the list's subscribed subscriptions less those whose reader is suppressed:
        the first is a range of the (list, status) index, the second starts from the few
        suppressed readers (state index). Counting "subscribed and reader active" directly joins
        both tables, every row of each (seconds for a list of a million)."""
        return subscriptions_per_list(Subscription.Status.SUBSCRIBED) - suppressed_per_list()

    @classmethod
    def counts_per_list(cls) -> dict[int, int]:
        """{list id: the audience of that list alone} for every list with one, in one query.

        The same figure as ``Audience([mailing_list]).count()``: a subscriber has at most one
        subscription per list, so counting subscriptions counts subscribers.
        """
        return dict(Subscription.objects.filter(cls.receiving()).values_list("list").annotate(n=Count("pk")))

    def __repr__(self):
        names = [item.slug if isinstance(item, MailingList) else str(item) for item in self.lists]
        segment = f" segment={self.segment.slug}" if isinstance(self.segment, Segment) else ""
        return f"<Audience lists={names}{segment}>"


def _count(subscriptions: QuerySet) -> Coalesce:
    counted = subscriptions.order_by().values("list").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def subscriptions_per_list(status: str) -> Coalesce:
    """An annotation for MailingList querysets: how many of each list's subscriptions have
    ``status`` (an index range per list, whatever the list's size)."""
    return _count(Subscription.objects.filter(list=OuterRef("pk"), status=status))


def suppressed_per_list() -> Coalesce:
    """An annotation for MailingList querysets: each list's subscribed readers who bounced,
    complained or were blocked (reached by nothing; found from the few suppressed readers)."""
    suppressed = [state for state in Subscriber.State.values if state != Subscriber.State.ACTIVE]
    return _count(
        Subscription.objects.filter(
            list=OuterRef("pk"), status=Subscription.Status.SUBSCRIBED, subscriber__state__in=suppressed
        )
    )
