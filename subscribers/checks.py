"""System checks of the subscribers app."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, register


@register()
def private_root_is_not_served(app_configs=None, **kwargs):
    """subscribers.E001: PRIVATE_ROOT (import uploads) must not lie inside a directory the site serves."""
    private = Path(settings.PRIVATE_ROOT).resolve()
    errors = []
    for name in ("MEDIA_ROOT", "STATIC_ROOT"):
        served = getattr(settings, name, None)
        if served and private.is_relative_to(Path(served).resolve()):
            errors.append(
                Error(
                    f"PRIVATE_ROOT ({private}) is inside {name} ({served}): uploaded import files would be public.",
                    hint="Set PRIVATE_ROOT to a directory outside MEDIA_ROOT and STATIC_ROOT.",
                    id="subscribers.E001",
                )
            )
    return errors
