"""Load test of the public site under gunicorn with the production settings (issue 15).

Starts gunicorn (production settings, 2 workers, loopback, PostgreSQL + Redis) on a throwaway
database with a home page (subscribe form), an archive of 12 issues and a list of N subscribers,
then drives it with an asyncio HTTP/1.1 client (keep-alive, C connections) through:

1. ``pages``: GET of the home page, the archive (two pages), its Atom feed and issue pages, from
   the page cache (warmed by one pass first). Reference, same run: the same load on a second
   gunicorn with the cache off (PAGE_CACHE_SECONDS=0).
2. ``subscribe``: the subscribe form's POST (CSRF cookie and token from a GET, a new address each
   time, per-IP limit raised so the POST path itself is measured). Afterwards it checks that every
   accepted POST queued one ``send_confirmation`` task and that nothing was sent inline.
3. ``unsubscribe``: RFC 8058 one-click POSTs (a different subscriber each time) while a campaign
   to the N subscribers is sending on the same machine: one ``manage.py worker`` draining it into
   bench/mock_esp.py (Mailgun's API).

Each phase is bounded by ``--requests`` and ``--seconds``. Printed per phase: requests, errors,
requests/s, latency p50/p90/p99/max, the client's own CPU; and the load average before and after
(the client runs on the same machine and takes CPU from the server: figures are pessimistic).

    make bench-web
    .venv/bin/python bench/web_bench.py --recipients 100000 --seconds 20 --connections 16
"""

import argparse
import asyncio
import collections
import contextlib
import itertools
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from run import (  # noqa: E402
    PG_SERVER_URL,
    code_version,
    create_content,
    create_postgres_database,
    drop_postgres_database,
    esp_stats,
    start_server,
    stop_server,
)

TARGETS = {
    "pages": (1000, 50),
    "subscribe": (200, None),
    "unsubscribe": (300, 100),
}


# --- The HTTP client ------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened when the server closes it."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, dict, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        if "chunked" in headers.get("transfer-encoding", [""])[0]:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip() or b"0", 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", ["0"])[0]))
        if "close" in headers.get("connection", [""])[0].lower():
            self.close()
        return status, headers, body

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def get(path: str, port: int, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Language: en\r\n"
        f"User-Agent: broadsheet-web-bench\r\n{extra}\r\n"
    ).encode()


def post(path: str, port: int, body: str, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Language: en\r\n"
        f"User-Agent: broadsheet-web-bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body.encode())}\r\n{extra}\r\n{body}"
    ).encode()


async def drive(
    port: int, make_request, *, expect: set[int], requests: int, seconds: float, connections: int, server=None
):
    """Send up to ``requests`` requests (``make_request(i)`` builds the i-th) over ``connections``
    connections for at most ``seconds``; returns latencies (s), statuses and errors."""
    latencies, statuses, errors = [], collections.Counter(), []
    counter = itertools.count()
    deadline = time.perf_counter() + seconds

    async def one_connection():
        connection = Connection(port)
        try:
            while time.perf_counter() < deadline:
                index = next(counter)
                if index >= requests:
                    return
                raw = make_request(index)
                started = time.perf_counter()
                try:
                    status, _headers, _body = await connection.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    connection.close()
                    errors.append(repr(error))
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
                if status not in expect:
                    errors.append(f"HTTP {status}")
        finally:
            connection.close()

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    server_before = server_cpu(server)
    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "latencies": sorted(latencies),
        "statuses": dict(statuses),
        "errors": errors,
        "client_cpu": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime),
        "server_cpu": server_cpu(server) - server_before,
    }


