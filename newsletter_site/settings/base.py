"""Settings shared by every environment. Every value comes from the environment (see
.env.example); the defaults are safe for a developer's laptop, production.py removes them."""

from pathlib import Path

from django.utils.csp import CSP

from newsletter_site import config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(config.env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = config.env_bool("DEBUG", False)
SECRET_KEY = config.env_str("SECRET_KEY", "")
SECRET_KEY_FALLBACKS = config.env_list("SECRET_KEY_FALLBACKS")
# Keys the suppression list's address hashes (HMAC-SHA256; docs/security.md). Unset: derived from
# SECRET_KEY, so set it in production to rotate SECRET_KEY freely. Old keys go in the fallbacks.
SUPPRESSION_KEY = config.env_str("SUPPRESSION_KEY", "")
SUPPRESSION_KEY_FALLBACKS = config.env_list("SUPPRESSION_KEY_FALLBACKS")
ALLOWED_HOSTS = config.env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS")

# Absolute base of every link in an email (and of List-Unsubscribe). No trailing slash.
BASE_URL = config.env_str("BASE_URL", "http://127.0.0.1:8000").rstrip("/")
WAGTAILADMIN_BASE_URL = BASE_URL

INSTALLED_APPS = [
    "newsletter_site",
    "pages",
    "automations",
    "campaigns",
    "subscribers",
    "mail",
    "wagtail.contrib.forms",
    "wagtail.contrib.simple_translation",
    "wagtail.locales",
    "wagtail.contrib.redirects",
    "wagtail.contrib.routable_page",
    "wagtail.contrib.settings",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "anymail",
    "django_tasks",
    "django_tasks_db",
    "django_rq",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Wagtail's database search backend uses GIN indexes on PostgreSQL (system check postgres.E005).
    "django.contrib.postgres",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The visitor's language: URL prefix, else the language cookie, else Accept-Language.
    "newsletter_site.middleware.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Anonymous visitors' Wagtail pages from the cache, invalidated on publish (newsletter_site/page_cache.py).
    "newsletter_site.page_cache.PageCacheMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "newsletter_site.middleware.PublicContentSecurityPolicyMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

# Content-Security-Policy of the public pages (not the admins: newsletter_site/middleware.py).
# Everything self-hosted; images may also come over https (embeds' thumbnails) and embeds (video)
# are https iframes. A deployment that needs more (an analytics script, a CDN) extends this dict
# in its own settings module: docs/security.md.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "https:"],
    "font-src": [CSP.SELF],
    "frame-src": ["https:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    # Wagtail's preview shows the page in a same-origin iframe.
    "frame-ancestors": [CSP.SELF],
}

ROOT_URLCONF = "newsletter_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ],
        },
    },
]

WSGI_APPLICATION = "newsletter_site.wsgi.application"

