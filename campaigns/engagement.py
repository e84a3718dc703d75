"""What the ledger knows of a reader's engagement, as conditions on Subscriber for segment rules.

``subscribers.segments`` compiles "opened any of the last 5 campaigns", "never clicked" and
"received at least 3" by asking this module (installed by ``CampaignsConfig.ready()``): the
subscribers app sits below campaigns and never imports it.

"The last N campaigns" are the N campaigns that started most recently (sending, paused or sent),
whoever they went to; a reader who was not sent one of them did not open it. What counts as an
open or a click is ``OPENED`` / ``CLICKED`` below, the one place to change it.
"""

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from campaigns.models import Campaign, Delivery

# The campaigns that went (or are going) out.
STARTED = [Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SENT]
# A delivery its reader opened / clicked: first_opened_at and first_clicked_at are set by the first
# open or click a PERSON made (campaigns.tracking with campaigns.bots: machine opens and clicks,
# e.g. Apple's privacy proxy or link scanners, are counted apart and never set them).
OPENED = Q(first_opened_at__isnull=False)
CLICKED = Q(first_clicked_at__isnull=False)


def recent_campaigns(last: int):
    """The ids of the ``last`` campaigns started most recently, as a subquery."""
    return (
        Campaign.objects.filter(status__in=STARTED, started_at__isnull=False)
        .order_by("-started_at", "-pk")
        .values("pk")[:last]
    )


def _did(done: Q, last: int | None) -> Q:
    deliveries = Delivery.objects.filter(done, subscriber=OuterRef("pk"))
    if last is not None:
        deliveries = deliveries.filter(campaign__in=recent_campaigns(last))
    return Q(Exists(deliveries))


def opened(last: int | None) -> Q:
    """Readers who opened any of the ``last`` campaigns (any campaign ever when None)."""
    return _did(OPENED, last)


def clicked(last: int | None) -> Q:
    """Readers who clicked a link in any of the ``last`` campaigns (any campaign ever when None)."""
    return _did(CLICKED, last)


def received():
    """How many campaigns were sent to each reader (an expression on Subscriber; 0, never NULL)."""
    sent = (
        Delivery.objects.filter(subscriber=OuterRef("pk"), status=Delivery.Status.SENT)
        .order_by()
        .values("subscriber")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(sent, output_field=IntegerField()), Value(0))
