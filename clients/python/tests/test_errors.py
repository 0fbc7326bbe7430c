"""Scenario 4: schema violations are 422; a bad token is 401 on a call and a stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from herald_client import AsyncHerald, Herald, HeraldError

from .conftest import JWT_SECRET, mint
from .fake import fake_server
from .server import HeraldServer


def test_schema_violation_is_422(herald: Herald) -> None:
    schema = {"type": "object", "required": ["total"], "properties": {"total": {"minimum": 0}}}
    herald.topics.configure("orders", {"schema": schema})
    with pytest.raises(HeraldError) as info:
        herald.publish("orders", {"total": -1})
    error = info.value
    assert error.status == 422
    assert error.type == "urn:herald:problem:schema-violation"
    assert error.errors and error.errors[0]["path"] == "/total"
    assert error.request_id
    with pytest.raises(HeraldError) as batch:
        herald.publish_batch("orders", [{"total": 1}, {"total": -2}])
    assert batch.value.status == 422 and batch.value.errors[0].get("index") == 1


@pytest.fixture
def auth_server(make_server: Callable[..., HeraldServer]) -> HeraldServer:
    return make_server("--auth-jwt-secret", JWT_SECRET)


def test_bad_token_is_401_on_a_call(auth_server: HeraldServer) -> None:
    good = mint(JWT_SECRET, "alice", {"publish": ["orders.**"], "subscribe": ["orders.**"]})
    with Herald(auth_server.url, token=good) as h:
        assert h.publish("orders.eu", {"total": 1})["seq"] == 1
    with Herald(auth_server.url, token="not-a-token") as h, pytest.raises(HeraldError) as info:
        h.publish("orders.eu", {"total": 1})
    assert info.value.status == 401
    assert info.value.type.startswith("urn:herald:problem:")


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_bad_token_ends_subscription(auth_server: HeraldServer, transport: Any) -> None:
    states: list[str] = []
    bad = mint("another-secret-that-is-also-32-bytes-long!", "alice", {"subscribe": ["**"]})
    sub = Herald(auth_server.url, token=bad).subscribe(
        "orders.eu", transport=transport, on_state=lambda s, e: states.append(s)
    )
    with pytest.raises(HeraldError) as info:
        next(iter(sub))
    assert info.value.status == 401
    assert states == ["connecting", "closed"]


async def test_bad_token_async(auth_server: HeraldServer) -> None:
    async with AsyncHerald(auth_server.url, token="x") as h:
        with pytest.raises(HeraldError) as info:
            await h.publish("orders.eu", "hi")
        assert info.value.status == 401
        for transport in ("sse", "ws"):
            sub = h.subscribe("orders.eu", transport=transport)  # type: ignore[arg-type]
            with pytest.raises(HeraldError) as stream:
                await asyncio.wait_for(sub.__anext__(), 10)
            assert stream.value.status == 401 and sub.state == "closed"


def test_scope_is_403(auth_server: HeraldServer) -> None:
    token = mint(JWT_SECRET, "alice", {"publish": ["orders.**"], "subscribe": ["orders.**"]})
    with Herald(auth_server.url, token=token) as h:
        with pytest.raises(HeraldError) as info:
            h.publish("billing", "no")
        assert info.value.status == 403
        with pytest.raises(HeraldError) as stream:
            next(iter(h.subscribe("**")))
        assert stream.value.status == 403


def test_non_problem_body_is_about_blank() -> None:
    with (
        fake_server(lambda h, n: (500, {"content-type": "text/html"}, b"<h1>oops</h1>")) as (
            url,
            _,
        ),
        Herald(url) as h,
        pytest.raises(HeraldError) as info,
    ):
        h.publish("t", "x")
    assert info.value.type == "about:blank" and info.value.status == 500


def test_retry_after_is_read() -> None:
    answer = (429, {"content-type": "application/problem+json", "retry-after": "7"}, b"{}")
    with (
        fake_server(lambda h, n: answer) as (url, _),
        Herald(url) as h,
        pytest.raises(HeraldError) as info,
    ):
        h.publish("t", "x")
    assert info.value.retry_after == 7.0 and info.value.status == 429


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_expired_token_ends_subscription(auth_server: HeraldServer, transport: Any) -> None:
    """The stream ends at the token's exp; the reconnect's 401 ends it (no loop)."""
    token = mint(JWT_SECRET, "alice", {"subscribe": ["orders.**"]}, ttl=2)
    states: list[str] = []
    sub = Herald(auth_server.url, token=token).subscribe(
        "orders.eu", transport=transport, on_state=lambda s, e: states.append(s)
    )
    with pytest.raises(HeraldError) as info:
        next(iter(sub))
    assert info.value.status == 401
    assert states[:2] == ["connecting", "connected"] and states[-1] == "closed"
    assert states.count("connecting") <= 3
