from .campaign import Campaign, Delivery, DeliveryEvent, SendingWorker, SendWindow
from .editions import CampaignEdition
from .pages import NewsletterIndexPage, NewsletterIssuePage

__all__ = [
    "Campaign",
    "CampaignEdition",
    "Delivery",
    "DeliveryEvent",
    "NewsletterIndexPage",
    "NewsletterIssuePage",
    "SendWindow",
    "SendingWorker",
]