DATABASES = {"default": config.database_from_env("DATABASE_URL", VAR_DIR / "db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = config.env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared by the web server and the worker processes (rate limits, throttling), unlike locmem.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "broadsheet_cache"}}

# Background work: Django's tasks API (the django_tasks package, which Wagtail 8 also uses).
TASKS = config.tasks_from_url("TASKS_URL", config.env_str("TASKS_URL", "db://"), REDIS_URL)
RQ_QUEUES = config.rq_queues(REDIS_URL or "redis://127.0.0.1:6379/0")

# Mail: Django 6.1 MAILERS, the default chosen by EMAIL_URL. The outbox writes .eml files to var/outbox.
OUTBOX_DIR = VAR_DIR / "outbox"
# Named mailers from EMAIL_URL_<NAME> (chosen per list and per campaign), each with its LIMITS
# (?per_second=&per_hour=&per_day=) and optional FAILOVER mailer: docs/sending-without-an-esp.md.
MAILERS = config.mailers_from_env(OUTBOX_DIR)
# ESPs whose tracking webhooks are routed (/anymail/<esp>/tracking/); default: the EMAIL_URL ESP.
_tracking_webhooks = config.tracking_webhooks_from_env("TRACKING_WEBHOOKS", MAILERS["default"])
# Every mailer's ESP credential (a named mailer may use another ESP than the default one).
ANYMAIL = {
    key: value
    for mailer in MAILERS.values()
    for key, value in config.anymail_settings(mailer, tracking=_tracking_webhooks).items()
}
DEFAULT_FROM_EMAIL = config.env_str("DEFAULT_FROM_EMAIL", "Broadsheet <newsletter@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Interface languages (docs/i18n.md). English is the default and has no URL prefix; the others
# live under /<code>/ (zh-hans: /zh-hans/). Pages exist per language with Wagtail's own
# localisation; a subscriber's language picks the version of an issue they receive.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["newsletter_site.formats"]
WAGTAIL_I18N_ENABLED = True
WAGTAIL_CONTENT_LANGUAGES = LANGUAGES
TIME_ZONE = config.env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(config.env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(config.env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Django serves MEDIA_ROOT itself when DEBUG or this is on (a laptop, `make serve-prod`, one small
# server); otherwise the front web server or object storage does.
SERVE_MEDIA = config.env_bool("SERVE_MEDIA", False)
# Uploads with personal data (CSV imports): never served, so never under MEDIA_ROOT or STATIC_ROOT
# (system check subscribers.E001).
PRIVATE_ROOT = Path(config.env_str("PRIVATE_ROOT", str(VAR_DIR / "private")))
PRIVATE_STORAGE = {"BACKEND": "subscribers.storage.PrivateStorage", "OPTIONS": {"location": PRIVATE_ROOT}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "imports": PRIVATE_STORAGE,
}

WAGTAIL_SITE_NAME = config.env_str("SITE_NAME", "Broadsheet")
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
# Admin avatars from Gravatar load from the internet: off by default, so offline and intranet
# installs show Wagtail's placeholder instead of broken images. GRAVATAR=1 turns them on.
WAGTAIL_GRAVATAR_PROVIDER_URL = "//www.gravatar.com/avatar" if config.env_bool("GRAVATAR", False) else None
# Likewise the admin's "new Wagtail release" check fetches releases.wagtail.org from the browser
# (a console error offline); upgrades are the operator's call, via requirements.txt.
WAGTAIL_ENABLE_UPDATE_CHECK = False
WAGTAILDOCS_EXTENSIONS = ["csv", "docx", "key", "odt", "pdf", "pptx", "rtf", "txt", "xlsx", "zip"]

# Newsletter behaviour.
BROADSHEET = {
    # Double opt-in confirmation links expire after this many days.
    "CONFIRM_TOKEN_DAYS": config.env_int("CONFIRM_TOKEN_DAYS", 7, minimum=1),
    # Optional mailbox for the mailto: form of List-Unsubscribe (e.g. unsubscribe@example.com).
    "UNSUBSCRIBE_MAILBOX": config.env_str("UNSUBSCRIBE_MAILBOX", ""),
    # Gmail Feedback-ID sender part: stable, 5-15 characters.
    "FEEDBACK_SENDER_ID": config.env_str("FEEDBACK_SENDER_ID", "broadsheet"),
    # Sending throttle per mailer, honoured across all workers (0 = unlimited).
    "SEND_RATE_PER_SECOND": config.env_float("SEND_RATE_PER_SECOND", 0),
    "SEND_RATE_PER_HOUR": config.env_float("SEND_RATE_PER_HOUR", 0),
    "SEND_RATE_PER_DAY": config.env_float("SEND_RATE_PER_DAY", 0),
    # Longest a worker waits for the throttle inside a batch before coming back later.
    "THROTTLE_MAX_WAIT_SECONDS": config.env_float("THROTTLE_MAX_WAIT_SECONDS", 5),
    # Recipients one batch task claims; batch tasks enqueued at once when a campaign starts.
    "BATCH_SIZE": config.env_int("SEND_BATCH_SIZE", 500, minimum=1),
    "PARALLEL_BATCHES": config.env_int("SEND_PARALLEL_BATCHES", 4, minimum=1),
    # Caps the ESP's own recipients-per-call limit (docs/sending.md); 0 = the ESP's limit.
    "ESP_BATCH_LIMIT": config.env_int("ESP_BATCH_LIMIT", 0, minimum=0),
    # Tries per recipient on temporary failures, with exponential backoff between them.
    "MAX_ATTEMPTS": config.env_int("SEND_MAX_ATTEMPTS", 5, minimum=1),
    "RETRY_BACKOFF_SECONDS": config.env_float("SEND_RETRY_BACKOFF_SECONDS", 60),
    "RETRY_BACKOFF_MAX_SECONDS": config.env_float("SEND_RETRY_BACKOFF_MAX_SECONDS", 3600),
    # PostgreSQL: wait for the WAL flush on each per-message marker (docs/sending.md). Off, a
    # killed worker still never causes a re-send; only a database-server power cut could re-send
    # the last fraction of a second of messages. On, every message costs an fsync.
    "SYNCHRONOUS_MARKER": config.env_bool("SEND_SYNCHRONOUS_MARKER", False),
    # A worker that touched none of its claimed rows for this long is dead: its rows are settled.
    "CLAIM_TIMEOUT_SECONDS": config.env_int("SEND_CLAIM_TIMEOUT_SECONDS", 600, minimum=30),
    # Each sending worker beats this often (0: no heartbeat thread); a worker on another host whose
    # heartbeat is older than the timeout is dead (on the same host its pid is checked at once).
    "HEARTBEAT_SECONDS": config.env_float("SEND_HEARTBEAT_SECONDS", 5),
    "HEARTBEAT_TIMEOUT_SECONDS": config.env_float("SEND_HEARTBEAT_TIMEOUT_SECONDS", 15),
    # A relay unreachable for this long pauses the campaign (and tells NOTIFY_STAFF); until then
    # the campaign waits with exponential backoff (SEND_RETRY_BACKOFF_SECONDS doubling).
    "RELAY_DOWN_PAUSE_SECONDS": config.env_float("SEND_RELAY_DOWN_PAUSE_SECONDS", 3600),
    # Subscribe form limits (django-ratelimit rates) and the gap before a confirmation is re-sent.
    "SUBSCRIBE_RATE_PER_IP": config.env_str("SUBSCRIBE_RATE_PER_IP", "20/h"),
    "SUBSCRIBE_RATE_PER_ADDRESS": config.env_str("SUBSCRIBE_RATE_PER_ADDRESS", "5/h"),
    "CONFIRM_RESEND_MINUTES": config.env_int("CONFIRM_RESEND_MINUTES", 10, minimum=1),
    # Public page cache (newsletter_site/page_cache.py): how long a stored page lives at most (0:
    # no cache; any publish makes every stored page stale at once), and the max-age browsers and
    # proxies get for pages without a form.
    "PAGE_CACHE_SECONDS": config.env_int("PAGE_CACHE_SECONDS", 600, minimum=0),
    "PAGE_CACHE_MAX_AGE": config.env_int("PAGE_CACHE_MAX_AGE", 60, minimum=0),
    # An uploaded import whose columns nobody mapped within this many hours is deleted.
    "IMPORT_ABANDON_HOURS": config.env_int("IMPORT_ABANDON_HOURS", 24, minimum=1),
    # Reverse proxies in front of the site that append to X-Forwarded-For (0: use REMOTE_ADDR).
    "TRUSTED_PROXY_COUNT": config.env_int("TRUSTED_PROXY_COUNT", 0, minimum=0),
    # Staff addresses told when someone confirms (comma-separated); "daily" sends a digest.
    "NOTIFY_STAFF": config.env_list("NOTIFY_STAFF"),
    "NOTIFY_STAFF_MODE": config.env_choice("NOTIFY_STAFF_MODE", "each", ["each", "daily"]),
    # ESP feedback: suppress an address that soft-bounces on this many consecutive campaigns.
    "SOFT_BOUNCE_LIMIT": config.env_int("SOFT_BOUNCE_LIMIT", 3, minimum=1),
    # ESPs whose tracking webhooks are routed (/anymail/<esp>/tracking/): TRACKING_WEBHOOKS.
    "TRACKING_WEBHOOKS": _tracking_webhooks,
    # Amazon SES over SNS: the SNS topic ARNs whose messages are accepted (comma-separated); none
    # is trusted without it (docs/security.md).
    "SES_SNS_TOPIC_ARNS": config.env_list("SES_SNS_TOPIC_ARNS"),
    # ESP events that match no delivery: kept at most this many, for this many days (an excerpt each).
    "UNMATCHED_EVENTS_MAX": config.env_int("UNMATCHED_EVENTS_MAX", 10000, minimum=0),
    "UNMATCHED_EVENTS_DAYS": config.env_int("UNMATCHED_EVENTS_DAYS", 30, minimum=1),
    # Own tracking for plain SMTP (ESPs track themselves): signed redirect links, a 1x1 open pixel.
    "TRACK_CLICKS": config.env_bool("TRACK_CLICKS", False),
    "TRACK_OPENS": config.env_bool("TRACK_OPENS", False),
    # Plain SMTP bounces (docs/sending-without-an-esp.md): with a bounce domain every campaign
    # message goes out with the return path bounces+<signed delivery id>@BOUNCE_DOMAIN (VERP);
    # the mailbox those bounces reach is read every BOUNCE_POLL_SECONDS by a task.
    "BOUNCE_DOMAIN": config.env_str("BOUNCE_DOMAIN", "").strip().lower(),
    "BOUNCE_LOCAL_PART": config.env_str("BOUNCE_LOCAL_PART", "bounces"),
    "BOUNCE_MAILBOX": config.mailbox_from_url("BOUNCE_MAILBOX_URL", config.env_str("BOUNCE_MAILBOX_URL", "")),
    "BOUNCE_POLL_SECONDS": config.env_int("BOUNCE_POLL_SECONDS", 300, minimum=10),
    # Automations (welcome emails, sequences): the scheduler's tick looks for due steps this often
    # (a new subscriber's welcome does not wait for it: their subscription kicks a tick at once).
    "AUTOMATION_TICK_SECONDS": config.env_int("AUTOMATION_TICK_SECONDS", 60, minimum=5),
    # In-app DKIM signing (DKIM_DOMAIN, DKIM_SELECTOR, DKIM_PRIVATE_KEY_FILE or DKIM_PRIVATE_KEY).
    "DKIM": config.dkim_from_env(),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": config.env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
