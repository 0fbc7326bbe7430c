"""Scenario 7: a fake server's bad event is a HeraldError, never a skip."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.sync.server import ServerConnection, serve

from herald_client import MALFORMED, AsyncHerald, Herald, HeraldError

from .fake import fake_server, sse

GOOD = {"id": 1, "topic": "t", "seq": 1, "time": "now", "event": "message", "priority": 3}
GOOD_EVENT = f"id: 1\nevent: message\ndata: {json.dumps({**GOOD, 'data': 1})}\n\n"
BAD_EVENTS = {
    "not json": "id: 2\nevent: message\ndata: {not json\n\n",
    "not an envelope": 'id: 2\nevent: message\ndata: {"hello": 1}\n\n',
    "id mismatch": f"id: 9\nevent: message\ndata: {json.dumps({**GOOD, 'id': 2, 'data': 2})}\n\n",
    "bad gap": 'event: gap\ndata: {"after": "x"}\n\n',
    "no data": "id: 2\nevent: message\n\n",
    "event mismatch": f"id: 2\nevent: other\ndata: {json.dumps({**GOOD, 'id': 2, 'data': 2})}\n\n",
}


@pytest.mark.parametrize("case", sorted(BAD_EVENTS))
def test_bad_sse_event_raises(case: str) -> None:
    body = "retry: 2000\n\n" + GOOD_EVENT + BAD_EVENTS[case]
    with fake_server(lambda h, n: sse(body)) as (url, rec):
        sub = Herald(url).subscribe("t")
        it = iter(sub)
        assert next(it)["id"] == 1
        with pytest.raises(HeraldError) as info:
            next(it)
        assert info.value.type == MALFORMED and info.value.status == 0
        assert sub.state == "closed" and len(rec.times) == 1


def test_bad_start_header_raises() -> None:
    with fake_server(lambda h, n: sse(GOOD_EVENT, start_after="abc")) as (url, _):
        with pytest.raises(HeraldError) as info:
            next(iter(Herald(url).subscribe("t")))
        assert info.value.type == MALFORMED


async def test_bad_sse_event_async() -> None:
    body = GOOD_EVENT + BAD_EVENTS["not json"]
    with fake_server(lambda h, n: sse(body)) as (url, _):
        async with AsyncHerald(url) as h:
            got: list[Any] = []
            with pytest.raises(HeraldError) as info:
                async for env in h.subscribe("t"):
                    got.append(env)
            assert info.value.type == MALFORMED and len(got) == 1


@contextmanager
def fake_ws(frames: list[str]) -> Iterator[str]:
    def handler(ws: ServerConnection) -> None:
        ws.recv()
        for frame in frames:
            ws.send(frame)
        ws.recv()

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()


SUBSCRIBED = '{"op":"subscribed","sub":"s","connection":"c","start_after":0}'
MESSAGE = json.dumps({"op": "message", "sub": "s", **GOOD, "data": 1})


@pytest.mark.parametrize(
    "frame",
    ["not json", '{"no":"op"}', '{"op":"message","sub":"s","id":2}', '{"op":"weird","sub":"s"}'],
)
def test_bad_ws_frame_raises(frame: str) -> None:
    with fake_ws([SUBSCRIBED, MESSAGE, frame]) as url:
        sub = Herald(url).subscribe("t", transport="ws")
        it = iter(sub)
        assert next(it)["id"] == 1
        with pytest.raises(HeraldError) as info:
            next(it)
        assert info.value.type == MALFORMED
        assert sub.state == "closed"


def test_ws_error_frame_ends_subscription() -> None:
    problem = {"type": "urn:herald:problem:invalid-filter", "status": 400, "title": "Bad"}
    error = json.dumps({"op": "error", "sub": "s", **problem, "detail": "no"})
    with fake_ws([SUBSCRIBED, error]) as url:
        with pytest.raises(HeraldError) as info:
            next(iter(Herald(url).subscribe("t", transport="ws")))
        assert info.value.status == 400 and info.value.type.endswith("invalid-filter")


def test_bad_pull_answer_ends_consumer() -> None:
    def answer(h: object, n: int) -> tuple[int, dict[str, str], bytes]:
        body = b'{"id":1,"mode":"pull"}' if n == 0 else b'{"messages":[{"ack_id":"1.1"}]}'
        return 200, {"content-type": "application/json"}, body

    with fake_server(answer) as (url, _):
        worker = Herald(url).consume(1, lambda m: None, wait=1)
        with pytest.raises(HeraldError) as info:
            worker.join(10)
        assert info.value.type == MALFORMED
