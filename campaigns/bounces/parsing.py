"""Read one message from the bounce mailbox and say what it is: a pure function of the bytes.

Recognised, in this order:

1. ARF complaint reports (RFC 5965): ``multipart/report; report-type=feedback-report`` whose
   ``message/feedback-report`` part has ``Feedback-Type: abuse`` (or fraud, virus, other):
   a complaint about the recipient of the returned message.
2. Delivery status notifications (RFC 3464): ``multipart/report; report-type=delivery-status``,
   one ``Final-Recipient``/``Action``/``Status`` block per recipient.
3. Auto-replies (RFC 3834 ``Auto-Submitted: auto-replied``, the common ``X-Autoreply`` /
   ``X-Autorespond`` / ``Precedence: auto_reply`` headers, "Out of office" style subjects in
   several languages): never counted as bounces. A message from a mailer-daemon with a bounce
   subject is not one, whatever its headers say (RFC 3834 section 5 has bounces marked
   "auto-replied" too): it goes on to 4.
4. The common non-standard bounces (qmail "failure notice", Exim "Mail delivery failed", older
   Exchange "Undeliverable", QQ and 163 "系统退信"): from a mailer-daemon or postmaster with a
   bounce-like subject; the status code and address are read from the text (HTML-only ones as
   text), skipping the addresses on lines that name the original sender ("From:", "发件人"):
   a bounce quoting our own From before the failed address must not suppress the sender.
5. Anything else is ``UNKNOWN``: kept aside for a person (a human reply lands here too).

Classification of a failed recipient (the status code of RFC 3463, else the SMTP reply code):

- hard: text such as "user unknown" / "no such user" / "does not exist" whatever the code says;
- soft: 4.x.x, 5.2.2 (mailbox full), 5.2.3 and 5.3.4 (message too big), 5.7.x (policy or spam
  blocks: the sending side's problem, not the address's), and text such as "mailbox full" or
  "over quota" (servers that answer 5.0.0 for a full mailbox);
- hard: every other 5.x.x (5.1.x bad address or domain, 5.2.1 mailbox disabled, 5.4.4 no route).
- ``Action: delayed`` (a warning; the MTA is still trying) is ``DELAYED``: recorded, never
  counted, since most delayed messages are delivered in the end and SMTP never tells us so.

The delivery is found from the VERP address the bounce was sent to (To, Delivered-To,
X-Original-To, Envelope-To), else by the returned message's Message-ID and the recipient.
"""

import email
import email.header
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parseaddr

from bs4 import BeautifulSoup

from campaigns.sending.verp import delivery_from_address

HARD, SOFT, DELAYED, COMPLAINT, AUTO_REPLY, UNKNOWN = "hard", "soft", "delayed", "complaint", "auto-reply", "unknown"

COMPLAINT_FEEDBACK_TYPES = {"abuse", "fraud", "virus", "other"}

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY_CODE = re.compile(r"(?<![\d.])([45]\d\d)(?:[ -]|$)", re.MULTILINE)
_ADDRESS = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>?")
_HARD_TEXT = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|address)|does not exist|doesn't exist|"
    r"unknown (local part|recipient|address)|invalid (recipient|mailbox|address)|recipient (address )?rejected|"
    r"mailbox (unavailable|not found)|account (is )?(disabled|closed|not found)|address rejected|"
    r"用户不存在|收件人不存在|地址不存在|帐号不存在|账号不存在",
    re.IGNORECASE,
)
_SOFT_TEXT = re.compile(
    r"mailbox (is )?full|over quota|quota exceeded|insufficient (storage|space)|temporar|try again later|"
    r"greylist|rate limit|too many|邮箱已满|空间不足",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery (subsystem|system)|mailerdaemon", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed)|mail delivery failed|returned mail|"
    r"failure notice|delivery notification|non.?delivery|could not be delivered|"
    r"退信|投递失败|无法投递|发送失败",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|absence|"
    r"vacation|on leave|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|"
    r"automatisch antwoord|自动回复|自動回覆|自動応答)",
    re.IGNORECASE,
)
# A line of a plain bounce that names the original SENDER (our own From, quoted back), e.g.
# "From: The Broadsheet <news@...>" or 163's "发件人" line (with a full-width colon): never the
# failed recipient.
_SENDER_LINE = re.compile(r"^\s*(from|sender|reply-to|return-path|发件人|發件人)\s*[:：]", re.IGNORECASE)
_VERP_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


@dataclass
class Recipient:
    """One recipient a report is about."""

    address: str
    kind: str
    status: str = ""
    diagnostic: str = ""


@dataclass
class Report:
    """What a mailbox message says: its kind, the recipients concerned, how to find the delivery."""

    kind: str
    key: str
    summary: str
    recipients: list[Recipient] = field(default_factory=list)
    delivery_id: int | None = None
    original_message_id: str = ""


def message_key(message: Message, raw: bytes) -> str:
    """A stable identity for a mailbox message: its Message-ID, else a hash of its bytes."""
    message_id = (message.get("Message-ID") or "").strip()
    if message_id:
        return "id:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:40]
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:40]


