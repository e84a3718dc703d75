"""Site-level views that belong to no app."""

from django.conf import settings
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.http import require_http_methods
from django.views.static import serve


def media(request, path):
    """Uploaded files (images, documents) from MEDIA_ROOT, only when DEBUG or SERVE_MEDIA is on.

    For a laptop or a single small server (``make serve-prod`` turns it on); a real deployment
    serves MEDIA_ROOT from the front web server or object storage instead. The setting is read per
    request so tests can switch it. ``serve`` refuses paths outside MEDIA_ROOT.
    """
    if not (settings.DEBUG or settings.SERVE_MEDIA):
        raise Http404("Media files are not served by the application.")
    return serve(request, path, document_root=settings.MEDIA_ROOT)


@require_http_methods(["GET", "POST"])
def set_language(request):
    """The language switcher: remember ``language`` in the language cookie, go to ``next``.

    The switcher is made of plain links (GET): no form, so no CSRF token or cookie on the pages
    that show it (the subscribe thank-you page must be byte-identical for every address); setting
    a preference cookie for one's own browser needs no protection. Like Django's set_language,
    except that ``next`` is used as given (the switcher already points each language at that
    language's version of the page): Django's translate_url cannot translate Wagtail's catch-all
    page URLs and would build ``/zh-hans/zh-hans/...``. A ``next`` off this site becomes ``/``.
    """
    data = request.POST if request.method == "POST" else request.GET
    language = data.get("language", "")
    if language not in dict(settings.LANGUAGES):
        return HttpResponseBadRequest(_("Unknown language."))
    next_url = data.get("next", "")
    if not next_url.startswith("/") or not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE or request.is_secure(),
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE or "Lax",
    )
    return response


def page_not_found(request, exception):
    """The 404 page in the visitor's language (``handler404``).

    An unprefixed address that is not a page (Wagtail's serve finds nothing, or no URL matches at
    all) resolves in the default language, as unprefixed pages do; the page saying so speaks the
    language negotiated for the visitor (switcher cookie, else Accept-Language), as the token
    pages do (newsletter_site.middleware.LocaleMiddleware). A prefixed address keeps its prefix's.
    """
    negotiated = getattr(request, "negotiated_language", None)
    if negotiated and not getattr(request, "language_from_path", None):
        translation.activate(negotiated)
        request.LANGUAGE_CODE = translation.get_language()
    return defaults.page_not_found(request, exception)
