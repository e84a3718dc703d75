"""A loopback SMTP sink for benchmarks: accepts every message, counts it, throws it away.

A bare asyncio protocol (no aiosmtpd, no parsing of the message) so the sink costs far less per
message than any client, and optionally several pre-forked processes sharing one listening
socket. It speaks what smtplib and Django's SMTP backend use (EHLO/HELO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT, pipelined or not) plus two private commands for the benchmark driver:

    XCOUNT   -> 250 {"messages": M, "recipients": R, "bytes": B, "distinct": D, "duplicates": X,
                    "untracked": U}
    XRESET   -> 250 zeroes the counters

``distinct``/``duplicates`` are exact when ``--track N`` is given and recipients look like
``anything<index>@domain`` with 0 <= index < N (bench/generate_subscribers.py makes them so):
each index has a byte in shared memory, so a recipient delivered twice is caught even when the
two copies went through different sink processes. Other addresses count as ``untracked``.

    .venv/bin/python bench/smtp_sink.py --port 2525 --processes 2 --track 100000

prints ``{"port": P}`` once it listens and the final counts as JSON when stopped (SIGTERM/^C).
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import resource
import signal
import socket
import sys

EHLO_REPLY = b"250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 104857600\r\n"
# --no-pipelining: the same without the PIPELINING line (clients then wait for every reply).
EHLO_REPLY_SEQUENTIAL = EHLO_REPLY.replace(b"250-PIPELINING\r\n", b"")
INDEX_RE = re.compile(rb"(\d+)@")
END_OF_DATA = b"\r\n.\r\n"


class Counters:
    """Counters in shared memory: one slot per process (no locks), one byte per tracked index."""

    def __init__(self, processes: int, track: int):
        self.slots = multiprocessing.RawArray("q", processes * 4)  # messages, recipients, untracked, bytes
        self.seen = multiprocessing.RawArray("B", track) if track else None
        self.track = track

    def totals(self) -> dict:
        slots = list(self.slots)
        result = {
            "messages": sum(slots[0::4]),
            "recipients": sum(slots[1::4]),
            "untracked": sum(slots[2::4]),
            "bytes": sum(slots[3::4]),
        }
        if self.seen is not None:
            seen = bytes(self.seen)
            distinct = self.track - seen.count(0)
            result["distinct"] = distinct
            result["duplicates"] = result["recipients"] - result["untracked"] - distinct
        return result

    def reset(self):
        for index in range(len(self.slots)):
            self.slots[index] = 0
        if self.seen is not None:
            self.seen[:] = bytes(self.track)


class SinkProtocol(asyncio.Protocol):
    def __init__(self, counters: Counters, slot: int, ehlo_reply: bytes = EHLO_REPLY):
        self.counters = counters
        self.ehlo_reply = ehlo_reply
        self.base = slot * 4
        self.buffer = b""
        self.in_data = False
        self.tail = b""
        self.pending_recipients: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"220 sink.bench ESMTP\r\n")

    def data_received(self, data: bytes):
        replies = []
        while data:
            data = self._data_chunk(data, replies) if self.in_data else self._command_chunk(data, replies)
        if replies:
            self.transport.write(b"".join(replies))

    def _data_chunk(self, data: bytes, replies: list) -> bytes:
        # Only the last 4 bytes of what came before matter for finding the terminator.
        window = self.tail + data
        end = window.find(END_OF_DATA)
        if end < 0:
            self.counters.slots[self.base + 3] += len(data)
            self.tail = window[-4:]
            return b""
        # Message size: the data up to and including its final CRLF.
        self.counters.slots[self.base + 3] += end + 2 - len(self.tail)
        self.in_data = False
        self._count_message()
        replies.append(b"250 2.0.0 Ok: queued\r\n")
        return window[end + len(END_OF_DATA) :]

    def _command_chunk(self, data: bytes, replies: list) -> bytes:
        self.buffer += data
        while not self.in_data:
            newline = self.buffer.find(b"\n")
            if newline < 0:
                return b""
            line, self.buffer = self.buffer[:newline].rstrip(b"\r"), self.buffer[newline + 1 :]
            self._command(line, replies)
        rest, self.buffer = self.buffer, b""
        return rest

    def _command(self, line: bytes, replies: list):
        verb = line[:4].upper()
        if verb == b"RCPT":
            self.pending_recipients.append(line)
            replies.append(b"250 2.1.5 Ok\r\n")
        elif verb == b"MAIL":
            self.pending_recipients = []
            replies.append(b"250 2.1.0 Ok\r\n")
        elif verb == b"DATA":
            self.in_data = True
            # The CRLF that ended the DATA line lets an empty message end with ".\r\n" at once.
            self.tail = b"\r\n"
            replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"EHLO":
            replies.append(self.ehlo_reply)
        elif verb in (b"HELO", b"NOOP"):
            replies.append(b"250 Ok\r\n")
        elif verb == b"RSET":
            self.pending_recipients = []
            replies.append(b"250 Ok\r\n")
        elif verb == b"QUIT":
            replies.append(b"221 Bye\r\n")
            self.transport.write(b"".join(replies))
            replies.clear()
            self.transport.close()
        elif line.upper() == b"XCOUNT":
            replies.append(b"250 " + json.dumps(self.counters.totals()).encode() + b"\r\n")
        elif line.upper() == b"XRESET":
            self.counters.reset()
            replies.append(b"250 Ok\r\n")
        else:
            replies.append(b"502 Command not implemented\r\n")

    def _count_message(self):
        slots, base, seen, track = self.counters.slots, self.base, self.counters.seen, self.counters.track
        slots[base] += 1
        slots[base + 1] += len(self.pending_recipients)
        for line in self.pending_recipients:
            match = INDEX_RE.search(line) if seen is not None else None
            index = int(match.group(1)) if match else -1
            if 0 <= index < track:
                if seen[index] < 255:
                    seen[index] += 1
            else:
                slots[base + 2] += 1
        self.pending_recipients = []


def _serve(sock: socket.socket, counters: Counters, slot: int, ehlo_reply: bytes = EHLO_REPLY):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent reports and stops us

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SinkProtocol(counters, slot, ehlo_reply), sock=sock)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def query(host: str, port: int, command: str = "XCOUNT") -> dict | None:
    """Ask a running sink for its totals (``XCOUNT``) or to zero them (``XRESET``)."""
    with socket.create_connection((host, port), timeout=10) as sock:
        stream = sock.makefile("rb")
        stream.readline()  # greeting
        sock.sendall(command.encode() + b"\r\n")
        reply = stream.readline().decode()
        sock.sendall(b"QUIT\r\n")
    if not reply.startswith("250"):
        raise RuntimeError(f"sink answered {reply!r}")
    return json.loads(reply[4:]) if command == "XCOUNT" else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--track", type=int, default=0, help="detect duplicates among indexes 0..N-1")
    parser.add_argument("--no-pipelining", action="store_true", help="do not advertise PIPELINING")
    parser.add_argument("--stats-file", help="write the final counts here as JSON")
    args = parser.parse_args(argv)

    sock = socket.create_server((args.host, args.port), backlog=512)
    counters = Counters(args.processes, args.track)
    ehlo_reply = EHLO_REPLY_SEQUENTIAL if args.no_pipelining else EHLO_REPLY
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_serve, args=(sock, counters, slot, ehlo_reply), daemon=True)
        for slot in range(args.processes)
    ]
    for child in children:
        child.start()
    print(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}), flush=True)

    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    signal.sigwait(stop_signals)
    for child in children:
        child.terminate()
        child.join()
    totals = counters.totals()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    totals["sink_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    print(json.dumps(totals), flush=True)
    if args.stats_file:
        with open(args.stats_file, "w") as out:
            json.dump(totals, out)


if __name__ == "__main__":
    sys.exit(main())