def classify_status(status: str, diagnostic: str = "", *, action: str = "failed") -> str:
    """HARD, SOFT or DELAYED for one recipient from its RFC 3463 status and diagnostic text."""
    action = (action or "failed").strip().lower()
    if action == "delayed":
        return DELAYED
    if _HARD_TEXT.search(diagnostic or ""):
        return HARD
    match = _STATUS.search(status or "") or _STATUS.search(diagnostic or "")
    klass, subject, detail = match.groups() if match else ("", "", "")
    if klass == "4" or (klass == "5" and ((subject, detail) in {("2", "2"), ("2", "3"), ("3", "4")} or subject == "7")):
        return SOFT
    if _SOFT_TEXT.search(diagnostic or ""):
        return SOFT
    if klass == "5":
        return HARD
    code = _REPLY_CODE.search(diagnostic or "")
    if code:
        return HARD if code.group(1).startswith("5") else SOFT
    return HARD if action == "failed" else DELAYED


def parse(raw: bytes) -> Report:
    """The ``Report`` for one raw message (never raises on malformed input: UNKNOWN then)."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as error:  # the email package is lenient, but a report must never stop the run
        return Report(UNKNOWN, "sha256:" + hashlib.sha256(raw).hexdigest()[:40], f"unreadable: {error}")
    key = message_key(message, raw)
    delivery_id = _verp_delivery(message)
    try:
        report = (
            _arf(message, key)
            or _dsn(message, key)
            or _auto_reply(message, key)
            or _plain_bounce(message, key)
            or Report(UNKNOWN, key, f"not a bounce: {_subject(message)!r}")
        )
    except Exception as error:  # hostile MIME: keep the message for a person rather than crash the run
        report = Report(UNKNOWN, key, f"unparseable: {type(error).__name__}: {error}")
    if report.kind in (UNKNOWN, AUTO_REPLY):
        return report
    report.delivery_id = delivery_id
    return report


def _subject(message: Message) -> str:
    value = message.get("Subject", "")
    try:
        return str(email.header.make_header(email.header.decode_header(value)))[:200]
    except Exception:
        return str(value)[:200]


def _verp_delivery(message: Message) -> int | None:
    for name in _VERP_HEADERS:
        for _display, address in getaddresses([str(value) for value in message.get_all(name, [])]):
            delivery_id = delivery_from_address(address)
            if delivery_id is not None:
                return delivery_id
    return None


def _report_part(message: Message, report_type: str) -> Message | None:
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != report_type:
        return None
    return message


def _original_headers(report: Message) -> Message | None:
    """The returned message (message/rfc822) or its headers (text/rfc822-headers)."""
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        if content_type == "text/rfc822-headers":
            data = part.get_payload(decode=True) or b""
            return email.message_from_bytes(data, policy=email.policy.compat32)
    return None


def _address(value: str) -> str:
    """An address from a report field: ``rfc822; user@example.com`` or a bare address."""
    value = (value or "").strip()
    if ";" in value:
        address_type, _, value = value.partition(";")
        if address_type.strip().lower() not in ("rfc822", "utf-8", ""):
            return ""
    return parseaddr(value.strip())[1].strip().lower()


def _arf(message: Message, key: str) -> Report | None:
    report = _report_part(message, "feedback-report")
    if report is None:
        return None
    fields = None
    for part in report.walk():
        if part.get_content_type() == "message/feedback-report":
            fields = _fields(part)
            break
    if fields is None:
        return None
    feedback_type = fields.get("feedback-type", "").strip().lower()
    original = _original_headers(report)
    recipients = [_address(value) for value in fields.get_all("original-rcpt-to", [])]
    recipients += [_address(value) for value in fields.get_all("removal-recipient", [])]
    if not any(recipients) and original is not None:
        recipients = [address.lower() for _name, address in getaddresses(original.get_all("To", []))]
    recipients = [address for address in dict.fromkeys(recipients) if address]
    if feedback_type not in COMPLAINT_FEEDBACK_TYPES:
        return Report(UNKNOWN, key, f"feedback report of type {feedback_type!r} (not a complaint)")
    reporter = fields.get("user-agent", "") or fields.get("reported-domain", "")
    return Report(
        COMPLAINT,
        key,
        f"complaint ({feedback_type}) from {reporter or 'a mailbox provider'}".strip(),
        [Recipient(address, COMPLAINT, diagnostic=f"feedback-type {feedback_type}") for address in recipients],
        original_message_id=(original.get("Message-ID", "") if original is not None else "").strip(),
    )


def _fields(part: Message) -> Message:
    """The header-like fields of a machine-readable report part, however the parser stored it."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # The email package parses message/delivery-status and message/feedback-report bodies
        # as a list of header blocks (RFC 3464: per-message block, then one per recipient).
        merged = Message()
        for block in payload:
            for name, value in block.items():
                merged[name] = value
        return merged
    data = payload.encode("utf-8", "replace") if isinstance(payload, str) else bytes(payload or b"")
    return email.message_from_bytes(data, policy=email.policy.compat32)


def _dsn_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload
    text = payload if isinstance(payload, str) else ""
    blocks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [email.message_from_string(block, policy=email.policy.compat32) for block in blocks if block.strip()]


