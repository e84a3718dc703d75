"""Streamed CSV export of subscribers, safe to open in a spreadsheet.

Rows come from ``.iterator(chunk_size=...)`` and are written one at a time, so a list of a
million subscribers costs the same memory as a list of ten. Cells that a spreadsheet would read
as a formula are prefixed with a single quote (OWASP "CSV injection").
"""

import csv
import json
from collections.abc import Iterable, Iterator

from django.db.models import Prefetch, QuerySet

from subscribers.models import Subscriber, Subscription

CHUNK_SIZE = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

SUBSCRIPTION_HEADER = [
    "email", "name", "language", "state", "list", "status", "consent_at", "consent_source", "consent_detail",
    "confirmed_at", "unsubscribed_at", "unsubscribe_method", "created_at", "attributes",
]  # fmt: skip
SUBSCRIBER_HEADER = ["email", "name", "language", "state", "created_at", "subscribed_lists", "attributes"]


def escape_cell(value) -> str:
    """The cell as text, with a leading quote when a spreadsheet would run it as a formula."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose write() returns the line, for csv.writer in a generator."""

    def write(self, value):
        return value


def csv_lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """CSV text, one line at a time, every cell escaped."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([escape_cell(cell) for cell in row])


def _attributes(subscriber: Subscriber) -> str:
    return json.dumps(subscriber.attributes, ensure_ascii=False, sort_keys=True) if subscriber.attributes else ""


def subscription_rows(subscriptions: QuerySet) -> Iterator[list]:
    """One row per subscription (e.g. one list's members), with its consent record."""
    for s in subscriptions.select_related("subscriber", "list").order_by("pk").iterator(chunk_size=CHUNK_SIZE):
        sub = s.subscriber
        yield [
            sub.email, sub.name, sub.language, sub.state, s.list.slug, s.status, s.consent_at, s.consent_source,
            s.consent_detail, s.confirmed_at, s.unsubscribed_at, s.unsubscribe_method, s.created_at,
            _attributes(sub),
        ]  # fmt: skip


def subscriber_rows(subscribers: QuerySet) -> Iterator[list]:
    """One row per subscriber (e.g. a filtered admin listing), with the lists they are subscribed to."""
    subscribed = Prefetch(
        "subscriptions",
        queryset=Subscription.objects.subscribed().select_related("list").order_by("list__slug"),
        to_attr="subscribed",
    )
    for sub in subscribers.order_by("pk").prefetch_related(subscribed).iterator(chunk_size=CHUNK_SIZE):
        lists = " ".join(s.list.slug for s in sub.subscribed)
        yield [sub.email, sub.name, sub.language, sub.state, sub.created_at, lists, _attributes(sub)]


def export_list(mailing_list, statuses: Iterable[str] = ()) -> Iterator[str]:
    """CSV lines of a list's subscriptions, optionally only those with one of ``statuses``."""
    subscriptions = Subscription.objects.filter(list=mailing_list)
    if statuses:
        subscriptions = subscriptions.filter(status__in=list(statuses))
    return csv_lines(SUBSCRIPTION_HEADER, subscription_rows(subscriptions))


def export_subscribers(subscribers: QuerySet) -> Iterator[str]:
    """CSV lines of any subscriber queryset."""
    return csv_lines(SUBSCRIBER_HEADER, subscriber_rows(subscribers))
