"""The public site's own pages: the home page and the subscribe page.

They sit above ``campaigns`` (the home page lists the latest issues) and ``subscribers`` (the
subscribe page is served by the subscribe view), so neither app imports this one.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Locale, Page

from campaigns.models import NewsletterIndexPage, NewsletterIssuePage
from pages.blocks import SubscribeFormBlock
from subscribers.views import subscribe_page


class SubscribePage(Page):
    """A page with the subscribe form (public lists as unticked checkboxes and a consent sentence)."""

    intro = RichTextField(_("introduction"), blank=True)
    consent_text = models.TextField(
        _("consent text"),
        default=(
            "I agree to receive the newsletters I selected by email. I can unsubscribe at any time "
            "with the link in every email."
        ),
        help_text=_("Shown next to the form and stored with every subscription as the proof of consent."),
    )
    thank_you_text = RichTextField(_("thank-you text"), blank=True, help_text=_("Shown after the form is sent."))

    content_panels = [
        *Page.content_panels,
        FieldPanel("intro"),
        FieldPanel("consent_text"),
        FieldPanel("thank_you_text"),
    ]
    subpage_types = []

    class Meta:
        # Moved from subscribers (pages/migrations/0001_initial.py): the table keeps its name.
        db_table = "subscribers_subscribepage"
        verbose_name = _("subscribe page")

    def serve(self, request, *args, **kwargs):
        # GET shows the form, POST handles it: a view does both so the page model stays declarative.
        return subscribe_page(request, self)


class HomePage(Page):
    """The site root: an introduction, the latest issues and a subscribe call to action."""

    intro = RichTextField(_("introduction"), blank=True)
    # Free sections under the latest issues, e.g. the subscribe form (any page can host one).
    body = StreamField(
        [
            (
                "paragraph",
                blocks.RichTextBlock(features=["bold", "italic", "link", "ol", "ul", "h2", "h3"], label=_("Paragraph")),
            ),
            ("subscribe_form", SubscribeFormBlock()),
        ],
        blank=True,
        verbose_name=_("body"),
    )

    content_panels = [*Page.content_panels, FieldPanel("intro"), FieldPanel("body")]
    subpage_types = ["campaigns.NewsletterIndexPage", "pages.SubscribePage"]
    max_count = 1

    class Meta:
        # Moved from campaigns (pages/migrations/0001_initial.py): the table keeps its name.
        db_table = "campaigns_homepage"
        verbose_name = _("home page")

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        # In the home page's language: its issues (each once, translated when it can be), archive
        # and subscribe page; the default language's archive and subscribe page when untranslated.
        issues = NewsletterIssuePage.objects.for_language(self.locale)
        context["latest_issues"] = issues.order_by("-issue_date", "-pk")[:3]
        context["archive"] = in_locale(NewsletterIndexPage.objects.live().public(), self.locale)
        context["subscribe_page"] = in_locale(SubscribePage.objects.live().public(), self.locale)
        return context


def in_locale(pages, locale: Locale | None):
    """The first of ``pages`` in ``locale``, else in the default locale, else any (a language
    without its own archive or subscribe page links to the default language's)."""
    page = pages.filter(locale=locale).first() if locale is not None else None
    return page or pages.filter(locale=Locale.get_default()).first() or pages.first()
