"""What sync and async subscriptions share: the cursor, states, and failure rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from ._base import headers_for, retryable, seg
from ._frames import Decoded, Gap, Item
from .backoff import Backoff
from .errors import GapError, HeraldError, malformed

State = Literal["connecting", "connected", "disconnected", "closed"]
Transport = Literal["sse", "ws"]
OnGap = Callable[[Gap], None]
OnState = Callable[[State, "BaseException | None"], None]

EARLIEST = "earliest"


def topic_list(topics: str | list[str]) -> list[str]:
    """A name, a pattern or a list of them, as a non-empty list."""
    names = [topics] if isinstance(topics, str) else list(topics)
    if not names:
        raise ValueError("subscribe needs at least one topic")
    return names


def is_pattern(name: str) -> bool:
    """Whether a topic name is a pattern (streams it through ``GET /events``)."""
    return "*" in name or "{" in name


class SubscriptionCore:
    """The cursor rule, the state machine and the classification of failures."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        topics: str | list[str],
        filter: str | None,
        from_: str | int | None,
        transport: Transport,
        presence: bool,
        on_gap: OnGap | None,
        on_state: OnState | None,
        client: str | None,
        backoff: Backoff,
    ) -> None:
        if transport not in ("sse", "ws"):
            raise ValueError(f"transport must be 'sse' or 'ws', not {transport!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.topics = topic_list(topics)
        self.filter = filter
        self.cursor: str | None = None if from_ is None else str(from_)
        self.transport: Transport = transport
        self.presence = presence
        self.on_gap = on_gap
        self.on_state = on_state
        self.client = client
        self.backoff = backoff
        self.state: State = "connecting"
        self._reported = False
        self.last_event_id: int | None = None
        self.yielded = False
        self.retry_after: float | None = None

    def set_state(self, state: State, error: BaseException | None = None) -> None:
        """Move to ``state`` and tell ``on_state`` (once per change)."""
        if state == self.state and self._reported and state != "disconnected":
            return
        self._reported = True
        self.state = state
        if self.on_state is not None:
            self.on_state(state, error)

    # -- requests -------------------------------------------------------------

    def sse_request(self) -> tuple[str, list[tuple[str, str]], dict[str, str]]:
        """URL, query and headers of the next SSE connection."""
        headers = headers_for(self.token)
        headers["accept"] = "text/event-stream"
        params: list[tuple[str, str]] = []
        if len(self.topics) == 1 and not is_pattern(self.topics[0]):
            url = f"{self.base_url}/topics/{seg(self.topics[0])}/events"
        else:
            url = f"{self.base_url}/events"
            params.extend(("topic", t) for t in self.topics)
        if self.filter is not None:
            params.append(("filter", self.filter))
        if self.presence:
            params.append(("presence", "true"))
        if self.client is not None:
            params.append(("client", self.client))
        if self.cursor is not None:
            headers["last-event-id"] = self.cursor
        return url, params, headers

    def ws_url(self) -> str:
        """The socket's URL (the token goes in ``?access_token=``)."""
        url = "ws" + self.base_url[len("http") :] + "/ws"
        query = {k: v for k, v in (("access_token", self.token), ("client", self.client)) if v}
        return f"{url}?{urlencode(query)}" if query else url

    def ws_subscribe(self) -> str:
        """The ``subscribe`` frame for the next socket."""
        frame: dict[str, Any] = {"op": "subscribe", "sub": "s", "topics": self.topics}
        if self.filter is not None:
            frame["filter"] = self.filter
        if self.presence:
            frame["presence"] = True
        if self.cursor is not None:
            frame["last_event_id"] = self.cursor
        return json.dumps(frame)

    # -- events ---------------------------------------------------------------

    def started(self, start_after: str | int | None) -> None:
        """Where the stream says it starts; the cursor until a message is yielded."""
        if start_after is None or start_after == "":
            return
        text = str(start_after)
        if not text.isdigit():
            raise malformed(f"stream start {text!r} is not a message id")
        # "earliest" stays "earliest" until a message is yielded: herald names 0
        # as its start, and asking for what follows 0 after a drop would report
        # as a gap the retention that "earliest" (all retained history) accepts.
        if not self.yielded and self.cursor != EARLIEST:
            self.cursor = text

    def handle(self, decoded: Decoded) -> Item | None:
        """What to yield for one decoded event (``None``: nothing)."""
        if decoded.kind == "start":
            self.started(decoded.start_after)
            return None
        if decoded.kind == "gap" and decoded.gap is not None:
            if self.on_gap is None:
                raise GapError(dict(decoded.gap))
            self.on_gap(decoded.gap)
            if not self.yielded or self.last_event_id is None:
                self.cursor = str(decoded.gap["resumed_from"])
            return None
        if decoded.kind == "presence":
            return decoded.presence
        if decoded.kind == "message" and decoded.envelope is not None:
            env_id = decoded.envelope["id"]
            if self.last_event_id is not None and env_id <= self.last_event_id:
                raise malformed(f"message {env_id} after {self.last_event_id}: out of order")
            return decoded.envelope
        return None

    def delivered(self, item: Item) -> None:
        """The iterator handed ``item`` over: a message moves the cursor."""
        if "kind" not in item:
            env_id = int(item["id"])
            self.cursor = str(env_id)
            self.last_event_id = env_id
            self.yielded = True

    def failure(self, error: BaseException) -> float | None:
        """Classify a failure: re-raise it if fatal, else the Retry-After to honour."""
        if isinstance(error, HeraldError):
            if error.status == 0 or not retryable(error.status):
                raise error
            return error.retry_after
        if isinstance(error, (httpx.TransportError, OSError, EOFError)):
            return None
        if type(error).__module__.startswith("websockets"):
            return None
        raise error
