"""The resource namespaces, publish options and presence against a real herald."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from herald_client import Herald, HeraldError, Item

from .conftest import until


def test_publish_options_and_replay(herald: Herald) -> None:
    first = herald.publish("pay", "charge", idempotency_key="k1", ttl=60, priority="high")
    again = herald.publish("pay", "charge", idempotency_key="k1", ttl=60, priority="high")
    assert again["id"] == first["id"] and again.get("replayed") is True
    page = herald.topics.history("pay", after=0)
    env = page["messages"][0]
    assert env["priority"] == 4 and env.get("expires")
    scheduled = herald.publish("later", {"x": 1}, delay=600, key="k")
    assert "schedule_id" in scheduled
    listed = herald.scheduled.list(topic="later")["scheduled"]
    assert [s["schedule_id"] for s in listed] == [scheduled["schedule_id"]]
    assert herald.scheduled.get(scheduled["schedule_id"])["topic"] == "later"
    herald.scheduled.cancel(scheduled["schedule_id"])
    with pytest.raises(HeraldError) as info:
        herald.scheduled.get(scheduled["schedule_id"])
    assert info.value.status == 404


def test_topics_and_subscriptions(herald: Herald) -> None:
    herald.topics.configure("cfg", {"description": "d", "retention": {"max_messages": 10}})
    assert herald.topics.get("cfg")["config"].get("description") == "d"
    assert "cfg" in [t["name"] for t in herald.topics.list()["topics"]]
    sub = herald.subscriptions.create({"topic": "cfg", "mode": "pull", "start": "earliest"})
    ids = [m["id"] for m in herald.publish_batch("cfg", [1, 2, 3])["messages"]]
    pulled = herald.subscriptions.pull(sub["id"], {"max_messages": 3, "wait": "1s"})
    acks = [m["ack_id"] for m in pulled["messages"]]
    assert [m["message"]["id"] for m in pulled["messages"]] == ids
    assert herald.subscriptions.extend(sub["id"], acks[:1], 30)["updated"] == 1
    assert herald.subscriptions.nack(sub["id"], acks[1:2], 0.25)["updated"] == 1
    assert herald.subscriptions.ack(sub["id"], acks[2:])["acked"] == 1
    assert herald.subscriptions.seek(sub["id"], "earliest")["cursor"] == 0
    assert herald.subscriptions.seek(sub["id"], ids[0])["cursor"] == ids[0]
    herald.subscriptions.update(sub["id"], {"ack_deadline": "1m"})
    assert herald.subscriptions.get(sub["id"]).get("ack_deadline") == "1m"
    assert sub["id"] in [s["id"] for s in herald.subscriptions.list()["subscriptions"]]
    assert herald.dead_letters.list(subscription=sub["id"])["dead_letters"] == []
    herald.subscriptions.delete(sub["id"])
    herald.topics.delete("cfg")
    with pytest.raises(HeraldError) as info:
        herald.tokens.list()
    assert info.value.status == 409  # access control is off


def test_presence_events(herald: Herald) -> None:
    got: list[Item] = []
    sub = herald.subscribe("room", presence=True, client="alice")

    def read() -> None:
        for item in sub:
            got.append(item)

    threading.Thread(target=read, daemon=True).start()
    until(lambda: any(i.get("kind") == "join" for i in got), what="own join")
    assert herald.topics.presence("room")["count"] == 1
    herald.publish("room", "hi")
    until(lambda: any("id" in i for i in got), what="message")
    sub.close()
    join: Any = got[0]
    assert join["kind"] == "join" and join["client"] == "alice"
    assert sub.last_event_id == next(i for i in got if "id" in i)["id"]  # type: ignore[typeddict-item]
