"""Send one campaign end to end and measure it against raw smtplib (see bench/README.md).

    .venv/bin/python bench/run.py --recipients 10000 --transport smtp --database sqlite
    .venv/bin/python bench/run.py --recipients 1000000 --transport esp --database postgres
    .venv/bin/python bench/run.py --recipients 10000 --merge-tags

``--merge-tags`` sends two more campaigns to the same list after the first: the same issue with
merge tags in its subject and body (first name, an attribute, a tag in a link), then the plain
issue again (A-B-A, so a drift during the run weighs on both sides); every subscriber holds
attributes in all three. It prints the CPU per message of each and tags / mean of the plain runs.

Sets up a throwaway database (an SQLite file in a temporary directory, or a PostgreSQL database
``broadsheet_bench`` that it drops and creates), migrates it, creates a site, an issue, a list
and N subscribers, starts the loopback SMTP sink (or the mock Mailgun API), starts the campaign,
runs ONE worker subprocess (``manage.py worker --batch`` on the database task backend; ``--workers N``
for N of them) until the queue is empty, and prints: recipients, wall time, messages/s, the worker's CPU per message and
peak memory (from the kernel, via wait4), and the same for raw smtplib sending a pre-built message
of the same size N times over one connection to the same sink, measured in the same run. It
checks that the sink received every recipient exactly once.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import smtp_sink  # noqa: E402

PG_SERVER_URL = "postgres://postgres@127.0.0.1:5432"
PG_DATABASE = "broadsheet_bench"
SAMPLE_EVERY = 0.5  # seconds between RSS / progress samples of the worker


# --- Child processes ------------------------------------------------------------------------


class Child:
    """A subprocess whose own CPU time and peak memory the kernel reports when it exits.

    Started through bench/rusage.py (see why there), which prints the child's pid and then its
    wait4 figures; meanwhile we sample the child's RSS from /proc to show whether it stays flat.
    """

    def __init__(self, args, *, env=None, log: Path, cwd=ROOT):
        self.started = time.perf_counter()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "rusage.py"), str(log), "--", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = json.loads(self.process.stdout.readline())["pid"]
        self.rss_samples: list[tuple[float, int, int]] = []  # (seconds, rss KB, messages so far)

    def rss_kb(self) -> int:
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def sample(self, progress=None) -> bool:
        """Record one RSS sample (with ``progress()``); False once the child has exited."""
        if self.process.poll() is not None:
            return False
        rss = self.rss_kb()
        if rss:
            elapsed = time.perf_counter() - self.started
            self.rss_samples.append((round(elapsed, 1), rss, progress() if progress else 0))
        return True

    def wait(self, progress=None) -> dict:
        """Wait for exit, sampling RSS (and ``progress()``) meanwhile; returns times and rusage."""
        while self.sample(progress):
            time.sleep(SAMPLE_EVERY)
        return self.finish()

    def finish(self) -> dict:
        """The exited child's wall time and its own CPU time and peak memory (wait4)."""
        self.process.wait()
        wall = time.perf_counter() - self.started
        usage = json.loads(self.process.stdout.read().strip().splitlines()[-1])
        if usage["exit_code"]:
            print(f"{self.log} (last lines):", *self.log.read_text().splitlines()[-30:], sep="\n", file=sys.stderr)
        return {
            "exit_code": usage["exit_code"],
            "wall_seconds": wall,
            "cpu_seconds": usage["user_seconds"] + usage["system_seconds"],
            "user_seconds": usage["user_seconds"],
            "system_seconds": usage["system_seconds"],
            "max_rss_mb": usage["max_rss_kb"] / 1024,
        }


def wait_all(children: list[Child], progress=None) -> dict:
    """Wait for every worker; their CPU times summed, the longest wall time, the highest peak RSS."""
    running = list(children)
    while running:
        running = [child for child in running if child.sample(progress)]
        time.sleep(SAMPLE_EVERY)
    each = [child.finish() for child in children]
    return {
        "exit_code": next((usage["exit_code"] for usage in each if usage["exit_code"]), 0),
        "wall_seconds": max(usage["wall_seconds"] for usage in each),
        "cpu_seconds": sum(usage["cpu_seconds"] for usage in each),
        "user_seconds": sum(usage["user_seconds"] for usage in each),
        "system_seconds": sum(usage["system_seconds"] for usage in each),
        "max_rss_mb": max(usage["max_rss_mb"] for usage in each),
        "workers": each,
    }


