"""The drivers: :class:`Transport` (sync, a pooled ``httpx.Client`` and threads) and
:class:`AsyncTransport` (an ``httpx.AsyncClient`` on the running loop) run the ops of
``detorm._ops._http`` against the master.
"""

from __future__ import annotations

import asyncio
import functools
import http.cookiejar
import logging
import os
import re
import ssl
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar, cast

import httpx

from .._io._auth import Secret
from .._ops._effects import (
    Attempt,
    Blocking,
    Close,
    Discard,
    Effect,
    Emit,
    Gather,
    Op,
    Open,
    Opened,
    Read,
    Rows,
    Send,
    Sleep,
)
from .._ops._http import DEFAULT_CONCURRENCY, _Http
from .._plan._call import Call, RetryPolicy
from .._version import __version__
from ..errors import DetormError, StreamInterrupted, TransportError

__all__ = ["AsyncTransport", "Transport"]

T = TypeVar("T")

# A refusal means whoever answered did not run the request, so even a write may be sent again:
# 429 (ResourceExhausted), and a 503 that asks to come back later (Retry-After). A bare 503 comes
# from a proxy (the master sends 503 only on /health), and proxies such as Envoy also answer 503
# after the master received the request and the connection reset; like a 502 or 504 it may mean
# "applied", so only calls that may run twice are retried on it.
# httpx errors after which the request certainly never reached the master.
_NEVER_SENT: Final = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)  # fmt: skip
_STREAM_CHUNK: Final = None  # a stream's chunks as they arrive


class _NoAuthCookie(http.cookiejar.DefaultCookiePolicy):
    """Keeps every cookie but the master's ``auth`` (and ``det_jwt``), which hold the token.

    The master answers a login with ``Set-Cookie: auth=<token>`` for its web UI
    (grpcutil/auth.go ``userTokenResponse``). detorm authenticates with the Authorization header
    only; kept, the cookie would put the token in the client's cookie jar (and its repr).
    """

    def set_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return cookie.name not in {"auth", "det_jwt"} and super().set_ok(cookie, request)


