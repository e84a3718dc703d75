from django.apps import AppConfig


class MailConfig(AppConfig):
    """The bottom layer: email pieces that ``subscribers`` and ``campaigns`` both use.

    It imports neither of them (see docs/architecture.md).
    """

    name = "mail"
    verbose_name = "Mail"
    default_auto_field = "django.db.models.BigAutoField"
