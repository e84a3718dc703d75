"""NewsletterSettings now belongs to the mail app (mail/migrations/0001_initial.py): removed from
this app's state only; its table stays where it is."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0009_campaign_mailer"),
        ("mail", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="NewsletterSettings")],
            database_operations=[],
        ),
    ]
