"""HomePage now belongs to the pages app (pages/migrations/0001_initial.py): removed from this
app's state only; its table stays where it is."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0012_sendingworker_task_id"),
        ("pages", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="HomePage")],
            database_operations=[],
        ),
    ]
