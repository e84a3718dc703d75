"""Segment rules: checked (hostile input is a message, never a query) and compiled to one condition
that the count and the snapshot share. Each rule type on SQLite; the JSON rules on PostgreSQL too."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from subscribers import segments
from subscribers.audience import Audience
from subscribers.models import Segment, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def rules(*items, match="all"):
    return {"match": match, "rules": list(items)}


def attr(name, op, value=None):
    rule = {"field": "attribute", "name": name, "op": op}
    if value is not None:
        rule["value"] = value
    return rule


@pytest.fixture
def news():
    return MailingListFactory(slug="news")


@pytest.fixture
def reader(news):
    """``reader("ann", city="Leeds")``: a confirmed subscriber of news with those attributes."""

    def make(local, *, language="en", created_at=None, **attributes):
        subscriber = SubscriberFactory(email=f"{local}@example.com", attributes=attributes, language=language)
        if created_at is not None:
            type(subscriber).objects.filter(pk=subscriber.pk).update(created_at=created_at)
        SubscriptionFactory(subscriber=subscriber, list=news)
        return subscriber

    return make


def matching(news, segment_rules) -> list[str]:
    """Who the rules match on news, by local part; asserting the count agrees with the rows."""
    audience = Audience([news], segment_rules)
    found = sorted(s.email.split("@")[0] for s in audience.subscribers())
    assert audience.count() == len(found)
    return found


def json_rules_cases():
    return [
        (rules(attr("city", "equals", "Leeds")), ["ann"]),
        (rules(attr("city", "not_equals", "Leeds")), ["bob", "cat", "dan"]),
        (rules(attr("city", "contains", "ee")), ["ann"]),
        (rules(attr("city", "contains", "LEE")), ["ann"]),
        (rules(attr("city", "not_contains", "ee")), ["bob", "cat", "dan"]),
        (rules(attr("city", "is_set")), ["ann", "bob"]),
        (rules(attr("city", "is_not_set")), ["cat", "dan"]),
        (rules(attr("age", "gt", "30")), ["ann"]),
        (rules(attr("age", "gte", 30)), ["ann", "bob", "dan"]),
        (rules(attr("age", "lt", "30.5")), ["bob", "dan"]),
        (rules(attr("age", "lte", "-1")), []),
        # One level of nesting, any/all.
        (rules(attr("city", "equals", "Leeds"), rules(attr("age", "gt", 40), attr("plan", "is_set"), match="any")),
         ["ann"]),
        (rules(attr("city", "equals", "York"), attr("plan", "equals", "pro"), match="any"), ["bob", "cat"]),
    ]  # fmt: skip


def make_attribute_readers(reader):
    reader("ann", city="Leeds", age="41")
    reader("bob", city="York", age="30", plan="pro")
    # Text that is no number, an empty value, a number beyond both databases' casts.
    reader("cat", age="n/a", plan="pro", city="")
    reader("dan", age="30", note="9" * 400)


@pytest.mark.parametrize(("segment_rules", "expected"), json_rules_cases())
def test_attribute_rules(news, reader, segment_rules, expected):
    make_attribute_readers(reader)
    assert matching(news, segment_rules) == expected


@pytest.mark.services
@pytest.mark.parametrize(("segment_rules", "expected"), json_rules_cases())
def test_attribute_rules_on_postgresql(postgresql, segment_rules, expected):
    """PostgreSQL compiles equals and is set to the GIN-indexed operators (@>, ?): the same people."""
    news = MailingListFactory(slug="news")

    def make(local, **attributes):
        subscriber = SubscriberFactory(email=f"{local}@example.com", attributes=attributes)
        SubscriptionFactory(subscriber=subscriber, list=news)

    make_attribute_readers(make)
    assert matching(news, segment_rules) == expected


@pytest.mark.services  # and again on PostgreSQL by make test-services (issue 11: each rule type on both)
def test_number_rules_skip_values_that_are_no_numbers_without_error(news, reader):
    """JSON numbers from older data compare as numbers; text that is no number never matches."""
    reader("ann", age="7")
    reader("bob", age="seven")
    reader("cat", age="1e400")
    reader("dan", age="9" * 40)
    assert matching(news, rules(attr("age", "gt", 1))) == ["ann"]
    assert matching(news, rules(attr("age", "lt", "999999999999999"))) == ["ann"]


@pytest.mark.services  # and again on PostgreSQL by make test-services (issue 11: each rule type on both)
def test_list_language_and_subscribed_rules(news, reader):
    sport = MailingListFactory(slug="sport")
    ann = reader("ann", created_at=timezone.make_aware(datetime.datetime(2025, 12, 31, 23, 59)))
    bob = reader("bob", language="zh-hans", created_at=timezone.make_aware(datetime.datetime(2026, 1, 1)))
    SubscriptionFactory(subscriber=ann, list=sport)
    SubscriptionFactory(subscriber=bob, list=sport, status=Subscription.Status.PENDING)

    assert matching(news, rules({"field": "list", "op": "is_on", "value": sport.pk})) == ["ann"]
    assert matching(news, rules({"field": "list", "op": "is_not_on", "value": sport.pk})) == ["bob"]
    assert matching(news, rules({"field": "language", "op": "is", "value": "zh-hans"})) == ["bob"]
    assert matching(news, rules({"field": "language", "op": "is_not", "value": "zh-hans"})) == ["ann"]
    assert matching(news, rules({"field": "subscribed", "op": "before", "value": "2026-01-01"})) == ["ann"]
    assert matching(news, rules({"field": "subscribed", "op": "since", "value": "2026-01-01"})) == ["bob"]


@pytest.mark.services  # and again on PostgreSQL by make test-services (issue 11: each rule type on both)
def test_signup_source_and_email_rules(news, reader):
    reader("ann")
    bob = reader("bob")
    Subscription.objects.filter(subscriber=bob).update(consent_source=Subscription.Source.IMPORT)
    SubscriberFactory(email="zed@gmail.com")
    assert matching(news, rules({"field": "source", "op": "is", "value": "import"})) == ["bob"]
    assert matching(news, rules({"field": "source", "op": "is_not", "value": "import"})) == ["ann"]
    assert matching(news, rules({"field": "email", "op": "contains", "value": "ANN@"})) == ["ann"]
    assert matching(news, rules({"field": "email", "op": "ends_with", "value": "@example.com"})) == ["ann", "bob"]


def test_a_saved_segment_narrows_the_lists_audience(news, reader):
    reader("ann", city="Leeds")
    reader("bob", city="York")
    segment = Segment.objects.create(name="Leeds", slug="leeds", rules=rules(attr("city", "equals", "Leeds")))
    assert [s.email for s in Audience([news], segment).subscribers()] == ["ann@example.com"]
    assert Audience([news]).count() == 2
    assert "segment=leeds" in repr(Audience([news], segment))


def test_no_rules_match_everyone_on_the_lists(news, reader):
    reader("ann")
    assert matching(news, rules()) == ["ann"]


# --- Hostile input: a message, never an exception of another kind ----------------------------------

HOSTILE = [
    None,
    [],
    "all",
    {"match": "some", "rules": []},
    {"match": "all", "rules": "x"},
    rules("not a rule"),
    rules({"field": "password", "op": "equals", "value": "x"}),
    rules({"field": ["attribute"], "op": "equals", "value": "x"}),
    rules(attr("city", "like", "x")),
    rules(attr("city", "equals")),
    rules(attr("city", "equals", "   ")),
    rules(attr("city", "equals", ["Leeds"])),
    rules(attr("city", "equals", "line\nbreak")),
    rules(attr("city", "equals", "\x00")),
    rules(attr("city", "equals", "x" * 501)),
    rules(attr("city'; DROP TABLE subscribers_subscriber; --", "equals", "x")),
    rules(attr("a" * 51, "equals", "x")),
    rules(attr("", "is_set")),
    rules(attr(None, "is_set")),
    rules(attr("1city", "is_set")),
    rules(attr("age", "gt", "ten")),
    rules(attr("age", "gt", "1e5")),
    rules(attr("age", "gt", "9" * 16)),
    rules(attr("age", "gt", True)),
    rules(attr("age", "gt", float("nan"))),
    rules({"field": "list", "op": "is_on", "value": 2**63}),
    rules({"field": "list", "op": "is_on", "value": "1; --"}),
    rules({"field": "list", "op": "is_on", "value": -1}),
    rules({"field": "subscribed", "op": "before", "value": "2026-02-30"}),
    rules({"field": "subscribed", "op": "before", "value": "yesterday"}),
    rules({"field": "language", "op": "is", "value": "klingon"}),
    rules({"field": "source", "op": "is", "value": "magic"}),
    rules({"field": "opened", "op": "any_of_last", "value": 0}),
    rules({"field": "opened", "op": "any_of_last", "value": 101}),
    rules({"field": "received", "op": "at_least", "value": "many"}),
    rules(rules(rules(attr("city", "is_set")))),
    rules(rules()),
    rules(*[attr("city", "is_set")] * 31),
    rules(*[rules(*[attr("city", "is_set")] * 10)] * 4),
]


@pytest.mark.parametrize("data", HOSTILE)
def test_hostile_rules_are_refused_with_a_message(data):
    with pytest.raises(ValidationError) as raised:
        segments.parse_rules(data)
    assert all(message.strip() for message in raised.value.messages)


def test_messages_name_the_rule_and_the_group():
    bad = rules(attr("city", "is_set"), attr("age", "gt", "x"), rules(attr("city", "is_set"), {"field": "nope"}))
    with pytest.raises(ValidationError) as raised:
        segments.parse_rules(bad)
    assert raised.value.messages == [
        "Rule 2: enter a number, e.g. 42 or -3.5.",
        "Group 3, rule 2: choose what the rule looks at.",
    ]


def test_values_are_parameters_never_sql(news, reader):
    reader("ann", city="x' OR '1'='1")
    reader("bob", city="York")
    hostile = "x' OR '1'='1"
    assert matching(news, rules(attr("city", "equals", hostile))) == ["ann"]
    assert matching(news, rules(attr("city", "contains", "%"))) == []
    assert matching(news, rules(attr("city", "contains", "_"))) == []


def test_checked_rules_are_normalised():
    assert segments.parse_rules(
        rules(attr("Member since", "gte", " 2020 "), {"field": "opened", "op": "any_of_last", "value": "5"})
    ) == rules(
        {"field": "attribute", "op": "gte", "name": "member_since", "value": "2020"},
        {"field": "opened", "op": "any_of_last", "value": 5},
    )


def test_stored_rules_that_no_longer_check_match_nobody(news, reader, caplog):
    """Rules saved by other means than the admin form (a shell, a fixture) never send to the wrong
    people and never crash a count: they match nobody, and the error is logged."""
    reader("ann", city="Leeds")
    broken = Segment.objects.create(name="Broken", slug="broken", rules=rules(attr("city", "gt", "not a number")))
    assert Audience([news], broken).count() == 0
    assert "matches nobody" in caplog.text


def test_rules_in_words_name_lists_and_nest_groups(news):
    described = segments.describe(
        rules(
            attr("city", "equals", "Leeds"),
            rules({"field": "list", "op": "is_on", "value": news.pk}, {"field": "opened", "op": "never"}, match="any"),
        )
    )
    assert (
        described
        == f"Attribute city equals “Leeds” and (List is subscribed to {news.name} or Opened never (no campaign))"
    )
    assert segments.describe({"match": "nope"}) == "rules that do not check (they match nobody)"
