"""The Mailgun batch transport writes the request anymail's Mailgun backend writes, without its parsing."""

import json
from urllib.parse import parse_qsl

import pytest
import requests

from campaigns.models import Campaign, Delivery
from campaigns.sending import send_batch
from campaigns.sending.headers import Recipient, build_content, recipient_values
from campaigns.sending.transports import (
    FAILED,
    SENT,
    TEMPORARY,
    AnymailBatchTransport,
    MailgunBatchTransport,
    Outgoing,
    TransportAuthenticationFailed,
    get_transport,
)
from subscribers.links import RecipientLinks

pytestmark = pytest.mark.django_db

# Names and addresses that take each branch: plain, specials to quote, non-ASCII, spaces the
# email package's parser collapses, a tab, an IDNA domain, a quoted local part, "=?" text.
RECIPIENTS = [
    ("reader0@example.com", "Ada Lovelace"),
    ("reader1@example.com", ""),
    ("reader2@example.com", "Lovelace, Ada (Countess)"),
    ("o'neil+news@example.org", 'Ada "The Countess" Lovelace'),
    ("reader4@bücher.de", "Jürgen Weiß"),
    ("reader5@example.com", "中文 读者"),
    ("reader6@example.com", "Two  spaces"),
    ("reader7@example.com", "A\u00a0B"),
    ("reader8@example.com", "=?utf-8?q?not_encoded?="),
    ('"john smith"@example.com', "John"),
    ("Mixed.Case@Example.COM", "J. R. R. Tolkien"),
]


@pytest.fixture
def mailgun(settings):
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.mailgun.EmailBackend"}}
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "MAILGUN_API_KEY": "key-test",
        "MAILGUN_API_URL": "https://api.mailgun.test/v3",
    }


class Recorder:
    """Stands in for requests.Session.request: records each call, answers like Mailgun."""

    def __init__(self, status=200, body=None):
        self.calls = []
        self.status = status
        self.body = body if body is not None else {"id": "<20261130.1@mg.example.com>", "message": "Queued. Thank you."}

    def __call__(self, method, url, **kwargs):
        self.calls.append({"method": method, "url": url, **kwargs})
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        response.encoding = "utf-8"
        return response


