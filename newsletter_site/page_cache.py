"""The public page cache: Wagtail pages as anonymous visitors see them, shared by every process.

A page's response is stored in the default cache (Redis with REDIS_URL, else the database cache)
for ``BROADSHEET["PAGE_CACHE_SECONDS"]`` and served from there to the next anonymous visitor who
asks for the same page the same way. One generation token, also in the cache, is part of every
entry: any change a visitor could see (a page published, unpublished, saved, moved or deleted; the
site's newsletter settings; a mailing list, which the subscribe form offers; a site, locale or
image) replaces the token after the transaction commits, so every stored page is stale at once
(``invalidate()``; the receivers are connected by ``connect()`` from ``NewsletterSiteConfig.ready``
and catch every page type, present and future, through Wagtail's and Django's signals).

What is never served from or stored in the cache (``PageCacheMiddleware``):

- anything but an anonymous GET or HEAD of a page Wagtail serves: a visitor with a session cookie
  (editors see the user bar; private pages), or with a messages cookie, bypasses the cache;
  previews (Wagtail's dummy requests) too;
- a response that sets a cookie, modified the session, showed a message, is not 200 or a
  redirect, says ``private`` / ``no-store`` / ``no-cache``, or carries a CSP nonce;
- a URL with a query string other than ``?page=N`` for N from 1 to 999 (the archive's pages):
  anything else would let a visitor fill the cache with ``?x=1``, ``?x=2``...

The key is the host (per site), the path, the query, whether the request was https, the language
in the path and the language the visitor negotiated (newsletter_site.middleware: switcher cookie,
else Accept-Language), which is all an unprefixed page's redirect to a translation depends on, so
a visitor never gets a page in a language other than the one they would have got uncached.

Pages with a form carry a CSRF token, which is per visitor. It is not stored: every masked token
of the request's CSRF secret in the page is replaced by a placeholder, and each visitor served the
entry gets a fresh token of their own in its place (and the CSRF cookie, from CsrfViewMiddleware,
when they had none). Such pages are sent ``Cache-Control: private`` so no shared cache keeps a
visitor's token; the others get an ETag (answered with 304 when it matches) and
``Cache-Control: max-age=PAGE_CACHE_MAX_AGE``.
"""

import hashlib
import re
import uuid

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import MiddlewareNotUsed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpResponse
from django.middleware.csrf import _unmask_cipher_token, get_token
from django.utils.cache import get_conditional_response, patch_cache_control
from wagtail.images import get_image_model
from wagtail.models import Locale, Page, Site
from wagtail.signals import page_published, page_unpublished, post_page_move
from wagtail.views import serve as wagtail_serve

from mail.models import NewsletterSettings
from subscribers.models import MailingList

GENERATION_KEY = "broadsheet:pagecache:generation"
KEY_PREFIX = "broadsheet:pagecache:"
# A masked CSRF token (django.middleware.csrf: CSRF_TOKEN_LENGTH = 64 letters and digits).
_TOKEN = re.compile(rb"(?<![A-Za-z0-9])[A-Za-z0-9]{64}(?![A-Za-z0-9])")
_PLACEHOLDER = b"\x00broadsheet-csrf-token\x00"
_STORED_STATUSES = {200, 301, 302, 307, 308}
# The archive's pages 1-999: a visitor asking for ?page=123456 (answered with the last page) or
# ?page=01 gets a fresh page rather than a new entry each, so nobody can fill the cache by counting.
_CACHEABLE_QUERY = re.compile(r"(page=[1-9][0-9]{0,2})?")
# Headers the stored response keeps (the rest are added again on the way out by the outer
# middleware: security headers, Content-Language, Vary for the language cookie, CSRF cookie).
_KEPT_HEADERS = ("Content-Type", "Location", "Vary", "X-Frame-Options", "Content-Security-Policy", "Cache-Control")


def _new_generation() -> None:
    cache.set(GENERATION_KEY, uuid.uuid4().hex, None)


def invalidate(**kwargs) -> None:
    """Make every stored page stale: a new generation now, and again once the current transaction
    commits (a request that rendered the old rows meanwhile stored them under the token in between)."""
    _new_generation()
    transaction.on_commit(_new_generation)


def _invalidate_for_page(sender, instance=None, **kwargs) -> None:
    if isinstance(instance, Page) or instance is None:
        invalidate()


def connect() -> None:
    """Connect the receivers that invalidate the cache (from ``AppConfig.ready``)."""
    for signal in (page_published, page_unpublished, post_page_move):
        signal.connect(invalidate, dispatch_uid=f"page_cache.{signal!r}")
    # Every Page subclass, now and later: saving a page (a draft too, harmlessly) or deleting it.
    post_save.connect(_invalidate_for_page, dispatch_uid="page_cache.page_saved")
    post_delete.connect(_invalidate_for_page, dispatch_uid="page_cache.page_deleted")
    for model in (NewsletterSettings, MailingList, Site, Locale, get_image_model()):
        post_save.connect(invalidate, sender=model, dispatch_uid=f"page_cache.saved.{model._meta.label}")
        post_delete.connect(invalidate, sender=model, dispatch_uid=f"page_cache.deleted.{model._meta.label}")


