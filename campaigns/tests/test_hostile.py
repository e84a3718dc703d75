"""Hostile input against the campaigns boundary (issue 8: "prove the boundary").

- The open pixel and the click redirect, with any campaign id, signed value and delivery token:
  never a 5xx, and an open or click is recorded only for a genuinely signed delivery token of
  that campaign's delivery.
- The message builder: for any subscriber name, subject, sender name and list name, the built
  message parses back (as a mail client reads it) with exactly the intended headers, carrying
  exactly the intended values; a value with a line break or another control character is refused
  (subject, list name, sender) or dropped from To (a name stored before forms refused it).

Examples per property come from the Hypothesis profile (conftest.py).
"""

import email
import email.policy
import uuid
from types import SimpleNamespace

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from campaigns.click_tracking import delivery_token, sign_link
from campaigns.models import DeliveryEvent
from campaigns.sending.headers import (
    CompiledMessage,
    MessageContent,
    Recipient,
    feedback_id_header,
    list_id_header,
    recipient_values,
)
from campaigns.tests.tracking_data import make_delivery, make_sent_campaign
from mail.addresses import HeaderValueError, format_address, has_control_characters
from mail.tests.mail_client import assert_rfc_folded, read_address
from subscribers.links import RecipientLinks
from subscribers.tests.nasty_strings import NASTY_STRINGS

hostile = hypothesis_settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
)

INTENDED_HEADERS = {
    "Subject", "From", "Reply-To", "To", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post",
    "List-Id", "Precedence", "Auto-Submitted", "Feedback-ID", "MIME-Version", "Content-Type",
}  # fmt: skip

# Text as a person may type it: any letters, marks, symbols, emoji, RTL overrides, spaces; no
# control characters or line/paragraph separators (those are refused where they enter).
typed = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=120).map(
    lambda value: " ".join(value.split())
)
with_controls = st.tuples(typed, st.sampled_from(["\r\n", "\n", "\r", "\x00", "\x0b", "\x85", "\u2028"]), typed).map(
    "".join
)
# A control character inside the text (at the ends, a sender name's line breaks are trimmed off).
inner_controls = st.tuples(typed.filter(bool), with_controls, typed.filter(bool)).map("".join)
ids = st.integers(min_value=-(2**70), max_value=2**70)


def build(subject="Spring issue", name="Ann", from_name="The Broadsheet", list_name="The Weekly"):
    """One recipient's message through the engine's builder, parsed back as a mail client would."""
    weekly = SimpleNamespace(name=list_name, slug="weekly")
    content = MessageContent(
        campaign_id=7, subject=subject, html="<p>Hello %%name%%</p>", text="Hello %%name%%",
        from_email=format_address("news@example.com", from_name), reply_to="editor@example.com",
        list_id=list_id_header(weekly, "news.example.com"), feedback_id=feedback_id_header(7, "weekly"),
        list_ids=(1,), domain="news.example.com", message_id_prefix="20260321090000.c7",
    )  # fmt: skip
    recipient = Recipient(delivery_id=11, email="ann@example.com", name=name, uid=uuid.uuid4())
    raw = CompiledMessage(content).render(recipient_values(content, RecipientLinks((1,), 7), recipient))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    message.raw = raw
    return content, message


def names(message) -> tuple[str, str]:
    """The From and To display names as a mail client decodes them (RFC 2047 s6.2: adjacent
    encoded-words joined), each header folded within RFC 5322's and RFC 2047's line limits."""
    for field in ("From", "To", "Reply-To"):
        assert_rfc_folded(message.raw, field)
    return read_address(message.raw, "From")[0], read_address(message.raw, "To")[0]


def assert_exactly_the_intended_headers(message):
    assert sorted(message.keys()) == sorted(INTENDED_HEADERS)
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@example.com"]
    assert [a.addr_spec for a in message["From"].addresses] == ["news@example.com"]
    assert message["Reply-To"] == "editor@example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Precedence"] == "bulk" and message["Auto-Submitted"] == "auto-generated"


