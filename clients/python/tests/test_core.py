"""Unit tests of the cursor rule and the decoding of events (no server)."""

from __future__ import annotations

import pytest

from herald_client import MALFORMED, Backoff, HeraldError
from herald_client._base import duration, seconds
from herald_client._frames import from_sse, from_ws
from herald_client._subcore import SubscriptionCore

ENV = '{"id":5,"topic":"t","seq":1,"time":"x","event":"message","priority":3,"data":{}}'


def core(from_: str | int | None) -> SubscriptionCore:
    return SubscriptionCore(
        base_url="http://h",
        token="tok",
        topics="t",
        filter=None,
        from_=from_,
        transport="sse",
        presence=False,
        on_gap=None,
        on_state=None,
        client=None,
        backoff=Backoff(),
    )


def test_cursor_is_the_stream_start_until_the_first_message() -> None:
    c = core(None)
    c.started("41")
    assert c.sse_request()[2]["last-event-id"] == "41"
    item = c.handle(from_sse("message", ENV, "5"))
    assert item is not None
    assert c.cursor == "41"  # received, not yet handed over
    c.delivered(item)
    assert c.cursor == "5" and c.last_event_id == 5
    c.started("99")
    assert c.cursor == "5"


def test_earliest_stays_earliest_before_the_first_message() -> None:
    c = core("earliest")
    c.started("0")
    assert c.cursor == "earliest"


def test_patterns_and_lists_use_events_endpoint() -> None:
    c = core(None)
    c.topics = ["a", "b.*"]
    url, params, headers = c.sse_request()
    assert url == "http://h/events" and ("topic", "b.*") in params
    assert headers["authorization"] == "Bearer tok"
    assert c.ws_url() == "ws://h/ws?access_token=tok"


def test_out_of_order_is_malformed() -> None:
    c = core(None)
    c.delivered(c.handle(from_sse("message", ENV, "5")))  # type: ignore[arg-type]
    with pytest.raises(HeraldError) as info:
        c.handle(from_sse("message", ENV, "5"))
    assert info.value.type == MALFORMED


def test_ws_frames() -> None:
    assert from_ws('{"op":"subscribed","sub":"s","start_after":3}', "s").start_after == 3
    assert from_ws('{"op":"pong"}', "s").kind == "skip"
    with pytest.raises(HeraldError):
        from_ws(b"binary", "s")


def test_durations() -> None:
    assert duration(60) == "60s" and duration(0.25) == "250ms" and duration("1m") == "1m"
    assert seconds("1m30s") == 90 and seconds("500ms") == 0.5
    with pytest.raises(ValueError):
        seconds("soon")
