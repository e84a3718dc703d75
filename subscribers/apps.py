from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Not a loop: ready() is where Django allows importing what imports models.
        from subscribers import checks, signal_handlers, signals  # noqa: F401 (checks registers the system checks)

        # dispatch_uid: connected once even if ready() runs again (tests, autoreload).
        signals.subscribed.connect(
            signal_handlers.notify_staff_of_subscription, dispatch_uid="subscribers.staff_notice"
        )
