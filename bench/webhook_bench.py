"""Tracking-webhook ingestion: batched, signed SendGrid events posted to /anymail/sendgrid/tracking/.

    .venv/bin/python bench/webhook_bench.py                        # 15,000 deliveries, about 21,000 events, SQLite
    .venv/bin/python bench/webhook_bench.py --recipients 100000 --database postgres \
        --pg-database broadsheet_webhook_bench

Sets up a throwaway database like bench/run.py (a site, one issue, a list of N subscribers), starts
a campaign to them and marks every delivery sent with an ESP message id, as a finished send leaves
it. Then it builds SendGrid event webhook bodies (a JSON array of up to ``--batch`` events, signed
with ECDSA over timestamp + body as SendGrid signs them, with the basic-auth secret): one
``delivered`` per delivery, an ``open`` for ``--opens`` of them and a ``click`` for ``--clicks``
(hours after the send, from a mail client's user agent: people, not machines), a hard ``bounce``
every 500th. The bodies are posted through Django's test client in this process (the whole view:
basic auth, signature, anymail's parser, the recording; no HTTP server, whose cost per 1,000-event
request is small), timed from the first POST to the last answer.

Reference, measured in the same run: the same bodies through the view's checks and anymail's
parser only (``run_validators`` + ``parse_events``), i.e. what any ingestion must do before it
writes anything.

Then it posts the first ``--replay`` bodies again (ESPs retry) and checks: every answer 200, one
stored event per distinct event, the campaign's ``delivered`` equal to the deliveries that got a
delivered event, ``unique_opens`` and ``unique_clicks`` equal to the distinct opened and clicked
deliveries, ``bounced`` to the bounced ones, and nothing changed by the replay. Exit status 1 when
any check fails.
"""

import argparse
import base64
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import run as sending_bench  # noqa: E402

SECRET = "bench:bench-webhook-secret"
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
URLS = ["https://example.org/story-1", "https://example.org/story-2", "https://example.org/story-3"]


def configure(args, tmp: Path, public_key: str) -> dict:
    env = sending_bench.configure(
        argparse.Namespace(
            batch_size=None, database=args.database, postgres=args.postgres, pg_database=args.pg_database
        ),
        tmp,
    )
    env.update(
        EMAIL_URL="anymail://sendgrid",
        SENDGRID_API_KEY="bench-key",
        TRACKING_WEBHOOKS="sendgrid",
        ANYMAIL_WEBHOOK_SECRET=SECRET,
        SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY=public_key,
    )
    return env


def sent_campaign(recipients: int):
    """A campaign to ``recipients`` subscribers whose deliveries are all sent (ESP ids ``bench-<id>``)."""
    from django.db import connection
    from django.db.models import F, Value
    from django.db.models.functions import Cast, Concat
    from django.utils import timezone

    from campaigns import services
    from campaigns.models import Campaign, Delivery

    issue, mailing_list, added, _ = sending_bench.create_content(recipients)
    campaign = services.create_campaign(issue, [mailing_list])
    services.start_campaign(campaign.pk)
    sent_at = timezone.now() - timezone.timedelta(hours=6)
    Delivery.objects.filter(campaign=campaign).update(
        status=Delivery.Status.SENT,
        sent_at=sent_at,
        sending_at=sent_at,
        claimed_by="",
        esp_message_id=Concat(Value("bench-"), Cast(F("pk"), output_field=Delivery._meta.get_field("email"))),
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, sent=added, finished_at=sent_at)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return Campaign.objects.get(pk=campaign.pk)


