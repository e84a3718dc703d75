from .campaign import Campaign, Delivery, DeliveryEvent, SendingWorker, SendWindow
from .editions import CampaignEdition
from .pages import HomePage, NewsletterIndexPage, NewsletterIssuePage

__all__ = [
    "Campaign",
    "CampaignEdition",
    "Delivery",
    "DeliveryEvent",
    "HomePage",
    "NewsletterIndexPage",
    "NewsletterIssuePage",
    "SendWindow",
    "SendingWorker",
]