def server_cpu(master: subprocess.Popen | None) -> float:
    """CPU seconds (user + system) used so far by the gunicorn master's worker processes, from
    /proc: per request it says what the site costs whatever else the machine is doing."""
    if master is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master.pid:  # ppid
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def summary(name: str, result: dict) -> str:
    lat = result["latencies"]
    rate = result["requests"] / result["seconds"] if result["seconds"] else 0
    ms = [percentile(lat, f) * 1000 for f in (0.5, 0.9, 0.99)] + [lat[-1] * 1000 if lat else float("nan")]
    line = (
        f"{name:<22} {result['requests']:>7} req in {result['seconds']:5.1f} s = {rate:7.0f} req/s   "
        f"p50 {ms[0]:6.1f} ms  p90 {ms[1]:6.1f} ms  p99 {ms[2]:6.1f} ms  max {ms[3]:7.1f} ms   "
        f"errors {len(result['errors'])}   client CPU {result['client_cpu']:.1f} s"
    )
    if result.get("server_cpu") and result["requests"]:
        per_request = result["server_cpu"] / result["requests"] * 1000
        line += (
            f"\n{'':<22} gunicorn workers' CPU: {per_request:.2f} ms per request "
            f"= {1000 / per_request:.0f} req/s per idle core (database and Redis not counted)"
        )
    target = TARGETS.get(name.split()[0])
    if target and not name.endswith("(no cache)"):
        want_rate, want_p99 = target
        met = rate >= want_rate and (want_p99 is None or ms[2] < want_p99)
        line += f"\n{'':<22} target >= {want_rate} req/s" + (f", p99 < {want_p99} ms" if want_p99 else "")
        line += f": {'MET' if met else 'MISSED'}"
    if result["errors"]:
        line += f"\n{'':<22} first errors: {collections.Counter(result['errors']).most_common(3)}"
    return line


# --- The site -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(args, tmp: Path, port: int) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "EMAIL_", "TASKS_", "REDIS_", "ANYMAIL_", "MAILGUN_", "PAGE_CACHE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="newsletter_site.settings.production",
        SECRET_KEY="web-bench-only-secret-key",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        BASE_URL=f"http://127.0.0.1:{port}",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
        VAR_DIR=str(tmp),
        STATIC_ROOT=str(tmp / "static"),
        TASKS_URL="db://",
        REDIS_URL=args.redis_url,
        EMAIL_URL="outbox://",
        # The subscribe phase measures the POST itself, not the limiter's 429.
        SUBSCRIBE_RATE_PER_IP="100000000/h",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env["DATABASE_URL"] = create_postgres_database(args.postgres, args.pg_database)
    if args.conn_max_age is not None:
        env["DATABASE_CONN_MAX_AGE"] = str(args.conn_max_age)
    return env


def create_site(recipients: int, port: int) -> dict:
    """run.py's content (home, archive, one issue, a list of N), plus 11 more issues, a subscribe
    page with a double opt-in list, and the subscribe form on the home page."""
    from wagtail.models import Site

    from campaigns.models import NewsletterIssuePage
    from pages.models import SubscribePage
    from subscribers.models import MailingList

    issue, mailing_list, added, generate_seconds = create_content(recipients)
    archive = issue.get_parent().specific
    home = archive.get_parent().specific
    for n in range(1, 12):
        older = archive.add_child(
            instance=NewsletterIssuePage(
                title=f"Issue {42 - n}", slug=f"issue-{42 - n}", subject=f"Issue {42 - n}: more news", body=issue.body
            )
        )
        older.save_revision().publish()
    subscribe_page = home.add_child(instance=SubscribePage(title="Subscribe", slug="subscribe"))
    subscribe_page.save_revision().publish()
    weekly = MailingList.objects.create(name="Weekly", slug="weekly", is_public=True, double_opt_in=True)
    home.body = [("subscribe_form", {"heading": "Get the next issue", "page": subscribe_page})]
    home.save_revision().publish()
    Site.objects.update(hostname="127.0.0.1", port=port)
    return {
        "issue": issue,
        "list": mailing_list,
        "weekly": weekly,
        "added": added,
        "generate_seconds": generate_seconds,
        "paths": ["/", "/archive/", "/archive/?page=2", "/archive/feed/", "/archive/issue-42/", "/archive/issue-41/"],
    }


