from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = _("Automations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Not a loop: ready() is where Django allows importing what imports models.
        from automations import signal_handlers

        signal_handlers.connect()
