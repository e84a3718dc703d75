"""What a bounce mailbox message means: DSN, ARF, auto-replies, non-standard bounces."""

import email.header

import pytest

from campaigns.bounces import parsing
from campaigns.sending.verp import return_path
from campaigns.tests import bounce_samples as samples


@pytest.fixture(autouse=True)
def _bounce_domain(settings):
    settings.BROADSHEET = {**settings.BROADSHEET, "BOUNCE_DOMAIN": "bounce.example.com"}


def test_dsn_user_unknown_is_a_hard_bounce_for_its_final_recipient():
    report = parsing.parse(samples.dsn("gone@example.org"))

    assert report.kind == parsing.HARD
    assert [(r.address, r.status) for r in report.recipients] == [("gone@example.org", "5.1.1")]
    assert report.original_message_id == "<20260101.c1.d1@example.com>"


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.2.2", "smtp; 552 5.2.2 Mailbox full", parsing.SOFT),
        ("4.4.1", "smtp; 451 4.4.1 Connection timed out", parsing.SOFT),
        ("5.7.1", "smtp; 550 5.7.1 Message rejected as spam", parsing.SOFT),
        ("5.7.1", "smtp; 550 5.7.1 No such user here", parsing.HARD),
        ("5.4.4", "smtp; 550 Host not found", parsing.HARD),
        ("5.0.0", "x-unix; mailbox quota exceeded", parsing.SOFT),
        ("5.0.0", "smtp; 550 rejected", parsing.HARD),
    ],
)
def test_dsn_status_decides_hard_or_soft(status, diagnostic, kind):
    report = parsing.parse(samples.dsn("a@example.org", status=status, diagnostic=diagnostic))

    assert report.recipients[0].kind == kind


def test_delayed_dsn_is_a_warning_not_a_bounce():
    report = parsing.parse(samples.dsn("slow@example.org", action="delayed", status="4.4.7"))

    assert report.kind == parsing.DELAYED


def test_verp_address_the_dsn_was_sent_to_names_the_delivery():
    report = parsing.parse(samples.dsn("forwarded@elsewhere.example", to=return_path(42)))

    assert report.delivery_id == 42


def test_a_forged_verp_address_names_no_delivery():
    forged = return_path(42).replace("+42-", "+43-")

    assert parsing.parse(samples.dsn("x@example.org", to=forged)).delivery_id is None


def test_arf_abuse_report_is_a_complaint_about_the_original_recipient():
    report = parsing.parse(samples.arf("reader@example.org"))

    assert report.kind == parsing.COMPLAINT
    assert [r.address for r in report.recipients] == ["reader@example.org"]
    assert report.original_message_id == "<20260101.c1.d1@example.com>"


def test_arf_not_spam_report_is_kept_for_a_person():
    assert parsing.parse(samples.arf("reader@example.org", feedback_type="not-spam")).kind == parsing.UNKNOWN


def test_qmail_failure_notice_is_a_hard_bounce():
    report = parsing.parse(samples.qmail_bounce("nobody@example.org"))

    assert (report.kind, report.recipients[0].address) == (parsing.HARD, "nobody@example.org")


def test_exim_mailbox_full_is_a_soft_bounce():
    report = parsing.parse(samples.exim_mailbox_full("full@example.org"))

    assert (report.kind, report.recipients[0].address) == (parsing.SOFT, "full@example.org")


def test_qq_system_bounce_in_gb18030_is_a_hard_bounce():
    report = parsing.parse(samples.qq_bounce("missing@qq.com"))

    assert (report.kind, report.recipients[0].address) == (parsing.HARD, "missing@qq.com")


def test_netease_html_bounce_names_the_recipient_not_the_sender_listed_before_it():
    report = parsing.parse(samples.netease_bounce("nobody@163.com", sender="news@example.com"))

    assert [(recipient.address, recipient.kind) for recipient in report.recipients] == [("nobody@163.com", "hard")]
    assert "<" not in report.recipients[0].diagnostic, "the diagnostic is text, not HTML"
    assert "550 User not found" in report.recipients[0].diagnostic


def test_exchange_text_ndr_is_a_hard_bounce_for_the_recipient_not_the_quoted_sender():
    report = parsing.parse(samples.exchange_ndr("gone@corp.example.org"))

    assert [(recipient.address, recipient.kind, recipient.status) for recipient in report.recipients] == [
        ("gone@corp.example.org", "hard", "5.1.1")
    ]


def test_a_plain_bounce_naming_only_the_sender_names_nobody_and_is_kept_for_a_person():
    report = parsing.parse(samples.netease_bounce("", sender="news@example.com"))

    assert report.kind == parsing.UNKNOWN and report.recipients == []


@pytest.mark.parametrize("rfc3834", [True, False])
def test_out_of_office_is_an_auto_reply(rfc3834):
    assert parsing.parse(samples.out_of_office(rfc3834=rfc3834)).kind == parsing.AUTO_REPLY


def test_a_mailer_daemon_bounce_marked_auto_replied_is_still_a_bounce():
    # RFC 3834 section 5 has DSNs marked "auto-replied"; some MTAs mark their plain-text bounces so too.
    raw = samples.qmail_bounce("gone@example.org").replace(b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:")

    report = parsing.parse(raw)

    assert (report.kind, report.recipients[0].address) == (parsing.HARD, "gone@example.org")


@pytest.mark.parametrize(
    "subject",
    [
        "Réponse automatique : Issue 1",
        "Respuesta automática: Issue 1",
        "Risposta automatica: Issue 1",
        "Automatisch antwoord: Issue 1",
        "Abwesenheitsnotiz: Issue 1",
        "自动回复: Issue 1",
        "Out of Office: Issue 1",
    ],
)
def test_out_of_office_subjects_in_several_languages_are_auto_replies(subject):
    raw = samples.out_of_office(rfc3834=False).replace(
        b"Subject: Automatic reply: Issue 1: Spring",
        f"Subject: {email.header.Header(subject, 'utf-8').encode()}".encode(),
    )

    assert parsing.parse(raw).kind == parsing.AUTO_REPLY


def test_a_human_reply_is_unknown_and_kept():
    assert parsing.parse(samples.human_reply()).kind == parsing.UNKNOWN


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary",
        b"From: MAILER-DAEMON@x\r\nSubject: Undeliverable\r\n\r\nno address here",
    ],
)
def test_malformed_messages_are_unknown_never_an_error(raw):
    assert parsing.parse(raw).kind == parsing.UNKNOWN


def test_same_message_has_the_same_key():
    assert parsing.parse(samples.dsn("a@example.org")).key == parsing.parse(samples.dsn("a@example.org")).key
