"""Who is on which list, and the proof that they asked to be (GDPR Art. 7(1))."""

import functools
import hashlib
import hmac
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mail.addresses import has_control_characters, validate_header_address, validate_header_text
from subscribers import bulk, tokens
from subscribers.storage import import_storage, random_import_name

# The largest value of a BigAutoField: an id from outside above it can match no row (and would
# overflow SQLite's integer binding), so forms and public views refuse it before querying.
MAX_ID = 2**63 - 1


@functools.lru_cache(maxsize=4096)
def _idna_domain(domain: str) -> str:
    """A domain in IDNA (punycode) form; remembered, as an import meets the same few domains a
    million times (the codec runs nameprep per label). Raises ``UnicodeError``, never remembered."""
    return domain.encode("idna").decode("ascii")


_django_email_validator = EmailValidator()


@functools.lru_cache(maxsize=4096)
def _valid_domain(domain: str) -> bool:
    return _django_email_validator.validate_domain_part(domain)


class _EmailValidator(EmailValidator):
    """Django's ``validate_email``, with each domain's verdict remembered (its regex dominates)."""

    def validate_domain_part(self, domain_part):
        return _valid_domain(domain_part)


validate_email = _EmailValidator()


def normalise_email(address: str) -> str:
    """The identity of an address: trimmed, lower-cased, domain in IDNA (punycode) form.

    ``Ann@Example.com`` and ``ann@EXAMPLE.com`` are one subscriber; so are ``bob@bücher.de``
    and ``bob@xn--bcher-kva.de``. Raises ``ValidationError`` for a malformed address, including
    one with a control character: Django's validator accepts e.g. ``"a\x0bb"@example.com`` (a
    quoted local part) but no mail header can carry it, so it would fail only later, at sending.
    """
    address = (address or "").strip()
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain or has_control_characters(address):
        raise ValidationError(_("Enter a valid email address."), code="invalid")
    try:
        domain = _idna_domain(domain)
    except UnicodeError:
        raise ValidationError(_("Enter a valid email address."), code="invalid") from None
    normalised = f"{local}@{domain}".lower()
    validate_email(normalised)
    return normalised


