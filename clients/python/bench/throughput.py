"""Throughput of the Python client against a running herald; prints JSON.

    python bench/throughput.py --url http://127.0.0.1:8080 [--messages 100000]

- ``subscribe_saturated``: N messages pre-published with ``publish_batch``, then
  read from ``earliest`` with ``AsyncHerald`` (SSE and WebSocket): msgs/s.
- ``subscribe_offered_1000``: messages published at 1,000 msg/s while a live
  subscription reads them: the delivered rate and the lag at the end.
- ``consume_drain``: N messages drained by ``consume`` with ``max_in_flight`` 8:
  acked msgs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from herald_client import AsyncHerald, Pulled

BATCH = 1000


async def prepublish(h: AsyncHerald, topic: str, count: int) -> None:
    for start in range(0, count, BATCH):
        n = min(BATCH, count - start)
        await h.publish_batch(topic, [{"n": start + i} for i in range(n)])


async def read_all(h: AsyncHerald, topic: str, count: int, transport: Any) -> float:
    started = time.perf_counter()
    seen = 0
    async for _ in h.subscribe(topic, from_="earliest", transport=transport):
        seen += 1
        if seen == count:
            break
    return count / (time.perf_counter() - started)


async def saturated(h: AsyncHerald, count: int) -> dict[str, Any]:
    topic = f"bench.sat.{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    await prepublish(h, topic, count)
    publish_rate = count / (time.perf_counter() - started)
    out: dict[str, Any] = {"messages": count, "publish_batch_msgs_per_s": round(publish_rate)}
    for transport in ("sse", "ws"):
        out[f"{transport}_msgs_per_s"] = round(await read_all(h, topic, count, transport))
    return out


async def offered(h: AsyncHerald, rate: int, seconds: float) -> dict[str, Any]:
    topic = f"bench.live.{uuid.uuid4().hex[:8]}"
    total = int(rate * seconds)
    sub = h.subscribe(topic)
    received: list[float] = []

    async def reader() -> None:
        async for _ in sub:
            received.append(time.perf_counter())
            if len(received) == total:
                return

    task = asyncio.ensure_future(reader())
    while sub.state != "connected":
        await asyncio.sleep(0.01)
    per_tick = max(1, rate // 20)  # a batch every 50 ms, each sent on schedule
    started = time.perf_counter()
    sends = []
    for i in range(0, total, per_tick):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        items = [{"n": i + k} for k in range(min(per_tick, total - i))]
        sends.append(asyncio.ensure_future(h.publish_batch(topic, items)))
    await asyncio.gather(*sends)
    published = time.perf_counter()
    await asyncio.wait_for(task, 60)
    return {
        "offered_msgs_per_s": rate,
        "messages": total,
        "published_msgs_per_s": round(total / (published - started)),
        "delivered_msgs_per_s": round(total / (received[-1] - started)),
        "last_delivery_after_last_publish_answer_ms": round((received[-1] - published) * 1000, 1),
    }


async def drain(h: AsyncHerald, count: int) -> dict[str, Any]:
    topic = f"bench.pull.{uuid.uuid4().hex[:8]}"
    sub = await h.subscriptions.create({"topic": topic, "mode": "pull"})
    await prepublish(h, topic, count)
    done = asyncio.Event()
    acked = 0

    async def handle(message: Pulled) -> None:
        nonlocal acked
        acked += 1
        if acked == count:
            done.set()

    started = time.perf_counter()
    consumer = h.consume(sub["id"], handle, concurrency=8, max_in_flight=8, wait=1)
    await asyncio.wait_for(done.wait(), 600)
    await consumer.stop()
    elapsed = time.perf_counter() - started
    return {"messages": count, "max_in_flight": 8, "acked_msgs_per_s": round(count / elapsed)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--offered-seconds", type=float, default=5.0)
    args = parser.parse_args()
    async with AsyncHerald(args.url, token=args.token) as h:
        result = {
            "subscribe_saturated": await saturated(h, args.messages),
            "subscribe_offered_1000": await offered(h, 1000, args.offered_seconds),
            "consume_drain": await drain(h, args.messages),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
