"""The sync subscription: an iterator of envelopes with exact resume."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from socket import SHUT_RDWR
from socket import socket as RawSocket
from typing import Any

import httpx
from httpx_sse import EventSource
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from ._base import error_from
from ._frames import MAX_FRAME_BYTES, Decoded, Item, from_sse, from_ws
from ._subcore import SubscriptionCore

STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)
"""herald sends a keep-alive every 15 s: a minute of silence is a dead stream."""


class Subscription:
    """Messages (and presence events) of one or more topics, each once, in order.

    Iterate it (``for envelope in sub``); ``last_event_id`` is the id of the last
    message handed over; ``close()`` ends it from any thread. Leaving a ``for``
    loop closes it too.
    """

    def __init__(self, core: SubscriptionCore, http: httpx.Client) -> None:
        self._core = core
        self._http = http
        self._stop = threading.Event()
        self._events: Iterator[Decoded] | None = None
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

    def __iter__(self) -> Iterator[Item]:
        try:
            while True:
                try:
                    yield self.__next__()
                except StopIteration:
                    return
        finally:
            self.close()

    def __next__(self) -> Item:
        while True:
            if self._stop.is_set():
                raise StopIteration
            try:
                if self._events is None:
                    self._events = self._open()
                    if self._stop.is_set():  # closed while connecting
                        raise StopIteration
                decoded = next(self._events, None)
                if decoded is None:
                    raise EOFError("the stream ended")
                item = self._core.handle(decoded)
            except StopIteration:
                self._disconnect()
                raise
            except BaseException as error:  # classified by _dropped
                self._dropped(error)
                continue
            if item is not None:
                self._core.delivered(item)
                return item

    def _dropped(self, error: BaseException) -> None:
        """A connection ended: close for good, or wait and reconnect."""
        self._disconnect()
        if self._stop.is_set():
            raise StopIteration from None
        try:
            retry_after = self._core.failure(error)
        except BaseException:
            self._finish(error)
            raise
        self._core.backoff.disconnected()
        self._core.set_state("disconnected", error)
        self._core.backoff.wait(self._stop, retry_after)  # close() wakes it

    def _open(self) -> Iterator[Decoded]:
        """Connect (state ``connecting``) and return the decoded events."""
        self._core.set_state("connecting")
        events = self._open_ws() if self._core.transport == "ws" else self._open_sse()
        return events

    def _open_sse(self) -> Iterator[Decoded]:
        url, params, headers = self._core.sse_request()
        request = self._http.build_request(
            "GET", url, params=tuple(params), headers=headers, timeout=STREAM_TIMEOUT
        )
        response = self._http.send(request, stream=True)
        self._response = response
        if not response.is_success:
            body = response.read()
            raise error_from(response.status_code, response.headers, body)
        self._core.started(response.headers.get("herald-start-after"))
        self._connected()
        return self._sse_events(response)

    def _sse_events(self, response: httpx.Response) -> Iterator[Decoded]:
        for sse in EventSource(response).iter_sse():
            yield from_sse(sse.event, sse.data, sse.id, sse.retry)

    def _open_ws(self) -> Iterator[Decoded]:
        try:
            socket = ws_connect(self._core.ws_url(), open_timeout=30, max_size=MAX_FRAME_BYTES)
        except InvalidStatus as refused:
            answer = refused.response
            raise error_from(
                answer.status_code, answer.headers, bytes(answer.body or b"")
            ) from None
        socket.__enter__()  # the context-manager form; _disconnect closes it
        self._socket = socket
        socket.send(self._core.ws_subscribe())
        return self._ws_events(socket)

    def _ws_events(self, socket: ClientConnection) -> Iterator[Decoded]:
        for frame in socket:
            decoded = from_ws(frame, "s")
            if decoded.kind == "start":
                self._connected()
            yield decoded

    def _connected(self) -> None:
        self._core.backoff.connected()
        self._core.set_state("connected")

    def _disconnect(self) -> None:
        """Drop the current connection, if any."""
        self._events = None
        response, self._response = self._response, None
        socket, self._socket = self._socket, None
        if response is not None:
            response.close()
        if socket is not None:
            socket.close()

    def _interrupt(self) -> None:
        """Wake a read blocked in another thread (closing the response does not)."""
        response = self._response
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, RawSocket):
            with contextlib.suppress(OSError):
                sock.shutdown(SHUT_RDWR)

    def _finish(self, error: BaseException | None = None) -> None:
        if self._core.state != "closed":
            self._stop.set()
            self._core.set_state("closed", error)

    def close(self) -> None:
        """End the stream and the iterator (safe from any thread, idempotent)."""
        self._stop.set()
        self._interrupt()
        self._disconnect()
        self._finish()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