def _dsn(message: Message, key: str) -> Report | None:
    report = _report_part(message, "delivery-status")
    if report is None:
        return None
    status_part = next((part for part in report.walk() if part.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        return None
    recipients = []
    for block in _dsn_blocks(status_part)[1:] or _dsn_blocks(status_part):
        address = _address(block.get("Final-Recipient", "") or block.get("Original-Recipient", ""))
        if not address:
            continue
        action = (block.get("Action", "") or "").strip().lower()
        if action in ("delivered", "relayed", "expanded"):
            continue  # success notices are not bounces
        status = (block.get("Status", "") or "").strip()
        diagnostic = " ".join((block.get("Diagnostic-Code", "") or "").split())
        kind = classify_status(status, diagnostic, action=action or "failed")
        recipients.append(Recipient(address, kind, status, diagnostic))
    if not recipients:
        return Report(UNKNOWN, key, "delivery status notification without a failed recipient")
    original = _original_headers(report)
    kinds = {recipient.kind for recipient in recipients}
    kind = HARD if HARD in kinds else SOFT if SOFT in kinds else DELAYED
    first = recipients[0]
    return Report(
        kind,
        key,
        f"{kind} bounce (DSN) for {first.address}: {first.status} {first.diagnostic}".strip()[:300],
        recipients,
        original_message_id=(original.get("Message-ID", "") if original is not None else "").strip(),
    )


def _from_mailer_daemon(message: Message) -> bool:
    """From a mailer-daemon or postmaster with a bounce-like subject: a (non-standard) bounce."""
    sender = " ".join(str(value) for value in message.get_all("From", []))
    return bool(_DAEMON.search(sender) and _BOUNCE_SUBJECT.search(_subject(message)))


def _auto_reply(message: Message, key: str) -> Report | None:
    if _from_mailer_daemon(message):
        # RFC 3834 section 5 marks DSNs "auto-replied"; some MTAs mark plain-text bounces so too.
        return None
    auto_submitted = (message.get("Auto-Submitted", "") or "").strip().lower()
    precedence = (message.get("Precedence", "") or "").strip().lower()
    subject = _subject(message)
    if (
        auto_submitted.startswith("auto-replied")
        or message.get("X-Autoreply")
        or message.get("X-Autorespond")
        or precedence == "auto_reply"
        or _AUTO_REPLY_SUBJECT.search(subject)
    ):
        return Report(AUTO_REPLY, key, f"auto-reply: {subject!r}")
    return None


def _text(message: Message) -> str:
    chunks = []
    for part in message.walk():
        if part.get_content_maintype() != "text" or part.get_content_type() == "text/rfc822-headers":
            continue
        data = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        try:
            text = data.decode(charset, "replace")
        except LookupError:
            text = data.decode("utf-8", "replace")
        if part.get_content_subtype() == "html":
            # HTML-only bounces (163, 126): read the text, one line per block or <br>.
            text = BeautifulSoup(text, "html.parser").get_text("\n")
        chunks.append(text)
    return "\n".join(chunks)


def _plain_bounce(message: Message, key: str) -> Report | None:
    subject = _subject(message)
    if not _from_mailer_daemon(message) and not (
        _BOUNCE_SUBJECT.search(subject) and (message.get("Return-Path", "").strip() == "<>")
    ):
        return None
    text = _text(message)
    own = {address.lower() for _name, address in getaddresses(message.get_all("To", []))}
    own |= {address.lower() for _name, address in getaddresses(message.get_all("From", []))}
    own |= {
        match.group(1).lower().rstrip(".")
        for line in text.splitlines()
        if _SENDER_LINE.match(line)
        for match in _ADDRESS.finditer(line)
    }
    addresses = []
    for match in _ADDRESS.finditer(text):
        address = match.group(1).lower().rstrip(".")
        if address not in own and delivery_from_address(address) is None and not _DAEMON.search(address):
            addresses.append(address)
    addresses = list(dict.fromkeys(addresses))
    if not addresses:
        return Report(UNKNOWN, key, f"bounce-like message without a recipient address: {subject!r}")
    status_match = _STATUS.search(text)
    status = ".".join(status_match.groups()) if status_match else ""
    diagnostic = _diagnostic_line(text, addresses[0])
    kind = classify_status(status, text)
    original_message_id = ""
    match = re.search(r"^Message-ID:\s*(<[^>\s]+>)", text, re.IGNORECASE | re.MULTILINE)
    if match:
        original_message_id = match.group(1)
    return Report(
        kind,
        key,
        f"{kind} bounce (non-standard) for {addresses[0]}: {diagnostic}"[:300],
        [Recipient(addresses[0], kind, status, diagnostic)],
        original_message_id=original_message_id,
    )


def _diagnostic_line(text: str, address: str) -> str:
    """The most telling line of a plain bounce: one with an SMTP code, else the address's line."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    for line in lines:
        if _REPLY_CODE.search(line) or _STATUS.search(line):
            return line[:200]
    for line in lines:
        if address in line.lower():
            return line[:200]
    return ""
