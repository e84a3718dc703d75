from .campaign import Campaign, Delivery, DeliveryEvent, SendingWorker, SendWindow
from .pages import HomePage, NewsletterIndexPage, NewsletterIssuePage
from .site_settings import NewsletterSettings

__all__ = [
    "Campaign",
    "Delivery",
    "DeliveryEvent",
    "HomePage",
    "NewsletterIndexPage",
    "NewsletterIssuePage",
    "NewsletterSettings",
    "SendWindow",
    "SendingWorker",
]
