from django.conf import settings
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import models
from django.db.models import Q
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone, translation
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.contrib.routable_page.models import RoutablePageMixin, path
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Locale, Page, PageManager
from wagtail.query import PageQuerySet
from wagtail.search import index

from campaigns.blocks import IssueBodyBlock
from campaigns.feeds import IssueFeed
from campaigns.issue_email import render_issue
from mail import mergetags
from mail.addresses import validate_header_text


class IssuePageQuerySet(PageQuerySet):
    def issues(self):
        """Issues proper: pages of exactly this type. A subtype that reuses the issue's fields,
        blocks and previews for other mail (automations' emails) is not part of the archive, the
        home page, the feed or the "New campaign" list."""
        return self.exact_type(self.model)

    def for_language(self, locale: Locale):
        """Live, public issues as a reader of ``locale`` sees them: each issue once, in that
        language when it has a live translation in it, else in the default language, else in the
        language it was written in (an issue written only in Chinese is still listed in English)."""
        # Digests (campaigns.autosend) and automations' emails are issue subtypes, not issues of
        # their own (a digest listed would list its issues twice).
        live = self.issues().live().public()
        here = live.filter(locale=locale).values("translation_key")
        default = live.filter(locale=Locale.get_default()).values("translation_key")
        return live.filter(
            Q(locale=locale)
            | (Q(locale=Locale.get_default()) & ~Q(translation_key__in=here))
            | (~Q(translation_key__in=here) & ~Q(translation_key__in=default))
        )


IssuePageManager = PageManager.from_queryset(IssuePageQuerySet)

# Next to the subject, preheader and body fields (mail.mergetags is the syntax; docs/editors.md).
MERGE_TAGS_HELP = _(
    "Merge tags: {{ first_name }}, {{ name }}, {{ email }}, {{ attributes.city }} (any attribute), "
    'with a fallback as in {{ first_name|default:"reader" }}. The web archive shows the fallback.'
)


class NewsletterIndexPage(RoutablePageMixin, Page):
    """The public archive: every published issue, newest first, with an Atom feed."""

    intro = RichTextField(_("introduction"), blank=True)
    per_page = 10

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    parent_page_types = ["pages.HomePage"]
    subpage_types = ["campaigns.NewsletterIssuePage"]

    class Meta:
        verbose_name = _("newsletter archive")

    def issues(self):
        """The archive's issues, newest first, in the archive's language: those in it, and those
        not translated into it in their own language (the archive of a translated site lists
        every issue, not only the translated ones)."""
        archives = Q()
        for archive in self.get_translations(inclusive=True):
            archives |= NewsletterIssuePage.objects.child_of_q(archive)
        return NewsletterIssuePage.objects.for_language(self.locale).filter(archives).order_by("-issue_date", "-pk")

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        paginator = Paginator(self.issues(), self.per_page)
        try:
            page_obj = paginator.page(request.GET.get("page", 1))
        except PageNotAnInteger:
            page_obj = paginator.page(1)
        except EmptyPage:
            page_obj = paginator.page(paginator.num_pages)
        context["issues"] = page_obj
        return context

    @path("")
    def archive(self, request):
        return self.render(request)

    @path("feed/", name="feed")
    def feed(self, request):
        return IssueFeed(self)(request)


