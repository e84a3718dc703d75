"""The one address builder: quoting, IDNA domains, and control characters refused."""

import email
import email.policy

import pytest
from django.core.exceptions import ValidationError

from mail.addresses import (
    HeaderValueError,
    check_header_text,
    clean_header_text,
    format_address,
    idna_domain,
    parse_address,
    validate_header_text,
)
from mail.tests.mail_client import assert_rfc_folded, read_address


def parsed_to(value: str):
    """The To header of a message whose To is ``value``, as a mail client's parser reads it."""
    message = email.message_from_bytes(
        b"To: " + value.encode("ascii") + b"\r\nSubject: x\r\n\r\nbody\r\n", policy=email.policy.default
    )
    return message


@pytest.mark.parametrize(
    "name",
    [
        "Reader 1",
        "Smith, Bob",
        'Bob "the builder" O\'Neil',
        "back\\slash",
        "a.b (c) <d> @ e; f: [g]",
        "Zoë O'Brien & Co",
        "李小龍",
        "emoji 📰 " * 30,
    ],
)
def test_names_parse_back_exactly(name):
    value = format_address("bob@example.com", name, encode=True)
    raw = b"To: " + value.encode("ascii") + b"\r\nSubject: x\r\n\r\nbody\r\n"
    message = parsed_to(value)

    assert read_address(raw, "To") == (name.strip(), "bob@example.com")
    assert_rfc_folded(raw, "To")
    assert [address.addr_spec for address in message["To"].addresses] == ["bob@example.com"]
    assert message["To"].defects == ()
    assert list(message.keys()) == ["To", "Subject"]


@pytest.mark.parametrize(
    "name",
    ["Ünïcödé Nëwslëttër " * 8, "读者" * 80, "x" * 300, "=?utf-8?b?QWRtaW4=?=", "Zoë", "a" * 40 + " é"],
)
def test_long_and_encoded_looking_names_are_encoded_words_within_the_line_limits(name):
    value = format_address("bob@bücher.de", name, encode=True)
    raw = b"Reply-To: " + value.encode("ascii") + b"\r\n\r\n"

    assert read_address(raw, "Reply-To") == (name.strip(), "bob@xn--bcher-kva.de")
    assert_rfc_folded(raw, "Reply-To")


def test_an_idn_domain_with_a_name_builds_with_its_a_label():
    assert (
        format_address("bob@bücher.de", "Bob Bücher", encode=True)
        == "=?utf-8?b?Qm9iIELDvGNoZXI=?= <bob@xn--bcher-kva.de>"
    )
    assert format_address("bob@bücher.de", "Bob") == "Bob <bob@xn--bcher-kva.de>"


def test_idna_is_2008_not_2003():
    # IDNA 2003 maps "ß" to "ss" (fass.de); IDNA 2008 keeps it (xn--fa-hia.de).
    assert idna_domain("faß.de") == "xn--fa-hia.de"
    assert idna_domain("Bücher.DE") == "xn--bcher-kva.de"


@pytest.mark.parametrize(
    ("address", "name"),
    [
        ("bob@example.com", "Bob\r\nReply-To: evil@example.net"),
        ("bob@example.com", "Bob\nBcc: evil@example.net"),
        ("bob@example.com", "Bob\x00"),
        ("bob@example.com", "Bob\u2028Bcc: evil@example.net"),
        ("bob@example.com\r\nBcc: evil@example.net", "Bob"),
        ("a\x0bb@example.com", ""),
        ("bob@exa mple.com", ""),
        ("bob@example.com", "Bob\x1b[31m"),
        ("not-an-address", "Bob"),
        ("bob@xn--.de", ""),
    ],
)
def test_values_that_cannot_be_headers_are_refused_by_name(address, name):
    with pytest.raises(HeaderValueError):
        format_address(address, name)
    with pytest.raises(HeaderValueError):
        format_address(address, name, encode=True)


def test_a_local_part_with_specials_is_quoted():
    assert format_address("john smith@example.com") == '"john smith"@example.com'
    message = parsed_to(format_address("a,b@example.com", "X", encode=True))
    assert message["To"].addresses[0].addr_spec == '"a,b"@example.com'
    # An address that tries to close the brackets stays one (quoted) address.
    message = parsed_to(format_address("bob@example.com>, evil@example.net", "X", encode=True))
    assert [a.domain for a in message["To"].addresses] == ["example.net"]
    assert message["To"].addresses[0].username == "bob@example.com>, evil"


def test_parse_address_takes_exactly_one_address():
    assert parse_address('"The Broadsheet" <news@example.com>') == ("The Broadsheet", "news@example.com")
    assert parse_address("news@example.com") == ("", "news@example.com")
    for bad in ["a@example.com, b@example.com", "Name <news@example.com>\r\nBcc: x@example.net", "nobody", ""]:
        with pytest.raises(HeaderValueError):
            parse_address(bad)


def test_header_text_checks():
    assert check_header_text("Spring issue: news") == "Spring issue: news"
    with pytest.raises(HeaderValueError, match="subject"):
        check_header_text("Hi\r\nBcc: x@example.net", "subject")
    assert clean_header_text("  The Weekly ") == "The Weekly"
    with pytest.raises(ValidationError):
        clean_header_text("The\nWeekly")
    with pytest.raises(ValidationError):
        validate_header_text("tab\there")
    validate_header_text("RTL \u202e and emoji 📰 are text, not control characters")
