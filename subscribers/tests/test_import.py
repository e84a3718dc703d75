"""CSV import: validation, encodings, delimiters, duplicates, suppression, consent."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import translation

from subscribers import bulk
from subscribers.import_tasks import start_import
from subscribers.importing import (
    ImportFileError,
    ImportOptions,
    guess_column_map,
    import_csv,
    read_header,
    send_confirmations,
)
from subscribers.models import ImportJob, Subscriber, SubscriberEvent, Subscription, Suppression, email_hash
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

EMAIL_NAME = {"email": "email", "name": "name"}


@pytest.fixture
def news():
    return MailingListFactory(slug="news", name="News")


def run(data: bytes | str, lists, *, mode="subscribe", column_map=EMAIL_NAME, **kwargs):
    if isinstance(data, str):
        data = data.encode()
    options = ImportOptions(
        lists=lists, column_map=column_map, mode=mode, consent_note="Signed up at the fair", source_name="f.csv"
    )
    return import_csv(io.BytesIO(data), options, **kwargs)


def test_valid_rows_are_subscribed_with_consent_record(news):
    result = run("email,name\nann@example.com,Ann\nbob@example.com,Bob\n", [news])

    assert result.created_count == 2
    sub = Subscription.objects.get(subscriber__email_normalised="ann@example.com", list=news)
    assert sub.status == Subscription.Status.SUBSCRIBED
    assert sub.consent_source == Subscription.Source.IMPORT
    assert "f.csv" in sub.consent_detail and "Signed up at the fair" in sub.consent_detail
    assert sub.consent_at is not None
    event = SubscriberEvent.objects.get(subscriber=sub.subscriber)
    assert event.kind == "subscribed" and event.list == news and event.detail["line"] == 2


def test_consent_record_names_the_admin_user(news):
    user = get_user_model().objects.create_user("ops", password="x")
    options = ImportOptions(
        lists=[news], column_map=EMAIL_NAME, mode="subscribe", consent_note="Fair", source_name="f.csv", actor=user
    )
    import_csv(io.BytesIO(b"email\nann@example.com\n"), options)

    assert "by ops" in Subscription.objects.get().consent_detail
    assert SubscriberEvent.objects.get().actor == user


def test_bad_rows_are_reported_with_their_line_numbers(news):
    result = run("email,name\nann@example.com,Ann\nnot-an-address,X\n,No email\nbob@example.com,Bob\n", [news])

    assert result.created_count == 2
    assert result.error_count == 2
    assert [(n["line"], n["kind"]) for n in result.notes] == [(3, "error"), (4, "error")]
    assert "valid email" in result.notes[0]["message"]


def test_line_numbers_count_quoted_newlines(news):
    result = run('email,name\nann@example.com,"Ann\nSmith"\nbroken,Bob\n', [news])

    assert result.notes[0]["line"] == 4


def test_byte_order_mark_is_ignored(news):
    result = run("\ufeffemail,name\nann@example.com,Ann\n".encode(), [news])

    assert result.created_count == 1
    assert Subscriber.objects.get().name == "Ann"


def test_semicolon_delimiter_is_detected(news):
    result = run("email;name;city\nann@example.com;Ann;Leeds\nbob@example.com;Bob;York\n", [news],
                 column_map={"email": "email", "name": "name", "city": "city"})  # fmt: skip

    assert result.created_count == 2
    assert Subscriber.objects.get(email="ann@example.com").attributes == {"city": "Leeds"}


def test_tab_delimiter_is_detected(news):
    result = run("email\tname\nann@example.com\tAnn\n", [news])

    assert Subscriber.objects.get().name == "Ann"
    assert result.error_count == 0


def test_non_utf8_file_gives_a_clear_error_naming_the_line(news):
    data = "email,name\nann@example.com,Ann\nzoe@example.com,Zoë\n".encode("cp1252")

    with pytest.raises(ImportFileError, match=r"Line 3 is not valid UTF-8.*Windows-1252"):
        run(data, [news])


def test_windows_1252_file_imports_when_that_encoding_is_chosen(news):
    data = "email,name\nzoe@example.com,Zoë\n".encode("cp1252")

    run(data, [news], encoding="cp1252")

    assert Subscriber.objects.get().name == "Zoë"


def test_duplicates_in_the_file_are_imported_once_and_reported(news):
    result = run("email\nann@example.com\nANN@example.com\nbob@example.com\n", [news])

    assert Subscriber.objects.count() == 2
    assert result.duplicate_count == 1
    assert result.notes == [
        {"line": 3, "kind": "duplicate", "message": "Repeats the address on line 2.", "value": "ANN@example.com"}
    ]


def test_duplicates_across_chunks_are_reported(news):
    rows = "".join(f"r{i}@example.com\n" for i in range(5)) + "R1@Example.com\n"
    options = ImportOptions(lists=[news], column_map={"email": "email"}, mode="subscribe", consent_note="x",
                            chunk_size=2)  # fmt: skip

    result = import_csv(io.BytesIO(f"email\n{rows}".encode()), options)

    assert Subscriber.objects.count() == 5
    assert result.duplicate_count == 1 and result.notes[0]["line"] == 7


def test_existing_subscriber_matches_case_insensitively(news):
    existing = SubscriberFactory(email="Ann@Example.com", name="")

    result = run("email,name\nann@EXAMPLE.com,Ann\n", [news])

    assert Subscriber.objects.count() == 1
    assert result.created_count == 0 and result.updated_count == 1
    existing.refresh_from_db()
    assert existing.name == "Ann"
    assert existing.subscriptions.get().list == news


def test_unsubscribed_address_is_not_resubscribed(news):
    sub = SubscriptionFactory(subscriber__email="ann@example.com", list=news, status=Subscription.Status.UNSUBSCRIBED)

    result = run("email\nann@example.com\n", [news])

    sub.refresh_from_db()
    assert sub.status == Subscription.Status.UNSUBSCRIBED
    assert result.unsubscribed_count == 1
    assert result.notes[0]["kind"] == "unsubscribed"


@pytest.mark.parametrize("state", Subscriber.SUPPRESSED_STATES)
def test_suppressed_subscriber_is_not_reactivated(news, state):
    subscriber = SubscriberFactory(email="ann@example.com", state=state)

    result = run("email\nann@example.com\n", [news])

    subscriber.refresh_from_db()
    assert subscriber.state == state
    assert not subscriber.subscriptions.exists()
    assert result.suppressed_count == 1


def test_erased_address_in_suppression_list_is_not_imported(news):
    Suppression.objects.create(email_hash=email_hash("ann@example.com"), reason="erased")

    result = run("email\nAnn@Example.com\n", [news])

    assert not Subscriber.objects.exists()
    assert result.suppressed_count == 1


def test_confirm_mode_creates_pending_subscriptions_and_asks_for_confirmations(
    news, django_capture_on_commit_callbacks
):
    sent = []
    options = ImportOptions(lists=[news], column_map={"email": "email"}, mode="confirm", source_name="f.csv")

    with django_capture_on_commit_callbacks(execute=True):
        import_csv(io.BytesIO(b"email\nann@example.com\n"), options, on_pending=sent.extend)

    sub = Subscription.objects.get()
    assert sub.status == Subscription.Status.PENDING
    assert sent == [sub.pk]


def test_subscribe_mode_requires_a_consent_note(news):
    with pytest.raises(ValueError, match="consent"):
        ImportOptions(lists=[news], column_map={"email": "email"}, mode="subscribe", consent_note=" ")


def test_import_into_two_lists(news):
    other = MailingListFactory(slug="other")

    run("email\nann@example.com\n", [news, other])

    assert set(Subscription.objects.values_list("list__slug", flat=True)) == {"news", "other"}


def test_reimporting_the_same_file_changes_nothing(news):
    run("email,name\nann@example.com,Ann\n", [news])

    result = run("email,name\nann@example.com,Ann\n", [news])

    assert result.created_count == 0 and result.updated_count == 0 and result.skipped_count == 1
    assert SubscriberEvent.objects.count() == 1


def test_header_and_column_guess():
    header, delimiter = read_header(io.BytesIO(b"E-mail;Full name;City\na@example.com;A;B\n"))

    assert delimiter == ";"
    assert guess_column_map(header) == {"E-mail": "email", "Full name": "name", "City": "city"}


def test_background_job_records_progress_and_errors(news, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("people.csv", b"email\nann@example.com\nbad\n")
    with django_capture_on_commit_callbacks(execute=True):
        job = start_import(
            uploaded_file=upload, lists=[news], column_map={"email": "email"}, mode="subscribe",
            consent_note="Fair", user=None,
        )  # fmt: skip

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert (job.total_rows, job.processed_rows, job.created_count, job.error_count) == (2, 2, 1, 1)
    assert job.errors[0]["line"] == 3


def test_uploaded_file_is_deleted_once_imported(news, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("people.csv", b"email\nann@example.com\n")
    with django_capture_on_commit_callbacks(execute=True):
        job = start_import(
            uploaded_file=upload, lists=[news], column_map={"email": "email"}, mode="subscribe",
            consent_note="Fair", user=None,
        )  # fmt: skip

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert not job.file.storage.exists(job.file.name)


def test_background_job_fails_clearly_on_a_bad_encoding(news, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("people.csv", "email,name\nzoe@example.com,Zoë\n".encode("cp1252"))
    with django_capture_on_commit_callbacks(execute=True):
        job = start_import(
            uploaded_file=upload, lists=[news], column_map={"email": "email"}, mode="subscribe",
            consent_note="Fair", user=None,
        )  # fmt: skip

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "Line 2 is not valid UTF-8" in job.errors[-1]["message"]


def test_management_command_imports_a_file(news, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email;name\nann@example.com;Ann\nbad;X\n")
    out = io.StringIO()

    call_command("import_subscribers", str(path), "--list", "news", "--consent-note", "Fair", stdout=out,
                 stderr=io.StringIO())  # fmt: skip

    assert Subscription.objects.get().subscriber.name == "Ann"
    assert "created 1" in out.getvalue() and "line 3" in out.getvalue().lower()


def test_confirm_mode_sends_one_confirmation_email_per_address(news, django_capture_on_commit_callbacks, mailoutbox):
    other = MailingListFactory(slug="other")
    options = ImportOptions(lists=[news, other], column_map={"email": "email"}, mode="confirm", source_name="f.csv")

    with django_capture_on_commit_callbacks(execute=True):
        import_csv(io.BytesIO(b"email\nann@example.com\n"), options, on_pending=send_confirmations)

    assert [m.to for m in mailoutbox] == [["ann@example.com"]]


def test_subscriber_created_during_the_import_by_someone_else_is_still_subscribed(news):
    """A form sign-up (or a parallel import) while the file is read is not mistaken for a duplicate."""
    options = ImportOptions(lists=[news], column_map={"email": "email"}, mode="subscribe", consent_note="x",
                            chunk_size=1)  # fmt: skip
    created_meanwhile = []

    def sign_up_meanwhile(result):
        if not created_meanwhile:
            created_meanwhile.append(SubscriberFactory(email="zoe@example.com"))

    result = import_csv(io.BytesIO(b"email\nann@example.com\nzoe@example.com\n"), options, progress=sign_up_meanwhile)

    assert Subscription.objects.filter(subscriber=created_meanwhile[0], list=news).exists()
    assert result.duplicate_count == 0 and result.updated_count == 1


def test_a_chunk_that_fails_leaves_nothing_half_written_and_importing_again_creates_nothing_twice(news, monkeypatch):
    """A worker killed mid-chunk: that chunk's subscribers, subscriptions and events all roll back
    (one transaction per chunk), and running the import again adds each address exactly once."""
    data = b"email\n" + b"".join(f"r{i}@example.com\n".encode() for i in range(6))
    options = ImportOptions(lists=[news], column_map={"email": "email"}, mode="subscribe", consent_note="x",
                            chunk_size=2)  # fmt: skip
    real_insert, events_written = bulk.insert_rows, []

    def killed_in_the_second_chunk(model, *args, **kwargs):
        if model is SubscriberEvent:
            events_written.append(model)
            if len(events_written) == 2:
                raise RuntimeError("worker killed")
        return real_insert(model, *args, **kwargs)

    monkeypatch.setattr(bulk, "insert_rows", killed_in_the_second_chunk)
    with pytest.raises(RuntimeError):
        import_csv(io.BytesIO(data), options)
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == ["r0@example.com", "r1@example.com"]
    assert Subscription.objects.count() == SubscriberEvent.objects.count() == 2

    monkeypatch.setattr(bulk, "insert_rows", real_insert)
    result = import_csv(io.BytesIO(data), options)

    assert result.created_count == 4 and result.skipped_count == 2
    assert Subscriber.objects.count() == Subscription.objects.count() == SubscriberEvent.objects.count() == 6


def test_rows_read_ahead_keep_the_callers_language_and_a_bad_byte_stops_after_the_chunks_before_it(news):
    """Rows are parsed by a reader thread (importing._read_ahead): its messages are in the language
    of the caller, and a byte the encoding rejects stops the import after the chunks before it."""
    lines = [b"email", b"not-an-address"] + [f"r{i}@example.com".encode() for i in range(5)] + [b"z\xe9@example.com"]
    sport = MailingListFactory(slug="sport")
    options = ImportOptions(lists=[news], column_map={"email": "email"}, mode="subscribe", consent_note="x",
                            chunk_size=2)  # fmt: skip

    with translation.override("zh-hans"):
        result = import_csv(io.BytesIO(b"\n".join(lines[:-1])), options)
    with pytest.raises(ImportFileError, match="Line 8"):
        import_csv(io.BytesIO(b"\n".join(lines)), ImportOptions(**{**vars(options), "lists": [sport]}))

    assert result.notes == [
        {"line": 2, "kind": "error", "message": "不是有效的电子邮箱地址。", "value": "not-an-address"}
    ]
    assert result.processed_rows == 6 and result.created_count == 5
    assert sorted(Subscription.objects.filter(list=sport).values_list("subscriber__email", flat=True)) == [
        f"r{i}@example.com" for i in range(4)
    ]
