from .campaign import Campaign, Delivery, DeliveryEvent, SendingWorker, SendWindow
from .pages import HomePage, NewsletterIndexPage, NewsletterIssuePage

__all__ = [
    "Campaign",
    "Delivery",
    "DeliveryEvent",
    "HomePage",
    "NewsletterIndexPage",
    "NewsletterIssuePage",
    "SendWindow",
    "SendingWorker",
]
