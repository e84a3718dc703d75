"""The subscribers admin through the Django test client: listings, history, import, export, GDPR."""

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from subscribers.models import ImportJob, Subscriber, SubscriberEvent, Subscription, Suppression, email_hash
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return MailingListFactory(name="News", slug="news")


@pytest.fixture
def people(news):
    ann = SubscriptionFactory(list=news, subscriber__email="ann@example.com", subscriber__name="Ann Smith").subscriber
    bob = SubscriptionFactory(
        list=news, subscriber__email="bob@example.com", subscriber__name="Bob", status=Subscription.Status.PENDING
    ).subscriber
    cat = SubscriptionFactory(
        list=news, subscriber__email="cat@example.com", status=Subscription.Status.UNSUBSCRIBED
    ).subscriber
    return ann, bob, cat


@pytest.fixture
def editor_client(client):
    """A user who may use the Wagtail admin but has no permission on subscribers."""
    user = get_user_model().objects.create_user("editor", password="x")
    user.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(user)
    return client


def listed_emails(response):
    return {s.email for s in response.context["object_list"]}


def test_list_listing_shows_per_list_counts(admin_client, people, news):
    response = admin_client.get(reverse("subscribers_list:index"))

    assert response.status_code == 200
    row = next(m for m in response.context["object_list"] if m.pk == news.pk)
    assert (row.receiving_count, row.suppressed_count, row.pending_count, row.unsubscribed_count) == (1, 0, 1, 1)
    assert "Unsubscribed" in response.text


def test_subscriber_listing_searches_address_and_name(admin_client, people):
    url = reverse("subscribers_subscriber:index")

    assert listed_emails(admin_client.get(url, {"q": "BOB@EX"})) == {"bob@example.com"}
    assert listed_emails(admin_client.get(url, {"q": "smith"})) == {"ann@example.com"}


def test_subscriber_listing_filters_by_list_and_status_together(admin_client, people, news):
    other = MailingListFactory(slug="other")
    SubscriptionFactory(list=other, subscriber=people[2])  # cat: unsubscribed from news, subscribed to other
    url = reverse("subscribers_subscriber:index")

    response = admin_client.get(url, {"list": news.pk, "status": "subscribed"})

    assert listed_emails(response) == {"ann@example.com"}
    assert listed_emails(admin_client.get(url, {"status": "unsubscribed"})) == {"cat@example.com"}


def test_subscriber_listing_filters_by_state_and_date(admin_client, people):
    blocked = SubscriberFactory(email="dan@example.com", state=Subscriber.State.BLOCKED)
    url = reverse("subscribers_subscriber:index")

    assert listed_emails(admin_client.get(url, {"state": "blocked"})) == {blocked.email}
    assert (
        listed_emails(admin_client.get(url, {"created_at_from": "2000-01-01", "created_at_to": "2000-12-31"})) == set()
    )


def test_history_page_shows_consent_and_events(admin_client, people, news):
    ann = people[0]
    sub = ann.subscriptions.get()
    sub.consent_ip, sub.consent_detail = "203.0.113.9", "https://news.example.com/subscribe/"
    sub.save()
    SubscriberEvent.objects.create(subscriber=ann, list=news, kind="confirmed", detail={"ip": "203.0.113.9"})

    response = admin_client.get(reverse("subscribers_subscriber:inspect", args=[ann.pk]))

    assert response.status_code == 200
    assert "https://news.example.com/subscribe/" in response.text
    assert "203.0.113.9" in response.text
    assert "confirmed" in response.text
    assert "I agree to receive the newsletters" in response.text


def test_import_upload_map_and_progress(admin_client, news, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("people.csv", b"E-mail;Full name;City\nann@example.com;Ann;Leeds\nnope;X;Y\n")
    response = admin_client.post(reverse("subscribers_import:index"), {"file": upload, "encoding": "utf-8"})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and reverse("subscribers_import:map", args=[job.pk]) in response.url

    form = admin_client.get(response.url)
    assert form.status_code == 200
    assert "semicolon" in form.text and "Full name" in form.text

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("subscribers_import:map", args=[job.pk]),
            {
                "encoding": "utf-8", "delimiter": ";", "col_0": "email", "col_1": "name", "col_2": "attribute",
                "attr_2": "city", "lists": [news.pk], "mode": "subscribe", "consent_note": "Book fair sheet",
            },
        )  # fmt: skip

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert Subscriber.objects.get().attributes == {"city": "Leeds"}
    assert "Book fair sheet" in Subscription.objects.get().consent_detail
    progress = admin_client.get(reverse("subscribers_import:progress", args=[job.pk]))
    assert "Not a valid email address" in progress.text
    status = admin_client.get(reverse("subscribers_import:status", args=[job.pk])).json()
    assert status["finished"] and status["created"] == 1 and status["errors"] == 1
    recent = admin_client.get(reverse("subscribers_import:index"))
    assert "people.csv" in recent.text and "Done" in recent.text


