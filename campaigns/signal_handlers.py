"""Signal receivers (thin: parse, then call a workflow) and ``connect()``, which
``CampaignsConfig.ready()`` calls to wire them, the system checks and the registries."""

from anymail.signals import tracking
from django.core import checks
from django.db import transaction
from wagtail.permissions import register_permission_policy
from wagtail.signals import page_published

from campaigns import autosend, background, engagement, gdpr, tasks, webhooks
from campaigns import checks as campaign_checks
from campaigns.models import Campaign, NewsletterIssuePage
from campaigns.tracking import record_campaign_unsubscribe, record_tracking_event, tracking_event
from subscribers import segments
from subscribers.signals import unsubscribed


def handle_tracking_event(sender, event, esp_name, **kwargs):
    """``anymail.signals.tracking`` receiver: one AnymailTrackingEvent in, the tracking workflow called.

    Must stay fast and never raise for odd data: an exception makes anymail answer 400 and the
    ESP retry the webhook. (Our own webhook view records a POST's events together instead:
    campaigns.webhooks.)
    """
    record_tracking_event(tracking_event(event, esp_name))


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
