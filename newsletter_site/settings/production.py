"""Production: no embedded defaults for secrets or hosts; fails at boot when they are missing."""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import config

REQUIRED = ["SECRET_KEY", "ALLOWED_HOSTS", "BASE_URL", "DATABASE_URL", "EMAIL_URL"]
missing = [name for name in REQUIRED if not config.env_str(name)]
if missing:
    raise ImproperlyConfigured(f"Production settings need these environment variables: {', '.join(missing)}.")
# Loopback is the one exception: nobody else can reach it (`make serve-prod` tries the production
# path on a laptop, where there is no certificate).
_base = urlsplit(BASE_URL)  # noqa: F405
if _base.scheme != "https" and _base.hostname not in ("127.0.0.1", "localhost", "::1"):
    raise ImproperlyConfigured("BASE_URL must be https:// in production (RFC 8058 one-click unsubscribe).")

DEBUG = False
# Static files straight from the app servers (after `collectstatic`), no separate file server.
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")  # noqa: F405
MIDDLEWARE.insert(_security + 1, "whitenoise.middleware.WhiteNoiseMiddleware")  # noqa: F405
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = config.env_bool("SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# HSTS on by default (a year, subdomains, preload-ready): browsers then refuse plain http to the
# site, so a stolen link or cookie cannot be read on the wire. To lower it (first deployment,
# subdomains still on http) set SECURE_HSTS_SECONDS=300 and/or SECURE_HSTS_INCLUDE_SUBDOMAINS=0;
# docs/security.md explains the ramp-up. 0 turns it off (check --deploy then warns).
SECURE_HSTS_SECONDS = config.env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = config.env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = config.env_bool("SECURE_HSTS_PRELOAD", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    "imports": PRIVATE_STORAGE,  # noqa: F405
}
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    import warnings

    warnings.warn("Production on SQLite: one worker only; use PostgreSQL to scale out.", stacklevel=1)
