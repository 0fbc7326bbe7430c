"""Exponential backoff with full jitter, shared by subscribe and consume."""

from __future__ import annotations

import asyncio
import random as _random
import threading
import time
from collections.abc import Awaitable, Callable

BASE = 0.5
CAP = 30.0
HEALTHY = 60.0


class Backoff:
    """Delay before attempt *n* (from 0): a random point in ``[0, min(cap, base·2^n)]``.

    A ``Retry-After`` raises the delay to at least that many seconds. A connection
    that stayed up for ``healthy`` seconds resets *n* (``succeeded``). ``random``,
    ``sleep``, ``async_sleep`` and ``clock`` are injectable so tests need no real
    sleeps.
    """

    def __init__(
        self,
        *,
        base: float = BASE,
        cap: float = CAP,
        healthy: float = HEALTHY,
        random: Callable[[], float] = _random.random,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self.cap = cap
        self.healthy = healthy
        self.random = random
        self.sleep_fn = sleep
        self.async_sleep_fn = async_sleep
        self.clock = clock
        self.attempt = 0
        self._up_since: float | None = None

    def next_delay(self, retry_after: float | None = None) -> float:
        """The delay for the current attempt, and count it."""
        # The exponent stops growing past the cap (2.0 ** 1024 overflows).
        bound = min(self.cap, self.base * (2.0 ** min(self.attempt, 32)))
        delay = self.random() * bound
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.attempt += 1
        return delay

    def connected(self) -> None:
        """A connection opened (starts the healthy-minute clock)."""
        self._up_since = self.clock()

    def disconnected(self) -> None:
        """A connection ended: a healthy one resets the attempt count."""
        if self._up_since is not None and self.clock() - self._up_since >= self.healthy:
            self.attempt = 0
        self._up_since = None

    def reset(self) -> None:
        """Start again from attempt 0 (after a successful request)."""
        self.attempt = 0

    def sleep(self, retry_after: float | None = None) -> float:
        """Block for the next delay; returns it."""
        delay = self.next_delay(retry_after)
        self.sleep_fn(delay)
        return delay

    def wait(self, stop: threading.Event, retry_after: float | None = None) -> float:
        """Block for the next delay, or until ``stop`` is set; returns the delay.

        With the default ``sleep`` (``time.sleep``) it waits on ``stop``, so a
        ``close()`` or ``stop()`` from another thread cuts the wait short; an
        injected ``sleep`` is called as given.
        """
        delay = self.next_delay(retry_after)
        if self.sleep_fn is time.sleep:
            stop.wait(delay)
        else:
            self.sleep_fn(delay)
        return delay

    async def async_sleep(self, retry_after: float | None = None) -> float:
        """Wait for the next delay; returns it."""
        delay = self.next_delay(retry_after)
        await self.async_sleep_fn(delay)
        return delay
