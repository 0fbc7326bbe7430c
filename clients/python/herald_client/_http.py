"""Sending a built ``Req`` with httpx, sync or async (no retries: a single call)."""

from __future__ import annotations

from typing import Any

import httpx

from ._base import Req, headers_for, result


class SyncTransport:
    """Owns (or borrows) an ``httpx.Client`` and sends requests to herald."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.owned = http_client is None
        self.http = http_client or httpx.Client(timeout=timeout)

    def send(self, req: Req, timeout: float | None = None) -> httpx.Response:
        """Send one request and read its answer."""
        headers = headers_for(self.token)
        headers.update(req.headers)
        return self.http.request(
            req.method,
            self.url + req.path,
            params=req.query(),
            json=req.json,
            content=req.content,
            headers=headers,
            timeout=timeout if timeout is not None else self.timeout,
        )

    def call(self, req: Req, timeout: float | None = None) -> Any:
        """Send and decode (``HeraldError`` on a non-2xx answer)."""
        return result(self.send(req, timeout))

    def close(self) -> None:
        """Close the client if this transport made it."""
        if self.owned:
            self.http.close()


class AsyncTransport:
    """Owns (or borrows) an ``httpx.AsyncClient`` and sends requests to herald."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.owned = http_client is None
        self.http = http_client or httpx.AsyncClient(timeout=timeout)

    async def send(self, req: Req, timeout: float | None = None) -> httpx.Response:
        """Send one request and read its answer."""
        headers = headers_for(self.token)
        headers.update(req.headers)
        return await self.http.request(
            req.method,
            self.url + req.path,
            params=req.query(),
            json=req.json,
            content=req.content,
            headers=headers,
            timeout=timeout if timeout is not None else self.timeout,
        )

    async def call(self, req: Req, timeout: float | None = None) -> Any:
        """Send and decode (``HeraldError`` on a non-2xx answer)."""
        return result(await self.send(req, timeout))

    async def aclose(self) -> None:
        """Close the client if this transport made it."""
        if self.owned:
            await self.http.aclose()
