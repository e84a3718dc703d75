"""Benchmark the CSV importer: N generated rows, rows/s and memory (see bench/README.md).

    make bench-import                                              # 1,000,000 rows, SQLite and PostgreSQL
    .venv/bin/python bench/import_bench.py                         # 1,000,000 rows, temporary SQLite
    .venv/bin/python bench/import_bench.py --rows 100000 --database postgres

The CSV goes to a temporary directory; SQLite runs in a temporary file; PostgreSQL runs in a
database ``broadsheet_import_bench`` that is dropped and created (``--pg-database``), or in
``--database-url`` (a throwaway one: its subscribers are deleted first). Nothing is written in
the repository. Memory is the process's resident set size, sampled after every 10 % and at the
peak (getrusage): flat memory means the samples do not grow with the rows read. The commit, the
machine and the load average before and after are printed with the figures (docs/performance.md).
"""

import argparse
import cProfile
import os
import platform
import pstats
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from run import PG_SERVER_URL, code_version, create_postgres_database, drop_postgres_database  # noqa: E402

PG_DATABASE = "broadsheet_import_bench"
FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Günter", "Hana", "Ivan", "José"]
LAST = ["Smith", "Jones", "Müller", "Novak", "García", "Chen", "O'Neil", "Okafor"]
CITIES = ["Leeds", "York", "Lyon", "Kraków", "Porto", "Oslo"]


