"""SubscribePage now belongs to the pages app (pages/migrations/0001_initial.py): removed from
this app's state only; its table stays where it is."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("subscribers", "0010_mailinglist_language"),
        ("pages", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SubscribePage")],
            database_operations=[],
        ),
    ]
