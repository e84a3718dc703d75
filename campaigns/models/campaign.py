"""The sending ledger: a Campaign sends one published issue to lists; a Delivery per recipient."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class CampaignQuerySet(models.QuerySet):
    def active(self):
        """Campaigns a worker may still have work for."""
        return self.filter(status__in=[Campaign.Status.SENDING, Campaign.Status.PAUSED])

    def due(self, now=None):
        """Scheduled campaigns whose time has come."""
        return self.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now or timezone.now())


class Campaign(models.Model):
    """One send of one issue (as of one published revision) to one or more lists."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    FINAL_STATUSES = (Status.SENT, Status.CANCELLED, Status.FAILED)

    page = models.ForeignKey("campaigns.NewsletterIssuePage", on_delete=models.PROTECT, related_name="campaigns")
    # The revision that was live when the campaign started: what went out, whatever is edited later.
    page_revision = models.ForeignKey(
        "wagtailcore.Revision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lists = models.ManyToManyField("subscribers.MailingList", related_name="campaigns")
    subject_override = models.CharField(max_length=200, blank=True)
    from_email = models.CharField(max_length=320, blank=True, help_text='e.g. "The Broadsheet <news@example.com>".')
    reply_to = models.EmailField(blank=True)
    # A MAILERS name (EMAIL_URL_<NAME>); blank: the first list's mailer, else "default".
    mailer = models.CharField(max_length=40, blank=True, default="")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    # Kept exact: changed only with F() in the transaction that records the deliveries' outcomes.
    recipients = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)

    # Tracking counters (campaigns.tracking): each delivery counts once, the first time it reaches
    # the state; changed only with F() so concurrent webhook requests never lose an update.
    delivered = models.PositiveIntegerField(default=0)
    unique_opens = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)

    # Rendered once at start, so every worker sends the identical content.
    subject = models.CharField(max_length=998, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("send_campaign", "Can send campaigns")]

    def __str__(self):
        return f"{self.page.title} ({self.get_status_display()})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def remaining(self) -> int:
        return max(self.recipients - self.sent - self.failed - self.skipped, 0)


class DeliveryQuerySet(models.QuerySet):
    def claimable(self, now=None):
        """Queued, claimed by nobody, and not waiting for a retry."""
        now = now or timezone.now()
        return self.filter(status=Delivery.Status.QUEUED, claimed_by="").filter(
            Q(retry_at__isnull=True) | Q(retry_at__lte=now)
        )

    def unfinished(self):
        """Rows that still need a worker: queued (claimed or not) or in flight."""
        return self.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING])


class Delivery(models.Model):
    """One recipient of one campaign: the snapshot and the ledger that prevents a second send."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    # SET_NULL: erasing a subscriber must not erase the record that a campaign went out.
    subscriber = models.ForeignKey(
        "subscribers.Subscriber", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    email = models.CharField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    subscriber_uid = models.UUIDField()

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # A claim is (worker, time); a claim older than the stale timeout belongs to a dead worker.
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When the row was last handed to the transport; the newest 'sending' rows of a dead
    # worker are the ones that were in flight.
    sending_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    esp_message_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    # Tracking (filled from ESP events and the tracking endpoints).
    delivered_at = models.DateTimeField(null=True, blank=True)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    first_clicked_at = models.DateTimeField(null=True, blank=True)
    click_count = models.PositiveIntegerField(default=0)
    bounced_at = models.DateTimeField(null=True, blank=True)
    bounce_type = models.CharField(max_length=16, blank=True, default="")
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "subscriber"], name="unique_delivery")]
        indexes = [
            # The claim query: WHERE campaign_id = ? AND status = 'queued' ORDER BY id.
            models.Index(fields=["campaign", "status", "id"], name="delivery_claim_idx"),
            # Per-batch bookkeeping (recover_stale_deliveries groups the claimed rows by worker;
            # work_remaining looks for the next retry) touches only the few claimed rows and the
            # few waiting for a retry. Without these partial indexes each of those queries walked
            # every queued row of the campaign: about 1 s per batch at the start of a 1,000,000
            # recipient campaign on PostgreSQL (docs/performance.md). The conditions are written
            # exactly as the queries filter, so the planner can match them.
            models.Index(
                fields=["campaign", "claimed_by"],
                name="delivery_claimed_idx",
                condition=~Q(claimed_by=""),
            ),
            models.Index(
                fields=["campaign", "retry_at"],
                name="delivery_retry_idx",
                condition=Q(status="queued", retry_at__isnull=False),
            ),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self):
        return f"{self.email}: {self.status}"


class DeliveryEvent(models.Model):
    """One tracking event from an ESP (delivered, bounced, opened...); ``event_id`` makes it idempotent."""

    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    esp = models.CharField(max_length=40)
    event_type = models.CharField(max_length=40)
    event_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    message_id = models.CharField(max_length=255, blank=True, db_index=True)
    recipient = models.CharField(max_length=254, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    # The clicked link, for "clicked" events (the report's top links).
    url = models.CharField(max_length=2000, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.esp} {self.event_type} for {self.recipient}"


class SendWindow(models.Model):
    """Messages reserved in one rate window of one mailer: the throttle every worker shares."""

    mailer = models.CharField(max_length=64)
    period = models.PositiveIntegerField(help_text="Window length in seconds (1 or 3600).")
    window = models.BigIntegerField(help_text="Unix time // period.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailer", "period", "window"], name="unique_send_window")]

    def __str__(self):
        return f"{self.mailer} {self.period}s #{self.window}: {self.count}"
