"""What the WSGI/ASGI entry points do once Django is set up, before serving a request."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def refuse_to_start_on_check_errors() -> None:
    """Raise ImproperlyConfigured, so the server does not start, when a system check reports an error.

    ``manage.py check``, ``migrate`` and ``runserver`` run the checks themselves; gunicorn never
    does. Without this a configuration that must never serve a request (ESP webhooks without their
    secret, broadsheet.E101) would serve until someone ran a management command.
    """
    errors = [message for message in checks.run_checks() if message.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{error.id}: {error.msg} {error.hint or ''}".strip() for error in errors))