@hostile
@given(subject=typed, name=typed, from_name=typed, list_name=typed)
def test_any_typed_values_build_a_message_with_exactly_the_intended_headers(subject, name, from_name, list_name):
    content, message = build(subject, name, from_name, list_name)

    assert_exactly_the_intended_headers(message)
    assert message["Subject"] == subject
    assert names(message) == (from_name, name)
    assert message["List-Id"] == content.list_id
    assert message["List-Id"].endswith("<weekly.news.example.com>")


@hostile
@given(name=with_controls)
def test_a_stored_name_with_a_line_break_is_dropped_from_to_never_written(name):
    _content, message = build(name=name)

    assert_exactly_the_intended_headers(message)
    shown = names(message)[1]
    assert shown in ("", name.strip())  # Dropped, or only surrounding line breaks trimmed off.
    assert not has_control_characters(shown)


@hostile
@given(value=inner_controls, field=st.sampled_from(["subject", "from_name", "list_name"]))
def test_a_campaign_value_with_a_line_break_is_refused_before_any_message(value, field):
    with pytest.raises(HeaderValueError):
        build(**{field: value})


@pytest.mark.parametrize("value", [*NASTY_STRINGS[:-1], "x" * 5000])
def test_every_nasty_string_as_each_header_value(value):
    if has_control_characters(value):
        with pytest.raises(HeaderValueError):
            build(subject=value)
        _content, message = build(name=value)
        assert not has_control_characters(names(message)[1])
    else:
        value = " ".join(value.split())[:5000]
        content, message = build(subject=value, name=value, from_name=value, list_name=value)
        assert message["Subject"] == value
        assert names(message) == (value, value)
        assert message["List-Id"] == content.list_id
    assert_exactly_the_intended_headers(message)


# --- Tracking endpoints -----------------------------------------------------------------------


@pytest.fixture
def delivery(issue_page):
    return make_delivery(make_sent_campaign(issue_page), message_id="<local.1@news.example.com>")


nasty = st.sampled_from(NASTY_STRINGS[:-1]) | st.text(max_size=80)


@hostile
@given(campaign_id=st.integers(min_value=0, max_value=10**30), d=nasty | st.integers().map(str), forged=st.booleans())
def test_the_open_pixel_never_answers_5xx_and_records_only_a_signed_delivery(delivery, campaign_id, d, forged):
    before = DeliveryEvent.objects.count()
    token = (delivery_token(delivery.pk) + ("x" if forged else "")) if d == "" else d

    response = Client().get(f"/campaigns/o/{campaign_id}.gif", {"d": token})

    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    genuine = token == delivery_token(delivery.pk) and campaign_id == delivery.campaign_id
    assert DeliveryEvent.objects.count() == before + (1 if genuine else 0)


@hostile
@given(signed=nasty, campaign_id=ids, url=nasty, d=nasty, sign=st.booleans())
def test_the_click_redirect_never_answers_5xx_nor_redirects_to_an_unsigned_url(delivery, signed, campaign_id, url, d,
                                                                                sign):  # fmt: skip
    before = DeliveryEvent.objects.count()
    value = sign_link(campaign_id, url) if sign else signed
    try:
        path = reverse("campaigns:click", args=[value])
    except Exception:
        return

    response = Client().get(path, {"d": d})

    assert response.status_code in (302, 400, 404)
    if response.status_code == 302:
        assert sign and response["Location"] == url and url.lower().startswith(("http://", "https://"))
    assert DeliveryEvent.objects.count() == before  # no genuine delivery token among these


def test_a_forged_click_value_is_refused(delivery):
    signed = sign_link(delivery.campaign_id, "https://example.org/")
    forged = signing.dumps([delivery.campaign_id, "https://evil.example/"], salt="another salt", compress=True)

    assert Client().get(reverse("campaigns:click", args=[signed])).status_code == 302
    assert Client().get(reverse("campaigns:click", args=[forged])).status_code == 400