def test_import_subscribe_mode_requires_consent_note(admin_client, news):
    admin_client.post(reverse("subscribers_import:index"), {"file": SimpleUploadedFile("a.csv", b"email\na@b.com\n"),
                                                            "encoding": "utf-8"})  # fmt: skip
    job = ImportJob.objects.get()

    response = admin_client.post(
        reverse("subscribers_import:map", args=[job.pk]),
        {"encoding": "utf-8", "col_0": "email", "lists": [news.pk], "mode": "subscribe", "consent_note": ""},
    )

    assert response.status_code == 200
    assert "consent" in str(response.context["form"].errors["consent_note"])
    assert not Subscriber.objects.exists()


def test_import_mapping_shows_encoding_error_with_line(admin_client, news):
    data = "nom;adresse électronique\nZoë;zoe@example.com\n".encode("cp1252")
    admin_client.post(reverse("subscribers_import:index"), {"file": SimpleUploadedFile("a.csv", data),
                                                            "encoding": "utf-8"})  # fmt: skip
    job = ImportJob.objects.get()

    response = admin_client.get(reverse("subscribers_import:map", args=[job.pk]), {"encoding": "utf-8"})

    assert "Line 1 is not valid UTF-8" in response.text
    retry = admin_client.get(reverse("subscribers_import:map", args=[job.pk]), {"encoding": "cp1252"})
    assert "adresse électronique" in retry.text


def test_export_list_streams_escaped_csv(admin_client, news):
    SubscriptionFactory(list=news, subscriber__email="ann@example.com", subscriber__name="=SUM(A1)")

    response = admin_client.get(reverse("subscribers_import:export_list", args=[news.pk]))

    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["name"] == "'=SUM(A1)"


def test_export_subscribers_uses_listing_filters(admin_client, people, news):
    response = admin_client.get(reverse("subscribers_import:export_subscribers"), {"list": news.pk,
                                                                                   "status": "pending"})  # fmt: skip

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["email"] for r in rows] == ["bob@example.com"]


def test_gdpr_export_downloads_json(admin_client, people):
    response = admin_client.get(reverse("subscribers_import:gdpr_export", args=[people[0].pk]))

    assert response["Content-Disposition"].startswith("attachment")
    assert json.loads(response.content)["subscriber"]["email"] == "ann@example.com"


def test_gdpr_erase_needs_the_typed_address_then_erases(admin_client, people):
    ann = people[0]
    url = reverse("subscribers_import:gdpr_erase", args=[ann.pk])

    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"confirm_email": "wrong@example.com"}).status_code == 200
    ann.refresh_from_db()
    assert ann.email == "ann@example.com"

    response = admin_client.post(url, {"confirm_email": "ann@example.com"})

    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.email.endswith("@erased.invalid")
    assert Suppression.objects.filter(email_hash=email_hash("ann@example.com")).exists()


def test_delete_leads_to_erase_so_a_suppression_hash_is_kept(admin_client, people):
    ann = people[0]

    response = admin_client.post(reverse("subscribers_subscriber:delete", args=[ann.pk]))

    assert response.status_code == 302
    assert response.url == reverse("subscribers_import:gdpr_erase", args=[ann.pk])
    assert Subscriber.objects.filter(pk=ann.pk, email="ann@example.com").exists(), "nothing deleted"


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("subscribers_subscriber:index", []),
        ("subscribers_list:index", []),
        ("subscribers_import:index", []),
        ("subscribers_import:export_list", ["list"]),
        ("subscribers_import:export_subscribers", []),
        ("subscribers_import:gdpr_export", ["subscriber"]),
        ("subscribers_import:gdpr_erase", ["subscriber"]),
        ("subscribers_subscriber:inspect", ["subscriber"]),
    ],
)
def test_admin_user_without_subscriber_permissions_gets_no_access(editor_client, people, news, name, args):
    ids = {"list": news.pk, "subscriber": people[0].pk}

    response = editor_client.get(reverse(name, args=[ids[a] for a in args]))

    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert response.url == reverse("wagtailadmin_home")


def test_anonymous_visitor_is_sent_to_login(client, news):
    response = client.get(reverse("subscribers_import:export_list", args=[news.pk]))

    assert response.status_code == 302 and "login" in response.url


def test_admin_menu_has_one_subscribers_group(admin_client):
    response = admin_client.get(reverse("wagtailadmin_home"))

    for name in ("subscribers_list:index", "subscribers_subscriber:index", "subscribers_import:index"):
        assert reverse(name) in response.text
