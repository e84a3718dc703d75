"""Build a campaign's message ONCE, then personalise it per recipient by byte substitution.

The MIME skeleton (headers, multipart/alternative, part headers) comes from Python's email
package, serialised once. Each body part is quoted-printable encoded once, in segments split at
the placeholders and merge tags (mail.mergetags compiles each part once into literal chunks and
slots); a recipient's message is the join of those segments with that recipient's values
(escaped as their slot says, QP-encoded, set off by soft line breaks so no line grows past 76
characters). No MIME tree, template or encoder runs over the whole body per recipient. A subject
with merge tags is the one header written per recipient besides To, Date, Message-ID and
List-Unsubscribe (``subject_header``: control characters in values become spaces).
"""

import binascii
import email.policy
import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from functools import cached_property
from secrets import token_hex
from urllib.parse import quote, urlsplit

from django.conf import settings

from campaigns.click_tracking import delivery_token
from campaigns.sending.dkim_signing import signer as dkim_signer
from mail import mergetags
from mail.addresses import HeaderValueError, check_header_text, format_address, format_text, reformat_address
from mail.rendering import PLACEHOLDERS
from subscribers.links import RecipientLinks

logger = logging.getLogger(__name__)

_TEXT_MARKER = "BROADSHEETTEXTBODYMARKER"
_HTML_MARKER = "BROADSHEETHTMLBODYMARKER"
_SOFT_BREAK = b"=\r\n"


@dataclass(frozen=True)
class Recipient:
    """What the engine knows about one recipient: a Delivery row, without the ORM."""

    delivery_id: int
    email: str
    name: str
    uid: object  # uuid.UUID
    # The subscriber's attributes, read only for a campaign whose merge tags ask for them
    # (MessageContent.wants_attributes); None otherwise.
    attributes: dict | None = None


@dataclass(frozen=True)
class MessageContent:
    """Everything identical for every recipient of a campaign."""

    campaign_id: int
    subject: str
    html: str
    text: str
    from_email: str
    reply_to: str
    list_id: str
    feedback_id: str
    list_ids: tuple[int, ...]
    domain: str
    message_id_prefix: str
    unsubscribe_mailbox: str = ""
    subject_prefix: str = ""

    @cached_property
    def tracks_clicks(self) -> bool:
        """True when own click/open tracking put the delivery placeholder in the HTML.

        Cached: recipient_values() asks for every message, and the answer is a search of the
        whole HTML (cached_property writes the instance __dict__, which a frozen dataclass allows).
        """
        return PLACEHOLDERS["delivery"] in self.html

    @cached_property
    def compiled_html(self) -> list:
        """The HTML part as literal chunks and slots (mail.mergetags), compiled once."""
        return mergetags.compile_template(self.html, html=True)

    @cached_property
    def compiled_text(self) -> list:
        return mergetags.compile_template(self.text, html=False)

    @cached_property
    def compiled_subject(self) -> list:
        """The subject (with its prefix) as chunks and slots; one chunk when nothing in it is personal."""
        return mergetags.compile_header(self.full_subject)

    @cached_property
    def subscriber_keys(self) -> frozenset:
        """The merge-tag values beyond name and email this campaign asks for (first_name, attributes.*)."""
        wanted = mergetags.keys(self.compiled_html) | mergetags.keys(self.compiled_text)
        wanted |= mergetags.keys(self.compiled_subject)
        return frozenset(key for key in wanted if key == "first_name" or key.startswith(mergetags.ATTRIBUTE_PREFIX))

    @property
    def wants_attributes(self) -> bool:
        """Whether recipients' attributes must be read (an attribute or first_name tag is used)."""
        return bool(self.subscriber_keys)

    def subject_for(self, values: dict) -> str:
        """One recipient's subject (the prefix included): merge tags filled, header-safe. The one
        place a per-recipient subject is made (a subject variant of an A/B test goes through it)."""
        return mergetags.fill(self.compiled_subject, values)

    @cached_property
    def message_id_domain(self) -> str:
        """The sender's domain: Message-IDs then belong to the domain the mail says it is from."""
        return parseaddr(self.from_email)[1].rpartition("@")[2] or self.domain

    @property
    def full_subject(self) -> str:
        return self.subject_prefix + self.subject

    def static_headers(self) -> dict[str, str]:
        """Headers without per-recipient values (besides From/To/Subject/Reply-To/Date)."""
        return {
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": self.list_id,
            "Precedence": "bulk",
            "Auto-Submitted": "auto-generated",
            "Feedback-ID": self.feedback_id,
        }


