"""How personalised messages leave: SMTP, the outbox, anymail ESPs, any other Django backend.

The base class owns the flow (open once per batch, send items, classify every outcome, close);
subclasses fill in ``open``/``close`` and ``send`` for their medium. Outcomes are one of:

- ``sent``: accepted (with the message id the medium reports);
- ``temporary``: 4xx / 429 / rate limited: queue again and back off;
- ``failed``: permanent for this recipient (5xx, ESP rejection); recorded, never retried;
- ``unknown``: the message may or may not have gone (connection cut after the data was sent):
  reported as failed, never silently re-sent.

A feature a transport cannot honour raises ``UnsupportedFeature`` instead of being dropped.
"""

import html as html_lib
import re
import smtplib
import ssl
from dataclasses import dataclass, field

from django.conf import settings
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils.module_loading import import_string

from campaigns.rendering import fill_placeholders
from campaigns.sending.headers import BODY_KEYS, CompiledMessage, MessageContent, Recipient
from campaigns.sending.verp import return_path
from mail.addresses import format_address

SENT, TEMPORARY, FAILED, UNKNOWN = "sent", "temporary", "failed", "unknown"

# An address smtplib.quoteaddr() would return unchanged inside <...>: the common case, sent as is.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


class UnsupportedFeature(Exception):
    """The configured mailer cannot do what the campaign needs."""


class TransportUnavailable(Exception):
    """The medium cannot be reached at all right now (connect/login failed): retry the batch later."""


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


@dataclass
class Transport:
    """Base: subclasses set ``batch_size`` (recipients per call) and implement ``send``."""

    content: MessageContent
    options: dict = field(default_factory=dict)
    batch_size = 1
    name = "base"

    def open(self) -> None:
        """Open the connection used for the whole batch."""

    def close(self) -> None:
        """Close it (errors ignored: the outcomes are already known)."""

    def send(self, items: list[Outgoing], *, date: str) -> list[Outcome]:  # pragma: no cover - abstract
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
        from email.utils import parseaddr

        if self.compiled is None:
            self.compiled = CompiledMessage(self.content)
        # Parsed once: parseaddr per message was about 4% of the SMTP worker's time.
        self.sender = parseaddr(self.content.from_email)[1]

    def envelope_sender(self) -> str:
        return self.sender


