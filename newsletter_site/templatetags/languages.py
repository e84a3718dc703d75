"""``{% language_options %}``: where the language switcher sends each language."""

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