def make_events(campaign, args) -> tuple[list[dict], dict]:
    """The SendGrid events for the campaign's deliveries, shuffled a little (ESPs batch by time, not
    by recipient), and what the ledger must say afterwards."""
    from campaigns.models import Delivery

    rng = random.Random(42)
    events, expected = [], {"delivered": 0, "opened": 0, "clicked": 0, "bounced": 0}
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("pk", "email", "esp_message_id", "sent_at")
    )
    for index, (pk, email, message_id, sent_at) in enumerate(rows.iterator()):
        base = int(sent_at.timestamp())
        common = {"email": email, "anymail_id": message_id, "sg_message_id": f"{message_id}.filter0001"}
        if index % 500 == 499:
            events.append(
                {
                    **common,
                    "event": "bounce",
                    "type": "bounce",
                    "reason": "550 5.1.1 unknown user",
                    "timestamp": base + 30,
                    "sg_event_id": f"b-{pk}",
                }
            )
            expected["bounced"] += 1
            continue
        events.append(
            {**common, "event": "delivered", "response": "250 OK", "timestamp": base + 5, "sg_event_id": f"d-{pk}"}
        )
        expected["delivered"] += 1
        if rng.random() < args.opens:
            events.append(
                {
                    **common,
                    "event": "open",
                    "useragent": USER_AGENT,
                    "ip": "198.51.100.7",
                    "timestamp": base + 3600 + rng.randrange(3600),
                    "sg_event_id": f"o-{pk}",
                }
            )
            expected["opened"] += 1
            if rng.random() < args.clicks / max(args.opens, 1e-9):
                events.append(
                    {
                        **common,
                        "event": "click",
                        "useragent": USER_AGENT,
                        "ip": "198.51.100.7",
                        "url": rng.choice(URLS),
                        "timestamp": base + 7300 + rng.randrange(600),
                        "sg_event_id": f"c-{pk}",
                    }
                )
                expected["clicked"] += 1
    # Events arrive roughly in time order across recipients, never sorted by delivery.
    for start in range(0, len(events), 2000):
        window = events[start : start + 2000]
        rng.shuffle(window)
        events[start : start + 2000] = window
    return events, expected


def signed_bodies(events: list[dict], batch: int, key) -> list[tuple[bytes, str, str]]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    bodies = []
    for start in range(0, len(events), batch):
        body = json.dumps(events[start : start + batch]).encode()
        timestamp = str(int(time.time()))
        signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        bodies.append((body, signature, timestamp))
    return bodies


def post(client, body: bytes, signature: str, timestamp: str):
    return client.post(
        "/anymail/sendgrid/tracking/",
        data=body,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=signature,
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode(),
        secure=True,
    )


def parse_only(bodies) -> float:
    """Seconds to authenticate and parse every body (the reference): the view's checks and
    anymail's parser, nothing written."""
    import warnings

    from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
    from django.test import RequestFactory

    factory = RequestFactory()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for body, signature, timestamp in bodies:
            request = factory.post(
                "/anymail/sendgrid/tracking/",
                data=body,
                content_type="application/json",
                HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=signature,
                HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
                HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode(),
            )
            view = SendGridTrackingWebhookView()
            view.setup(request)
            view.run_validators(request)
            view.parse_events(request)
    return time.perf_counter() - started


def ledger(campaign) -> dict:
    from campaigns.models import Campaign, DeliveryEvent

    row = Campaign.objects.filter(pk=campaign.pk).values("delivered", "unique_opens", "unique_clicks", "bounced")[0]
    return {**row, "events": DeliveryEvent.objects.filter(campaign_id=campaign.pk).count()}


