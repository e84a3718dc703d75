"""Project middleware: the visitor's language, and the public site's Content Security Policy."""

from django.conf import settings
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from wagtail.views import serve as wagtail_serve


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's LocaleMiddleware, except that a path without a language prefix negotiates.

    A prefix decides (``/zh-hans/...`` is Chinese). Without one, URLs resolve as the default
    language (English has no prefix: every existing URL keeps working) and the visitor's language
    is negotiated: the switcher's cookie, else ``Accept-Language``, else LANGUAGE_CODE
    (``request.negotiated_language``). Views outside Wagtail's page tree (the token pages linked
    from emails, forms, errors) then speak it; a Wagtail page keeps its own language, and sends a
    visitor who prefers another to its translation when there is one (``before_serve_page`` hook
    in newsletter_site.wagtail_hooks). Nobody is redirected to a page that does not exist.
    """

    def process_request(self, request):
        language = translation.get_language_from_path(request.path_info)
        request.language_from_path = language
        request.negotiated_language = language or translation.get_language_from_request(request, check_path=False)
        translation.activate(language or settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = translation.get_language()

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not request.language_from_path and view_func is not wagtail_serve:
            translation.activate(request.negotiated_language)
            request.LANGUAGE_CODE = translation.get_language()

    def process_response(self, request, response):
        response = super().process_response(request, response)
        if not getattr(request, "language_from_path", None):
            patch_vary_headers(response, ("Cookie",))  # the switcher's choice
        return response


def _is_document_preview(request) -> bool:
    """An admin preview in a mode other than the page as served (Wagtail sets both attributes)."""
    return bool(getattr(request, "is_preview", False) and getattr(request, "preview_mode", ""))


class PublicContentSecurityPolicyMiddleware(ContentSecurityPolicyMiddleware):
    """Django's CSP middleware (``SECURE_CSP``) for the public site, not the two admins.

    The public pages load only self-hosted CSS and JavaScript, with no inline script or style (a
    test in newsletter_site/tests checks every public page), so a strict policy costs nothing
    there. Wagtail's and Django's admins are staff-only and use inline scripts and styles of their
    own: they keep their own protections (login, CSRF, X-Frame-Options) without this header.

    Wagtail renders an admin preview by running a dummy request for the page's *public* URL
    through this middleware (``Page.make_preview_request``), so the path alone says "public". A
    preview in a named mode (an issue's "email" and "text") is not a public page but a document
    the site never serves: the email is inline styles by design (css-inline, for Outlook and
    Gmail). Those previews are the admin's; the default mode ("", the page as served) keeps the
    public policy, so the editor sees what visitors will see.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        self._exempt: tuple[str, ...] | None = None

    def _is_exempt(self, path: str) -> bool:
        if self._exempt is None:  # Reversed on first use: the URLconf is not loaded at start-up.
            self._exempt = (reverse("wagtailadmin_home"), reverse("admin:index"))
        return path.startswith(self._exempt)

    def process_response(self, request, response):
        if self._is_exempt(request.path_info) or _is_document_preview(request):
            return response
        return super().process_response(request, response)
