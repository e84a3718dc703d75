"""The archive's Atom feed, built with Django's syndication framework."""

import datetime

from django.contrib.syndication.views import Feed
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from mail.models import NewsletterSettings


class IssueFeed(Feed):
    """Atom feed of the newest published issues of one NewsletterIndexPage.

    Built per request from the archive page (``IssueFeed(archive)(request)``); every link is the
    page's absolute URL on its Wagtail site, so feed readers never see relative paths.
    """

    feed_type = Atom1Feed
    limit = 20

    def __init__(self, archive):
        super().__init__()
        self.archive = archive

    def title(self):
        # Feed readers list the feed under this name: the newsletter's, as in the From header.
        site = self.archive.get_site()
        return (NewsletterSettings.for_site(site).sender_name if site else "") or self.archive.title

    def link(self):
        return self.archive.full_url

    def feed_url(self):
        return self.archive.full_url + self.archive.reverse_subpage("feed").lstrip("/")

    def subtitle(self):
        return _("Every issue of %(name)s, newest first.") % {"name": self.title()}

    def items(self):
        return self.archive.issues()[: self.limit]

    def item_title(self, item):
        return item.public_subject or item.title

    def item_description(self, item):
        return item.public_preheader

    def item_link(self, item):
        return item.full_url

    def item_guid(self, item):
        return item.full_url

    def item_pubdate(self, item):
        # The editor's issue date is what readers know the issue by; first publication time breaks ties.
        return timezone.make_aware(datetime.datetime.combine(item.issue_date, datetime.time.min), datetime.UTC)

    def item_updateddate(self, item):
        return item.last_published_at or self.item_pubdate(item)
