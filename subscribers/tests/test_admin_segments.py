"""The segment admin: create and edit with the rule builder's JSON, the live count, permissions."""

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from subscribers.models import Segment
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

LEEDS = {"match": "all", "rules": [{"field": "attribute", "name": "city", "op": "equals", "value": "Leeds"}]}


@pytest.fixture
def people():
    news = MailingListFactory(name="News", slug="news")
    for local, city in (("ann", "Leeds"), ("bob", "York"), ("cat", "Leeds")):
        SubscriptionFactory(
            list=news, subscriber=SubscriberFactory(email=f"{local}@example.com", attributes={"city": city})
        )
    SubscriberFactory(email="nolist@example.com", attributes={"city": "Leeds"})  # on no list: never counted
    return news


def user_with(client, username, *codenames):
    user = get_user_model().objects.create_user(username, password="x")
    for codename in ("access_admin", *codenames):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


def form(rules):
    raw = rules if isinstance(rules, str) else json.dumps(rules)
    return {"name": "Leeds readers", "slug": "leeds", "description": "", "rules": raw}


def preview(client, rules):
    raw = rules if isinstance(rules, str) else json.dumps(rules)
    return client.post(reverse("subscribers_segment:preview"), {"rules": raw})


def test_create_a_segment_with_the_builder(admin_client, people):
    page = admin_client.get(reverse("subscribers_segment:add"))
    assert page.status_code == 200
    assert "data-segment-builder" in page.text and "segment-builder.js" in page.text
    assert reverse("subscribers_segment:preview") in page.text

    response = admin_client.post(reverse("subscribers_segment:add"), form(LEEDS))
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.rules == LEEDS


def test_edit_shows_the_rules_and_saves_changes(admin_client, people):
    segment = Segment.objects.create(name="Leeds readers", slug="leeds", rules=LEEDS)
    url = reverse("subscribers_segment:edit", args=[segment.pk])
    assert "Leeds" in admin_client.get(url).text
    york = {"match": "any", "rules": [{"field": "attribute", "name": "City", "op": "contains", "value": " york "}]}
    assert admin_client.post(url, form(york)).status_code == 302
    segment.refresh_from_db()
    assert segment.rules == {
        "match": "any",
        "rules": [{"field": "attribute", "name": "city", "op": "contains", "value": "york"}],
    }


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("{not json", "could not be read"),
        ('"' + "[" * 5000 + '"', "Not a group"),
        ("[" * 100000, "could not be read"),
        ({"match": "all", "rules": []}, "Add at least one rule"),
        ({"match": "all", "rules": [{"field": "list", "op": "is_on", "value": 999999}]}, "no longer exists"),
        ({"match": "all", "rules": [{"field": "attribute", "name": "x;drop", "op": "is_set"}]}, "not a valid name"),
    ],
)
def test_bad_rules_are_form_errors_never_500(admin_client, people, rules, message):
    response = admin_client.post(reverse("subscribers_segment:add"), form(rules))
    assert response.status_code == 200
    assert message.lower() in response.text.lower()
    assert not Segment.objects.exists()
    answer = preview(admin_client, rules)
    assert (answer.status_code, answer.json()["count"]) == (200, None)  # an answer while editing, not a failure
    assert any(message.lower() in error.lower() for error in answer.json()["errors"])


def test_live_count_and_sample_follow_the_rules(admin_client, people):
    answer = preview(admin_client, LEEDS)
    assert answer.status_code == 200
    assert answer.json()["count"] == 2
    assert sorted(item["email"] for item in answer.json()["sample"]) == ["ann@example.com", "cat@example.com"]
    anyone = {"match": "any", "rules": [LEEDS["rules"][0], {"field": "email", "op": "contains", "value": "bob"}]}
    assert preview(admin_client, anyone).json()["count"] == 3


def test_live_count_is_for_segment_staff_only_and_the_sample_for_who_may_see_subscribers(client, people):
    assert preview(client, LEEDS).status_code in (302, 403)  # anonymous: never a count

    user_with(client, "plain")  # admin access, no segment permission
    assert preview(client, LEEDS).status_code == 403

    client.logout()
    user_with(client, "builder", "change_segment")
    answer = preview(client, LEEDS)
    assert (answer.status_code, answer.json()["count"], answer.json()["sample"]) == (200, 2, [])


def test_a_segment_a_campaign_used_is_not_deleted(admin_client, people, issue_page):
    from campaigns.services import create_campaign

    segment = Segment.objects.create(name="Leeds readers", slug="leeds", rules=LEEDS)
    create_campaign(issue_page, [people], segment=segment)
    response = admin_client.post(reverse("subscribers_segment:delete", args=[segment.pk]), follow=True)
    assert Segment.objects.filter(pk=segment.pk).exists()
    assert "cannot be deleted" in response.text
    unused = Segment.objects.create(name="Unused", slug="unused", rules=LEEDS)
    admin_client.post(reverse("subscribers_segment:delete", args=[unused.pk]))
    assert not Segment.objects.filter(pk=unused.pk).exists()


def test_copy_starts_a_new_segment_from_the_rules_and_the_listing_shows_them(admin_client, people):
    segment = Segment.objects.create(name="Leeds readers", slug="leeds", rules=LEEDS, description="Our city")
    copy = admin_client.get(reverse("subscribers_segment:copy", args=[segment.pk]))
    assert copy.status_code == 200 and "Leeds" in copy.text
    # The copy's form posts to the add view (Wagtail's CopyView), so the original stays.
    assert f'action="{reverse("subscribers_segment:add")}"' in copy.text
    response = admin_client.post(reverse("subscribers_segment:add"), {**form(LEEDS), "slug": "leeds-2"})
    assert response.status_code == 302
    assert Segment.objects.get(slug="leeds-2").rules == LEEDS
    listing = admin_client.get(reverse("subscribers_segment:index"))
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", listing.text))
    assert "leeds-2" in text and "Our city" in text  # both segments listed


def test_the_builder_speaks_chinese(client, django_user_model, people):
    from wagtail.users.models import UserProfile

    user = django_user_model.objects.create_superuser("li", "li@example.com", "pw")
    UserProfile.get_for_user(user).__class__.objects.filter(user=user).update(preferred_language="zh-hans")
    client.force_login(user)
    page = client.get(reverse("subscribers_segment:add"))
    schema = json.loads(
        re.search(r'<script id="id_rules-schema" type="application/json">(.*?)</script>', page.text).group(1)
    )
    assert "细分群组" in page.text and schema["text"]["field"] == "规则依据"
    answer = preview(
        client, {"match": "all", "rules": [{"field": "attribute", "name": "age", "op": "gt", "value": "x"}]}
    )
    assert answer.json()["errors"] == ["第 1 条规则：请输入数字，例如 42 或 -3.5。"]
