"""The settings model moved from campaigns to mail without losing a row, a list or a permission.

A database is migrated back to the schema before the move, filled through the historical models,
then migrated forward as an operator's `migrate` would.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from mail.models import NewsletterSettings

BEFORE_MOVE = [("mail", None)]  # unapplies the move (and campaigns 0010, which depends on it)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_newsletter_settings_keep_their_rows_lists_and_permissions_across_the_move(migrate_to):
    old = migrate_to(BEFORE_MOVE)
    OldSettings = old.get_model("campaigns", "NewsletterSettings")
    site = old.get_model("wagtailcore", "Site").objects.get(is_default_site=True)
    weekly = old.get_model("subscribers", "MailingList").objects.create(name="Weekly", slug="weekly")
    row = OldSettings.objects.create(site_id=site.pk, sender_name="The Broadsheet", sender_email="news@example.com")
    row.default_lists.add(weekly.pk)
    old_type = old.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="campaigns", model="newslettersettings"
    )[0]
    editors = old.get_model("auth", "Group").objects.create(name="Settings editors")
    permission = old.get_model("auth", "Permission").objects.get_or_create(
        content_type_id=old_type.pk, codename="change_newslettersettings", defaults={"name": "Can change"}
    )[0]
    editors.permissions.add(permission.pk)

    migrate_to()  # the latest migrations

    moved = NewsletterSettings.objects.get(pk=row.pk)
    assert (moved.sender_name, moved.sender_email) == ("The Broadsheet", "news@example.com")
    assert [item.slug for item in moved.default_lists.all()] == ["weekly"]
    # Read from the table, not ContentType's cache (clearing that cache here would make the next
    # serialized-rollback test recreate content types while it restores them).
    content_type = ContentType.objects.get(app_label="mail", model="newslettersettings")
    assert (content_type.pk, content_type.app_label) == (old_type.pk, "mail")
    assert Group.objects.get(name="Settings editors").permissions.get() == Permission.objects.get(
        content_type=content_type, codename="change_newslettersettings"
    )
