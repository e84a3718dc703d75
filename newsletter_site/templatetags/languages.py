"""``{% language_options %}``: where the language switcher sends each language;
``{% page_alternates %}``: a page's versions in other languages, for hreflang links."""

from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.utils import translation
from wagtail.models import Locale, Page, Site

register = template.Library()


@register.simple_tag(takes_context=True)
def language_options(context) -> list[dict]:
    """One dict per settings.LANGUAGES entry: ``code``, ``name_local``, ``current``, ``url`` and
    ``query`` (the switcher link's query string: ``language`` and ``next``).

    On a Wagtail page, ``url`` is its translation in that language, else that language's home
    page; elsewhere (token pages, forms) the same path without a language prefix, since those
    pages take the language from the cookie the switcher sets.
    """
    request = context.get("request")
    page = context.get("page")
    current = translation.get_language()
    locales = {locale.language_code: locale for locale in Locale.objects.all()}
    options = []
    for code, _name in settings.LANGUAGES:
        url = _url_for(code, page if isinstance(page, Page) else None, request, locales)
        info = translation.get_language_info(code)
        query = urlencode({"language": code, "next": url})
        options.append(
            {"code": code, "name_local": info["name_local"], "current": code == current, "url": url, "query": query}
        )
    return options


@register.simple_tag
def page_alternates(page) -> list[dict]:
    """``{% page_alternates page as alternates %}``: the ``<link rel="alternate" hreflang>`` of a
    page: one per live version (itself and its translations, absolute URLs as search engines
    require), plus ``x-default``, the version in the default language: its URL has no prefix and
    sends each visitor to their language. Empty for anything that is not a Wagtail page, or a page
    with no translation (its canonical link says all).
    """
    if not isinstance(page, Page):
        return []
    versions = [page, *page.get_translations().live().select_related("locale")]
    if len(versions) < 2:
        return []
    alternates = []
    default = None
    for version in sorted(versions, key=lambda p: p.locale.language_code):
        url = version.full_url
        if not url:
            continue
        alternates.append({"hreflang": version.locale.language_code, "url": url})
        if version.locale.language_code == settings.LANGUAGE_CODE:
            default = url
    if default:
        alternates.append({"hreflang": "x-default", "url": default})
    return alternates


def _url_for(code, page, request, locales) -> str:
    locale = locales.get(code)
    if page is not None and locale is not None:
        translated = page if page.locale_id == locale.pk else page.get_translation_or_none(locale)
        if translated is None or not translated.live:
            site = Site.find_for_request(request) if request else None
            home = site.root_page if site else None
            translated = home.get_translation_or_none(locale) if home else None
        if translated is not None and translated.live:
            return translated.get_url(request) or "/"
    path = request.path if request else "/"
    prefixed = translation.get_language_from_path(path)
    if prefixed:
        path = path[len(prefixed) + 1 :] or "/"
    return path