@dataclass
class SMTPTransport(RawTransport):
    """One SMTP connection per batch; each message is MAIL/RCPT/DATA of pre-built bytes."""

    name = "smtp"
    connection: smtplib.SMTP | None = None
    mail_from: str | None = None
    # Whether the open connection's server advertised PIPELINING (RFC 2920), read at open().
    pipelining: bool = False

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
        except (OSError, smtplib.SMTPException) as error:
            raise TransportUnavailable(f"SMTP {host}:{port}: {error}") from error
        self.connection = connection
        self.pipelining = connection.has_extn("pipelining")

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None

    def _reset(self) -> None:
        try:
            self.connection.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def send(self, items: list[Outgoing], *, date: str) -> list[Outcome]:
        return [self.send_one(item, date=date) for item in items]

    # smtplib's mail()/rcpt()/data() re-parse both addresses (email.utils.parseaddr) and run a
    # dot-stuffing regex over the whole message for every message: about 100 us and 75 us per
    # message in the profile, more than the rest of our per-message work. The three methods
    # below send the same commands without that: the sender is quoted once, a plain address is
    # sent as is (anything unusual still goes through smtplib), and the message is scanned for
    # a line starting with "." is stuffed with bytes.replace (a C loop over the bytes; the
    # quoted-printable body often has such lines, where a soft line break falls before a ".").

    def _mail_from(self, delivery_id: int) -> str:
        """``FROM:<...>``: the delivery's VERP return path when a bounce domain is set, else the sender."""
        verp = return_path(delivery_id)
        if verp is not None:
            return f"FROM:<{verp}>"
        if self.mail_from is None:
            self.mail_from = "FROM:" + smtplib.quoteaddr(self.sender)
        return self.mail_from

    def _mail(self, connection, delivery_id: int):
        return connection.docmd("mail", self._mail_from(delivery_id))

    @staticmethod
    def _rcpt(connection, address: str):
        if _PLAIN_ADDRESS.fullmatch(address):
            return connection.docmd("rcpt", f"TO:<{address}>")
        return connection.rcpt(address)

    @staticmethod
    def _stuffed(raw: bytes) -> bytes:
        """The message as DATA content, terminator included."""
        # RFC 5321 4.5.2 transparency: a line starting with "." gets a second one. Every line
        # ends in "\n", so this is smtplib's re.sub(rb"(?m)^\.", b"..") without the regex.
        raw = raw.replace(b"\n.", b"\n..")
        if raw.startswith(b"."):
            raw = b"." + raw
        if not raw.endswith(b"\r\n"):
            raw += b"\r\n"
        return raw + b".\r\n"

    @classmethod
    def _data(cls, connection, raw: bytes):
        """smtplib.SMTP.data() for bytes ending in CRLF (CompiledMessage.render's output)."""
        code, reply = connection.docmd("data")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        connection.send(cls._stuffed(raw))
        return connection.getreply()

    def send_one(self, item: Outgoing, *, date: str) -> Outcome:
        delivery_id, address = item.recipient.delivery_id, item.recipient.email
        message_id = item.values["message_id"]
        if not address.isascii():
            return Outcome(delivery_id, FAILED, error="non-ASCII address needs SMTPUTF8, not supported")
        raw = self.compiled.render(item.values, date=date)
        # A dropped connection before DATA is answered is safe to retry at once on a new one
        # (the server cannot have accepted anything); after the data went out it is not.
        for attempt in (1, 2):
            if self.connection is None:
                self.open()
            connection = self.connection
            if self.pipelining:
                outcome = self._send_pipelined(connection, item, raw, last_attempt=attempt == 2)
                if outcome is None:
                    continue
                return outcome
            stage = "mail"
            try:
                code, reply = self._mail(connection, delivery_id)
                if code != 250:
                    self._reset()
                    return self._refused(delivery_id, code, reply, "MAIL FROM")
                stage = "rcpt"
                code, reply = self._rcpt(connection, address)
                if code not in (250, 251):
                    self._reset()
                    return self._refused(delivery_id, code, reply, "RCPT TO")
                stage = "data"
                code, reply = self._data(connection, raw)
            except smtplib.SMTPDataError as error:
                # 421 closes the connection; anything else leaves it usable after RSET.
                if error.smtp_code == 421:
                    self.close()
                else:
                    self._reset()
                return self._refused(delivery_id, error.smtp_code, error.smtp_error, "DATA")
            except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as error:
                self.connection = None
                connection.close()
                if stage == "data":
                    return Outcome(delivery_id, UNKNOWN, message_id, f"unknown: connection lost during DATA: {error}")
                if attempt == 2:
                    return Outcome(delivery_id, TEMPORARY, error=f"connection lost: {error}")
                continue
            if code != 250:
                self._reset()
                return self._refused(delivery_id, code, reply, "DATA")
            return Outcome(delivery_id, SENT, message_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_pipelined(self, connection, item: Outgoing, raw: bytes, *, last_attempt: bool) -> Outcome | None:
        """One message with RFC 2920 pipelining: MAIL, RCPT and DATA in one write, their three
        replies read together, then the data and its reply. Two writes and two waits per message
        instead of four of each. The outcome rules are the sequential path's; None means the
        connection dropped before the data went out: retry on a new connection."""
        delivery_id, address = item.recipient.delivery_id, item.recipient.email
        mail_from = self._mail_from(delivery_id)
        rcpt_to = f"TO:<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else "TO:" + smtplib.quoteaddr(address)
        replies = []
        try:
            connection.send(f"MAIL {mail_from}\r\nRCPT {rcpt_to}\r\nDATA\r\n")
            for _ in range(3):
                replies.append(connection.getreply())
        except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as error:
            self.connection = None
            connection.close()
            refusal = self._pipelined_refusal(replies)
            if refusal is not None:
                # Refused, then the server hung up (a 421 closes the link): the refusal decides.
                return self._refused(delivery_id, *refusal)
            if last_attempt:
                return Outcome(delivery_id, TEMPORARY, error=f"connection lost: {error}")
            return None
        refusal = self._pipelined_refusal(replies)
        if refusal is not None:
            if replies[2][0] == 354:
                # A server that accepted DATA although MAIL or RCPT failed expects a message:
                # an empty one ends it (and is refused for want of recipients).
                try:
                    connection.send(b".\r\n")
                    connection.getreply()
                except (smtplib.SMTPServerDisconnected, ConnectionError, OSError):
                    self.close()
            if self.connection is not None:
                if refusal[0] == 421:
                    self.close()
                else:
                    self._reset()
            return self._refused(delivery_id, *refusal)
        message_id = item.values["message_id"]
        try:
            connection.send(self._stuffed(raw))
            code, reply = connection.getreply()
        except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as error:
            self.connection = None
            connection.close()
            return Outcome(delivery_id, UNKNOWN, message_id, f"unknown: connection lost during DATA: {error}")
        if code != 250:
            self._reset()
            return self._refused(delivery_id, code, reply, "DATA")
        return Outcome(delivery_id, SENT, message_id)

    @staticmethod
    def _pipelined_refusal(replies: list) -> tuple[int, object, str] | None:
        """The first refusal among the MAIL, RCPT and DATA replies read so far, if any."""
        for (code, reply), stage, accepted in zip(
            replies, ("MAIL FROM", "RCPT TO", "DATA"), ((250,), (250, 251), (354,)), strict=False
        ):
            if code not in accepted:
                return code, reply, stage
        return None

    @staticmethod
    def _refused(delivery_id: int, code: int, reply, stage: str) -> Outcome:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        status = TEMPORARY if 400 <= code < 500 else FAILED
        return Outcome(delivery_id, status, error=f"{stage} {code} {text}"[:1000])


@dataclass
class OutboxTransport(RawTransport):
    """The development Maildir (newsletter_site.outbox.OutboxBackend.write_bytes)."""

    name = "outbox"
    backend: object = None

    def open(self) -> None:
        from newsletter_site.outbox import OutboxBackend

        self.backend = OutboxBackend(**self.options)
        self.backend.open()

    def send(self, items: list[Outgoing], *, date: str) -> list[Outcome]:
        outcomes = []
        for item in items:
            self.backend.write_bytes(self.compiled.render(item.values, date=date))
            outcomes.append(Outcome(item.recipient.delivery_id, SENT, item.values["message_id"]))
        return outcomes


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
            subject=content.full_subject,
            body=fill_placeholders(content.text, values, escape=False),
            from_email=content.from_email,
            to=[_display_address(item.recipient)],
            reply_to=[content.reply_to] if content.reply_to else None,
            headers=_message_headers(content, values, date),
        )
        message.attach_alternative(fill_placeholders(content.html, values, escape=True), "text/html")
        return message

    def send(self, items: list[Outgoing], *, date: str) -> list[Outcome]:
        outcomes = []
        for item in items:
            message = self.build(item, date)
            outcomes.append(self._send_one(item, message))
        return outcomes

    def _send_one(self, item: Outgoing, message) -> Outcome:
        delivery_id = item.recipient.delivery_id
        try:
            count = self.connection.send_messages([message])
        except Exception as error:
            return _classify_exception(delivery_id, error)
        status = getattr(message, "anymail_status", None)
        if status is not None and status.recipients:
            return _anymail_outcome(delivery_id, status.recipients.get(item.recipient.email) or status)
        if not count:
            return Outcome(delivery_id, FAILED, error="the mail backend did not send the message")
        return Outcome(delivery_id, SENT, item.values["message_id"])


