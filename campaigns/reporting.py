"""Figures for the admin: a campaign's progress while it sends, its report, and the subscriber growth.

Read-only queries; the counters themselves are kept by the sending engine (sent/failed/skipped)
and by the tracking receiver (delivered, unique opens/clicks, bounces, complaints, unsubscribes).
"""

import datetime
from dataclasses import dataclass

from anymail.signals import EventType
from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import Coalesce, TruncDate, TruncHour
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns import bots
from campaigns.click_tracking import own_tracking
from campaigns.models import Campaign, Delivery, DeliveryEvent
from subscribers.models import Subscription
from subscribers.templatetags.admin_format import admin_datetime, duration

RATE_WINDOW = datetime.timedelta(minutes=1)
REPORT_HOURS = 48


# --- Progress ----------------------------------------------------------------------------------


def send_rate(campaign: Campaign, now: datetime.datetime | None = None) -> float:
    """Messages per second over the last minute, from ``Delivery.sent_at``.

    A campaign that started less than a minute ago is measured over the time since it started,
    so the first seconds do not read as a slow send.
    """
    now = now or timezone.now()
    window = RATE_WINDOW
    if campaign.started_at and now - campaign.started_at < window:
        window = max(now - campaign.started_at, datetime.timedelta(seconds=1))
    sent = Delivery.objects.filter(campaign=campaign, sent_at__gt=now - window, sent_at__lte=now).count()
    return sent / window.total_seconds()


def progress(campaign: Campaign, now: datetime.datetime | None = None) -> dict:
    """What the live progress bar shows, as a JSON-ready dict.

    Keys: status, status_label, is_final, recipients, sent, failed, skipped, done, remaining,
    percent (0-100, one decimal), rate (msgs/s over the last minute), eta_seconds (None when
    nothing is moving), scheduled_at / started_at / finished_at (ISO 8601 or None),
    duration_seconds (start to finish, or to now while unfinished; None before the start),
    average_rate (sent per second over that duration, None without one), and ``labels``: every
    figure as the page shows it ("1,234", "12.5 msg/s", "3 min 5 s", "2026-11-30 09:36"), so the
    server-rendered page and the live updates use one number format.
    """
    now = now or timezone.now()
    done = campaign.sent + campaign.failed + campaign.skipped
    remaining = campaign.remaining
    rate = send_rate(campaign, now) if campaign.status == Campaign.Status.SENDING else 0.0
    eta = round(remaining / rate) if rate > 0 and remaining else None
    percent = round(100 * done / campaign.recipients, 1) if campaign.recipients else 0.0
    elapsed = None
    if campaign.started_at:
        end = campaign.finished_at if campaign.is_final and campaign.finished_at else now
        elapsed = max((end - campaign.started_at).total_seconds(), 0.0)
    average = campaign.sent / elapsed if elapsed else None
    labels = {key: f"{value:,}" for key, value in
              [("recipients", campaign.recipients), ("sent", campaign.sent), ("failed", campaign.failed),
               ("skipped", campaign.skipped), ("done", done), ("remaining", remaining)]}  # fmt: skip
    labels.update(
        status_label=campaign.get_status_display(),
        percent=f"{percent:.1f}",
        rate=_per_second(rate),
        eta=duration(eta),
        average_rate=_per_second(average) if average is not None else "–",
        duration=duration(elapsed),
        finished_at=admin_datetime(campaign.finished_at),
    )
    return {
        "status": campaign.status,
        "status_label": campaign.get_status_display(),
        "is_final": campaign.is_final,
        "recipients": campaign.recipients,
        "sent": campaign.sent,
        "failed": campaign.failed,
        "skipped": campaign.skipped,
        "done": done,
        "remaining": remaining,
        "percent": percent,
        "rate": round(rate, 2),
        "eta_seconds": eta,
        "scheduled_at": _iso(campaign.scheduled_at),
        "started_at": _iso(campaign.started_at),
        "finished_at": _iso(campaign.finished_at),
        "duration_seconds": round(elapsed, 1) if elapsed is not None else None,
        "average_rate": round(average, 2) if average is not None else None,
        "labels": labels,
    }


def _per_second(rate: float) -> str:
    return _("%(rate)s msg/s") % {"rate": f"{rate:,.1f}"}


def _iso(value):
    return value.isoformat() if value else None


