"""Segments: rules an editor builds in the admin, checked here and compiled to one condition.

A segment's ``rules`` are JSON (``Segment.rules``)::

    {"match": "all", "rules": [
        {"field": "attribute", "name": "city", "op": "equals", "value": "Leeds"},
        {"field": "list", "op": "is_on", "value": 3},
        {"match": "any", "rules": [                       # one level of nesting, no deeper
            {"field": "opened", "op": "any_of_last", "value": 5},
            {"field": "subscribed", "op": "since", "value": "2026-01-01"}]}]}

``parse_rules`` checks anything from outside (the builder posts it) and returns it normalised, or
raises ``ValidationError`` naming each bad rule: a field, operator or value it does not know is a
form error, never a query. ``condition`` compiles checked rules to ONE ``Q`` over ``Subscriber``
(ORM JSON lookups on ``attributes``, ``Exists`` subqueries for lists and engagement): the same code
on SQLite and PostgreSQL, every value a query parameter, never SQL text, so the snapshot stays a
single ``INSERT ... SELECT`` (``subscribers.audience.Audience``).

Engagement rules (opened, clicked, received) read the campaigns' ledger, an app above this one:
``CampaignsConfig.ready()`` installs ``campaigns.engagement`` here (``install_engagement``), the
way it installs its task queue in ``campaigns.background``. docs/segments.md describes the rules
for editors.
"""

import datetime
import re
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection
from django.db.models import Case, Exists, FloatField, OuterRef, Q, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    LessThan,
    LessThanOrEqual,
    Regex,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from subscribers import attributes
from subscribers.models import MAX_ID, MailingList, Subscription

ALL, ANY = "all", "any"
MATCHES = {ALL: gettext_lazy("all"), ANY: gettext_lazy("any")}
# Rules in a segment, groups included, counted at every level.
MAX_RULES = 30
# "Opened any of the last N campaigns": N at most this.
MAX_RECENT = 100
# "Received at least N": N at most this.
MAX_RECEIVED = 100_000
# A number an attribute holds: what both databases cast without error or overflow. Anything else
# ("n/a", "1,5", 400 digits) is no number, so a comparison does not match it (and never crashes).
NUMBER = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"
NUMBER_PATTERN = re.compile(NUMBER)


# --- Engagement: installed by the campaigns app --------------------------------------------------


class Engagement(Protocol):
    """Conditions on Subscriber that read the ledger (``campaigns.engagement`` implements them)."""

    def opened(self, last: int | None) -> Q: ...

    def clicked(self, last: int | None) -> Q: ...

    def received(self) -> object: ...


_engagement: Engagement | None = None


def install_engagement(source: Engagement) -> None:
    """Make ``source`` answer engagement rules (``CampaignsConfig.ready()`` installs campaigns.engagement)."""
    global _engagement
    _engagement = source


def _engagement_source() -> Engagement:
    if _engagement is None:
        raise ImproperlyConfigured("No engagement source installed: CampaignsConfig.ready() installs it.")
    return _engagement


# --- What a rule may say --------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    label: str
    value: str  # the kind of value: text, number, count, date, list, language, source, or "" (none)


@dataclass(frozen=True)
class Field:
    label: str
    operators: dict[str, Operator]
    named: bool = False  # an attribute rule also names the attribute


def _count_ops(*names) -> dict[str, Operator]:
    labels = {
        "any_of_last": gettext_lazy("any of the last N campaigns"),
        "none_of_last": gettext_lazy("none of the last N campaigns"),
        "ever": gettext_lazy("any campaign, ever"),
        "never": gettext_lazy("never (no campaign)"),
    }
    return {name: Operator(labels[name], "" if name in ("ever", "never") else "recent") for name in names}


def _is_ops(kind: str) -> dict[str, Operator]:
    """ "is" / "is not" one of the choices of ``kind`` (schema()["choices"])."""
    return {"is": Operator(gettext_lazy("is"), kind), "is_not": Operator(gettext_lazy("is not"), kind)}