# Recipients per API call and the ESP's inline merge-field syntax ({} is the field name). ESPs
# absent here (Postmark, Amazon SES, Resend, MailerSend...) need a stored template for batch
# sends of per-recipient content in anymail, so they get one message per recipient, over one
# connection (DjangoBackendTransport). docs/sending.md has the table.
ESP_BATCH = {
    "test": (1000, "{{{{{}}}}}"),
    "mailgun": (1000, "%recipient.{}%"),
    "mailjet": (50, "[[var:{}]]"),
    "brevo": (1000, "{{{{ params.{} }}}}"),
    "sendinblue": (1000, "{{{{ params.{} }}}}"),
    "sparkpost": (1000, "{{{{{}}}}}"),
}


def _esp_name(backend_path: str) -> str:
    parts = backend_path.split(".")
    return parts[2] if len(parts) > 3 and parts[0] == "anymail" else ""


def _anymail_outcome(delivery_id: int, recipient_status) -> Outcome:
    status = getattr(recipient_status, "status", None)
    if isinstance(status, set):  # the message-level AnymailStatus
        status = next(iter(status)) if len(status) == 1 else "unknown"
    message_id = getattr(recipient_status, "message_id", None)
    message_id = "" if message_id is None else str(message_id)
    if status in ("sent", "queued", "scheduled"):
        return Outcome(delivery_id, SENT, message_id)
    return Outcome(delivery_id, FAILED, message_id, f"ESP status {status}")


