"""A send rate shared by every worker: messages per second, per hour and per day, per mailer.

Counts live in the database (SendWindow rows, one per mailer and window), so workers on any
number of machines draw from the same allowance without Redis. A worker reserves a chunk of
tokens per round trip (about half a second's worth), so the cost is one short transaction per
chunk, not per message.

The daily limit is a rolling 24 hours, as Gmail, QQ and 163 count it, not a calendar day: it is
the sum of the hourly windows of the last 24 hours plus the current one (so it over-counts by up
to an hour, never under-counts). A campaign larger than a day's quota therefore spreads over as
many days as it needs: when the allowance is spent, ``take()`` answers 0 with ``resume_at`` and
``blocked_until()`` tells the engine when to come back, so no task runs before then.
"""

import datetime
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from campaigns.models import SendWindow

SECOND, HOUR, DAY = 1, 3600, 86400
# Hourly windows kept for the rolling day: the current one and the 24 before it.
DAY_WINDOWS = 25

_LEGACY_SETTINGS = {
    "per_second": "SEND_RATE_PER_SECOND",
    "per_hour": "SEND_RATE_PER_HOUR",
    "per_day": "SEND_RATE_PER_DAY",
}


def mailer_limits(mailer: str = "default") -> dict[str, float]:
    """{"per_second", "per_hour", "per_day"} for ``settings.MAILERS[mailer]`` (0 = unlimited).

    From the mailer's LIMITS (its URL's query, newsletter_site.config.mailers_from_env); for the
    default mailer the SEND_RATE_PER_* settings fill in a limit its URL leaves at 0.
    """
    limits = dict((settings.MAILERS.get(mailer) or {}).get("LIMITS") or {})
    result = {}
    for key, setting in _LEGACY_SETTINGS.items():
        value = float(limits.get(key) or 0)
        if not value and mailer == "default":
            value = float(settings.BROADSHEET.get(setting) or 0)
        result[key] = value
    return result


