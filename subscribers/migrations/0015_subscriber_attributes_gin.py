"""A GIN index on Subscriber.attributes, on PostgreSQL only (segment rules: "equals" compiles to
``attributes @> '{"name": "value"}'`` and "is set" to ``attributes ? 'name'``, both answered by it).

SQLite has no GIN index and needs none at its scale: the operation does nothing there, so the
migrations still run on both. Built CONCURRENTLY (hence a non-atomic migration), so a site with a
million subscribers keeps accepting sign-ups while it is built.
"""

from django.db import migrations

INDEX = "subscribers_subscriber_attributes_gin"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("subscribers", "Subscriber")._meta.db_table)
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON {table} USING gin (attributes)")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("subscribers", "0014_segment")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
