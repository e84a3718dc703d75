"""A real SMTP server on 127.0.0.1 for tests, which records what it receives and can misbehave.

Use it as a context manager (or through a pytest fixture of your own) and point Django's mailer
at it::

    from campaigns.tests.fake_smtp import FakeSMTPServer

    @pytest.fixture
    def smtp_server(settings):
        with FakeSMTPServer() as server:
            settings.MAILERS = server.mailers_setting()
            yield server

    def test_something(smtp_server):
        smtp_server.fail_temporarily(at=3)              # the 3rd message gets "421", link closed
        smtp_server.reject_recipient("gone@example.com")  # "550" at RCPT TO, every time
        smtp_server.drop_connection(after=5)             # link cut after the 5th accepted message
        ...  # send
        assert smtp_server.recipients() == [...]
        message = smtp_server.messages[0].parsed()       # an email.message.EmailMessage

What it records: ``messages`` is the list of accepted messages (``ReceivedMessage``: envelope
sender, envelope recipients, raw bytes as received after dot-unstuffing), ``attempts`` counts
every DATA transaction it read (accepted or not), ``connections`` counts the connections it
accepted, ``in_flight`` holds messages whose data was read but whose connection was cut before
the reply (the client cannot know whether they were delivered).

Faults are counted across the whole server (not per connection) and each one applies once unless
said otherwise:

- ``fail_temporarily(at=N, times=1)``: the Nth message (counting every DATA attempt from 1) and the
  ``times - 1`` attempts after it are answered ``421 4.3.2`` at the end of DATA and the server
  closes the connection, as a real server shedding load does. smtplib raises ``SMTPDataError``.
- ``fail_temporarily_for(seconds)``: every message is answered ``421`` until ``seconds`` from now.
- ``reject_recipient(address, code=550)``: that recipient is refused at ``RCPT TO`` (permanently,
  every time). With a single recipient smtplib raises ``SMTPRecipientsRefused``.
- ``drop_connection(after=N)``: once N messages have been accepted in total, the connection that
  carried the Nth is closed right after its ``250`` reply; the client's next command raises
  ``SMTPServerDisconnected``. With ``in_flight=True`` the server instead reads the next message's
  data and closes without replying (recorded in ``in_flight``, not in ``messages``).

The server speaks enough ESMTP for smtplib and Django's SMTP backend: EHLO/HELO, MAIL, RCPT,
DATA, RSET, NOOP, QUIT; no TLS. It advertises PIPELINING (RFC 2920) and takes several
commands in one write (each is answered in order); ``FakeSMTPServer(pipelining=False)``, or
setting ``server.pipelining = False`` before the client connects, leaves the advertisement out.
``pipelined`` counts the MAIL commands that arrived together with the next command (a client
that waited for each reply never does that).

SMTPUTF8 (RFC 6531) is advertised unless ``FakeSMTPServer(smtputf8=False)`` (or
``server.smtputf8 = False`` before the client connects). As a real server does, it refuses a
non-ASCII address at RCPT TO with ``553 5.6.7`` unless the transaction's MAIL FROM carried the
``SMTPUTF8`` parameter, and refuses that parameter (``555``) when it did not advertise it. Each
received message records the MAIL FROM parameters (``mail_options``).

AUTH PLAIN is advertised when ``FakeSMTPServer(auth=(user, password))`` is given: the
right pair gets ``235``, anything else ``auth_failure`` (by default ``535 5.7.8``, what a relay answers
to a wrong password).
``reply_delay`` (seconds, 0 by default) slows the answer to every message's data.
``refuse_connections()`` stops accepting (the port is closed: connection refused) until
``accept_connections()``.
"""

import base64
import contextlib
import email
import email.policy
import socket
import socketserver
import threading
import time
from dataclasses import dataclass

DEFAULT_TEMPORARY_REPLY = "421 4.3.2 Service temporarily unavailable, try again later"
DEFAULT_PERMANENT_REPLY = "5.1.1 Mailbox unavailable"


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: envelope sender, envelope recipients, raw bytes (CRLF line ends)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()

    def parsed(self) -> email.message.EmailMessage:
        """The message parsed with the modern ``email`` policy (headers decoded, ``get_body()``)."""
        return email.message_from_bytes(self.data, policy=email.policy.default)


class _Dropped(Exception):
    """The server decided to cut this connection."""


