"""Named mailers: which one a campaign uses, failing over when it is down, and how each is doing.

``settings.MAILERS`` holds "default" (EMAIL_URL) and one entry per ``EMAIL_URL_<NAME>``
(newsletter_site.config.mailers_from_env), each with its ``LIMITS`` and optional ``FAILOVER``.

- A campaign sends through its own ``mailer`` when set, else the mailer of its first list (by id)
  that names one, else "default". A name no longer configured falls back the same way.
- When the chosen mailer cannot be reached when a batch opens it (connection refused, TLS or
  login failure: ``TransportUnavailable``), the batch opens its ``FAILOVER`` mailer instead (one
  hop, no chains) and is throttled by the failover's limits. Without a failover the engine's
  relay-down rules apply to the chosen mailer.
- Every open records the mailer's health (ok, or the error in plain words, and when) in the
  shared cache, which the admin's mailer overview shows.
"""

import datetime
import logging

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from campaigns.sending import transports as transports_module
from campaigns.sending.throttle import mailer_limits

logger = logging.getLogger(__name__)

HEALTH_KEY = "broadsheet:mailer-health:{}"
HEALTH_TTL = 7 * 86400


def mailer_names() -> list[str]:
    """Configured mailer names, "default" first."""
    return sorted(settings.MAILERS, key=lambda name: (name != "default", name))


def mailer_for(campaign) -> str:
    """The mailer ``campaign`` sends through (its own, else its first list's, else "default")."""
    names = set(settings.MAILERS)
    if getattr(campaign, "mailer", "") in names:
        return campaign.mailer
    for name in campaign.lists.order_by("pk").values_list("mailer", flat=True):
        if name in names:
            return name
    return "default"


def failover_for(alias: str) -> str:
    return (settings.MAILERS.get(alias) or {}).get("FAILOVER") or ""


def open_transport(content, alias: str):
    """Open a transport for ``alias``, or for its failover when ``alias`` is down.

    Returns ``(transport, alias used)``; raises ``TransportUnavailable`` when neither can be
    opened (the error of the chosen mailer, naming the failover's too).
    """
    transport = transports_module.get_transport(content, alias=alias)
    try:
        transport.open()
    except transports_module.TransportUnavailable as error:
        record_health(alias, error=str(error))
        failover = failover_for(alias)
        if not failover:
            raise
        logger.warning("mailer %s is down (%s): sending through its failover %s", alias, error, failover)
        backup = transports_module.get_transport(content, alias=failover)
        try:
            backup.open()
        except transports_module.TransportUnavailable as backup_error:
            record_health(failover, error=str(backup_error))
            raise type(error)(f"{error}; failover {failover}: {backup_error}") from backup_error
        record_health(failover)
        return backup, failover
    record_health(alias)
    return transport, alias


def record_health(alias: str, *, error: str = "") -> None:
    cache.set(
        HEALTH_KEY.format(alias),
        {"ok": not error, "error": error[:500], "at": timezone.now().isoformat()},
        timeout=HEALTH_TTL,
    )


def health(alias: str) -> dict | None:
    """{"ok", "error", "at"} of the last time a batch (or check_mailers) opened ``alias``."""
    value = cache.get(HEALTH_KEY.format(alias))
    if value:
        value = {**value, "at": datetime.datetime.fromisoformat(value["at"])}
    return value


def describe(alias: str) -> str:
    """The mailer without secrets: ``smtp://user@host:587 (STARTTLS)``, ``anymail://mailgun``..."""
    config = settings.MAILERS[alias]
    backend = config.get("BACKEND", "")
    options = config.get("OPTIONS", {})
    if backend.endswith("smtp.EmailBackend"):
        scheme = "smtps" if options.get("use_ssl") else "smtp"
        user = f"{options['username']}@" if options.get("username") else ""
        tls = " (STARTTLS)" if options.get("use_tls") else ""
        return f"{scheme}://{user}{options.get('host', 'localhost')}:{options.get('port', 25)}{tls}"
    if backend.startswith("anymail."):
        return f"anymail://{backend.split('.')[2]}"
    if backend.endswith("OutboxBackend"):
        return f"outbox://{options.get('directory', '')}"
    return backend


def overview() -> list[dict]:
    """One row per mailer for the admin: name, where, limits, failover, health."""
    return [
        {
            "name": name,
            "where": describe(name),
            "limits": mailer_limits(name),
            "failover": failover_for(name),
            "health": health(name),
        }
        for name in mailer_names()
    ]