# --- Report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One number of the report, with its rate (0-1, or None when the base is zero).

    ``tracked`` False: nothing measures this figure for this campaign (own tracking off and no ESP
    reporting it); the page shows ``note`` instead of a misleading 0. ``machine``: for opens and
    clicks, the deliveries a machine opened or clicked (campaigns.bots), shown beside the human
    ``count`` (None for the other figures).
    """

    key: str
    label: str
    count: int
    rate: float | None
    base: str  # what the rate is relative to, for the template's explanation
    tracked: bool = True
    note: str = ""
    machine: int | None = None

    @property
    def percent(self) -> str:
        """The rate as "12.3 %" ("" without a rate)."""
        return "" if self.rate is None else f"{self.rate * 100:.1f} %"


@dataclass(frozen=True)
class Tracking:
    """What is measured for a campaign: opens, clicks, deliveries."""

    opens: bool
    clicks: bool
    deliveries: bool


@dataclass(frozen=True)
class TopLink:
    url: str
    clicks: int
    unique_clicks: int


@dataclass(frozen=True)
class HourBucket:
    hour: int  # hours since the campaign started, 0-based
    opens: int
    clicks: int


@dataclass(frozen=True)
class CampaignReport:
    figures: list[Figure]
    top_links: list[TopLink]
    hours: list[HourBucket]
    tracking: Tracking | None = None
    languages: list["LanguageFigures"] | None = None
    machines: list["MachineFigures"] | None = None

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)


def _rate(count: int, base: int) -> float | None:
    return count / base if base else None


def esp_reports_events() -> bool:
    """True when mail goes out through an ESP (anymail), whose webhooks report deliveries,
    opens and clicks; plain SMTP and the development outbox report none of them."""
    return settings.MAILERS["default"]["BACKEND"].startswith("anymail.")


def tracking(campaign: Campaign) -> Tracking:
    """What this campaign's report can show: own tracking baked into its HTML at start, an ESP
    that reports events, or events that did arrive (a webhook from an earlier configuration)."""
    esp = esp_reports_events()
    own = own_tracking(campaign.html, campaign.pk)
    return Tracking(
        opens=esp or own.opens or campaign.unique_opens + campaign.machine_opens > 0,
        clicks=esp or own.clicks or campaign.unique_clicks + campaign.machine_clicks > 0,
        deliveries=esp or campaign.delivered > 0,
    )


NOT_DELIVERED = gettext_lazy(
    "Not reported: the mail server accepts messages but does not report deliveries (an ESP does)."
)
NOT_OPENS = gettext_lazy("Not tracked: turn on TRACK_OPENS, or send through an ESP that tracks opens.")
NOT_CLICKS = gettext_lazy("Not tracked: turn on TRACK_CLICKS, or send through an ESP that tracks clicks.")


def report_figures(campaign: Campaign) -> list[Figure]:
    """Sent, delivered, unique opens, unique clicks, bounces, complaints and unsubscribes with rates.

    Opens and clicks are people's (campaigns.bots); the machines' figures ride beside them.

    Delivered and bounced are relative to sent. Opens, clicks, complaints and unsubscribes are
    relative to delivered when the backend reports deliveries, else to sent (plain SMTP reports
    none). Delivered, opens and clicks are marked untracked (``tracked`` False, with a note) when
    nothing measures them for this campaign.
    """
    sent = campaign.sent
    measured = tracking(campaign)
    # The rates' bases, as the page says them: "12.0 % of sent".
    of_sent = _("sent")
    reached, reached_label = (campaign.delivered, _("delivered")) if measured.deliveries else (sent, of_sent)
    return [
        Figure("sent", _("Sent"), sent, _rate(sent, campaign.recipients), _("recipients")),
        Figure(
            "delivered",
            _("Delivered"),
            campaign.delivered,
            _rate(campaign.delivered, sent),
            of_sent,
            measured.deliveries,
            "" if measured.deliveries else NOT_DELIVERED,
        ),
        Figure(
            "unique_opens",
            _("Unique opens"),
            campaign.unique_opens,
            _rate(campaign.unique_opens, reached),
            reached_label,
            measured.opens,
            "" if measured.opens else NOT_OPENS,
            campaign.machine_opens,
        ),
        Figure(
            "unique_clicks",
            _("Unique clicks"),
            campaign.unique_clicks,
            _rate(campaign.unique_clicks, reached),
            reached_label,
            measured.clicks,
            "" if measured.clicks else NOT_CLICKS,
            campaign.machine_clicks,
        ),
        Figure("bounced", _("Bounces"), campaign.bounced, _rate(campaign.bounced, sent), of_sent),
        Figure("complained", _("Complaints"), campaign.complained, _rate(campaign.complained, reached), reached_label),
        Figure(
            "unsubscribed",
            _("Unsubscribes"),
            campaign.unsubscribed,
            _rate(campaign.unsubscribed, reached),
            reached_label,
        ),
    ]


def top_links(campaign: Campaign, limit: int = 10) -> list[TopLink]:
    """The URLs people clicked most in a campaign (from click events; machines' left out,
    campaigns.bots), with total and unique clicks."""
    rows = (
        DeliveryEvent.objects.human()
        .filter(campaign=campaign, event_type=EventType.CLICKED)
        .exclude(url="")
        .values("url")
        .annotate(clicks=Count("pk"), unique_clicks=Count("delivery", distinct=True))
        .order_by("-clicks", "url")[:limit]
    )
    return [TopLink(r["url"], r["clicks"], r["unique_clicks"]) for r in rows]


def hourly_activity(campaign: Campaign, hours: int = REPORT_HOURS) -> list[HourBucket]:
    """People's open and click events per hour for the first ``hours`` hours after the campaign
    started (machines' left out, campaigns.bots).

    Buckets are whole clock hours (UTC), the first one being the hour the campaign started in;
    always ``hours`` buckets, zeros included. Empty when the campaign never started.
    """
    if not campaign.started_at:
        return []
    utc = datetime.UTC
    first = campaign.started_at.astimezone(utc).replace(minute=0, second=0, microsecond=0)
    rows = (
        DeliveryEvent.objects.human()
        .filter(
            campaign=campaign,
            event_type__in=[EventType.OPENED, EventType.CLICKED],
            timestamp__gte=first,
            timestamp__lt=first + datetime.timedelta(hours=hours),
        )
        .annotate(hour=TruncHour("timestamp", tzinfo=utc))
        .values("hour", "event_type")
        .annotate(n=Count("pk"))
    )
    opens, clicks = [0] * hours, [0] * hours
    for row in rows:
        index = int((row["hour"] - first).total_seconds() // 3600)
        target = opens if row["event_type"] == EventType.OPENED else clicks
        target[index] += row["n"]
    return [HourBucket(i, opens[i], clicks[i]) for i in range(hours)]


def campaign_report(campaign: Campaign) -> CampaignReport:
    """Everything the report page shows for one campaign."""
    return CampaignReport(
        report_figures(campaign),
        top_links(campaign),
        hourly_activity(campaign),
        tracking(campaign),
        language_figures(campaign),
        machine_figures(campaign),
    )


@dataclass(frozen=True)
class MachineFigures:
    """Opens and clicks no person made, for one of campaigns.bots' reasons."""

    reason: str
    label: str
    opens: int
    clicks: int


def machine_figures(campaign: Campaign) -> list[MachineFigures]:
    """Machine open and click events of a campaign per reason (campaigns.bots), most first."""
    rows = (
        DeliveryEvent.objects.machine()
        .filter(campaign=campaign, event_type__in=[EventType.OPENED, EventType.CLICKED])
        .values("machine_reason")
        .annotate(
            opens=Count("pk", filter=Q(event_type=EventType.OPENED)),
            clicks=Count("pk", filter=Q(event_type=EventType.CLICKED)),
        )
    )
    figures = [
        MachineFigures(row["machine_reason"], str(bots.REASONS.get(row["machine_reason"], row["machine_reason"])),
                       row["opens"], row["clicks"])
        for row in rows
    ]  # fmt: skip
    return sorted(figures, key=lambda figure: (-(figure.opens + figure.clicks), figure.reason))


@dataclass(frozen=True)
class LanguageFigures:
    """One language edition's share of a campaign (campaigns.editions)."""

    language: str
    name: str
    recipients: int
    sent: int
    opened: int
    clicked: int
    bounced: int
    unsubscribed: int


def language_figures(campaign: Campaign) -> list[LanguageFigures]:
    """Recipients, sent, unique opens and clicks, bounces and unsubscribes per language sent.

    None for a campaign without editions: every delivery went out in the issue's language, so
    there is nothing to break down (the report shows the panel for two languages or more), and
    its deliveries (a million, for a big list) are not read."""
    if not campaign.editions.exists():
        return []
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .values("language")
        .annotate(
            recipients=Count("pk"),
            sent=Count("pk", filter=Q(status=Delivery.Status.SENT)),
            opened=Count("pk", filter=Q(open_count__gt=0)),
            clicked=Count("pk", filter=Q(click_count__gt=0)),
            bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
            unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
        )
        .order_by("language")
    )
    return [LanguageFigures(name=_language_name(row["language"]), **row) for row in rows]


