"""Tests: fast hashing, no real mail; DATABASE_URL / REDIS_URL opt in to the service tests."""

from .base import *  # noqa: F403

SECRET_KEY = "test-only-secret-key-not-for-production-4d2a9c"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TASKS = {
    "default": {
        "BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
        "QUEUES": ["default", "campaigns"],
    }
}
BASE_URL = "https://news.example.com"
WAGTAILADMIN_BASE_URL = BASE_URL
ALLOWED_HOSTS = ["testserver", "localhost", "news.example.com"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "imports": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
}
# No heartbeat thread in the in-process tests (a second SQLite writer in the same process); the
# worker subprocesses of the scale-out tests run with the default.
BROADSHEET = {**BROADSHEET, "HEARTBEAT_SECONDS": 0}  # noqa: F405
