"""The nasty-string corpus through every admin form that takes free text (issue 8: "prove the
boundary"): subscriber add and edit (email, name, language, attributes, reason), mailing list add
and edit (name, slug, description, sender name and addresses, mailer), the import mapping (consent
note, attribute names, delimiter, encoding) and the newsletter settings (sender, postal address,
footers). The send form is in campaigns/tests/test_admin_hostile.py.

For every value in every field: never a 5xx; either a form error on the page and nothing
changed, or saved, and then the pages that show it still render and every header built from it
later (From, To) is one header holding one address, folded within the RFC limits.
"""

import email
import email.policy

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mail.addresses import format_address, reformat_address
from mail.models import FooterTranslation, NewsletterSettings
from mail.senders import sender_for
from mail.tests.forms import newsletter_settings_form
from mail.tests.mail_client import assert_rfc_folded, read_address
from subscribers.importing import create_import_job
from subscribers.models import ImportJob, MailingList, Subscriber
from subscribers.tests.factories import MailingListFactory, SubscriberFactory
from subscribers.tests.nasty_strings import NASTY_STRINGS

pytestmark = pytest.mark.django_db


def assert_no_5xx(response, field, value):
    assert response.status_code < 500, f"{field}={value[:60]!r}: {response.status_code}"


def form_errors(response) -> bool:
    """The form came back with an error shown (a 200 with errors, never a silent 200)."""
    form = response.context and response.context.get("form")
    if response.status_code != 200 or form is None:
        return False
    formsets = getattr(form, "formsets", {}).values()
    return bool(form.errors) or any(not formset.is_valid() for formset in formsets)


def assert_one_address_header(value: str, name: str) -> None:
    """``value`` (a From or To built for raw bytes) is one header with one address, named ``name``."""
    raw = f"From: {value}\r\nSubject: x\r\n\r\nbody\r\n".encode("ascii")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert list(message.keys()) == ["From", "Subject"]
    assert len(message["From"].addresses) == 1
    assert read_address(raw, "From")[0] == name
    assert_rfc_folded(raw, "From")


# --- Subscribers ---------------------------------------------------------------------------------

SUBSCRIBER_FIELDS = ["email", "name", "language", "attributes", "attribute value", "attribute key", "state_reason"]


def subscriber_data(number: int, field: str, value: str) -> dict:
    data = {
        "email": f"reader{number}@example.com",
        "name": "Reader",
        "language": "en",
        "attributes": "rows",  # the key/value editor's rows (subscribers.admin_forms.AttributesWidget)
        "attributes-name": [],
        "attributes-value": [],
        "state": Subscriber.State.ACTIVE,
        "state_reason": "",
    }
    if field == "attribute value":
        data["attributes-name"], data["attributes-value"] = ["city"], [value]
    elif field == "attribute key":
        data["attributes-name"], data["attributes-value"] = [value], ["Leeds"]
    else:
        data[field] = value
    return data


def assert_subscriber_is_safe(admin_client, subscriber) -> None:
    for view in ("subscribers_subscriber:inspect", "subscribers_subscriber:edit"):
        response = admin_client.get(reverse(view, args=[subscriber.pk]))
        assert response.status_code == 200
    assert_one_address_header(format_address(subscriber.email, subscriber.name, encode=True), subscriber.name)


@pytest.mark.parametrize("field", SUBSCRIBER_FIELDS)
def test_every_nasty_string_in_every_field_of_the_subscriber_add_form(admin_client, field):
    url = reverse("subscribers_subscriber:add")
    for number, value in enumerate(NASTY_STRINGS):
        response = admin_client.post(url, subscriber_data(number, field, value))

        assert_no_5xx(response, field, value)
        created = Subscriber.objects.filter(email_normalised__startswith=f"reader{number}@").first()
        if field == "email":
            created = Subscriber.objects.exclude(email_normalised__startswith="reader").first()
        if response.status_code == 302:
            assert created is not None, (field, value[:60])
            assert_subscriber_is_safe(admin_client, created)
            created.delete()
        else:
            assert form_errors(response), (field, value[:60])
            assert created is None


@pytest.mark.parametrize("field", SUBSCRIBER_FIELDS)
def test_every_nasty_string_in_every_field_of_the_subscriber_edit_form(admin_client, field):
    ann = SubscriberFactory(email="reader0@example.com", name="Ann", attributes={"city": "York"})
    url = reverse("subscribers_subscriber:edit", args=[ann.pk])
    for value in NASTY_STRINGS:
        before = Subscriber.objects.filter(pk=ann.pk).values().get()

        response = admin_client.post(url, subscriber_data(0, field, value))

        assert_no_5xx(response, field, value)
        ann.refresh_from_db()
        if response.status_code == 302:
            assert_subscriber_is_safe(admin_client, ann)
        else:
            assert form_errors(response), (field, value[:60])
            assert Subscriber.objects.filter(pk=ann.pk).values().get() == before


# --- Mailing lists -------------------------------------------------------------------------------

LIST_FIELDS = ["name", "slug", "description", "from_name", "from_email", "reply_to", "mailer", "language"]


def list_data(field: str, value: str) -> dict:
    data = {
        "name": "The Weekly",
        "slug": "weekly",
        "description": "",
        "is_public": "on",
        "double_opt_in": "on",
        "language": "",
        "from_name": "The Weekly Desk",
        "from_email": "weekly@example.com",
        "reply_to": "",
        "mailer": "",
    }
    data[field] = value
    return data


