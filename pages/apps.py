from django.apps import AppConfig


class PagesConfig(AppConfig):
    """The public site's own pages (home, subscribe): the layer above ``campaigns`` and ``subscribers``,
    as bakerydemo keeps ``HomePage`` in ``base``. Nothing below imports it."""

    name = "pages"
    verbose_name = "Site pages"
    default_auto_field = "django.db.models.BigAutoField"