FIELDS: dict[str, Field] = {
    "attribute": Field(
        gettext_lazy("Attribute"),
        {
            "equals": Operator(gettext_lazy("equals"), "text"),
            "not_equals": Operator(gettext_lazy("does not equal"), "text"),
            "contains": Operator(gettext_lazy("contains"), "text"),
            "not_contains": Operator(gettext_lazy("does not contain"), "text"),
            "is_set": Operator(gettext_lazy("is set"), ""),
            "is_not_set": Operator(gettext_lazy("is not set"), ""),
            "gt": Operator(gettext_lazy("is a number greater than"), "number"),
            "gte": Operator(gettext_lazy("is a number at least"), "number"),
            "lt": Operator(gettext_lazy("is a number less than"), "number"),
            "lte": Operator(gettext_lazy("is a number at most"), "number"),
        },
        named=True,
    ),
    "email": Field(
        gettext_lazy("Email address"),
        {
            "contains": Operator(gettext_lazy("contains"), "text"),
            "ends_with": Operator(gettext_lazy("ends with"), "text"),
        },
    ),
    "list": Field(
        gettext_lazy("List"),
        {
            "is_on": Operator(gettext_lazy("is subscribed to"), "list"),
            "is_not_on": Operator(gettext_lazy("is not subscribed to"), "list"),
        },
    ),
    "subscribed": Field(
        gettext_lazy("Subscribed"),
        {
            "before": Operator(gettext_lazy("before"), "date"),
            "since": Operator(gettext_lazy("on or after"), "date"),
        },
    ),
    "language": Field(gettext_lazy("Language"), _is_ops("language")),
    "source": Field(gettext_lazy("Signed up through"), _is_ops("source")),
    "opened": Field(gettext_lazy("Opened"), _count_ops("any_of_last", "none_of_last", "ever", "never")),
    "clicked": Field(gettext_lazy("Clicked"), _count_ops("any_of_last", "none_of_last", "ever", "never")),
    "received": Field(
        gettext_lazy("Received"),
        {
            "at_least": Operator(gettext_lazy("at least N campaigns"), "count"),
            "fewer_than": Operator(gettext_lazy("fewer than N campaigns"), "count"),
        },
    ),
}


def schema() -> dict:
    """Fields, operators and value kinds with their labels in the current language, for the builder."""
    return {
        "matches": {key: str(label) for key, label in MATCHES.items()},
        "fields": {
            key: {
                "label": str(field.label),
                "named": field.named,
                "operators": {
                    name: {"label": str(op.label), "value": op.value} for name, op in field.operators.items()
                },
            }
            for key, field in FIELDS.items()
        },
        "choices": {
            "language": [[code, str(name)] for code, name in settings.LANGUAGES],
            "source": [[value, str(label)] for value, label in Subscription.Source.choices],
        },
        "limits": {"rules": MAX_RULES, "recent": MAX_RECENT, "received": MAX_RECEIVED},
    }


# --- Checking ---------------------------------------------------------------------------------------


def parse_rules(data) -> dict:
    """``data`` (decoded JSON from anywhere) as checked, normalised rules; raises ValidationError
    with one message per problem, each naming its rule ("Rule 2", "Group 1, rule 3")."""
    errors: list[str] = []
    parsed = _parse_group(data, errors)
    if isinstance(data, dict) and isinstance(data.get("rules"), list) and _count(data) > MAX_RULES:
        errors.append(_("At most %(max)s rules in a segment.") % {"max": MAX_RULES})
    if errors:
        raise ValidationError(errors)
    return parsed


def _count(group: dict) -> int:
    """Rules in ``group`` at every level (before checking: anything nested counts once)."""
    rules = group.get("rules")
    if not isinstance(rules, list):
        return 1
    return sum(_count(item) if isinstance(item, dict) and "match" in item else 1 for item in rules[: MAX_RULES + 1])


