"""NewsletterSettings moves from campaigns to mail (issue 10): state only, the table keeps its
name (Meta.db_table), and the content type row is relabelled so permissions granted on the
settings (and anything else pointing at the content type) stay attached."""

import django.db.models.deletion
from django.db import migrations, models

import mail.addresses


def relabel_content_type(apps, schema_editor, *, old="campaigns", new="mail"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    moving = types.filter(app_label=old, model="newslettersettings")
    if moving.exists():
        # An empty row for the new label can only come from a half-run migrate: the old one wins.
        types.filter(app_label=new, model="newslettersettings").delete()
        moving.update(app_label=new)


def relabel_content_type_back(apps, schema_editor):
    relabel_content_type(apps, schema_editor, old="mail", new="campaigns")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("campaigns", "0007_header_text_validators"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("subscribers", "0001_initial"),
        ("wagtailcore", "0098_apitoken"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="NewsletterSettings",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        (
                            "sender_name",
                            models.CharField(
                                default="Broadsheet",
                                max_length=100,
                                validators=[mail.addresses.HeaderTextValidator()],
                            ),
                        ),
                        ("sender_email", models.EmailField(default="newsletter@localhost", max_length=254)),
                        ("reply_to", models.EmailField(blank=True, max_length=254)),
                        (
                            "postal_address",
                            models.TextField(
                                blank=True,
                                help_text=(
                                    "Required before any campaign can be sent (CAN-SPAM): a valid physical postal address."
                                ),
                            ),
                        ),
                        (
                            "footer_text",
                            models.TextField(
                                blank=True, default="You receive this email because you subscribed to our newsletter."
                            ),
                        ),
                        (
                            "default_lists",
                            models.ManyToManyField(
                                blank=True,
                                help_text="Preselected when sending a new campaign.",
                                to="subscribers.mailinglist",
                            ),
                        ),
                        (
                            "site",
                            models.OneToOneField(
                                editable=False, on_delete=django.db.models.deletion.CASCADE, to="wagtailcore.site"
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "Newsletter settings",
                        "db_table": "campaigns_newslettersettings",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_type, relabel_content_type_back, elidable=False),
    ]
