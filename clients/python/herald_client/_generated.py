"""Wire types generated from openapi/openapi.json. Do not edit.

Regenerate with ``python scripts/gen_types.py``.
"""


from typing import Any, Literal, Optional, Union

from typing_extensions import NotRequired, Required, TypedDict

__all__ = ["Ack", "AckRequest", "AckResponse", "AttemptPage", "AttemptView", "BatchAck", "CircuitEvent", "CreateSubscription", "CreateToken", "DeadLetterPage", "DeadLetterView", "DeadLetteredEvent", "DisabledEvent", "Envelope", "ExtendRequest", "HistoryGap", "MessagesPage", "NackRequest", "PatchSubscription", "PresenceView", "Problem", "PullRequest", "PullResponse", "PullStatsView", "Pulled", "RedriveAll", "Redriven", "ReletResponse", "Retention", "RotatedSecret", "Scheduled", "ScheduledBatch", "ScheduledPage", "ScheduledView", "SchemaViolation", "SeekPoint", "SeekRequest", "SeekResponse", "SeekTarget", "SseEvent", "Stats", "SubscriberView", "SubscriptionPage", "SubscriptionView", "TokenPage", "TokenView", "TopicConfig", "TopicList", "TopicView"]


class Ack(TypedDict, total=False):
    """What a publisher is told once its message is committed."""

    id: Required[int]
    seq: Required[int]
    time: Required[str]
    topic: Required[str]


class AckRequest(TypedDict, total=False):
    ack_ids: Required[list[str]]


class AckResponse(TypedDict, total=False):
    acked: Required[int]
    unknown: Required[list[str]]


class AttemptPage(TypedDict, total=False):
    attempts: Required[list["AttemptView"]]
    next: NotRequired[Optional[int]]


class AttemptView(TypedDict, total=False):
    duration_ms: Required[int]
    error: NotRequired[Optional[str]]
    id: Required[int]
    message_id: Required[int]
    response: NotRequired[Optional[str]]
    status: NotRequired[Optional[int]]
    time: Required[str]


class BatchAck(TypedDict, total=False):
    """The answer to a batch: every message's id and seq, in order."""

    count: Required[int]
    messages: Required[list["Ack"]]


class CircuitEvent(TypedDict, total=False):
    """`data` of `$herald.subscription.circuit` (event `circuit`): a webhook's"""

    circuit: Required[str]
    subscription_id: Required[int]
    time: Required[str]
    topic: Required[str]
    url: Required[str]


class CreateSubscription(TypedDict, total=False):
    ack_deadline: NotRequired[Optional[str]]
    event_types: NotRequired[Optional[list[str]]]
    filter: NotRequired[Optional[str]]
    max_attempts: NotRequired[Optional[int]]
    max_backoff: NotRequired[Optional[str]]
    max_backoff_ms: NotRequired[Optional[int]]
    min_backoff: NotRequired[Optional[str]]
    min_backoff_ms: NotRequired[Optional[int]]
    mode: NotRequired[Optional[str]]
    ordered: NotRequired[Optional[bool]]
    paused: NotRequired[bool]
    rate_limit: NotRequired[Optional[int]]
    secret: NotRequired[Optional[str]]
    start: NotRequired[Optional[dict[str, Any]]]
    timeout: NotRequired[Optional[str]]
    timeout_ms: NotRequired[Optional[int]]
    topic: Required[str]
    url: NotRequired[Optional[str]]


class CreateToken(TypedDict, total=False):
    admin: NotRequired[bool]
    expires: NotRequired[Optional[str]]
    publish: NotRequired[list[str]]
    subject: NotRequired[Optional[str]]
    subscribe: NotRequired[list[str]]


class DeadLetterPage(TypedDict, total=False):
    dead_letters: Required[list["DeadLetterView"]]
    next: NotRequired[Optional[int]]


class DeadLetterView(TypedDict, total=False):
    attempts: Required[int]
    first_attempt: Required[str]
    id: Required[int]
    last_attempt: Required[str]
    last_error: NotRequired[Optional[str]]
    last_status: NotRequired[Optional[int]]
    message: NotRequired[Optional["Envelope"]]
    message_id: Required[int]
    reason: Required[str]
    subscription: Required[int]
    topic: Required[str]


