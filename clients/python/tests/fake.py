"""A tiny threading HTTP server with scripted answers, recording request times."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = tuple[int, dict[str, str], bytes]


class Recorder:
    def __init__(self, answer: Callable[[BaseHTTPRequestHandler, int], Answer]) -> None:
        self.answer = answer
        self.times: list[float] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()


@contextmanager
def fake_server(
    answer: Callable[[BaseHTTPRequestHandler, int], Answer],
) -> Iterator[tuple[str, Recorder]]:
    """Serve ``answer(handler, n)`` for the n-th request (from 0)."""
    rec = Recorder(answer)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            with rec.lock:
                n = len(rec.times)
                rec.times.append(time.monotonic())
                rec.paths.append(self.path)
                rec.headers.append({k.lower(): v for k, v in self.headers.items()})
            status, headers, body = rec.answer(self, n)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        do_GET = do_POST = _any

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", rec
    finally:
        httpd.shutdown()
        httpd.server_close()


def problem(status: int, retry_after: str | None = None) -> Answer:
    body = json.dumps(
        {
            "type": "urn:herald:problem:overloaded",
            "title": "Busy",
            "status": status,
            "detail": "busy",
        }
    ).encode()
    headers = {"content-type": "application/problem+json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return status, headers, body


def sse(body: str, start_after: str = "0") -> Answer:
    headers = {"content-type": "text/event-stream", "herald-start-after": start_after}
    return 200, headers, body.encode()
