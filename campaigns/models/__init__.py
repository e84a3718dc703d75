from .campaign import Campaign, Delivery, DeliveryEvent, SendingWorker, SendWindow
from .editions import CampaignEdition
from .pages import HomePage, NewsletterIndexPage, NewsletterIssuePage
from .site_settings import NewsletterSettings

__all__ = [
    "Campaign",
    "CampaignEdition",
    "Delivery",
    "DeliveryEvent",
    "HomePage",
    "NewsletterIndexPage",
    "NewsletterIssuePage",
    "NewsletterSettings",
    "SendWindow",
    "SendingWorker",
]
