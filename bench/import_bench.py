"""Benchmark the CSV importer: N generated rows, rows/s and peak memory.

    .venv/bin/python bench/import_bench.py                       # 1,000,000 rows, temporary SQLite
    .venv/bin/python bench/import_bench.py --rows 100000
    .venv/bin/python bench/import_bench.py --database-url postgres://postgres@127.0.0.1:5432/broadsheet_bench

The CSV goes to a temporary directory; SQLite runs in a temporary file; a PostgreSQL database
must be a throwaway one (its subscribers are deleted first). Nothing is written in the repository.
Memory is the process's resident set size, sampled after every 10 % and at the peak (getrusage):
flat memory means the samples do not grow with the rows read.
"""

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Günter", "Hana", "Ivan", "José"]
LAST = ["Smith", "Jones", "Müller", "Novak", "García", "Chen", "O'Neil", "Okafor"]
CITIES = ["Leeds", "York", "Lyon", "Kraków", "Porto", "Oslo"]


def generate_csv(path: Path, rows: int, seed: int = 1) -> None:
    """Write ``rows`` subscribers (email,name,language,city) with a few bad rows and duplicates."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,language,city\n")
        for i in range(rows):
            if i % 10_000 == 9_999:
                out.write(f"not-an-address-{i},Bad Row,en,\n")
            elif i % 10_000 == 5_000:
                out.write(f"Reader{i - 1}@Example.com,Duplicate,en,\n")  # Case-insensitive repeat.
            else:
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                out.write(f"reader{i}@example.com,{name},{rng.choice(['en', 'fr', 'de'])},{rng.choice(CITIES)}\n")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="", help="Default: a temporary SQLite file.")
    parser.add_argument("--mode", choices=["subscribe", "confirm"], default="subscribe")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="broadsheet-bench-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
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

    from subscribers.importing import ImportOptions, import_csv
    from subscribers.models import MailingList, Subscriber

    settings.DEBUG = False  # No query log: it would grow with the rows.
    call_command("migrate", verbosity=0)
    if args.database_url:
        Subscriber.objects.all().delete()
    mailing_list, _ = MailingList.objects.get_or_create(slug="bench", defaults={"name": "Bench"})

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
        column_map={"email": "email", "name": "name", "language": "language", "city": "city"},
        mode=args.mode,
        consent_note="Benchmark",
        source_name=csv_path.name,
    )
    samples.append((0, rss_mb()))
    started = time.perf_counter()
    with csv_path.open("rb") as stream:
        result = import_csv(stream, options, progress=progress, on_pending=lambda ids: None)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"rows: {result.processed_rows:,}  created: {result.created_count:,}  errors: {result.error_count:,}  "
          f"duplicates: {result.duplicate_count:,}")  # fmt: skip
    print(f"seconds: {seconds:.1f}  rows/s: {result.processed_rows / seconds:,.0f}  peak RSS: {peak_mb:.0f} MB")
    print("RSS by rows read: " + ", ".join(f"{rows:,}: {mb:.0f} MB" for rows, mb in samples))
    connection.close()
    shutil.rmtree(tmp)  # The CSV, and the SQLite file with its journal.


if __name__ == "__main__":
    main()
