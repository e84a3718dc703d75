"""Server time of the admin pages editors use, with 1,000,000 subscribers and 100 campaigns.

Fills a PostgreSQL database (``--database-url``; kept between runs, topped up to
``--subscribers`` with generate_subscribers.py) with the subscribers on one list, 100 campaigns of
an issue to it, the newest one snapshotted to every subscriber and marked sent (30% opened, 5%
clicked, with their events), then requests each admin page through Django's test client as a
logged-in superuser, in this process: the time printed is the server's (URL routing, middleware,
queries, template), not a network's. Each page is asked ``--repeat`` times; the median and the
slowest are printed, with the number of queries and the slowest query's time.

    createdb -h 127.0.0.1 -U postgres broadsheet_admin_bench
    .venv/bin/python bench/admin_bench.py --database-url postgres://postgres@127.0.0.1:5432/broadsheet_admin_bench
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

CAMPAIGNS = 100
TARGET_MS = 500


def setup_django(database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="newsletter_site.settings.dev",
        DEBUG="0",
        DATABASE_URL=database_url,
        SECRET_KEY="admin-bench-only-secret-key",
        ALLOWED_HOSTS="testserver,localhost",
        TASKS_URL="db://",
        EMAIL_URL="outbox://",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def fill(subscribers: int) -> dict:
    """Top the database up to ``subscribers`` subscribers and CAMPAIGNS campaigns; returns what
    the pages are asked about."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone
    from generate_subscribers import generate_subscribers
    from wagtail.models import Page, Site

    from campaigns.models import Campaign, NewsletterIndexPage, NewsletterIssuePage
    from campaigns.services import create_campaign, snapshot_recipients
    from pages.models import HomePage
    from subscribers.models import MailingList, Subscriber

    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    mailing_list, _ = MailingList.objects.get_or_create(
        slug="bench", defaults={"name": "Bench", "double_opt_in": False}
    )
    have = Subscriber.objects.count()
    if have < subscribers:
        started = time.perf_counter()
        generate_subscribers(subscribers - have, mailing_list, start=have)
        print(f"generated {subscribers - have} subscribers in {time.perf_counter() - started:.1f} s", flush=True)
    issue = NewsletterIssuePage.objects.first()
    if issue is None:
        home = Page.get_first_root_node().add_child(instance=HomePage(title="Admin bench", slug="admin-bench"))
        Site.objects.update_or_create(is_default_site=True, defaults={"hostname": "localhost", "root_page": home})
        archive = home.add_child(instance=NewsletterIndexPage(title="Archive", slug="archive"))
        issue = archive.add_child(
            instance=NewsletterIssuePage(title="Issue 1", slug="issue-1", subject="Issue 1", body=[])
        )
        issue.save_revision().publish()
    while Campaign.objects.count() < CAMPAIGNS:
        create_campaign(issue, [mailing_list])
    reported = Campaign.objects.order_by("-pk").first()
    if reported.status != Campaign.Status.SENT:
        started = time.perf_counter()
        if not reported.deliveries.exists():
            snapshot_recipients(reported)
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            # Sent to all, 30% opened and 5% clicked (every tenth of those twice), as the ledger says.
            cursor.execute(
                "UPDATE campaigns_delivery SET status = 'sent', sent_at = %s, "
                "open_count = CASE WHEN id %% 10 < 3 THEN 1 ELSE 0 END, "
                "first_opened_at = CASE WHEN id %% 10 < 3 THEN %s END, "
                "click_count = CASE WHEN id %% 20 = 0 THEN 1 ELSE 0 END WHERE campaign_id = %s",
                [now, now, reported.pk],
            )
            for event, condition in (("opened", "id %% 10 < 3"), ("clicked", "id %% 20 = 0")):
                cursor.execute(
                    "INSERT INTO campaigns_deliveryevent (delivery_id, campaign_id, esp, event_type, message_id, "
                    "recipient, timestamp, url, payload, created_at, machine_reason) "
                    "SELECT id, campaign_id, 'bench', %s, '', email, "
                    "%s + (id %% 172800) * interval '1 second', "
                    "CASE WHEN %s = 'clicked' THEN 'https://example.org/story-' || (id %% 7) ELSE '' END, '{}', %s, '' "
                    f"FROM campaigns_delivery WHERE campaign_id = %s AND {condition}",
                    [event, now, event, now, reported.pk],
                )
            count = reported.deliveries.count()
            Campaign.objects.filter(pk=reported.pk).update(
                status=Campaign.Status.SENT, recipients=count, sent=count, started_at=now, finished_at=now
            )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE campaigns_delivery")
            cursor.execute("VACUUM ANALYZE campaigns_deliveryevent")
        print(f"campaign {reported.pk}: {count} deliveries with events in {time.perf_counter() - started:.1f} s")
    user = get_user_model().objects.filter(username="bench-admin").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench-admin", "admin@bench.example", "bench")
    probe = Subscriber.objects.filter(email__startswith="sub").order_by("pk")[subscribers // 2 : subscribers // 2 + 1]
    return {"user": user, "list": mailing_list, "campaign": reported, "email": probe[0].email}


def pages(facts: dict) -> list[tuple[str, str]]:
    from django.urls import reverse

    subscribers = reverse("subscribers_subscriber:index")
    return [
        # The reference: a stock Wagtail listing of one row (the admin's frame on this machine now).
        ("reference: users listing", reverse("wagtailusers_users:index")),
        ("subscribers listing", subscribers),
        ("subscribers of a list", f"{subscribers}?list={facts['list'].pk}"),
        ("subscribers, oldest first", f"{subscribers}?ordering=created_at"),
        ("search by address", f"{subscribers}?q={facts['email']}"),
        ("lists page", reverse("subscribers_list:index")),
        ("campaign list", reverse("campaigns_admin:index")),
        ("campaign report", reverse("campaigns_admin:report", args=[facts["campaign"].pk])),
        ("campaign page", reverse("campaigns_admin:detail", args=[facts["campaign"].pk])),
    ]


def measure(client, url: str, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code}")
        queries = captured.captured_queries
    slowest = max(queries, key=lambda q: float(q["time"]), default={"time": "0", "sql": ""})
    return {
        "median_ms": statistics.median(times) * 1000,
        "max_ms": max(times) * 1000,
        "queries": len(queries),
        "slowest_query_ms": float(slowest["time"]) * 1000,
        "slowest_query": slowest["sql"][:200],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database of its own (filled, kept)")
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--show-queries", action="store_true", help="print each page's slowest query")
    args = parser.parse_args(argv)

    setup_django(args.database_url)
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    facts = fill(args.subscribers)
    settings.DEBUG = False
    setup_test_environment()  # the test client's template-rendered signal; DEBUG stays off
    client = Client()
    client.force_login(facts["user"])
    for _name, url in pages(facts):  # warm: imports, template loading, connection
        client.get(url)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'page':<28} {'median':>9} {'slowest':>9} {'queries':>8} {'slowest query':>14}")
    missed, reference = 0, 1.0
    for name, url in pages(facts):
        result = measure(client, url, args.repeat)
        verdict = "ok" if result["median_ms"] < TARGET_MS else "MISSED"
        if name.startswith("reference"):
            reference, verdict = result["median_ms"], ""
        else:
            missed += verdict != "ok"
            verdict += f"  ({result['median_ms'] / reference:.1f}x the reference)"
        print(
            f"{name:<28} {result['median_ms']:7.0f} ms {result['max_ms']:7.0f} ms {result['queries']:>8} "
            f"{result['slowest_query_ms']:11.0f} ms  {verdict}"
        )
        if args.show_queries:
            print(f"    {result['slowest_query']}")
    print(f"target: each < {TARGET_MS} ms server time (median); load average after: {os.getloadavg()[0]:.2f}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
