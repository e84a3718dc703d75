"""The reference the engine is measured against: raw smtplib, one pre-built message, one connection.

Sends the bytes of ``--message`` ``--count`` times (a different envelope recipient each time,
``sub<i>@bench.example``, so the sink can check for losses) over ONE SMTP connection, and
prints JSON with the wall time. bench/run.py runs it as a child process and reads its CPU time
and peak memory from the kernel (wait4), exactly as it does for the worker.
"""

import argparse
import json
import smtplib
import sys
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--message", required=True, help="file with the message bytes (CRLF line ends)")
    parser.add_argument("--sender", default="news@bench.example")
    args = parser.parse_args(argv)

    with open(args.message, "rb") as source:
        message = source.read()
    started = time.perf_counter()
    with smtplib.SMTP(args.host, args.port, timeout=30) as client:
        for index in range(args.count):
            client.sendmail(args.sender, [f"sub{index}@bench.example"], message)
    print(json.dumps({"messages": args.count, "wall_seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    sys.exit(main())
