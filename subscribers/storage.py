"""Private file storage: uploads that hold personal data (CSV imports) and must never be served.

``STORAGES["imports"]`` points at ``PRIVATE_ROOT`` (settings/base.py), a directory outside
``MEDIA_ROOT`` and ``STATIC_ROOT``; the system check ``subscribers.E001`` refuses to start when
it is inside either. Files get random names, so neither a path nor a name tells what they hold.
"""

import secrets

from django.core.files.storage import FileSystemStorage, storages


class PrivateStorage(FileSystemStorage):
    """A FileSystemStorage without URLs: nothing it stores may ever be linked to or served."""

    def url(self, name):
        raise ValueError("Private files have no URL.")


def import_storage():
    """The storage of uploaded import files (a callable, so tests and settings can swap it)."""
    return storages["imports"]


def random_import_name(instance, filename: str) -> str:
    """``imports/<random>.csv``: the uploader's file name stays in ImportJob.original_name only."""
    return f"imports/{secrets.token_urlsafe(24)}.csv"
