"""Machine opens and clicks: which tracking events no person made, decided once, here.

``campaigns.tracking`` asks ``machine_reason()`` for every open and click as it records it, and
stores the answer on the ``DeliveryEvent`` (``machine_reason``, "" for a person). Machine events
are kept (they prove the message arrived) but counted apart: ``Delivery.machine_opens`` /
``machine_clicks`` and the campaign's counters of the same names. The human figures
(``unique_opens``, ``unique_clicks``, ``first_opened_at``...) and everything built on them (the
report, resend to non-openers, the A/B winner) count people only.

The rules, in the order they are asked (the first that matches names the reason):

1. The ESP says so (``ESP_FLAG``). SendGrid marks opens made by Apple Mail Privacy Protection
   with ``sg_machine_open: true`` (Twilio SendGrid Event Webhook reference, "open" event:
   https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event). Mailgun names the
   bot in ``client-info.bot``: "apple" (MPP), "gmail" or "generic" (a firewall or virus scanner)
   (https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/open-click-bot-detect).
   Mailgun's "gmail" is NOT counted as a machine: Gmail's image proxy fetches images when the
   reader opens the message (Google, "Images now showing", Gmail blog, December 2013), so it
   is the one proxied open that does mean a person.
2. Apple Mail Privacy Protection (``APPLE_PROXY``), opens only. MPP "loads remote content
   privately in the background, even when you don't open the message" (Apple, Mail User Guide,
   "Use Mail Privacy Protection": https://support.apple.com/guide/mail/mlhl03be2866/mac) through
   Apple's proxies, which send the bare user agent "Mozilla/5.0" (Mailgun's bot detection notes
   above) from Apple's own network 17.0.0.0/8 (ARIN NET-17-0-0-0-1, registered to Apple Inc.).
   Either sign is enough: no real mail client sends that bare user agent.
3. A known scanner's user agent (``SCANNER_AGENT``): link checkers of mail security gateways and
   plain HTTP libraries (``SCANNER_AGENTS``).
4. A HEAD request (``HEAD_REQUEST``), our own endpoints only: a mail client or browser follows a
   link with GET; security scanners check links with HEAD first.
5. Too fast (``TOO_FAST``): an open within ``MACHINE_OPEN_SECONDS`` or a click within
   ``MACHINE_CLICK_SECONDS`` of the moment the message was handed to the relay. Gateways scan a
   message as it arrives, before the reader can have seen it; a person needs longer than that
   to get, open and read a message and choose a link.
6. Every link at once (``EVERY_LINK``), clicks only: ``BURST_LINKS`` or more different links of
   one delivery clicked within ``BURST_SECONDS`` of each other. A person follows one link and
   reads; a scanner follows them all. The earlier clicks of the burst, counted as a person's
   when they arrived, are moved to the machine figures then (``campaigns.tracking``).

Events whose time is before the send (clocks disagree, a replayed webhook) are not judged by
time. Nothing here reads the database; ``campaigns.tracking`` does the lookups.
"""

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.translation import gettext_lazy as _

# The reasons, as stored in DeliveryEvent.machine_reason ("" = a person).
ESP_FLAG = "esp_flag"
APPLE_PROXY = "apple_proxy"
SCANNER_AGENT = "scanner_agent"
HEAD_REQUEST = "head_request"
TOO_FAST = "too_fast"
EVERY_LINK = "every_link"

REASONS = {
    ESP_FLAG: _("flagged by the ESP"),
    APPLE_PROXY: _("Apple Mail Privacy Protection"),
    SCANNER_AGENT: _("link scanner"),
    HEAD_REQUEST: _("HEAD request"),
    TOO_FAST: _("seconds after sending"),
    EVERY_LINK: _("every link at once"),
}

# Thresholds (seconds from the hand-over to the relay; see rule 5 and 6 above).
MACHINE_OPEN_SECONDS = 3
MACHINE_CLICK_SECONDS = 10
BURST_SECONDS = 5
BURST_LINKS = 3

# Apple's network (rule 2) and the bare user agent of its MPP proxies.
APPLE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
APPLE_PROXY_AGENT = "Mozilla/5.0"

# Link checkers of mail security gateways and HTTP libraries no person reads mail with.
SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|ironport|messagelabs|symantec|trendmicro|forcepoint|sophos|fortiguard"
    r"|bingpreview|googlebot|bot/|crawler|spider|headlesschrome|phantomjs"
    r"|python-requests|python-urllib|aiohttp|curl/|wget/|go-http-client|java/|libwww-perl|okhttp|httpclient",
    re.IGNORECASE,
)

# Mailgun's client-info.bot values that mean "no person" (rule 1; "gmail" is a person).
MAILGUN_MACHINE_BOTS = ("apple", "generic")

OPENED = "opened"
CLICKED = "clicked"


@dataclass(frozen=True)
class Hit:
    """What is known about one open or click when it is recorded."""

    event_type: str  # "opened" or "clicked"
    at: datetime
    handed_over_at: datetime | None  # when the message went to the relay (None: unknown)
    user_agent: str = ""
    ip: str = ""
    method: str = ""  # the HTTP method (our own endpoints; "" for ESP events)
    esp_flag: bool = False


def machine_reason(hit: Hit) -> str:
    """Why ``hit`` was made by a machine, or "" when a person made it (rules 1-5; rule 6 needs
    the delivery's other clicks: ``is_burst``)."""
    if hit.esp_flag:
        return ESP_FLAG
    agent = (hit.user_agent or "").strip()
    if hit.event_type == OPENED and (agent == APPLE_PROXY_AGENT or _in_apple_network(hit.ip)):
        return APPLE_PROXY
    if agent and SCANNER_AGENTS.search(agent):
        return SCANNER_AGENT
    if hit.method.upper() == "HEAD":
        return HEAD_REQUEST
    if hit.handed_over_at is not None:
        elapsed = (hit.at - hit.handed_over_at).total_seconds()
        limit = MACHINE_OPEN_SECONDS if hit.event_type == OPENED else MACHINE_CLICK_SECONDS
        if 0 <= elapsed < limit:
            return TOO_FAST
    return ""


def burst_window(at: datetime) -> tuple[datetime, datetime]:
    """The times whose clicks, with one at ``at``, make a burst (rule 6)."""
    span = timedelta(seconds=BURST_SECONDS)
    return at - span, at + span


def is_burst(distinct_links: int) -> bool:
    """Whether clicks on ``distinct_links`` different links within the window are a scanner's."""
    return distinct_links >= BURST_LINKS


def esp_flag(esp: str, payload) -> bool:
    """Whether an ESP's raw event (anymail's ``esp_event``) says a machine made it (rule 1)."""
    if not isinstance(payload, dict):
        return False
    if esp == "sendgrid":
        return payload.get("sg_machine_open") in (True, "true", "True", 1)
    if esp == "mailgun":
        data = payload.get("event-data", payload)
        info = data.get("client-info") if isinstance(data, dict) else None
        return isinstance(info, dict) and str(info.get("bot") or "").lower() in MAILGUN_MACHINE_BOTS
    return False


def _in_apple_network(ip: str) -> bool:
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return False
    return any(address in network for network in APPLE_NETWORKS)