@pytest.fixture
def recorder(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(requests.Session, "request", lambda session, *args, **kwargs: recorder(*args, **kwargs))
    return recorder


def batch(campaign):
    campaign.refresh_from_db()  # the rendered issue, stored when the campaign started
    content = build_content(campaign)
    links = RecipientLinks(content.list_ids, content.campaign_id)
    items = []
    for index, (email, name) in enumerate(RECIPIENTS):
        recipient = Recipient(1000 + index, email, name, f"00000000-0000-0000-0000-{index:012d}")
        values = recipient_values(content, links, recipient)
        values["message_id"] = "<fixed@example.com>"  # random per call; the ESP path does not send it
        items.append(Outgoing(recipient, values))
    return content, items


def wire(call):
    """What goes over the wire for a recorded call: method, URL, headers (lengths included) and
    the form fields as parsed from the body (one list of values per field name)."""
    prepared = requests.Request(
        **{key: call[key] for key in ("method", "url", "params", "data", "headers", "files", "auth")}
    ).prepare()
    fields = {}
    for key, value in parse_qsl(prepared.body, keep_blank_values=True, strict_parsing=True):
        fields.setdefault(key, []).append(value)
    return {
        "method": prepared.method,
        "url": prepared.url,
        "headers": dict(prepared.headers),
        "data": fields,
        "timeout": call["timeout"],
    }


def send(transport_class, content, items):
    transport = transport_class(content=content, esp="mailgun")
    with transport:
        return transport.send(items, date="Mon, 30 Nov 2026 15:00:00 +0000")


def test_the_request_is_the_one_anymail_builds_for_the_same_batch(campaign, mailgun, recorder):
    content, items = batch(campaign)

    anymail_outcomes = send(AnymailBatchTransport, content, items)
    direct_outcomes = send(MailgunBatchTransport, content, items)

    assert len(recorder.calls) == 2
    by_anymail, direct = (wire(call) for call in recorder.calls)
    # recipient-variables is JSON whose key order anymail takes from a set: compared parsed.
    anymail_variables = json.loads(by_anymail["data"].pop("recipient-variables")[0])
    direct_variables = json.loads(direct["data"].pop("recipient-variables")[0])
    assert direct_variables == anymail_variables
    # anymail keys merge data by the addr-spec it parses back; a quoted local part's values were
    # keyed by the stored address and reached nobody (empty links in that recipient's message).
    quoted = next(values for values in anymail_variables.values() if values["v:delivery_id"] == "1009")
    assert items[9].values["unsubscribe_url"] in quoted.values()
    assert direct == by_anymail
    assert direct_outcomes == anymail_outcomes
    assert {outcome.status for outcome in direct_outcomes} == {SENT}
    assert {outcome.message_id for outcome in direct_outcomes} == {"<20261130.1@mg.example.com>"}
    # What the comparison covers: every recipient in To, with their own values and headers.
    assert len(direct["data"]["to"]) == len(RECIPIENTS)
    assert direct["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Jürgen Weiß <reader4@xn--bcher-kva.de>" in direct["data"]["to"]
    first = direct_variables["reader0@example.com"]
    assert first["v:delivery_id"] == "1000"
    assert items[0].values["unsubscribe_url"] in first.values()
    assert len(first) >= 4  # the slots (links, name or email), not only the two fixed keys
    assert first["h:List-Unsubscribe"] == items[0].values["list_unsubscribe"]
    assert direct["data"]["h:List-Unsubscribe"] == ["%recipient.h:List-Unsubscribe%"]
    assert direct["data"]["h:List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
    assert direct["data"]["v:campaign_id"] == [str(campaign.pk)]


def test_mailgun_campaigns_use_the_direct_transport(campaign, mailgun):
    assert type(get_transport(build_content(campaign))) is MailgunBatchTransport
    # Test sends go one by one through anymail, as for every ESP.
    assert type(get_transport(build_content(campaign), test=True)) is not MailgunBatchTransport


def test_a_campaign_goes_out_in_one_call_and_records_mailguns_id(campaign, mailgun, recorder):
    send_batch(campaign.pk, worker_id="w1")

    assert len(recorder.calls) == 1
    fields = wire(recorder.calls[0])["data"]
    assert sorted(json.loads(fields["recipient-variables"][0])) == [f"reader{index}@example.com" for index in range(5)]
    assert len(fields["to"]) == 5
    assert set(Delivery.objects.values_list("status", "esp_message_id")) == {("sent", "<20261130.1@mg.example.com>")}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent) == (Campaign.Status.SENT, 5)


@pytest.mark.parametrize(("status", "outcome"), [(429, TEMPORARY), (503, TEMPORARY), (400, FAILED)])
def test_http_errors_are_classified_as_through_anymail(campaign, mailgun, recorder, status, outcome):
    recorder.status, recorder.body = status, {"message": "no"}
    content, items = batch(campaign)

    assert {result.status for result in send(MailgunBatchTransport, content, items)} == {outcome}


def test_refused_credentials_stop_the_batch(campaign, mailgun, recorder):
    recorder.status, recorder.body = 401, {"message": "Forbidden"}
    content, items = batch(campaign)

    with pytest.raises(TransportAuthenticationFailed):
        send(MailgunBatchTransport, content, items)


def test_an_answer_that_is_not_mailguns_fails_the_call(campaign, mailgun, recorder):
    recorder.body = {"message": "Mailgun Magnificent API"}
    content, items = batch(campaign)

    assert {result.status for result in send(MailgunBatchTransport, content, items)} == {FAILED}
