"""Benchmark the snapshots of issue 11's campaigns against a plain one (see bench/README.md).

    .venv/bin/python bench/abtest_bench.py                                # 1,000,000 subscribers, PostgreSQL
    .venv/bin/python bench/abtest_bench.py --subscribers 100000 --database sqlite

Same set-up as segment_bench.py (a throwaway database, the site, one issue, N subscribers on one
list). Timed in the same run, each in its own transaction: the reference (a plain campaign's
snapshot of the whole list), an A/B test's snapshot (20 % test share, 2 and 4 subjects: the
ORDER BY ... LIMIT subquery and ROW_NUMBER() inside the INSERT ... SELECT), the snapshot of the
rest of an A/B test (the list less the test's readers), and a resend to non-openers (of a sent
campaign 30 % of whose deliveries were opened). Checks each snapshot's size and that the
variants differ by one at most. The reference runs first and again last.
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
from segment_bench import empty_deliveries  # noqa: E402
from throwaway_db import close_database, open_database  # noqa: E402

PG_DATABASE = "broadsheet_abtest_bench"  # --pg-database to use another


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--postgres", default=PG_SERVER_URL, help="server URL without database name")
    parser.add_argument("--pg-database", default=PG_DATABASE, help="dropped and created for the run")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="broadsheet-abtest-bench-"))
    database = open_database(args.database, tmp, postgres=args.postgres, pg_database=args.pg_database)
    from django.db import connection, transaction
    from django.db.models import Count
    from django.utils import timezone

    from campaigns import services
    from campaigns.models import Campaign, Delivery

    issue, mailing_list, added, generated = create_content(args.subscribers)
    print(f"generated {added:,} subscribers in {generated:.1f}s")

    def snapshot(campaign, *, keep=False):
        with transaction.atomic():
            started = time.perf_counter()
            rows = services.snapshot_recipients(campaign)
            seconds = time.perf_counter() - started
        spread = dict(Delivery.objects.filter(campaign=campaign).values_list("variant").annotate(n=Count("pk")))
        if not keep:
            empty_deliveries(connection)
        return rows, seconds, spread

    def ab(variants):
        campaign = services.create_campaign(issue, [mailing_list])
        subjects = [f"Subject {index}" for index in range(variants)]
        Campaign.objects.filter(pk=campaign.pk).update(subject_variants=subjects, ab_percent=20)
        campaign.refresh_from_db()
        return campaign

    load_before = load_average()
    results, problems = [], []

    def record(label, campaign, expected, **kwargs):
        rows, seconds, spread = snapshot(campaign, **kwargs)
        if rows != expected:
            problems.append(f"{label}: {rows:,} rows, expected {expected:,}")
        parts = [n for variant, n in spread.items() if variant is not None]
        if parts and max(parts) - min(parts) > 1:
            problems.append(f"{label}: uneven parts {sorted(parts)}")
        results.append((label, rows, seconds))

    record("reference: a plain campaign, the whole list", services.create_campaign(issue, [mailing_list]), added)
    share = round(added * 0.2)
    record("A/B test, 20 %, 2 subjects", ab(2), share)
    test = ab(4)
    record("A/B test, 20 %, 4 subjects", test, share, keep=True)
    rest = services.create_campaign(issue, [mailing_list])
    Campaign.objects.filter(pk=rest.pk).update(winner_of=test)
    rest.refresh_from_db()
    record("the rest of an A/B test (the list less the test)", rest, added - share)
    # A sent campaign, 30 % of it opened by people (every third delivery, by id).
    sent = services.create_campaign(issue, [mailing_list])
    record("(the campaign to send again: its own snapshot)", sent, added, keep=True)
    Campaign.objects.filter(pk=sent.pk).update(status=Campaign.Status.SENT)
    Delivery.objects.filter(campaign=sent).update(status=Delivery.Status.SENT, sent_at=timezone.now())
    opened = list(Delivery.objects.filter(campaign=sent).order_by("pk").values_list("pk", flat=True)[::3])
    for start in range(0, len(opened), 50_000):
        Delivery.objects.filter(pk__in=opened[start : start + 50_000]).update(first_opened_at=timezone.now())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(Delivery._meta.db_table)}")
    resend = services.create_campaign(issue, [mailing_list])
    Campaign.objects.filter(pk=resend.pk).update(resend_of=sent)
    resend.refresh_from_db()
    with transaction.atomic():
        started = time.perf_counter()
        rows = services.snapshot_recipients(resend)
        results.append(("resend to non-openers (2 in 3)", rows, time.perf_counter() - started))
        if rows != added - len(opened):
            problems.append(f"resend: {rows:,} rows, expected {added - len(opened):,}")
        transaction.set_rollback(True)
    empty_deliveries(connection)
    record("reference again", services.create_campaign(issue, [mailing_list]), added)

    reference = results[0][2]
    print(f"code: {code_version()}")
    print(f"machine: {machine()}  load average before: {load_before}  after: {load_average()}")
    print(f"database: {database}  subscribers: {added:,}")
    print(f"{'case':<52} {'rows':>10} {'snapshot s':>11} {'x ref':>6}")
    for label, rows, seconds in results:
        print(f"{label:<52} {rows:>10,} {seconds:>11.2f} {seconds / reference:>6.2f}")
    print("INVALID RUN: " + "; ".join(problems) if problems else "checked: sizes as expected, parts even")
    close_database(args.database, postgres=args.postgres, pg_database=args.pg_database)
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
