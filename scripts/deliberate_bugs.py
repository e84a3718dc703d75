"""The deliberate bugs of issue 10: apply each to the engine or the ledger, run the sending tests,
report KILLED (some test failed) or SURVIVED. Files are restored after each run; do not edit the
tree while it runs. Usage: .venv/bin/python scripts/deliberate_bugs.py [first mutant index]"""

import os
import pathlib
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parents[1]
MUTANTS = [
    (
        "claim without skip_locked",
        "campaigns/models/campaign.py",
        "select_for_update(skip_locked=True)",
        "select_for_update()",
    ),
    ("claim without any lock", "campaigns/models/campaign.py", ".select_for_update(skip_locked=True)", ""),
    (
        "cancel puts claimed rows back",
        "campaigns/sending/engine.py",
        "        if status == Campaign.Status.CANCELLED:\n            count = rows.skip",
        "        if False:\n            count = rows.skip",
    ),
    ("backoff stops growing", "campaigns/sending/engine.py", "base * 2 ** max(attempts - 1, 0)", "base"),
    (
        "sending_at not strictly increasing",
        "campaigns/sending/engine.py",
        "if self.last_sending_at is not None and now <= self.last_sending_at:",
        "if False:",
    ),
    (
        "recovery without its re-check",
        "campaigns/models/campaign.py",
        "if not touched or not is_dead(worker_id, max(touched)):",
        "if not touched:",
    ),
    (
        "same-host pid check dropped",
        "campaigns/sending/engine.py",
        "if worker.hostname == socket.gethostname()[:255] and not process_alive(worker.pid):",
        "if False:",
    ),
    (
        "LRU forgets recency",
        "campaigns/sending/engine.py",
        "        self._data.move_to_end(key)\n        return self._data[key]",
        "        return self._data[key]",
    ),
    (
        "marker ignores who holds the row",
        "campaigns/models/campaign.py",
        "            return cursor.rowcount == 1\n\n    def mark_sent_with",
        "            return True\n\n    def mark_sent_with",
    ),
    (
        "relay failure not recorded once per outage",
        "campaigns/sending/engine.py",
        "if campaign.next_try_at is not None and campaign.next_try_at > now:\n            return",
        "if False:\n            return",
    ),
]
TESTS = [
    "campaigns/tests/test_ledger.py",
    "campaigns/tests/test_sending.py",
    "campaigns/tests/test_relay_faults.py",
    "campaigns/tests/test_recipient_faults.py",
]
for name, path, old, new in MUTANTS[int(sys.argv[1]) if len(sys.argv) > 1 else 0 :]:
    file = root / path
    original = file.read_text()
    assert original.count(old) >= 1, (name, old)
    file.write_text(original.replace(old, new, 1))
    try:
        run = subprocess.run(  # noqa: S603 - our own pytest, fixed arguments
            [str(root / ".venv/bin/pytest"), *TESTS, "-x", "-q", "-p", "no:randomly"],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "newsletter_site.settings.test"},
        )
        failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
        detail = failed[0] if failed else run.stdout.strip().splitlines()[-1]
        print(f"{'KILLED ' if run.returncode else 'SURVIVED'} {name}: {detail}", flush=True)
    finally:
        file.write_text(original)
