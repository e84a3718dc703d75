from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from anymail.signals import tracking
        from django.core import checks
        from wagtail.permissions import register_permission_policy

        from campaigns import gdpr, signal_handlers, webhooks
        from campaigns.models import Campaign
        from subscribers.signals import unsubscribed

        # dispatch_uid: connected once even if ready() runs again (tests, autoreload).
        tracking.connect(signal_handlers.handle_tracking_event, dispatch_uid="campaigns.tracking")
        unsubscribed.connect(signal_handlers.handle_unsubscribe, dispatch_uid="campaigns.unsubscribed")
        gdpr.register()
        # Campaign's ModelPermissionPolicy ("send" = campaigns.send_campaign), which the admin's
        # views and menu ask, as wagtail.contrib.redirects registers Redirect's.
        register_permission_policy(Campaign)
        checks.register(webhooks.check_webhook_settings)
