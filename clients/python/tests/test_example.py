"""examples/worker.py runs non-interactively against a real herald."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from herald_client import Herald

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "worker.py"


def test_worker_example(herald: Herald) -> None:
    sub = herald.subscriptions.create({"topic": "jobs.*", "mode": "pull"})
    herald.publish_batch("jobs.resize", [{"n": n} for n in range(10)])
    cmd = [sys.executable, str(EXAMPLE), "--url", herald.url, "--subscription", str(sub["id"])]
    done = subprocess.run(
        [*cmd, "--max-messages", "10"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("job ") == 10
    assert "handled 10 messages" in done.stdout
    assert herald.subscriptions.get(sub["id"]).get("acked") == 10
