"""``AsyncHerald``: the asyncio client."""

from __future__ import annotations

from typing import Any, Union, cast

import httpx

from ._base import batch_req, publish_req, publish_result
from ._consumecore import OnError
from ._generated import Ack, BatchAck, Pulled, ScheduledBatch
from ._generated import Scheduled as ScheduledAck
from ._http import AsyncTransport
from ._subcore import OnGap, OnState, SubscriptionCore, Transport
from .async_consumer import AsyncConsumer, AsyncHandler
from .async_resources import DeadLetters, Scheduled, Subscriptions, Tokens, Topics
from .async_subscription import AsyncSubscription
from .backoff import Backoff
from .errors import Delay

PublishResult = Union[Ack, ScheduledAck]
"""``{id, topic, seq, time}`` (201), or ``{schedule_id, topic, deliver_at}`` (202);
with ``replayed: True`` added when herald answered an earlier request's result."""
BatchResult = Union[BatchAck, ScheduledBatch]
"""``{count, messages: [Ack…]}``, or ``{count, scheduled: [Scheduled…]}``."""

__all__ = ["AsyncHerald", "Pulled"]


class AsyncHerald:
    """A herald server at ``url``, with an optional bearer ``token``.

    ``timeout`` (seconds) applies to single calls; ``http_client`` lets you bring
    your own ``httpx.AsyncClient`` (its lifetime is then yours).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._t = AsyncTransport(url, token, timeout, http_client)
        self.topics = Topics(self._t)
        self.subscriptions = Subscriptions(self._t)
        self.dead_letters = DeadLetters(self._t)
        self.tokens = Tokens(self._t)
        self.scheduled = Scheduled(self._t)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._t.url

    async def publish(
        self,
        topic: str,
        data: Any,
        *,
        event: str | None = None,
        key: str | None = None,
        priority: int | str | None = None,
        idempotency_key: str | None = None,
        ttl: Delay | None = None,
        delay: Delay | None = None,
        at: str | None = None,
        traceparent: str | None = None,
    ) -> PublishResult:
        """Publish one message: ``{id, topic, seq, time}``, or ``{schedule_id, …}``."""
        req = publish_req(
            topic,
            data,
            idempotency_key=idempotency_key,
            traceparent=traceparent,
            event=event,
            key=key,
            priority=priority,
            ttl=ttl,
            delay=delay,
            at=at,
        )
        return cast(PublishResult, publish_result(await self._t.send(req)))

    async def publish_batch(self, topic: str, items: list[Any], **options: Any) -> BatchResult:
        """Publish several messages at once, all or nothing: one answer per item."""
        response = await self._t.send(batch_req(topic, items, **options))
        return cast(BatchResult, publish_result(response))

    def subscribe(
        self,
        topics: str | list[str],
        *,
        filter: str | None = None,
        from_: str | int | None = None,
        transport: Transport = "sse",
        presence: bool = False,
        on_gap: OnGap | None = None,
        on_state: OnState | None = None,
        client: str | None = None,
        backoff: Backoff | None = None,
    ) -> AsyncSubscription:
        """Stream messages with exact resume (``from_``: ``"earliest"``, an id, or live)."""
        core = SubscriptionCore(
            base_url=self._t.url,
            token=self._t.token,
            topics=topics,
            filter=filter,
            from_=from_,
            transport=transport,
            presence=presence,
            on_gap=on_gap,
            on_state=on_state,
            client=client,
            backoff=backoff or Backoff(),
        )
        return AsyncSubscription(core, self._t.http)

    def consume(
        self,
        subscription_id: int,
        handler: AsyncHandler,
        *,
        concurrency: int = 1,
        max_in_flight: int | None = None,
        wait: float | str = 20.0,
        on_error: OnError | None = None,
        backoff: Backoff | None = None,
    ) -> AsyncConsumer:
        """Run ``handler`` over a pull subscription in asyncio tasks (call from a running loop)."""
        return AsyncConsumer(
            self._t,
            subscription_id,
            handler,
            concurrency=concurrency,
            max_in_flight=max_in_flight,
            wait=wait,
            on_error=on_error,
            backoff=backoff,
        )

    async def aclose(self) -> None:
        """Close the HTTP client (if this object made it)."""
        await self._t.aclose()

    async def __aenter__(self) -> AsyncHerald:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
