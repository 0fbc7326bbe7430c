"""The asyncio consumer: handler tasks over a pull subscription."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

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
from ._http import AsyncTransport
from .async_resources import Subscriptions
from .backoff import Backoff

AsyncHandler = Callable[[Pulled], Awaitable[Any]]


class _GiveBack(Exception):
    """A message leased but not started when the consumer stopped."""


class AsyncConsumer:
    """Runs ``await handler(message)`` for every message pulled from a subscription.

    ``await stop()`` pulls nothing more, lets running handlers finish, settles
    them and returns; ``await done`` (or ``await wait()``) waits for the end and
    raises the ``HeraldError`` that ended it, if any.
    """

    def __init__(
        self,
        transport: AsyncTransport,
        subscription_id: int,
        handler: AsyncHandler,
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
        self._slots = asyncio.Semaphore(concurrency)
        self._ledger = Ledger(max_in_flight or concurrency)
        self._wait = wait_seconds(wait)
        self._on_error = on_error
        self._backoff = backoff or Backoff()
        self._stopping = asyncio.Event()
        self._room = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._pulling: asyncio.Task[Any] | None = None
        # Sends the acks that a long poll out would otherwise hold (one at a time).
        self._acking: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        self.done: asyncio.Task[None] = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        extender: asyncio.Task[None] | None = None
        try:
            deadline = ack_deadline(await self._subs.get(self._id))
            extender = asyncio.ensure_future(self._extend(deadline))
            await self._pull_loop()
        except asyncio.CancelledError:
            pass
        except Exception as error:
            self.error = error
            self._report(error)
        finally:
            self._stopping.set()
            if extender is not None:
                extender.cancel()
            if self._handlers:
                await asyncio.gather(*self._handlers, return_exceptions=True)
            while self._acking is not None and not self._acking.done():
                await asyncio.gather(self._acking, return_exceptions=True)
            await self._flush()
        if self.error is not None:
            raise self.error

    async def _pull_loop(self) -> None:
        while not self._stopping.is_set():
            while self._ledger.room() == 0 and not self._stopping.is_set():
                self._room.clear()
                await self._room.wait()
            if self._stopping.is_set():
                return
            acks = self._ledger.take_acks()
            body = pull_body(self._ledger.room(), self._wait, acks)
            self._pulling = asyncio.ensure_future(
                self._subs.pull(self._id, body, timeout=self._wait + 30.0)  # type: ignore[arg-type]
            )
            try:
                answer = await self._pulling
            except asyncio.CancelledError:
                self._ledger.give_back(acks)
                return
            except Exception as error:
                self._ledger.give_back(acks)
                await self._pause(pull_failure(error))
                continue
            self._backoff.reset()
            messages = pulled(answer)
            self._ledger.leased_now(messages)
            for message in messages:
                task = asyncio.ensure_future(self._handle(message))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    async def _pause(self, retry_after: float | None) -> None:
        """Back off before the next pull; ``stop()`` cuts it short."""
        delay = self._backoff.next_delay(retry_after)
        sleeper = asyncio.ensure_future(self._backoff.async_sleep_fn(delay))
        stopper = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        stopper.cancel()

    async def _handle(self, message: Pulled) -> None:
        async with self._slots:
            try:
                if self._stopping.is_set():  # leased, not started: give it back
                    raise _GiveBack
                await self._handler(message)
            except Exception as error:
                self._ledger.settled(message["ack_id"], acked=False)
                delay = "0s" if isinstance(error, _GiveBack) else nack_delay(error)
                try:
                    await self._subs.nack(self._id, [message["ack_id"]], delay)
                except Exception as nack_error:
                    self._report(nack_error)
            else:
                self._ledger.settled(message["ack_id"], acked=True)
                if self._pulling is not None and not self._pulling.done():
                    self._ack_soon()
            self._room.set()

    def _ack_soon(self) -> None:
        """Acks finished work now: the pull that would carry it is a long poll."""
        if self._acking is None or self._acking.done():
            self._acking = asyncio.ensure_future(self._ack_rounds())

    async def _ack_rounds(self) -> None:
        await asyncio.sleep(0)  # handlers ending together share one request
        while not self._ledger.idle_acks():
            if not await self._flush():
                return

    async def _extend(self, deadline: float) -> None:
        half = deadline / 2
        while not self._stopping.is_set():
            await asyncio.sleep(min(half / 2, 1.0))
            due = self._ledger.due_for_extension(half)
            if due and not self._stopping.is_set():
                try:
                    await self._subs.extend(self._id, due, deadline)
                except Exception as error:
                    self._report(error)

    async def _flush(self) -> bool:
        """Sends the finished acks; False (they wait for the next pull) if that failed."""
        acks = self._ledger.take_acks()
        if acks:
            try:
                await self._subs.ack(self._id, acks)
            except Exception as error:
                self._ledger.give_back(acks)
                self._report(error)
                return False
        return True

    def _report(self, error: BaseException) -> None:
        if self._on_error is not None:
            with contextlib.suppress(Exception):
                self._on_error(error)

    async def stop(self) -> None:
        """Pull nothing more, wait for running handlers, settle them, return."""
        self._stopping.set()
        self._room.set()
        if self._pulling is not None:
            self._pulling.cancel()
        with contextlib.suppress(Exception):
            await asyncio.shield(self.done)

    async def wait(self) -> None:
        """Wait until the consumer has stopped; raise what ended it, if anything."""
        await asyncio.shield(self.done)

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
