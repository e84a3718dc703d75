"""The subscriber edit form's attributes: rows of name + value instead of raw JSON, round-tripping
to the JSON field, validated (names, text values, sizes), and never a 500 on garbage."""

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from subscribers.attributes import MAX_ATTRIBUTES, NAME_PATTERN
from subscribers.models import Subscriber
from subscribers.tests.factories import SubscriberFactory
from subscribers.tests.nasty_strings import NASTY_STRINGS

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann():
    return SubscriberFactory(email="ann@example.com", name="Ann", attributes={"city": "Leeds"})


def edit_url(subscriber):
    return reverse("subscribers_subscriber:edit", args=[subscriber.pk])


def post(client, subscriber, rows, **extra):
    """POST the edit form with attribute ``rows`` [(name, value), ...] as the browser sends them."""
    data = {"email": subscriber.email, "name": subscriber.name, "language": "en", "state": "active",
            "state_reason": "", "attributes": "rows",
            "attributes-name": [name for name, _ in rows], "attributes-value": [value for _, value in rows],
            **extra}  # fmt: skip
    return client.post(edit_url(subscriber), data)


def shown_rows(client, subscriber):
    """The (name, value) rows the edit form shows, blank spare row left out."""
    doc = BeautifulSoup(client.get(edit_url(subscriber)).text, "html.parser")
    rows = doc.select("[data-attributes-editor] tbody[data-rows] tr")
    pairs = [tuple(i["value"] for i in row.select("input")) for row in rows]
    return [pair for pair in pairs if any(pair)]


def errors(response):
    doc = BeautifulSoup(response.text, "html.parser")
    return doc.select_one("[data-contentpath=attributes] [data-field-errors]").get_text(" ", strip=True)


def test_the_edit_form_shows_attributes_as_name_and_value_rows_not_json(admin_client, ann):
    html = admin_client.get(edit_url(ann)).text

    assert shown_rows(admin_client, ann) == [("city", "Leeds")]
    assert '{"city"' not in html and "&quot;city&quot;" not in html
    assert "Add a field" in html and "attributes-editor.js" in html


def test_rows_round_trip_to_the_json_field(admin_client, ann):
    rows = [("city", "York"), ("Member since", " 2019 "), ("", ""), ("favourite_section", "Culture & arts")]

    response = post(admin_client, ann, rows)

    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.attributes == {"city": "York", "member_since": "2019", "favourite_section": "Culture & arts"}
    # Shown by name, as on the subscriber's page.
    assert shown_rows(admin_client, ann) == [("city", "York"), ("favourite_section", "Culture & arts"),
                                              ("member_since", "2019")]  # fmt: skip


def test_removing_every_row_leaves_no_attributes(admin_client, ann):
    response = post(admin_client, ann, [])

    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.attributes == {}


def test_older_values_that_are_not_text_are_shown_as_json_and_saved_as_text(admin_client):
    legacy = SubscriberFactory(email="old@example.com", attributes={"visits": 3, "vip": True, "tags": ["a", "b"]})

    assert shown_rows(admin_client, legacy) == [("tags", '["a", "b"]'), ("vip", "true"), ("visits", "3")]
    assert post(admin_client, legacy, shown_rows(admin_client, legacy)).status_code == 302
    legacy.refresh_from_db()
    assert legacy.attributes == {"visits": "3", "vip": "true", "tags": '["a", "b"]'}  # flat: no nested lists


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("city", "Leeds"), ("City", "York")], "“city” is there twice"),
        ([("2nd_city", "York")], "not a valid name"),
        ([("city.name", "York")], "not a valid name"),
        ([("_private", "x")], "not a valid name"),
        ([("n" * 51, "x")], "too long"),
        ([("", "York")], "Give the value “York” a name"),
        ([("city", "Leeds\r\nBcc: victim@example.org")], "control character"),
        ([("city", "Lee\x00ds")], "control character"),
        ([("city", "x" * 501)], "too long"),
        ([(f"field_{n}", "x") for n in range(MAX_ATTRIBUTES + 1)], f"At most {MAX_ATTRIBUTES} fields"),
    ],
)
def test_invalid_rows_are_explained_and_nothing_is_saved(admin_client, ann, rows, message):
    response = post(admin_client, ann, rows)

    assert response.status_code == 200
    assert message in errors(response)
    ann.refresh_from_db()
    assert ann.attributes == {"city": "Leeds"}


def test_an_error_names_its_row_and_keeps_what_was_typed(admin_client, ann):
    response = post(admin_client, ann, [("city", "York"), ("2nd", "x")])

    assert "Row 2:" in errors(response)
    doc = BeautifulSoup(response.text, "html.parser")
    assert [i["value"] for i in doc.select("tbody[data-rows] input")][:4] == ["city", "York", "2nd", "x"]


nasty = st.sampled_from(NASTY_STRINGS) | st.text(max_size=60)


@hypothesis_settings(
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(names=st.lists(nasty, max_size=6), values=st.lists(nasty, max_size=6), marker=st.booleans())
def test_garbage_rows_never_answer_5xx_and_only_valid_attributes_are_stored(admin_client, names, values, marker):
    subscriber = Subscriber.objects.get_or_create(email="hostile@example.com", defaults={"name": "H"})[0]
    data = {"email": "hostile@example.com", "name": "H", "language": "en", "state": "active", "state_reason": "",
            "attributes-name": names, "attributes-value": values}  # fmt: skip
    if marker:
        data["attributes"] = "rows"

    response = admin_client.post(edit_url(subscriber), data)

    assert response.status_code in (200, 302)
    subscriber.refresh_from_db()
    for name, value in subscriber.attributes.items():
        assert NAME_PATTERN.fullmatch(name) and len(name) <= 50
        assert isinstance(value, str) and len(value) <= 500 and "\x00" not in value and "\n" not in value


def test_the_editor_adds_and_removes_rows_in_a_browser(page, live_server):
    """The add/remove buttons (attributes-editor.js) in Wagtail's admin, saved and read back."""
    get_user_model().objects.create_superuser("boss", "boss@example.org", "a long admin password")
    subscriber = SubscriberFactory(email="ann@example.com", name="Ann", attributes={"city": "Leeds", "old": "x"})
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(reverse("wagtailadmin_login"))
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill("a long admin password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")

    page.goto(edit_url(subscriber))
    editor = page.locator("[data-attributes-editor]")
    names = editor.locator("tbody input[name='attributes-name']")
    old_row = editor.locator("tbody tr").filter(has=page.locator("input[value='old']"))
    old_row.get_by_role("button", name="Remove").click()
    editor.get_by_role("button", name="Add a field").click()
    new_name = names.last
    assert new_name.evaluate("e => e === document.activeElement")  # ready to type
    new_name.fill("Member since")
    editor.locator("tbody input[name='attributes-value']").last.fill("2019")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/admin/subscribers/")

    subscriber.refresh_from_db()
    assert subscriber.attributes == {"city": "Leeds", "member_since": "2019"}
