"""The official Python client for herald (see docs/clients.md).

``Herald`` (sync) and ``AsyncHerald`` (asyncio) have the same methods:
``publish``, ``publish_batch``, ``subscribe``, ``consume`` and the resource
namespaces ``topics``, ``subscriptions``, ``dead_letters``, ``tokens`` and
``scheduled``.
"""

from ._frames import Gap, GapTopic, Item, PresenceEvent
from ._generated import Envelope, Pulled
from ._subcore import State
from .async_client import AsyncHerald
from .async_consumer import AsyncConsumer
from .async_subscription import AsyncSubscription
from .backoff import Backoff
from .client import Herald
from .consumer import Consumer
from .errors import MALFORMED, GapError, HeraldError, Retry
from .subscription import Subscription

__all__ = [
    "MALFORMED",
    "AsyncConsumer",
    "AsyncHerald",
    "AsyncSubscription",
    "Backoff",
    "Consumer",
    "Envelope",
    "Gap",
    "GapError",
    "GapTopic",
    "Herald",
    "HeraldError",
    "Item",
    "PresenceEvent",
    "Pulled",
    "Retry",
    "State",
    "Subscription",
]
__version__ = "0.1.0"
