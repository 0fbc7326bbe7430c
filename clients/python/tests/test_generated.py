"""Scenario 8: the committed generated types match openapi/openapi.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_types.py"


def test_generated_types_are_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_check_fails_when_the_spec_changes(tmp_path: Path) -> None:
    spec = json.loads((ROOT.parent.parent / "openapi" / "openapi.json").read_text())
    spec["components"]["schemas"]["Ack"]["properties"]["extra"] = {"type": "string"}
    changed = tmp_path / "openapi.json"
    changed.write_text(json.dumps(spec))
    cmd = [sys.executable, str(SCRIPT), "--check", "--spec", str(changed)]
    done = subprocess.run(cmd, capture_output=True)
    assert done.returncode == 1


def test_generated_module_shapes() -> None:
    from herald_client import _generated as g

    assert g.Envelope.__required_keys__ >= {"id", "topic", "seq", "time", "event", "data"}
    assert "key" in g.Envelope.__optional_keys__
    assert "backlog" in g.SubscriptionView.__optional_keys__  # from allOf
