"""What campaigns hold about one subscriber, for subscribers.gdpr's export and erasure.

Deliveries keep a snapshot of the address and name they were sent to, and ESP events keep the
recipient and the raw payload: both are personal data. Registered in CampaignsConfig.ready().
"""

from campaigns.models import Delivery, DeliveryEvent


def _time(value):
    return value.isoformat() if value else None


def export_deliveries(subscriber) -> list[dict]:
    """Every campaign sent to ``subscriber``, with what we know of its delivery."""
    deliveries = Delivery.objects.filter(subscriber=subscriber).select_related("campaign").order_by("pk")
    return [
        {
            "campaign": delivery.campaign_id,
            "subject": delivery.campaign.subject,
            "address": delivery.email,
            "name": delivery.name,
            "status": delivery.status,
            "sent_at": _time(delivery.sent_at),
            "delivered_at": _time(delivery.delivered_at),
            "first_opened_at": _time(delivery.first_opened_at),
            "open_count": delivery.open_count,
            "first_clicked_at": _time(delivery.first_clicked_at),
            "click_count": delivery.click_count,
            "bounced_at": _time(delivery.bounced_at),
            "complained_at": _time(delivery.complained_at),
            "unsubscribed_at": _time(delivery.unsubscribed_at),
        }
        for delivery in deliveries
    ]


def erase_deliveries(subscriber) -> None:
    """Blank the address and name snapshots and the ESP event payloads; keep the counts.

    ESP events that matched no delivery (or a bounce of a confirmation email) are found by their
    recipient address, read before the subscriber row is anonymised (``email_normalised`` is not
    refreshed below), in any spelling of it.
    """
    deliveries = Delivery.objects.filter(subscriber=subscriber)
    DeliveryEvent.objects.filter(delivery__in=deliveries).update(recipient="", payload={})
    addresses = {address for address in (subscriber.email, subscriber.email_normalised) if address}
    for address in addresses:
        DeliveryEvent.objects.filter(delivery__isnull=True, recipient__iexact=address).update(recipient="", payload={})
    # By now the subscriber row holds the anonymous erased-<uid>@erased.invalid address.
    subscriber.refresh_from_db(fields=["email"])
    deliveries.update(email=subscriber.email, name="", last_error="")


def register() -> None:
    from subscribers import gdpr

    gdpr.export_contributors["deliveries"] = export_deliveries
    if erase_deliveries not in gdpr.erasers:
        gdpr.erasers.append(erase_deliveries)
