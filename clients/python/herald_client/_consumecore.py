"""What sync and async consumers share: the lease ledger and the nack rule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ._base import duration, retryable, seconds
from ._generated import Pulled, SubscriptionView
from .errors import Delay, HeraldError

FATAL = frozenset({401, 403, 404, 409})
"""Pull answers that end a consumer (409: the subscription is paused)."""

OnError = Callable[[BaseException], None]


def wait_seconds(wait: float | str) -> float:
    """A pull's wait in seconds, from seconds or a duration string (``"20s"``)."""
    return seconds(wait) if isinstance(wait, str) else float(wait)


def ack_deadline(view: SubscriptionView) -> float:
    """The subscription's ack deadline in seconds (herald's default: 30 s)."""
    value = view.get("ack_deadline")
    return seconds(value) if value else 30.0


def nack_delay(error: BaseException) -> str | None:
    """The nack delay a handler's exception asks for (``Retry(delay)``), if any."""
    delay: Delay | None = getattr(error, "delay", None)
    if delay is None or isinstance(delay, bool):
        return None
    if isinstance(delay, (int, float, str)):
        return duration(delay)
    return None


def pull_failure(error: BaseException) -> float | None:
    """Re-raise a failure that ends the consumer; else the Retry-After to honour."""
    if isinstance(error, HeraldError):
        if error.status in FATAL or not retryable(error.status):
            raise error
        return error.retry_after
    if isinstance(error, httpx.TransportError):
        return None
    raise error


class Ledger:
    """Leased messages not yet settled, and acks waiting for the next pull.

    Thread-safe (the sync consumer's workers and its puller share it).
    """

    def __init__(self, max_in_flight: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.lock = threading.Lock()
        self.leased: dict[str, float] = {}
        self.acks: list[str] = []

    def room(self) -> int:
        """How many more messages may be leased now."""
        with self.lock:
            return max(0, self.max_in_flight - len(self.leased))

    def take_acks(self) -> list[str]:
        """The acks to hand in with the next pull (or the final ack)."""
        with self.lock:
            acks, self.acks = self.acks, []
            return acks

    def give_back(self, acks: list[str]) -> None:
        """Acks whose request failed: hand them in again next time."""
        with self.lock:
            self.acks[:0] = acks

    def leased_now(self, messages: list[Pulled]) -> None:
        """Messages a pull leased."""
        now = self.clock()
        with self.lock:
            for message in messages:
                self.leased[message["ack_id"]] = now

    def settled(self, ack_id: str, acked: bool) -> None:
        """A handler finished: queue its ack (or forget a nacked one)."""
        with self.lock:
            self.leased.pop(ack_id, None)
            if acked:
                self.acks.append(ack_id)

    def due_for_extension(self, half: float) -> list[str]:
        """Leases held for half a deadline since leased or last extended."""
        now = self.clock()
        with self.lock:
            due = [a for a, since in self.leased.items() if now - since >= half]
            for ack_id in due:
                self.leased[ack_id] = now
            return due

    def idle_acks(self) -> bool:
        """No ack waiting to be sent."""
        with self.lock:
            return not self.acks

    def idle(self) -> bool:
        """Nothing leased and nothing to ack."""
        with self.lock:
            return not self.leased and not self.acks


def pull_body(room: int, wait: float, acks: list[str]) -> dict[str, Any]:
    """The pull request: at most the free room, the wait, and the finished acks."""
    return {"max_messages": min(room, 1000), "wait": duration(wait), "ack_ids": acks}