def start_server(script: str, track: int, *extra: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, str(BENCH / script), "--track", str(track), *extra], stdout=subprocess.PIPE, text=True
    )
    port = json.loads(process.stdout.readline())["port"]
    return process, port


def stop_server(process: subprocess.Popen) -> dict:
    process.terminate()
    out, _ = process.communicate(timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def esp_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=10) as response:
        return json.load(response)


# --- Database and content -------------------------------------------------------------------


def create_postgres_database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url.replace("postgres://", "postgresql://") + "/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


def drop_postgres_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url.replace("postgres://", "postgresql://") + "/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PARAGRAPH = (
    "<p>The city council voted on Tuesday to keep the <b>old printing works</b> open as a community "
    'space, after a campaign that gathered more than four thousand signatures. <a href="https://example.org/'
    'story-{n}">Read the full story</a> on our website, where you will also find the minutes of the meeting, '
    "the architects' drawings and a gallery of the presses as they were in 1962.</p>"
)


def create_content(recipients: int):
    """A site with postal address, an archive, one published issue of typical length, a list of N."""
    from generate_subscribers import generate_subscribers
    from wagtail.models import Page, Site

    from campaigns.models import NewsletterIndexPage, NewsletterIssuePage
    from mail.models import NewsletterSettings
    from pages.models import HomePage
    from subscribers.models import MailingList

    root = Page.get_first_root_node()
    home = root.add_child(instance=HomePage(title="Broadsheet bench", slug="bench-home"))
    Site.objects.all().delete()
    site = Site.objects.create(hostname="news.example.com", port=443, root_page=home, is_default_site=True)
    settings_obj = NewsletterSettings.for_site(site)
    settings_obj.sender_name = "The Broadsheet"
    settings_obj.sender_email = "news@bench.example"
    settings_obj.reply_to = "editor@bench.example"
    settings_obj.postal_address = "1 Fleet Street\nLondon EC4Y 1AA\nUnited Kingdom"
    settings_obj.save()
    archive = home.add_child(instance=NewsletterIndexPage(title="Archive", slug="archive"))
    body = [("heading", {"text": "This week in the city", "level": "h2"})]
    for n in range(6):
        body.append(("paragraph", PARAGRAPH.format(n=n)))
        if n == 2:
            body.append(("quote", {"text": "Print is not dead; it was resting.", "attribution": "An editor"}))
            body.append(("divider", None))
    body.append(("button", {"label": "Read the issue online", "page": None, "link_url": "https://example.org/"}))
    issue = archive.add_child(
        instance=NewsletterIssuePage(
            title="Issue 42",
            slug="issue-42",
            subject="Issue 42: the printing works stay open",
            preheader="Six stories and a quote",
            body=body,
        )
    )
    issue.save_revision().publish()
    issue.refresh_from_db()
    mailing_list = MailingList.objects.create(name="Bench", slug="bench", double_opt_in=False)
    started = time.perf_counter()
    added = generate_subscribers(recipients, mailing_list)
    return issue, mailing_list, added, time.perf_counter() - started


# The bench issue with merge tags (--merge-tags): the same issue, with tags in the subject, the
# heading and the first paragraph (its words shortened so the message keeps its size).
TAGGED_SUBJECT = 'Issue 42: the printing works stay open, {{ first_name|default:"reader" }}'
TAGGED_HEADING = 'This week in {{ attributes.city|default:"the city" }}'
TAGGED_PARAGRAPH = (
    PARAGRAPH.format(n=0)
    .replace(
        "<p>The city council voted on Tuesday",
        "<p>Dear {{ first_name|default:&quot;reader&quot; }}, {{ attributes.city }} voted",
    )
    .replace('story-0">', 'story-0?c={{attributes.city}}">')
    .replace(" of the meeting, the architects' drawings", "")
)


