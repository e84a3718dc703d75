"""Turn environment variables into Django settings.

Every function takes the variable's *name* and reads it from a mapping (``os.environ`` by
default), so a bad value produces an ``ImproperlyConfigured`` that names the variable the
operator has to fix, and tests can pass their own mapping.
"""

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dkim.crypto import parse_pem_private_key

from mail.esps import ESPS, esp_for_backend

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def _get(name, env):
    env = os.environ if env is None else env
    return env.get(name)


def env_str(name: str, default: str = "", env: Mapping | None = None) -> str:
    value = _get(name, env)
    return default if value is None else value


def env_bool(name: str, default: bool = False, env: Mapping | None = None) -> bool:
    value = _get(name, env)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, env: Mapping | None = None, minimum: int | None = None) -> int:
    value = _get(name, env)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_float(name: str, default: float, env: Mapping | None = None) -> float:
    value = _get(name, env)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if number < 0:
        raise ImproperlyConfigured(f"{name}={value!r} must not be negative.")
    return number


def env_choice(name: str, default: str, choices: list[str], env: Mapping | None = None) -> str:
    value = _get(name, env) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: choose one of {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str] | None = None, env: Mapping | None = None) -> list[str]:
    value = _get(name, env)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_env(name: str, default_path: Path, env: Mapping | None = None) -> dict:
    """``DATABASE_URL`` (postgres://, sqlite:///...) to a DATABASES['default'] dict."""
    value = _get(name, env) or f"sqlite:///{default_path}"
    try:
        config = dj_database_url.parse(value, conn_max_age=0)
    except (ValueError, KeyError) as error:
        raise ImproperlyConfigured(f"{name}={value!r} is not a database URL: {error}") from None
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(f"{name}={value!r}: unknown database scheme.")
    if config["ENGINE"] == "django.db.backends.postgresql":
        # Persistent connections: a new PostgreSQL connection per request is a server process
        # forked and authenticated each time (a good share of a one-click unsubscribe or a
        # subscribe POST). Health checks drop one the server closed before it is used.
        config["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0, env=env)
        config["CONN_HEALTH_CHECKS"] = True
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The worker and the web server share the file: wait for locks instead of failing,
        # and take the write lock up front so a reader never has to upgrade mid-transaction.
        # WAL + synchronous=NORMAL: readers never block the writer, and a commit is a WAL append
        # without an fsync, which keeps the sending engine's one write per message cheap (still
        # durable against a killed process; only an OS crash can lose the last commits).
        config.setdefault("OPTIONS", {}).update(
            {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            }
        )
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    return config


def _query_flag(query: dict, key: str, name: str, value: str) -> bool:
    raw = query.get(key, [""])[-1].lower()
    if raw in TRUE_VALUES:
        return True
    if raw in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: {key}={raw!r} is not a boolean.")


def _split_url(name: str, value: str):
    """``(parts, port, lower-case scheme, query dict)`` of the URL in variable ``name``; a
    malformed URL (bad port included) stops start-up with a message naming the variable."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}={value!r} is not a valid URL: {error}") from None
    return parts, port, parts.scheme.lower(), parse_qs(parts.query)


def mailer_from_url(name: str, value: str, outbox_dir: Path) -> dict:
    """One ``MAILERS`` entry from an email URL.

    smtp://user:pass@host:587?tls=1, smtps://user:pass@host:465, console://, outbox://[path],
    locmem://, anymail://ESP (an ESP of ``mail.esps.ESPS``; credentials from the variable its
    declaration names, see .env.example).
    """
    parts, port, scheme, query = _split_url(name, value)
    if scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise ImproperlyConfigured(f"{name}={value!r}: an SMTP URL needs a host.")
        use_ssl = scheme == "smtps" or _query_flag(query, "ssl", name, value)
        use_tls = _query_flag(query, "tls", name, value)
        if use_ssl and use_tls:
            raise ImproperlyConfigured(f"{name}={value!r}: choose tls=1 (STARTTLS) or smtps:// (SSL), not both.")
        options = {
            "host": parts.hostname,
            "port": port or (465 if use_ssl else 587 if use_tls else 25),
            "username": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "use_tls": use_tls,
            "use_ssl": use_ssl,
            "timeout": int(query.get("timeout", ["30"])[-1]),
        }
        return {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options}
    if scheme == "console":
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme == "locmem":
        return {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if scheme == "outbox":
        path = unquote(parts.netloc + parts.path) or str(outbox_dir)
        return {"BACKEND": "mail.outbox.OutboxBackend", "OPTIONS": {"directory": path}}
    if scheme == "anymail":
        esp = (parts.hostname or "").lower()
        if esp not in ESPS:
            raise ImproperlyConfigured(f"{name}={value!r}: unknown anymail ESP {esp!r} (one of: {', '.join(ESPS)}).")
        return {"BACKEND": ESPS[esp].backend, "OPTIONS": {}}
    raise ImproperlyConfigured(
        f"{name}={value!r}: unknown scheme {scheme!r}; use smtp://, smtps://, console://, outbox://, "
        "locmem:// or anymail://ESP."
    )


def tracking_webhooks_from_env(name: str, mailer: dict, env: Mapping | None = None) -> list[str]:
    """The ESPs whose tracking webhooks are routed: ``TRACKING_WEBHOOKS`` (comma-separated ESP
    names; "none" for none), by default the ESP of an ``anymail://`` mailer.

    Set it when sending through an ESP's SMTP relay: the ESP still posts its events.
    """
    value = _get(name, env)
    if value is None:
        esp = esp_for_backend(mailer["BACKEND"])
        return [esp.name] if esp is not None and esp.tracking_view else []
    names = [item.strip().lower() for item in value.split(",") if item.strip()]
    if names == ["none"]:
        return []
    with_webhooks = [esp.name for esp in ESPS.values() if esp.tracking_view]
    for esp in names:
        if esp not in with_webhooks:
            raise ImproperlyConfigured(f"{name}={value!r}: {esp!r} is not one of {', '.join(with_webhooks)}.")
    return list(dict.fromkeys(names))


def anymail_settings(mailer: dict, env: Mapping | None = None, tracking: list[str] = ()) -> dict:
    """The ``ANYMAIL`` dict: the sending ESP's credential and base URL, the webhook secret (whatever
    the mailer: ESPs' SMTP relays post events too) and each tracking ESP's signature key."""
    settings = {}
    if secret := _get("ANYMAIL_WEBHOOK_SECRET", env):
        settings["WEBHOOK_SECRET"] = secret
    esp = esp_for_backend(mailer["BACKEND"])
    if esp is not None:
        if esp.credential_variable and _get(esp.credential_variable, env):
            settings[esp.credential_variable] = _get(esp.credential_variable, env)
        if base_url := _get("ANYMAIL_API_URL", env):
            settings[f"{esp.prefix}_API_URL"] = base_url
    for name in {*tracking, *([esp.name] if esp else [])}:
        variable = ESPS[name].signature_variable
        if variable and _get(variable, env):
            settings[variable] = _get(variable, env)
    return settings


def tasks_from_url(name: str, value: str, redis_url: str | None) -> dict:
    """The ``TASKS`` setting from ``TASKS_URL``: db:// (default), rq://, immediate://."""
    scheme = urlsplit(value).scheme.lower()
    queues = ["default", "campaigns"]
    if scheme == "db":
        return {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": queues}}
    if scheme == "rq":
        if not redis_url:
            raise ImproperlyConfigured(f"{name}={value!r} needs REDIS_URL (e.g. redis://127.0.0.1:6379/0).")
        return {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": queues}}
    if scheme == "immediate":
        return {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": queues}}
    raise ImproperlyConfigured(f"{name}={value!r}: unknown scheme {scheme!r}; use db://, rq:// or immediate://.")


def rq_queues(redis_url: str) -> dict:
    return {queue: {"URL": redis_url, "DEFAULT_TIMEOUT": 3600} for queue in ("default", "campaigns")}


MAILBOX_PORTS = {"pop3": 110, "pop3s": 995, "imap": 143, "imaps": 993}


def mailbox_from_url(name: str, value: str) -> dict | None:
    """The bounce mailbox from ``BOUNCE_MAILBOX_URL`` (None when empty).

    pop3s://user:pass@host[:995], pop3://user:pass@host?tls=1 (STARTTLS), imaps://user:pass@host/INBOX,
    imap://user:pass@host/INBOX?tls=1, maildir:///var/mail/bounces. Options: ``timeout`` (seconds),
    ``kept`` (IMAP/Maildir folder for messages a person must look at, default "Kept").
    """
    if not value:
        return None
    parts, port, scheme, query = _split_url(name, value)
    try:
        timeout = int(query.get("timeout", ["30"])[-1])
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: timeout must be a whole number of seconds.") from None
    kept = query.get("kept", ["Kept"])[-1]
    if scheme == "maildir":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ImproperlyConfigured(f"{name}={value!r}: a maildir URL needs a path (maildir:///var/mail/bounces).")
        return {"protocol": "maildir", "path": path, "kept": kept}
    if scheme not in MAILBOX_PORTS:
        raise ImproperlyConfigured(
            f"{name}={value!r}: unknown scheme {scheme!r}; use pop3://, pop3s://, imap://, imaps:// or maildir://."
        )
    if not parts.hostname:
        raise ImproperlyConfigured(f"{name}={value!r}: a {scheme} URL needs a host.")
    if not parts.username:
        raise ImproperlyConfigured(f"{name}={value!r}: a {scheme} URL needs a user name (user:password@host).")
    use_ssl = scheme.endswith("s")
    starttls = _query_flag(query, "tls", name, value)
    if use_ssl and starttls:
        raise ImproperlyConfigured(f"{name}={value!r}: choose tls=1 (STARTTLS) or {scheme} (SSL), not both.")
    protocol = scheme.rstrip("s")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if protocol == "pop3" and parts.path.strip("/"):
        raise ImproperlyConfigured(f"{name}={value!r}: POP3 has no folders; remove the path.")
    return {
        "protocol": protocol,
        "host": parts.hostname,
        "port": port or MAILBOX_PORTS[scheme],
        "username": unquote(parts.username),
        "password": unquote(parts.password or ""),
        "ssl": use_ssl,
        "starttls": starttls,
        "folder": folder,
        "kept": kept,
        "timeout": timeout,
    }


MAILER_NAME = re.compile(r"[a-z0-9_]{1,40}")
# Query parameters of an email URL that are Broadsheet's, not the backend's.
MAILER_LIMIT_KEYS = ("per_second", "per_hour", "per_day")


def mailer_limits(name: str, value: str) -> dict:
    """``per_second``/``per_hour``/``per_day`` from an email URL's query (0 or absent = unlimited)."""
    query = parse_qs(urlsplit(value).query)
    limits = {}
    for key in MAILER_LIMIT_KEYS:
        raw = query.get(key, [""])[-1]
        if raw == "":
            continue
        try:
            number = float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r}: {key}={raw!r} is not a number.") from None
        if number < 0:
            raise ImproperlyConfigured(f"{name}={value!r}: {key} must not be negative.")
        limits[key] = number
    return limits


def mailers_from_env(outbox_dir: Path, env: Mapping | None = None) -> dict:
    """``MAILERS``: "default" from ``EMAIL_URL``, one named mailer per ``EMAIL_URL_<NAME>``.

    Each entry is Django's (BACKEND, OPTIONS) plus Broadsheet's own keys, which Django ignores:
    ``LIMITS`` (per_second / per_hour / per_day, from the URL's query; for the default mailer the
    SEND_RATE_PER_* variables fill in what the URL leaves out) and ``FAILOVER`` (``?failover=NAME``:
    the mailer used while this one cannot be reached).
    """
    env = os.environ if env is None else env
    variables = {"default": "EMAIL_URL"}
    for variable in sorted(env):
        if variable.startswith("EMAIL_URL_"):
            name = variable[len("EMAIL_URL_") :].lower()
            if not MAILER_NAME.fullmatch(name) or name == "default":
                raise ImproperlyConfigured(
                    f"{variable}: a mailer name is letters, digits and _ (and not DEFAULT: that is EMAIL_URL)."
                )
            variables[name] = variable
    mailers = {}
    for name, variable in variables.items():
        value = env.get(variable) or ("outbox://" if name == "default" else "")
        if not value:
            raise ImproperlyConfigured(f"{variable} is empty: give it an email URL or remove it.")
        entry = mailer_from_url(variable, value, outbox_dir)
        limits = mailer_limits(variable, value)
        if name == "default":
            for key in MAILER_LIMIT_KEYS:
                limits.setdefault(key, env_float(f"SEND_RATE_{key.upper()}", 0, env=env))
        entry["LIMITS"] = {key: limits.get(key, 0) for key in MAILER_LIMIT_KEYS}
        entry["FAILOVER"] = parse_qs(urlsplit(value).query).get("failover", [""])[-1].lower()
        mailers[name] = entry
    for name, entry in mailers.items():
        failover = entry["FAILOVER"]
        if failover and (failover not in mailers or failover == name):
            raise ImproperlyConfigured(
                f"{variables[name]}: failover={failover!r} must name another mailer "
                f"(one of: {', '.join(sorted(set(mailers) - {name}))})."
            )
    return mailers


def dkim_from_env(env: Mapping | None = None) -> dict | None:
    """``DKIM_DOMAIN`` + ``DKIM_SELECTOR`` + ``DKIM_PRIVATE_KEY_FILE`` (or ``DKIM_PRIVATE_KEY``, the
    PEM text): the in-app DKIM signer's settings, or None when DKIM_DOMAIN is unset. The key is
    read and parsed at start-up, so a wrong path or a malformed key stops the boot, named."""
    domain = (_get("DKIM_DOMAIN", env) or "").strip().lower()
    if not domain:
        return None
    selector = (_get("DKIM_SELECTOR", env) or "").strip()
    if not selector:
        raise ImproperlyConfigured(
            "DKIM_DOMAIN is set: DKIM_SELECTOR is needed too (the DNS name <selector>._domainkey)."
        )
    path, text = _get("DKIM_PRIVATE_KEY_FILE", env), _get("DKIM_PRIVATE_KEY", env)
    if path:
        try:
            key = Path(path).read_bytes()
        except OSError as error:
            raise ImproperlyConfigured(f"DKIM_PRIVATE_KEY_FILE={path!r} cannot be read: {error.strerror}.") from None
        name = "DKIM_PRIVATE_KEY_FILE"
    elif text:
        key = text.replace("\\n", "\n").encode()
        name = "DKIM_PRIVATE_KEY"
    else:
        raise ImproperlyConfigured("DKIM_DOMAIN is set: give the key in DKIM_PRIVATE_KEY_FILE or DKIM_PRIVATE_KEY.")
    try:
        parse_pem_private_key(key)
    except Exception as error:  # dkimpy raises several types for a malformed key
        raise ImproperlyConfigured(f"{name}: not an RSA private key in PEM format ({error}).") from None
    return {"domain": domain, "selector": selector, "key": key}
