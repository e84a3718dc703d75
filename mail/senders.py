"""Who an email is from: the one place that finds the site's newsletter settings and builds a From."""

from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from wagtail.models import Site

from mail.addresses import format_address, reformat_address


def newsletter_settings(site=None):
    """The NewsletterSettings of ``site`` (a Wagtail Site; default: the default site, else the
    first site); None when the database has no site at all (a fresh install before migrate's
    default site, some tests)."""
    if site is None:
        site = Site.objects.filter(is_default_site=True).first() or Site.objects.order_by("pk").first()
        if site is None:
            return None
    # Looked up by name until the model moves into this app (issue 10): mail imports no app above it.
    return apps.get_model("campaigns", "NewsletterSettings").for_site(site)


@dataclass(frozen=True)
class Sender:
    """A From header value (display name unencoded: the mail APIs encode it) and a Reply-To address."""

    from_email: str
    reply_to: str = ""


def sender_for(mailing_list=None, site=None) -> Sender:
    """The sender of mail about ``mailing_list`` (a MailingList or None) on ``site`` (None: default).

    A list with its own ``from_email`` sends as itself, named ``from_name`` or else the site's
    sender name; otherwise the site's newsletter settings; with no site at all,
    ``settings.DEFAULT_FROM_EMAIL``. Reply-To is the list's, else the site's. Every value goes
    through ``format_address``: ``HeaderValueError`` if a stored name or address cannot be a header.
    """
    site_settings = newsletter_settings(site)
    list_reply_to = getattr(mailing_list, "reply_to", "") or ""
    site_reply_to = site_settings.reply_to if site_settings is not None else ""
    if mailing_list is not None and mailing_list.from_email:
        name = mailing_list.from_name or (site_settings.sender_name if site_settings is not None else "")
        from_email = format_address(mailing_list.from_email, name)
    elif site_settings is not None:
        from_email = format_address(site_settings.sender_email, site_settings.sender_name)
    else:
        from_email = reformat_address(settings.DEFAULT_FROM_EMAIL)
    return Sender(from_email=from_email, reply_to=list_reply_to or site_reply_to)