def start_gunicorn(env: dict, port: int, args, log: Path) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "newsletter_site.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(args.threads),
        "--no-control-socket",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError("gunicorn did not start within 60 s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def warm(port: int, paths: list[str]) -> None:
    connection = Connection(port)
    for path in paths:
        status, _headers, _body = await connection.request(get(path, port))
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
    connection.close()


async def csrf_pair(port: int) -> tuple[str, str]:
    """(cookie, token) from the subscribe page, as a browser gets them."""
    connection = Connection(port)
    _status, headers, body = await connection.request(get("/subscribe/", port))
    connection.close()
    cookie = next(c.split(";")[0] for c in headers.get("set-cookie", []) if c.startswith("csrftoken="))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"', body).group(1).decode()
    return cookie, token


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return f"{platform.node()}: {os.cpu_count()} CPUs {model}, Python {platform.python_version()}"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="broadsheet-web-bench-"))
    processes = []
    esp = None
    try:
        port = free_port()
        env = environment(args, tmp, port)
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        site = create_site(args.recipients, port)
        print(f"site: {len(site['paths'])} page URLs, {site['added']} subscribers ({site['generate_seconds']:.1f} s)")
        # Wagtail's own tasks from creating the pages (search index, references): drained first.
        drain = [sys.executable, "manage.py", "worker", "--batch"]
        subprocess.run(drain, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

        print(f"commit {code_version()}; {machine()}")
        print(f"gunicorn: {args.workers} workers x {args.threads} threads (gthread), {args.connections} connections")
        print(f"bounds per phase: {args.requests} requests or {args.seconds:.0f} s; load average before: {load()}")
        results = {}
        phases = args.phases.split(",")

        if "pages" in phases:
            paths = site["paths"]
            for label, cache_seconds in (("pages", "600"), ("pages (no cache)", "0")):
                if label.endswith("(no cache)") and args.no_reference:
                    continue
                log = tmp / f"gunicorn-{cache_seconds}.log"
                server = start_gunicorn({**env, "PAGE_CACHE_SECONDS": cache_seconds}, port, args, log)
                processes.append(server)
                asyncio.run(warm(port, paths))
                results[label] = asyncio.run(
                    drive(
                        port,
                        lambda i, paths=paths: get(paths[i % len(paths)], port),
                        expect={200},
                        requests=args.requests,
                        seconds=args.seconds if cache_seconds != "0" else args.seconds / 2,
                        connections=args.connections,
                        server=server,
                    )
                )
                print(summary(label, results[label]), flush=True)
                stop(server)
                processes.remove(server)

        server = start_gunicorn(env, port, args, tmp / "gunicorn.log")
        processes.append(server)

        if "subscribe" in phases:
            from django_tasks_db.models import DBTaskResult

            cookie, token = asyncio.run(csrf_pair(port))
            queued_before = DBTaskResult.objects.filter(task_path__endswith="send_confirmation").count()
            weekly = site["weekly"].pk
            run = time.strftime("%H%M%S")  # new addresses each run: Redis keeps the per-address limit

            def subscribe(i):
                body = urllib.parse.urlencode(
                    {"email": f"new{run}-{i}@bench.example", "name": "", "lists": weekly, "csrfmiddlewaretoken": token}
                )
                return post("/subscribe/", port, body, f"Cookie: {cookie}\r\n")

            result = asyncio.run(
                drive(
                    port,
                    subscribe,
                    expect={303},
                    requests=args.requests,
                    seconds=args.seconds,
                    connections=args.connections,
                    server=server,
                )
            )
            results["subscribe"] = result
            queued = DBTaskResult.objects.filter(task_path__endswith="send_confirmation").count() - queued_before
            outbox = tmp / "outbox"
            sent_inline = sum(1 for _ in outbox.rglob("*.eml")) if outbox.exists() else 0
            print(summary("subscribe", result), flush=True)
            accepted = result["statuses"].get(303, 0)
            print(
                f"{'':<22} confirmations queued as tasks: {queued} for {accepted} accepted POSTs; "
                f"sent inline: {sent_inline}" + ("" if queued == accepted and not sent_inline else "  <- WRONG")
            )

        if "unsubscribe" in phases:
            from campaigns.services import create_campaign, start_campaign
            from subscribers.models import Subscriber
            from subscribers.tokens import unsubscribe_token

            mailing_list = site["list"]
            campaign = None
            if args.campaign:
                esp, esp_port = start_server("mock_esp.py", args.recipients)
                sending_env = {
                    **env,
                    "EMAIL_URL": "anymail://mailgun",
                    "MAILGUN_API_KEY": "bench-key",
                    "ANYMAIL_API_URL": f"http://127.0.0.1:{esp_port}/v3",
                    "TRACKING_WEBHOOKS": "none",
                }
                campaign = create_campaign(site["issue"], [mailing_list])
                start_campaign(campaign.pk)
                worker = subprocess.Popen(
                    [sys.executable, "manage.py", "worker"],
                    cwd=ROOT,
                    env=sending_env,
                    stdout=(tmp / "worker.log").open("w"),
                    stderr=subprocess.STDOUT,
                )
                processes.append(worker)
                # Let it get going: the phase measures one-click while messages are leaving.
                deadline = time.time() + 60
                while esp_stats(esp_port)["messages"] == 0 and time.time() < deadline:
                    if worker.poll() is not None:
                        raise RuntimeError(f"the worker exited: {(tmp / 'worker.log').read_text()[-2000:]}")
                    time.sleep(0.5)
                sent_before = esp_stats(esp_port)["messages"]
            uids = list(
                Subscriber.objects.filter(subscriptions__list=mailing_list)
                .order_by("-pk")
                .values_list("uid", flat=True)[: args.requests]
            )
            campaign_id = campaign.pk if campaign else None
            tokens = [unsubscribe_token(uid, [mailing_list.pk], campaign_id) for uid in uids]
            paths = [f"/newsletter/unsubscribe/{token}/one-click/" for token in tokens]
            result = asyncio.run(
                drive(
                    port,
                    lambda i: post(paths[i], port, "List-Unsubscribe=One-Click"),
                    expect={200},
                    requests=len(paths),
                    seconds=args.seconds,
                    connections=args.connections,
                    server=server,
                )
            )
            results["unsubscribe"] = result
            print(summary("unsubscribe", result), flush=True)
            if campaign is not None:
                sent = esp_stats(esp_port)["messages"] - sent_before
                campaign.refresh_from_db()
                print(
                    f"{'':<22} meanwhile the campaign ({args.recipients} recipients) sent {sent} messages "
                    f"({sent / result['seconds']:.0f}/s); status {campaign.status}, {campaign.sent} sent so far"
                )
        print(f"load average after: {load()}")
        return 0
    finally:
        for process in reversed(processes):
            stop(process)
        if esp is not None:
            stop_server(esp)
        if not args.keep:
            drop_postgres_database(args.postgres, args.pg_database)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} and database {args.pg_database}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000, help="subscribers, and the campaign's size")
    parser.add_argument("--requests", type=int, default=20_000, help="at most this many requests per phase")
    parser.add_argument("--seconds", type=float, default=20, help="at most this long per phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--phases", default="pages,subscribe,unsubscribe")
    parser.add_argument("--no-campaign", dest="campaign", action="store_false", help="unsubscribe without a send")
    parser.add_argument("--no-reference", action="store_true", help="skip the uncached pages reference")
    parser.add_argument("--postgres", default=PG_SERVER_URL, help="server URL without database name")
    parser.add_argument("--pg-database", default="broadsheet_web_bench")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    parser.add_argument(
        "--conn-max-age", type=int, help="DATABASE_CONN_MAX_AGE for gunicorn (0: a connection per request)"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