def site_domain() -> str:
    return urlsplit(settings.BASE_URL).hostname or "localhost"


def list_id_header(mailing_list, domain: str) -> str:
    """RFC 2919 ``"Name" <slug.domain>`` (at most 255 octets); ``HeaderValueError`` for a list name
    with control characters."""
    name = check_header_text(mailing_list.name, "list name").replace("\\", "").replace('"', "")
    return f'"{name}" <{mailing_list.slug}.{domain}>'[:255]


def feedback_id_header(campaign_id: int, list_slug: str) -> str:
    """Gmail's Feedback-ID ``campaign:list:sender``: no per-recipient values, a stable sender id."""
    sender = settings.BROADSHEET["FEEDBACK_SENDER_ID"] or "broadsheet"
    return f"c{campaign_id}:{list_slug}:{sender}"


def build_content(campaign, *, subject_prefix: str = "") -> MessageContent:
    """The shared part of every message of ``campaign`` (its stored render, lists and sender).

    Every campaign-wide header value is checked here (``HeaderValueError``): the start workflow
    builds it once before anything is queued, so a campaign with a bad subject, sender or list name
    is refused at the start rather than failing in its batches.
    """
    lists = sorted(campaign.lists.all(), key=lambda item: item.pk)
    domain = site_domain()
    first = lists[0] if lists else None
    stamp = (campaign.started_at or campaign.created_at).strftime("%Y%m%d%H%M%S")
    return MessageContent(
        campaign_id=campaign.pk,
        subject=check_header_text(campaign.subject, "subject"),
        html=campaign.html,
        text=campaign.text,
        from_email=reformat_address(campaign.from_email),
        reply_to=format_address(campaign.reply_to) if campaign.reply_to else "",
        list_id=list_id_header(first, domain) if first else f"<campaign-{campaign.pk}.{domain}>",
        feedback_id=feedback_id_header(campaign.pk, first.slug if first else "none"),
        list_ids=tuple(item.pk for item in lists),
        domain=domain,
        message_id_prefix=f"{stamp}.c{campaign.pk}",
        unsubscribe_mailbox=settings.BROADSHEET["UNSUBSCRIBE_MAILBOX"],
        subject_prefix=subject_prefix,
    )


def recipient_values(content: MessageContent, links: RecipientLinks, recipient: Recipient) -> dict[str, str]:
    """Every per-recipient value: body placeholders plus To, Message-ID and List-Unsubscribe."""
    urls = links.urls(recipient.uid)
    domain = content.message_id_domain
    list_unsubscribe = f"<{urls['one_click_url']}>"
    if content.unsubscribe_mailbox:
        subject = quote(f"unsubscribe {urls['token']}")
        list_unsubscribe += f",\r\n <mailto:{content.unsubscribe_mailbox}?subject={subject}>"
    values = {
        "name": recipient.name,
        "email": recipient.email,
        "unsubscribe_url": urls["unsubscribe_url"],
        "preferences_url": urls["preferences_url"],
        "one_click_url": urls["one_click_url"],
        "to": to_header(recipient),
        # A random part (64 bits) that nobody can guess from the campaign and delivery ids: an
        # event that names a Message-ID must come from someone who saw the message.
        "message_id": f"<{content.message_id_prefix}.{token_hex(8)}.d{recipient.delivery_id}@{domain}>",
        "list_unsubscribe": list_unsubscribe,
    }
    if content.tracks_clicks:
        values["delivery"] = delivery_token(recipient.delivery_id)
    if content.subscriber_keys:
        values.update(
            mergetags.subscriber_values(recipient.name, recipient.email, recipient.attributes, content.subscriber_keys)
        )
    return values


def subject_header(subject: str) -> bytes:
    """``Subject: ...`` for one recipient's raw message: ASCII as it is, else RFC 2047 encoded-words,
    folded (mail.addresses.format_text refuses control characters; mergetags already replaced them)."""
    return f"Subject: {format_text(subject, 'Subject')}\r\n".encode("ascii")


