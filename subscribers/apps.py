from django.apps import AppConfig

from subscribers import checks  # noqa: F401 (registers the system checks; imports no models)


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"
    default_auto_field = "django.db.models.BigAutoField"
