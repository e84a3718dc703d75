"""Development: the embedded default (SQLite, database task worker, outbox) out of the box."""

from urllib.parse import urlsplit

from .base import *  # noqa: F403
from .base import config

DEBUG = config.env_bool("DEBUG", True)
# A fixed development key only when none is given; production.py refuses to start without one.
SECRET_KEY = SECRET_KEY or "dev-only-not-secret-5b1c2f0e8a7d4c3b9e6f1a2d"  # noqa: F405
# `make run HOST=... PORT=...` sets BASE_URL to the address it serves: accept requests for it.
_base_host = urlsplit(BASE_URL).hostname  # noqa: F405
if _base_host and _base_host not in ALLOWED_HOSTS:  # noqa: F405
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, _base_host]  # noqa: F405
