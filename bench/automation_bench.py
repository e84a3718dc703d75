"""Benchmark an automation step due for N subscribers at once, and the idle tick after it.

    .venv/bin/python bench/automation_bench.py                              # 1,000,000 subscribers, PostgreSQL
    .venv/bin/python bench/automation_bench.py --subscribers 100000 --database sqlite

Creates a throwaway database (as bench/segment_bench.py), the site, one published issue and N
subscribers on one list (bench/run.py create_content), an automation email and a one-step
sequence of that list, and enrolls every subscriber (one INSERT ... SELECT). Then, in the same run:

- reference: ``services.snapshot_recipients`` of an ordinary campaign to the same list (the one
  INSERT ... SELECT a campaign start runs), in its own transaction, rolled back;
- ``scheduler.tick()``: the step due for all N: the due query, the StepSend ledger INSERT ...
  SELECT, the run campaign's start with its Delivery snapshot (batch tasks are enqueued on the
  database backend, not run: sending is the engine's, measured by bench/run.py);
- the idle tick right after (nobody due, N enrolled): what every AUTOMATION_TICK_SECONDS costs.

Printed: the commit, machine, load average, the database, rows, seconds and the ratio to the
reference, and the checks (N ledger rows, N deliveries, the idle tick queues 0).
"""

import argparse
import datetime
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

PG_DATABASE = "broadsheet_automation_bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--postgres", default=PG_SERVER_URL, help="server URL without database name")
    parser.add_argument("--pg-database", default=PG_DATABASE, help="dropped and created for the run")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="broadsheet-automation-bench-"))
    # TASKS_URL db://: the batch tasks are rows, not run here.
    database = open_database(
        args.database, tmp, postgres=args.postgres, pg_database=args.pg_database, tasks_url="db://"
    )
    from django.db import connection, transaction
    from django.db.models import Value
    from django.utils import timezone
    from wagtail.models import Page

    from automations.models import Automation, AutomationEmailIndexPage, AutomationEmailPage, Enrollment, Step, StepSend
    from automations.scheduler import insert_select, tick
    from campaigns import services
    from campaigns.models import Delivery
    from subscribers.models import Subscriber

    issue, mailing_list, added, generated = create_content(args.subscribers)
    folder = Page.get_first_root_node().add_child(instance=AutomationEmailIndexPage(title="Emails", slug="emails"))
    email = folder.add_child(
        instance=AutomationEmailPage(title="Welcome", slug="welcome", subject="Welcome", body=issue.body.raw_data)
    )
    email.save_revision().publish()
    automation = Automation.objects.create(name="Bench", kind=Automation.Kind.SEQUENCE, list=mailing_list)
    Step.objects.create(automation=automation, page=email, sort_order=0)
    entered = timezone.now() - datetime.timedelta(minutes=1)
    started = time.perf_counter()
    with transaction.atomic():
        enrolled = insert_select(
            Enrollment,
            ["automation_id", "subscriber_id", "entered_at", "state", "round"],
            Subscriber.objects.order_by()
            .annotate(
                e_automation=Value(automation.pk),
                e_entered=Value(entered),
                e_state=Value(Enrollment.State.ACTIVE),
                e_round=Value(0),
            )
            .values_list("e_automation", "pk", "e_entered", "e_state", "e_round"),
        )
    enroll_seconds = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"generated {added:,} subscribers in {generated:.1f}s; enrolled {enrolled:,} in {enroll_seconds:.1f}s")

    load_before = load_average()
    reference = services.create_campaign(issue, [mailing_list])
    started = time.perf_counter()
    with transaction.atomic():
        reference_rows = services.snapshot_recipients(reference)
        reference_seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    started = time.perf_counter()
    queued = sum(sum(steps.values()) for steps in tick().values())
    tick_seconds = time.perf_counter() - started
    started = time.perf_counter()
    idle = sum(sum(steps.values()) for steps in tick().values())
    idle_seconds = time.perf_counter() - started
    load_after = load_average()

    problems = []
    if queued != added or StepSend.objects.count() != added or Delivery.objects.count() != added:
        problems.append(f"queued {queued}, ledger {StepSend.objects.count()}, deliveries {Delivery.objects.count()}")
    if idle:
        problems.append(f"the idle tick queued {idle}")
    print(f"commit {code_version()} · {machine()} · {datetime.date.today()}")
    print(f"load average before {load_before}, after {load_after}; {database}")
    print(f"{'case':<52} {'rows':>10} {'seconds':>8} {'ratio':>6}")
    print(
        f"{'reference: a campaign snapshot of the list':<52} {reference_rows:>10,} {reference_seconds:>8.2f} {1:>6.2f}"
    )
    ratio = tick_seconds / reference_seconds
    print(
        f"{'tick: the step due for everyone (ledger + snapshot)':<52} {queued:>10,} {tick_seconds:>8.2f} {ratio:>6.2f}"
    )
    ratio = idle_seconds / reference_seconds
    print(f"{'idle tick right after (nobody due)':<52} {idle:>10,} {idle_seconds:>8.2f} {ratio:>6.2f}")
    if args.keep:
        connection.close()
    else:
        close_database(args.database, postgres=args.postgres, pg_database=args.pg_database)
    shutil.rmtree(tmp, ignore_errors=True)
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
