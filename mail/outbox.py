"""Development outbox: every message becomes one .eml file in a Maildir (var/outbox/new/).

Open the folder with a mail client (``mutt -f var/outbox``, Thunderbird's Maildir support),
or double-click one ``.eml`` file, to see exactly what a subscriber would receive.
"""

import os
import socket
import time
import uuid
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class OutboxBackend(BaseEmailBackend):
    """Writes messages to a Maildir. Option ``directory`` (default ``settings.OUTBOX_DIR``)."""

    def __init__(self, directory=None, **kwargs):
        super().__init__(**kwargs)
        if not directory:
            from django.conf import settings

            directory = settings.OUTBOX_DIR
        self.directory = Path(directory)

    def open(self):
        for sub in ("tmp", "new", "cur"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        return False

    def send_messages(self, email_messages):
        self.open()
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            mime = message.message()
            # RFC 5322 wants CRLF line ends on disk too; mail clients open either.
            self.write_bytes(mime.as_bytes(policy=mime.policy.clone(linesep="\r\n")))
            sent += 1
        return sent

    def write_bytes(self, data: bytes) -> Path:
        """Store an already-serialised RFC 5322 message and return its path.

        Written to tmp/ then renamed into new/ (the Maildir rule), so a reader never sees a
        half-written file, even with several workers writing at once.
        """
        self.open()
        name = f"{time.time_ns()}.{os.getpid()}.{uuid.uuid4().hex[:12]}.{socket.gethostname()}.eml"
        tmp_path = self.directory / "tmp" / name
        tmp_path.write_bytes(data)
        final_path = self.directory / "new" / name
        os.replace(tmp_path, final_path)
        return final_path
