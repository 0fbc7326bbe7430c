"""Sync resource namespaces: one typed call per REST operation."""

from __future__ import annotations

from typing import Any, cast

from ._generated import (
    AckResponse,
    AttemptPage,
    CreateSubscription,
    CreateToken,
    DeadLetterPage,
    DeadLetterView,
    MessagesPage,
    PatchSubscription,
    PresenceView,
    PullRequest,
    PullResponse,
    Redriven,
    ReletResponse,
    RotatedSecret,
    ScheduledPage,
    ScheduledView,
    SeekResponse,
    SeekTarget,
    SubscriptionPage,
    SubscriptionView,
    TokenPage,
    TokenView,
    TopicConfig,
    TopicList,
    TopicView,
)
from ._http import SyncTransport
from ._requests import DeadLetterReqs, ScheduledReqs, SubscriptionReqs, TokenReqs, TopicReqs
from .errors import Delay

AckIds = list[str]
"""Ack ids, as pulled."""


class Topics:
    """``topics.list()``, ``get``, ``configure``, ``delete``, ``history``, ``presence``."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def list(self) -> TopicList:
        """``GET /topics``."""
        return cast(TopicList, self._t.call(TopicReqs.list()))

    def get(self, topic: str) -> TopicView:
        """``GET /topics/{topic}``."""
        return cast(TopicView, self._t.call(TopicReqs.get(topic)))

    def configure(self, topic: str, config: TopicConfig) -> TopicConfig:
        """``PUT /topics/{topic}``: the whole configuration."""
        return cast(TopicConfig, self._t.call(TopicReqs.configure(topic, config)))

    def delete(self, topic: str) -> None:
        """``DELETE /topics/{topic}``."""
        self._t.call(TopicReqs.delete(topic))

    def history(
        self,
        topic: str,
        *,
        after: int | None = None,
        limit: int | None = None,
        filter: str | None = None,
    ) -> MessagesPage:
        """``GET /topics/{topic}/messages``."""
        return cast(MessagesPage, self._t.call(TopicReqs.history(topic, after, limit, filter)))

    def presence(
        self, topic: str, *, after: str | None = None, limit: int | None = None
    ) -> PresenceView:
        """``GET /topics/{topic}/presence``."""
        return cast(PresenceView, self._t.call(TopicReqs.presence(topic, after, limit)))


class Subscriptions:
    """Webhook and pull subscriptions (``/subscriptions…``)."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create(self, spec: CreateSubscription) -> SubscriptionView:
        """``POST /subscriptions``."""
        return cast(SubscriptionView, self._t.call(SubscriptionReqs.create(spec)))

    def list(self, *, after: int | None = None, limit: int | None = None) -> SubscriptionPage:
        """``GET /subscriptions``."""
        return cast(SubscriptionPage, self._t.call(SubscriptionReqs.list(after, limit)))

    def get(self, sub: int) -> SubscriptionView:
        """``GET /subscriptions/{id}``."""
        return cast(SubscriptionView, self._t.call(SubscriptionReqs.get(sub)))

    def update(self, sub: int, patch: PatchSubscription) -> SubscriptionView:
        """``PATCH /subscriptions/{id}``."""
        return cast(SubscriptionView, self._t.call(SubscriptionReqs.update(sub, patch)))

    def delete(self, sub: int) -> None:
        """``DELETE /subscriptions/{id}``."""
        self._t.call(SubscriptionReqs.delete(sub))

    def pull(self, sub: int, req: PullRequest, *, timeout: float | None = None) -> PullResponse:
        """``POST /subscriptions/{id}/pull`` (the timeout should exceed ``wait``)."""
        return cast(PullResponse, self._t.call(SubscriptionReqs.pull(sub, req), timeout))

    def ack(self, sub: int, ack_ids: AckIds) -> AckResponse:
        """``POST /subscriptions/{id}/ack``."""
        return cast(AckResponse, self._t.call(SubscriptionReqs.ack(sub, ack_ids)))

    def nack(self, sub: int, ack_ids: AckIds, delay: Delay | None = None) -> ReletResponse:
        """``POST /subscriptions/{id}/nack`` (``delay`` in seconds or a duration string)."""
        return cast(ReletResponse, self._t.call(SubscriptionReqs.nack(sub, ack_ids, delay)))

    def extend(self, sub: int, ack_ids: AckIds, deadline: Delay) -> ReletResponse:
        """``POST /subscriptions/{id}/extend``."""
        return cast(ReletResponse, self._t.call(SubscriptionReqs.extend(sub, ack_ids, deadline)))

    def seek(self, sub: int, to: SeekTarget) -> SeekResponse:
        """``POST /subscriptions/{id}/seek`` to ``"earliest"``, ``"head"`` or an id."""
        return cast(SeekResponse, self._t.call(SubscriptionReqs.seek(sub, to)))

    def attempts(
        self,
        sub: int,
        *,
        message_id: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> AttemptPage:
        """``GET /subscriptions/{id}/attempts``."""
        req = SubscriptionReqs.attempts(sub, message_id, after, limit)
        return cast(AttemptPage, self._t.call(req))

    def rotate_secret(self, sub: int) -> RotatedSecret:
        """``POST /subscriptions/{id}/rotate-secret``."""
        return cast(RotatedSecret, self._t.call(SubscriptionReqs.rotate_secret(sub)))


class DeadLetters:
    """``/dead-letters…``."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def list(
        self,
        *,
        subscription: int | None = None,
        topic: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> DeadLetterPage:
        """``GET /dead-letters``."""
        req = DeadLetterReqs.list(subscription, topic, after, limit)
        return cast(DeadLetterPage, self._t.call(req))

    def get(self, dead_letter: int) -> DeadLetterView:
        """``GET /dead-letters/{id}``."""
        return cast(DeadLetterView, self._t.call(DeadLetterReqs.get(dead_letter)))

    def delete(self, dead_letter: int) -> None:
        """``DELETE /dead-letters/{id}``."""
        self._t.call(DeadLetterReqs.delete(dead_letter))

    def redrive(self, dead_letter: int) -> Any:
        """``POST /dead-letters/{id}/redrive``."""
        return self._t.call(DeadLetterReqs.redrive(dead_letter))

    def redrive_all(self, *, subscription: int, topic: str | None = None) -> Redriven:
        """``POST /dead-letters/redrive``."""
        return cast(Redriven, self._t.call(DeadLetterReqs.redrive_all(subscription, topic)))


class Tokens:
    """``/tokens…`` (admin)."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create(self, spec: CreateToken) -> TokenView:
        """``POST /tokens``: the answer shows the token once."""
        return cast(TokenView, self._t.call(TokenReqs.create(spec)))

    def list(self, *, after: int | None = None, limit: int | None = None) -> TokenPage:
        """``GET /tokens``."""
        return cast(TokenPage, self._t.call(TokenReqs.list(after, limit)))

    def revoke(self, token_id: int) -> None:
        """``DELETE /tokens/{id}``."""
        self._t.call(TokenReqs.revoke(token_id))


class Scheduled:
    """``/scheduled…``."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def list(
        self, *, topic: str | None = None, after: int | None = None, limit: int | None = None
    ) -> ScheduledPage:
        """``GET /scheduled``."""
        return cast(ScheduledPage, self._t.call(ScheduledReqs.list(topic, after, limit)))

    def get(self, schedule_id: int) -> ScheduledView:
        """``GET /scheduled/{id}``."""
        return cast(ScheduledView, self._t.call(ScheduledReqs.get(schedule_id)))

    def cancel(self, schedule_id: int) -> None:
        """``DELETE /scheduled/{id}``."""
        self._t.call(ScheduledReqs.cancel(schedule_id))
