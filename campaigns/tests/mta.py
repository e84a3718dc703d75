"""Real mail servers for integration tests: a private Postfix (and Dovecot) on loopback.

Each server gets its own configuration directory, queue and mail store under a temporary
directory, listens on 127.0.0.1 on a port of the 25170-25199 range, and is stopped when the
context ends. Nothing of the machine's own mail setup (/etc/postfix/main.cf, /etc/dovecot) is read
or changed. Tests using these are marked ``mta`` (run by ``make test-services``; ``.ci/run``
installs the Debian packages) and skip with the reason when a binary is missing or the tests do
not run as root (Postfix's master and Dovecot start as root and drop privileges themselves).
"""

import contextlib
import mailbox
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

# Mail for these domains is delivered into Maildirs under <root>/mail/<name>/.
MAIL_DOMAIN = "example.test"
BOUNCE_DOMAIN = "bounce.example.test"
# The virtual delivery agent writes as this (unprivileged) uid/gid: "nobody".
MAIL_UID = 65534


def require(binary: str, package: str) -> None:
    """Skip the calling test with a reason when ``binary`` cannot be used."""
    if not Path(binary).exists():
        pytest.skip(f"needs {binary} (apt-get install {package}; .ci/run installs it)")
    if os.geteuid() != 0:
        pytest.skip(f"{binary} starts as root and drops privileges; run the mta tests as root (as CI does)")
    if not Path(OPENSSL).exists():
        pytest.skip("needs the openssl command for the test certificate (apt-get install openssl)")


def wait_for(predicate, *, timeout: float = 20.0, what: str = "the server"):
    """Poll an external process's effect (a port, a delivered file) until it shows or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 (the test trusts it as its own CA)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    subprocess.run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "2",
            *subject,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """A Postfix listening on 127.0.0.1:``port`` with STARTTLS, delivering ``mailboxes`` to Maildirs.

    Every address in ``example.test`` is accepted at RCPT (``smtpd_reject_unlisted_recipient =
    no``), so an unknown user is bounced by Postfix itself after the fact: a real DSN, sent to the
    message's envelope sender. ``bounces@bounce.example.test`` (any ``+extension``, Postfix's
    ``recipient_delimiter``) is the bounce mailbox.
    """

    def __init__(self, *, port: int, mailboxes: list[str]):
        self.port = port
        self.mailboxes = mailboxes

    def maildir(self, local: str) -> Path:
        return self.mail / local

    def __enter__(self):
        require(POSTFIX, "postfix")
        if _port_open(self.port):
            pytest.skip(f"port {self.port} is taken: another Postfix test run is using it")
        # Not pytest's tmp_path: its parents are private to root, and Postfix's daemons run as
        # the postfix user and must reach their queue and data directories.
        self.root = Path(tempfile.mkdtemp(prefix="broadsheet-postfix-"))
        self.conf, self.queue, self.data, self.mail = (self.root / name for name in ("conf", "queue", "data", "mail"))
        self.log = self.root / "postfix.log"
        for directory in (self.conf, self.queue, self.data, self.mail):
            directory.mkdir(parents=True)
        self.root.chmod(0o755)
        shutil.chown(self.data, user="postfix")
        shutil.chown(self.mail, user=MAIL_UID, group=MAIL_UID)
        self.cert, key = make_certificate(self.conf)
        maps = [f"{address} {address.split('@')[0]}/" for address in self.mailboxes]
        maps.append(f"bounces@{BOUNCE_DOMAIN} bounces/")
        (self.conf / "vmailbox").write_text("\n".join(maps) + "\n", encoding="utf-8")
        (self.conf / "master.cf").write_text(_MASTER_CF.format(port=self.port))
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "mx.example.test",
            "mydomain": MAIL_DOMAIN,
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.root,
            "recipient_delimiter": "+",
            "virtual_mailbox_domains": f"{MAIL_DOMAIN}, {BOUNCE_DOMAIN}",
            "virtual_mailbox_base": self.mail,
            "virtual_mailbox_maps": f"texthash:{self.conf / 'vmailbox'}",
            "virtual_uid_maps": f"static:{MAIL_UID}",
            "virtual_gid_maps": f"static:{MAIL_UID}",
            "virtual_minimum_uid": "100",
            "smtpd_reject_unlisted_recipient": "no",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": self.cert,
            "smtpd_tls_key_file": key,
            "smtpd_tls_received_header": "yes",
            "smtputf8_enable": "yes",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
        }
        (self.conf / "main.cf").write_text("".join(f"{name} = {value}\n" for name, value in settings.items()))
        started = subprocess.run([POSTFIX, "-c", str(self.conf), "start"], capture_output=True, text=True)
        if started.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            shutil.rmtree(self.root, ignore_errors=True)
            raise RuntimeError(f"postfix did not start: {started.stderr}\n{log}")
        wait_for(lambda: _port_open(self.port), what=f"postfix on port {self.port}")
        return self

    def __exit__(self, *exc):
        subprocess.run([POSTFIX, "-c", str(self.conf), "stop"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def delivered(self, local: str, count: int = 1, *, timeout: float = 30.0) -> list[Path]:
        """Wait until ``count`` messages sit in the Maildir of ``local``; their paths."""

        def files():
            found = sorted((self.maildir(local) / "new").glob("*")) if (self.maildir(local) / "new").is_dir() else []
            return found if len(found) >= count else None

        return wait_for(files, timeout=timeout, what=f"{count} message(s) for {local} (log: {self.log})")


_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
mail_location = maildir:{root}/mail/%u
first_valid_uid = 100
pop3_uidl_format = %08Xu%08Xv
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"""


