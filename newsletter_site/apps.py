from django.apps import AppConfig


class NewsletterSiteConfig(AppConfig):
    name = "newsletter_site"
    verbose_name = "Newsletter site"

    def ready(self):
        # Not a loop: ready() is where Django allows importing what imports models.
        from newsletter_site import page_cache

        page_cache.connect()
