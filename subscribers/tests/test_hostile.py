"""Hostile requests against every public subscriber view (issue 8: "prove the boundary").

Hypothesis sends arbitrary values to the subscribe form, the confirmation, unsubscribe, one-click
and preference-centre links, and the corpus of nasty strings goes through every form field and
every CSV column. Properties:

- never a 5xx, whatever is posted;
- without a valid token, nothing changes: no subscription, subscriber, event or email;
- whatever a form accepted can be sent: no stored name holds a line break or control character;
- an import of any cell reports problems by line and never stops, and an export of what it stored
  escapes every formula prefix.

Examples per property come from the Hypothesis profile (conftest.py; ``HYPOTHESIS_PROFILE=thorough``
for a long run).
"""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mail.addresses import has_control_characters
from pages.models import SubscribePage
from subscribers import tokens
from subscribers.exporting import FORMULA_STARTS, export_subscribers
from subscribers.importing import ImportOptions, import_csv
from subscribers.models import Subscriber, SubscriberEvent, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory
from subscribers.tests.nasty_strings import NASTY_STRINGS

pytestmark = pytest.mark.django_db

hostile = hypothesis_settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
)
nasty = st.sampled_from(NASTY_STRINGS) | st.text(max_size=80)
ids = st.sampled_from(["1", "2", "0", "-1", "99999999999999999999999", "1.5", "x", "", "1e9"]) | st.integers().map(str)
LINK_VIEWS = ["subscribers:confirm", "subscribers:unsubscribe", "subscribers:one_click", "subscribers:preferences"]
# Tokens: garbage, near misses of real ones, and real tokens for the wrong purpose.
token_text = st.sampled_from(["", ".", "a" * 32 + ".x", "0" * 32 + "-1_1.abc", "%2e%2e", "..", "😀"]) | st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#\x00"), min_size=1, max_size=120
)


@pytest.fixture
def site(home_page, newsletter_settings, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "SUBSCRIBE_RATE_PER_IP": "100000/h",
                           "SUBSCRIBE_RATE_PER_ADDRESS": "100000/h"}  # fmt: skip
    home_page.add_child(instance=SubscribePage(title="Subscribe", slug="subscribe"))
    news = MailingListFactory(name="News", slug="news")
    MailingListFactory(name="Staff", slug="staff", is_public=False)
    ann = SubscriptionFactory(list=news, subscriber=SubscriberFactory(email="ann@example.com", name="Ann")).subscriber
    return news, ann


def snapshot():
    """Everything a stranger must not be able to change."""
    return (
        sorted(Subscription.objects.values_list("subscriber_id", "list_id", "status", "consent_detail")),
        sorted(Subscriber.objects.values_list("pk", "email", "name", "state")),
        SubscriberEvent.objects.count(),
    )


def assert_no_5xx(response):
    assert response.status_code < 500, response.status_code


@hostile
@given(email=nasty, name=nasty, lists=st.lists(ids, max_size=4), website=st.sampled_from(["", "x"]), source=nasty)
def test_the_subscribe_form_never_answers_5xx_and_stores_only_sendable_names(site, email, name, lists, website, source):
    response = Client().post("/subscribe/", {"email": email, "name": name, "lists": lists, "website": website,
                                             "source": source})  # fmt: skip

    assert_no_5xx(response)
    assert not any(has_control_characters(n) for n in Subscriber.objects.values_list("name", flat=True))
    assert not Subscription.objects.filter(list__slug="staff").exists()


@hostile
@given(token=token_text, method=st.sampled_from(["get", "post"]), view=st.sampled_from(LINK_VIEWS))
def test_a_link_without_a_valid_token_never_answers_5xx_and_changes_nothing(site, mailoutbox, token, method, view):
    before = snapshot()
    try:
        path = reverse(view, args=[token])
    except Exception:
        return

    response = getattr(Client(), method)(path, {"List-Unsubscribe": "One-Click", "unsubscribe_all": "1"})

    assert_no_5xx(response)
    assert response.status_code in (400, 404, 405, 410)
    assert snapshot() == before
    assert mailoutbox == []


