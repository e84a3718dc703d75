"""Every address header in the project is built here, and every value bound for a header is checked.

``format_address()`` is the one builder of ``Name <local@domain>`` values (From, To, Reply-To,
the staff notices' recipients); ``check_header_text()`` refuses what must never reach a header
(CR, LF, NUL and every other control character: RFC 5322 s2.2 allows none of them in a field
body, and a CR/LF written raw starts a new header or the body). Forms and models use
``validate_header_text`` / ``clean_header_text`` to refuse the same values where they enter, with
a message a person can read; the builders refuse them again, defensively, with ``HeaderValueError``.

Quoting follows ``email.headerregistry.Address`` (RFC 5322 s3.4: a display name with specials is
a quoted-string); non-ASCII display names become RFC 2047 encoded-words when ``encode=True``
(raw header bytes), and non-ASCII domains their IDNA 2008 A-label (RFC 5891, via the ``idna``
package with UTS #46 mapping; Python's built-in "idna" codec is IDNA 2003).
"""

import base64
import re
from email.headerregistry import Address, HeaderRegistry

import idna
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy


class HeaderValueError(ValueError):
    """A value that must not be written into an email header (control characters, a malformed
    address or a domain that has no IDNA form). The message says which value and why."""


# C0 controls (CR, LF, NUL, TAB...), DEL, C1 controls (NEL among them) and the Unicode line and
# paragraph separators, which some clients also treat as line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# RFC 5322 specials (as email.headerregistry quotes them) plus space-like characters that make a
# phrase need quoting.
_NAME_NEEDS_QUOTING = re.compile(r'[()<>@,:;."\[\]\\]')
_ATOM_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_ASCII_DOMAIN = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\.?)+$|^\[[0-9A-Fa-f:.]+\]$")
# RFC 2047 s2: an encoded-word is at most 75 characters; RFC 5322 s2.1.1: lines SHOULD stay
# within 78. 42 bytes are 56 base64 characters, a word of 68 ("=?utf-8?b?" ... "?="), so even
# "Reply-To: " and one word fit a line. Words are whole characters (RFC 2047 s5) folded with
# CRLF SP; a decoder joins adjacent words without the folding space (RFC 2047 s6.2).
_ENCODED_WORD_BYTES = 42
_LINE = 78
# The longest field name written with an address ("Reply-To: "): names that would not fit a line
# beside it are encoded (and so folded) even when they are ASCII.
_FIELD_NAME = len("Reply-To: ")

_HEADERS = HeaderRegistry()

HEADER_TEXT_MESSAGE = gettext_lazy("Line breaks and other control characters are not allowed here.")


def has_control_characters(value: str) -> bool:
    return bool(_CONTROL.search(value or ""))


def check_header_text(value: str, what: str = "header value") -> str:
    """``value`` unchanged if it may go into a header; else ``HeaderValueError`` naming ``what``."""
    if value and _CONTROL.search(value):
        raise HeaderValueError(f"{what} contains a line break or another control character: {value[:80]!r}")
    return value


@deconstructible
class HeaderTextValidator:
    """Django validator for names, subjects and list names: no line breaks or control characters."""

    message = HEADER_TEXT_MESSAGE
    code = "header_text"

    def __call__(self, value):
        if has_control_characters(str(value)):
            raise ValidationError(self.message, code=self.code)

    def __eq__(self, other):
        return isinstance(other, HeaderTextValidator)


validate_header_text = HeaderTextValidator()


@deconstructible
class HeaderAddressValidator:
    """Django validator for an address written into From, Reply-To or To: one ``split_address``
    accepts. Django's EmailValidator lets a quoted local part carry a control character
    (``"a\x0bb"@example.com``), which every header builder refuses: without this the form saved it
    and every email sent from it failed later (a 500 on the send form, a campaign refused)."""

    message = "Enter an email address without line breaks or other control characters."
    code = "header_address"

    def __call__(self, value):
        try:
            split_address(str(value))
        except HeaderValueError:
            raise ValidationError(self.message, code=self.code) from None

    def __eq__(self, other):
        return isinstance(other, HeaderAddressValidator)


validate_header_address = HeaderAddressValidator()


def clean_header_text(value: str) -> str:
    """A form value for a header (display name, subject, list name): trimmed, then refused with a
    ``ValidationError`` if it holds a line break or another control character."""
    value = (value or "").strip()
    validate_header_text(value)
    return value


def idna_domain(domain: str) -> str:
    """``domain`` as it may appear in a header or on the envelope: ASCII, IDNA 2008 A-labels.

    ``bücher.de`` becomes ``xn--bcher-kva.de``; an ASCII domain is returned as it is. Raises
    ``HeaderValueError`` for a domain with no valid form.
    """
    if domain.isascii():
        if not _ASCII_DOMAIN.match(domain):
            raise HeaderValueError(f"not a valid domain: {domain[:80]!r}")
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise HeaderValueError(f"the domain {domain[:80]!r} has no IDNA form: {error}") from None