def create_tagged_issue(issue):
    """A copy of the bench issue with merge tags, and attributes for every subscriber (so the
    tagged run reads and fills real values)."""
    from campaigns.models import NewsletterIssuePage

    body = [("heading", {"text": TAGGED_HEADING, "level": "h2"}), ("paragraph", TAGGED_PARAGRAPH)]
    body += [(block.block_type, block.value) for block in issue.body][2:]
    tagged = issue.get_parent().add_child(
        instance=NewsletterIssuePage(
            title="Issue 42 (tagged)",
            slug="issue-42-tagged",
            subject=TAGGED_SUBJECT,
            preheader=issue.preheader,
            body=body,
        )
    )
    tagged.save_revision().publish()
    tagged.refresh_from_db()
    return tagged


def give_attributes():
    from subscribers.models import Subscriber

    Subscriber.objects.update(attributes={"city": "Leeds", "member_since": "2019"})


def send_campaign(issue, mailing_list, args, env, tmp: Path, delivered, label: str = "") -> dict:
    """Start a campaign of ``issue`` to ``mailing_list`` and drain it with the workers; returns
    the workers' figures (``engine``), timings, the campaign's counters and what was received."""
    from campaigns.models import Campaign
    from campaigns.services import create_campaign, start_campaign

    campaign = create_campaign(issue, [mailing_list])
    started = time.perf_counter()
    start_campaign(campaign.pk)  # snapshot + render + enqueue, in this process
    snapshot_seconds = time.perf_counter() - started
    print(f"campaign{label or ''} started (snapshot of {args.recipients}) in {snapshot_seconds:.1f} s", flush=True)
    worker_args = [sys.executable, "manage.py", "worker", "--batch"]
    profile_path = tmp / f"worker{label}.prof"
    if args.profile:
        worker_args = [sys.executable, "-m", "cProfile", "-o", str(profile_path), *worker_args[1:]]
    # Several workers drain the same campaign (PostgreSQL: SKIP LOCKED claims); each is measured
    # on its own, the CPU times are summed.
    workers = [Child(worker_args, env=env, log=tmp / f"worker{label}-{n}.log") for n in range(args.workers)]
    engine = wait_all(workers, progress=lambda: delivered()["messages"])
    end_to_end = time.perf_counter() - started
    campaign = Campaign.objects.get(pk=campaign.pk)
    return {
        "campaign_object": campaign,
        "snapshot_seconds": snapshot_seconds,
        "end_to_end_seconds": end_to_end,
        "engine": engine,
        "received": delivered(),
        "campaign": {
            "status": campaign.status,
            "recipients": campaign.recipients,
            "sent": campaign.sent,
            "failed": campaign.failed,
            "skipped": campaign.skipped,
        },
        "rss_samples": workers[0].rss_samples,
        "profile_path": profile_path,
    }