@hostile
@given(purpose=st.sampled_from(["confirm", "unsubscribe", "preferences"]), view=st.sampled_from(LINK_VIEWS))
def test_a_real_token_for_another_purpose_changes_nothing(site, purpose, view):
    _news, ann = site
    token = {
        "confirm": lambda: tokens.confirm_token(ann.uid, [1]),
        "unsubscribe": lambda: tokens.unsubscribe_token(ann.uid),
        "preferences": lambda: tokens.preferences_token(ann.uid),
    }[purpose]()
    if view.split(":")[1].replace("one_click", "unsubscribe") == purpose:
        return  # The right purpose: that is the normal, tested behaviour.
    before = snapshot()

    response = Client().post(reverse(view, args=[token]), {"List-Unsubscribe": "One-Click", "unsubscribe_all": "1"})

    assert response.status_code in (400, 403, 410)  # 403: the preference centre's CSRF check
    assert snapshot() == before


@hostile
@given(name=nasty, lists=st.lists(ids, max_size=4))
def test_the_preference_centre_never_answers_5xx_to_its_subscriber(site, name, lists):
    _news, ann = site
    client = Client()
    path = reverse("subscribers:preferences", args=[tokens.preferences_token(ann.uid)])
    client.get(path)

    response = client.post(
        path, {"name": name, "lists": lists, "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )

    assert_no_5xx(response)
    ann.refresh_from_db()
    assert not has_control_characters(ann.name)


def test_a_post_without_a_csrf_token_changes_nothing_in_the_preference_centre(site):
    _news, ann = site
    before = snapshot()

    response = Client(enforce_csrf_checks=True).post(
        reverse("subscribers:preferences", args=[tokens.preferences_token(ann.uid)]), {"unsubscribe_all": "1"}
    )

    assert response.status_code == 403
    assert snapshot() == before


# --- The corpus through every field and every CSV column --------------------------------------

SUBSCRIBE_FIELDS = ["email", "name", "lists", "website", "source"]


@pytest.mark.parametrize("field", SUBSCRIBE_FIELDS)
def test_every_nasty_string_in_every_subscribe_field(site, field):
    news, _ann = site
    for value in NASTY_STRINGS:
        data = {"email": "new@example.com", "name": "New", "lists": [str(news.pk)], "website": "", "source": ""}
        data[field] = [value] if field == "lists" else value

        assert_no_5xx(Client().post("/subscribe/", data))
    assert not any(has_control_characters(n) for n in Subscriber.objects.values_list("name", flat=True))


@pytest.mark.parametrize("field", ["name", "lists"])
def test_every_nasty_string_in_every_preference_field(site, field):
    _news, ann = site
    client = Client()
    path = reverse("subscribers:preferences", args=[tokens.preferences_token(ann.uid)])
    client.get(path)
    for value in NASTY_STRINGS:
        data = {"name": "Ann", "lists": [], "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
        data[field] = [value] if field == "lists" else value

        assert_no_5xx(client.post(path, data))
    ann.refresh_from_db()
    assert not has_control_characters(ann.name)


@pytest.mark.parametrize("column", ["email", "name", "language", "city"])
def test_every_nasty_string_in_every_csv_column_is_imported_or_reported_by_line(site, column):
    news, _ann = site
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["email", "name", "language", "city"])
    for number, value in enumerate(NASTY_STRINGS):
        row = {"email": f"reader{number}@example.com", "name": "Reader", "language": "en", "city": "Leeds"}
        row[column] = value
        writer.writerow([row["email"], row["name"], row["language"], row["city"]])
    options = ImportOptions(lists=[news], column_map=["email", "name", "language", "city"], mode="subscribe",
                            consent_note="Hostile corpus", source_name="nasty.csv")  # fmt: skip

    result = import_csv(io.BytesIO(rows.getvalue().encode("utf-8")), options)

    assert result.processed_rows == len(NASTY_STRINGS)
    stored = result.created_count + result.updated_count + result.skipped_count
    assert stored + result.error_count == len(NASTY_STRINGS)
    assert all(note["line"] for note in result.notes)
    assert not any(has_control_characters(n) for n in Subscriber.objects.values_list("name", flat=True))
    exported = list(csv.reader(io.StringIO("".join(export_subscribers(Subscriber.objects.all())))))
    for row in exported[1:]:
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row
