"""A throwaway database for a benchmark, and Django set up on it (bench/README.md).

``open_database(...)`` points DATABASE_URL at a temporary SQLite file or a PostgreSQL database that
is dropped and created, sets the settings a benchmark runs with (development settings, immediate
tasks, locmem mail, warnings only), runs ``django.setup()``, ``migrate`` and ``createcachetable``,
and returns a line describing the database for the printed results. ``close_database`` drops the
PostgreSQL database again. segment_bench.py, abtest_bench.py and automation_bench.py use it;
import_bench.py still sets up its own (it also times the previous importer on a second database).
"""

import os
from pathlib import Path

from run import create_postgres_database, drop_postgres_database


def open_database(database: str, tmp: Path, *, postgres: str, pg_database: str, tasks_url: str = "immediate://") -> str:
    """``database`` is "sqlite" (a file in ``tmp``) or "postgres" (``pg_database`` on ``postgres``);
    ``tasks_url``: "db://" to leave enqueued tasks as rows instead of running them."""
    if database == "postgres":
        os.environ["DATABASE_URL"] = create_postgres_database(postgres, pg_database)
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter_site.settings.dev")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["TASKS_URL"] = tasks_url
    os.environ["EMAIL_URL"] = "locmem://"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    settings.DEBUG = False  # no query log: it would grow with the rows
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version")
        return f"{connection.vendor} {cursor.fetchone()[0]} ({connection.settings_dict['NAME']})"


def close_database(database: str, *, postgres: str, pg_database: str) -> None:
    from django.db import connection

    connection.close()
    if database == "postgres":
        drop_postgres_database(postgres, pg_database)
