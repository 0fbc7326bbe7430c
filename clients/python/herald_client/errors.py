"""One error hierarchy for everything herald (or the client) can refuse."""

from __future__ import annotations

from typing import Any, Union

from ._generated import SchemaViolation

MALFORMED = "urn:herald:client:malformed"

Delay = Union[float, int, str]
"""A delay: seconds (``1.5``) or one of herald's duration strings (``"10s"``)."""


class HeraldError(Exception):
    """An answer that is not 2xx, or input from herald the client cannot accept.

    ``type`` is the problem type (``urn:herald:problem:…``; ``about:blank`` when
    the body was not problem+json; ``urn:herald:client:malformed`` for bad stream
    input, with ``status`` 0). ``retry_after`` is in seconds.
    """

    def __init__(
        self,
        *,
        type: str,
        status: int,
        title: str = "",
        detail: str = "",
        request_id: str | None = None,
        errors: list[SchemaViolation] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.type = type
        self.status = status
        self.title = title
        self.detail = detail
        self.request_id = request_id
        self.errors: list[SchemaViolation] = errors or []
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"HeraldError(type={self.type!r}, status={self.status}, detail={self.detail!r})"


class GapError(HeraldError):
    """History after the subscription's cursor is gone (retention), and no ``on_gap``."""

    def __init__(self, gap: dict[str, Any]) -> None:
        super().__init__(
            type="urn:herald:client:gap",
            status=0,
            title="Gap",
            detail=f"messages after {gap.get('after')} are gone: {gap.get('topics')}",
        )
        self.gap = gap
        self.topics: list[dict[str, Any]] = list(gap.get("topics") or [])
        self.after: int = int(gap.get("after", 0))
        self.resumed_from: int = int(gap.get("resumed_from", 0))
        self.oldest_available: int | None = gap.get("oldest_available")


def malformed(detail: str) -> HeraldError:
    """The error for stream input that breaks the protocol (never skipped)."""
    return HeraldError(type=MALFORMED, status=0, title="Malformed stream", detail=detail)


class Retry(Exception):
    """Raise from a ``consume`` handler to nack the message with ``delay``."""

    def __init__(self, delay: Delay | None = None) -> None:
        super().__init__(f"retry after {delay}")
        self.delay = delay
