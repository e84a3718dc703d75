from django.apps import AppConfig

from subscribers import checks  # noqa: F401 (registers the system checks; imports no models)


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Not a loop: ready() is where Django allows importing what imports models.
        from subscribers import signal_handlers, signals

        # dispatch_uid: connected once even if ready() runs again (tests, autoreload).
        signals.subscribed.connect(
            signal_handlers.notify_staff_of_subscription, dispatch_uid="subscribers.staff_notice"
        )