def to_header(recipient: Recipient) -> str:
    """The recipient's To value, ASCII (RFC 2047 name, IDNA domain) for the raw message bytes.

    A name that cannot be a header (a line break typed into a form before forms refused them) is
    dropped and the message goes to the bare address; an address that cannot be written raises
    ``HeaderValueError`` (the engine fails that one delivery).
    """
    try:
        return format_address(recipient.email, recipient.name, encode=True)
    except HeaderValueError:
        if not recipient.name:
            raise
        logger.warning("Delivery %s: display name refused in To, sent to the bare address", recipient.delivery_id)
        return format_address(recipient.email, encode=True)


# A value QP leaves as it is: printable ASCII but "=", spaces only between words, short of a line
# (and not a lone ".", which b2a_qp encodes).
_QP_PLAIN = re.compile(r"[!-<>-~]+(?: [!-<>-~]+)*")
# Slot outputs remembered per compiled message (values that repeat across recipients: a city, a
# fallback, common first names); past this many distinct ones, new ones are not remembered.
MEMO_LIMIT = 4096


def _qp(data: str) -> bytes:
    """Quoted-printable with CRLF line ends; lines at most 76 characters."""
    if len(data) < 76 and data != "." and _QP_PLAIN.fullmatch(data):
        return data.encode("ascii")
    encoded = binascii.b2a_qp(data.replace("\r\n", "\n").encode("utf-8"), quotetabs=False, istext=True)
    return encoded.replace(b"\n", b"\r\n")


class CompiledMessage:
    """A campaign's message serialised once; render() makes one recipient's RFC 5322 bytes."""

    def __init__(self, content: MessageContent):
        self.content = content
        # DKIM signing in the app when configured (for relays that do not sign).
        self.signer = dkim_signer()
        skeleton = EmailMessage(policy=email.policy.SMTP)
        # A subject with merge tags is written per recipient (render()); else once, here.
        self.personal_subject = len(content.compiled_subject) > 1
        if not self.personal_subject:
            skeleton["Subject"] = check_header_text(content.full_subject, "subject")
        # From and Reply-To are written by the address builder, as To is: one encoding and one
        # folding for every address header (the email package would fold them its own way).
        addresses = f"From: {reformat_address(content.from_email, encode=True)}\r\n"
        if content.reply_to:
            addresses += f"Reply-To: {reformat_address(content.reply_to, encode=True)}\r\n"
        for name, value in content.static_headers().items():
            skeleton[name] = check_header_text(value, name)
        skeleton.set_content(_TEXT_MARKER, cte="quoted-printable")
        skeleton.add_alternative(_HTML_MARKER, subtype="html", cte="quoted-printable")
        del skeleton.get_payload()[1]["MIME-Version"]  # the email package repeats it on the part
        raw = bytes(skeleton)
        head, after_text = raw.split(_TEXT_MARKER.encode() + b"\r\n", 1)
        middle, tail = after_text.split(_HTML_MARKER.encode() + b"\r\n", 1)
        # [bytes, Slot, bytes, ...]: the static pieces encoded once.
        self.pieces: list = [addresses.encode("ascii") + head]
        self._add_part(content.compiled_text)
        self.pieces.append(b"\r\n" + middle)
        self._add_part(content.compiled_html)
        self.pieces.append(b"\r\n" + tail)
        self._memo: dict = {}  # (slot, value) -> encoded bytes, across recipients

    def _add_part(self, compiled: list) -> None:
        for index, part in enumerate(compiled):
            self.pieces.append(_qp(part) if index % 2 == 0 else part)

    def render(self, values: dict[str, str], *, date: str | None = None) -> bytes:
        """One recipient's message: ``values`` from recipient_values(), ``date`` an RFC 5322 date."""
        head = (
            f"Date: {date or formatdate(usegmt=True)}\r\n"
            f"Message-ID: {values['message_id']}\r\n"
            f"To: {values['to']}\r\n"
            f"List-Unsubscribe: {values['list_unsubscribe']}\r\n"
        ).encode()
        out = [head]
        if self.personal_subject:
            out.append(subject_header(self.content.subject_for(values)))
        memo = self._memo
        for piece in self.pieces:
            if piece.__class__ is bytes:
                out.append(piece)
                continue
            value = values.get(piece.key) or piece.fallback
            if not value:
                continue
            encoded = memo.get((piece, value))
            if encoded is None:
                encoded = _SOFT_BREAK + _qp(piece.write(value)) + _SOFT_BREAK
                if len(memo) < MEMO_LIMIT:
                    memo[piece, value] = encoded
            out.append(encoded)
        message = b"".join(out)
        return self.signer.sign(message) if self.signer is not None else message