class _RedactCredentialHeaders(logging.Filter):
    """Masks credential headers in httpcore's DEBUG records, which list every response header
    (the login's ``Set-Cookie: auth=<token>`` included), as httpx's own reprs mask them."""

    _HEADER: Final = re.compile(
        r"""(\(b(['"])(?:set-cookie|cookie|authorization|proxy-authorization)\2, )"""
        r"""b(['"])(?:\\.|(?!\3).)*\3\)""",
        re.IGNORECASE,
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self._HEADER.sub(r"\1b'[secure]')", record.msg)
        return True


for _logger in ("httpcore.http11", "httpcore.http2"):  # the loggers of response headers
    logging.getLogger(_logger).addFilter(_RedactCredentialHeaders())
del _logger


def _client_options(base_url: str, verify: bool | str, max_connections: int) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "verify": _ssl_context(verify),
        "limits": httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        "headers": {"User-Agent": f"detorm/{__version__}", "Accept": "application/json"},
        "cookies": http.cookiejar.CookieJar(policy=_NoAuthCookie()),
    }


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS context of ``verify``, one per trust source, shared by the process's sessions:
    loading a CA bundle is most of what opening a session costs (about 30 ms), and a context
    may serve any number of clients and threads. True is httpx's default (``SSL_CERT_FILE``,
    then ``SSL_CERT_DIR``, then certifi's bundle); a string is a CA file or directory. The key
    holds the source and its modification time, so an edited bundle is read again."""
    if verify is False:
        return _cached_context(("none", "", 0))
    if verify is True:
        source = os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR") or ""
        return _cached_context(("default", source, _modified(source)))
    kind = "dir" if os.path.isdir(verify) else "file"
    return _cached_context((kind, verify, _modified(verify)))


def _modified(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns if path else 0
    except OSError:
        return 0  # missing: the context's loading raises, naming the path


@functools.lru_cache(maxsize=8)
def _cached_context(key: tuple[str, str, int]) -> ssl.SSLContext:
    kind, source, _ = key
    if kind in ("none", "default"):
        return httpx.create_ssl_context(verify=kind == "default")
    if kind == "dir":
        return ssl.create_default_context(capath=source)
    return ssl.create_default_context(cafile=source)


def _transport_error(http: _Http, call: Call, err: Exception) -> TransportError:
    # Returned, not raised in the except block: raised there it would chain httpx's error as
    # its __context__, and with it the request and its Authorization header.
    return http.transport_error(call, err, request_sent=not isinstance(err, _NEVER_SENT))


def _interrupted(call: Call, err: Exception) -> StreamInterrupted:
    return StreamInterrupted(
        f"{call.method} {call.path}: the stream broke off: {type(err).__name__}: {err}",
        method=call.method, path=call.path,
    )  # fmt: skip


class _Stack:
    """The streams one run of an op opened and has not closed: closed when the run ends, as an
    op cannot yield a Close from ``finally`` when its consumer stops early."""

    def __init__(self) -> None:
        self.open: dict[int, httpx.Response] = {}

    def add(self, response: httpx.Response) -> None:
        self.open[id(response)] = response

    def remove(self, response: httpx.Response) -> httpx.Response | None:
        return self.open.pop(id(response), None)


def _unlinked(response: httpx.Response) -> httpx.Response:
    """A response whose body was read, no longer a reference cycle.

    httpx's bound stream points back to its response: a dropped response, and its body (a page
    of experiments: megabytes), waited for the cyclic garbage collector, and the executor moves
    a page's objects past the collector's young generation (_executor.no_gc_pauses). The body
    read is all that is left of the stream.
    """
    if response.is_stream_consumed:  # read in full (not a stream the op reads itself)
        response.stream = httpx.ByteStream(response.content)
    return response


class Transport(_Http):
    """The sync driver: runs ops with a pooled ``httpx.Client`` (and threads for ``Gather``).

    At most ``concurrency`` requests of this transport are in flight at once (a stream counts
    until its response arrives).
    """

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = True,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        concurrency: int = DEFAULT_CONCURRENCY,
        token: Secret | None = None,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``http_transport`` replaces the network (tests force faults with a MockTransport)."""
        super().__init__(
            base_url, timeout=timeout, retry=retry, token=token, concurrency=concurrency
        )
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(concurrency)
        # Private hook: tests check the deadline with a fake clock instead of waiting.
        self._sleep: Callable[[float], None] = time.sleep
        self._client = httpx.Client(
            transport=http_transport, **_client_options(base_url, verify, max_connections)
        )

    def close(self) -> None:
        self._client.close()

    # --- running ops ----------------------------------------------------------------------
    def run(self, op: Op[T]) -> T:
        """Run an op to its end and return its result."""
        result: list[T] = []
        for _ in self._drive(op, result, emitting=False):
            pass  # nothing: an Emit outside an iteration is refused (_perform)
        return result[0]

    def iterate(self, rows: Rows[T]) -> Iterator[T]:
        """The items an iterating op emits, as it emits them."""
        return self._drive(rows.make(), [], emitting=True)

    def _drive(self, op: Op[Any], result: list[Any], *, emitting: bool) -> Iterator[Any]:
        """Perform each effect of ``op`` and send its result in; yield what it emits; put its
        return value in ``result``. Streams it left open are closed when it ends."""
        opened = _Stack()
        try:
            value: Any = None
            error: BaseException | None = None
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration as stop:
                    result.append(stop.value)
                    return
                value, error = None, None
                if emitting and isinstance(effect, Emit):
                    yield from effect.items
                    del effect  # the batch goes before the op makes the next one
                    continue
                try:
                    value = self._perform(effect, opened)
                except Exception as err:
                    error = err
        finally:
            op.close()
            for response in opened.open.values():
                response.close()

    def _perform(self, effect: Effect, opened: _Stack) -> Any:
        if isinstance(effect, Send):
            response = self.run(
                self.respond(effect.call, effect.retry, reauthenticate=effect.reauthenticate)
            )
            return response
        if isinstance(effect, Attempt):
            return self._attempt(effect, opened)
        if isinstance(effect, Read):
            return self._read(effect.stream)
        if isinstance(effect, Open):
            response = self.run(self.respond(effect.call, stream=True, headers=effect.headers))
            opened.add(response)
            return Opened(effect.call, response, response.iter_bytes(_STREAM_CHUNK))
        if isinstance(effect, (Close, Discard)):
            response = effect.stream.response if isinstance(effect, Close) else effect.response
            opened.remove(response)
            response.close()
            return None
        if isinstance(effect, Sleep):
            self._sleep(effect.seconds)
            return None
        if isinstance(effect, Gather):
            return self._gather(effect)
        if isinstance(effect, Blocking):
            return effect.function(*effect.args)
        raise TypeError(f"{effect!r} cannot be run here (an Emit outside an iteration?)")

    def _attempt(self, attempt: Attempt, opened: _Stack) -> httpx.Response | TransportError:
        """One request: its response (an error response read in full), or the TransportError
        that stands for httpx's."""
        try:
            request = self._request(self._client, attempt)
            with self._slots:
                response = self._client.send(request, stream=attempt.stream)
                if response.status_code >= 300 and attempt.stream:
                    response.read()  # small, and needed to decide on a retry and to report it
        except (httpx.TransportError, httpx.InvalidURL) as err:
            return _transport_error(self, attempt.call, err)
        return _unlinked(response)

    @staticmethod
    def _read(stream: Opened) -> bytes:
        try:
            return cast(bytes, next(stream.chunks, b""))
        except httpx.TransportError as err:
            interrupted = _interrupted(stream.call, err)
        raise interrupted  # outside the except block: see _transport_error

    def _gather(self, gather: Gather) -> list[Any]:
        def outcome(op: Op[Any]) -> Any:
            try:
                return self.run(op)
            except DetormError as err:
                return err

        ops = list(gather.ops)
        if len(ops) == 1:
            results = [outcome(ops[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(ops))) as pool:
                results = list(pool.map(outcome, ops))
        return _gathered(gather, results)

    # --- the sync API of this transport ---------------------------------------------------
    def send(
        self, call: Call, *, retry: RetryPolicy | None = None, reauthenticate: bool = True
    ) -> httpx.Response:
        """Send a call and return its successful response (an :class:`APIError` otherwise)."""
        return self.run(self.respond(call, retry, reauthenticate=reauthenticate))

    def json(self, call: Call) -> Any:
        return self.send(call).json()

    def stream(self, call: Call) -> Iterator[bytes]:
        """Yield the raw JSON of each ``result`` of a newline-delimited stream.

        An ``{"error": ...}`` line raises the matching :class:`APIError`; a body that stops in
        the middle raises :class:`StreamInterrupted` after the complete lines were yielded.
        """
        return self.iterate(self.results(call).rows())


class AsyncTransport(_Http):
    """The async driver: runs ops with a pooled ``httpx.AsyncClient`` (and tasks for
    ``Gather``). At most ``concurrency`` requests are in flight at once."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = True,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        concurrency: int = DEFAULT_CONCURRENCY,
        token: Secret | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, timeout=timeout, retry=retry, token=token, concurrency=concurrency
        )
        self.max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._client = httpx.AsyncClient(
            transport=http_transport, **_client_options(base_url, verify, max_connections)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- running ops ----------------------------------------------------------------------
    async def run(self, op: Op[T]) -> T:
        """Run an op to its end and return its result."""
        result: list[T] = []
        async for _ in self._drive(op, result, emitting=False):
            pass  # nothing: an Emit outside an iteration is refused (_perform)
        return result[0]

    def iterate(self, rows: Rows[T]) -> AsyncIterator[T]:
        """The items an iterating op emits, as it emits them."""
        return self._drive(rows.make(), [], emitting=True)

    async def _drive(self, op: Op[Any], result: list[Any], *, emitting: bool) -> AsyncIterator[Any]:
        """Perform each effect of ``op`` and send its result in; yield what it emits; put its
        return value in ``result``. Streams it left open are closed when it ends."""
        opened = _Stack()
        try:
            value: Any = None
            error: BaseException | None = None
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration as stop:
                    result.append(stop.value)
                    return
                value, error = None, None
                if emitting and isinstance(effect, Emit):
                    for item in effect.items:
                        yield item
                    del effect  # the batch goes before the op makes the next one
                    continue
                try:
                    value = await self._perform(effect, opened)
                except Exception as err:
                    error = err
        finally:
            op.close()
            for response in opened.open.values():
                await response.aclose()

    async def _perform(self, effect: Effect, opened: _Stack) -> Any:
        if isinstance(effect, Send):
            return await self.run(
                self.respond(effect.call, effect.retry, reauthenticate=effect.reauthenticate)
            )
        if isinstance(effect, Attempt):
            return await self._attempt(effect)
        if isinstance(effect, Read):
            return await self._read(effect.stream)
        if isinstance(effect, Open):
            response = await self.run(
                self.respond(effect.call, stream=True, headers=effect.headers)
            )
            opened.add(response)
            return Opened(effect.call, response, response.aiter_bytes(_STREAM_CHUNK))
        if isinstance(effect, (Close, Discard)):
            response = effect.stream.response if isinstance(effect, Close) else effect.response
            opened.remove(response)
            await response.aclose()
            return None
        if isinstance(effect, Sleep):
            await self._sleep(effect.seconds)
            return None
        if isinstance(effect, Gather):
            return await self._gather(effect)
        if isinstance(effect, Blocking):
            return await asyncio.to_thread(effect.function, *effect.args)
        raise TypeError(f"{effect!r} cannot be run here (an Emit outside an iteration?)")

    async def _attempt(self, attempt: Attempt) -> httpx.Response | TransportError:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        try:
            request = self._request(self._client, attempt)
            async with self._slots:
                response = await self._client.send(request, stream=attempt.stream)
                if response.status_code >= 300 and attempt.stream:
                    await response.aread()
        except (httpx.TransportError, httpx.InvalidURL) as err:
            return _transport_error(self, attempt.call, err)
        return _unlinked(response)

    @staticmethod
    async def _read(stream: Opened) -> bytes:
        try:
            return cast(bytes, await anext(stream.chunks, b""))
        except httpx.TransportError as err:
            interrupted = _interrupted(stream.call, err)
        raise interrupted  # outside the except block: see _transport_error

    async def _gather(self, gather: Gather) -> list[Any]:
        async def outcome(op: Op[Any]) -> Any:
            try:
                return await self.run(op)
            except DetormError as err:
                return err

        results = await asyncio.gather(*(outcome(op) for op in gather.ops))
        return _gathered(gather, list(results))

    async def send(
        self, call: Call, *, retry: RetryPolicy | None = None, reauthenticate: bool = True
    ) -> httpx.Response:
        """Send a call and return its successful response (an :class:`APIError` otherwise)."""
        return await self.run(self.respond(call, retry, reauthenticate=reauthenticate))

    def stream(self, call: Call) -> AsyncIterator[bytes]:
        """The raw JSON of each ``result`` of a newline-delimited stream (see Transport)."""
        return self.iterate(self.results(call).rows())


def _gathered(gather: Gather, results: list[Any]) -> list[Any]:
    if not gather.errors:
        for result in results:
            if isinstance(result, DetormError):
                raise result
    return results
