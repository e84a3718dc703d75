"""CSV export: formula injection escaped, streamed, filtered by status."""

import csv
import io
import types

import pytest
from django.core.management import call_command

from subscribers.exporting import escape_cell, export_list, export_subscribers
from subscribers.models import Subscriber, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        (None, ""),
    ],
)
def test_cells_a_spreadsheet_would_run_are_escaped(value, expected):
    assert escape_cell(value) == expected


def parse(lines):
    return list(csv.DictReader(io.StringIO("".join(lines))))


def test_list_export_escapes_formulas_in_names():
    sub = SubscriptionFactory(subscriber__name='=cmd|"/c calc"!A1', list__slug="news")

    rows = parse(export_list(sub.list))

    assert rows[0]["name"] == '\'=cmd|"/c calc"!A1'
    assert rows[0]["email"] == sub.subscriber.email
    assert rows[0]["status"] == "subscribed"


def test_list_export_is_a_generator_of_lines():
    sub = SubscriptionFactory()

    lines = export_list(sub.list)

    assert isinstance(lines, types.GeneratorType)
    assert next(lines).startswith("email,name,")


def test_list_export_filters_by_status():
    news = MailingListFactory(slug="news")
    SubscriptionFactory(list=news, subscriber__email="in@example.com")
    SubscriptionFactory(list=news, subscriber__email="out@example.com", status=Subscription.Status.UNSUBSCRIBED)

    rows = parse(export_list(news, ["subscribed"]))

    assert [r["email"] for r in rows] == ["in@example.com"]


def test_subscriber_export_lists_subscribed_lists():
    sub = SubscriptionFactory(list__slug="news", subscriber__attributes={"city": "Leeds"})
    SubscriptionFactory(subscriber=sub.subscriber, list__slug="old", status=Subscription.Status.UNSUBSCRIBED)

    rows = parse(export_subscribers(Subscriber.objects.all()))

    assert rows[0]["subscribed_lists"] == "news"
    assert rows[0]["attributes"] == '{"city": "Leeds"}'


def test_export_command_writes_a_file(tmp_path):
    SubscriptionFactory(list__slug="news", subscriber__email="ann@example.com", subscriber__name="@ann")
    path = tmp_path / "out.csv"

    call_command("export_subscribers", "--list", "news", "-o", str(path))

    rows = list(csv.DictReader(path.open(newline="")))
    assert rows[0]["email"] == "ann@example.com" and rows[0]["name"] == "'@ann"
