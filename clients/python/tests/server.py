"""Start a real herald on port 0 with a fresh database, restart it on the same port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

HERALD_BIN = os.environ.get("HERALD_BIN", "/tmp/herald-bin/herald")
LISTENING = re.compile(r"listening on (https?://[0-9.:]+)")


class HeraldServer:
    """One herald process (and its restarts) over one database."""

    def __init__(self, database_url: str, flags: list[str] | None = None) -> None:
        self.database_url = database_url
        self.flags = flags or []
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log: list[str] = []

    def start(self, listen: str = "127.0.0.1:0") -> str:
        """Start herald and wait for its ``listening on`` line."""
        cmd = [HERALD_BIN, "--listen", listen, "--database-url", self.database_url]
        env = dict(os.environ, HERALD_LOG_FORMAT="json")
        self.proc = subprocess.Popen(
            [*cmd, *self.flags], stderr=subprocess.PIPE, text=True, env=env
        )
        found = threading.Event()
        threading.Thread(target=self._read, args=(self.proc, found), daemon=True).start()
        if not found.wait(30):
            self.stop()
            raise RuntimeError("herald did not start:\n" + "\n".join(self.log[-20:]))
        return self.url

    def _read(self, proc: subprocess.Popen[str], found: threading.Event) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line.rstrip())
            match = LISTENING.search(line)
            if match and not found.is_set():
                self.url = match.group(1)
                found.set()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> str:
        """Stop, then start again on the same port and database."""
        port = self.port
        self.stop()
        deadline = time.monotonic() + 15
        while True:
            try:
                return self.start(f"127.0.0.1:{port}")
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise


def sqlite_url(tmp: Path) -> str:
    return f"sqlite://{tmp}/herald.db"
