"""Signal receivers (thin: parse, then call a workflow) and ``connect()``, which
``CampaignsConfig.ready()`` calls to wire them, the system checks and the registries."""

import json
from datetime import datetime

from anymail.signals import tracking
from django.core import checks
from django.db import transaction
from wagtail.permissions import register_permission_policy
from wagtail.signals import page_published

from campaigns import autosend, background, bots, engagement, gdpr, tasks, webhooks
from campaigns import checks as campaign_checks
from campaigns.models import Campaign, NewsletterIssuePage
from campaigns.tracking import TrackingEvent, record_campaign_unsubscribe, record_tracking_event
from mail.esps import ESPS
from subscribers import segments
from subscribers.signals import unsubscribed


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
    """A "bounced" event whose ESP type is temporary (``mail.esps``: ``soft_bounce_types``)."""
    declaration = ESPS.get(esp)
    return event.event_type == "bounced" and declaration is not None and declaration.is_soft_bounce(event.esp_event)


def _text(value, limit: int) -> str:
    """A string field of an ESP event, made safe to store: str, no NUL (PostgreSQL refuses it), capped."""
    return ("" if value is None else str(value)).replace("\x00", "")[:limit]


def handle_tracking_event(sender, event, esp_name, **kwargs):
    """``anymail.signals.tracking`` receiver: one AnymailTrackingEvent in, the tracking workflow called.

    Must stay fast and never raise for odd data: an exception makes anymail answer 400 and the
    ESP retry the webhook.
    """
    esp = _text(esp_name or "unknown", 40).lower().replace(" ", "_")  # "Amazon SES" is amazon_ses
    timestamp = event.timestamp if isinstance(event.timestamp, datetime) else None
    record_tracking_event(
        TrackingEvent(
            esp=esp,
            event_type=_text(event.event_type or "unknown", 40),
            message_id=_text(event.message_id, 255),
            recipient=_text(event.recipient, 254),
            timestamp=timestamp,
            event_id=_text(event.event_id, 200) or None,
            url=_text(event.click_url, 2000),
            soft_bounce=_is_soft_bounce(esp, event),
            reject_reason=_text(event.reject_reason, 40),
            description=_text(event.description or event.mta_response, 1000),
            metadata=event.metadata if isinstance(event.metadata, dict) else {},
            payload=_payload(event.esp_event),
            user_agent=_text(event.user_agent, 500),
            machine_flag=bots.esp_flag(esp, event.esp_event),
        )
    )


def handle_unsubscribe(sender, subscriber, campaign_id=None, at=None, **kwargs):
    """``subscribers.signals.unsubscribed`` receiver: credit the campaign whose link was used."""
    if campaign_id:
        record_campaign_unsubscribe(campaign_id, subscriber.pk, at=at)


def handle_issue_published(sender, instance, **kwargs):
    """``page_published`` receiver (issues only; digests are another class): the lists that send
    each issue on publish get it scheduled by a task, once the publish has committed."""
    if autosend.wants_published_issues():
        page_id = instance.pk
        transaction.on_commit(lambda: tasks.autosend_published_task.enqueue(page_id))


def connect() -> None:
    """Connect this app's receivers, system checks, registries and task queue (CampaignsConfig.ready())."""
    # dispatch_uid: connected once even if ready() runs again (tests, autoreload).
    tracking.connect(handle_tracking_event, dispatch_uid="campaigns.tracking")
    unsubscribed.connect(handle_unsubscribe, dispatch_uid="campaigns.unsubscribed")
    page_published.connect(handle_issue_published, sender=NewsletterIssuePage, dispatch_uid="campaigns.autosend")
    gdpr.register()
    # The workflows enqueue through campaigns.background; the task module (which imports the
    # workflows) is the queue behind it.
    background.install(tasks)
    # Segment rules on opens, clicks and deliveries read the ledger through campaigns.engagement.
    segments.install_engagement(engagement)
    # Campaign's ModelPermissionPolicy ("send" = campaigns.send_campaign), which the admin's
    # views and menu ask, as wagtail.contrib.redirects registers Redirect's.
    register_permission_policy(Campaign)
    checks.register(webhooks.check_webhook_settings)
    checks.register(campaign_checks.check_block_email_templates)
