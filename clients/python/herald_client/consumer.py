"""The sync consumer: worker threads over a pull subscription."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import httpx

from ._consumecore import (
    Ledger,
    OnError,
    ack_deadline,
    nack_delay,
    pull_body,
    pull_failure,
    wait_seconds,
)
from ._frames import pulled
from ._generated import Pulled
from ._http import SyncTransport
from .backoff import Backoff
from .resources import Subscriptions

Handler = Callable[[Pulled], Any]


class Consumer:
    """Runs ``handler(message)`` for every message pulled from a subscription.

    ``stop()`` pulls nothing more, lets running handlers finish, settles them
    and returns when all is done; ``join()`` waits for the end and raises the
    ``HeraldError`` that ended it, if any.
    """

    def __init__(
        self,
        transport: SyncTransport,
        subscription_id: int,
        handler: Handler,
        *,
        concurrency: int = 1,
        max_in_flight: int | None = None,
        wait: float | str = 20.0,
        on_error: OnError | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._subs = Subscriptions(transport)
        self._id = subscription_id
        self._handler = handler
        self._concurrency = concurrency
        self._ledger = Ledger(max_in_flight or concurrency)
        self._wait = wait_seconds(wait)
        self._on_error = on_error
        self._stopping = threading.Event()
        # Set while a pull is out (its acks then go on their own request) …
        self._pulling = threading.Event()
        # … and woken when a handler's ack should not wait for the next pull.
        self._ack_ready = threading.Event()
        self._backoff = backoff or Backoff()
        self._queue: queue.Queue[Pulled | None] = queue.Queue()
        self._room = threading.Condition()
        self.error: BaseException | None = None
        self._threads = [threading.Thread(target=self._run, name="herald-consumer", daemon=True)]
        self._threads[0].start()

    def _run(self) -> None:
        workers = [
            threading.Thread(target=self._work, name=f"herald-worker-{n}", daemon=True)
            for n in range(self._concurrency)
        ]
        extender: threading.Thread | None = None
        try:
            deadline = ack_deadline(self._subs.get(self._id))
            extender = threading.Thread(target=self._extend, args=(deadline,), daemon=True)
            for thread in [*workers, extender]:
                thread.start()
            self._pull_loop()
        except BaseException as error:
            self._fail(error)
        finally:
            self._stopping.set()
            self._ack_ready.set()
            for _ in workers:
                self._queue.put(None)
            for thread in workers:
                if thread.is_alive():
                    thread.join()
            # An ack the extender is sending is answered before stop() returns.
            if extender is not None and extender.is_alive():
                extender.join()
            self._flush()

    def _pull_loop(self) -> None:
        while not self._stopping.is_set():
            with self._room:
                self._room.wait_for(lambda: self._ledger.room() > 0 or self._stopping.is_set())
            if self._stopping.is_set():
                return
            acks = self._ledger.take_acks()
            body = pull_body(self._ledger.room(), self._wait, acks)
            self._pulling.set()
            try:
                answer = self._subs.pull(self._id, body, timeout=self._wait + 30.0)  # type: ignore[arg-type]
            except (httpx.HTTPError, Exception) as error:
                self._pulling.clear()
                self._ledger.give_back(acks)
                if self._stopping.is_set():
                    return
                retry_after = pull_failure(error)
                self._backoff.wait(self._stopping, retry_after)
                continue
            self._pulling.clear()
            self._backoff.reset()
            messages = pulled(answer)
            self._ledger.leased_now(messages)
            for message in messages:
                self._queue.put(message)

    def _work(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                return
            if self._stopping.is_set():  # leased, not started: give it back
                self._nack(message, "0s")
                continue
            try:
                self._handler(message)
            except Exception as error:
                self._nack(message, nack_delay(error))
            else:
                self._ledger.settled(message["ack_id"], acked=True)
                if self._pulling.is_set():
                    self._ack_ready.set()
            with self._room:
                self._room.notify_all()

    def _nack(self, message: Pulled, delay: str | None) -> None:
        self._ledger.settled(message["ack_id"], acked=False)
        try:
            self._subs.nack(self._id, [message["ack_id"]], delay)
        except Exception as error:
            self._report(error)

    def _extend(self, deadline: float) -> None:
        """Extends leases every half deadline; sends acks a long poll would hold."""
        half = deadline / 2
        while not self._stopping.is_set():
            self._ack_ready.wait(min(half / 2, 1.0))
            self._ack_ready.clear()
            if self._stopping.is_set():
                return
            if self._pulling.is_set():
                self._flush()
            due = self._ledger.due_for_extension(half)
            if due:
                try:
                    self._subs.extend(self._id, due, deadline)
                except Exception as error:
                    self._report(error)

    def _flush(self) -> None:
        acks = self._ledger.take_acks()
        if acks:
            try:
                self._subs.ack(self._id, acks)
            except Exception as error:
                self._ledger.give_back(acks)  # the next pull carries them
                self._report(error)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._report(error)

    def _report(self, error: BaseException) -> None:
        if self._on_error is not None:
            with contextlib.suppress(Exception):
                self._on_error(error)

    def stop(self, timeout: float | None = None) -> None:
        """Pull nothing more, wait for running handlers, settle them, return.

        A long poll already waiting is not cut short (httpx cannot interrupt a
        sync request): it ends within ``wait``, and what it leased is handled.
        """
        self._stopping.set()
        self._ack_ready.set()
        with self._room:
            self._room.notify_all()
        self.join(timeout, raise_error=False)

    def join(self, timeout: float | None = None, *, raise_error: bool = True) -> None:
        """Wait until the consumer has stopped; raise what ended it, if anything."""
        for thread in self._threads:
            thread.join(timeout)
        if raise_error and self.error is not None:
            raise self.error

    @property
    def running(self) -> bool:
        """Whether it is still pulling or settling."""
        return any(t.is_alive() for t in self._threads)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
