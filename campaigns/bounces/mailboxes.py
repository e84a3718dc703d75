"""The bounce mailbox: POP3(S), IMAP(S) or a local Maildir behind one small interface.

A reader is a context manager. ``messages()`` yields ``(key, raw bytes)``; after the caller has
COMMITTED what a message meant, it calls ``done(key)`` (the message is deleted) or ``keep(key)``
(set aside for a person). Nothing is removed before that, and on POP3 and IMAP even a ``done``
takes effect only when the session ends normally (POP3 QUIT, IMAP EXPUNGE): a crash in between
leaves the messages in place, to be read again, which changes nothing (processing is idempotent).

Kept aside: IMAP copies the message to the ``kept`` folder (created when missing) and deletes it
from the inbox; a Maildir moves it to the Maildir++ subfolder ``.Kept``; POP3 has no folders, so
the message stays on the server (read again each time, and kept again, until a person removes it).

The settings dict is ``newsletter_site.config.mailbox_from_url``'s.
"""

import contextlib
import imaplib
import mailbox
import poplib
import re
import ssl
from collections.abc import Iterator
from pathlib import Path


class MailboxError(Exception):
    """The mailbox cannot be read (connection, TLS, login, missing folder): said in plain words."""


class AuthenticationFailed(MailboxError):
    """The server refused the user name or password."""


def describe(config: dict) -> str:
    """``imaps://bounces@mail.example.com/INBOX``: the mailbox without its password."""
    if config["protocol"] == "maildir":
        return f"maildir://{config['path']}"
    scheme = config["protocol"] + ("s" if config["ssl"] else "")
    folder = f"/{config['folder']}" if config["protocol"] == "imap" else ""
    return f"{scheme}://{config['username']}@{config['host']}:{config['port']}{folder}"


def check_mailbox(
    config: dict, *, ssl_context: ssl.SSLContext | None = None, timeout: float | None = None
) -> tuple[bool, list[str]]:
    """Connect and log in to the mailbox ``config`` as a read would: (ok, facts or the problem in plain words).

    ``timeout`` (seconds) shortens the configured one (the admin's Test connection).
    """
    if timeout and config.get("timeout"):
        config = {**config, "timeout": min(config["timeout"], timeout)}
    try:
        with open_mailbox(config, ssl_context=ssl_context) as box:
            count = box.count()
            return True, [
                f"offers: {', '.join(box.capabilities) or 'nothing listed'}",
                f"{count} message{'' if count == 1 else 's'} waiting",
            ]
    except AuthenticationFailed as error:
        return False, [f"wrong user name or password: {error}"]
    except MailboxError as error:
        return False, [str(error)]


def open_mailbox(config: dict, *, ssl_context: ssl.SSLContext | None = None):
    """The reader for ``config``; ``ssl_context`` overrides the default verification (tests)."""
    readers = {"pop3": POP3Mailbox, "imap": IMAPMailbox, "maildir": MaildirMailbox}
    return readers[config["protocol"]](config, ssl_context=ssl_context)


