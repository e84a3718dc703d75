"""The set-based importer gives, row for row, what today's importer gave.

One generated file full of hostile cells (repeats within and across chunks, existing, pending,
unsubscribed, suppressed and erased addresses, bad and over-long values, NUL bytes, control
characters, quoted line breaks, IDNA domains, attributes, languages, blank lines) is imported by
the frozen reference (``import_reference.ReferenceImporter``, the importer at efa0461) and by the
current one, each time over the same seeded database. Subscribers, subscriptions with their consent
records, events, erasure markers and the job's counts and line-numbered report must be identical.
Runs on SQLite, and on PostgreSQL with ``DATABASE_URL`` set (the COPY path).
"""

import csv
import datetime
import io
import random

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from bench import import_bench
from subscribers import importing
from subscribers.importing import ImportOptions, import_csv
from subscribers.models import Subscriber, SubscriberEvent, Subscription, Suppression, email_hash, legacy_email_hash
from subscribers.tests.factories import MailingListFactory
from subscribers.tests.import_reference import ReferenceImporter

BEFORE = timezone.now() - datetime.timedelta(days=30)
HEADER = ["email", "name", "language", "city", "plan", "ignored"]
COLUMN_MAP = ["email", "name", "language", "city", "Plan Name", ""]

# Existing subscribers: (address, name, language, attributes, state, {list slug: status}).
EXISTING = [
    ("Old1@Example.com", "Old One", "en", {"city": "York"}, "active", {"news": "subscribed"}),
    ("old2@example.com", "", "fr", {}, "active", {}),
    ("pending@example.com", "Pat", "en", {}, "active", {"news": "pending"}),
    ("left@example.com", "Lee", "en", {}, "active", {"news": "unsubscribed", "sport": "subscribed"}),
    ("both@example.com", "Bo", "de", {"city": "Lyon", "plan_name": "gold"}, "active",
     {"news": "subscribed", "sport": "pending"}),
    ("bounced@example.com", "Bea", "en", {}, "bounced", {"news": "subscribed"}),
    ("complained@example.com", "", "en", {}, "complained", {}),
    ("blocked@example.com", "Blo", "en", {}, "blocked", {"sport": "subscribed"}),
    ("bob@xn--bcher-kva.de", "Bob", "de", {}, "active", {}),
]  # fmt: skip
BENCH_COLUMNS = {"email": "email", "name": "name", "language": "language", "city": "city"}
ERASED = ["gone@example.com"]  # Under the current key.
ERASED_LEGACY = ["legacy@example.com"]  # Under the unkeyed hash: re-keyed when matched.

BAD_ADDRESSES = [
    "", "not-an-address", "a@b@c", "@example.com", "ann@", "ann@-bad-.com", "a\x00b@example.com",
    "a\x07b@example.com", "x" * 250 + "@example.com", "ann@exa mple.com", '"quoted"@example.com',
]  # fmt: skip
NAMES = [
    "Ann", "", "  Spaced   Out  ", "Line\nBreak", "Bell\x07Name", "Nul\x00Name", "N" * 201, "N" * 200,
    "Zoë 王", "=HYPERLINK(\"x\")", "O'Neil, Jr.",
]  # fmt: skip
LANGUAGES = ["", "en", "fr", "zh-hans", "de", "x" * 17, "e\x01n", "EN"]
CITIES = ["", "Leeds", "Kraków", "Nul\x00City", "c" * 5000, "  padded  ", "\tTab"]


