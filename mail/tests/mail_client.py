"""Reading built messages back as a mail client does (RFC 2047 s6.2), for the header tests.

Python's ``email.policy.default`` parser keeps the folding space between two adjacent
encoded-words of a display name; RFC 2047 s6.2 says a decoder drops it (mail clients do). The
compat32 helpers decode as the RFC says: ``parseaddr`` unfolds and unquotes, ``decode_header``
joins adjacent encoded-words.
"""

import email
import email.header
import email.policy
import email.utils
import re

# RFC 2047 s2: at most 75 characters per encoded-word.
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def header_lines(raw: bytes, field: str) -> list[str]:
    """The physical lines (folded) of header ``field`` in the raw message ``raw``."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines, inside = [], False
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if inside:
                lines.append(line)
            continue
        inside = line.lower().startswith(field.lower() + ":")
        if inside:
            lines.append(line)
    return lines


def read_address(raw: bytes, field: str) -> tuple[str, str]:
    """(display name, address) of the one-address header ``field``, decoded as RFC 2047 says."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    value = re.sub(r"\r?\n(?=[ \t])", "", message[field])
    name, address = email.utils.parseaddr(value)
    return str(email.header.make_header(email.header.decode_header(name))), address


def assert_rfc_folded(raw: bytes, field: str) -> None:
    """Every line of ``field`` within 78 characters and every encoded-word within 75 (RFC 5322
    s2.1.1, RFC 2047 s2)."""
    for line in header_lines(raw, field):
        assert len(line) <= 78, line
        assert all(len(word) <= 75 for word in ENCODED_WORD.findall(line)), line