class DeadLetteredEvent(TypedDict, total=False):
    """`data` of `$herald.delivery.dead_lettered` (event `dead_lettered`): a"""

    attempts: Required[int]
    dead_letter_id: Required[int]
    error: NotRequired[Optional[str]]
    message_id: Required[int]
    reason: Required[str]
    status: NotRequired[Optional[int]]
    subscription_id: Required[int]
    time: Required[str]
    topic: Required[str]


class DisabledEvent(TypedDict, total=False):
    """`data` of `$herald.subscription.disabled` (event `disabled`): herald"""

    failing_since: Required[str]
    reason: Required[str]
    subscription_id: Required[int]
    time: Required[str]
    topic: Required[str]
    url: Required[str]


class Envelope(TypedDict, total=False):
    """The message envelope: the `data:` of every SSE event, the items of the"""

    data: Required[Any]
    event: Required[str]
    expires: NotRequired[Optional[str]]
    id: Required[int]
    key: NotRequired[Optional[str]]
    priority: Required[int]
    seq: Required[int]
    time: Required[str]
    topic: Required[str]


class ExtendRequest(TypedDict, total=False):
    ack_deadline: Required[str]
    ack_ids: Required[list[str]]


class HistoryGap(TypedDict, total=False):
    """Messages of the topic after the cursor that retention removed."""

    after: Required[int]
    lost_through: Required[int]


class MessagesPage(TypedDict, total=False):
    """A page of history."""

    gap: NotRequired[Optional["HistoryGap"]]
    messages: Required[list["Envelope"]]
    next: Required[int]


class NackRequest(TypedDict, total=False):
    ack_ids: Required[list[str]]
    delay: NotRequired[Optional[str]]


class PatchSubscription(TypedDict, total=False):
    """Every field optional; `"filter": null` removes the filter."""

    ack_deadline: NotRequired[Optional[str]]
    event_types: NotRequired[Optional[list[str]]]
    filter: NotRequired[Optional[str]]
    max_attempts: NotRequired[Optional[int]]
    max_backoff: NotRequired[Optional[str]]
    max_backoff_ms: NotRequired[Optional[int]]
    min_backoff: NotRequired[Optional[str]]
    min_backoff_ms: NotRequired[Optional[int]]
    paused: NotRequired[Optional[bool]]
    rate_limit: NotRequired[Optional[int]]
    timeout: NotRequired[Optional[str]]
    timeout_ms: NotRequired[Optional[int]]
    url: NotRequired[Optional[str]]


class PresenceView(TypedDict, total=False):
    """A page of a topic's presence."""

    count: Required[int]
    next: NotRequired[Optional[str]]
    subscribers: Required[list["SubscriberView"]]


class Problem(TypedDict, total=False):
    """The body of a problem answer."""

    detail: Required[str]
    errors: NotRequired[list["SchemaViolation"]]
    request_id: NotRequired[Optional[str]]
    status: Required[int]
    title: Required[str]
    type: Required[str]


class PullRequest(TypedDict, total=False):
    ack_ids: NotRequired[Optional[list[str]]]
    max_messages: NotRequired[Optional[int]]
    wait: NotRequired[Optional[str]]


class PullResponse(TypedDict, total=False):
    acks: NotRequired[Optional["AckResponse"]]
    messages: Required[list["Pulled"]]


class PullStatsView(TypedDict, total=False):
    """What `GET /subscriptions/{id}` adds for a pull subscription (absent"""

    acked: NotRequired[Optional[int]]
    backlog: NotRequired[Optional[int]]
    dead_lettered: NotRequired[Optional[int]]
    expired: NotRequired[Optional[int]]
    in_flight: NotRequired[Optional[int]]
    oldest_unacked_age_ms: NotRequired[Optional[int]]


class Pulled(TypedDict, total=False):
    ack_id: Required[str]
    attempt: Required[int]
    message: Required["Envelope"]


class RedriveAll(TypedDict, total=False):
    subscription: Required[int]
    topic: NotRequired[Optional[str]]


class Redriven(TypedDict, total=False):
    redriven: Required[int]


class ReletResponse(TypedDict, total=False):
    unknown: Required[list[str]]
    updated: Required[int]


class Retention(TypedDict, total=False):
    """Retention bounds. A message goes when either says so."""

    max_age: NotRequired[Optional[str]]
    max_messages: NotRequired[Optional[int]]


class RotatedSecret(TypedDict, total=False):
    previous_valid_until: Required[str]
    secret: Required[str]