def hostile_rows(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    known = [address for address, *_ in EXISTING] + ERASED + ERASED_LEGACY
    seen: list[str] = []
    rows = []
    for index in range(count):
        kind = rng.random()
        if kind < 0.40:
            email = rng.choice([f"new{index}@example.com", f"New{index}@Bücher.de", f"u+{index}@sub.example.org"])
            seen.append(email)
        elif kind < 0.55 and seen:
            email = rng.choice([seen[-1], rng.choice(seen)])  # A repeat, in this chunk or an earlier one.
            email = rng.choice([email, email.upper(), f"  {email}  "])
        elif kind < 0.75:
            email = rng.choice(known)
            email = rng.choice([email, email.upper(), email.lower()])
        elif kind < 0.85:
            email = rng.choice(BAD_ADDRESSES)
        elif kind < 0.88:
            rows.append(["", "", "", "", "", ""])  # A blank line.
            continue
        else:
            email = f"bob@{rng.choice(['bücher.de', 'xn--bcher-kva.de', 'BÜCHER.de'])}"
        rows.append(
            [
                email,
                rng.choice(NAMES),
                rng.choice(LANGUAGES),
                rng.choice(CITIES),
                rng.choice(["", "gold", "silver"]),
                rng.choice(["", "ignored\x00"]),
            ]
        )
    return rows


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def seed(lists: dict) -> None:
    for address, name, language, attributes, state, subscriptions in EXISTING:
        subscriber = Subscriber.objects.create(
            email=address, name=name, language=language, attributes=attributes, state=state, created_at=BEFORE
        )
        for slug, status in subscriptions.items():
            Subscription.objects.create(
                subscriber=subscriber, list=lists[slug], status=status, created_at=BEFORE, consent_at=BEFORE,
                consent_source=Subscription.Source.FORM, consent_detail="https://example.com/subscribe",
                consent_text="I agree.", unsubscribed_at=BEFORE if status == "unsubscribed" else None,
            )  # fmt: skip
    for address in ERASED:
        Suppression.objects.create(email_hash=email_hash(address), reason="erased")
    for address in ERASED_LEGACY:
        Suppression.objects.create(email_hash=legacy_email_hash(address), keyed=False, reason="erased")


def reset() -> None:
    SubscriberEvent.objects.all().delete()
    Subscription.objects.all().delete()
    Subscriber.objects.all().delete()
    Suppression.objects.all().delete()


def when(value, started):
    """Times set by an import differ between the two runs: compared as 'set by the import'."""
    if value is None:
        return None
    return "during the import" if value >= started else value


def snapshot(result, started) -> dict:
    subscribers = {
        s.email_normalised: (s.email, s.name, s.language, s.attributes, s.state, when(s.created_at, started))
        for s in Subscriber.objects.all()
    }
    subscriptions = sorted(
        (
            s.subscriber.email_normalised,
            s.list.slug,
            s.status,
            when(s.created_at, started),
            when(s.consent_at, started),
            s.consent_source,
            s.consent_detail,
            s.consent_text,
            s.consent_text_hash,
            s.consent_ip,
            s.consent_user_agent,
            when(s.confirmed_at, started),
            when(s.unsubscribed_at, started),
            s.confirmation_count,
        )
        for s in Subscription.objects.select_related("subscriber", "list")
    )
    events = sorted(
        (
            e.subscriber.email_normalised,
            e.list.slug if e.list else None,
            e.kind,
            sorted(e.detail.items()),
            e.actor.username if e.actor else None,
            when(e.at, started),
        )
        for e in SubscriberEvent.objects.select_related("subscriber", "list", "actor")
    )
    suppressions = sorted(Suppression.objects.values_list("email_hash", "keyed", "reason"))
    counts = {
        name: getattr(result, name)
        for name in (
            "processed_rows", "created_count", "updated_count", "skipped_count", "error_count", "duplicate_count",
            "suppressed_count", "unsubscribed_count",
        )
    }  # fmt: skip
    return {
        "subscribers": subscribers,
        "subscriptions": subscriptions,
        "events": events,
        "suppressions": suppressions,
        "counts": counts,
        "notes": result.notes,
    }


def import_both(
    monkeypatch, data: bytes, *, mode: str, update_names: bool, chunk_size: int, column_map=COLUMN_MAP
) -> tuple[dict, dict]:
    lists = {slug: MailingListFactory(slug=slug, name=slug.title()) for slug in ("news", "sport")}
    user = get_user_model().objects.create_user("importer", password="x")
    runs = []
    for importer in (ReferenceImporter, importing._Importer):
        reset()
        seed(lists)
        options = ImportOptions(
            lists=[lists["news"], lists["sport"]], column_map=column_map, mode=mode, consent_note="At the fair",
            source_name="hostile.csv", actor=user, update_names=update_names, chunk_size=chunk_size,
        )  # fmt: skip
        started = timezone.now()
        with monkeypatch.context() as patch:
            patch.setattr(importing, "_Importer", importer)
            result = import_csv(io.BytesIO(data), options)
        runs.append(snapshot(result, started))
    return runs[0], runs[1]


def assert_same(reference: dict, current: dict) -> None:
    for part in reference:
        assert current[part] == reference[part], part


CASES = [
    pytest.param("subscribe", False, 7, id="subscribe"),
    pytest.param("confirm", True, 13, id="confirm-update-names"),
    pytest.param("subscribe", True, 1000, id="subscribe-one-chunk"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "update_names", "chunk_size"), CASES)
def test_current_importer_matches_the_reference_row_for_row(monkeypatch, mode, update_names, chunk_size):
    data = csv_bytes(hostile_rows(400, seed=chunk_size))

    reference, current = import_both(monkeypatch, data, mode=mode, update_names=update_names, chunk_size=chunk_size)

    assert reference["counts"]["created_count"] > 50 and reference["counts"]["duplicate_count"] > 10
    assert reference["counts"]["suppressed_count"] >= 3 and reference["counts"]["error_count"] > 20
    assert_same(reference, current)


@pytest.mark.services
@pytest.mark.parametrize(("mode", "update_names", "chunk_size"), CASES[:2])
def test_on_postgresql_current_importer_matches_the_reference(postgresql, monkeypatch, mode, update_names, chunk_size):
    data = csv_bytes(hostile_rows(400, seed=chunk_size))

    reference, current = import_both(monkeypatch, data, mode=mode, update_names=update_names, chunk_size=chunk_size)

    assert reference["counts"]["created_count"] > 50
    assert_same(reference, current)


@pytest.mark.django_db
def test_the_benchmark_file_imports_identically(monkeypatch, tmp_path):
    """The benchmark's own file (bench/import_bench.py): 6,000 rows, a repeat across a chunk boundary."""
    path = tmp_path / "bench.csv"
    import_bench.generate_csv(path, 6_000)

    reference, current = import_both(monkeypatch, path.read_bytes(), mode="subscribe", update_names=False,
                                     chunk_size=2_500, column_map=BENCH_COLUMNS)  # fmt: skip

    assert reference["counts"]["created_count"] == import_bench.expected_counts(6_000)["created"]
    assert_same(reference, current)
