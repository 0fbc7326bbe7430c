"""Every REST call of the resource namespaces, built once for both clients."""

from __future__ import annotations

from typing import Any

from ._base import Req, duration, seg
from ._generated import SeekTarget
from .errors import Delay


def _page(after: Any = None, limit: int | None = None, **more: Any) -> dict[str, Any]:
    return {"after": after, "limit": limit, **more}


AckIds = list[str]
"""Ack ids, as pulled."""


class TopicReqs:
    """``/topics``."""

    @staticmethod
    def list() -> Req:
        return Req("GET", "/topics")

    @staticmethod
    def get(topic: str) -> Req:
        return Req("GET", f"/topics/{seg(topic)}")

    @staticmethod
    def configure(topic: str, config: Any) -> Req:
        return Req("PUT", f"/topics/{seg(topic)}", json=config)

    @staticmethod
    def delete(topic: str) -> Req:
        return Req("DELETE", f"/topics/{seg(topic)}")

    @staticmethod
    def history(topic: str, after: int | None, limit: int | None, filter: str | None = None) -> Req:
        params = _page(after, limit, filter=filter)
        return Req("GET", f"/topics/{seg(topic)}/messages", params=params)

    @staticmethod
    def presence(topic: str, after: str | None, limit: int | None) -> Req:
        return Req("GET", f"/topics/{seg(topic)}/presence", params=_page(after, limit))


class SubscriptionReqs:
    """``/subscriptions``."""

    @staticmethod
    def create(spec: Any) -> Req:
        return Req("POST", "/subscriptions", json=spec)

    @staticmethod
    def list(after: int | None, limit: int | None) -> Req:
        return Req("GET", "/subscriptions", params=_page(after, limit))

    @staticmethod
    def get(sub: int) -> Req:
        return Req("GET", f"/subscriptions/{seg(sub)}")

    @staticmethod
    def update(sub: int, patch: Any) -> Req:
        return Req("PATCH", f"/subscriptions/{seg(sub)}", json=patch)

    @staticmethod
    def delete(sub: int) -> Req:
        return Req("DELETE", f"/subscriptions/{seg(sub)}")

    @staticmethod
    def pull(sub: int, req: Any) -> Req:
        return Req("POST", f"/subscriptions/{seg(sub)}/pull", json=req)

    @staticmethod
    def ack(sub: int, ack_ids: AckIds) -> Req:
        return Req("POST", f"/subscriptions/{seg(sub)}/ack", json={"ack_ids": list(ack_ids)})

    @staticmethod
    def nack(sub: int, ack_ids: AckIds, delay: Delay | None) -> Req:
        body: dict[str, Any] = {"ack_ids": list(ack_ids)}
        if delay is not None:
            body["delay"] = duration(delay)
        return Req("POST", f"/subscriptions/{seg(sub)}/nack", json=body)

    @staticmethod
    def extend(sub: int, ack_ids: AckIds, deadline: Delay) -> Req:
        body = {"ack_ids": list(ack_ids), "ack_deadline": duration(deadline)}
        return Req("POST", f"/subscriptions/{seg(sub)}/extend", json=body)

    @staticmethod
    def seek(sub: int, to: SeekTarget) -> Req:
        return Req("POST", f"/subscriptions/{seg(sub)}/seek", json={"to": to})

    @staticmethod
    def attempts(sub: int, message_id: int | None, after: int | None, limit: int | None) -> Req:
        params = _page(after, limit, message_id=message_id)
        return Req("GET", f"/subscriptions/{seg(sub)}/attempts", params=params)

    @staticmethod
    def rotate_secret(sub: int) -> Req:
        return Req("POST", f"/subscriptions/{seg(sub)}/rotate-secret")


class DeadLetterReqs:
    """``/dead-letters``."""

    @staticmethod
    def list(
        subscription: int | None, topic: str | None, after: int | None, limit: int | None
    ) -> Req:
        params = _page(after, limit, subscription=subscription, topic=topic)
        return Req("GET", "/dead-letters", params=params)

    @staticmethod
    def get(dl: int) -> Req:
        return Req("GET", f"/dead-letters/{seg(dl)}")

    @staticmethod
    def delete(dl: int) -> Req:
        return Req("DELETE", f"/dead-letters/{seg(dl)}")

    @staticmethod
    def redrive(dl: int) -> Req:
        return Req("POST", f"/dead-letters/{seg(dl)}/redrive")

    @staticmethod
    def redrive_all(subscription: int, topic: str | None) -> Req:
        body: dict[str, Any] = {"subscription": subscription}
        if topic is not None:
            body["topic"] = topic
        return Req("POST", "/dead-letters/redrive", json=body)


class TokenReqs:
    """``/tokens``."""

    @staticmethod
    def create(spec: Any) -> Req:
        return Req("POST", "/tokens", json=spec)

    @staticmethod
    def list(after: int | None, limit: int | None) -> Req:
        return Req("GET", "/tokens", params=_page(after, limit))

    @staticmethod
    def revoke(token_id: int) -> Req:
        return Req("DELETE", f"/tokens/{seg(token_id)}")


class ScheduledReqs:
    """``/scheduled``."""

    @staticmethod
    def list(topic: str | None, after: int | None, limit: int | None) -> Req:
        return Req("GET", "/scheduled", params=_page(after, limit, topic=topic))

    @staticmethod
    def get(schedule_id: int) -> Req:
        return Req("GET", f"/scheduled/{seg(schedule_id)}")

    @staticmethod
    def cancel(schedule_id: int) -> Req:
        return Req("DELETE", f"/scheduled/{seg(schedule_id)}")
