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

import contextlib
import datetime
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

import campaigns.sending.transports as transports_module
from campaigns.models import Campaign
from campaigns.sending.throttle import Usage, expected_finish, mailer_limits, usage
from mail.esps import esp_for_backend
from subscribers.models import MailingList

logger = logging.getLogger(__name__)

HEALTH_KEY = "broadsheet:mailer-health:{}"
HEALTH_TTL = 7 * 86400


def mailer_names() -> list[str]:
    """Configured mailer names, "default" first."""
    return sorted(settings.MAILERS, key=lambda name: (name != "default", name))


def mailer_for(campaign) -> str:
    """The mailer ``campaign`` sends through (its own, else its first list's, else "default")."""
    return choose_mailer(
        getattr(campaign, "mailer", ""), campaign.lists.order_by("pk").values_list("mailer", flat=True)
    )


def choose_mailer(chosen: str, list_mailers) -> str:
    """``chosen`` when configured, else the first configured of ``list_mailers`` (the lists' mailers
    in list id order), else "default": the rule for a campaign and for the send form alike."""
    names = set(settings.MAILERS)
    if chosen in names:
        return chosen
    return next((name for name in list_mailers if name in names), "default")


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


@dataclass
class RunningCampaign:
    """A campaign going out through a mailer, for the overview."""

    campaign: Campaign
    remaining: int
    expected_finish: datetime.datetime | None
    waiting: str  # "Waiting for the relay since ..." or the reason it was paused, else ""


@dataclass
class MailerOverview:
    """One mailer as the admin shows it: where, limits, use, health, who sends through it."""

    name: str
    where: str
    limits: dict[str, float]
    failover: str
    health: dict | None
    usage: Usage
    lists: list[str] = field(default_factory=list)
    campaigns: list[RunningCampaign] = field(default_factory=list)


def overview(*, now: datetime.datetime | None = None) -> list[MailerOverview]:
    """One ``MailerOverview`` per configured mailer, "default" first.

    ``lists`` are the lists whose campaigns it sends (for "default": the lists naming no
    configured mailer). ``campaigns`` are those sending or paused through it, oldest first, each
    with the expected finish at the mailer's limits counting the campaigns ahead of it (they share
    one allowance), None when the mailer has no limits or the campaign is paused.
    """
    now = now or timezone.now()
    names = mailer_names()
    rows = {
        name: MailerOverview(
            name=name,
            where=describe(name),
            limits=mailer_limits(name),
            failover=failover_for(name),
            health=health(name),
            usage=usage(name, clock=now.timestamp),
        )
        for name in names
    }
    for mailing_list in MailingList.objects.order_by("name"):
        rows[mailing_list.mailer if mailing_list.mailer in rows else "default"].lists.append(mailing_list.name)
    for campaign, name, queued in _in_line():
        finish = expected_finish(queued, name, now=now) if queued else None
        waiting = campaign.waiting_for_relay or (
            campaign.last_error if campaign.status == Campaign.Status.PAUSED else ""
        )
        rows[name].campaigns.append(RunningCampaign(campaign, campaign.remaining, finish, waiting))
    return list(rows.values())


def _in_line():
    """Active campaigns oldest first: (campaign, its mailer, messages queued on that mailer up to
    and including its own, or None when it is paused). Campaigns share their mailer's allowance
    in the order they started, so a campaign finishes after those ahead of it."""
    queued: dict[str, int] = {}
    for campaign in Campaign.objects.active().select_related("page").order_by("started_at", "pk"):
        name = mailer_for(campaign)
        if campaign.status != Campaign.Status.SENDING:
            yield campaign, name, None
            continue
        queued[name] = queued.get(name, 0) + campaign.remaining
        yield campaign, name, queued[name]


def finish_if_started(recipients: int, mailer: str, *, now: datetime.datetime | None = None):
    """When a campaign to ``recipients`` started now through ``mailer`` would finish at its limits,
    behind the campaigns already sending through it (the send form's confirm step), or None."""
    queued = 0
    for _campaign, name, waiting in _in_line():
        if name == mailer and waiting:
            queued = waiting
    return expected_finish(queued + recipients, mailer, now=now)