class Dovecot:
    """Dovecot serving one user's Maildir over IMAP (+STARTTLS), IMAPS, POP3 (+STLS) and POP3S."""

    def __init__(self, *, user: str, password: str, ports: dict[str, int]):
        self.user, self.password, self.ports = user, password, ports
        self.process = None

    def __enter__(self):
        require(DOVECOT, "dovecot-imapd dovecot-pop3d")
        for port in self.ports.values():
            if _port_open(port):
                pytest.skip(f"port {port} is taken: another Dovecot test run is using it")
        self.root = Path(tempfile.mkdtemp(prefix="broadsheet-dovecot-"))
        self.root.chmod(0o755)
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir()
        self.cert, key = make_certificate(self.root)
        home = self.root / "mail" / self.user
        (self.root / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}:{MAIL_UID}:{MAIL_UID}::{home}\n")
        config = self.root / "dovecot.conf"
        config.write_text(_DOVECOT_CONF.format(root=self.root, cert=self.cert, key=key, **self.ports))
        self.maildir_path = home
        shutil.chown(self.root / "mail", user=MAIL_UID, group=MAIL_UID)
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: all(_port_open(port) for port in self.ports.values()), what="dovecot's listeners")
        except AssertionError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def deliver(self, *messages: bytes) -> None:
        """Put messages in the user's inbox, as its MTA would (owned by the mail user)."""
        box = mailbox.Maildir(self.maildir_path, create=True)
        for raw in messages:
            box.add(raw)
        for path in [self.maildir_path, *self.maildir_path.rglob("*")]:
            shutil.chown(path, user=MAIL_UID, group=MAIL_UID)

    def inbox(self) -> list[Path]:
        return sorted((self.maildir_path / "new").glob("*")) + sorted((self.maildir_path / "cur").glob("*"))

    def config(self, protocol: str, *, password: str | None = None, **extra) -> dict:
        """A BOUNCE_MAILBOX dict for this server: protocol "pop3s", "pop3+tls", "imaps" or "imap+tls"."""
        scheme, _, tls = protocol.partition("+")
        return {
            "protocol": scheme.rstrip("s"),
            "host": "localhost",
            "port": self.ports[scheme],
            "username": self.user,
            "password": self.password if password is None else password,
            "ssl": scheme.endswith("s"),
            "starttls": bool(tls),
            "folder": "INBOX",
            "kept": "Kept",
            "timeout": 10,
            **extra,
        }