def contains_nul(value) -> bool:
    """Whether a JSON value holds a NUL character anywhere (a key, a string, nested): PostgreSQL
    stores none in text or JSON ("unsupported Unicode escape sequence"), so it is refused first."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


def consent_text_hash(text: str) -> str:
    """SHA-256 of the consent sentence as shown, to prove later which wording someone agreed to."""
    return hashlib.sha256(text.encode()).hexdigest()


SUPPRESSION_SALT = "broadsheet.subscribers.suppression"


def _suppression_secrets() -> list[str]:
    """The current key first, then the fallbacks (docs/security.md, "Suppression hashes")."""
    if settings.SUPPRESSION_KEY:
        return [settings.SUPPRESSION_KEY, *settings.SUPPRESSION_KEY_FALLBACKS]
    return [settings.SECRET_KEY, *settings.SUPPRESSION_KEY_FALLBACKS, *settings.SECRET_KEY_FALLBACKS]


@functools.lru_cache(maxsize=16)
def _hmac_key(secret: str) -> bytes:
    """The key Django's ``salted_hmac(SUPPRESSION_SALT, ..., secret=secret, algorithm="sha256")``
    derives, computed once per secret (an import hashes every address of the file)."""
    return hashlib.sha256(f"{SUPPRESSION_SALT}{secret}".encode()).digest()


def _keyed_hash(normalised: str, secret: str) -> str:
    return hmac.digest(_hmac_key(secret), normalised.encode(), "sha256").hex()


def legacy_email_hash(normalised: str) -> str:
    """The unkeyed SHA-256 that suppressions held before they were keyed (guessable: only matched)."""
    return hashlib.sha256(normalised.encode()).hexdigest()


def email_hash(normalised: str) -> str:
    """HMAC-SHA256 of a normalised address under SUPPRESSION_KEY (else a key derived from
    SECRET_KEY), kept after erasure so the address is never added again. Without the key, a
    guessed address cannot be checked against the table."""
    return _keyed_hash(normalised, _suppression_secrets()[0])


def email_hashes(normalised: str, secrets: list[str] | None = None) -> list[str]:
    """Every hash a suppression of ``normalised`` may be stored under: the current key, the
    fallback keys (a rotated key still matches) and the legacy unkeyed SHA-256. ``secrets``:
    ``_suppression_secrets()``, read once by a caller hashing many addresses."""
    secrets = _suppression_secrets() if secrets is None else secrets
    return [*(_keyed_hash(normalised, secret) for secret in secrets), legacy_email_hash(normalised)]


class MailingListQuerySet(models.QuerySet):
    def offered_in(self, language: str):
        """Public lists for a subscribe form in ``language``: single-language lists of other
        languages are left out."""
        return self.filter(is_public=True).filter(Q(language="") | Q(language=language))


def validate_mailer_name(value: str) -> None:
    """A name of settings.MAILERS (checked when saved: the configuration may change later)."""
    if value and value not in settings.MAILERS:
        names = ", ".join(sorted(settings.MAILERS))
        raise ValidationError(_("No mailer named %(name)r; configured: %(names)s.") % {"name": value, "names": names})


class MailingList(models.Model):
    name = models.CharField(_("name"), max_length=150, validators=[validate_header_text])
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    is_public = models.BooleanField(
        _("public"),
        default=True,
        help_text=_("Public lists are offered on the subscribe form and in the preference centre."),
    )
    preselected = models.BooleanField(
        _("ticked on the subscribe form"),
        default=False,
        help_text=_(
            "Starts ticked on the public subscribe form (your main list). Visitors can untick it, and "
            "nobody is subscribed before they confirm by email."
        ),
    )
    double_opt_in = models.BooleanField(
        _("double opt-in"), default=True, help_text=_("Send a confirmation email and add nobody until they confirm.")
    )
    from_name = models.CharField(
        _("sender name"),
        max_length=100,
        blank=True,
        validators=[validate_header_text],
        help_text=_("Overrides the site's sender name."),
    )
    from_email = models.EmailField(
        _("sender email"),
        blank=True,
        validators=[validate_header_address],
        help_text=_("Overrides the site's sender address."),
    )
    reply_to = models.EmailField(_("reply-to"), blank=True, validators=[validate_header_address])
    language = models.CharField(
        _("language"),
        max_length=16,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_(
            "A single-language list: offered only on pages in this language, and every issue goes "
            "to it in this language. Empty: each subscriber gets their own language."
        ),
    )
    mailer = models.CharField(
        _("mailer"),
        max_length=40,
        blank=True,
        default="",
        validators=[validate_mailer_name],
        help_text=_(
            "The mailer (EMAIL_URL_<NAME>, lower case) campaigns to this list send through; blank: the default."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = MailingListQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("mailing list")
        verbose_name_plural = _("mailing lists")

    def __str__(self):
        return self.name


class SubscriberQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state=Subscriber.State.ACTIVE)

    def suppressed(self):
        return self.filter(state__in=Subscriber.SUPPRESSED_STATES)

    def for_email(self, address: str):
        """The subscriber (0 or 1 rows) whose normalised address matches ``address`` in any spelling."""
        return self.filter(email_normalised=normalise_email(address))

    def sendable(self, lists):
        """Active subscribers confirmed on any of ``lists`` (ids or MailingLists), each once."""
        confirmed = Subscription.objects.filter(list__in=lists, status=Subscription.Status.SUBSCRIBED)
        return self.active().filter(pk__in=confirmed.values("subscriber_id"))

    def with_list_counts(self):
        return self.annotate(list_count=Count("subscriptions", filter=Q(subscriptions__status="subscribed")))


class Subscriber(models.Model):
    """One row per address. ``state`` is global: a suppressed address gets nothing, from any list."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Complained")
        BLOCKED = "blocked", _("Blocked")

    SUPPRESSED_STATES = (State.BOUNCED, State.COMPLAINED, State.BLOCKED)

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(
        _("email address"), max_length=254, help_text=_("As the subscriber typed it."), validators=[normalise_email]
    )
    email_normalised = models.CharField(max_length=254, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200, blank=True, validators=[validate_header_text])
    language = models.CharField(_("language"), max_length=16, blank=True, default=settings.LANGUAGE_CODE)
    attributes = models.JSONField(
        _("attributes"), default=dict, blank=True, help_text=_('Merge fields, e.g. {"city": "Leeds"}.')
    )
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.ACTIVE, db_index=True)
    state_reason = models.CharField(_("state reason"), max_length=255, blank=True)
    state_changed_at = models.DateTimeField(_("state changed"), null=True, blank=True)
    # Consecutive campaigns on which the address soft-bounced; reset by a delivery.
    soft_bounce_streak = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(_("added"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["email_normalised"]
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")

    def __str__(self):
        return self.email

    def save(self, *args, **kwargs):
        self.email_normalised = normalise_email(self.email)
        super().save(*args, **kwargs)

    def clean(self):
        # Merge fields are looked up by name: anything but a JSON object (a list, a string, a
        # number) would break every page and export that reads them. An empty field is no fields.
        if self.attributes is None:
            self.attributes = {}
        if not isinstance(self.attributes, dict):
            raise ValidationError({"attributes": 'Enter a JSON object, e.g. {"city": "Leeds"}.'})
        if contains_nul(self.attributes):
            raise ValidationError({"attributes": "Merge fields cannot hold a NUL character (\\u0000)."})

    @property
    def is_suppressed(self) -> bool:
        return self.state in self.SUPPRESSED_STATES

    def suppress(self, state: str, reason: str = "") -> bool:
        """Move to a suppressed state; returns False when it already was. Saves the state fields."""
        if self.state == state:
            return False
        self.state = state
        self.state_reason = reason[:255]
        self.state_changed_at = timezone.now()
        self.save(update_fields=["state", "state_reason", "state_changed_at", "updated_at"])
        return True


def no_rules() -> dict:
    """A segment's rules before any are added (subscribers.segments: the format and the checks)."""
    return {"match": "all", "rules": []}


class Segment(models.Model):
    """A saved audience filter: rules (subscribers.segments) narrowing a campaign's lists.

    Checked where they enter (the admin form, subscribers.segments.parse_rules) and compiled to
    one condition on Subscriber when an audience is counted or snapshotted.
    """

    name = models.CharField(_("name"), max_length=150)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    rules = models.JSONField(_("rules"), default=no_rules)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self):
        return self.name


class SubscriptionQuerySet(models.QuerySet):
    def subscribed(self):
        return self.filter(status=Subscription.Status.SUBSCRIBED)

    def pending(self):
        return self.filter(status=Subscription.Status.PENDING)

    def current(self):
        """Pending or subscribed: the subscriptions an unsubscribe ends."""
        return self.filter(status__in=[Subscription.Status.PENDING, Subscription.Status.SUBSCRIBED])


class Subscription(models.Model):
    """(subscriber, list), with the consent record. Never hard-deleted by an unsubscribe."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending confirmation")
        SUBSCRIBED = "subscribed", _("Subscribed")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")

    class Source(models.TextChoices):
        FORM = "form", _("Subscribe form")
        IMPORT = "import", _("Import")
        ADMIN = "admin", _("Admin")
        PREFERENCES = "preferences", _("Preference centre")

    class UnsubscribeMethod(models.TextChoices):
        LINK = "link", _("Unsubscribe link")
        ONE_CLICK = "one_click", _("One-click (List-Unsubscribe-Post)")
        PREFERENCES = "preferences", _("Preference centre")
        ADMIN = "admin", _("Admin")
        ESP = "esp", _("ESP event")
        COMPLAINT = "complaint", _("Spam complaint")

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="subscriptions")
    list = models.ForeignKey(MailingList, on_delete=models.CASCADE, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    # Consent: who (the subscriber), when, how, what they were told, from where.
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_source = models.CharField(max_length=16, choices=Source.choices, default=Source.FORM)
    consent_detail = models.CharField(
        max_length=500, blank=True, help_text=_("Form page URL, import file and note, or admin user.")
    )
    consent_text = models.TextField(blank=True, help_text=_("The exact sentence the subscriber agreed to."))
    consent_text_hash = models.CharField(max_length=64, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_user_agent = models.CharField(max_length=500, blank=True)

    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    confirmation_count = models.PositiveSmallIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirm_ip = models.GenericIPAddressField(null=True, blank=True)
    confirm_user_agent = models.CharField(max_length=500, blank=True)

    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    unsubscribe_method = models.CharField(max_length=16, choices=UnsubscribeMethod.choices, blank=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "list"], name="unique_subscription")]
        indexes = [models.Index(fields=["list", "status"])]

    def __str__(self):
        return f"{self.subscriber} on {self.list}: {self.status}"

    def record_consent(self, *, source: str, detail: str, text: str, ip: str | None, user_agent: str, at=None):
        """Set the consent record (who is the subscriber; when, how, what they were told, from where).

        Does not save: the caller saves it together with the status change it belongs to.
        """
        self.consent_at = at or timezone.now()
        self.consent_source = source
        self.consent_detail = tokens.redact(detail)[:500]
        self.consent_text = text or ""
        self.consent_text_hash = consent_text_hash(text) if text else ""
        self.consent_ip = ip or None
        self.consent_user_agent = (user_agent or "")[:500]

    def confirmation_due(self, now, *, resend_after, max_sends: int, window) -> bool:
        """May another confirmation email go out now?

        At most ``max_sends`` (the first email and one reminder) within ``window`` (the token's
        lifetime) and never twice within ``resend_after``; after the window a request starts afresh.
        """
        if self.confirmation_sent_at is None or now - self.confirmation_sent_at >= window:
            return True
        return self.confirmation_count < max_sends and now - self.confirmation_sent_at >= resend_after

    def mark_confirmation_sent(self, now, *, window):
        """Count one confirmation email (restarting the count after ``window``); saves those fields."""
        if self.confirmation_sent_at is None or now - self.confirmation_sent_at >= window:
            self.confirmation_count = 0
        self.confirmation_count += 1
        self.confirmation_sent_at = now
        self.save(update_fields=["confirmation_count", "confirmation_sent_at"])

    def mark_confirmed(self, *, ip: str | None, user_agent: str, at=None) -> bool:
        """Pending to subscribed, recording the confirmation; False (no change) in any other status."""
        if self.status != self.Status.PENDING:
            return False
        self.status = self.Status.SUBSCRIBED
        self.confirmed_at = at or timezone.now()
        self.confirm_ip = ip or None
        self.confirm_user_agent = (user_agent or "")[:500]
        self.save(update_fields=["status", "confirmed_at", "confirm_ip", "confirm_user_agent"])
        return True

    def mark_unsubscribed(self, method: str, at=None) -> bool:
        """End a pending or confirmed subscription, recording when and how; False if it already was."""
        if self.status == self.Status.UNSUBSCRIBED:
            return False
        self.status = self.Status.UNSUBSCRIBED
        self.unsubscribed_at = at or timezone.now()
        self.unsubscribe_method = method
        self.save(update_fields=["status", "unsubscribed_at", "unsubscribe_method"])
        return True


class SubscriberEvent(models.Model):
    """The history of one subscriber: every consent, confirmation, status and state change.

    Written through ``record()``; ``kind`` is one of ``Kind``.
    """

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        SUBSCRIBE_REQUESTED = "subscribe_requested", _("Asked to subscribe")
        SUBSCRIBE_REFUSED = "subscribe_refused", _("Subscription refused (suppressed address)")
        CONFIRMATION_SENT = "confirmation_sent", _("Confirmation email sent")
        SUBSCRIBED = "subscribed", _("Subscribed")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        PROFILE_UPDATED = "profile_updated", _("Profile updated")
        SUPPRESSED = "suppressed", _("Suppressed")
        ERASED = "erased", _("Erased (GDPR)")

    class Via(models.TextChoices):
        """How a subscription became active: ``detail["via"]`` of a SUBSCRIBED event."""

        CONFIRMATION = "confirmation", _("Confirmation link")
        FORM = "form", _("Subscribe form (single opt-in)")
        PREFERENCES = "preferences", _("Preference centre")
        IMPORT = "import", _("Import")

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="events")
    list = models.ForeignKey(MailingList, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M}"

    @classmethod
    def record(cls, subscriber, kind: str, *, mlist=None, actor=None, at=None, **detail) -> "SubscriberEvent":
        """Add one event of ``kind`` (a ``Kind``) to ``subscriber``'s history; ``detail`` is stored as JSON."""
        return cls.objects.create(
            subscriber=subscriber, list=mlist, kind=kind, detail=detail, actor=actor, at=at or timezone.now()
        )


class SuppressionQuerySet(models.QuerySet):
    def matching(self, normalised_addresses) -> dict[str, "Suppression"]:
        """{normalised address: its Suppression} for those of ``normalised_addresses`` suppressed.

        A row found under a fallback key or the legacy unkeyed hash is re-keyed on the spot: now
        that the address is known, it gets the current key's hash (docs/security.md).
        """
        secrets = _suppression_secrets()
        candidates = {h: n for n in normalised_addresses for h in reversed(email_hashes(n, secrets))}
        found = {}
        hashes = [found for (found,) in bulk.matching(Suppression, "email_hash", candidates, ("email_hash",))]
        for row in self.filter(email_hash__in=hashes) if hashes else ():
            normalised = candidates[row.email_hash]
            current = email_hash(normalised)
            if row.email_hash != current and not Suppression.objects.filter(email_hash=current).exists():
                Suppression.objects.filter(pk=row.pk).update(email_hash=current, keyed=True)
                row.email_hash, row.keyed = current, True
            found[normalised] = row
        return found


class Suppression(models.Model):
    """An address we must never add again, kept only as a keyed hash (e.g. after a GDPR erasure)."""

    email_hash = models.CharField(max_length=64, unique=True)
    # False: an unkeyed SHA-256 from before keying, matched (and re-keyed) when its address comes back.
    keyed = models.BooleanField(default=True)
    reason = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    objects = SuppressionQuerySet.as_manager()

    def __str__(self):
        return f"{self.email_hash[:12]}… ({self.reason})"

    @classmethod
    def covers(cls, address: str) -> bool:
        """Is ``address`` (any spelling) on the suppression list?"""
        normalised = normalise_email(address)
        return normalised in cls.objects.matching([normalised])


class ImportJobQuerySet(models.QuerySet):
    def abandoned(self, before):
        """Uploads created before ``before`` still waiting for their column map (never queued)."""
        return self.filter(status=ImportJob.Status.PENDING, column_map={}, created_at__lt=before)


class ImportJob(models.Model):
    """One CSV upload being imported in the background; the admin polls it for progress."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Mode(models.TextChoices):
        SUBSCRIBE = "subscribe", _("Subscribe directly (consent already obtained)")
        CONFIRM = "confirm", _("Send a confirmation email (double opt-in)")

    file = models.FileField(upload_to=random_import_name, storage=import_storage, max_length=200)
    original_name = models.CharField(max_length=255)
    column_map = models.JSONField(
        default=dict, help_text='Field per column by position, e.g. ["email", "", "name"], or by header name.'
    )
    lists = models.ManyToManyField(MailingList, related_name="+")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.CONFIRM)
    consent_note = models.CharField(max_length=500, blank=True, help_text=_("Where and how consent was obtained."))
    update_names = models.BooleanField(default=False, help_text=_("Replace names subscribers already have."))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text=_("The first line-numbered errors."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ImportJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Import of {self.original_name} ({self.get_status_display()})"

    def delete_file(self) -> None:
        """Delete the uploaded copy (personal data a GDPR erasure cannot reach); the report stays."""
        if self.file.name:
            self.file.storage.delete(self.file.name)

    def abandon(self, at=None) -> None:
        """A waiting upload nobody mapped in time: failed, its file deleted. Saves those fields."""
        self.delete_file()
        self.status = self.Status.FAILED
        self.finished_at = at or timezone.now()
        self.errors = [
            *self.errors,
            {
                "line": None,
                "kind": "fatal",
                "message": "Abandoned before the columns were mapped; the file was deleted.",
            },
        ]
        self.save(update_fields=["status", "finished_at", "errors"])
