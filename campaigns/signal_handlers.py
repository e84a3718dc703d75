"""Signal receivers, connected in ``CampaignsConfig.ready()``. Thin: parse, then call a workflow."""

import json

from campaigns.tracking import TrackingEvent, record_campaign_unsubscribe, record_tracking_event

# ESP bounce types that anymail reports as "bounced" but that are temporary. Postmark maps its
# "SoftBounce" (and a virus notification, which says nothing about the address) to bounced.
SOFT_BOUNCE_TYPES = {
    "postmark": {"SoftBounce", "VirusNotification"},
}


def _payload(esp_event) -> dict:
    """The raw ESP event as JSON-storable data (Mailgun's legacy webhooks give a QueryDict)."""
    if hasattr(esp_event, "lists"):
        esp_event = {key: values[0] if len(values) == 1 else values for key, values in esp_event.lists()}
    if not isinstance(esp_event, dict):
        esp_event = {"raw": str(esp_event)}
    try:
        json.dumps(esp_event)
    except (TypeError, ValueError):
        return {"raw": str(esp_event)}
    return esp_event


def _is_soft_bounce(esp: str, event) -> bool:
    esp_event = event.esp_event
    bounce_type = esp_event.get("Type") if isinstance(esp_event, dict) else None
    return event.event_type == "bounced" and bounce_type in SOFT_BOUNCE_TYPES.get(esp, ())


def handle_tracking_event(sender, event, esp_name, **kwargs):
    """``anymail.signals.tracking`` receiver: one AnymailTrackingEvent in, the tracking workflow called.

    Must stay fast and never raise for odd data: an exception makes anymail answer 400 and the
    ESP retry the webhook.
    """
    esp = (esp_name or "unknown").lower()
    record_tracking_event(
        TrackingEvent(
            esp=esp,
            event_type=event.event_type or "unknown",
            message_id=str(event.message_id or ""),
            recipient=event.recipient or "",
            timestamp=event.timestamp,
            event_id=str(event.event_id) if event.event_id else None,
            url=event.click_url or "",
            soft_bounce=_is_soft_bounce(esp, event),
            reject_reason=event.reject_reason or "",
            description=event.description or event.mta_response or "",
            metadata=event.metadata if isinstance(event.metadata, dict) else {},
            payload=_payload(event.esp_event),
        )
    )


def handle_unsubscribe(sender, subscriber, campaign_id=None, at=None, **kwargs):
    """``subscribers.signals.unsubscribed`` receiver: credit the campaign whose link was used."""
    if campaign_id:
        record_campaign_unsubscribe(campaign_id, subscriber.pk, at=at)