def _parse_group(data, errors: list[str], *, group: int | None = None) -> dict | None:
    """One group (the segment itself when ``group`` is None, else its ``group``-th item)."""
    where = "" if group is None else _("Group %(number)s: ") % {"number": group}
    if not isinstance(data, dict) or data.get("match") not in MATCHES or not isinstance(data.get("rules"), list):
        errors.append(where + _("not a group of rules (match all or any, and a list of rules)."))
        return None
    rules = []
    for index, item in enumerate(data["rules"][: MAX_RULES + 1], start=1):
        if isinstance(item, dict) and "match" in item:
            if group is not None:
                errors.append(where + _("groups cannot be nested more than one level."))
                continue
            inner = _parse_group(item, errors, group=index)
            if inner is not None and not inner["rules"]:
                errors.append(_("Group %(number)s: add a rule to it or remove it.") % {"number": index})
            elif inner is not None:
                rules.append(inner)
            continue
        try:
            rules.append(_parse_rule(item))
        except ValidationError as error:
            if group is None:
                label = _("Rule %(number)s") % {"number": index}
            else:
                label = _("Group %(group)s, rule %(number)s") % {"group": group, "number": index}
            errors.extend(
                _("%(rule)s: %(problem)s") % {"rule": label, "problem": problem} for problem in error.messages
            )
    return {"match": data["match"], "rules": rules}


def _parse_rule(item) -> dict:
    if not isinstance(item, dict):
        raise ValidationError(_("not a rule."))
    field = FIELDS.get(item.get("field")) if isinstance(item.get("field"), str) else None
    if field is None:
        raise ValidationError(_("choose what the rule looks at."))
    op_name = item.get("op")
    operator = field.operators.get(op_name) if isinstance(op_name, str) else None
    if operator is None:
        raise ValidationError(_("choose how it compares."))
    rule = {"field": item["field"], "op": op_name}
    if field.named:
        rule["name"] = _attribute_name(item.get("name"))
    if operator.value:
        rule["value"] = VALUE_PARSERS[operator.value](item.get("value"))
    return rule


def _attribute_name(value) -> str:
    name = attributes.normalise_name(value) if isinstance(value, str) else ""
    if not name:
        raise ValidationError(_("name the attribute."))
    attributes.check_name(name)
    return name


def _text(value) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError(_("enter a value."))
    attributes.check_value(_("the rule"), text)
    return text


def _number(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    text = value.strip() if isinstance(value, str) else ""
    if not NUMBER_PATTERN.fullmatch(text):
        raise ValidationError(_("enter a number, e.g. 42 or -3.5."))
    return text


def _positive(value, maximum: int) -> int:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 10:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(_("enter a whole number from 1 to %(max)s.") % {"max": f"{maximum:,}"})
    return value


def _count_value(value) -> int:
    return _positive(value, MAX_RECEIVED)


def _recent(value) -> int:
    return _positive(value, MAX_RECENT)


def _date(value) -> str:
    try:
        if not isinstance(value, str) or len(value.strip()) != 10:
            raise ValueError
        return datetime.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValidationError(_("enter a date as YYYY-MM-DD.")) from None


def _list(value) -> int:
    return _positive(value, MAX_ID)


def _choice(choices):
    def parse(value):
        if value not in choices:
            raise ValidationError(_("choose one of the offered values."))
        return value

    return parse


VALUE_PARSERS = {
    "text": _text,
    "number": _number,
    "count": _count_value,
    "recent": _recent,
    "date": _date,
    "list": _list,
    "language": lambda value: _choice(dict(settings.LANGUAGES))(value),
    "source": _choice(set(Subscription.Source.values)),
}


def list_ids(rules: dict) -> set[int]:
    """Every list a (checked) set of rules names: the form checks they exist."""
    found = set()
    for item in rules["rules"]:
        if "match" in item:
            found |= list_ids(item)
        elif item["field"] == "list":
            found.add(item["value"])
    return found


# --- Describing ------------------------------------------------------------------------------------


def describe(rules) -> str:
    """Checked ``rules`` in words, in the current language: "Attribute city equals Leeds and (Opened
    any of the last N campaigns 5 or …)". The confirmation step shows it and the audit log keeps it,
    so what a campaign went to stays readable after the segment is edited."""
    try:
        parsed = parse_rules(rules)
    except ValidationError:
        return _("rules that do not check (they match nobody)")
    lists = dict(MailingList.objects.filter(pk__in=list_ids(parsed)).values_list("pk", "name"))
    return _describe_group(parsed, lists, nested=False)


def _describe_group(group: dict, lists: dict, *, nested: bool) -> str:
    joiner = f" {_('and')} " if group["match"] == ALL else f" {_('or')} "
    parts = [
        _describe_group(item, lists, nested=True) if "match" in item else _describe_rule(item, lists)
        for item in group["rules"]
    ]
    text = joiner.join(parts)
    return f"({text})" if nested and len(parts) > 1 else text


def _describe_rule(rule: dict, lists: dict) -> str:
    field = FIELDS[rule["field"]]
    operator = field.operators[rule["op"]]
    value = rule.get("value")
    shown = {
        "list": lambda: lists.get(value, f"#{value}"),
        "language": lambda: dict(settings.LANGUAGES).get(value, value),
        "source": lambda: str(Subscription.Source(value).label),
    }.get(operator.value, lambda: "" if value is None else str(value))()
    words = [
        str(field.label),
        rule.get("name", ""),
        str(operator.label),
        f"“{shown}”" if operator.value == "text" else shown,
    ]
    return " ".join(word for word in words if word)


# --- Compiling --------------------------------------------------------------------------------------


def condition(rules) -> Q:
    """The checked ``rules`` (anything ``parse_rules`` accepts) as one Q over Subscriber."""
    return _compile_group(parse_rules(rules))


def _compile_group(group: dict) -> Q:
    combined = Q()
    for item in group["rules"]:
        part = _compile_group(item) if "match" in item else _compile_rule(item)
        combined = (combined & part) if group["match"] == ALL or not combined else (combined | part)
    return combined


def _compile_rule(rule: dict) -> Q:
    return COMPILERS[rule["field"]](rule["op"], rule.get("value"), rule.get("name"))


def _attribute(op: str, value, name: str) -> Q:
    text = KeyTextTransform(name, "attributes")
    present = Coalesce(text, Value(""), output_field=TextField())  # missing or JSON null: "" (never NULL: NOT works)
    if op in ("equals", "not_equals"):
        if connection.vendor == "postgresql":
            # attributes @> '{"name": "value"}': answered by the GIN index (migration 0015).
            equals = Q(attributes__contains={name: value})
        else:
            equals = Q(Exact(present, value))
        return equals if op == "equals" else ~equals
    if op in ("contains", "not_contains"):
        contains = Q(IContains(present, value))
        return contains if op == "contains" else ~contains
    if op in ("is_set", "is_not_set"):
        is_set = Q(attributes__has_key=name) & ~Q(Exact(present, ""))
        return is_set if op == "is_set" else ~is_set
    number = Case(When(Regex(present, NUMBER), then=Cast(text, FloatField())), default=None, output_field=FloatField())
    compare = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}[op]
    return Q(compare(number, float(value)))


