"""How personalised messages leave: SMTP, the outbox, anymail ESPs, any other Django backend.

The base class owns the send flow: ``send(items)`` hands each item to the subclass's
``send_one`` (or, for batch ESPs, the whole chunk to ``send_many``), and every exception a
subclass lets through becomes an outcome through ONE classifier (``classify_error``), so a bad
recipient, a bug in a backend or a refusing server fails that recipient and never the batch.
Subclasses hold only what differs: how to connect, how to hand over one message or one chunk.
Outcomes are one of:

- ``sent``: accepted (with the message id the medium reports);
- ``temporary``: 4xx / 429 / rate limited / connection lost before the message was handed over:
  queue again and back off;
- ``failed``: permanent for this recipient (5xx, ESP rejection, an address that cannot be sent
  to, a message that cannot be built); recorded, never retried;
- ``unknown``: the message may or may not have gone (connection cut after the data was sent):
  recorded as such, never silently re-sent.

Two exceptions stop a whole batch instead: ``TransportUnavailable`` (the medium cannot be reached
at all: the campaign waits for it, campaigns.sending.engine) and its subclass
``TransportAuthenticationFailed`` (credentials refused: the campaign is paused for a person).
"""

import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.utils import parseaddr
from urllib.parse import quote_plus, urlencode

from anymail.message import AnymailMessage
from anymail.utils import parse_address_list
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils.module_loading import import_string

from campaigns.sending.headers import CompiledMessage, MessageContent, Recipient
from campaigns.sending.verp import return_path
from mail.addresses import HeaderValueError, format_address, split_address
from mail.esps import ESPS, esp_for_backend
from mail.mergetags import SlotWriter, fill
from mail.outbox import OutboxBackend

SENT, TEMPORARY, FAILED, UNKNOWN = "sent", "temporary", "failed", "unknown"

# An address that goes inside <...> as it is: the common case, no IDNA or SMTPUTF8 needed.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
# What the socket raises when the server is gone.
_DISCONNECTED = (smtplib.SMTPServerDisconnected, ConnectionError, OSError)


class TransportUnavailable(Exception):
    """The medium cannot be reached at all right now (connect failed): the campaign waits for it."""


class TransportAuthenticationFailed(TransportUnavailable):
    """The medium refused our credentials (SMTP 535, HTTP 401/403): a person must fix them."""


class AddressRefused(ValueError):
    """An address that cannot be written on the SMTP envelope; the message says why."""


@dataclass
class Outgoing:
    """One message to send: the recipient and every per-recipient value."""

    recipient: Recipient
    values: dict[str, str]


@dataclass
class Outcome:
    delivery_id: int
    status: str
    message_id: str = ""
    error: str = ""


