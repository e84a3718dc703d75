# The default language became "en" (LANGUAGES lists "en" and "zh-hans"); rows saved with the old
# default "en-us" say the same thing, so they are rewritten and reports count one English.

from django.db import migrations, models


def en_us_to_en(apps, schema_editor):
    Subscriber = apps.get_model("subscribers", "Subscriber")
    Subscriber.objects.filter(language__in=["en-us", "en-US"]).update(language="en")


class Migration(migrations.Migration):
    dependencies = [
        ("subscribers", "0008_subscriber_event_kinds"),
    ]

    operations = [
        migrations.AlterField(
            model_name="subscriber",
            name="language",
            field=models.CharField(blank=True, default="en", max_length=16),
        ),
        migrations.RunPython(en_us_to_en, migrations.RunPython.noop),
    ]