class NewsletterIssuePage(Page):
    """One newsletter issue: the web archive entry and, rendered by mail.rendering, the email."""

    subject = models.CharField(
        _("subject"), max_length=200, validators=[validate_header_text], help_text=_("The email subject line.")
    )
    preheader = models.CharField(
        _("preheader"), max_length=200, blank=True, help_text=_("Preview text shown after the subject in most inboxes.")
    )
    issue_date = models.DateField(_("issue date"), default=timezone.localdate)
    hero_image = models.ForeignKey(
        "wagtailimages.Image",
        verbose_name=_("hero image"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    hero_alt_text = models.CharField(_("hero image alt text"), max_length=250, blank=True)
    body = StreamField(IssueBodyBlock(), verbose_name=_("body"))

    objects = IssuePageManager()

    content_panels = [
        *Page.content_panels,
        MultiFieldPanel(
            [
                FieldPanel("subject", help_text=format_lazy("{} {}", _("The email subject line."), MERGE_TAGS_HELP)),
                FieldPanel(
                    "preheader",
                    help_text=format_lazy(
                        "{} {}", _("Preview text shown after the subject in most inboxes."), MERGE_TAGS_HELP
                    ),
                ),
                FieldPanel("issue_date"),
            ],
            _("Email"),
        ),
        MultiFieldPanel([FieldPanel("hero_image"), FieldPanel("hero_alt_text")], _("Hero image")),
        FieldPanel(
            "body",
            help_text=format_lazy(
                "{} {}",
                MERGE_TAGS_HELP,
                _("Type each tag in one go: a tag split by bold or a link is refused at the send step."),
            ),
        ),
    ]
    search_fields = [*Page.search_fields, index.SearchField("subject"), index.SearchField("body")]
    parent_page_types = ["campaigns.NewsletterIndexPage"]
    subpage_types = []

    # The editor sees exactly what is sent: the email and its plaintext come from render_issue,
    # personalised with SAMPLE_RECIPIENT as the sending engine personalises for real readers.
    preview_modes = [("", _("Web page")), ("email", _("Email (HTML)")), ("text", _("Plain text"))]

    class Meta:
        verbose_name = _("newsletter issue")

    @property
    def public_subject(self) -> str:
        """The subject as the web archive and the feed show it: merge tags as their fallback, or nothing."""
        return mergetags.without_tags(self.subject, html=False)

    @property
    def public_preheader(self) -> str:
        return mergetags.without_tags(self.preheader, html=False)

    def sample_recipient(self, subscriber=None) -> dict[str, str]:
        """Recipient values for previews and test sends: a stand-in reader (the name in the issue's
        language, no attributes: tags show their fallbacks), or ``subscriber``'s own values. The
        links are sample links either way (a preview never holds a working unsubscribe token)."""
        if subscriber is not None:
            name, email, attributes = subscriber.name, subscriber.email, subscriber.attributes or {}
        else:
            with translation.override(self.locale.language_code if self.locale_id else settings.LANGUAGE_CODE):
                name = gettext("Sample Reader")
            email, attributes = "sample.reader@example.com", {}
        wanted = ["first_name", *(mergetags.ATTRIBUTE_PREFIX + key for key in attributes)]
        return {
            **mergetags.subscriber_values(name, email, attributes, wanted),
            "unsubscribe_url": f"{settings.BASE_URL}/newsletter/unsubscribe/sample-preview-token/",
            "preferences_url": f"{settings.BASE_URL}/newsletter/preferences/sample-preview-token/",
        }

    def serve_preview(self, request, mode_name):
        if mode_name not in ("email", "text"):
            return super().serve_preview(request, mode_name)
        return self.serve_email_preview(request, mode_name)

    def serve_email_preview(self, request, mode_name: str, subscriber=None):
        """The email (``mode_name`` "email") or its plain text ("text") as ``subscriber`` gets it
        (default: the sample reader). Also the admin's "preview as a subscriber" view."""
        rendered = render_issue(self)
        values = self.sample_recipient(subscriber)
        html, text = rendered.personalise(values)
        if mode_name == "email":
            # Inline styles by design: the public CSP leaves this preview alone (newsletter_site.middleware).
            return HttpResponse(html)
        # Plain text goes out wrapped in a <pre> page rather than as text/plain: browsers soft-wrap
        # text/plain documents, which would hide whether our 78-column wrapping is right, and the
        # preview iframe would guess the charset; the <pre> shows the exact lines, in UTF-8.
        context = {
            "page": self,
            "rendered": rendered,
            "text": text,
            "subject": rendered.personal_subject(values),
            "preheader": mergetags.fill(mergetags.compile_header(rendered.preheader), values),
        }
        return TemplateResponse(request, "campaigns/preview_text.html", context)