class Scheduled(TypedDict, total=False):
    """The answer to a scheduled publish (`202`). A batch answers"""

    deliver_at: Required[str]
    schedule_id: Required[int]
    topic: Required[str]


class ScheduledBatch(TypedDict, total=False):
    """The answer to a scheduled batch."""

    count: Required[int]
    scheduled: Required[list["Scheduled"]]


class ScheduledPage(TypedDict, total=False):
    next: NotRequired[Optional[int]]
    scheduled: Required[list["ScheduledView"]]


class ScheduledView(TypedDict, total=False):
    """A scheduled message, waiting for its time."""

    created: Required[str]
    data: Required[Any]
    deliver_at: Required[str]
    event: Required[str]
    key: NotRequired[Optional[str]]
    priority: Required[int]
    schedule_id: Required[int]
    topic: Required[str]
    ttl_ms: NotRequired[Optional[int]]


class SchemaViolation(TypedDict, total=False):
    """One reason a payload does not satisfy the schema."""

    index: NotRequired[Optional[int]]
    message: Required[str]
    path: Required[str]


SeekPoint = Literal["earliest", "head"]


class SeekRequest(TypedDict, total=False):
    to: Required["SeekTarget"]


class SeekResponse(TypedDict, total=False):
    cursor: Required[int]


SeekTarget = Union["SeekPoint", int]


class SseEvent(TypedDict, total=False):
    """One Server-Sent Event as an SSE client parses it (the response of the"""

    data: Required[str]
    event: NotRequired[Optional[str]]
    id: NotRequired[Optional[str]]


class Stats(TypedDict, total=False):
    dead_lettered: Required[int]
    delivered: Required[int]
    expired: Required[int]
    pending: Required[int]
    retrying: Required[int]


class SubscriberView(TypedDict, total=False):
    """One live stream."""

    client: Required[str]
    connection: Required[str]
    node: Required[str]
    since: Required[str]


class SubscriptionPage(TypedDict, total=False):
    next: NotRequired[Optional[int]]
    subscriptions: Required[list["SubscriptionView"]]


class SubscriptionView(PullStatsView, total=False):
    ack_deadline: NotRequired[Optional[str]]
    circuit: NotRequired[Optional[str]]
    circuit_until: NotRequired[Optional[str]]
    created: Required[str]
    cursor: Required[int]
    disabled_reason: NotRequired[Optional[str]]
    event_types: NotRequired[Optional[list[str]]]
    failing_since: NotRequired[Optional[str]]
    filter: NotRequired[Optional[str]]
    id: Required[int]
    max_attempts: Required[int]
    max_backoff_ms: Required[int]
    min_backoff_ms: Required[int]
    mode: Required[str]
    ordered: Required[bool]
    owner_expires: NotRequired[Optional[str]]
    paused: Required[bool]
    previous_secret_valid_until: NotRequired[Optional[str]]
    rate_limit: NotRequired[Optional[int]]
    secret: NotRequired[Optional[str]]
    stats: NotRequired[Optional["Stats"]]
    timeout_ms: NotRequired[Optional[int]]
    topic: Required[str]
    updated: Required[str]
    url: NotRequired[Optional[str]]


class TokenPage(TypedDict, total=False):
    next: NotRequired[Optional[int]]
    tokens: Required[list["TokenView"]]


class TokenView(TypedDict, total=False):
    admin: Required[bool]
    created: Required[str]
    expires: NotRequired[Optional[str]]
    id: Required[int]
    publish: Required[list[str]]
    subject: NotRequired[Optional[str]]
    subscribe: Required[list[str]]
    token: NotRequired[Optional[str]]


class TopicConfig(TypedDict, total=False):
    """What `PUT /topics/{topic}` takes and `GET` shows under `config`."""

    description: NotRequired[Optional[str]]
    max_subscribers: NotRequired[Optional[int]]
    message_ttl: NotRequired[Optional[str]]
    retention: NotRequired[Optional["Retention"]]
    schema: NotRequired[Any]


class TopicList(TypedDict, total=False):
    topics: Required[list["TopicView"]]


class TopicView(TypedDict, total=False):
    """A topic as the API shows it."""

    config: Required["TopicConfig"]
    created: Required[str]
    last_published: NotRequired[Optional[str]]
    last_seq: Required[int]
    message_count: Required[int]
    name: Required[str]
    oldest_retained: NotRequired[Optional[int]]
    retention: Required["Retention"]
    subscribers: Required[int]
