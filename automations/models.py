"""Automations: a welcome email per list and sequences (drip), sent through the campaign engine.

An ``Automation`` (a welcome email, or a sequence) has ordered ``Step`` rows, each an
``AutomationEmailPage`` and a delay after the previous step (the first: after subscribing). A
subscriber who becomes subscribed to the automation's list gets an ``Enrollment`` (their own
clock: ``entered_at``). The scheduler (automations.scheduler) finds, set-based, who is due for
each step now, writes one ``StepSend`` per (step, subscriber) -- the ledger whose unique
constraint makes "exactly once, even after leaving and rejoining" true -- and snapshots the same
subscribers into an ordinary ``Campaign`` of that step (one ``StepRun`` per step and published
revision), which the batched engine sends with the same headers, footer, tracking and pause as
any campaign.
"""

import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import FieldPanel, InlinePanel, MultiFieldPanel
from wagtail.models import Orderable, Page

from campaigns.models import Campaign, NewsletterIssuePage

# --- The emails (Wagtail pages, outside the public site) ---------------------------------------


class AutomationEmailIndexPage(Page):
    """The folder of automation emails, at the root of the page tree, outside every site: its
    emails are never served publicly and never listed in the archive, the home page or the feed."""

    parent_page_types = ["wagtailcore.Page"]
    subpage_types = ["automations.AutomationEmailPage"]
    max_count_per_parent = 1

    class Meta:
        verbose_name = _("automation emails folder")

    def serve(self, request, *args, **kwargs):
        raise Http404


class AutomationEmailPage(NewsletterIssuePage):
    """An email an automation sends (a welcome, a sequence step): written like an issue, with the
    same blocks and the same email and plain-text previews, but not an issue of the archive."""

    parent_page_types = ["automations.AutomationEmailIndexPage"]
    subpage_types = []
    content_panels = [
        *Page.content_panels,
        MultiFieldPanel([FieldPanel("subject"), FieldPanel("preheader")], _("Email")),
        MultiFieldPanel([FieldPanel("hero_image"), FieldPanel("hero_alt_text")], _("Hero image")),
        FieldPanel("body"),
    ]
    preview_modes = [("email", _("Email (HTML)")), ("text", _("Plain text"))]
    default_preview_mode = "email"

    class Meta:
        verbose_name = _("automation email")

    def serve(self, request, *args, **kwargs):
        raise Http404


# --- Automations -------------------------------------------------------------------------------


class AutomationQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=Automation.Status.ACTIVE)

    def pause(self) -> int:
        return self.filter(status=Automation.Status.ACTIVE).update(status=Automation.Status.PAUSED)

    def resume(self) -> int:
        return self.filter(status=Automation.Status.PAUSED).update(status=Automation.Status.ACTIVE)