class _LineReader:
    """Lines from a socket, with what the client already sent beyond them kept in ``pending``."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.pending = b""

    def readline(self, limit: int) -> bytes:
        while True:
            end = self.pending.find(b"\n", 0, limit)
            if end >= 0 or len(self.pending) >= limit:
                cut = end + 1 if end >= 0 else limit
                line, self.pending = self.pending[:cut], self.pending[cut:]
                return line
            chunk = self.sock.recv(65536)
            if not chunk:
                line, self.pending = self.pending, b""
                return line
            self.pending += chunk


class _Handler(socketserver.StreamRequestHandler):
    server: "_Server"

    def handle(self):
        fake = self.server.fake
        # Our own line reader instead of rfile: it can tell whether more commands came in the same
        # write (pipelining), which a buffered file hides.
        self.lines = _LineReader(self.connection)
        # Replies to pipelined commands go out as separate small writes: without TCP_NODELAY,
        # Nagle holds each one back until the client's delayed ACK (~40 ms per message). Real
        # servers batch those replies (RFC 2920); the fake answers line by line.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fake._connection_opened(self.connection)
        try:
            self._reply("220 fake-smtp.test ESMTP ready")
            self._session(fake)
        except (_Dropped, ConnectionError, OSError):
            pass
        finally:
            fake._connection_closed(self.connection)

    def _reply(self, line: str):
        self.wfile.write(line.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def _session(self, fake: "FakeSMTPServer"):
        mail_from = None
        mail_options: tuple[str, ...] = ()
        rcpt_tos: list[str] = []
        while True:
            raw = self.lines.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                extensions = ["fake-smtp.test"]
                extensions += ["PIPELINING"] if fake.pipelining else []
                extensions += ["8BITMIME"]
                extensions += ["SMTPUTF8"] if fake.smtputf8 else []
                extensions += ["AUTH PLAIN"] if fake.auth else []
                extensions += ["SIZE 52428800"]
                self._reply("\r\n".join(f"250-{line}" for line in extensions[:-1]) + f"\r\n250 {extensions[-1]}")
            elif verb == "HELO":
                self._reply("250 fake-smtp.test")
            elif verb == "AUTH":
                self._reply(fake._authenticate(arg, self.lines))
            elif verb == "MAIL" and arg.upper().startswith("FROM:"):
                if self.lines.pending:
                    fake._count_pipelined()
                options = tuple(arg[5:].partition(">")[2].upper().split())
                if "SMTPUTF8" in options and not fake.smtputf8:
                    self._reply("555 5.5.4 SMTPUTF8 not supported")
                    mail_from = None
                    continue
                mail_from, mail_options, rcpt_tos = _address(arg[5:]), options, []
                self._reply("250 2.1.0 OK")
            elif verb == "RCPT" and arg.upper().startswith("TO:"):
                if mail_from is None:
                    self._reply("503 5.5.1 Need MAIL first")
                    continue
                address = _address(arg[3:])
                if not address.isascii() and "SMTPUTF8" not in mail_options:
                    self._reply("553 5.6.7 Non-ASCII address needs SMTPUTF8")
                    continue
                refusal = fake._refusal_for(address)
                if refusal:
                    self._reply(refusal)
                else:
                    rcpt_tos.append(address)
                    self._reply("250 2.1.5 OK")
            elif verb == "DATA":
                if not rcpt_tos:
                    self._reply("503 5.5.1 Need RCPT first")
                    continue
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                reply, close = fake._receive(ReceivedMessage(mail_from or "", tuple(rcpt_tos), data, mail_options))
                mail_from, rcpt_tos = None, []
                if reply is None:
                    raise _Dropped
                self._reply(reply)
                if close:
                    raise _Dropped
            elif verb == "RSET":
                mail_from, rcpt_tos = None, []
                self._reply("250 2.0.0 OK")
            elif verb == "NOOP":
                self._reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self._reply("221 2.0.0 Bye")
                return
            else:
                self._reply("502 5.5.2 Command not implemented")

    def _read_data(self) -> bytes:
        lines = []
        while True:
            raw = self.lines.readline(1 << 20)
            if not raw:
                raise _Dropped
            if raw in (b".\r\n", b".\n"):
                return b"".join(lines)
            # RFC 5321 4.5.2: the client doubled every leading dot.
            lines.append(raw[1:] if raw.startswith(b".") else raw)


def _address(arg: str) -> str:
    """The address inside ``<...>`` of a MAIL FROM / RCPT TO argument, ESMTP parameters dropped."""
    arg = arg.strip()
    if arg.startswith("<"):
        return arg[1 : arg.find(">")]
    return arg.split(" ", 1)[0]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, fake):
        self.fake = fake
        super().__init__(address, _Handler)


class FakeSMTPServer:
    """A threaded SMTP server on ``host`` and an ephemeral port; see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        pipelining: bool = True,
        smtputf8: bool = True,
        auth: tuple[str, str] | None = None,
    ):
        self.pipelining = pipelining
        self.smtputf8 = smtputf8
        # Seconds the server waits before answering each message's data (a slow relay).
        self.reply_delay = 0.0
        self.auth = auth
        # The reply to a wrong password (Gmail answers "534 5.7.9 Application-specific password required").
        self.auth_failure = "535 5.7.8 Authentication credentials invalid"
        self._lock = threading.Lock()
        self._server = _Server((host, port), self)
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None
        self._open_sockets: set[socket.socket] = set()
        self.reset()

    # Lifecycle -----------------------------------------------------------------------------

    def start(self) -> "FakeSMTPServer":
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-smtp", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:  # shutdown() waits for serve_forever, which must be running
            self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sockets = list(self._open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread:
            self._thread.join(timeout=5)

    def refuse_connections(self):
        """Close the listening socket: clients get "connection refused" (a relay that is down)."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def accept_connections(self):
        """Listen again on the same port (the relay is back)."""
        self._server = _Server((self.host, self.port), self)
        self.start()

    def __enter__(self) -> "FakeSMTPServer":
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def reset(self):
        """Forget every recorded message and fault."""
        with self._lock:
            self.messages: list[ReceivedMessage] = []
            self.in_flight: list[ReceivedMessage] = []
            self.attempts = 0
            self.connections = 0
            self.logins = 0
            self.pipelined = 0
            self._temporary_at: set[int] = set()
            self._temporary_until = 0.0
            self._temporary_reply = DEFAULT_TEMPORARY_REPLY
            self._refused: dict[str, str] = {}
            self._drop_after: int | None = None
            self._drop_in_flight = False

    # Settings helpers ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """An ``EMAIL_URL`` for this server (``smtp://127.0.0.1:PORT``)."""
        return f"smtp://{self.host}:{self.port}"

    def mailers_setting(self, timeout: int = 5) -> dict:
        """A ``MAILERS`` setting whose default mailer is Django's SMTP backend pointed here."""
        options = {"host": self.host, "port": self.port, "use_tls": False, "use_ssl": False, "timeout": timeout}
        return {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options}}

    # Faults --------------------------------------------------------------------------------

    def fail_temporarily(self, *, at: int, times: int = 1, reply: str = DEFAULT_TEMPORARY_REPLY):
        """Answer the ``at``-th DATA attempt (1-based, server-wide) and the next ``times - 1`` with
        ``reply`` (a 421 by default) and close the connection."""
        with self._lock:
            self._temporary_at.update(range(at, at + times))
            self._temporary_reply = reply

    def fail_temporarily_for(self, seconds: float, *, reply: str = DEFAULT_TEMPORARY_REPLY):
        """Answer every message with ``reply`` (421) for the next ``seconds``, closing each time."""
        with self._lock:
            self._temporary_until = time.monotonic() + seconds
            self._temporary_reply = reply

    def reject_recipient(self, address: str, *, code: int = 550, message: str = DEFAULT_PERMANENT_REPLY):
        """Refuse ``address`` at RCPT TO with ``code`` (a permanent 550 by default), every time."""
        with self._lock:
            self._refused[address.lower()] = f"{code} {message}"

    def drop_connection(self, *, after: int, in_flight: bool = False):
        """Cut the connection once ``after`` messages have been accepted in total (once).

        in_flight=False: right after the 250 for the ``after``-th message.
        in_flight=True: after reading the data of the next message, without replying.
        """
        with self._lock:
            self._drop_after = after
            self._drop_in_flight = in_flight

    # Reading what arrived ------------------------------------------------------------------

    def recipients(self) -> list[str]:
        """Envelope recipients of every accepted message, in arrival order (duplicates kept)."""
        with self._lock:
            return [address for message in self.messages for address in message.rcpt_tos]

    # Called by the connection handlers -----------------------------------------------------

    def _connection_opened(self, sock):
        with self._lock:
            self.connections += 1
            self._open_sockets.add(sock)

    def _connection_closed(self, sock):
        with self._lock:
            self._open_sockets.discard(sock)

    def _authenticate(self, arg: str, lines) -> str:
        mechanism, _, initial = arg.partition(" ")
        if not self.auth or mechanism.upper() != "PLAIN":
            return "504 5.5.4 Unrecognized authentication type"
        try:
            _, user, password = base64.b64decode(initial.strip()).decode("utf-8").split("\0")
        except ValueError:
            return "501 5.5.2 Cannot decode response"
        with self._lock:
            self.logins += 1
        if (user, password) == self.auth:
            return "235 2.7.0 Authentication successful"
        return self.auth_failure

    def _count_pipelined(self):
        with self._lock:
            self.pipelined += 1

    def _refusal_for(self, address: str) -> str | None:
        with self._lock:
            return self._refused.get(address.lower())

    def _receive(self, message: ReceivedMessage) -> tuple[str | None, bool]:
        """Decide the fate of one message: (reply or None to cut without reply, close after)."""
        if self.reply_delay:
            time.sleep(self.reply_delay)  # a slow relay: outside the lock, connections stay parallel
        with self._lock:
            self.attempts += 1
            if self.attempts in self._temporary_at or time.monotonic() < self._temporary_until:
                return self._temporary_reply, True
            if self._drop_after is not None and self._drop_in_flight and len(self.messages) >= self._drop_after:
                self._drop_after = None
                self.in_flight.append(message)
                return None, True
            self.messages.append(message)
            close = False
            if self._drop_after is not None and not self._drop_in_flight and len(self.messages) >= self._drop_after:
                self._drop_after = None
                close = True
            return "250 2.0.0 OK queued", close
