"""Project middleware."""

from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.urls import reverse


class PublicContentSecurityPolicyMiddleware(ContentSecurityPolicyMiddleware):
    """Django's CSP middleware (``SECURE_CSP``) for the public site, not the two admins.

    The public pages load only self-hosted CSS and JavaScript, with no inline script or style (a
    test in newsletter_site/tests checks every public page), so a strict policy costs nothing
    there. Wagtail's and Django's admins are staff-only and use inline scripts and styles of their
    own: they keep their own protections (login, CSRF, X-Frame-Options) without this header.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        self._exempt: tuple[str, ...] | None = None

    def _is_exempt(self, path: str) -> bool:
        if self._exempt is None:  # Reversed on first use: the URLconf is not loaded at start-up.
            self._exempt = (reverse("wagtailadmin_home"), reverse("admin:index"))
        return path.startswith(self._exempt)

    def process_response(self, request, response):
        if self._is_exempt(request.path_info):
            return response
        return super().process_response(request, response)
