from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from herald_client import Herald

from .server import HeraldServer, sqlite_url

JWT_SECRET = "a-test-secret-that-is-at-least-32-bytes-long"


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., HeraldServer]]:
    servers: list[HeraldServer] = []

    def make(*flags: str, database_url: str | None = None) -> HeraldServer:
        server = HeraldServer(database_url or sqlite_url(tmp_path), list(flags))
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., HeraldServer]) -> HeraldServer:
    return make_server()


@pytest.fixture
def herald(server: HeraldServer) -> Iterator[Herald]:
    with Herald(server.url) as client:
        yield client


def mint(secret: str, sub: str, scopes: dict[str, object], ttl: int = 3600) -> str:
    """An HS256 JWT, valid for ``ttl`` seconds (an hour)."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = {"sub": sub, "exp": int(time.time()) + ttl, "herald": scopes}
    head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + b64(sig)


def until(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
