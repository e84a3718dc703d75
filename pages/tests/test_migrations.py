"""HomePage and SubscribePage moved to the pages app without losing a page, a field, a revision
or a permission.

A database is migrated back to the schema before the move, filled through the historical models
(a home page with a subscribe page under it, a revision, a group permission), then migrated
forward as an operator's `migrate` would.
"""

import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone
from wagtail.models import Page, Revision, Site

from pages.models import HomePage, SubscribePage

BEFORE_MOVE = [("pages", None)]  # unapplies the move (and campaigns 0013 / subscribers 0011, which depend on it)


def _old_page(old, model, label, *, path, depth, **fields):
    content_type = old.get_model("contenttypes", "ContentType").objects.get_or_create(app_label=label, model=model)[0]
    locale = old.get_model("wagtailcore", "Locale").objects.first()
    page = old.get_model(label, model).objects.create(
        path=path,
        depth=depth,
        numchild=0,
        url_path=f"/{fields['slug']}/",
        draft_title=fields["title"],
        live=True,
        content_type_id=content_type.pk,
        locale_id=locale.pk,
        translation_key=uuid.uuid4(),
        **fields,
    )
    return page, content_type


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_home_and_subscribe_pages_keep_their_rows_revisions_and_permissions_across_the_move(migrate_to):
    old = migrate_to(BEFORE_MOVE)
    root = old.get_model("wagtailcore", "Page").objects.get(depth=1)
    home, home_type = _old_page(
        old, "homepage", "campaigns", path=f"{root.path}0099", depth=2, title="Broadsheet", slug="bs-home",
        intro="<p>Weekly news</p>",
    )  # fmt: skip
    subscribe, subscribe_type = _old_page(
        old, "subscribepage", "subscribers", path=f"{root.path}00990001", depth=3, title="Subscribe",
        slug="subscribe", consent_text="Yes, email me.",
    )  # fmt: skip
    old.get_model("wagtailcore", "Page").objects.filter(pk=home.pk).update(numchild=1)
    old.get_model("wagtailcore", "Page").objects.filter(pk=root.pk).update(numchild=root.numchild + 1)
    old.get_model("wagtailcore", "Site").objects.update(is_default_site=False)
    old.get_model("wagtailcore", "Site").objects.create(
        hostname="testserver", port=80, root_page_id=home.pk, is_default_site=True
    )
    revision = old.get_model("wagtailcore", "Revision").objects.create(
        content_type_id=subscribe_type.pk,
        base_content_type_id=old.get_model("contenttypes", "ContentType")
        .objects.get_for_model(old.get_model("wagtailcore", "Page"))
        .pk,
        object_id=str(subscribe.pk),
        content={"title": "Subscribe", "consent_text": "Yes, email me."},
        object_str="Subscribe",
        created_at=timezone.now(),
    )
    editors = old.get_model("auth", "Group").objects.create(name="Subscribe page editors")
    permission = old.get_model("auth", "Permission").objects.get_or_create(
        content_type_id=subscribe_type.pk, codename="change_subscribepage", defaults={"name": "Can change"}
    )[0]
    editors.permissions.add(permission.pk)

    migrate_to()  # the latest migrations

    # The same rows, now as the pages app's models, with their fields.
    assert Page.objects.get(pk=home.pk).specific_class is HomePage
    assert HomePage.objects.get(pk=home.pk).intro == "<p>Weekly news</p>"
    moved = SubscribePage.objects.get(pk=subscribe.pk)
    assert (moved.consent_text, moved.get_parent().pk) == ("Yes, email me.", home.pk)
    # Read from the table, not ContentType's cache (see mail/tests/test_migrations.py).
    for old_type, model in ((home_type, "homepage"), (subscribe_type, "subscribepage")):
        content_type = ContentType.objects.get(pk=old_type.pk)
        assert (content_type.app_label, content_type.model) == ("pages", model)
    assert Revision.objects.get(pk=revision.pk).content_object.specific == moved
    assert Group.objects.get(name="Subscribe page editors").permissions.get() == Permission.objects.get(
        content_type__app_label="pages", codename="change_subscribepage"
    )
    # And the site serves the moved subscribe page through its view (the consent sentence).
    assert Site.objects.get(is_default_site=True).root_page_id == home.pk
    response = Client().get("/subscribe/")
    assert response.status_code == 200
    assert "Yes, email me." in response.content.decode()