def assert_list_is_safe(admin_client, mailing_list, site_settings) -> None:
    assert admin_client.get(reverse("subscribers_list:index")).status_code == 200
    assert admin_client.get(reverse("subscribers_list:edit", args=[mailing_list.pk])).status_code == 200
    sender = sender_for(mailing_list)
    name = (
        (mailing_list.from_name or site_settings.sender_name) if mailing_list.from_email else site_settings.sender_name
    )
    assert_one_address_header(reformat_address(sender.from_email, encode=True), name)
    if sender.reply_to:
        assert_one_address_header(format_address(sender.reply_to, encode=True), "")


@pytest.mark.parametrize("field", LIST_FIELDS)
def test_every_nasty_string_in_every_field_of_the_list_add_form(admin_client, newsletter_settings, field):
    url = reverse("subscribers_list:add")
    for value in NASTY_STRINGS:
        response = admin_client.post(url, list_data(field, value))

        assert_no_5xx(response, field, value)
        created = MailingList.objects.first()
        if response.status_code == 302:
            assert_list_is_safe(admin_client, created, newsletter_settings)
            created.delete()
        else:
            assert form_errors(response), (field, value[:60])
            assert created is None


@pytest.mark.parametrize("field", LIST_FIELDS)
def test_every_nasty_string_in_every_field_of_the_list_edit_form(admin_client, newsletter_settings, field):
    weekly = MailingListFactory(name="The Weekly", slug="weekly", from_email="weekly@example.com")
    url = reverse("subscribers_list:edit", args=[weekly.pk])
    for value in NASTY_STRINGS:
        before = MailingList.objects.filter(pk=weekly.pk).values().get()

        response = admin_client.post(url, list_data(field, value))

        assert_no_5xx(response, field, value)
        weekly.refresh_from_db()
        if response.status_code == 302:
            assert_list_is_safe(admin_client, weekly, newsletter_settings)
        else:
            assert form_errors(response), (field, value[:60])
            assert MailingList.objects.filter(pk=weekly.pk).values().get() == before


# --- Import mapping ------------------------------------------------------------------------------

MAPPING_FIELDS = ["consent_note", "attr_1", "delimiter", "encoding"]


@pytest.mark.parametrize("field", MAPPING_FIELDS)
def test_every_nasty_string_in_every_field_of_the_import_mapping(admin_client, admin_user, field):
    news = MailingListFactory(name="News", slug="news")
    for value in NASTY_STRINGS:
        upload = SimpleUploadedFile("people.csv", b"email,city\nann@example.com,Leeds\n", content_type="text/csv")
        job = create_import_job(upload, admin_user)
        data = {"lists": [news.pk], "mode": "subscribe", "consent_note": "Leeds book fair", "encoding": "utf-8",
                "delimiter": "", "col_0": "email", "attr_0": "", "col_1": "attribute", "attr_1": "city"}  # fmt: skip
        data[field] = value

        response = admin_client.post(reverse("subscribers_import:map", args=[job.pk]), data)

        assert_no_5xx(response, field, value)
        job.refresh_from_db()
        if response.status_code == 302:
            assert job.column_map and job.column_map[0] == "email"
            assert admin_client.get(reverse("subscribers_import:progress", args=[job.pk])).status_code == 200
        else:
            assert form_errors(response), (field, value[:60])
            assert job.status == ImportJob.Status.PENDING and not job.column_map
        Subscriber.objects.all().delete()


# --- Newsletter settings -------------------------------------------------------------------------

SETTINGS_FIELDS = ["sender_name", "sender_email", "reply_to", "postal_address", "footer_text", "footer translation"]


def settings_data(field: str, value: str) -> dict:
    return newsletter_settings_form(**{"footer_translations-0-text" if field == "footer translation" else field: value})


@pytest.mark.parametrize("field", SETTINGS_FIELDS)
def test_every_nasty_string_in_every_field_of_the_newsletter_settings(admin_client, newsletter_settings, field):
    url = reverse("wagtailsettings:edit", args=["mail", "newslettersettings", newsletter_settings.site_id])
    for value in NASTY_STRINGS:
        before = NewsletterSettings.objects.filter(pk=newsletter_settings.pk).values().get()

        response = admin_client.post(url, settings_data(field, value))

        assert_no_5xx(response, field, value)
        saved = NewsletterSettings.objects.get(pk=newsletter_settings.pk)
        if response.status_code == 302:
            assert admin_client.get(url).status_code == 200
            sender = sender_for(None, saved.site)
            assert_one_address_header(reformat_address(sender.from_email, encode=True), saved.sender_name)
            FooterTranslation.objects.all().delete()  # the next post adds it again
        else:
            assert form_errors(response), (field, value[:60])
            assert NewsletterSettings.objects.filter(pk=newsletter_settings.pk).values().get() == before


def test_a_footer_translation_added_meanwhile_in_another_window_is_a_form_error(admin_client, newsletter_settings):
    url = reverse("wagtailsettings:edit", args=["mail", "newslettersettings", newsletter_settings.site_id])
    assert admin_client.post(url, settings_data("footer translation", "First window")).status_code == 302

    # The second window was opened before the first saved: it adds a form for the same language.
    response = admin_client.post(url, settings_data("footer translation", "Second window"))

    assert response.status_code == 200 and form_errors(response)
    assert "already has a footer text" in response.content.decode()
    assert list(FooterTranslation.objects.values_list("text", flat=True)) == ["First window"]
