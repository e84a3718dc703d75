from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import models
from django.utils import timezone
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Page
from wagtail.search import index

from campaigns.blocks import IssueBodyBlock


class HomePage(Page):
    """The site root: an introduction, the latest issues and a subscribe call to action."""

    intro = RichTextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    subpage_types = ["campaigns.NewsletterIndexPage", "subscribers.SubscribePage"]
    max_count = 1

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["latest_issues"] = NewsletterIssuePage.objects.live().public().order_by("-issue_date")[:3]
        context["archive"] = NewsletterIndexPage.objects.live().first()
        return context


class NewsletterIndexPage(Page):
    """The public archive: every published issue, newest first, with an Atom feed."""

    intro = RichTextField(blank=True)
    per_page = 10

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    parent_page_types = ["campaigns.HomePage"]
    subpage_types = ["campaigns.NewsletterIssuePage"]

    def issues(self):
        return NewsletterIssuePage.objects.live().public().child_of(self).order_by("-issue_date", "-pk")

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


class NewsletterIssuePage(Page):
    """One newsletter issue: the web archive entry and, rendered by campaigns.rendering, the email."""

    subject = models.CharField(max_length=200, help_text="The email subject line.")
    preheader = models.CharField(
        max_length=200, blank=True, help_text="Preview text shown after the subject in most inboxes."
    )
    issue_date = models.DateField(default=timezone.localdate)
    hero_image = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hero_alt_text = models.CharField(max_length=250, blank=True)
    body = StreamField(IssueBodyBlock())

    content_panels = [
        *Page.content_panels,
        MultiFieldPanel([FieldPanel("subject"), FieldPanel("preheader"), FieldPanel("issue_date")], "Email"),
        MultiFieldPanel([FieldPanel("hero_image"), FieldPanel("hero_alt_text")], "Hero image"),
        FieldPanel("body"),
    ]
    search_fields = [*Page.search_fields, index.SearchField("subject"), index.SearchField("body")]
    parent_page_types = ["campaigns.NewsletterIndexPage"]
    subpage_types = []

    class Meta:
        verbose_name = "newsletter issue"
