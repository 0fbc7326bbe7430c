"""Turning SSE events and WebSocket frames into what a subscription yields.

Anything that breaks the protocol raises ``HeraldError`` (``malformed``): a
subscription is closed rather than skip a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Union

from typing_extensions import NotRequired, TypedDict

from ._generated import Envelope, Pulled
from .errors import HeraldError, malformed

MAX_FRAME_BYTES = 64 * 1024 * 1024
"""The largest WebSocket frame read: a message's payload (1 MiB by default,
``--max-message-bytes``) escaped in its envelope fits many times over, and a
runaway frame cannot take the process's memory."""


class PresenceEvent(TypedDict):
    """A ``join`` or ``leave`` (with ``presence=True``); never moves the cursor."""

    kind: Literal["join", "leave"]
    topic: str
    client: str
    connection: str
    time: str


class GapTopic(TypedDict):
    """One topic that lost messages after the cursor."""

    topic: str
    lost_through: int


class Gap(TypedDict):
    """What a ``gap`` event says was lost."""

    after: int
    oldest_available: NotRequired[int]
    resumed_from: int
    topics: list[GapTopic]


Item = Union[Envelope, PresenceEvent]
"""What a subscription yields."""

_ENVELOPE_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (int,),
    "topic": (str,),
    "seq": (int,),
    "time": (str,),
    "event": (str,),
    "priority": (int,),
}


@dataclass
class Decoded:
    """One decoded event: a message, a presence event, a gap, or the stream's start."""

    kind: Literal["message", "presence", "gap", "start", "skip"]
    envelope: Envelope | None = None
    presence: PresenceEvent | None = None
    gap: Gap | None = None
    start_after: int | None = None


def parse_json(text: str, what: str) -> Any:
    """JSON or a malformed error."""
    try:
        return json.loads(text)
    except ValueError:
        raise malformed(f"{what} is not JSON: {text[:200]!r}") from None


def envelope(value: Any) -> Envelope:
    """Check that ``value`` is a complete envelope."""
    if not isinstance(value, dict):
        raise malformed(f"envelope is not an object: {str(value)[:200]!r}")
    for name, kinds in _ENVELOPE_FIELDS.items():
        field = value.get(name)
        if not isinstance(field, kinds) or isinstance(field, bool):
            raise malformed(f"envelope field {name!r} is missing or wrong: {field!r}")
    if "data" not in value:
        raise malformed("envelope has no 'data'")
    out: Envelope = {k: v for k, v in value.items() if k not in ("op", "sub")}  # type: ignore[assignment]
    return out


def presence(kind: str, value: Any) -> PresenceEvent:
    """Check a join/leave payload."""
    if not isinstance(value, dict):
        raise malformed(f"{kind} is not an object")
    for name in ("topic", "client", "connection", "time"):
        if not isinstance(value.get(name), str):
            raise malformed(f"{kind} field {name!r} is missing or wrong")
    return {
        "kind": "join" if kind == "join" else "leave",
        "topic": value["topic"],
        "client": value["client"],
        "connection": value["connection"],
        "time": value["time"],
    }


def gap(value: Any) -> Gap:
    """Check a gap payload."""
    if not isinstance(value, dict):
        raise malformed("gap is not an object")
    for name in ("after", "resumed_from"):
        if not isinstance(value.get(name), int):
            raise malformed(f"gap field {name!r} is missing or wrong")
    topics = value.get("topics", [])
    if not isinstance(topics, list):
        raise malformed("gap 'topics' is not a list")
    out: Gap = {"after": value["after"], "resumed_from": value["resumed_from"], "topics": topics}
    if isinstance(value.get("oldest_available"), int):
        out["oldest_available"] = value["oldest_available"]
    return out


def from_sse(event: str, data: str, event_id: str, retry: int | None = None) -> Decoded:
    """Decode one SSE event (httpx-sse's ``event``, ``data``, ``id``, ``retry``)."""
    if data == "":
        if retry is not None:
            return Decoded("skip")  # the opening retry: block
        raise malformed(f"event {event!r} has no data")
    value = parse_json(data, f"data of event {event!r}")
    if event == "gap":
        return Decoded("gap", gap=gap(value))
    if event in ("join", "leave"):
        return Decoded("presence", presence=presence(event, value))
    env = envelope(value)
    if event_id != str(env["id"]):
        raise malformed(f"id: {event_id!r} is not the envelope's id {env['id']}")
    if event not in ("", env["event"]):
        raise malformed(f"event: {event!r} is not the envelope's event {env['event']!r}")
    return Decoded("message", envelope=env)


def from_ws(text: str | bytes, sub: str) -> Decoded:
    """Decode one WebSocket frame for subscription ``sub``."""
    if isinstance(text, bytes):
        raise malformed("binary frame")
    frame = parse_json(text, "frame")
    if not isinstance(frame, dict) or not isinstance(frame.get("op"), str):
        raise malformed(f"frame without op: {text[:200]!r}")
    op = frame["op"]
    if op == "error":
        raise ws_problem(frame)
    if frame.get("sub") != sub:
        if op in ("pong", "published", "pulled", "acked", "nacked"):
            return Decoded("skip")
        raise malformed(f"frame for another subscription: {text[:200]!r}")
    if op == "subscribed":
        start = frame.get("start_after")
        if start is not None and not isinstance(start, int):
            raise malformed(f"start_after is not an id: {start!r}")
        return Decoded("start", start_after=start)
    if op == "message":
        return Decoded("message", envelope=envelope(frame))
    if op == "gap":
        return Decoded("gap", gap=gap(frame))
    if op in ("join", "leave"):
        return Decoded("presence", presence=presence(op, frame))
    if op == "unsubscribed":
        return Decoded("skip")
    raise malformed(f"unknown op {op!r}")


def ws_problem(frame: dict[str, Any]) -> HeraldError:
    """The ``HeraldError`` of an ``error`` frame."""
    return HeraldError(
        type=str(frame.get("type", "about:blank")),
        status=int(frame.get("status", 0) or 0),
        title=str(frame.get("title", "")),
        detail=str(frame.get("detail", "")),
        request_id=frame.get("request_id"),
        errors=list(frame.get("errors") or []),
    )


def pulled(answer: Any) -> list[Pulled]:
    """Check a pull answer's ``messages`` (each ``{ack_id, attempt, message}``)."""
    messages = answer.get("messages") if isinstance(answer, dict) else None
    if not isinstance(messages, list):
        raise malformed(f"pull answer without messages: {str(answer)[:200]!r}")
    for item in messages:
        if not isinstance(item, dict) or not isinstance(item.get("ack_id"), str):
            raise malformed(f"pulled item without ack_id: {str(item)[:200]!r}")
        if not isinstance(item.get("attempt"), int):
            raise malformed(f"pulled item without attempt: {str(item)[:200]!r}")
        envelope(item.get("message"))
    return messages
