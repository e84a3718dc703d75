from django.core.exceptions import ValidationError
from django.db import models
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.models import Site

from mail.addresses import format_address, validate_header_text


@register_setting(icon="mail")
class NewsletterSettings(BaseSiteSetting):
    """Who the newsletter comes from and what every email's footer says."""

    sender_name = models.CharField(max_length=100, default="Broadsheet", validators=[validate_header_text])
    sender_email = models.EmailField(default="newsletter@localhost")
    reply_to = models.EmailField(blank=True)
    postal_address = models.TextField(
        blank=True,
        help_text="Required before any campaign can be sent (CAN-SPAM): a valid physical postal address.",
    )
    footer_text = models.TextField(
        blank=True, default="You receive this email because you subscribed to our newsletter."
    )
    default_lists = models.ManyToManyField(
        "subscribers.MailingList", blank=True, help_text="Preselected when sending a new campaign."
    )

    panels = [
        MultiFieldPanel([FieldPanel("sender_name"), FieldPanel("sender_email"), FieldPanel("reply_to")], "Sender"),
        FieldPanel("postal_address"),
        FieldPanel("footer_text"),
        FieldPanel("default_lists"),
    ]

    class Meta:
        verbose_name = "Newsletter settings"
        # Moved from campaigns (issue 10): the table keeps its name, so no data moves.
        db_table = "campaigns_newslettersettings"

    @property
    def from_email(self) -> str:
        """The site's From header value (``mail.senders.sender_for`` decides when a list overrides it)."""
        return format_address(self.sender_email, self.sender_name)

    def clean(self):
        if self.postal_address and len(self.postal_address.strip()) < 10:
            raise ValidationError({"postal_address": "Enter a complete postal address."})

    @property
    def can_send(self) -> bool:
        return bool(self.postal_address.strip())


def newsletter_settings(site=None) -> NewsletterSettings | None:
    """The one way to find the newsletter settings: those of ``site`` (a Wagtail Site; default:
    the default site, else the first); None when the database has no site at all."""
    if site is None:
        site = Site.objects.filter(is_default_site=True).first() or Site.objects.order_by("pk").first()
        if site is None:
            return None
    return NewsletterSettings.for_site(site)