class Throttle:
    """``take(n)`` returns how many of ``n`` messages may go now (0 when the caller should stop)."""

    def __init__(
        self,
        mailer: str = "default",
        *,
        per_second=None,
        per_hour=None,
        per_day=None,
        clock=time.time,
        sleep=time.sleep,
    ):
        limits = mailer_limits(mailer)
        self.mailer = mailer
        self.per_second = limits["per_second"] if per_second is None else per_second
        self.per_hour = limits["per_hour"] if per_hour is None else per_hour
        self.per_day = limits["per_day"] if per_day is None else per_day
        self.clock, self.sleep = clock, sleep
        self.max_wait = float(settings.BROADSHEET["THROTTLE_MAX_WAIT_SECONDS"])
        self.allowance = 0
        self.resume_at: float | None = None

    @property
    def limited(self) -> bool:
        return bool(self.per_second or self.per_hour or self.per_day)

    def take(self, n: int) -> int:
        """Grant up to ``n`` (>= 1) messages, waiting at most ``max_wait`` seconds for a window.

        Returns 0 (and sets ``resume_at``, a Unix time) when the wait would be longer, e.g. the
        hourly or daily allowance is spent: the batch should hand its rows back and run again later.
        """
        if not self.limited:
            return n
        if not self.allowance:
            waited = 0.0
            while True:
                granted, wait = self._reserve(self._chunk(n))
                if granted:
                    self.allowance = granted
                    break
                if waited + wait > self.max_wait:
                    self.resume_at = self.clock() + wait
                    return 0
                self.sleep(wait)
                waited += wait
        granted = min(n, self.allowance)
        self.allowance -= granted
        return granted

    def blocked_until(self) -> float | None:
        """The Unix time before which no message may go (hour or day spent), else None.

        A read without locks, for the engine to decide not to claim rows (and when to come back)
        before it starts a batch that would only hand them back.
        """
        if not (self.per_hour or self.per_day):
            return None
        now = self.clock()
        hour = int(now // HOUR)
        counts = _day_counts(self.mailer, hour)
        until = None
        if self.per_hour and counts.get(hour, 0) >= self.per_hour:
            until = (hour + 1) * HOUR
        if self.per_day:
            free_at = _day_free_at(counts, hour, int(self.per_day))
            if free_at is not None:
                until = max(until or 0, free_at)
        return until if until and until > now else None

    def _chunk(self, n: int) -> int:
        chunk = n
        if self.per_second:
            chunk = min(chunk, max(1, math.ceil(self.per_second / 2)))
        return max(1, chunk)

    def _reserve(self, want: int) -> tuple[int, float]:
        """Reserve up to ``want`` in every configured window; (granted, seconds to wait if 0)."""
        now = self.clock()
        limits = [(SECOND, self.per_second), (HOUR, self.per_hour)]
        limits = [(period, int(limit)) for period, limit in limits if limit]
        if self.per_day and not self.per_hour:
            limits.append((HOUR, 0))  # counted for the rolling day, no hourly limit of its own
        for _ in range(3):
            try:
                with transaction.atomic():
                    rows = []
                    for period, limit in limits:
                        window = int(now // period)
                        row, created = SendWindow.objects.get_or_create(
                            mailer=self.mailer, period=period, window=window
                        )
                        if created:
                            keep = DAY_WINDOWS if period == HOUR else 2
                            SendWindow.objects.filter(
                                mailer=self.mailer, period=period, window__lte=window - keep
                            ).delete()
                        row = SendWindow.objects.select_for_update().get(pk=row.pk)
                        rows.append((row, period, limit))
                    granted = want
                    wait = 0.0
                    for row, period, limit in rows:
                        if not limit:
                            continue
                        free = max(limit - row.count, 0)
                        if free < granted:
                            granted = free
                            wait = max(wait, (row.window + 1) * period - now)
                    if self.per_day:
                        # Under the current hour's row lock: every worker takes it to reserve.
                        hour_row = next(row for row, period, _limit in rows if period == HOUR)
                        counts = _day_counts(self.mailer, hour_row.window)
                        free = max(int(self.per_day) - sum(counts.values()), 0)
                        if free < granted:
                            granted = free
                            free_at = _day_free_at(counts, hour_row.window, int(self.per_day))
                            wait = max(wait, (free_at or now + 1) - now)
                    if granted:
                        for row, _period, _limit in rows:
                            SendWindow.objects.filter(pk=row.pk).update(count=F("count") + granted)
                    return granted, wait
            except IntegrityError:
                continue  # another worker created the window row first: read it again
        return 0, 1.0


def _day_counts(mailer: str, hour: int) -> dict[int, int]:
    """{hourly window: messages} of ``mailer``'s rolling day ending in the window ``hour`` (a read, no lock)."""
    return dict(
        SendWindow.objects.filter(
            mailer=mailer, period=HOUR, window__gt=hour - DAY_WINDOWS, window__lte=hour
        ).values_list("window", "count")
    )


@dataclass(frozen=True)
class Usage:
    """What ``mailer`` has sent against its limits (counted only while it has an hourly or daily limit)."""

    counted: bool
    this_hour: int
    last_day: int
    remaining_today: int | None  # None: no daily limit
    blocked_until: datetime.datetime | None  # the hour's or the day's allowance is spent until then


def usage(mailer: str = "default", *, clock=time.time) -> Usage:
    """``mailer``'s use of its hourly and rolling-day allowance now (the admin's mailer overview).

    Messages are counted in SendWindow rows only for mailers with a per-hour or per-day limit;
    for the others ``counted`` is False and the figures are 0.
    """
    throttle = Throttle(mailer, clock=clock)
    hour = int(clock() // HOUR)
    counts = _day_counts(mailer, hour) if throttle.per_hour or throttle.per_day else {}
    last_day = sum(counts.values())
    until = throttle.blocked_until()
    return Usage(
        counted=bool(throttle.per_hour or throttle.per_day),
        this_hour=counts.get(hour, 0),
        last_day=last_day,
        remaining_today=max(int(throttle.per_day) - last_day, 0) if throttle.per_day else None,
        blocked_until=datetime.datetime.fromtimestamp(until, tz=datetime.UTC) if until else None,
    )


def _day_free_at(counts: dict[int, int], hour: int, per_day: int) -> float | None:
    """When the rolling day has room again (Unix time), or None when it has room now.

    ``counts`` maps hourly windows (Unix time // 3600) to messages sent in them; a window stops
    counting when it is DAY_WINDOWS hours old.
    """
    used = sum(count for window, count in counts.items() if hour - DAY_WINDOWS < window <= hour)
    if used < per_day:
        return None
    for window in sorted(counts):
        if window <= hour - DAY_WINDOWS:
            continue
        used -= counts[window]
        if used < per_day:
            return float((window + DAY_WINDOWS) * HOUR)
    return float((hour + DAY_WINDOWS) * HOUR)  # pragma: no cover - the loop always finds room


def expected_finish(remaining: int, mailer: str = "default", *, now: datetime.datetime | None = None):
    """When ``remaining`` messages will have gone through ``mailer`` at its limits (an estimate).

    None when the mailer has no limits (the finish then depends on the workers, not on a quota).
    The per-day limit dominates large campaigns: full days at ``per_day``, the rest at the
    hourly or per-second rate. The allowance already used in the current day is taken into
    account.
    """
    limits = mailer_limits(mailer)
    if not any(limits.values()) or remaining <= 0:
        return None
    now = now or datetime.datetime.now(tz=datetime.UTC)
    rates = [limit / period for limit, period in ((limits["per_second"], SECOND), (limits["per_hour"], HOUR)) if limit]
    rate = min(rates) if rates else None  # messages per second within a day

    def duration(count: int) -> float:
        return count / rate if rate else 0.0

    per_day = int(limits["per_day"])
    if per_day:
        used = sum(_day_counts(mailer, int(now.timestamp() // HOUR)).values())
        today = max(per_day - used, 0)
        if remaining > today:
            # What today allows now; then a day's quota each time the rolling day frees it.
            days = math.ceil((remaining - today) / per_day)
            last = remaining - today - (days - 1) * per_day
            return now + datetime.timedelta(seconds=days * DAY + duration(last))
    return now + datetime.timedelta(seconds=duration(remaining))
