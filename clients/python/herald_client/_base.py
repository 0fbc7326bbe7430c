"""The layer both clients share: request building, error mapping, durations."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from .errors import Delay, HeraldError

USER_AGENT = "herald-client-python/0.1.0"
RETRYABLE = frozenset({408, 425, 429})
"""Statuses (besides every 5xx) that subscribe and consume retry."""


def retryable(status: int) -> bool:
    """Whether a stream or pull answered with ``status`` should be retried."""
    return status in RETRYABLE or 500 <= status <= 599


def duration(value: Delay) -> str:
    """herald's duration string for seconds (``1.5`` -> ``"1500ms"``) or a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value < 0:
        raise ValueError(f"not a duration: {value!r}")
    ms = round(value * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(value: str) -> float:
    """Seconds in one of herald's duration strings (``"1m"``, ``"1m30s"``, ``"500ms"``)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", value)
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        raise ValueError(f"not a herald duration: {value!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def seg(name: str | int) -> str:
    """One path segment, percent-encoded."""
    return quote(str(name), safe="")


@dataclass
class Req:
    """One REST call, built once and sent by the sync or the async client."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def query(self) -> dict[str, Any]:
        """Parameters without the ``None`` ones."""
        return {k: v for k, v in self.params.items() if v is not None}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds only)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


def error_from(status: int, headers: Mapping[str, str], body: bytes) -> HeraldError:
    """The ``HeraldError`` for a non-2xx answer (problem+json or not)."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    problem: Any = None
    if "json" in headers.get("content-type", ""):
        try:
            problem = json.loads(body)
        except ValueError:
            problem = None
    if not isinstance(problem, dict):
        return HeraldError(
            type="about:blank",
            status=status,
            title=httpx.codes.get_reason_phrase(status),
            detail=body.decode("utf-8", "replace")[:500],
            request_id=headers.get("x-request-id"),
            retry_after=retry_after,
        )
    return HeraldError(
        type=str(problem.get("type", "about:blank")),
        status=int(problem.get("status", status)),
        title=str(problem.get("title", "")),
        detail=str(problem.get("detail", "")),
        request_id=problem.get("request_id") or headers.get("x-request-id"),
        errors=list(problem.get("errors") or []),
        retry_after=retry_after,
    )


def check(response: httpx.Response) -> None:
    """Raise ``HeraldError`` unless the (read) answer is 2xx."""
    if not response.is_success:
        raise error_from(response.status_code, response.headers, response.content)


def result(response: httpx.Response) -> Any:
    """The decoded body of a 2xx answer (``None`` for 204)."""
    check(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def headers_for(token: str | None) -> dict[str, str]:
    """Headers every request carries."""
    headers = {"user-agent": USER_AGENT}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def publish_options(
    *,
    event: str | None = None,
    key: str | None = None,
    priority: int | str | None = None,
    ttl: Delay | None = None,
    delay: Delay | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """Query parameters of a publish."""
    return {
        "event": event,
        "key": key,
        "priority": priority,
        "ttl": None if ttl is None else duration(ttl),
        "delay": None if delay is None else duration(delay),
        "at": at,
    }


def publish_req(
    topic: str,
    data: Any,
    *,
    idempotency_key: str | None = None,
    traceparent: str | None = None,
    **options: Any,
) -> Req:
    """``POST /topics/{topic}``: text as text/plain, anything else as JSON."""
    req = Req("POST", f"/topics/{seg(topic)}", params=publish_options(**options))
    if isinstance(data, str):
        req.content = data
        req.headers["content-type"] = "text/plain; charset=utf-8"
    else:
        req.json = data
    extra_headers(req, idempotency_key, traceparent)
    return req


def batch_req(
    topic: str,
    items: list[Any],
    *,
    idempotency_key: str | None = None,
    traceparent: str | None = None,
    **options: Any,
) -> Req:
    """``POST /topics/{topic}/batch`` with the items as one JSON array."""
    req = Req("POST", f"/topics/{seg(topic)}/batch", params=publish_options(**options))
    req.json = list(items)
    extra_headers(req, idempotency_key, traceparent)
    return req


def extra_headers(req: Req, idempotency_key: str | None, traceparent: str | None) -> None:
    """``Idempotency-Key`` and ``traceparent`` when given."""
    if idempotency_key is not None:
        req.headers["idempotency-key"] = idempotency_key
    if traceparent is not None:
        req.headers["traceparent"] = traceparent


def publish_result(response: httpx.Response) -> Any:
    """The publish answer, with ``replayed: True`` on an idempotent replay."""
    body = result(response)
    if isinstance(body, dict) and response.headers.get("idempotent-replayed") == "true":
        body["replayed"] = True
    return body
