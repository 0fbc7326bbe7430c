"""Scenario 3: two workers; every 10th message fails on its first attempt."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

from herald_client import AsyncHerald, Herald, Pulled, Retry

from .conftest import until
from .server import HeraldServer

COUNT = 100


def make_subscription(h: Herald, topic: str) -> int:
    spec: Any = {"topic": topic, "mode": "pull", "min_backoff": "100ms", "ack_deadline": "10s"}
    sub = h.subscriptions.create(spec)
    h.publish_batch(topic, [{"n": n} for n in range(COUNT)])
    return sub["id"]


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.succeeded: Counter[int] = Counter()
        self.attempt_of: dict[int, int] = {}
        self.raised: set[int] = set()

    def handle(self, message: Pulled) -> None:
        n = message["message"]["data"]["n"]
        with self.lock:
            if n % 10 == 0 and message["attempt"] == 1:
                self.raised.add(n)
                if n % 20 == 0:
                    raise Retry(0)
                raise ValueError(f"first attempt of {n}")
            self.succeeded[n] += 1
            self.attempt_of[n] = message["attempt"]

    def check(self) -> None:
        assert sorted(self.succeeded) == list(range(COUNT))
        assert set(self.succeeded.values()) == {1}
        assert self.raised == set(range(0, COUNT, 10))
        for n, attempt in self.attempt_of.items():
            assert attempt == (2 if n % 10 == 0 else 1), (n, attempt)


def test_two_sync_workers(herald: Herald) -> None:
    sub = make_subscription(herald, "jobs")
    tally = Tally()
    workers = [
        herald.consume(sub, tally.handle, concurrency=2, max_in_flight=4, wait=1) for _ in range(2)
    ]
    until(lambda: len(tally.succeeded) == COUNT, timeout=30, what="every message")
    for worker in workers:
        worker.stop()
    for worker in workers:
        assert not worker.running
    tally.check()
    view = herald.subscriptions.get(sub)
    until(lambda: herald.subscriptions.get(sub).get("acked") == COUNT, what="all acked")
    assert view.get("dead_lettered") == 0


async def test_two_async_workers(server: HeraldServer) -> None:
    with Herald(server.url) as h:
        sub = make_subscription(h, "jobs")
    tally = Tally()

    async def handle(message: Pulled) -> None:
        await asyncio.sleep(0)
        tally.handle(message)

    async with AsyncHerald(server.url) as h:
        workers = [h.consume(sub, handle, concurrency=3, wait=1) for _ in range(2)]
        for _ in range(1500):
            if len(tally.succeeded) == COUNT:
                break
            await asyncio.sleep(0.02)
        for worker in workers:
            await worker.stop()
        for worker in workers:
            assert worker.done.done()
        tally.check()
        for _ in range(500):
            if (await h.subscriptions.get(sub)).get("acked") == COUNT:
                break
            await asyncio.sleep(0.02)
        assert (await h.subscriptions.get(sub)).get("acked") == COUNT


def test_slow_handler_lease_is_extended(herald: Herald) -> None:
    spec: Any = {"topic": "slow", "mode": "pull", "ack_deadline": "2s"}
    sub = herald.subscriptions.create(spec)["id"]
    herald.publish("slow", {"n": 1})
    attempts: list[int] = []
    release = threading.Event()

    def handle(message: Pulled) -> None:
        attempts.append(message["attempt"])
        release.wait(10)

    worker = herald.consume(sub, handle, wait=1)
    until(lambda: attempts == [1], what="first delivery")
    other: list[int] = []
    rival = herald.consume(sub, lambda m: other.append(m["attempt"]), wait=1)
    # Past two deadlines the lease is still held: nobody else got the message.
    threading.Timer(4.5, release.set).start()
    until(lambda: herald.subscriptions.get(sub).get("acked") == 1, timeout=15, what="ack")
    worker.stop()
    rival.stop()
    assert attempts == [1] and other == []


def test_paused_subscription_ends_consumer(herald: Herald) -> None:
    sub = herald.subscriptions.create({"topic": "p", "mode": "pull"})["id"]  # type: ignore[typeddict-unknown-key]
    herald.subscriptions.update(sub, {"paused": True})
    errors: list[BaseException] = []
    worker = herald.consume(sub, lambda m: None, wait=1, on_error=errors.append)
    worker.join(10, raise_error=False)
    assert not worker.running
    assert getattr(worker.error, "status", None) == 409
    assert errors and errors[0] is worker.error


def test_acks_do_not_wait_for_a_long_poll(herald: Herald) -> None:
    # A 20 s long poll is out when the handlers end: their acks go at once, and a
    # duration string is taken for ``wait``.
    sub = herald.subscriptions.create({"topic": "quick", "mode": "pull"})["id"]  # type: ignore[typeddict-unknown-key]
    herald.publish_batch("quick", [{"n": n} for n in range(3)])
    handled: list[int] = []
    worker = herald.consume(
        sub, lambda m: handled.append(m["attempt"]), max_in_flight=8, wait="20s"
    )
    until(lambda: len(handled) == 3, what="three handled")
    until(
        lambda: herald.subscriptions.get(sub).get("acked") == 3, timeout=5, what="acks within 5 s"
    )
    assert worker.running, "still pulling: the acks did not ride on a pull's end"
    worker.stop(timeout=30)


async def test_async_acks_do_not_wait_for_a_long_poll(server: HeraldServer) -> None:
    async with AsyncHerald(server.url) as h:
        sub = (await h.subscriptions.create({"topic": "quick", "mode": "pull"}))["id"]  # type: ignore[typeddict-unknown-key]
        await h.publish_batch("quick", [{"n": n} for n in range(3)])
        handled: list[int] = []

        async def handle(message: Pulled) -> None:
            handled.append(message["attempt"])

        worker = h.consume(sub, handle, max_in_flight=8, wait="20s")
        for _ in range(250):  # 5 s
            if (await h.subscriptions.get(sub)).get("acked") == 3:
                break
            await asyncio.sleep(0.02)
        assert (await h.subscriptions.get(sub)).get("acked") == 3, "acks within 5 s"
        assert not worker.done.done()
        await worker.stop()


def test_stop_gives_back_what_was_not_started(herald: Herald) -> None:
    spec: Any = {"topic": "give", "mode": "pull", "ack_deadline": "60s"}
    sub = herald.subscriptions.create(spec)["id"]
    herald.publish_batch("give", [{"n": n} for n in range(5)])
    started: list[int] = []
    release = threading.Event()

    def handle(message: Pulled) -> None:
        started.append(message["message"]["data"]["n"])
        release.wait(10)

    worker = herald.consume(sub, handle, concurrency=1, max_in_flight=5, wait=1)
    until(lambda: herald.subscriptions.get(sub).get("in_flight") == 5, what="five leased")
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    until(worker._stopping.is_set, what="stop() under way")  # before the handler ends
    release.set()
    stopper.join(30)
    assert started == [0], "only the running handler ran"
    view = herald.subscriptions.get(sub)
    assert view.get("acked") == 1
    # The other four are back at once (a nack with no delay), not after the 60 s lease.
    again = herald.subscriptions.pull(sub, {"max_messages": 10, "wait": "2s"})
    assert sorted(m["message"]["data"]["n"] for m in again["messages"]) == [1, 2, 3, 4]  # type: ignore[index]
