from .pages import HomePage, NewsletterIndexPage, NewsletterIssuePage
from .site_settings import NewsletterSettings

__all__ = ["HomePage", "NewsletterIndexPage", "NewsletterIssuePage", "NewsletterSettings"]
