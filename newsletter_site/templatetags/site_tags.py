"""Template tags for the public site's frame (masthead, navigation, footer)."""

from dataclasses import dataclass

from django import template
from django.utils import translation
from wagtail.models import Locale, Page, Site

from campaigns.models import NewsletterIndexPage
from pages.models import SubscribePage, in_locale

register = template.Library()


@dataclass(frozen=True)
class SitePages:
    """Where the masthead links point: relative URLs on the request's own site ('' when absent)."""

    home_url: str
    archive_url: str
    subscribe_url: str
    feed_url: str


def _url(page: Page | None, request) -> str:
    # get_url gives a path when the page is on the request's site, a full URL only across sites.
    return (page.get_url(request) or "") if page else ""


@register.simple_tag(takes_context=True)
def site_pages(context) -> SitePages:
    """``{% site_pages as pages %}``: the home, archive, subscribe and feed links of the site, in
    the active language when the pages are translated into it.

    Computed once per render (cached on the context), so the header and footer share the queries.
    """
    cached = context.render_context.get("site_pages")
    if cached is not None:
        return cached
    request = context.get("request")
    locale = Locale.objects.filter(language_code=translation.get_language()).first()
    archive = in_locale(NewsletterIndexPage.objects.live().public(), locale)
    subscribe = in_locale(SubscribePage.objects.live().public(), locale)
    archive_url = _url(archive, request)
    site = Site.find_for_request(request) if request is not None else None
    home = site.root_page.get_translation_or_none(locale) if site and locale else None
    pages = SitePages(
        home_url=_url(home, request) if home is not None and home.live else "/",
        archive_url=archive_url,
        subscribe_url=_url(subscribe, request),
        feed_url=archive_url + archive.reverse_subpage("feed") if archive and archive_url else "",
    )
    context.render_context["site_pages"] = pages
    return pages
