"""A flaky network between detorm and detorm.local, for the fault suite.

:class:`FaultyTransport` sits where httpx sends bytes. Chosen by a seeded random generator, a
share of the requests meet one fault each:

* an answer from a gateway in front of the master: 502, 503 or 504, before the request reached
  the master; or a 504 after the master handled it (a proxy that gave up waiting);
* 429 with a ``Retry-After`` header (seconds or an HTTP date), before the master saw it;
* the connection refused before the request was sent;
* the connection dropped after the master handled the request, before the answer arrived;
* a response too slow for the client's timeout (the master handled the request; the client
  stopped waiting: an httpx ``ReadTimeout``, without waiting for real);
* a response cut in the middle of its body (a truncated stream for streamed answers).
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import httpx

KINDS: Final = (
    "502", "503", "504", "504-after", "429", "429-date", "refused", "dropped", "timeout", "cut",
)  # fmt: skip


class _CutStream(httpx.SyncByteStream):
    """The first half of a body, then the connection breaks."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def __iter__(self) -> Iterator[bytes]:
        yield self._content[: max(1, len(self._content) // 2)]
        raise httpx.ReadError("peer closed connection without sending complete message body")


class _AsyncCutStream(httpx.AsyncByteStream):
    """The first half of a body, then the connection breaks (for the async client)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._content[: max(1, len(self._content) // 2)]
        raise httpx.ReadError("peer closed connection without sending complete message body")


def _gateway_error(status: int, request: httpx.Request) -> httpx.Response:
    reasons = {502: "Bad Gateway", 503: "Unavailable", 504: "DeadlineExceeded"}
    codes = {502: 14, 503: 14, 504: 4}
    body = {"error": {"code": codes[status], "reason": reasons[status], "error": "injected"}}
    return httpx.Response(status, json=body, request=request)


def _rate_limited(request: httpx.Request, *, as_date: bool) -> httpx.Response:
    after = email.utils.formatdate(time.time(), usegmt=True) if as_date else "0"
    body = {"error": {"code": 8, "reason": "ResourceExhausted", "error": "injected"}}
    return httpx.Response(429, headers={"Retry-After": after}, json=body, request=request)


def _before_the_master(kind: str, request: httpx.Request) -> httpx.Response | None:
    """The answer of a fault that stops the request before the master sees it (None: the
    master handles the request)."""
    if kind in ("502", "503", "504"):
        return _gateway_error(int(kind), request)
    if kind in ("429", "429-date"):
        return _rate_limited(request, as_date=kind == "429-date")
    if kind == "refused":
        raise httpx.ConnectError("connection refused", request=request)
    return None


def _after_the_master(
    kind: str, request: httpx.Request, response: httpx.Response, cut: Any
) -> httpx.Response:
    """What the client gets of a response the master made, through a fault after it."""
    if kind == "504-after":
        return _gateway_error(504, request)
    if kind == "dropped":
        raise httpx.ReadError("connection reset by peer", request=request)
    if kind == "timeout":
        raise httpx.ReadTimeout("timed out", request=request)
    return httpx.Response(
        response.status_code,
        headers=[(k, v) for k, v in response.headers.items() if k != "content-length"],
        stream=cut,
        request=request,
    )


class FaultyTransport(httpx.BaseTransport):
    """Forwards to ``inner``; a ``rate`` share of the requests meets a fault of ``kinds``."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        rate: float = 0.2,
        seed: int = 0,
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.inner = inner
        self.rate = rate
        self.kinds = kinds
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _draw(self) -> str | None:
        with self._lock:
            self.requests += 1
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
            return kind

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        kind = self._draw()
        if kind is None:
            return self.inner.handle_request(request)
        refused = _before_the_master(kind, request)
        if refused is not None:
            return refused
        response = self.inner.handle_request(request)  # the master handles it
        content = response.read()
        response.close()
        return _after_the_master(kind, request, response, _CutStream(content))

    def close(self) -> None:
        self.inner.close()


class AsyncFaultyTransport(httpx.AsyncBaseTransport):
    """:class:`FaultyTransport` for an ``httpx.AsyncClient``: the same faults, drawn the same
    way, so that the async API meets exactly what the sync one meets."""

    def __init__(self, inner: httpx.AsyncBaseTransport, **options: Any) -> None:
        self.inner = inner
        self._faults = FaultyTransport(
            httpx.MockTransport(lambda r: httpx.Response(500)), **options
        )

    @property
    def injected(self) -> Counter[str]:
        return self._faults.injected

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        kind = self._faults._draw()
        if kind is None:
            return await self.inner.handle_async_request(request)
        refused = _before_the_master(kind, request)
        if refused is not None:
            return refused
        response = await self.inner.handle_async_request(request)  # the master handles it
        content = await response.aread()
        await response.aclose()
        return _after_the_master(kind, request, response, _AsyncCutStream(content))

    async def aclose(self) -> None:
        await self.inner.aclose()