def reference_message(campaign, size: int) -> bytes:
    """The campaign's HTML and text as one multipart message, padded to ``size`` bytes."""
    from django.core.mail import EmailMultiAlternatives

    message = EmailMultiAlternatives(
        subject=campaign.subject,
        body=campaign.text,
        from_email=campaign.from_email,
        to=["sub0@bench.example"],
        headers={"List-Unsubscribe": "<https://news.example.com/newsletter/u/x/>", "Precedence": "bulk"},
    )
    message.attach_alternative(campaign.html, "text/html")
    mime = message.message()
    data = mime.as_bytes(policy=mime.policy.clone(linesep="\r\n"))
    if len(data) < size:
        # Same size as what the engine sent: pad the text with a plain line.
        data += (b"x" * 76 + b"\r\n") * ((size - len(data)) // 78)
    return data


# --- The run --------------------------------------------------------------------------------


def configure(args, tmp: Path) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "EMAIL_", "TASKS_", "REDIS_", "ANYMAIL_", "MAILGUN_", "SEND_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="newsletter_site.settings.dev",
        DEBUG="0",  # with DEBUG on, Django keeps every query in memory
        SECRET_KEY="bench-only-secret-key",
        BASE_URL="https://news.example.com",
        ALLOWED_HOSTS="news.example.com",
        VAR_DIR=str(tmp),
        TASKS_URL="db://",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if args.batch_size:
        env["SEND_BATCH_SIZE"] = str(args.batch_size)
    if args.database == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    else:
        env["DATABASE_URL"] = create_postgres_database(args.postgres, args.pg_database)
    return env


def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="broadsheet-bench-"))
    server = None
    try:
        env = configure(args, tmp)
        if args.transport == "smtp":
            sink_options = ["--no-pipelining"] if args.no_pipelining else []
            server, port = start_server("smtp_sink.py", args.recipients, *sink_options)
            env["EMAIL_URL"] = f"smtp://127.0.0.1:{port}?timeout=60"

            def delivered():
                return smtp_sink.query("127.0.0.1", port)

        else:
            server, port = start_server("mock_esp.py", args.recipients)
            env.update(
                EMAIL_URL="anymail://mailgun",
                MAILGUN_API_KEY="bench-key",
                ANYMAIL_API_URL=f"http://127.0.0.1:{port}/v3",
                # A site sending through Mailgun has its tracking webhook configured (the system
                # check stops every manage.py command, the worker too, when it is half set up).
                ANYMAIL_WEBHOOK_SECRET="bench:bench-webhook-secret",
                MAILGUN_WEBHOOK_SIGNING_KEY="bench-signing-key",
            )

            def delivered():
                return esp_stats(port)

        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        step = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        call_command("createcachetable", verbosity=0)
        print(f"migrated {args.database} in {time.perf_counter() - step:.1f} s", flush=True)

        issue, mailing_list, added, generate_seconds = create_content(args.recipients)
        print(f"generated {added} subscribers in {generate_seconds:.1f} s", flush=True)
        if args.merge_tags:
            # Before the drain below (publishing enqueues Wagtail's tasks) and before both runs.
            tagged_issue = create_tagged_issue(issue)
            give_attributes()

        worker_args = [sys.executable, "manage.py", "worker", "--batch"]
        # The first run drains Wagtail's own tasks (reference index, search) from creating the pages;
        # the second measures the startup cost of a worker (imports, Django setup), to net it out.
        Child(worker_args, env=env, log=tmp / "worker-drain.log").wait()
        idle = Child(worker_args, env=env, log=tmp / "worker-idle.log").wait()

        sent = send_campaign(issue, mailing_list, args, env, tmp, delivered)
        campaign, received = sent.pop("campaign_object"), sent["received"]
        profile_path = sent.pop("profile_path")
        result = {
            "recipients": args.recipients,
            "transport": args.transport,
            "database": args.database,
            "subscribers_generated_seconds": generate_seconds,
            "idle_worker": idle,
            "workers": args.workers,
            "no_pipelining": args.no_pipelining,
            **sent,
        }
        if args.profile:
            result["profile"] = str(profile_path)
            keep = BENCH / "results" / "worker.prof"
            keep.parent.mkdir(exist_ok=True)
            shutil.copy(profile_path, keep)
            result["profile"] = str(keep)
        if args.merge_tags:
            # The same list again, the issue with merge tags: both measured in this run.
            reset_counts(args.transport, port)
            tagged = send_campaign(tagged_issue, mailing_list, args, env, tmp, delivered, "-tags")
            tagged.pop("campaign_object"), tagged.pop("profile_path"), tagged.pop("rss_samples")
            # Then the plain issue once more (A-B-A): a drift over the run (warmer caches, the
            # machine's load) weighs on both sides alike; plain is the mean of the two A runs.
            reset_counts(args.transport, port)
            again = send_campaign(issue, mailing_list, args, env, tmp, delivered, "-plain-again")
            tagged["plain_again"] = {key: again[key] for key in ("engine", "received", "campaign")}
            result["merge_tags"] = tagged

        if args.transport == "smtp":
            size = received["bytes"] // max(received["messages"], 1) if "bytes" in received else 0
            smtp_sink.query("127.0.0.1", port, "XRESET")
            message_path = tmp / "reference.eml"
            message_path.write_bytes(reference_message(campaign, size))
            reference = Child(
                [
                    sys.executable,
                    str(BENCH / "reference_smtp.py"),
                    "--port",
                    str(port),
                    "--count",
                    str(args.recipients),
                    "--message",
                    str(message_path),
                ],
                log=tmp / "reference.log",
            ).wait()
            reference["message_bytes"] = message_path.stat().st_size
            reference["received"] = smtp_sink.query("127.0.0.1", port)
            result["reference"] = reference
        return result
    finally:
        if server is not None:
            result_server = stop_server(server)
            if "result" in locals():
                result["server_final"] = result_server
        if args.database == "postgres" and not args.keep:
            drop_postgres_database(args.postgres, args.pg_database)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