def run(args) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    tmp = Path(tempfile.mkdtemp(prefix="broadsheet-webhook-bench-"))
    try:
        os.environ.update(configure(args, tmp, base64.b64encode(public).decode()))
        import django

        django.setup()
        import warnings

        from anymail.exceptions import AnymailNotSupportedWarning
        from django.core.management import call_command
        from django.test import Client

        warnings.simplefilter("ignore", AnymailNotSupportedWarning)
        call_command("migrate", verbosity=0, interactive=False)
        call_command("createcachetable", verbosity=0)
        recipients = args.recipients
        step = time.perf_counter()
        campaign = sent_campaign(recipients)
        print(f"campaign of {recipients} sent deliveries ready in {time.perf_counter() - step:.1f} s", flush=True)
        events, expected = make_events(campaign, args)
        bodies = signed_bodies(events, args.batch, key)
        print(f"{len(events)} events in {len(bodies)} signed bodies of up to {args.batch}", flush=True)

        reference = parse_only(bodies)
        client = Client(HTTP_HOST="news.example.com")
        statuses = []
        cpu, started = time.process_time(), time.perf_counter()
        for body, signature, timestamp in bodies:
            statuses.append(post(client, body, signature, timestamp).status_code)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = ledger(campaign)
        replayed = bodies[: args.replay]
        replay_started = time.perf_counter()
        statuses += [post(client, *body).status_code for body in replayed]
        replay_seconds = time.perf_counter() - replay_started
        return {
            "events": len(events),
            "bodies": len(bodies),
            "batch": args.batch,
            "database": args.database,
            "seconds": seconds,
            "cpu": cpu,
            "reference_seconds": reference,
            "replayed_bodies": len(replayed),
            "replay_seconds": replay_seconds,
            "statuses": sorted(set(statuses)),
            "expected": expected,
            "after": after,
            "after_replay": ledger(campaign),
            "load": os.getloadavg(),
        }
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
            if args.database == "postgres":
                from django.db import connections

                connections.close_all()
                sending_bench.drop_postgres_database(args.postgres, args.pg_database)


def check(result: dict) -> list[str]:
    problems = []
    expected, after = result["expected"], result["after"]
    if result["statuses"] != [200]:
        problems.append(f"answers other than 200: {result['statuses']}")
    if after["events"] != result["events"]:
        problems.append(f"{after['events']} events stored, {result['events']} posted")
    for field, key in (
        ("delivered", "delivered"),
        ("unique_opens", "opened"),
        ("unique_clicks", "clicked"),
        ("bounced", "bounced"),
    ):
        # Opens and clicks also prove delivery; every delivery here has its delivered event too.
        if after[field] != expected[key]:
            problems.append(f"campaign {field} is {after[field]}, expected {expected[key]}")
    if result["after_replay"] != after:
        problems.append(f"the replay changed the ledger: {after} -> {result['after_replay']}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=15000, help="deliveries (about 1.4 events each)")
    parser.add_argument("--batch", type=int, default=1000, help="events per POST (SendGrid posts up to about 1,000)")
    parser.add_argument("--opens", type=float, default=0.3, help="share of deliveries opened")
    parser.add_argument("--clicks", type=float, default=0.1, help="share of deliveries clicked (of those opened)")
    parser.add_argument("--replay", type=int, default=3, help="bodies posted a second time")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres", default=sending_bench.PG_SERVER_URL)
    parser.add_argument("--pg-database", default="broadsheet_webhook_bench")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args(argv)

    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs", flush=True)
    print(f"code: {sending_bench.code_version()}", flush=True)
    result = run(args)
    rate = result["events"] / result["seconds"]
    reference_rate = result["events"] / result["reference_seconds"]
    print(f"events / bodies / batch            {result['events']:,} / {result['bodies']} / {result['batch']}")
    print(f"database                           {result['database']}")
    print(f"ingestion                          {result['seconds']:.1f} s, {rate:,.0f} events/s")
    cpu_us = result["cpu"] / result["events"] * 1e6
    print(f"  this process's CPU per event     {cpu_us:.0f} us (the database server's not included)")
    print(f"reference: auth + parse only       {result['reference_seconds']:.2f} s, {reference_rate:,.0f} events/s")
    print(f"replay of {result['replayed_bodies']} bodies                  {result['replay_seconds']:.2f} s")
    print(f"expected                           {result['expected']}")
    print(f"ledger after / after the replay    {result['after']} / {result['after_replay']}")
    print(f"load average at the end            {', '.join(f'{value:.2f}' for value in result['load'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    problems = check(result)
    for problem in problems:
        print(f"INVALID RUN: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
