"""The third-party Python clients a new user reaches for first, against a
live herald (run by .ci/run):

- httpx-sse: every stream opens with a `retry:` block, which httpx-sse
  yields as an event with empty `data` (browsers and npm `eventsource`
  dispatch nothing for it). The docs' one-line guard (docs/subscribing.md) skips it, and what
  follows is the stream's JSON, presence events included.
- websockets: `close(1000)` is answered with 1000 (not 1006), and herald's
  answers on one socket keep their order (published before subscribed).

    python python_clients.py http://127.0.0.1:PORT
"""

import asyncio
import json
import sys
import threading

import httpx
import websockets
from httpx_sse import connect_sse

HERALD = sys.argv[1].rstrip("/")


def sse_opens_with_retry_and_the_guard_skips_it() -> None:
    url = f"{HERALD}/topics/py.room/events?presence=true&client=py"
    with httpx.Client(timeout=10) as client:
        with connect_sse(client, "GET", url) as source:
            events = source.iter_sse()
            first = next(events)
            assert first.retry is not None and first.data == "", first
            threading.Timer(0.2, lambda: httpx.post(f"{HERALD}/topics/py.room", content="hi")).start()
            for sse in events:
                if not sse.data:  # the docs' guard: the opening `retry:` block
                    continue
                payload = json.loads(sse.data)
                if sse.event == "message":
                    assert payload["data"] == "hi", payload
                    return
    raise AssertionError("the stream ended before the message")


async def websockets_close_cleanly() -> None:
    ws_url = HERALD.replace("http://", "ws://") + "/ws"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"op": "publish", "ref": "p", "topic": "py.t", "text": "x"}))
        await ws.send(json.dumps({"op": "subscribe", "sub": "s", "topics": ["py.t"]}))
        ops = [json.loads(await ws.recv())["op"] for _ in range(2)]
        assert ops == ["published", "subscribed"], ops
        await ws.close(1000, "done")
        # 1006 when herald does not answer the Close frame.
        assert ws.close_code == 1000, ws.close_code


sse_opens_with_retry_and_the_guard_skips_it()
asyncio.run(websockets_close_cleanly())
print("httpx-sse and websockets: ok")