def reset_counts(transport: str, port: int) -> None:
    """Zero the sink's (or the mock ESP's) counters between two campaigns."""
    if transport == "smtp":
        smtp_sink.query("127.0.0.1", port, "XRESET")
    else:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/_reset", method="POST"), timeout=10)


def net_cpu_per_message(engine: dict, idle: dict, workers: int, n: int) -> float:
    """Worker CPU per message in microseconds, net of each worker's startup (the idle run)."""
    return max(engine["cpu_seconds"] - workers * idle["cpu_seconds"], 0) / n * 1e6


def report(result: dict) -> str:
    n = result["recipients"]
    engine, idle = result["engine"], result["idle_worker"]
    workers = result.get("workers", 1)
    net_cpu = max(engine["cpu_seconds"] - workers * idle["cpu_seconds"], 0)
    rows = [
        ("recipients", f"{n:,}"),
        ("transport / database", f"{result['transport']} / {result['database']}"),
        ("campaign status", f"{result['campaign']['status']} ({result['campaign']})"),
        ("received by the sink", json.dumps(result["received"])),
        ("snapshot + render + enqueue", f"{result['snapshot_seconds']:.1f} s"),
        ("workers", f"{workers}"),
        ("worker wall time", f"{engine['wall_seconds']:.1f} s"),
        ("end to end (start to last message)", f"{result['end_to_end_seconds']:.1f} s"),
        ("messages/s (worker wall)", f"{n / engine['wall_seconds']:,.0f}"),
        ("messages/s (end to end)", f"{n / result['end_to_end_seconds']:,.0f}"),
        (
            "worker CPU per message",
            f"{engine['cpu_seconds'] / n * 1e6:,.0f} us (user {engine['user_seconds']:.1f} s, "
            f"sys {engine['system_seconds']:.1f} s); net of startup ({idle['cpu_seconds']:.1f} s "
            f"per worker): {net_cpu / n * 1e6:,.0f} us",
        ),
        ("worker peak memory", f"{engine['max_rss_mb']:.0f} MB (idle worker: {idle['max_rss_mb']:.0f} MB)"),
    ]
    if workers > 1:
        rows.append(
            (
                "per worker: CPU, peak memory",
                ", ".join(f"{w['cpu_seconds']:.1f} s {w['max_rss_mb']:.0f} MB" for w in engine["workers"]),
            )
        )
    samples = result["rss_samples"]
    if samples:
        picks = [samples[int(i * (len(samples) - 1) / 4)] for i in range(5)]
        rows.append(("worker RSS over time", ", ".join(f"{t}s:{kb // 1024}MB@{m:,}" for t, kb, m in picks)))
    if result["transport"] == "smtp":
        rows.append(("SMTP sink advertises PIPELINING", "no" if result.get("no_pipelining") else "yes"))
    if "merge_tags" in result:
        tagged = result["merge_tags"]["engine"]
        again = result["merge_tags"]["plain_again"]["engine"]
        first_us = net_cpu_per_message(engine, idle, workers, n)
        again_us = net_cpu_per_message(again, idle, workers, n)
        plain_us = (first_us + again_us) / 2
        tagged_us = net_cpu_per_message(tagged, idle, workers, n)
        rows += [
            ("with merge tags: received", json.dumps(result["merge_tags"]["received"])),
            ("with merge tags: worker wall time", f"{tagged['wall_seconds']:.1f} s"),
            (
                "CPU per message, net: plain, tags, plain",
                f"{first_us:,.0f} us, {tagged_us:,.0f} us, {again_us:,.0f} us",
            ),
            (
                "merge tags / plain (mean of both)",
                f"{tagged_us / plain_us:.3f}x ({tagged_us - plain_us:+,.0f} us per message)" if plain_us else "-",
            ),
        ]
    if "reference" in result:
        ref = result["reference"]
        rows += [
            ("reference: raw smtplib, 1 connection", f"{ref['message_bytes']:,} byte message, {ref['received']}"),
            ("reference wall time", f"{ref['wall_seconds']:.1f} s ({n / ref['wall_seconds']:,.0f} messages/s)"),
            ("reference CPU per message", f"{ref['cpu_seconds'] / n * 1e6:,.0f} us"),
            ("reference peak memory", f"{ref['max_rss_mb']:.0f} MB"),
            (
                "ratio engine / reference CPU",
                f"{engine['cpu_seconds'] / ref['cpu_seconds']:.2f}x (net of startup "
                f"{net_cpu / ref['cpu_seconds']:.2f}x)",
            ),
        ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def check(result: dict) -> list[str]:
    """Problems that make the run invalid (lost or duplicated messages, unfinished campaign)."""
    problems = []
    n, received = result["recipients"], result["received"]
    if result["engine"]["exit_code"] != 0:
        problems.append(f"worker exited with {result['engine']['exit_code']}")
    if result["campaign"]["status"] != "sent":
        problems.append(f"campaign is {result['campaign']['status']}, not sent")
    if result["campaign"]["sent"] != n:
        problems.append(f"campaign counted {result['campaign']['sent']} sent, expected {n}")
    if received["recipients"] != n or received.get("distinct") != n or received.get("duplicates"):
        problems.append(f"sink received {received}, expected {n} distinct recipients")
    if "merge_tags" in result:
        tagged = result["merge_tags"]
        for name, run_ in (("with merge tags", tagged), ("plain again", tagged["plain_again"])):
            if run_["campaign"]["sent"] != n or run_["received"]["recipients"] != n:
                problems.append(f"campaign {name}: {run_['campaign']}, sink received {run_['received']}")
    if "reference" in result and result["reference"]["received"]["messages"] != n:
        problems.append(f"reference delivered {result['reference']['received']}")
    return problems


def code_version() -> str:
    """The commit measured, and any uncommitted changes to the engine (they are measured too)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--short", "--", "campaigns", "newsletter_site", "subscribers"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown (no git)"
    changed = " ".join(line[3:] for line in dirty.stdout.splitlines())
    return commit.stdout.strip() + (f" + uncommitted changes in {changed}" if changed else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10000)
    parser.add_argument("--transport", choices=["smtp", "esp"], default="smtp")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres", default=PG_SERVER_URL, help="server URL without database name")
    parser.add_argument("--pg-database", default=PG_DATABASE)
    parser.add_argument("--workers", type=int, default=1, help="worker processes draining the campaign")
    parser.add_argument(
        "--no-pipelining", action="store_true", help="the SMTP sink does not advertise PIPELINING (RFC 2920)"
    )
    parser.add_argument("--batch-size", type=int, help="SEND_BATCH_SIZE for the worker")
    parser.add_argument("--profile", action="store_true", help="run the worker under cProfile")
    parser.add_argument(
        "--merge-tags", action="store_true", help="then send the issue with merge tags too, and compare CPU per message"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and temporary files")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args(argv)

    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs", flush=True)
    print(f"code: {code_version()}", flush=True)
    result = run(args)
    print(report(result))
    if args.profile:
        import pstats

        stats = pstats.Stats(result["profile"])
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_stats(30)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    problems = check(result)
    for problem in problems:
        print(f"INVALID RUN: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
