"""A loopback mock of Mailgun's messages API for benchmarking the anymail path.

anymail's Mailgun backend posts each (batch) message to ``{MAILGUN_API_URL}/{domain}/messages``
as a form (urlencoded, or multipart when there are attachments): one ``to`` field per recipient
and, for batch sends, a ``recipient-variables`` JSON object keyed by address. This server answers
like Mailgun (``200 {"id": "<...>", "message": "Queued. Thank you."}``), checks that every batch
recipient has its recipient-variables (otherwise Mailgun would show every address to everyone),
counts messages (API calls) and recipients, and keeps nothing else.

Point Broadsheet at it with ``EMAIL_URL=anymail://mailgun MAILGUN_API_KEY=anything
ANYMAIL_API_URL=http://127.0.0.1:PORT/v3``.

    GET  /_stats  -> {"messages": M, "recipients": R, "distinct": D, "duplicates": X, "untracked": U,
                      "bad_requests": B}
    POST /_reset  -> zeroes the counters

``--track N`` makes ``distinct``/``duplicates`` exact for recipients named ``anything<index>@...``
with 0 <= index < N, as in bench/smtp_sink.py. Prints ``{"port": P}`` once listening and the final
counts as JSON when stopped (SIGTERM/^C).
"""

import argparse
import json
import re
import resource
import signal
import sys
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

INDEX_RE = re.compile(r"(\d+)@")
ADDRESS_RE = re.compile(r"<([^>]+)>\s*$")


class Stats:
    def __init__(self, track: int):
        self.lock = threading.Lock()
        self.track = track
        self.reset()

    def reset(self):
        with self.lock:
            self.messages = self.recipients = self.untracked = self.bad_requests = 0
            self.seen = bytearray(self.track)

    def count(self, addresses: list[str]):
        with self.lock:
            self.messages += 1
            self.recipients += len(addresses)
            for address in addresses:
                match = INDEX_RE.search(address)
                index = int(match.group(1)) if match else -1
                if 0 <= index < self.track:
                    self.seen[index] = min(self.seen[index] + 1, 255)
                else:
                    self.untracked += 1

    def totals(self) -> dict:
        with self.lock:
            result = {
                "messages": self.messages,
                "recipients": self.recipients,
                "untracked": self.untracked,
                "bad_requests": self.bad_requests,
            }
            if self.track:
                result["distinct"] = self.track - self.seen.count(0)
                result["duplicates"] = self.recipients - self.untracked - result["distinct"]
            return result


def form_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """(name, value) pairs of an urlencoded or multipart/form-data body; file parts are skipped."""
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        fields = []
        for part in message.iter_parts():
            if part.get_filename() is None:
                fields.append((part.get_param("name", header="content-disposition"), part.get_content()))
        return fields
    return parse_qsl(body.decode(), keep_blank_values=True)


def addr_spec(value: str) -> str:
    match = ADDRESS_RE.search(value)
    return (match.group(1) if match else value).strip()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: anymail reuses one requests session per batch
    server: "MockESPServer"

    def log_message(self, format, *args):
        pass  # quiet: one line per API call would cost more than the call

    def _reply(self, status: int, payload: dict):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_stats":
            self._reply(200, self.server.stats.totals())
        else:
            self._reply(404, {"message": "Not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        stats = self.server.stats
        if self.path == "/_reset":
            stats.reset()
            self._reply(200, {"message": "reset"})
            return
        if not re.fullmatch(r"/v3/[^/]+/messages", self.path):
            self._reply(404, {"message": "Domain not found"})
            return
        if not self.headers.get("Authorization", "").startswith("Basic "):
            self._reply(401, {"message": "Forbidden"})
            return
        fields = form_fields(self.headers.get("Content-Type", ""), body)
        recipients = [addr_spec(value) for name, value in fields if name == "to"]
        variables = dict(fields).get("recipient-variables")
        problem = None
        if not recipients:
            problem = "'to' parameter is missing"
        elif len(recipients) > 1000:
            problem = "Too many recipients: the limit is 1000 per message"
        elif len(recipients) > 1:
            try:
                missing = set(recipients) - set(json.loads(variables or "{}"))
            except ValueError:
                missing = {"(invalid JSON)"}
            if missing:
                problem = f"recipient-variables missing for {len(missing)} recipients (batch would be one message)"
        if problem:
            with stats.lock:
                stats.bad_requests += 1
            self._reply(400, {"message": problem})
            return
        stats.count(recipients)
        message_id = f"<{time.time_ns()}.{stats.messages}@mock-esp.bench>"
        self._reply(200, {"id": message_id, "message": "Queued. Thank you."})


class MockESPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, track: int = 0):
        self.stats = Stats(track)
        super().__init__(address, Handler)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--track", type=int, default=0, help="detect duplicates among indexes 0..N-1")
    parser.add_argument("--stats-file", help="write the final counts here as JSON")
    args = parser.parse_args(argv)

    server = MockESPServer((args.host, args.port), track=args.track)
    # Blocked before any thread starts, so only sigwait() below receives them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    signal.sigwait(stop_signals)
    server.shutdown()
    totals = server.stats.totals()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    totals["esp_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    print(json.dumps(totals), flush=True)
    if args.stats_file:
        with open(args.stats_file, "w") as out:
            json.dump(totals, out)


if __name__ == "__main__":
    sys.exit(main())