def _email(op: str, value, name) -> Q:
    return Q(email_normalised__icontains=value) if op == "contains" else Q(email_normalised__iendswith=value)


def _list_rule(op: str, value, name) -> Q:
    on = Q(Exists(Subscription.objects.subscribed().filter(subscriber=OuterRef("pk"), list_id=value)))
    return on if op == "is_on" else ~on


def _subscribed(op: str, value, name) -> Q:
    # Midnight in the site's time zone (settings.TIME_ZONE), never the editor's: the send form and
    # the worker's snapshot must count the same people.
    day = datetime.datetime.combine(datetime.date.fromisoformat(value), datetime.time.min)
    start = timezone.make_aware(day, timezone.get_default_timezone())
    return Q(created_at__lt=start) if op == "before" else Q(created_at__gte=start)


def _language(op: str, value, name) -> Q:
    return Q(language=value) if op == "is" else ~Q(language=value)


def _source(op: str, value, name) -> Q:
    through = Q(Exists(Subscription.objects.filter(subscriber=OuterRef("pk"), consent_source=value)))
    return through if op == "is" else ~through


def _activity(kind: str):
    def compile_activity(op: str, value, name) -> Q:
        source = _engagement_source()
        did = getattr(source, kind)
        if op == "any_of_last":
            return did(value)
        if op == "none_of_last":
            return ~did(value)
        return did(None) if op == "ever" else ~did(None)

    return compile_activity


def _received(op: str, value, name) -> Q:
    received = _engagement_source().received()
    return Q(GreaterThanOrEqual(received, value)) if op == "at_least" else Q(LessThan(received, value))


COMPILERS = {
    "attribute": _attribute,
    "email": _email,
    "list": _list_rule,
    "subscribed": _subscribed,
    "language": _language,
    "source": _source,
    "opened": _activity("opened"),
    "clicked": _activity("clicked"),
    "received": _received,
}