def reply_outcome(delivery_id: int, code: int, reply, stage: str) -> Outcome:
    """An SMTP refusal: 4xx is temporary, anything else (5xx) failed for this recipient."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    status = TEMPORARY if 400 <= code < 500 else FAILED
    return Outcome(delivery_id, status, error=f"{stage} {code} {text}"[:1000])


def classify_error(delivery_id: int, error: Exception) -> Outcome:
    """The outcome of an exception raised while building or handing over one message.

    HTTP 429/5xx, SMTP 4xx and lost connections are temporary; anything else (HTTP 4xx, SMTP 5xx,
    a value that cannot be encoded, a bug) fails that recipient with the reason recorded.
    Credentials refused (HTTP 401/403, SMTP 535) are not a recipient's problem: raised as
    TransportAuthenticationFailed so the campaign pauses.
    """
    status_code = getattr(getattr(error, "response", None), "status_code", None)
    if status_code is not None:
        if status_code in (401, 403):
            raise TransportAuthenticationFailed(f"the ESP refused the credentials: HTTP {status_code}: {error}")
        if status_code == 429 or status_code >= 500:
            return Outcome(delivery_id, TEMPORARY, error=f"HTTP {status_code}: {error}"[:1000])
        return Outcome(delivery_id, FAILED, error=f"HTTP {status_code}: {error}"[:1000])
    if isinstance(error, smtplib.SMTPAuthenticationError):
        raise TransportAuthenticationFailed(f"the SMTP server refused the login: {error}")
    if isinstance(error, smtplib.SMTPResponseException):
        return reply_outcome(delivery_id, error.smtp_code, error.smtp_error, "SMTP")
    if isinstance(error, _DISCONNECTED):  # TimeoutError is an OSError
        return Outcome(delivery_id, TEMPORARY, error=f"connection: {error}"[:1000])
    return Outcome(delivery_id, FAILED, error=f"could not send: {type(error).__name__}: {error}"[:1000])


def envelope_address(address: str) -> tuple[str, bool]:
    """``address`` as written inside ``<...>`` on MAIL FROM / RCPT TO, and whether it needs SMTPUTF8.

    The domain is encoded with IDNA 2008 by mail.addresses (``bob@bücher.de`` goes to any server
    as ``bob@xn--bcher-kva.de``). A non-ASCII local part has no ASCII form: it can only be sent to
    a server that offers SMTPUTF8 (RFC 6531). Raises AddressRefused (with the reason) for an
    address with control characters or angle brackets, or whose domain has no IDNA 2008 form.
    """
    if _PLAIN_ADDRESS.fullmatch(address):
        return address, False
    if "<" in address or ">" in address:
        raise AddressRefused("the address contains angle brackets")
    try:
        local, domain = split_address(address)
    except HeaderValueError as error:
        raise AddressRefused(str(error)) from None
    return f"{local}@{domain}", not local.isascii()


@dataclass
class Transport:
    """Base: owns the send flow and the outcome classification; subclasses say how to hand over.

    Subclasses with ``batch_size == 1`` implement ``send_one(item, date=...)``; batch ESPs set
    ``batch_size`` and implement ``send_many(items, date=...)``. ``open``/``close`` wrap a batch.
    """

    content: MessageContent
    options: dict = field(default_factory=dict)
    batch_size = 1
    name = "base"

    def open(self) -> None:
        """Open the connection used for the whole batch (TransportUnavailable if impossible)."""

    def close(self) -> None:
        """Close it (errors ignored: the outcomes are already known)."""

    def discard_connection(self) -> None:
        """After an unexpected error the connection's state is unknown: the next send reconnects."""
        self.close()

    def send(self, items: list[Outgoing], *, date: str) -> list[Outcome]:
        """One outcome per item, in order. Raises only TransportUnavailable (nothing handed over)."""
        if self.batch_size > 1:
            try:
                return self.send_many(items, date=date)
            except TransportUnavailable:
                raise
            except Exception as error:
                return [classify_error(item.recipient.delivery_id, error) for item in items]
        outcomes = []
        for item in items:
            try:
                outcomes.append(self.send_one(item, date=date))
            except TransportUnavailable:
                raise
            except Exception as error:
                self.discard_connection()
                outcomes.append(classify_error(item.recipient.delivery_id, error))
        return outcomes

    def send_one(self, item: Outgoing, *, date: str) -> Outcome:  # pragma: no cover - abstract
        raise NotImplementedError

    def send_many(self, items: list[Outgoing], *, date: str) -> list[Outcome]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


# --- Raw bytes: SMTP and the outbox ---------------------------------------------------------


@dataclass
class RawTransport(Transport):
    """Transports that take the message as bytes from CompiledMessage (no MIME per recipient)."""

    compiled: CompiledMessage | None = None
    sender: str = ""

    def __post_init__(self):
        if self.compiled is None:
            self.compiled = CompiledMessage(self.content)
        # Parsed once: parseaddr per message was about 4% of the SMTP worker's time.
        self.sender = parseaddr(self.content.from_email)[1]

    def envelope_sender(self) -> str:
        return self.sender


# The SMTP commands before the message, with the reply codes that accept each (RFC 5321).
_STAGES = (("MAIL FROM", (250,)), ("RCPT TO", (250, 251)), ("DATA", (354,)))


