"""Benchmark the recipient snapshot of a campaign narrowed by a segment (see bench/README.md).

    .venv/bin/python bench/segment_bench.py                              # 1,000,000 subscribers, PostgreSQL
    .venv/bin/python bench/segment_bench.py --subscribers 100000 --database sqlite

Creates a throwaway database (PostgreSQL: ``--pg-database``, dropped and created, and dropped at
the end; SQLite: a temporary file), migrates it (the GIN index on attributes included), the site
and one published issue of bench/run.py, and N subscribers on one list (generate_subscribers.py),
then gives each a city (one of six) and an age (10..99, as text, as an import stores it) in one
UPDATE. For the reference (the list alone, no segment) and each segment rule it times, in the same
run: ``Audience.count()`` (what the send form and the confirmation step show) and
``snapshot_recipients`` (the one ``INSERT ... SELECT`` a start runs, in its own transaction; the
delivery table is emptied after each case), and checks that the snapshot holds exactly the count.
The reference runs first and again last, to show how much the load moved during the run.
Printed: the commit, machine, load average before and after, the database, and per case the
rows, seconds and the ratio to the reference's snapshot.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from import_bench import load_average, machine  # noqa: E402
from run import PG_SERVER_URL, code_version, create_content  # noqa: E402
from throwaway_db import close_database, open_database  # noqa: E402

PG_DATABASE = "broadsheet_segment_bench"
CITIES = ["Leeds", "York", "Lyon", "Kraków", "Porto", "Oslo"]


def attribute(name: str, op: str, value=None) -> dict:
    rule = {"field": "attribute", "name": name, "op": op}
    if value is not None:
        rule["value"] = value
    return {"match": "all", "rules": [rule]}


REFERENCE = ("reference: the list, no segment", None)
CASES = [
    REFERENCE,
    ("city equals Leeds (1 in 6)", attribute("city", "equals", "Leeds")),
    ("city is set (everyone)", attribute("city", "is_set")),
    ("city contains 'o' (4 in 6)", attribute("city", "contains", "o")),
    ("age >= 18 (a number rule)", attribute("age", "gte", "18")),
    (
        "Leeds or York, and age < 40 (a nested group)",
        {
            "match": "all",
            "rules": [
                {"match": "any", "rules": [*attribute("city", "equals", "Leeds")["rules"],
                                           *attribute("city", "equals", "York")["rules"]]},
                {"field": "attribute", "name": "age", "op": "lt", "value": "40"},
            ],
        },
    ),
]  # fmt: skip
# The reference again at the end: how much the machine's load moved the figures during the run.
CASES.append(("reference again (drift)", None))


def give_attributes(vendor: str) -> float:
    """Every subscriber a city and an age, in one UPDATE; returns the seconds it took."""
    from django.db import connection

    from subscribers.models import Subscriber

    table = connection.ops.quote_name(Subscriber._meta.db_table)
    if vendor == "postgresql":
        cities = "ARRAY[" + ", ".join(["%s"] * len(CITIES)) + "]"
        sql = (
            f"UPDATE {table} SET attributes = jsonb_build_object("
            f"'city', ({cities})[(id %% {len(CITIES)}) + 1], 'age', ((id * 7) %% 90 + 10)::text)"
        )
    else:
        whens = " ".join(f"WHEN {index} THEN %s" for index in range(len(CITIES)))
        sql = (
            f"UPDATE {table} SET attributes = json_object("
            f"'city', CASE (id %% {len(CITIES)}) {whens} END, 'age', CAST((id * 7) %% 90 + 10 AS TEXT))"
        )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, CITIES)
        if vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")
    return time.perf_counter() - started


def empty_deliveries(connection) -> None:
    """Every case starts from an empty delivery table: TRUNCATE on PostgreSQL (a rolled-back or
    deleted million rows would stay behind as dead tuples and slow the next case's inserts)."""
    from campaigns.models import Delivery

    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE" if connection.vendor == "postgresql" else f"DELETE FROM {table}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--postgres", default=PG_SERVER_URL, help="server URL without database name")
    parser.add_argument("--pg-database", default=PG_DATABASE, help="dropped and created for the run")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="broadsheet-segment-bench-"))
    database = open_database(args.database, tmp, postgres=args.postgres, pg_database=args.pg_database)
    from django.db import connection, transaction

    from campaigns import services
    from subscribers.audience import Audience
    from subscribers.models import Segment

    issue, mailing_list, added, generated = create_content(args.subscribers)
    print(
        f"generated {added:,} subscribers in {generated:.1f}s; attributes in {give_attributes(connection.vendor):.1f}s"
    )
    load_before = load_average()
    results, problems = [], []
    for number, (label, rules) in enumerate(CASES):
        segment = None
        if rules is not None:
            segment = Segment.objects.create(name=label, slug=f"case-{number}", rules=rules)
        campaign = services.create_campaign(issue, [mailing_list], segment=segment)
        started = time.perf_counter()
        counted = Audience.of(campaign).count()
        count_seconds = time.perf_counter() - started
        with transaction.atomic():
            started = time.perf_counter()
            rows = services.snapshot_recipients(campaign)
            snapshot_seconds = time.perf_counter() - started
        empty_deliveries(connection)
        if rows != counted:
            problems.append(f"{label}: snapshot {rows:,} != count {counted:,}")
        results.append((label, rows, count_seconds, snapshot_seconds))

    reference = results[0][3]
    print(f"code: {code_version()}")
    print(f"machine: {machine()}  load average before: {load_before}  after: {load_average()}")
    print(f"database: {database}  subscribers: {added:,}")
    print(f"{'case':<48} {'rows':>10} {'count s':>8} {'snapshot s':>11} {'x ref':>6}")
    for label, rows, count_seconds, snapshot_seconds in results:
        ratio = snapshot_seconds / reference
        print(f"{label:<48} {rows:>10,} {count_seconds:>8.2f} {snapshot_seconds:>11.2f} {ratio:>6.2f}")
    print("INVALID RUN: " + "; ".join(problems) if problems else "checked: every snapshot holds exactly the count")
    if not args.keep:
        close_database(args.database, postgres=args.postgres, pg_database=args.pg_database)
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
