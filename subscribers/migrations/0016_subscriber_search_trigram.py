"""Trigram indexes for the subscriber listing's search, on PostgreSQL only.

The search is "address or name contains" in any case (``icontains``, which Django writes as
``UPPER(column::text) LIKE UPPER('%query%')``): without an index every search reads all the
subscribers (about a second at a million). pg_trgm's GIN indexes over the same ``UPPER(column)``
answer it from the index. pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may
create it. Built CONCURRENTLY, like 0015, so sign-ups go on while a big table is indexed. SQLite
needs none at its scale: nothing happens there.
"""

from django.db import migrations

COLUMNS = ("email", "email_normalised", "name")


def _index(column: str) -> str:
    return f"subscribers_subscriber_{column}_trgm"


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("subscribers", "Subscriber")._meta.db_table)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_index(column)} ON {table} "
            f"USING gin ((UPPER({schema_editor.quote_name(column)}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_index(column)}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("subscribers", "0015_subscriber_attributes_gin")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
