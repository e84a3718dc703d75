"""Optional DKIM signing in the app, for relays that do not sign (dkimpy).

Most ESPs and a well-configured Postfix (OpenDKIM, rspamd) sign for you; a hosting relay or a
personal mailbox often does not, and without a DKIM signature aligned with From the big mailbox
providers neither deliver bulk mail reliably nor offer one-click unsubscribe. With ``DKIM_DOMAIN``,
``DKIM_SELECTOR`` and a private key (``DKIM_PRIVATE_KEY_FILE`` or ``DKIM_PRIVATE_KEY``) every
message built by ``CompiledMessage`` (SMTP and the outbox) gets a ``DKIM-Signature`` header.

The signed headers include ``List-Unsubscribe`` and ``List-Unsubscribe-Post``, as RFC 8058
section 4 requires for one-click unsubscribe to be offered, and each header name is listed once
more than it occurs ("over-signing", RFC 6376 section 8.15), so a header added on the way breaks
the signature instead of changing what the reader sees. Canonicalisation relaxed/relaxed survives
relays that re-fold headers or trim trailing spaces.

Cost: one RSA signature per message in pure Python (dkimpy), a few milliseconds for a 2048-bit
key: measured in docs/sending-without-an-esp.md. Per-recipient bodies make one signature per
message unavoidable.
"""

import dkim
from django.conf import settings

# What the signature covers: every header that a reader sees or that unsubscribes.
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"MIME-Version",
    b"Content-Type",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"List-Id",
    b"Feedback-ID",
)


class Signer:
    def __init__(self, *, domain: str, selector: str, key: bytes):
        self.domain, self.selector, self.key = domain.encode(), selector.encode(), key
        # Over-signing: each name once per occurrence plus once for an occurrence that must not
        # appear later (dkimpy signs a listed header that is absent as "no such header").
        self.headers = [name for header in SIGNED_HEADERS for name in (header, header)]

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature header in front."""
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=self.headers,
        )
        return signature + message


def signer() -> Signer | None:
    """The configured Signer, or None (``BROADSHEET["DKIM"]``, parsed by newsletter_site.config)."""
    config = settings.BROADSHEET.get("DKIM")
    if not config:
        return None
    return Signer(domain=config["domain"], selector=config["selector"], key=config["key"])
