"""Set-based inserts of many rows of one model: the CSV import's writes, without the ORM per row.

``insert_rows`` puts the per-row values into a temporary staging table (PostgreSQL: ``COPY``
through psycopg 3's ``cursor.copy()``; SQLite and others: one prepared statement run with
``executemany``), then writes the target table with ONE ``INSERT ... SELECT`` in which the values
common to every row of the chunk (a status, a timestamp, the consent record) are parameters and
the rest of the model's columns get their field defaults. ``ON CONFLICT DO NOTHING`` and
``RETURNING`` work the same on both databases (PostgreSQL >= 9.5, SQLite >= 3.35).

The columns come from the model's fields, so a field added later gets its default here too (or
fails loudly: a field without a default that the caller does not give is NULL). The caller holds
the transaction: the staging table lives only inside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

from django.db import connection, models, transaction

# Where a temporary table is named explicitly (never a permanent table of the same name).
TEMP_SCHEMA = {"postgresql": "pg_temp.", "sqlite": "temp."}


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _fields(model: type[models.Model]) -> dict[str, models.Field]:
    """Every concrete column but the auto-incremented primary key, by field name."""
    return {
        field.name: field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField))
    }


def _stage(name: str, columns: list[tuple[str, str]], rows: Iterable[tuple]) -> None:
    """Create the temporary table ``name`` (``n`` = the row's position, then ``columns``) and fill it."""
    postgresql = connection.vendor == "postgresql"
    definition = ", ".join(["n integer", *(f"{_quote(column)} {db_type}" for column, db_type in columns)])
    names = ", ".join(["n", *(_quote(column) for column, _type in columns)])
    with connection.cursor() as cursor:
        # Dropped after use (``_unstage``); inside an outer transaction (a test, ATOMIC_REQUESTS)
        # a commit may never come to drop it, so a leftover is dropped first.
        cursor.execute(f"DROP TABLE IF EXISTS {TEMP_SCHEMA[connection.vendor]}{name}")
        if postgresql:
            cursor.execute(f"CREATE TEMPORARY TABLE {name} ({definition}) ON COMMIT DROP")
            with cursor.cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
                for position, row in enumerate(rows):
                    copy.write_row((position, *row))
        else:
            cursor.execute(f"CREATE TEMPORARY TABLE {name} ({definition})")
            placeholders = ", ".join(["%s"] * (len(columns) + 1))
            cursor.executemany(
                f"INSERT INTO {name} ({names}) VALUES ({placeholders})",  # noqa: S608 (names from the model)
                [(position, *row) for position, row in enumerate(rows)],
            )


def insert_rows(
    model: type[models.Model],
    staged: Sequence[str],
    rows: Iterable[tuple],
    *,
    constants: dict | None = None,
    expressions: dict[str, dict[str, str]] | None = None,
    ignore_conflicts: bool = False,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert one row of ``model`` per tuple of ``rows`` (the values of the fields ``staged``, in
    order, ready for the database: JSON as text); returns the ``returning`` columns of the rows
    inserted (all of them, or those that did not conflict with ``ignore_conflicts``).

    ``constants``: field name -> value, the same for every row (prepared by the field).
    ``expressions``: field name -> {vendor: SQL} computed by the database per row (a UUID).
    Every other field gets its default. Must run inside ``transaction.atomic()``.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("insert_rows() needs a transaction: its staging table lives inside one.")
    constants = constants or {}
    expressions = expressions or {}
    fields = _fields(model)
    postgresql = connection.vendor == "postgresql"
    stage = f"broadsheet_stage_{model._meta.model_name}"
    _stage(stage, [(fields[name].column, fields[name].db_type(connection)) for name in staged], rows)

    columns, selected, params = [], [], []
    for name, field in fields.items():
        columns.append(_quote(field.column))
        if name in staged:
            selected.append(f"s.{_quote(field.column)}")
        elif name in expressions:
            selected.append(expressions[name][connection.vendor])
        else:
            value = constants[name] if name in constants else field.get_default()
            params.append(field.get_db_prep_save(value, connection))
            # PostgreSQL types a bare parameter in a SELECT list as text (refused for a timestamp
            # or an inet column); SQLite must not cast ("CAST(... AS datetime)" makes a number).
            selected.append(f"CAST(%s AS {field.db_type(connection)})" if postgresql else "%s")
    sql = (
        f"INSERT INTO {_quote(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 (names from the model)
        f"SELECT {', '.join(selected)} FROM {stage} s WHERE true ORDER BY s.n"
    )
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(_quote(fields[name].column if name in fields else name) for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchall() if returning else []
        cursor.execute(f"DROP TABLE {TEMP_SCHEMA[connection.vendor]}{stage}")
    return inserted


LOOKUP_SLICE = 5000  # Values per query: SQLite binds at most 32,766 parameters.


def matching(model: type[models.Model], field_name: str, values: Iterable, columns: Sequence[str]) -> list[tuple]:
    """The ``columns`` of the rows of ``model`` whose ``field_name`` is one of ``values``.

    The ORM's ``__in`` prepares every value through the field (and psycopg quotes a list one
    element at a time in Python): tens of microseconds per value, and a chunk of an import looks up
    thousands of addresses and hashes. Here the values go as they are: COPY into a staging table
    and a join on PostgreSQL, bound parameters on SQLite. ``values`` must already be what the
    column holds (normalised, hashed).
    """
    fields = {field.name: field for field in model._meta.concrete_fields}
    names = ", ".join(f"t.{_quote(fields[name].column)}" for name in columns)
    table, field = _quote(model._meta.db_table), fields[field_name]
    column = _quote(field.column)
    values = list(values)
    if not values:
        return []
    if connection.vendor == "postgresql":
        stage = "broadsheet_lookup"
        with transaction.atomic(), connection.cursor() as cursor:
            _stage(stage, [(field.column, field.db_type(connection))], ((value,) for value in values))
            cursor.execute(f"SELECT {names} FROM {table} t JOIN {stage} s ON t.{column} = s.{column}")  # noqa: S608
            found = cursor.fetchall()
            cursor.execute(f"DROP TABLE {TEMP_SCHEMA[connection.vendor]}{stage}")
        return found
    found = []
    with connection.cursor() as cursor:
        for start in range(0, len(values), LOOKUP_SLICE):
            part = values[start : start + LOOKUP_SLICE]
            placeholders = ", ".join(["%s"] * len(part))
            cursor.execute(f"SELECT {names} FROM {table} t WHERE t.{column} IN ({placeholders})", part)  # noqa: S608
            found.extend(cursor.fetchall())
    return found


SQLITE_CACHE_MIB = 64


@contextlib.contextmanager
def bulk_cache():
    """SQLite: a page cache of SQLITE_CACHE_MIB for this connection while a bulk import runs.

    SQLite's default is 2 MB: the indexes of a table of a million rows do not fit, so every insert
    reads their pages again from the operating system. The cache is bounded (memory stays flat)
    and the previous size comes back afterwards. Other databases: nothing to do.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (before,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = {-SQLITE_CACHE_MIB * 1024}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(before)}")
