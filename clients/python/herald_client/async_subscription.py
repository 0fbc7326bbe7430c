"""The asyncio subscription: an async iterator of envelopes with exact resume."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from ._base import error_from
from ._frames import MAX_FRAME_BYTES, Decoded, Item, from_sse, from_ws
from ._subcore import SubscriptionCore
from .subscription import STREAM_TIMEOUT


class AsyncSubscription:
    """Messages (and presence events) of one or more topics, each once, in order.

    ``async for envelope in sub``; ``last_event_id`` is the id of the last message
    handed over; ``await close()`` (or leaving the loop) ends it.
    """

    def __init__(self, core: SubscriptionCore, http: httpx.AsyncClient) -> None:
        self._core = core
        self._http = http
        self._closed = asyncio.Event()
        self._events: AsyncIterator[Decoded] | None = None
        self._response: httpx.Response | None = None
        self._socket: ClientConnection | None = None

    @property
    def last_event_id(self) -> int | None:
        """The id of the last message handed over (``None`` before the first)."""
        return self._core.last_event_id

    @property
    def state(self) -> str:
        """``connecting``, ``connected``, ``disconnected`` or ``closed``."""
        return self._core.state

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Item]:
        try:
            while True:
                try:
                    yield await self.__anext__()
                except StopAsyncIteration:
                    return
        finally:
            await self.close()

    async def __anext__(self) -> Item:
        while True:
            if self._closed.is_set():
                raise StopAsyncIteration
            try:
                if self._events is None:
                    self._events = await self._open()
                decoded = await anext(self._events, None)
                if decoded is None:
                    raise EOFError("the stream ended")
                item = self._core.handle(decoded)
            except asyncio.CancelledError:
                await self._disconnect()
                raise
            except Exception as error:
                await self._dropped(error)
                continue
            if item is not None:
                self._core.delivered(item)
                return item

    async def _dropped(self, error: Exception) -> None:
        """A connection ended: close for good, or wait and reconnect."""
        await self._disconnect()
        if self._closed.is_set():
            raise StopAsyncIteration from None
        try:
            retry_after = self._core.failure(error)
        except BaseException:
            self._finish(error)
            raise
        self._core.backoff.disconnected()
        self._core.set_state("disconnected", error)
        delay = self._core.backoff.next_delay(retry_after)
        sleeper = asyncio.ensure_future(self._core.backoff.async_sleep_fn(delay))
        closer = asyncio.ensure_future(self._closed.wait())
        await asyncio.wait({sleeper, closer}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        closer.cancel()

    async def _open(self) -> AsyncIterator[Decoded]:
        self._core.set_state("connecting")
        if self._core.transport == "ws":
            return await self._open_ws()
        return await self._open_sse()

    async def _open_sse(self) -> AsyncIterator[Decoded]:
        url, params, headers = self._core.sse_request()
        request = self._http.build_request(
            "GET", url, params=tuple(params), headers=headers, timeout=STREAM_TIMEOUT
        )
        response = await self._http.send(request, stream=True)
        self._response = response
        if not response.is_success:
            body = await response.aread()
            raise error_from(response.status_code, response.headers, body)
        self._core.started(response.headers.get("herald-start-after"))
        self._connected()
        return self._sse_events(response)

    async def _sse_events(self, response: httpx.Response) -> AsyncIterator[Decoded]:
        async for sse in EventSource(response).aiter_sse():
            yield from_sse(sse.event, sse.data, sse.id, sse.retry)

    async def _open_ws(self) -> AsyncIterator[Decoded]:
        try:
            socket = await ws_connect(
                self._core.ws_url(), open_timeout=30, max_size=MAX_FRAME_BYTES
            )
        except InvalidStatus as refused:
            answer = refused.response
            raise error_from(
                answer.status_code, answer.headers, bytes(answer.body or b"")
            ) from None
        self._socket = socket
        await socket.send(self._core.ws_subscribe())
        return self._ws_events(socket)

    async def _ws_events(self, socket: ClientConnection) -> AsyncIterator[Decoded]:
        async for frame in socket:
            decoded = from_ws(frame, "s")
            if decoded.kind == "start":
                self._connected()
            yield decoded

    def _connected(self) -> None:
        self._core.backoff.connected()
        self._core.set_state("connected")

    async def _disconnect(self) -> None:
        events, self._events = self._events, None
        response, self._response = self._response, None
        socket, self._socket = self._socket, None
        if events is not None and hasattr(events, "aclose"):
            with contextlib.suppress(RuntimeError):  # still running in another task
                await events.aclose()
        if response is not None:
            await response.aclose()
        if socket is not None:
            await socket.close()

    def _finish(self, error: BaseException | None = None) -> None:
        if self._core.state != "closed":
            self._closed.set()
            self._core.set_state("closed", error)

    async def close(self) -> None:
        """End the stream and the iterator (idempotent)."""
        self._closed.set()
        await self._disconnect()
        self._finish()

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