@dataclass
class SMTPTransport(RawTransport):
    """One SMTP connection per batch; each message is MAIL/RCPT/DATA of pre-built bytes.

    The outcome rules are written once (``send_one``) for both ways of talking to the server:
    with RFC 2920 PIPELINING, when the server advertises it, MAIL, RCPT and DATA go in one write
    and their three replies are read together (two writes and two waits per message instead of
    four of each); without it, each command waits for its reply and the first refusal ends the
    transaction. Either way:

    - the first refusal among MAIL/RCPT/DATA decides (4xx temporary, 5xx failed); the transaction
      is reset with RSET, or the connection closed after a 421; a server that answered 354 to DATA
      although MAIL or RCPT was refused gets an empty message (a lone ".") to stay in step;
    - a connection lost before the message's data was written (no refusal read) is retried once
      at once on a new connection: the server cannot have accepted anything;
    - a connection lost after the data was written, before its reply, is ``unknown``.
    """

    name = "smtp"
    connection: smtplib.SMTP | None = None
    # What the open connection's server advertised in its EHLO reply, read at open().
    pipelining: bool = False
    smtputf8: bool = False
    # MAIL FROM command bytes, without and with the SMTPUTF8 parameter (built once).
    _mail_commands: dict = field(default_factory=dict)

    def open(self) -> None:
        options = self.options
        host, port = options.get("host", "localhost"), int(options.get("port", 25))
        timeout = options.get("timeout") or 30
        try:
            if options.get("use_ssl"):
                connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                connection = smtplib.SMTP(host, port, timeout=timeout)
                if options.get("use_tls"):
                    connection.starttls(context=ssl.create_default_context())
            connection.ehlo_or_helo_if_needed()
            if options.get("username"):
                connection.login(options["username"], options.get("password", ""))
        except smtplib.SMTPAuthenticationError as error:
            raise TransportAuthenticationFailed(
                f"SMTP {host}:{port} refused the login: {error.smtp_code} {_text(error.smtp_error)}"
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            raise TransportUnavailable(f"SMTP {host}:{port}: {error}") from error
        self.connection = connection
        self.pipelining = connection.has_extn("pipelining")
        self.smtputf8 = connection.has_extn("smtputf8")

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None

    def _lost(self, connection) -> None:
        self.connection = None
        connection.close()

    def _mail_command(self, delivery_id: int, smtputf8: bool) -> bytes:
        """``MAIL FROM:<...>``: the delivery's VERP return path when a bounce domain is set, else the sender."""
        parameter = " SMTPUTF8" if smtputf8 else ""
        verp = return_path(delivery_id)
        if verp is not None:
            return f"MAIL FROM:<{verp}>{parameter}\r\n".encode()
        command = self._mail_commands.get(smtputf8)
        if command is None:
            sender, _ = envelope_address(self.sender) if self.sender else ("", False)
            command = self._mail_commands[smtputf8] = f"MAIL FROM:<{sender}>{parameter}\r\n".encode()
        return command

    @staticmethod
    def _stuffed(raw: bytes) -> bytes:
        """The message as DATA content, terminator included."""
        # RFC 5321 4.5.2 transparency: a line starting with "." gets a second one. Every line
        # ends in "\n", so this is smtplib's re.sub(rb"(?m)^\.", b"..") without the regex (a C
        # loop over the bytes; the quoted-printable body often has such lines).
        raw = raw.replace(b"\n.", b"\n..")
        if raw.startswith(b"."):
            raw = b"." + raw
        if not raw.endswith(b"\r\n"):
            raw += b"\r\n"
        return raw + b".\r\n"

    # smtplib's mail()/rcpt()/data() re-parse both addresses (email.utils.parseaddr) and run a
    # dot-stuffing regex over the whole message for every message: about 100 us and 75 us per
    # message in the profile, more than the rest of our per-message work. send_one writes the
    # same commands itself, from addresses encoded once (envelope_address).

    def send_one(self, item: Outgoing, *, date: str) -> Outcome:
        delivery_id, message_id = item.recipient.delivery_id, item.values["message_id"]
        try:
            recipient, smtputf8 = envelope_address(item.recipient.email)
        except AddressRefused as error:
            return Outcome(delivery_id, FAILED, error=f"address refused: {error}")
        raw = self.compiled.render(item.values, date=date)
        commands = (self._mail_command(delivery_id, smtputf8), f"RCPT TO:<{recipient}>\r\n".encode(), b"DATA\r\n")
        for attempt in (1, 2):
            if self.connection is None:
                self.open()
            connection = self.connection
            if smtputf8 and not self.smtputf8:
                return Outcome(
                    delivery_id,
                    FAILED,
                    error="the address's local part is not ASCII and the mail server does not offer "
                    "SMTPUTF8 (RFC 6531)",
                )
            replies: list[tuple[int, bytes]] = []
            try:
                if self.pipelining:
                    connection.send(b"".join(commands))
                    for _ in commands:
                        replies.append(connection.getreply())
                else:
                    for command, (_, accepted) in zip(commands, _STAGES, strict=True):
                        connection.send(command)
                        replies.append(connection.getreply())
                        if replies[-1][0] not in accepted:
                            break
            except _DISCONNECTED as error:
                self._lost(connection)
                refusal = _first_refusal(replies)
                if refusal is not None:
                    # Refused, then the server hung up (a 421 closes the link): the refusal decides.
                    return reply_outcome(delivery_id, *refusal)
                if attempt == 1:
                    continue
                return Outcome(delivery_id, TEMPORARY, error=f"connection lost: {error}")
            refusal = _first_refusal(replies)
            if refusal is not None:
                self._end_refused(connection, replies, refusal[0])
                return reply_outcome(delivery_id, *refusal)
            try:
                connection.send(self._stuffed(raw))
                code, reply = connection.getreply()
            except _DISCONNECTED as error:
                self._lost(connection)
                return Outcome(
                    delivery_id,
                    UNKNOWN,
                    message_id,
                    f"connection lost after the message was sent, before the server answered "
                    f"(it may have been delivered): {error}",
                )
            if code != 250:
                self._end_refused(connection, [], code)
                return reply_outcome(delivery_id, code, reply, "DATA")
            return Outcome(delivery_id, SENT, message_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _end_refused(self, connection, replies: list, code: int) -> None:
        """Leave the session in step after a refusal: end an accepted DATA, then RSET (421: close)."""
        try:
            if len(replies) == 3 and replies[2][0] == 354:
                # A server that accepted DATA although MAIL or RCPT failed expects a message:
                # an empty one ends it (and is refused for want of recipients).
                connection.send(b".\r\n")
                connection.getreply()
            if code == 421:
                self.close()
            else:
                connection.rset()
        except (OSError, smtplib.SMTPException):
            self._lost(connection)


def _first_refusal(replies: list) -> tuple[int, bytes, str] | None:
    """The first refusal among the MAIL, RCPT and DATA replies read so far, if any."""
    for (code, reply), (stage, accepted) in zip(replies, _STAGES, strict=False):
        if code not in accepted:
            return code, reply, stage
    return None


def _text(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


@dataclass
class OutboxTransport(RawTransport):
    """The development Maildir (mail.outbox.OutboxBackend.write_bytes)."""

    name = "outbox"
    backend: object = None

    def open(self) -> None:
        self.backend = OutboxBackend(**self.options)
        self.backend.open()

    def send_one(self, item: Outgoing, *, date: str) -> Outcome:
        self.backend.write_bytes(self.compiled.render(item.values, date=date))
        return Outcome(item.recipient.delivery_id, SENT, item.values["message_id"])


# --- Django email backends: anymail and anything else -----------------------------------------


def _message_headers(content: MessageContent, values: dict[str, str], date: str) -> dict[str, str]:
    headers = {
        "Date": date,
        "Message-ID": values["message_id"],
        "List-Unsubscribe": values["list_unsubscribe"].replace("\r\n", ""),
    }
    headers.update(content.static_headers())
    return headers


@dataclass
class DjangoBackendTransport(Transport):
    """Per-recipient EmailMultiAlternatives with the same headers, over one backend connection.

    The fallback for locmem/console and any backend we have no faster path for, and for ESPs
    whose anymail backend cannot batch inline content.
    """

    name = "django"
    alias: str = "default"
    connection: object = None

    def open(self) -> None:
        self.connection = mail.mailers[self.alias]
        self.connection.open()

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None

    def build(self, item: Outgoing, date: str) -> EmailMultiAlternatives:
        content, values = self.content, item.values
        message = EmailMultiAlternatives(
            subject=content.subject_for(values),
            body=fill(content.compiled_text, values),
            from_email=content.from_email,
            to=[_display_address(item.recipient)],
            reply_to=[content.reply_to] if content.reply_to else None,
            headers=_message_headers(content, values, date),
        )
        message.attach_alternative(fill(content.compiled_html, values), "text/html")
        return message

    def send_one(self, item: Outgoing, *, date: str) -> Outcome:
        delivery_id = item.recipient.delivery_id
        message = self.build(item, date)
        count = self.connection.send_messages([message])
        status = getattr(message, "anymail_status", None)
        if status is not None and status.recipients:
            return _anymail_outcome(delivery_id, status.recipients.get(_anymail_key(item.recipient)) or status)
        if not count:
            return Outcome(delivery_id, FAILED, error="the mail backend did not send the message")
        return Outcome(delivery_id, SENT, item.values["message_id"])


def _anymail_outcome(delivery_id: int, recipient_status) -> Outcome:
    status = getattr(recipient_status, "status", None)
    if isinstance(status, set):  # the message-level AnymailStatus
        status = next(iter(status)) if len(status) == 1 else "unknown"
    message_id = getattr(recipient_status, "message_id", None)
    message_id = "" if message_id is None else str(message_id)
    if status in ("sent", "queued", "scheduled"):
        return Outcome(delivery_id, SENT, message_id)
    return Outcome(delivery_id, FAILED, message_id, f"ESP status {status}")


@dataclass
class AnymailBatchTransport(DjangoBackendTransport):
    """One anymail batch send per API call: merge_data / merge_metadata / merge_headers.

    Each slot of the subject and the parts (mail.mergetags: a placeholder or merge tag, where it
    stands) becomes one ESP merge field ``m0``, ``m1``...; each recipient's merge data holds the
    slot's value as the slot writes it (HTML-escaped, URL-quoted, header-safe, or its fallback),
    so the ESP only pastes text in and the batch stays one call.
    """

    name = "anymail"
    esp: str = "test"
    batch_size = 1000

    def __post_init__(self):
        esp = ESPS[self.esp]
        self.batch_size = min(esp.batch_limit, settings.BROADSHEET["ESP_BATCH_LIMIT"] or esp.batch_limit)
        content = self.content
        self.slots: dict = {}  # Slot -> merge field name
        self.write = SlotWriter()  # each slot's value as it writes it, remembered across batches
        self.subject = self._with_merge_fields(content.compiled_subject, esp)
        self.text_body = self._with_merge_fields(content.compiled_text, esp)
        self.html_body = self._with_merge_fields(content.compiled_html, esp)

    def _with_merge_fields(self, compiled: list, esp) -> str:
        pieces = []
        for index, piece in enumerate(compiled):
            if index % 2:
                piece = esp.merge_field_for(self.slots.setdefault(piece, f"m{len(self.slots)}"))
            pieces.append(piece)
        return "".join(pieces)

    def message(self, items: list[Outgoing]) -> AnymailMessage:
        """The batch as one anymail message: the recipients with their merge data, headers and metadata."""
        content = self.content
        message = AnymailMessage(
            subject=self.subject,
            body=self.text_body,
            from_email=content.from_email,
            to=[_display_address(item.recipient) for item in items],
            reply_to=[content.reply_to] if content.reply_to else None,
            # The ESP sets Date and Message-ID itself (and reports its id back).
            headers=content.static_headers(),
        )
        message.attach_alternative(self.html_body, "text/html")
        message.merge_data, message.merge_headers, message.merge_metadata = {}, {}, {}
        for item in items:
            address = _anymail_key(item.recipient)
            data, headers, metadata = self.merge_values(item)
            message.merge_data[address] = data
            message.merge_headers[address] = headers
            message.merge_metadata[address] = metadata
        message.metadata = {"campaign_id": str(content.campaign_id)}
        return message

    def merge_values(self, item: Outgoing) -> tuple[dict, dict, dict]:
        """One recipient's merge data (each slot's value as the slot writes it), headers and metadata."""
        values = item.values
        write = self.write
        data = {field: write(slot, values) for slot, field in self.slots.items()}
        headers = {"List-Unsubscribe": values["list_unsubscribe"].replace("\r\n", "")}
        return data, headers, {"delivery_id": str(item.recipient.delivery_id)}

    def send_many(self, items: list[Outgoing], *, date: str) -> list[Outcome]:
        message = self.message(items)
        self.connection.send_messages([message])
        recipients = message.anymail_status.recipients or {}
        outcomes = []
        for item in items:
            status = recipients.get(_anymail_key(item.recipient))
            if status is None:
                outcomes.append(Outcome(item.recipient.delivery_id, UNKNOWN, error="the ESP reported no status for it"))
            else:
                outcomes.append(_anymail_outcome(item.recipient.delivery_id, status))
        return outcomes


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# ASCII as urllib.parse.quote_plus writes it for a form (letters, digits and "_.-~" kept, space as
# "+", the rest %XX), for one str.translate: quote_plus goes byte by byte in Python, and the
# recipient-variables JSON of a 1,000-recipient call is about 600 KB (50 us per recipient).
_FORM_QUOTE = {
    code: chr(code) if chr(code).isalnum() or chr(code) in "_.-~" else "+" if code == 32 else f"%{code:02X}"
    for code in range(128)
}


def _form_quote(text: str) -> str:
    return text.translate(_FORM_QUOTE) if text.isascii() else quote_plus(text)


# Whitespace the email package's address parser would change in a display name (a run of
# spaces becomes one; tabs and other spaces are folded): such names take anymail's own parse.
_IRREGULAR_SPACE = re.compile(r"\s\s|[^\S ]")


@dataclass
class MailgunBatchTransport(AnymailBatchTransport):
    """Mailgun's batch call, with the per-recipient part of the request written here.

    anymail parses every ``"Name" <address>`` it is handed back into an ``EmailAddress`` with the
    email package's header parser, 1,000 times per call: the largest share of the worker's CPU on
    the ESP path (docs/performance.md). Here anymail still builds everything campaign-wide once per
    batch (from a one-recipient message: endpoint, credentials, From, subject, bodies, headers,
    metadata, its send defaults) and checks the answer (``raise_for_status``,
    ``parse_recipient_status``); each call only replaces ``to`` and ``recipient-variables`` with
    the batch's, written as anymail's Mailgun payload writes them (Mailgun's batch sending:
    ``v:`` keys carry metadata, ``h:`` keys headers, the rest the merge fields;
    https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/#batch-sending).
    A test sends the same batch both ways and compares the two requests. anymail's
    ``pre_send``/``post_send`` signals are not sent on this path (nothing in Broadsheet listens).
    """

    name = "mailgun"
    _request: dict | None = None
    _payload: object = None
    _static_form: str | None = None

    def send_many(self, items: list[Outgoing], *, date: str) -> list[Outcome]:
        backend = self.connection
        if self._request is None:
            self._prepare(backend, items[0])
        to, variables = [], {}
        for item in items:
            display, address = self._to(item.recipient)
            data, headers, metadata = self.merge_values(item)
            to.append(display)
            variables[address] = {
                **{f"v:{key}": value for key, value in metadata.items()},
                **data,
                **{f"h:{key.title()}": value for key, value in headers.items()},
            }
        variables_json = self._payload.serialize_json(variables)
        request = dict(self._request)
        if self._static_form is None:  # attachments: multipart, as anymail sends it
            request["data"] = {**request["data"], "to": to, "recipient-variables": variables_json}
        else:
            fields = [f"to={quote_plus(value)}" for value in to]
            fields.append(f"recipient-variables={_form_quote(variables_json)}")
            request["data"] = "&".join([self._static_form, *fields])
        response = backend.session.request(**request)
        backend.raise_for_status(response, self._payload, None)
        # Mailgun answers one id for the whole call; anymail reads and checks it.
        (status,) = set(backend.parse_recipient_status(response, self._payload, None).values())
        return [_anymail_outcome(item.recipient.delivery_id, status) for item in items]

    def _prepare(self, backend, item: Outgoing) -> None:
        """The request for a one-recipient batch as anymail builds it, and its campaign-wide form
        fields urlencoded once (as requests encodes a dict: None left out, lists repeated); each
        call adds its ``to`` and ``recipient-variables``."""
        self._payload = backend.build_message_payload(self.message([item]), backend.send_defaults)
        self._request = self._payload.get_request_params(backend.api_url)
        self._request.setdefault("timeout", backend.timeout)
        if self._request.get("files"):
            return
        pairs = []
        for key, values in self._request["data"].items():
            if key in ("to", "recipient-variables"):
                continue
            for value in [values] if isinstance(values, str) or not hasattr(values, "__iter__") else values:
                if value is not None:
                    pairs.append((key, value))
        self._static_form = urlencode(pairs)
        self._request["headers"] = {**(self._request.get("headers") or {}), "Content-Type": FORM_CONTENT_TYPE}

    def _to(self, recipient: Recipient) -> tuple[str, str]:
        """The recipient as anymail's Mailgun payload writes it in ``to``, and its recipient-variables key."""
        display = _display_address(recipient)
        if _is_plain(recipient):
            # format_address quotes as email.headerregistry.Address does, which is what anymail's
            # EmailAddress.format() prints after parsing it back (a test compares the two).
            return display, recipient.email
        parsed = parse_address_list([display])[0]
        return parsed.format(idna_encode=self.connection.idna_encode), parsed.addr_spec


def _is_plain(recipient: Recipient) -> bool:
    """An ASCII dot-atom address and a display name anymail's parser gives back unchanged."""
    return bool(_PLAIN_ADDRESS.fullmatch(recipient.email)) and not _IRREGULAR_SPACE.search(recipient.name.strip())


def _anymail_key(recipient: Recipient) -> str:
    """The address anymail keys a recipient's merge data and status by: the addr-spec it parses
    from the To we hand it. For a quoted local part (``"john smith"@example.com``) that is not the
    address as stored, and merge data keyed by the stored one reached nobody (the recipient's
    links went out empty)."""
    if _is_plain(recipient):
        return recipient.email
    return parse_address_list([_display_address(recipient)])[0].addr_spec


# ESPs whose batch request is written by a transport of its own (the rest go through anymail).
DIRECT_BATCH_TRANSPORTS = {"mailgun": MailgunBatchTransport}


def _display_address(recipient: Recipient) -> str:
    """``Name <address>`` unencoded (Django and anymail encode the name), built by mail.addresses."""
    return format_address(recipient.email, recipient.name)


def get_transport(content: MessageContent, *, alias: str = "default", test: bool = False) -> Transport:
    """The transport for ``settings.MAILERS[alias]``; ``test`` sends always go message by message."""
    config = settings.MAILERS[alias]
    backend = config.get("BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    options = dict(config.get("OPTIONS", {}))
    backend_class = import_string(backend)
    if backend == "django.core.mail.backends.smtp.EmailBackend":
        return SMTPTransport(content=content, options=options)
    if backend == "mail.outbox.OutboxBackend":
        return OutboxTransport(content=content, options=options)
    esp = esp_for_backend(backend)
    if esp is not None and esp.batches and not test:
        transport_class = DIRECT_BATCH_TRANSPORTS.get(esp.name, AnymailBatchTransport)
        return transport_class(content=content, options=options, alias=alias, esp=esp.name)
    del backend_class  # imported only to fail early on a misconfigured backend path
    return DjangoBackendTransport(content=content, options=options, alias=alias)
