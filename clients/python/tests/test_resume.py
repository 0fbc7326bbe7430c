"""Scenarios 1 and 2: exact resume across restarts, and before the first message."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from herald_client import AsyncHerald, Backoff, Herald, HeraldError

from .conftest import until
from .server import HeraldServer

TOTAL = 2000
BATCH = 20


def publish_with_restarts(server: HeraldServer, topic: str, seen: Callable[[], int]) -> list[int]:
    """Publish TOTAL messages in idempotent batches, restarting herald three times."""
    ids: list[int] = []
    restarts = {TOTAL // 4, TOTAL // 2, 3 * TOTAL // 4}
    with Herald(server.url, timeout=10) as pub:
        for start in range(0, TOTAL, BATCH):
            if start in restarts:
                until(lambda: seen() >= len(ids) // 2, timeout=60, what="subscriber progress")
                server.restart()
            items = [{"n": n} for n in range(start, start + BATCH)]
            ids.extend(publish_retrying(pub, topic, items, f"b{start}"))
    return ids


def publish_retrying(pub: Herald, topic: str, items: list[Any], key: str) -> list[int]:
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = pub.publish_batch(topic, items, idempotency_key=key)
            return [m["id"] for m in answer["messages"]]
        except (httpx.TransportError, HeraldError) as error:
            if time.monotonic() > deadline:
                raise
            if isinstance(error, HeraldError) and error.status < 500 and error.status != 409:
                raise
            time.sleep(0.05)


def fast_backoff() -> Backoff:
    return Backoff(random=lambda: 0.2)


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_resume_across_restarts_sync(server: HeraldServer, transport: Any) -> None:
    got: list[int] = []
    sub = Herald(server.url).subscribe("orders", transport=transport, backoff=fast_backoff())

    def read() -> None:
        for env in sub:
            got.append(env["id"])
            if len(got) >= TOTAL:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    until(lambda: sub.state == "connected", what="connected")
    ids = publish_with_restarts(server, "orders", lambda: len(got))
    until(lambda: len(got) >= TOTAL or not reader.is_alive(), timeout=60, what="all messages")
    sub.close()
    assert got == ids
    assert len(set(got)) == TOTAL


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_resume_across_restarts_async(server: HeraldServer, transport: Any) -> None:
    got: list[int] = []
    async with AsyncHerald(server.url) as h:
        sub = h.subscribe("orders", transport=transport, from_=None, backoff=fast_backoff())

        async def read() -> None:
            async for env in sub:
                got.append(env["id"])
                if len(got) >= TOTAL:
                    return

        task = asyncio.ensure_future(read())
        while sub.state != "connected":
            await asyncio.sleep(0.02)
        ids = await asyncio.to_thread(publish_with_restarts, server, "orders", lambda: len(got))
        await asyncio.wait_for(task, 60)
    assert got == ids


def resume_before_first(server: HeraldServer, transport: Any) -> None:
    """The stream drops before any message; what is published meanwhile arrives."""
    release = threading.Event()
    states: list[str] = []
    backoff = Backoff(random=lambda: 0.0, sleep=lambda d: release.wait(30))
    sub = Herald(server.url).subscribe(
        "live", transport=transport, backoff=backoff, on_state=lambda s, e: states.append(s)
    )
    got: list[int] = []

    def read() -> None:
        for env in sub:
            got.append(env["id"])
            if len(got) == 3:
                return

    with Herald(server.url) as pub:
        pub.publish("live", "before the subscription")
        threading.Thread(target=read, daemon=True).start()
        until(lambda: sub.state == "connected", what="connected")
        server.restart()
        until(lambda: "disconnected" in states, what="disconnected")
        ids = [pub.publish("live", f"m{n}")["id"] for n in range(3)]
        release.set()
        until(lambda: len(got) == 3, what="three messages")
    sub.close()
    assert got == ids


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_resume_before_first_message(server: HeraldServer, transport: Any) -> None:
    resume_before_first(server, transport)


POSTGRES = os.environ.get("HERALD_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> str:
    """A fresh database on the server named by HERALD_TEST_POSTGRES_URL."""
    assert POSTGRES is not None
    base, _, _ = POSTGRES.rpartition("/")
    name = f"herald_py_{uuid.uuid4().hex[:12]}"
    subprocess.run(
        ["psql", f"{base}/postgres", "-v", "ON_ERROR_STOP=1", "-c", f"create database {name}"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return f"{base}/{name}"


@pytest.mark.skipif(POSTGRES is None, reason="HERALD_TEST_POSTGRES_URL is not set")
@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_resume_across_restarts_postgres(
    make_server: Callable[..., HeraldServer], postgres_url: str, transport: Any
) -> None:
    test_resume_across_restarts_sync(make_server(database_url=postgres_url), transport)
