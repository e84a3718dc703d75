from django.db import migrations, models


def tick_the_main_list(apps, schema_editor):
    """Existing sites: the oldest public list is the main one, unless a list is already ticked."""
    MailingList = apps.get_model("subscribers", "MailingList")
    if MailingList.objects.filter(preselected=True).exists():
        return
    main = MailingList.objects.filter(is_public=True).order_by("created_at", "pk").first()
    if main is not None:
        main.preselected = True
        main.save(update_fields=["preselected"])


class Migration(migrations.Migration):
    dependencies = [
        ("subscribers", "0003_header_text_validators"),
    ]

    operations = [
        migrations.AddField(
            model_name="mailinglist",
            name="preselected",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "Starts ticked on the public subscribe form (your main list). Visitors can untick it, and "
                    "nobody is subscribed before they confirm by email."
                ),
                verbose_name="ticked on the subscribe form",
            ),
        ),
        migrations.RunPython(tick_the_main_list, migrations.RunPython.noop),
    ]