def generate_csv(path: Path, rows: int, seed: int = 1, prefix: str = "reader") -> None:
    """Write ``rows`` subscribers (email,name,language,city) with a few bad rows and duplicates."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,language,city\n")
        for i in range(rows):
            if i % 10_000 == 9_999:
                out.write(f"not-an-address-{i},Bad Row,en,\n")
            elif i % 10_000 == 5_000:
                out.write(f"{prefix.title()}{i - 1}@Example.com,Duplicate,en,\n")  # Case-insensitive repeat.
            else:
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                out.write(f"{prefix}{i}@example.com,{name},{rng.choice(['en', 'fr', 'de'])},{rng.choice(CITIES)}\n")


def expected_counts(rows: int) -> dict:
    invalid = sum(1 for i in range(rows) if i % 10_000 == 9_999)
    duplicates = sum(1 for i in range(rows) if i % 10_000 == 5_000)
    return {"created": rows - invalid - duplicates, "errors": invalid, "duplicates": duplicates}


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} x {model}, Python {platform.python_version()}"


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres", default=PG_SERVER_URL, help="server URL without database name")
    parser.add_argument("--pg-database", default=PG_DATABASE, help="dropped and created for the run")
    parser.add_argument("--database-url", default="", help="a throwaway database instead (subscribers deleted)")
    parser.add_argument("--mode", choices=["subscribe", "confirm"], default="subscribe")
    parser.add_argument("--chunk-size", type=int, default=0, help="rows per transaction (default: the importer's)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    parser.add_argument(
        "--reference",
        type=int,
        default=20_000,
        metavar="N",
        help="first import N other rows with the previous importer (subscribers/tests/import_reference.py) for a "
        "ratio measured under the same load; 0: none",
    )
    args = parser.parse_args()

    code = code_version()  # Before the run: what was imported, not what the tree holds by the end.
    tmp = Path(tempfile.mkdtemp(prefix="broadsheet-bench-"))
    created_pg = args.database == "postgres" and not args.database_url
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    elif created_pg:
        os.environ["DATABASE_URL"] = create_postgres_database(args.postgres, args.pg_database)
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter_site.settings.dev")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["TASKS_URL"] = "immediate://"
    os.environ["EMAIL_URL"] = "locmem://"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from subscribers import importing
    from subscribers.importing import ImportOptions, import_csv
    from subscribers.models import MailingList, Subscriber
    from subscribers.tests.import_reference import ReferenceImporter

    settings.DEBUG = False  # No query log: it would grow with the rows.
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # The page cache is dropped when a list is saved.
    if args.database_url:
        Subscriber.objects.all().delete()
    mailing_list, _ = MailingList.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version")
        database = f"{connection.vendor} {cursor.fetchone()[0]} ({connection.settings_dict['NAME']})"

    columns = {"email": "email", "name": "name", "language": "language", "city": "city"}
    reference = None
    if args.reference:
        # The previous importer (ORM bulk_create, chunks of 1,000) on other addresses and another
        # list, just before: the ratio of the two rates is what the change bought under this load.
        path = tmp / "reference.csv"
        generate_csv(path, args.reference, prefix="earlier")
        options = ImportOptions(
            lists=[MailingList.objects.create(slug="reference", name="Reference")], column_map=columns,
            mode=args.mode, consent_note="Benchmark", source_name=path.name, chunk_size=1000,
        )  # fmt: skip
        importing._Importer, current = ReferenceImporter, importing._Importer
        started = time.perf_counter()
        with path.open("rb") as stream:
            reference = import_csv(stream, options, on_pending=lambda ids: None)
        reference.seconds = time.perf_counter() - started
        importing._Importer = current

    csv_path = tmp / "subscribers.csv"
    started = time.perf_counter()
    generate_csv(csv_path, args.rows)
    print(f"generated {args.rows:,} rows ({csv_path.stat().st_size / 2**20:.0f} MB) in "
          f"{time.perf_counter() - started:.1f}s")  # fmt: skip

    samples = []
    step = max(args.rows // 10, 1)

    def progress(result):
        if result.processed_rows // step > len(samples) - 1:
            samples.append((result.processed_rows, rss_mb()))

    options = ImportOptions(
        lists=[mailing_list],
        column_map=columns,
        mode=args.mode,
        consent_note="Benchmark",
        source_name=csv_path.name,
    )
    if args.chunk_size:
        options.chunk_size = args.chunk_size
    load_before = load_average()
    samples.append((0, rss_mb()))
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    with csv_path.open("rb") as stream:
        if profiler:
            profiler.enable()
        result = import_csv(stream, options, progress=progress, on_pending=lambda ids: None)
        if profiler:
            profiler.disable()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"code: {code}  chunk size: {options.chunk_size:,}  mode: {args.mode}")
    print(f"machine: {machine()}  load average before: {load_before}  after: {load_average()}")
    print(f"database: {database}")
    print(f"rows: {result.processed_rows:,}  created: {result.created_count:,}  errors: {result.error_count:,}  "
          f"duplicates: {result.duplicate_count:,}")  # fmt: skip
    print(f"seconds: {seconds:.1f}  rows/s: {result.processed_rows / seconds:,.0f}  peak RSS: {peak_mb:.0f} MB")
    print("RSS by rows read: " + ", ".join(f"{rows:,}: {mb:.0f} MB" for rows, mb in samples))
    rate = result.processed_rows / seconds
    if reference:
        reference_rate = reference.processed_rows / reference.seconds
        print(f"reference (previous importer, {reference.processed_rows:,} rows just before): "
              f"{reference.seconds:.1f} s, {reference_rate:,.0f} rows/s; "
              f"ratio {rate / reference_rate:.1f}x")  # fmt: skip
    expected = expected_counts(args.rows)
    stored = Subscriber.objects.count() - (reference.created_count if reference else 0)
    got = {"created": result.created_count, "errors": result.error_count, "duplicates": result.duplicate_count}
    problems = [f"{key}: {got[key]:,}, expected {value:,}" for key, value in expected.items() if got[key] != value]
    if args.mode == "subscribe" and stored != expected["created"]:
        problems.append(f"{stored:,} subscribers stored, expected {expected['created']:,}")
    print("INVALID RUN: " + "; ".join(problems) if problems else "counts checked: as expected")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    connection.close()
    if created_pg:
        drop_postgres_database(args.postgres, args.pg_database)
    shutil.rmtree(tmp)  # The CSV, and the SQLite file with its journal.
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
