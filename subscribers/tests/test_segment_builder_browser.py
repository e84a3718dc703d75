"""The segment builder in a real browser: an editor builds rules from rows (no JSON, no SQL), sees
the live count change as they edit, adds a nested group, and saves."""

import re

import pytest
from django.contrib.auth import get_user_model

from subscribers.models import Segment
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

PASSWORD = "a long browser password"


@pytest.fixture
def readers(transactional_db):
    news = MailingListFactory(name="News", slug="news")
    for local, city, plan in (("ann", "Leeds", "pro"), ("bob", "York", "pro"), ("cat", "Leeds", "free")):
        subscriber = SubscriberFactory(email=f"{local}@example.com", attributes={"city": city, "plan": plan})
        SubscriptionFactory(subscriber=subscriber, list=news)
    get_user_model().objects.create_superuser("ada", "ada@example.com", PASSWORD)
    return news


def test_an_editor_builds_a_segment_from_rows_with_a_live_count(page, readers):
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")

    page.goto("/admin/segments/new/")
    page.fill("#id_name", "Leeds readers")
    page.fill("#id_slug", "leeds")
    builder = page.locator("[data-segment-builder]")
    assert page.locator("#id_rules").is_hidden()  # the JSON is behind the rows

    builder.get_by_label("What the rule looks at").first.select_option("attribute")
    builder.get_by_label("Attribute name").first.fill("city")
    builder.get_by_label("How it compares").first.select_option("equals")
    builder.get_by_label("Value").first.fill("Leeds")
    count = builder.locator("[data-count]")
    page.wait_for_function("document.querySelector('[data-count]')?.dataset.count === '2'")
    assert re.search(r"\b2\b", count.inner_text())
    assert "ann@example.com" in builder.locator("[data-preview]").inner_text()

    # A nested group: Leeds readers on the pro plan or whose address contains "zz" (nobody).
    builder.get_by_role("button", name="Add a group").click()
    group = builder.locator(".segment-builder__nested")
    group.get_by_label("Attribute name").fill("plan")
    group.get_by_label("How it compares").select_option("equals")
    group.get_by_label("Value").fill("pro")
    group.get_by_role("button", name="Add a rule").click()
    group.get_by_label("What the rule looks at").nth(1).select_option("email")
    group.get_by_label("Value").nth(1).fill("zz")
    page.wait_for_function("document.querySelector('[data-count]')?.dataset.count === '1'")

    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/admin/segments/")
    segment = Segment.objects.get(slug="leeds")
    assert segment.rules == {
        "match": "all",
        "rules": [
            {"field": "attribute", "name": "city", "op": "equals", "value": "Leeds"},
            {
                "match": "any",
                "rules": [
                    {"field": "attribute", "name": "plan", "op": "equals", "value": "pro"},
                    {"field": "email", "op": "contains", "value": "zz"},
                ],
            },
        ],
    }
