"""Scenario 5: backoff bounds against a server that answers 503."""

from __future__ import annotations

import asyncio

import pytest

from herald_client import AsyncHerald, Backoff, Herald, HeraldError

from .conftest import until
from .fake import fake_server, problem


def test_delays_follow_full_jitter_bounds() -> None:
    backoff = Backoff(random=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    low = Backoff(random=lambda: 0.0)
    assert [low.next_delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert Backoff(random=lambda: 0.0).next_delay(retry_after=7) == 7


def test_delays_stay_at_the_cap_after_many_failures() -> None:
    # Hours of failures in a row: the bound stays at the cap (2.0 ** 1024 overflows).
    backoff = Backoff(random=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(5000)]
    assert max(delays) == 30.0
    assert delays[-1] == 30.0


def test_healthy_minute_resets_attempts() -> None:
    now = [0.0]
    backoff = Backoff(random=lambda: 1.0, clock=lambda: now[0])
    for _ in range(4):
        backoff.next_delay()
    backoff.connected()
    now[0] = 30.0
    backoff.disconnected()
    assert backoff.next_delay() == 8.0  # 30 s up is not healthy
    backoff.connected()
    now[0] = 95.0
    backoff.disconnected()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize("transport", ["sse"])
def test_subscription_retry_after_is_honoured(transport: str) -> None:
    with fake_server(lambda h, n: problem(503, "3")) as (url, rec):
        delays: list[float] = []
        sub = None

        def sleep(delay: float) -> None:
            delays.append(delay)
            if len(delays) == 6 and sub is not None:
                sub.close()

        backoff = Backoff(random=lambda: 1.0, sleep=sleep)
        sub = Herald(url).subscribe("t", backoff=backoff)
        assert list(sub) == []
        assert delays == [3.0, 3.0, 3.0, 4.0, 8.0, 16.0]
        assert len(rec.times) == 6


def test_subscription_real_time_attempts_are_bounded() -> None:
    """With real sleeps: requests are spaced by at least the jittered delays."""
    with fake_server(lambda h, n: problem(503)) as (url, rec):
        sub = Herald(url).subscribe("t", backoff=Backoff(random=lambda: 1.0))
        import threading

        thread = threading.Thread(target=lambda: list(sub), daemon=True)
        thread.start()
        until(lambda: len(rec.times) >= 3, timeout=10, what="three attempts")
        sub.close()
        thread.join(5)
        gaps = [b - a for a, b in zip(rec.times, rec.times[1:], strict=False)]
        assert gaps[0] >= 0.5 * 0.95 and gaps[1] >= 1.0 * 0.95
        # at most 2 attempts in the first 1.4 s after the first failure
        assert sum(1 for t in rec.times if t - rec.times[0] < 1.4) <= 2


def test_fatal_status_ends_without_retry() -> None:
    with fake_server(lambda h, n: problem(404)) as (url, rec):
        states: list[str] = []
        sub = Herald(url).subscribe("t", on_state=lambda s, e: states.append(s))
        with pytest.raises(HeraldError) as info:
            next(iter(sub))
        assert info.value.status == 404
        assert len(rec.times) == 1
        assert states == ["connecting", "closed"]


async def test_async_subscription_backoff_and_retry_after() -> None:
    with fake_server(lambda h, n: problem(429, "2") if n % 2 else problem(502)) as (url, _):
        delays: list[float] = []
        done = asyncio.Event()

        async def sleep(delay: float) -> None:
            delays.append(delay)
            if len(delays) >= 5:
                done.set()
            await asyncio.sleep(0)

        async with AsyncHerald(url) as h:
            sub = h.subscribe("t", backoff=Backoff(random=lambda: 0.5, async_sleep=sleep))
            task = asyncio.ensure_future(sub.__anext__())
            await asyncio.wait_for(done.wait(), 10)
            await sub.close()
            with pytest.raises(StopAsyncIteration):
                await task
        assert delays[:5] == [0.25, 2.0, 1.0, 2.0, 4.0]


def test_consumer_pull_backoff() -> None:
    def answer(h: object, n: int) -> tuple[int, dict[str, str], bytes]:
        if n == 0:
            body = b'{"id":1,"mode":"pull","ack_deadline":"30s"}'
            return 200, {"content-type": "application/json"}, body
        return problem(503, "1")

    with fake_server(answer) as (url, _):
        delays: list[float] = []
        backoff = Backoff(random=lambda: 1.0, sleep=delays.append)
        errors: list[BaseException] = []
        consumer = Herald(url).consume(1, lambda m: None, backoff=backoff, on_error=errors.append)
        until(lambda: len(delays) >= 4, what="four pull delays")
        consumer.stop()
        assert delays[:4] == [1.0, 1.0, 2.0, 4.0]
        assert errors == []