def split_address(address: str) -> tuple[str, str]:
    """``(local part, ASCII domain)`` of a bare address; ``HeaderValueError`` if malformed."""
    check_header_text(address, "address")
    local, sep, domain = (address or "").strip().rpartition("@")
    if not sep or not local or not domain:
        raise HeaderValueError(f"not an email address: {address[:80]!r}")
    return local, idna_domain(domain)


def _encoded_words(name: str) -> list[str]:
    """``name`` as RFC 2047 base64 encoded-words of at most _ENCODED_WORD_BYTES whole characters."""
    words, chunk, size = [], [], 0
    for char in name:
        length = len(char.encode("utf-8"))
        if size + length > _ENCODED_WORD_BYTES:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += length
    words.append("".join(chunk))
    return [f"=?utf-8?b?{base64.b64encode(word.encode('utf-8')).decode('ascii')}?=" for word in words]


def _folded(words: list[str], angle_addr: str) -> str:
    """Encoded-words and ``<addr>`` joined by spaces, folded (CRLF SP) before a part that would
    take the line past 78 characters (the first line counting the longest field name)."""
    lines, line, indent = [], "", _FIELD_NAME
    for part in [*words, angle_addr]:
        if line and indent + len(line) + 1 + len(part) > _LINE:
            lines.append(line)
            line, indent = "", 1  # a continuation line starts with the folding space
        line = f"{line} {part}" if line else part
    lines.append(line)
    return "\r\n ".join(lines)


def format_address(address: str, name: str = "", *, encode: bool = False) -> str:
    """The one builder of an address header value: ``Name <local@domain>``, or ``local@domain``.

        ``address`` is a bare address (``bob@bücher.de``: the domain is IDNA-encoded), ``name`` a
        display name (quoted as ``email.headerregistry.Address`` quotes it). With ``encode`` the result
        is ASCII for raw header bytes, folded to lines of 78 characters (a non-ASCII or long name as
    RFC 2047 encoded-words of at most 75 characters; every raw From, Reply-To and To is built so,
    one way for all of them); without, the name
        stays Unicode for APIs that encode it themselves (Django's EmailMessage, anymail, the email
        package). A non-ASCII local part is kept: only SMTPUTF8 can carry it (the transport decides).

        Raises ``HeaderValueError`` when either value holds a control character or the address is
        malformed: a value from a subscriber never reaches a header raw.
    """
    local, domain = split_address(address)
    name = check_header_text((name or "").strip(), "display name")
    if not _ATOM_LOCAL.match(local):
        # Quoted as email.headerregistry does (e.g. "john smith"@example.com).
        local = Address(username=local, domain=domain).addr_spec.rpartition("@")[0]
    addr_spec = f"{local}@{domain}"
    if not name:
        return addr_spec
    if _NAME_NEEDS_QUOTING.search(name):
        value = str(Address(display_name=name, addr_spec=addr_spec))
    else:
        # What Address() would print, without its cost (it runs for every recipient of a campaign).
        value = f"{name} <{addr_spec}>"
    if encode and (not name.isascii() or "=?" in name or _FIELD_NAME + len(value) > _LINE):
        # Non-ASCII, too long for one line, or text a mail client would decode as an encoded-word:
        # RFC 2047 encoded-words (as text, whatever characters they hold), folded.
        return _folded(_encoded_words(name), f"<{addr_spec}>")
    return value


def format_text(value: str, field_name: str) -> str:
    """An unstructured header value (a recipient's Subject) as ASCII for raw header bytes: as it
    is when ASCII and it fits one line after ``field_name``; else RFC 2047 encoded-words folded to
    lines of 78 (RFC 5322 s2.2.3). ``HeaderValueError`` for control characters."""
    value = check_header_text(value, field_name)
    if value.isascii() and "=?" not in value and len(field_name) + 2 + len(value) <= _LINE:
        return value
    lines, line, indent = [], "", len(field_name) + 2
    for word in _encoded_words(value):
        if line and indent + len(line) + 1 + len(word) > _LINE:
            lines.append(line)
            line, indent = "", 1
        line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def parse_address(value: str) -> tuple[str, str]:
    """``(name, address)`` from a header-style value such as ``"The Broadsheet" <news@example.com>``
    or a bare address; ``HeaderValueError`` if it holds control characters or not exactly one address.
    """
    check_header_text(value, "address")
    try:
        header = _HEADERS("From", (value or "").strip())
        addresses = header.addresses
    except (ValueError, IndexError, TypeError) as error:
        raise HeaderValueError(f"not an address: {value[:80]!r}") from error
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise HeaderValueError(f"not exactly one email address: {value[:80]!r}")
    return addresses[0].display_name, f"{addresses[0].username}@{addresses[0].domain}"


def reformat_address(value: str, *, encode: bool = False) -> str:
    """A stored ``Name <address>`` value (a campaign's sender) checked and rebuilt by format_address."""
    name, address = parse_address(value)
    return format_address(address, name, encode=encode)