def _cookie_names() -> tuple[str, ...]:
    return (settings.SESSION_COOKIE_NAME, getattr(settings, "MESSAGE_COOKIE_NAME", "messages"))


def _key(request) -> str | None:
    """The entry's key, or None when this request must not use the cache at all."""
    if request.method not in ("GET", "HEAD") or getattr(request, "is_dummy", False):
        return None
    if any(name in request.COOKIES for name in _cookie_names()):
        return None
    query = request.META.get("QUERY_STRING", "")
    if not _CACHEABLE_QUERY.fullmatch(query):
        return None
    parts = (
        request.get_host(),
        "https" if request.is_secure() else "http",
        request.path,
        query,
        getattr(request, "language_from_path", None) or "",
        getattr(request, "negotiated_language", None) or "",
    )
    return KEY_PREFIX + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _without_tokens(request, content: bytes) -> tuple[bytes, bool] | None:
    """``content`` with this request's CSRF tokens replaced by the placeholder, and whether there
    were any; None when the page used a token that cannot be found (so it must not be stored)."""
    secret = request.META.get("CSRF_COOKIE")
    if not request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):  # set by get_token(), i.e. a token was used
        return content, False
    if not secret:
        return None
    found = False

    def punch(match):
        nonlocal found
        if _unmask_cipher_token(match.group().decode()) == secret:
            found = True
            return _PLACEHOLDER
        return match.group()

    stripped = _TOKEN.sub(punch, content)
    return (stripped, True) if found else None


def _storable(request, response) -> bool:
    if response.status_code not in _STORED_STATUSES or response.streaming or response.cookies:
        return False
    cache_control = response.get("Cache-Control", "")
    if any(word in cache_control for word in ("private", "no-store", "no-cache")):
        return False
    if "nonce-" in response.get("Content-Security-Policy", ""):
        return False
    session = getattr(request, "session", None)
    if session is not None and session.modified:
        return False
    messages = getattr(request, "_messages", None)
    return not (messages is not None and (messages.used or len(messages)))


class PageCacheMiddleware:
    """Serves and stores Wagtail pages for anonymous visitors (see the module docstring).

    Sits after CsrfViewMiddleware (which reads the CSRF cookie a fresh token is made from) and
    MessageMiddleware; what is below it (frame options, CSP, redirects) is stored with the page.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.seconds = int(settings.BROADSHEET.get("PAGE_CACHE_SECONDS", 0))
        self.max_age = int(settings.BROADSHEET.get("PAGE_CACHE_MAX_AGE", 0))
        if not self.seconds:
            raise MiddlewareNotUsed

    def __call__(self, request):
        key = _key(request)
        if key is None:
            return self.get_response(request)
        found = cache.get_many([GENERATION_KEY, key])
        generation, entry = found.get(GENERATION_KEY), found.get(key)
        if entry is not None and generation is not None and entry["generation"] == generation:
            return self._replay(request, entry)
        request._page_cache_key = key
        response = self.get_response(request)
        if getattr(request, "_page_cache_view", False) and _storable(request, response):
            self._store(request, response, key, generation)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        # Only what Wagtail serves from its page tree is stored; other views never are.
        request._page_cache_view = view_func is wagtail_serve and hasattr(request, "_page_cache_key")

    def _store(self, request, response, key, generation) -> None:
        if hasattr(response, "render") and not response.is_rendered:
            response.render()
        stripped = _without_tokens(request, response.content)
        if stripped is None:
            return
        content, has_token = stripped
        if generation is None:
            cache.add(GENERATION_KEY, uuid.uuid4().hex, None)
            generation = cache.get(GENERATION_KEY)
        if not has_token and response.status_code == 200:
            response["ETag"] = f'"{hashlib.md5(content, usedforsecurity=False).hexdigest()}"'
        self._cache_control(response, has_token)
        entry = {
            "generation": generation,
            "status": response.status_code,
            "headers": [(name, response[name]) for name in (*_KEPT_HEADERS, "ETag") if response.has_header(name)],
            "content": content,
            "token": has_token,
        }
        cache.set(key, entry, self.seconds)

    def _cache_control(self, response, has_token: bool) -> None:
        if has_token:
            patch_cache_control(response, private=True, no_cache=True)
        elif response.status_code == 200:
            patch_cache_control(response, max_age=self.max_age)

    def _replay(self, request, entry) -> HttpResponse:
        content = entry["content"]
        if entry["token"]:
            content = content.replace(_PLACEHOLDER, get_token(request).encode())
        response = HttpResponse(content, status=entry["status"])
        for name, value in entry["headers"]:
            response[name] = value
        if response.has_header("ETag"):
            return get_conditional_response(request, etag=response["ETag"], response=response)
        return response