class Automation(ClusterableModel):
    """A welcome email (one step, no delay) or a sequence of steps, for the subscribers of one list."""

    class Kind(models.TextChoices):
        WELCOME = "welcome", _("Welcome email")
        SEQUENCE = "sequence", _("Sequence")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")

    name = models.CharField(_("name"), max_length=150)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.SEQUENCE)
    list = models.ForeignKey(
        "subscribers.MailingList",
        verbose_name=_("list"),
        on_delete=models.CASCADE,
        related_name="automations",
        help_text=_("Who enters it: people who become subscribed to this list from now on."),
    )
    segment = models.ForeignKey(
        "subscribers.Segment",
        verbose_name=_("segment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="automations",
        help_text=_("Optional: each email goes only to those of the list in this segment when it is due."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    include_imports = models.BooleanField(
        _("include imports"),
        default=False,
        help_text=_("Also for people subscribed by a CSV import. Off by default: an import is not a sign-up."),
    )
    send_window = models.BooleanField(
        _("only between 09:00 and 18:00"),
        default=False,
        help_text=_(
            "Hold due emails until 09:00-18:00 in the subscriber's time zone (their time_zone "
            "attribute, when it is a valid IANA name), else the site's."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = AutomationQuerySet.as_manager()

    panels = [
        FieldPanel("name"),
        FieldPanel("kind"),
        FieldPanel("list"),
        FieldPanel("segment"),
        FieldPanel("include_imports"),
        FieldPanel("send_window"),
        InlinePanel("steps", label=_("Emails"), min_num=1),
    ]

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("automation")
        constraints = [
            # One welcome email per list (the issue: "per list, an optional welcome email").
            models.UniqueConstraint(fields=["list"], condition=models.Q(kind="welcome"), name="one_welcome_per_list")
        ]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.kind == self.Kind.WELCOME and self.list_id:
            others = Automation.objects.filter(kind=self.Kind.WELCOME, list_id=self.list_id).exclude(pk=self.pk)
            if others.exists():
                raise ValidationError({"list": _("This list already has a welcome email.")})

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def pause(self) -> bool:
        changed = Automation.objects.filter(pk=self.pk).pause()
        self.refresh_from_db(fields=["status"])
        return bool(changed)

    def resume(self) -> bool:
        changed = Automation.objects.filter(pk=self.pk).resume()
        self.refresh_from_db(fields=["status"])
        return bool(changed)


class Step(Orderable):
    """One email of an automation, sent ``delay`` after the previous step (the first: after
    subscribing). Edits take effect for everyone who has not reached the step yet."""

    automation = ParentalKey(Automation, on_delete=models.CASCADE, related_name="steps")
    page = models.ForeignKey(
        AutomationEmailPage,
        verbose_name=_("email"),
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("A published automation email (Pages > Automation emails)."),
    )
    delay_days = models.PositiveIntegerField(_("days"), default=0, validators=[MaxValueValidator(366)])
    delay_hours = models.PositiveIntegerField(_("hours"), default=0, validators=[MaxValueValidator(23)])
    delay_minutes = models.PositiveIntegerField(_("minutes"), default=0, validators=[MaxValueValidator(59)])

    panels = [
        FieldPanel("page"),
        MultiFieldPanel(
            [FieldPanel("delay_days"), FieldPanel("delay_hours"), FieldPanel("delay_minutes")],
            _("Delay after the previous email (the first: after subscribing)"),
        ),
    ]

    class Meta(Orderable.Meta):
        verbose_name = _("email")

    def __str__(self):
        return f"{self.automation}: {self.page}"

    @property
    def delay(self) -> datetime.timedelta:
        return datetime.timedelta(days=self.delay_days, hours=self.delay_hours, minutes=self.delay_minutes)

    @property
    def position(self) -> int:
        return self.sort_order or 0


class EnrollmentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state=Enrollment.State.ACTIVE)

    def stop(self, at=None) -> int:
        """active -> stopped (the subscriber left the list)."""
        return self.filter(state=Enrollment.State.ACTIVE).update(
            state=Enrollment.State.STOPPED, stopped_at=at or timezone.now()
        )


class Enrollment(models.Model):
    """One subscriber in one automation, on their own clock. Unique: leaving and rejoining does not
    enter them again (only ``restart`` does)."""

    class State(models.TextChoices):
        ACTIVE = "active", _("In progress")
        STOPPED = "stopped", _("Stopped (left the list)")

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="enrollments")
    subscriber = models.ForeignKey("subscribers.Subscriber", on_delete=models.CASCADE, related_name="+")
    entered_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Bumped by a restart: the steps are sent again in the new round.
    round = models.PositiveSmallIntegerField(default=0)

    objects = EnrollmentQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["automation", "subscriber"], name="unique_enrollment")]
        indexes = [models.Index(fields=["automation", "state", "entered_at"], name="enrollment_due_idx")]

    def __str__(self):
        return f"{self.subscriber_id} in {self.automation_id} ({self.state})"


class StepRun(models.Model):
    """The ordinary Campaign that sends one step as of one published revision of its email. The
    scheduler keeps snapshotting due subscribers into it (campaigns.services.add_recipients); a
    new revision, a cancelled campaign or a restart opens a new run."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="runs")
    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="automation_run")
    revision_id = models.PositiveBigIntegerField()
    is_open = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.step} run {self.pk}"


class StepSend(models.Model):
    """The ledger: this subscriber reached this step (in this round) and was queued in ``run``.
    The unique constraint is the guarantee that nobody gets a step twice, whatever crashes,
    concurrent ticks or rejoins happen."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="sends")
    subscriber = models.ForeignKey("subscribers.Subscriber", on_delete=models.CASCADE, related_name="+")
    round = models.PositiveSmallIntegerField(default=0)
    run = models.ForeignKey(StepRun, on_delete=models.CASCADE, related_name="sends")
    queued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["step", "subscriber", "round"], name="unique_step_send")]

    def __str__(self):
        return f"{self.subscriber_id} at {self.step_id}"