class BaseMailbox:
    def __init__(self, config: dict, *, ssl_context: ssl.SSLContext | None = None):
        self.config = config
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.capabilities: list[str] = []

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(commit=exc_type is None)

    def open(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self, *, commit: bool = True) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def messages(self) -> Iterator[tuple[str, bytes]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def done(self, key: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def keep(self, key: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def count(self) -> int:  # pragma: no cover - abstract
        """Messages waiting in the mailbox (check_mailers)."""
        raise NotImplementedError


class POP3Mailbox(BaseMailbox):
    connection: poplib.POP3 | None = None

    def open(self) -> None:
        config = self.config
        where = f"{config['host']}:{config['port']}"
        try:
            if config["ssl"]:
                connection = poplib.POP3_SSL(
                    config["host"], config["port"], timeout=config["timeout"], context=self.ssl_context
                )
            else:
                connection = poplib.POP3(config["host"], config["port"], timeout=config["timeout"])
                if config["starttls"]:
                    connection.stls(context=self.ssl_context)
        except ssl.SSLError as error:
            raise MailboxError(f"POP3 {where}: TLS failed: {error}") from error
        except (OSError, poplib.error_proto) as error:
            raise MailboxError(f"POP3 {where}: cannot connect: {error}") from error
        try:
            self.capabilities = sorted(connection.capa())
        except poplib.error_proto:
            self.capabilities = []
        try:
            connection.user(config["username"])
            connection.pass_(config["password"])
        except poplib.error_proto as error:
            connection.close()
            raise AuthenticationFailed(
                f"POP3 {where}: the server refused the user name or password for {config['username']!r} "
                f"({_text(error)})"
            ) from error
        self.connection = connection

    def close(self, *, commit: bool = True) -> None:
        if self.connection is None:
            return
        try:
            if commit:
                self.connection.quit()  # QUIT is what makes DELE take effect (RFC 1939 section 6)
            else:
                self.connection.rset()
                self.connection.close()
        except (OSError, poplib.error_proto):
            self.connection.close()
        self.connection = None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        _response, listing, _octets = self.connection.list()
        for line in listing:
            number = line.split()[0].decode()
            _response, lines, _octets = self.connection.retr(number)
            yield number, b"\r\n".join(lines) + b"\r\n"

    def done(self, key: str) -> None:
        self.connection.dele(key)

    def keep(self, key: str) -> None:
        """POP3 has no folders: the message stays on the server."""

    def count(self) -> int:
        return self.connection.stat()[0]


class IMAPMailbox(BaseMailbox):
    connection: imaplib.IMAP4 | None = None

    def open(self) -> None:
        config = self.config
        where = f"{config['host']}:{config['port']}"
        try:
            if config["ssl"]:
                connection = imaplib.IMAP4_SSL(
                    config["host"], config["port"], ssl_context=self.ssl_context, timeout=config["timeout"]
                )
            else:
                connection = imaplib.IMAP4(config["host"], config["port"], timeout=config["timeout"])
                if config["starttls"]:
                    connection.starttls(ssl_context=self.ssl_context)
        except ssl.SSLError as error:
            raise MailboxError(f"IMAP {where}: TLS failed: {error}") from error
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxError(f"IMAP {where}: cannot connect: {error}") from error
        try:
            connection.login(config["username"], config["password"])
        except imaplib.IMAP4.error as error:
            _logout(connection)
            raise AuthenticationFailed(
                f"IMAP {where}: the server refused the user name or password for {config['username']!r} "
                f"({_text(error)})"
            ) from error
        self.capabilities = sorted(str(item) for item in connection.capabilities)
        status, data = connection.select(_quote(config["folder"]))
        if status != "OK":
            _logout(connection)
            raise MailboxError(f"IMAP {where}: cannot open folder {config['folder']!r}: {_text(data)}")
        self.connection = connection
        self.kept_ready = False
        self.exists = int((data[0] or b"0").decode() or 0)

    def count(self) -> int:
        return self.exists

    def close(self, *, commit: bool = True) -> None:
        if self.connection is None:
            return
        try:
            if commit:
                self.connection.expunge()
            self.connection.close()
        except (OSError, imaplib.IMAP4.error):
            pass
        _logout(self.connection)
        self.connection = None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        status, data = self.connection.uid("SEARCH", None, "ALL")
        if status != "OK":
            raise MailboxError(f"IMAP: SEARCH failed: {_text(data)}")
        for uid in (data[0] or b"").split():
            # BODY.PEEK[] leaves the \Seen flag alone: a person looking later sees it as it came.
            status, fetched = self.connection.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched or [] if isinstance(item, tuple)), None)
            if status == "OK" and raw is not None:
                yield uid.decode(), raw

    def done(self, key: str) -> None:
        self._check(self.connection.uid("STORE", key, "+FLAGS.SILENT", r"(\Deleted)"), "mark as deleted")

    def keep(self, key: str) -> None:
        folder = _quote(self.config["kept"])
        if not self.kept_ready:
            self.connection.create(folder)  # "already exists" is fine
            self.kept_ready = True
        self._check(self.connection.uid("COPY", key, folder), f"copy to {self.config['kept']!r}")
        self.done(key)

    @staticmethod
    def _check(result, what: str) -> None:
        status, data = result
        if status != "OK":
            raise MailboxError(f"IMAP: cannot {what}: {_text(data)}")


class MaildirMailbox(BaseMailbox):
    box: mailbox.Maildir | None = None

    def open(self) -> None:
        path = Path(self.config["path"])
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise MailboxError(f"Maildir {path}: not a Maildir (no new/ and cur/ directories)")
        self.box = mailbox.Maildir(path, factory=None, create=False)
        self.capabilities = ["maildir"]

    def close(self, *, commit: bool = True) -> None:
        self.box = None

    def count(self) -> int:
        return len(self.box)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self.box.keys()):
            try:
                yield key, self.box.get_bytes(key)
            except KeyError:
                continue  # removed by another reader meanwhile

    def done(self, key: str) -> None:
        # Already gone: another reader processed it too, which changes nothing.
        with contextlib.suppress(KeyError):
            self.box.remove(key)

    def keep(self, key: str) -> None:
        name = self.config["kept"]
        folder = self.box.get_folder(name) if name in self.box.list_folders() else self.box.add_folder(name)
        folder.add(self.box.get_message(key))
        self.done(key)


def _logout(connection) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        connection.logout()


def _quote(folder: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._/-]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value) -> str:
    if isinstance(value, Exception):
        value = value.args[0] if value.args else str(value)
    if isinstance(value, list):
        value = b" ".join(item for item in value if isinstance(item, bytes))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value)