def campaign_finish(campaign, *, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """When ``campaign`` will have gone out at its mailer's limits (the campaign page), or None.

    A sending campaign waits behind the sending campaigns that started before it on the same
    mailer, as on the Mailers page; a paused or scheduled one is estimated alone, as if it went
    on now. None when the campaign is over or its mailer has no limits.
    """
    if campaign.is_final:
        return None
    if campaign.status == Campaign.Status.SENDING:
        for running, name, queued in _in_line():
            if running.pk == campaign.pk:
                return expected_finish(queued, name, now=now)
    return expected_finish(campaign.remaining, mailer_for(campaign), now=now)


@dataclass
class Check:
    """What ``check_mailer`` found: ``ok`` and the facts or the problem, in plain words."""

    name: str
    where: str
    ok: bool
    lines: list[str]


def check_mailer(alias: str, *, ssl_context: ssl.SSLContext | None = None, timeout: float | None = None) -> Check:
    """Connect to mailer ``alias`` as a batch would (TLS, login) and say what the server offers.

    SMTP mailers are really connected to; the outbox is checked for a writable directory; ESPs
    only for their credential (an API call would send or cost). The result is recorded as the
    mailer's health. ``timeout`` (seconds) shortens the mailer's own for a check that must answer
    soon (the admin's Test connection, inside a web request).
    """
    config = settings.MAILERS[alias]
    backend = config.get("BACKEND", "")
    where = describe(alias)
    if backend.endswith("smtp.EmailBackend"):
        options = dict(config.get("OPTIONS", {}))
        if timeout:
            options["timeout"] = min(options.get("timeout") or timeout, timeout)
        ok, lines = _check_smtp(options, ssl_context or ssl.create_default_context())
    elif backend.endswith("OutboxBackend"):
        directory = Path(config.get("OPTIONS", {}).get("directory", ""))
        ok = (directory.is_dir() and os.access(directory, os.W_OK)) or not directory.exists()
        lines = [f"writes .eml files to {directory}" if ok else f"cannot write to {directory}"]
    elif backend.startswith("anymail."):
        esp = esp_for_backend(backend)
        variable = getattr(esp, "credential_variable", None)
        ok = not variable or bool(os.environ.get(variable))
        lines = [
            "an ESP: not contacted (an API call could send or cost); bounces arrive by webhook",
            f"{variable} is {'set' if ok else 'NOT set: sending will be refused'}"
            if variable
            else "no credential needed",
        ]
    else:
        ok, lines = True, ["no network: messages stay in this process (console or memory)"]
    limits = mailer_limits(alias)
    shown = ", ".join(f"{value:g} {key.replace('_', ' ')}" for key, value in limits.items() if value)
    lines.append(f"limits: {shown or 'none'}")
    if failover_for(alias):
        lines.append(f"failover: {failover_for(alias)}")
    record_health(alias, error="" if ok else lines[0])
    return Check(alias, where, ok, lines)


def _check_smtp(options: dict, context: ssl.SSLContext) -> tuple[bool, list[str]]:
    host, port = options.get("host", "localhost"), int(options.get("port", 25))
    timeout = options.get("timeout") or 30
    lines = []
    try:
        if options.get("use_ssl"):
            connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            connection = smtplib.SMTP(host, port, timeout=timeout)
    except ssl.SSLCertVerificationError as error:
        return False, [f"the TLS certificate of {host}:{port} is not trusted: {error.verify_message}"]
    except (TimeoutError, smtplib.SMTPServerDisconnected) as error:
        # smtplib reports a greeting that never came as a closed connection ("...: timed out").
        if isinstance(error, TimeoutError) or "timed out" in str(error):
            return False, [f"no answer from {host}:{port} within {timeout} s (firewall? wrong port?)"]
        return False, [f"{host}:{port} closed the connection without greeting (not an SMTP port?)"]
    except OSError as error:
        return False, [f"cannot connect to {host}:{port}: {error.strerror or error}"]
    except smtplib.SMTPException as error:
        return False, [f"{host}:{port} is not answering like an SMTP server: {error}"]
    try:
        connection.ehlo()
        banner = connection.ehlo_resp.decode("utf-8", "replace").splitlines()[0] if connection.ehlo_resp else ""
        lines.append(f"connected to {host}:{port} ({banner})")
        if options.get("use_tls"):
            if not connection.has_extn("starttls"):
                return False, [f"{host}:{port} does not offer STARTTLS, but the URL asks for it (tls=1)"]
            connection.starttls(context=context)
            connection.ehlo()
        if options.get("use_tls") or options.get("use_ssl"):
            lines.append(f"TLS: {connection.sock.version()}")
        else:
            lines.append("TLS: not used (the password and the mail cross the network in clear)")
        features = []
        for name in ("pipelining", "8bitmime", "smtputf8", "starttls", "size", "auth", "chunking", "dsn"):
            if connection.has_extn(name):
                value = connection.esmtp_features.get(name, "").strip()
                features.append(f"{name.upper()} {value}".strip())
        lines.append("offers: " + (", ".join(features) or "nothing beyond plain SMTP"))
        if options.get("username"):
            try:
                connection.login(options["username"], options.get("password", ""))
            except smtplib.SMTPAuthenticationError as error:
                return False, [_login_refused(options["username"], error), *lines]
            except smtplib.SMTPNotSupportedError:
                return False, [f"{host}:{port} offers no login (AUTH), but the URL has a user name", *lines]
            lines.append(f"logged in as {options['username']}")
        return True, lines
    except ssl.SSLCertVerificationError as error:
        return False, [f"the TLS certificate of {host}:{port} is not trusted: {error.verify_message}", *lines]
    except (smtplib.SMTPException, OSError) as error:
        return False, [f"{host}:{port}: {error}", *lines]
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            connection.quit()


def _login_refused(username: str, error: smtplib.SMTPAuthenticationError) -> str:
    """Why the server refused the login, in plain words, with its own reply (RFC 4954 section 6)."""
    reply = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
    reply = " ".join(str(reply).split())[:300]
    said = f"({error.smtp_code} {reply})"
    if error.smtp_code == 534 or "application-specific" in reply.lower():
        # 534 5.7.9: the account needs a stronger way in (Gmail: an app password).
        return (
            f"the server wants an app password for {username!r}, not the account password {said}: Gmail needs an "
            "app password (2-step verification on); QQ, 163 and Sina an authorisation code from the mailbox settings"
        )
    if 400 <= error.smtp_code < 500:
        # 454 4.7.0: temporary authentication failure; the password may well be right.
        return f"the server could not check the login of {username!r} right now {said}: try again later"
    return f"wrong user name or password for {username!r} {said}"
