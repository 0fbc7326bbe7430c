"""Scenario 6: a cursor older than retention raises GapError, or reaches on_gap."""

from __future__ import annotations

from typing import Any

import pytest

from herald_client import AsyncHerald, Gap, GapError, Herald

from .conftest import until
from .server import HeraldServer


@pytest.fixture
def pruned(make_server: Any) -> tuple[HeraldServer, list[int]]:
    server = make_server("--prune-interval", "1s")
    with Herald(server.url) as h:
        h.topics.configure("news", {"retention": {"max_messages": 5}})
        ids = [m["id"] for m in h.publish_batch("news", list(range(20)))["messages"]]
        until(
            lambda: h.topics.history("news", after=0).get("gap") is not None,
            timeout=20,
            what="history pruned",
        )
    return server, ids


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_gap_raises(pruned: tuple[HeraldServer, list[int]], transport: Any) -> None:
    server, ids = pruned
    sub = Herald(server.url).subscribe("news", from_=ids[0], transport=transport)
    with pytest.raises(GapError) as info:
        next(iter(sub))
    gap = info.value
    assert gap.after == ids[0]
    assert [t["topic"] for t in gap.topics] == ["news"]
    assert gap.topics[0]["lost_through"] >= ids[0]
    assert gap.resumed_from == ids[0]
    assert sub.state == "closed"


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_gap_reaches_on_gap(pruned: tuple[HeraldServer, list[int]], transport: Any) -> None:
    server, ids = pruned
    gaps: list[Gap] = []
    sub = Herald(server.url).subscribe(
        "news",
        from_=0,
        transport=transport,
        on_gap=gaps.append,
    )
    got = []
    for env in sub:
        got.append(env["id"])
        if env["id"] == ids[-1]:
            break
    assert got == ids[-5:]
    assert len(gaps) == 1 and gaps[0]["topics"][0]["topic"] == "news"


async def test_gap_async(pruned: tuple[HeraldServer, list[int]]) -> None:
    server, ids = pruned
    async with AsyncHerald(server.url) as h:
        sub = h.subscribe(["news", "other.*"], from_=ids[1])
        with pytest.raises(GapError) as info:
            async for _ in sub:
                pass
        assert info.value.topics[0]["topic"] == "news"
