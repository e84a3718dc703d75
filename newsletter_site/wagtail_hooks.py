"""Site-wide Wagtail hooks."""

from django.shortcuts import redirect
from django.utils.cache import patch_vary_headers
from wagtail import hooks
from wagtail.models import Locale


@hooks.register("before_serve_page")
def send_visitors_to_their_language(page, request, serve_args, serve_kwargs):
    """A page reached without a language prefix, by a visitor who prefers another language
    (switcher cookie or Accept-Language, see newsletter_site.middleware), redirects to its live
    translation in that language when there is one; otherwise the page is served as it is."""
    wanted = getattr(request, "negotiated_language", None)
    if request.method not in ("GET", "HEAD") or getattr(request, "language_from_path", None) or not wanted:
        return None
    if wanted == page.locale.language_code:
        return None
    locale = Locale.objects.filter(language_code=wanted).first()
    translated = page.get_translation_or_none(locale) if locale else None
    if translated is None or not translated.live:
        return None
    response = redirect(translated.get_url(request))
    patch_vary_headers(response, ("Accept-Language", "Cookie"))
    return response
