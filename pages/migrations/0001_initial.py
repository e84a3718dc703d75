"""HomePage (from campaigns) and SubscribePage (from subscribers) move to the pages app (issue 10):
state only, the tables keep their names (Meta.db_table), and the content type rows are relabelled,
so every page row, revision, permission and workflow state that points at them stays attached."""

import django.db.models.deletion
import wagtail.fields
from django.conf import settings
from django.db import migrations, models

MOVED = [("campaigns", "homepage"), ("subscribers", "subscribepage")]


def relabel_content_types(apps, schema_editor, *, backwards=False):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    for app_label, model in MOVED:
        old, new = ("pages", app_label) if backwards else (app_label, "pages")
        moving = types.filter(app_label=old, model=model)
        if moving.exists():
            # An empty row for the new label can only come from a half-run migrate: the old one wins.
            types.filter(app_label=new, model=model).delete()
            moving.update(app_label=new)


def relabel_content_types_back(apps, schema_editor):
    relabel_content_types(apps, schema_editor, backwards=True)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("campaigns", "0011_campaign_editions_delivery_language"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("subscribers", "0010_mailinglist_language"),
        ("wagtailcore", "0098_apitoken"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="HomePage",
                    fields=[
                        (
                            "page_ptr",
                            models.OneToOneField(
                                auto_created=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                parent_link=True,
                                primary_key=True,
                                serialize=False,
                                to=settings.WAGTAIL_PAGE_MODEL,
                            ),
                        ),
                        ("intro", wagtail.fields.RichTextField(blank=True)),
                        (
                            "body",
                            wagtail.fields.StreamField(
                                [("paragraph", 0), ("subscribe_form", 3)],
                                blank=True,
                                block_lookup={
                                    0: (
                                        "wagtail.blocks.RichTextBlock",
                                        (),
                                        {"features": ["bold", "italic", "link", "ol", "ul", "h2", "h3"]},
                                    ),
                                    1: ("wagtail.blocks.CharBlock", (), {"max_length": 150, "required": False}),
                                    2: (
                                        "wagtail.blocks.PageChooserBlock",
                                        (),
                                        {
                                            "help_text": (
                                                "The subscribe page whose consent sentence is shown and which "
                                                "receives the form."
                                            ),
                                            "page_type": ["pages.SubscribePage"],
                                        },
                                    ),
                                    3: ("wagtail.blocks.StructBlock", [[("heading", 1), ("page", 2)]], {}),
                                },
                            ),
                        ),
                    ],
                    options={"db_table": "campaigns_homepage"},
                    bases=("wagtailcore.page",),
                ),
                migrations.CreateModel(
                    name="SubscribePage",
                    fields=[
                        (
                            "page_ptr",
                            models.OneToOneField(
                                auto_created=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                parent_link=True,
                                primary_key=True,
                                serialize=False,
                                to=settings.WAGTAIL_PAGE_MODEL,
                            ),
                        ),
                        ("intro", wagtail.fields.RichTextField(blank=True)),
                        (
                            "consent_text",
                            models.TextField(
                                default=(
                                    "I agree to receive the newsletters I selected by email. I can unsubscribe "
                                    "at any time with the link in every email."
                                ),
                                help_text=(
                                    "Shown next to the form and stored with every subscription as the proof of "
                                    "consent."
                                ),
                            ),
                        ),
                        (
                            "thank_you_text",
                            wagtail.fields.RichTextField(blank=True, help_text="Shown after the form is sent."),
                        ),
                    ],
                    options={"db_table": "subscribers_subscribepage"},
                    bases=("wagtailcore.page",),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_types, relabel_content_types_back, elidable=False),
    ]
