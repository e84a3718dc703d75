from django.core.exceptions import ValidationError
from django.db import models
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting

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
