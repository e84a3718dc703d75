"""A send rate shared by every worker: messages per second and per hour, per mailer.

Counts live in the database (SendWindow rows, one per mailer and window), so workers on any
number of machines draw from the same allowance without Redis. A worker reserves a chunk of
tokens per round trip (about half a second's worth), so the cost is one short transaction per
chunk, not per message.
"""

import math
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from campaigns.models import SendWindow


class Throttle:
    """``take(n)`` returns how many of ``n`` messages may go now (0 when the caller should stop)."""

    def __init__(self, mailer: str = "default", *, per_second=None, per_hour=None, clock=time.time, sleep=time.sleep):
        config = settings.BROADSHEET
        self.mailer = mailer
        self.per_second = config["SEND_RATE_PER_SECOND"] if per_second is None else per_second
        self.per_hour = config["SEND_RATE_PER_HOUR"] if per_hour is None else per_hour
        self.clock, self.sleep = clock, sleep
        self.max_wait = float(config["THROTTLE_MAX_WAIT_SECONDS"])
        self.allowance = 0
        self.resume_at: float | None = None

    @property
    def limited(self) -> bool:
        return bool(self.per_second or self.per_hour)

    def take(self, n: int) -> int:
        """Grant up to ``n`` (>= 1) messages, waiting at most ``max_wait`` seconds for a window.

        Returns 0 (and sets ``resume_at``, a Unix time) when the wait would be longer, e.g. the
        hourly allowance is spent: the batch should hand its rows back and run again later.
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

    def _chunk(self, n: int) -> int:
        chunk = n
        if self.per_second:
            chunk = min(chunk, max(1, math.ceil(self.per_second / 2)))
        return max(1, chunk)

    def _reserve(self, want: int) -> tuple[int, float]:
        """Reserve up to ``want`` in every configured window; (granted, seconds to wait if 0)."""
        now = self.clock()
        limits = [(1, self.per_second), (3600, self.per_hour)]
        limits = [(period, int(limit)) for period, limit in limits if limit]
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
                            SendWindow.objects.filter(mailer=self.mailer, period=period, window__lt=window - 1).delete()
                        row = SendWindow.objects.select_for_update().get(pk=row.pk)
                        rows.append((row, period, limit))
                    granted = want
                    wait = 0.0
                    for row, period, limit in rows:
                        free = max(limit - row.count, 0)
                        if free < granted:
                            granted = free
                            wait = max(wait, (row.window + 1) * period - now)
                    if granted:
                        for row, _period, _limit in rows:
                            SendWindow.objects.filter(pk=row.pk).update(count=F("count") + granted)
                    return granted, wait
            except IntegrityError:
                continue  # another worker created the window row first: read it again
        return 0, 1.0
