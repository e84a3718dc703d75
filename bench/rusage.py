"""Run a command and report its own CPU time and peak memory as the kernel counts them.

    python bench/rusage.py LOGFILE -- command args...

prints ``{"pid": P}`` when the command has started, then ``{"exit_code": ..., "user_seconds": ...,
"system_seconds": ..., "max_rss_kb": ...}`` from ``os.wait4`` when it ends; the command's own
output goes to LOGFILE.

Why a separate small process: Linux carries a process's peak RSS (``ru_maxrss``) across fork and
exec, so a worker forked straight from bench/run.py (which has Django loaded, ~170 MB) would report
at least the driver's size. Forked from this ~10 MB process, the figure is the command's own.
"""

import json
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    log, separator, *command = argv
    if separator != "--" or not command:
        print(__doc__, file=sys.stderr)
        return 2
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    print(json.dumps({"pid": process.pid}), flush=True)
    _, status, usage = os.wait4(process.pid, 0)
    report = {
        "exit_code": os.waitstatus_to_exitcode(status),
        "user_seconds": usage.ru_utime,
        "system_seconds": usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
