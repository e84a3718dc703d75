from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Not a loop: ready() is where Django allows importing what imports models.
        from campaigns import signal_handlers

        signal_handlers.connect()
