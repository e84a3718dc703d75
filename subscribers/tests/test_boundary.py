"""Issue 8's findings at the subscribers boundary, one reproduction each (they answered 500 or leaked)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from subscribers import tokens
from subscribers.models import ImportJob, SubscribePage, Subscriber, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

HUGE_ID = "99999999999999999999999"  # Larger than any 64-bit integer column.


@pytest.fixture
def news(db):
    return MailingListFactory(name="Morning News", slug="news")


@pytest.fixture
def subscribe_page(home_page, newsletter_settings, news):
    return home_page.add_child(instance=SubscribePage(title="Subscribe", slug="subscribe"))


def subscribe(client, email="ann@example.com", lists=(), **extra):
    data = {"email": email, "name": "", "lists": list(lists), "website": "", **extra}
    return client.post("/subscribe/", data, follow=True)  # past the Post/Redirect/Get


def csrf_post(client, path, data):
    client.get("/subscribe/")
    return client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


# --- Finding 7: the per-IP limit behind the documented proxy ----------------------------------


def test_behind_the_proxy_one_visitor_reaching_the_limit_does_not_close_the_form_for_others(
    subscribe_page, news, settings
):
    settings.BROADSHEET = {**settings.BROADSHEET, "TRUSTED_PROXY_COUNT": 1, "SUBSCRIBE_RATE_PER_IP": "2/h"}
    noisy = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    other = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")

    answers = [subscribe(noisy, f"n{n}@example.com", [news.pk]).status_code for n in range(3)]

    assert answers == [200, 200, 429]
    assert subscribe(other, "other@example.com", [news.pk]).status_code == 200


def test_behind_the_proxy_a_forged_forwarded_entry_does_not_escape_the_limit(subscribe_page, news, settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "TRUSTED_PROXY_COUNT": 1, "SUBSCRIBE_RATE_PER_IP": "1/h"}

    first = subscribe(Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.7"), "a@example.com")
    again = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="2.2.2.2, 198.51.100.7")

    assert first.status_code == 200
    assert subscribe(again, "b@example.com", [news.pk]).status_code == 429


# --- Finding 10: 500s -------------------------------------------------------------------------


def test_subscribe_form_with_an_out_of_range_list_id_is_a_form_error(subscribe_page, news):
    response = subscribe(Client(), "ann@example.com", [HUGE_ID])

    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    assert not Subscriber.objects.exists()


def test_subscribe_form_with_a_non_numeric_list_id_is_a_form_error(subscribe_page, news):
    response = subscribe(Client(), "ann@example.com", ["1e9", "-1"])

    assert response.status_code == 200
    assert not Subscriber.objects.exists()


def test_preference_centre_with_an_out_of_range_list_id_is_a_form_error(subscribe_page, news):
    subscription = SubscriptionFactory(list=news)
    path = reverse("subscribers:preferences", args=[tokens.preferences_token(subscription.subscriber.uid)])

    response = csrf_post(Client(), path, {"name": "Ann", "lists": [HUGE_ID]})

    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUBSCRIBED


def test_an_address_the_validator_accepts_but_headers_refuse_is_a_form_error(subscribe_page, news, mailoutbox):
    response = subscribe(Client(), '"a\x0bb"@example.com', [news.pk])

    assert response.status_code == 200
    assert "Enter a valid email address" in response.text
    assert not Subscriber.objects.exists()
    assert mailoutbox == []


@pytest.mark.parametrize("address", ['"a\x0bb"@example.com', '"a\x00b"@example.com', '"a\rb"@example.com'])
def test_control_characters_are_refused_in_any_address(db, address):
    from django.core.exceptions import ValidationError

    from subscribers.models import normalise_email

    with pytest.raises(ValidationError):
        normalise_email(address)


def test_a_quoted_local_part_without_control_characters_is_still_an_address(db):
    from subscribers.models import normalise_email

    assert normalise_email('"ann..smith"@Example.com') == '"ann..smith"@example.com'


@pytest.fixture
def import_job(admin_user):
    upload = SimpleUploadedFile("people.csv", b"email,name\nann@example.com,Ann\n", content_type="text/csv")
    from subscribers.importing import create_import_job

    return create_import_job(upload, admin_user)


@pytest.mark.parametrize("delimiter", ["ab", "\n", '"', "\r", "\x00"])
def test_a_bad_delimiter_in_the_import_mapping_is_a_clear_error(admin_client, import_job, delimiter):
    url = reverse("subscribers_import:map", args=[import_job.pk])

    response = admin_client.get(url, {"encoding": "utf-8", "delimiter": delimiter})

    assert response.status_code == 200
    assert "delimiter" in response.text.lower()
    assert ImportJob.objects.get().column_map == {}


def test_a_bad_delimiter_posted_with_the_mapping_queues_nothing(admin_client, import_job, news):
    url = reverse("subscribers_import:map", args=[import_job.pk])
    data = {"encoding": "utf-8", "delimiter": "ab", "col_0": "email", "col_1": "name", "lists": [news.pk],
            "mode": "confirm"}  # fmt: skip

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert ImportJob.objects.get().column_map == {}


@pytest.mark.parametrize("value", ["[1, 2]", '"Leeds"', "42"])
def test_subscriber_attributes_that_are_not_a_json_object_are_refused_by_the_edit_form(admin_client, value):
    subscriber = SubscriberFactory(email="ann@example.com", attributes={"city": "Leeds"})
    url = reverse("subscribers_subscriber:edit", args=[subscriber.pk])
    data = {"email": "ann@example.com", "name": "Ann", "language": "en", "attributes": value, "state": "active",
            "state_reason": ""}  # fmt: skip

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "JSON object" in response.text
    subscriber.refresh_from_db()
    assert subscriber.attributes == {"city": "Leeds"}
    assert admin_client.get(reverse("subscribers_subscriber:inspect", args=[subscriber.pk])).status_code == 200


@pytest.mark.parametrize("value", ["null", ""])
def test_empty_subscriber_attributes_are_saved_as_no_attributes(admin_client, value):
    subscriber = SubscriberFactory(email="ann@example.com", attributes={"city": "Leeds"})
    url = reverse("subscribers_subscriber:edit", args=[subscriber.pk])
    data = {"email": "ann@example.com", "name": "Ann", "language": "en", "attributes": value, "state": "active",
            "state_reason": ""}  # fmt: skip

    response = admin_client.post(url, data)

    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.attributes == {}


def test_the_admin_edit_form_refuses_an_address_headers_cannot_carry(admin_client):
    subscriber = SubscriberFactory(email="ann@example.com")
    url = reverse("subscribers_subscriber:edit", args=[subscriber.pk])
    data = {"email": '"a\x0bb"@example.com', "name": "Ann", "language": "en", "attributes": "{}",
            "state": "active", "state_reason": ""}  # fmt: skip

    response = admin_client.post(url, data)

    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.email == "ann@example.com"


# --- Finding 9: data surprises ----------------------------------------------------------------


def run_import(data: bytes, lists, column_map, **options):
    import io

    from subscribers.importing import ImportOptions, import_csv

    options = ImportOptions(
        lists=lists, column_map=column_map, mode="subscribe", consent_note="Fair", source_name="f.csv", **options
    )
    return import_csv(io.BytesIO(data), options)


def test_an_import_keeps_the_name_a_subscriber_already_has(news):
    ann = SubscriberFactory(email="ann@example.com", name="Ann Smith")

    run_import(b"email,name\nann@example.com,A. SMITH (sales lead)\n", [news], {"email": "email", "name": "name"})

    ann.refresh_from_db()
    assert ann.name == "Ann Smith"
    assert ann.subscriptions.get().list == news


def test_an_import_replaces_names_only_when_chosen(news):
    ann = SubscriberFactory(email="ann@example.com", name="Ann Smith")

    run_import(b"email,name\nann@example.com,Ann Jones\n", [news], {"email": "email", "name": "name"},
               update_names=True)  # fmt: skip

    ann.refresh_from_db()
    assert ann.name == "Ann Jones"


def test_repeated_header_names_map_by_position(admin_client, news, django_capture_on_commit_callbacks):
    data = b"Name,Name,Email\nAnn,Smith,ann@example.com\n"
    admin_client.post(reverse("subscribers_import:index"), {"file": SimpleUploadedFile("a.csv", data),
                                                            "encoding": "utf-8"})  # fmt: skip
    job = ImportJob.objects.get()
    form = admin_client.get(reverse("subscribers_import:map", args=[job.pk]), {"encoding": "utf-8"})
    assert form.status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("subscribers_import:map", args=[job.pk]),
            {"encoding": "utf-8", "delimiter": ",", "col_0": "name", "col_1": "attribute", "attr_1": "surname",
             "col_2": "email", "lists": [news.pk], "mode": "subscribe", "consent_note": "Fair"},
        )  # fmt: skip

    assert response.status_code == 302
    ann = Subscriber.objects.get()
    assert (ann.email, ann.name, ann.attributes) == ("ann@example.com", "Ann", {"surname": "Smith"})


def test_the_mapping_form_offers_the_name_choice_off_by_default(admin_client, news, django_capture_on_commit_callbacks):
    SubscriberFactory(email="ann@example.com", name="Ann Smith")
    admin_client.post(
        reverse("subscribers_import:index"),
        {"file": SimpleUploadedFile("a.csv", b"email,name\nann@example.com,Someone Else\n"), "encoding": "utf-8"},
    )
    job = ImportJob.objects.get()
    form = admin_client.get(reverse("subscribers_import:map", args=[job.pk]))
    assert "Replace names subscribers already have" in form.text

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("subscribers_import:map", args=[job.pk]), {
            "encoding": "utf-8", "col_0": "email", "col_1": "name", "lists": [news.pk], "mode": "subscribe",
            "consent_note": "Fair"})  # fmt: skip

    assert Subscriber.objects.get().name == "Ann Smith"


@pytest.mark.parametrize("query", [{"state": "nonsense"}, {"list": "999999"}, {"status": "gone"}, {"list": HUGE_ID}])
def test_export_these_with_an_invalid_filter_answers_400_and_exports_nobody(admin_client, news, query):
    SubscriptionFactory(list=news, subscriber__email="ann@example.com")

    response = admin_client.get(reverse("subscribers_import:export_subscribers"), query)

    assert response.status_code == 400
    assert "invalid filter" in response.text
    assert "ann@example.com" not in response.text
