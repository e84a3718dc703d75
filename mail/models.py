from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import FieldPanel, InlinePanel, MultiFieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.models import Site

from mail.addresses import format_address, validate_header_address, validate_header_text

# The footer's default, in the catalogue so that a site which never changed it gets it in every
# language (NewsletterSettings.footer_for).
DEFAULT_FOOTER_TEXT = gettext_noop("You receive this email because you subscribed to our newsletter.")


def _languages():
    return settings.LANGUAGES


class NewsletterSettingsForm(WagtailAdminModelForm):
    """The settings page. A footer translation for a language that got one since the page was
    opened (another window, another editor) is an error on that form: modelcluster keeps rows
    the page did not show and adds the new one, which the database refuses (one per language)."""

    def is_valid(self):
        valid = super().is_valid()
        formset = self.formsets.get("footer_translations")
        if not valid or formset is None or self.instance.pk is None:
            return valid
        shown = [form.instance.pk for form in formset.initial_forms if form.instance.pk]
        taken = set(
            FooterTranslation.objects.filter(newsletter_settings=self.instance)
            .exclude(pk__in=shown)
            .values_list("language", flat=True)
        )
        for form in formset.forms:
            if form not in formset.deleted_forms and form.cleaned_data.get("language") in taken:
                form.add_error("language", _("This language already has a footer text: reload the page."))
                valid = False
        return valid


@register_setting(icon="mail")
class NewsletterSettings(ClusterableModel, BaseSiteSetting):
    """Who the newsletter comes from and what every email's footer says.

    Wagtail settings are per site, not per locale: the footer text is the site language's
    (LANGUAGE_CODE), and ``footer_translations`` (FooterTranslation rows, edited inline on the
    same settings page) give it in other languages; ``footer_for(language)`` picks.
    """

    sender_name = models.CharField(
        _("sender name"), max_length=100, default="Broadsheet", validators=[validate_header_text]
    )
    sender_email = models.EmailField(
        _("sender email"), default="newsletter@localhost", validators=[validate_header_address]
    )
    reply_to = models.EmailField(_("reply-to"), blank=True, validators=[validate_header_address])
    postal_address = models.TextField(
        _("postal address"),
        blank=True,
        help_text=_("Required before any campaign can be sent (CAN-SPAM): a valid physical postal address."),
    )
    footer_text = models.TextField(
        _("footer text"),
        blank=True,
        default=DEFAULT_FOOTER_TEXT,
        help_text=_("In the site's main language; add other languages below."),
    )
    default_lists = models.ManyToManyField(
        "subscribers.MailingList",
        verbose_name=_("default lists"),
        blank=True,
        help_text=_("Preselected when sending a new campaign."),
    )

    base_form_class = NewsletterSettingsForm
    panels = [
        MultiFieldPanel([FieldPanel("sender_name"), FieldPanel("sender_email"), FieldPanel("reply_to")], _("Sender")),
        FieldPanel("postal_address"),
        FieldPanel("footer_text"),
        InlinePanel("footer_translations", heading=_("Footer text in other languages"), label=_("Footer translation")),
        FieldPanel("default_lists"),
    ]

    class Meta:
        verbose_name = _("Newsletter settings")
        # Moved from campaigns (issue 10): the table keeps its name, so no data moves.
        db_table = "campaigns_newslettersettings"

    @property
    def from_email(self) -> str:
        """The site's From header value (``mail.senders.sender_for`` decides when a list overrides it)."""
        return format_address(self.sender_email, self.sender_name)

    def clean(self):
        if self.postal_address and len(self.postal_address.strip()) < 10:
            raise ValidationError({"postal_address": _("Enter a complete postal address.")})

    @property
    def can_send(self) -> bool:
        return bool(self.postal_address.strip())

    def footer_for(self, language: str | None = None) -> str:
        """The footer text for readers of ``language`` (default: the active language): its
        translation when there is one, else the site's footer text; the untouched default text
        comes from the catalogue in every language."""
        language = language or translation.get_language() or settings.LANGUAGE_CODE
        for row in self.footer_translations.all():
            if row.language == language:
                return row.text
        if self.footer_text == DEFAULT_FOOTER_TEXT:
            with translation.override(language):
                return translation.gettext(DEFAULT_FOOTER_TEXT)
        return self.footer_text


class FooterTranslation(models.Model):
    """The newsletter footer text in one more language (NewsletterSettings.footer_for)."""

    newsletter_settings = ParentalKey(NewsletterSettings, on_delete=models.CASCADE, related_name="footer_translations")
    language = models.CharField(_("language"), max_length=15, choices=_languages)
    text = models.TextField(_("text"))

    panels = [FieldPanel("language"), FieldPanel("text")]

    class Meta:
        verbose_name = _("footer translation")
        constraints = [
            models.UniqueConstraint(fields=["newsletter_settings", "language"], name="one_footer_per_language"),
        ]

    def __str__(self) -> str:
        return f"{self.get_language_display()}: {self.text[:40]}"


def newsletter_settings(site=None) -> NewsletterSettings | None:
    """The one way to find the newsletter settings: those of ``site`` (a Wagtail Site; default:
    the default site, else the first); None when the database has no site at all."""
    if site is None:
        site = Site.objects.filter(is_default_site=True).first() or Site.objects.order_by("pk").first()
        if site is None:
            return None
    return NewsletterSettings.for_site(site)
