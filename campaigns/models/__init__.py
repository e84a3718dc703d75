from .autosend import AutoSendRule, Digest, DigestPage, IssueSend
from .campaign import Campaign, Delivery, DeliveryEvent, SendingWorker, SendWindow
from .editions import CampaignEdition
from .pages import NewsletterIndexPage, NewsletterIssuePage

__all__ = [
    "AutoSendRule",
    "Campaign",
    "CampaignEdition",
    "Delivery",
    "DeliveryEvent",
    "Digest",
    "DigestPage",
    "IssueSend",
    "NewsletterIndexPage",
    "NewsletterIssuePage",
    "SendWindow",
    "SendingWorker",
]