def _language_name(code: str) -> str:
    try:
        return translation.get_language_info(code)["name_local"]
    except KeyError:
        return code or "-"


# --- Subscriber growth -------------------------------------------------------------------------


def subscriber_growth(days: int = 90, today: datetime.date | None = None) -> list[tuple[datetime.date, int]]:
    """Confirmed subscriptions (all lists) at the end of each of the last ``days`` days, oldest first.

    A subscription counts from its confirmation (or consent, or creation, for imports that carry
    no confirmation time) until it is unsubscribed; pending subscriptions never count. Days are
    in the current time zone (the editor's, in the admin).
    """
    tz = timezone.get_current_timezone()
    today = today or timezone.localdate()
    first_day = today - datetime.timedelta(days=days - 1)
    window_start = datetime.datetime.combine(first_day, datetime.time.min, tzinfo=tz)

    counted = Subscription.objects.filter(
        Q(status=Subscription.Status.SUBSCRIBED)
        | Q(status=Subscription.Status.UNSUBSCRIBED, confirmed_at__isnull=False)
    ).annotate(started=Coalesce("confirmed_at", "consent_at", "created_at"))

    before = counted.filter(started__lt=window_start)
    total = before.count() - before.filter(unsubscribed_at__lt=window_start).count()

    joins = dict(
        counted.filter(started__gte=window_start)
        .annotate(day=TruncDate("started", tzinfo=tz))
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    leaves = dict(
        counted.filter(unsubscribed_at__gte=window_start)
        .annotate(day=TruncDate("unsubscribed_at", tzinfo=tz))
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    series = []
    for offset in range(days):
        day = first_day + datetime.timedelta(days=offset)
        total += joins.get(day, 0) - leaves.get(day, 0)
        series.append((day, total))
    return series
