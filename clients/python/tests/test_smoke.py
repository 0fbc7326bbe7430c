from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from herald_client import AsyncHerald, Herald

from .conftest import until
from .server import HeraldServer


def test_publish_and_subscribe_sync(herald: Herald) -> None:
    ack = herald.publish("orders", {"total": 1})
    assert ack["seq"] == 1
    text = herald.publish("orders", "hello")
    batch = herald.publish_batch("orders", [{"n": 1}, {"n": 2}])
    assert batch["count"] == 2
    sub = herald.subscribe("orders", from_="earliest")
    got = []
    for env in sub:
        got.append(env)
        if len(got) == 4:
            break
    assert [g["id"] for g in got] == [ack["id"], text["id"], *[m["id"] for m in batch["messages"]]]
    assert got[1]["data"] == "hello"
    assert sub.state == "closed"
    assert herald.topics.get("orders")["name"] == "orders"


async def test_publish_and_subscribe_async(server: HeraldServer) -> None:
    async with AsyncHerald(server.url) as h:
        acks = await h.publish_batch("a", list(range(5)))
        for transport in ("sse", "ws"):
            sub = h.subscribe(["a"], from_="earliest", transport=transport)  # type: ignore[arg-type]
            ids = []
            async for env in sub:
                ids.append(env["id"])
                if len(ids) == 5:
                    break
            assert ids == [m["id"] for m in acks["messages"]]
            for _ in range(100):  # break closes it (the generator's aclose is scheduled)
                if sub.state == "closed":
                    break
                await asyncio.sleep(0.01)
            assert sub.state == "closed"


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_close_from_another_thread_ends_a_blocked_read(herald: Herald, transport: Any) -> None:
    sub = herald.subscribe("quiet", transport=transport)
    reader = threading.Thread(target=lambda: list(sub), daemon=True)
    reader.start()
    until(lambda: sub.state == "connected", what="connected")
    sub.close()
    reader.join(2)
    assert not reader.is_alive() and sub.state == "closed"


def test_close_while_waiting_to_reconnect() -> None:
    sub = Herald("http://127.0.0.1:1").subscribe("x")
    reader = threading.Thread(target=lambda: list(sub), daemon=True)
    reader.start()
    until(lambda: sub.state == "disconnected", what="disconnected")
    sub.close()
    reader.join(2)
    assert not reader.is_alive()


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_async_close_from_another_task(server: HeraldServer, transport: Any) -> None:
    async with AsyncHerald(server.url) as h:
        sub = h.subscribe("quiet", transport=transport)
        reader = asyncio.ensure_future(sub.__anext__())
        for _ in range(500):
            if sub.state == "connected":
                break
            await asyncio.sleep(0.01)
        await sub.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 2)
        assert sub.state == "closed"
