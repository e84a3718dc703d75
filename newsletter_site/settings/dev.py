"""Development: the embedded default (SQLite, database task worker, outbox) out of the box."""

from .base import *  # noqa: F403
from .base import config

DEBUG = config.env_bool("DEBUG", True)
# A fixed development key only when none is given; production.py refuses to start without one.
SECRET_KEY = SECRET_KEY or "dev-only-not-secret-5b1c2f0e8a7d4c3b9e6f1a2d"  # noqa: F405