def _classify_exception(delivery_id: int, error: Exception) -> Outcome:
    """A send exception from a Django backend: 429/5xx-server/connection = temporary, else failed."""
    status_code = getattr(getattr(error, "response", None), "status_code", None)
    if status_code is not None:
        if status_code == 429 or status_code >= 500:
            return Outcome(delivery_id, TEMPORARY, error=f"HTTP {status_code}: {error}"[:1000])
        return Outcome(delivery_id, FAILED, error=f"HTTP {status_code}: {error}"[:1000])
    if isinstance(error, smtplib.SMTPResponseException) and 400 <= error.smtp_code < 500:
        return Outcome(delivery_id, TEMPORARY, error=str(error)[:1000])
    if isinstance(error, (ConnectionError, TimeoutError, smtplib.SMTPServerDisconnected)):
        return Outcome(delivery_id, TEMPORARY, error=f"connection: {error}"[:1000])
    return Outcome(delivery_id, FAILED, error=f"{type(error).__name__}: {error}"[:1000])


@dataclass
class AnymailBatchTransport(DjangoBackendTransport):
    """One anymail batch send per API call: merge_data / merge_metadata / merge_headers."""

    name = "anymail"
    esp: str = "test"
    batch_size = 1000

    def __post_init__(self):
        limit, field_format = ESP_BATCH[self.esp]
        self.batch_size = min(limit, settings.BROADSHEET["ESP_BATCH_LIMIT"] or limit)
        fields = {key: field_format.format(key) for key in BODY_KEYS}
        html_fields = {key: field_format.format(f"{key}_html") for key in fields}
        self.text_body = fill_placeholders(self.content.text, fields, escape=False)
        self.html_body = fill_placeholders(self.content.html, html_fields, escape=False)

    def send(self, items: list[Outgoing], *, date: str) -> list[Outcome]:
        from anymail.message import AnymailMessage

        content = self.content
        message = AnymailMessage(
            subject=content.full_subject,
            body=self.text_body,
            from_email=content.from_email,
            to=[_display_address(item.recipient) for item in items],
            reply_to=[content.reply_to] if content.reply_to else None,
            # The ESP sets Date and Message-ID itself (and reports its id back).
            headers=content.static_headers(),
        )
        message.attach_alternative(self.html_body, "text/html")
        merge_data, merge_headers, merge_metadata = {}, {}, {}
        for item in items:
            values, address = item.values, item.recipient.email
            data = {key: values.get(key) or "" for key in BODY_KEYS}
            data.update({f"{key}_html": html_lib.escape(value) for key, value in list(data.items())})
            merge_data[address] = data
            merge_headers[address] = {"List-Unsubscribe": values["list_unsubscribe"].replace("\r\n", "")}
            merge_metadata[address] = {"delivery_id": str(item.recipient.delivery_id)}
        message.merge_data = merge_data
        message.merge_headers = merge_headers
        message.merge_metadata = merge_metadata
        message.metadata = {"campaign_id": str(content.campaign_id)}
        try:
            self.connection.send_messages([message])
        except Exception as error:
            return [_classify_exception(item.recipient.delivery_id, error) for item in items]
        recipients = message.anymail_status.recipients or {}
        outcomes = []
        for item in items:
            status = recipients.get(item.recipient.email)
            if status is None:
                outcomes.append(Outcome(item.recipient.delivery_id, UNKNOWN, error="unknown: no status from the ESP"))
            else:
                outcomes.append(_anymail_outcome(item.recipient.delivery_id, status))
        return outcomes


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
    if backend == "newsletter_site.outbox.OutboxBackend":
        return OutboxTransport(content=content, options=options)
    esp = _esp_name(backend)
    if esp in ESP_BATCH and not test:
        return AnymailBatchTransport(content=content, options=options, alias=alias, esp=esp)
    del backend_class  # imported only to fail early on a misconfigured backend path
    return DjangoBackendTransport(content=content, options=options, alias=alias)
