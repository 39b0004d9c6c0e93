"""HTTP to the master: one pooled httpx client, retries inside a deadline, error mapping, streams.

The planner describes each request as a :class:`Call`; this module only sends Calls.

Retries. A call that may run twice (GET, HEAD, OPTIONS, PUT, DELETE, and a POST that only reads,
``Call.read_only``) is retried on 429, 502, 503, 504 and on any transport error. Any other call
(POST, PATCH) is retried only when the master certainly did not run it: the connection could not
be made, or the answer was 429 or 503. Waits are exponential backoff with full jitter, or what
``Retry-After`` asks (capped).

Deadline. All attempts and waits of one call share one budget (``RetryPolicy.deadline``, by
default the session's ``timeout``): each attempt's httpx timeouts are cut to the time left and
no wait is started that would end past it, so retries never multiply the caller's timeout.

Secrets. The token is a :class:`~detorm._auth.Secret`, revealed only to build each request's
``Authorization`` header (never a default header of the client); the master's ``auth`` cookie is
not kept, and httpcore's debug records of response headers are redacted.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import json
import logging
import random
import re
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Final, TypeVar, cast
from urllib.parse import quote, urlencode

import httpx

from ._auth import Secret
from ._inputs import INT32_MAX, check_int, check_seconds, require
from ._ops import (
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
    close,
    emit,
    open_stream,
    read,
)
from ._version import __version__
from .errors import (
    ConfigurationError,
    DetormError,
    InvalidValue,
    StreamInterrupted,
    TransportError,
    api_error_class,
)

__all__ = ["AsyncTransport", "Call", "RetryPolicy", "Transport"]

T = TypeVar("T")

IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
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
# A master that accepts no connection in 10 s is down: fail the attempt and retry sooner.
_CONNECT_TIMEOUT: Final = 10.0
_RESULT_PREFIX: Final = b'{"result":'
# Requests of one session in flight at once, unless it says otherwise.
DEFAULT_CONCURRENCY: Final = 8
_LOGIN_POLL: Final = 0.005  # seconds between looks at a login another call is making
_STREAM_CHUNK: Final = None  # a stream's chunks as they arrive

QueryItems = tuple[tuple[str, str], ...]


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "value") and isinstance(value.value, str):
        return str(value.value)  # enums travel by their full wire name
    return str(value)


def query_items(params: Mapping[str, object]) -> QueryItems:
    """Flatten ``{name: value | [values]}`` into repeated keys, dropping ``None``."""
    items: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            items.extend((name, _query_value(v)) for v in value)
        else:
            items.append((name, _query_value(value)))
    return tuple(items)


@dataclass(frozen=True)
class Call:
    """One REST request, as the planner describes it (method, path, query, JSON body).

    ``read_only`` marks a POST that only reads (experiments-search, runs search): it is retried
    like a GET.
    """

    method: str
    path: str
    params: QueryItems = ()
    body: Any = None
    stream: bool = False
    read_only: bool = False

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT

    @property
    def safe_to_retry(self) -> bool:
        """Sending it twice does no harm: an idempotent method, or a read."""
        return self.read_only or self.idempotent

    @property
    def url(self) -> str:
        """Path and query string, as sent."""
        return self.path + ("?" + urlencode(self.params) if self.params else "")

    def __str__(self) -> str:
        text = f"{self.method} {self.url}"
        if self.body is not None:
            text += " " + json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        return text

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (used by ``explain()`` and snapshots)."""
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.params:
            out["params"] = [list(item) for item in self.params]
        if self.body is not None:
            out["body"] = self.body
        if self.stream:
            out["stream"] = True
        return out


def path(template: str, **values: object) -> str:
    """Fill a path template; each value becomes exactly one percent-encoded path segment.

    Everything but RFC 3986 unreserved characters is escaped, and the dot segments ``.`` and
    ``..`` are written ``%2E`` and ``%2E%2E``, which neither httpx nor a server resolves. A value
    that no escaping keeps in one segment on the master (an empty one, or one holding ``/``) is
    refused with :class:`InvalidValue` before anything is sent.
    """
    return template.format(**{name: _segment(template, name, v) for name, v in values.items()})


def _segment(template: str, name: str, value: object) -> str:
    text = str(value)
    # The master unescapes the whole path before grpc-gateway splits it at "/" (see
    # detorm/local/_app.py), so %2F reaches another route (or another label, when it ends the
    # value), and an empty last segment is a trailing slash Echo drops. The official bindings
    # (quote, "/" kept) send both; detorm refuses them.
    if text == "" or "/" in text:
        raise InvalidValue(
            f"{name}={text!r} cannot be sent in {template}: the master splits the path at '/' "
            "after decoding it, so a path segment must be non-empty and hold no '/'"
        )
    if text in (".", ".."):
        return "%2E" * len(text)
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:
        raise InvalidValue(f"{name}={text!r} cannot be sent in {template}: not UTF-8") from None


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry a call, and how long one call may take in all.

    ``retries`` attempts may follow the first. Before retry *n* (from 0) the wait is a random
    time in ``[0, min(max_backoff, backoff * 2**n)]``, or what a ``Retry-After`` header asks
    (seconds or an HTTP date; anything else is ignored), at most ``max_retry_after`` seconds.

    Retried: calls that may run twice (GET, HEAD, OPTIONS, PUT, DELETE, read-only POSTs) on the
    ``statuses`` and on transport errors; other POSTs and PATCHes only when the master certainly
    did not run them (no connection, or 429 / 503 when in ``statuses``).

    ``deadline`` bounds one call: every attempt, backoff and ``Retry-After`` wait included. None
    (the default) means the session's ``timeout``. Each attempt's timeouts are cut to the time
    left, no wait is started that would end past the deadline, and a server asking to wait
    longer than what is left gets its answer raised at once. When the time is spent the last
    error is raised: the master's (an :class:`~detorm.errors.APIError`, such as
    ``RateLimited`` for 429) or a :class:`~detorm.errors.TransportError`. For a stream the
    deadline bounds getting the response; each read of its body is bounded by the timeout.
    """

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    max_retry_after: float = 60.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        # Refused where the policy is written, not in the middle of a retry later on.
        error = ConfigurationError
        check_int("RetryPolicy.retries", self.retries, low=0, high=INT32_MAX, error=error)
        for name in ("backoff", "max_backoff", "max_retry_after"):
            check_seconds(f"RetryPolicy.{name}", getattr(self, name), error=error, zero=True)
        if self.deadline is not None:
            check_seconds("RetryPolicy.deadline", self.deadline, error=error)
        valid = "a set of HTTP error statuses (ints from 400 to 599)"
        require("RetryPolicy.statuses", self.statuses, (set, frozenset), valid)
        for status in self.statuses:  # every type first: a set's order is arbitrary
            require("RetryPolicy.statuses", status, int, valid)
        for status in self.statuses:
            check_int("RetryPolicy.statuses", status, low=400, high=599, error=error, what=valid)
        object.__setattr__(self, "statuses", frozenset(self.statuses))  # hashable, as frozen

    def delay(self, attempt: int) -> float:
        """The backoff before retry ``attempt`` (from 0): exponential, with full jitter."""
        ceiling = self.backoff * 2 ** min(attempt, 64)  # the exponent only needs to pass the cap
        return random.uniform(0, min(self.max_backoff, ceiling))


NO_RETRY: Final = RetryPolicy(retries=0)


def parse_retry_after(value: str, now: float) -> float | None:
    """The seconds a ``Retry-After`` value asks to wait, given the wall-clock time ``now``.

    RFC 9110 allows delay-seconds (digits) or an HTTP date (a past date asks for no wait).
    Anything else (negative, fractional, ``soon``...) is None: the caller backs off as usual. A
    number too large for a float is ``inf``.
    """
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)  # an HTTP date is always in GMT
    return max(0.0, date.timestamp() - now)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    return None if value is None else parse_retry_after(value, time.time())


def _may_retry(call: Call, policy: RetryPolicy, outcome: httpx.Response | TransportError) -> bool:
    if isinstance(outcome, TransportError):
        return call.safe_to_retry or not outcome.request_sent
    status = outcome.status_code
    return status in policy.statuses and (call.safe_to_retry or _refused(outcome))


def _refused(response: httpx.Response) -> bool:
    """Whether an error answer says the request was not run (see above)."""
    status = response.status_code
    return status == 429 or (status == 503 and "retry-after" in response.headers)


def _error_message(response: httpx.Response) -> tuple[str, str, Any]:
    """(message, reason, body) from a master error body: unary, stream or Echo shape."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500], "", None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            if "error" in error:  # unary: {"code", "reason", "error"}
                return str(error.get("error", "")), str(error.get("reason", "")), body
            if "message" in error:  # stream: {"grpcCode", "httpCode", "message", ...}
                return str(error["message"]), str(error.get("httpStatus", "")), body
        if "message" in body:  # Echo routes
            return str(body["message"]), "", body
    return json.dumps(body)[:500], "", body


def raise_for_status(call: Call, response: httpx.Response) -> None:
    if response.status_code < 300:
        return
    message, reason, body = _error_message(response)
    raise api_error_class(response.status_code)(
        method=call.method, path=call.path, status=response.status_code,
        message=message, reason=reason, body=body,
    )  # fmt: skip


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


class _Http:
    """What both transports share: the master, the policy, the token and the counters, and the
    ops that send a call (retries inside the deadline, a new login after a 401).

    ``requests_sent`` counts every HTTP request sent; ``retries`` those the retry policy sent
    again (a new login after a 401 is not a retry). The repr names the master only: the token
    is a :class:`~detorm._auth.Secret`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        retry: RetryPolicy | None,
        token: Secret | None,
        concurrency: int,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.token = token
        self.concurrency = concurrency
        # An op that logs in again after a 401 (the session sets it); True when it did.
        self.on_unauthenticated: Callable[[], Op[bool]] | None = None
        # An op that logs in before the first request, for a session that could not log in
        # when it was made (an async session: its constructor cannot await).
        self.log_in: Callable[[], Op[None]] | None = None
        self._logging_in = False
        self.requests_sent = 0
        self.retries = 0
        self._count_lock = threading.Lock()
        # Private hook: tests check the deadline with a fake clock instead of waiting.
        self._clock: Callable[[], float] = time.monotonic

    def __repr__(self) -> str:
        return f"<detorm {type(self).__name__} {self.base_url}>"

    def _count(self, *, retry: bool = False) -> None:
        with self._count_lock:
            if retry:
                self.retries += 1
            else:
                self.requests_sent += 1

    # --- ops ------------------------------------------------------------------------------
    def respond(
        self, call: Call, policy: RetryPolicy | None = None, *, stream: bool = False,
        reauthenticate: bool = True, headers: Mapping[str, str] | None = None,
    ) -> Op[httpx.Response]:  # fmt: skip
        """The successful response to ``call`` (an :class:`APIError` otherwise)."""
        policy = policy or self.retry
        if self.token is None and reauthenticate and self.log_in is not None:
            yield from self._first_login()
        token = self.token
        response = yield from self._with_retries(call, policy, stream, headers)
        if response.status_code == 401 and reauthenticate and self.on_unauthenticated:
            # A cached token may have expired: log in again once, unless another request
            # already did while this one was out. A new call: the budget starts again.
            if self.token is not token or (yield from self.on_unauthenticated()):
                response = yield from self._with_retries(call, policy, stream, headers)
        if response.status_code >= 300:
            raise_for_status(call, response)
        return response

    def _first_login(self) -> Op[None]:
        # One login, whatever the number of calls waiting for it (ops of one event loop).
        while self._logging_in:
            yield Sleep(_LOGIN_POLL)
        if self.token is not None or self.log_in is None:
            return
        self._logging_in = True
        try:
            yield from self.log_in()
        finally:
            self._logging_in = False

    def _with_retries(
        self, call: Call, policy: RetryPolicy, stream: bool, headers: Mapping[str, str] | None
    ) -> Op[httpx.Response]:
        remaining = self.timeout if policy.deadline is None else policy.deadline
        deadline = self._clock() + remaining
        attempt = 0
        while True:
            outcome = yield Attempt(call, min(self.timeout, remaining), stream, headers)
            delay = self._retry_delay(call, policy, attempt, outcome, deadline)
            if delay is None:
                break
            if isinstance(outcome, httpx.Response):
                yield Discard(outcome)
            yield Sleep(delay)
            remaining = deadline - self._clock()
            if remaining <= 0:  # the wait overran: no attempt starts past the deadline
                break
            self._count(retry=True)
            attempt += 1
        if isinstance(outcome, TransportError):
            raise outcome
        assert isinstance(outcome, httpx.Response)
        return outcome

    def _retry_delay(
        self, call: Call, policy: RetryPolicy, attempt: int,
        outcome: httpx.Response | TransportError, deadline: float,
    ) -> float | None:  # fmt: skip
        """Seconds to wait before sending ``call`` again; None when ``outcome`` is final."""
        if attempt >= policy.retries or not _may_retry(call, policy, outcome):
            return None
        remaining = deadline - self._clock()
        asked = _retry_after(outcome) if isinstance(outcome, httpx.Response) else None
        if asked is not None and asked >= remaining:
            return None  # the server wants more time than the call has: give its answer now
        delay = policy.delay(attempt) if asked is None else min(asked, policy.max_retry_after)
        return delay if delay < remaining else None

    def back_off(self, attempt: int) -> Op[None]:
        """Wait before retry ``attempt`` (from 0) of something that broke off, and count it."""
        yield Sleep(self.retry.delay(attempt))
        self._count(retry=True)

    def results(
        self, call: Call, resume: Callable[[], Call] | None = None, *, resumes: int | None = None
    ) -> ResultReader:
        """A reader of the results of a newline-delimited stream (see :class:`ResultReader`)."""
        limit = self.retry.retries if resumes is None else resumes
        return ResultReader(self, call, resume, limit if resume is not None else 0)

    # --- shared by the drivers ------------------------------------------------------------
    def _request(self, client: httpx.Client | httpx.AsyncClient, attempt: Attempt) -> httpx.Request:
        call = attempt.call
        timeouts = httpx.Timeout(attempt.timeout, connect=min(attempt.timeout, _CONNECT_TIMEOUT))
        content = None if call.body is None else json.dumps(call.body, allow_nan=False).encode()
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token.reveal()}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        headers.update(attempt.headers or {})
        request = client.build_request(
            call.method, call.path, params=list(call.params), content=content, headers=headers,
            timeout=timeouts,
        )  # fmt: skip
        self._count()
        return request


def _client_options(base_url: str, verify: bool | str, max_connections: int) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "verify": verify,
        "limits": httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        "headers": {"User-Agent": f"detorm/{__version__}", "Accept": "application/json"},
        "cookies": http.cookiejar.CookieJar(policy=_NoAuthCookie()),
    }


def _transport_error(call: Call, err: Exception) -> TransportError:
    # Returned, not raised in the except block: raised there it would chain httpx's error as
    # its __context__, and with it the request and its Authorization header.
    return TransportError(
        f"{call.method} {call.path}: {type(err).__name__}: {err}",
        method=call.method, path=call.path, request_sent=not isinstance(err, _NEVER_SENT),
    )  # fmt: skip


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
        opened = _Stack()
        try:
            value: Any = None
            error: BaseException | None = None
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration as stop:
                    return cast(T, stop.value)
                value, error = None, None
                try:
                    value = self._perform(effect, opened)
                except Exception as err:
                    error = err
        finally:
            op.close()
            for response in opened.open.values():
                response.close()

    def iterate(self, rows: Rows[T]) -> Iterator[T]:
        """The items an iterating op emits, as it emits them."""
        op = rows.make()
        opened = _Stack()
        try:
            value: Any = None
            error: BaseException | None = None
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration:
                    return
                value, error = None, None
                if isinstance(effect, Emit):
                    yield from effect.items
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
            return _transport_error(attempt.call, err)
        return response

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
        opened = _Stack()
        try:
            value: Any = None
            error: BaseException | None = None
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration as stop:
                    return cast(T, stop.value)
                value, error = None, None
                try:
                    value = await self._perform(effect, opened)
                except Exception as err:
                    error = err
        finally:
            op.close()
            for response in opened.open.values():
                await response.aclose()

    async def iterate(self, rows: Rows[T]) -> AsyncIterator[T]:
        """The items an iterating op emits, as it emits them."""
        op = rows.make()
        opened = _Stack()
        try:
            value: Any = None
            error: BaseException | None = None
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration:
                    return
                value, error = None, None
                if isinstance(effect, Emit):
                    for item in effect.items:
                        yield item
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
            return _transport_error(attempt.call, err)
        return response

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


class ResultReader:
    """Reads the ``result`` messages of a newline-delimited stream, batch by batch, as an op.

    When the stream breaks off midway and ``resume`` is given, it is opened again with the call
    ``resume()`` gives (the caller skips what it already had: a stream only reads, so it is
    safe to ask again), at most ``resumes`` times, after a backoff counted in ``retries``.
    """

    def __init__(
        self, http: _Http, call: Call, resume: Callable[[], Call] | None, resumes: int
    ) -> None:
        self._http = http
        self._call = call
        self._resume = resume
        self._left = resumes
        self._resumed = 0
        self._stream: Opened | None = None
        self._framing = Framing(call)

    def batch(self) -> Op[list[bytes] | None]:
        """The next results (at least one), or None at the end of the stream."""
        while True:
            if self._stream is None:
                self._stream = yield from open_stream(self._call)
                self._framing = Framing(self._call)
            try:
                chunk = yield from read(self._stream)
                results = self._framing.feed(chunk) if chunk else self._framing.finish()
            except StreamInterrupted:
                yield from self._close()
                if self._resume is None or self._resumed >= self._left:
                    raise
                yield from self._http.back_off(self._resumed)
                self._resumed += 1
                self._call = self._resume()
                continue
            if results:
                return results
            if not chunk:
                yield from self._close()
                return None

    def _close(self) -> Op[None]:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            yield from close(stream)

    def rows(self) -> Rows[bytes]:
        def all_results() -> Op[None]:
            while (results := (yield from self.batch())) is not None:
                yield from emit(results)

        return Rows(all_results)


class Framing:
    """Splits a stream's body into its messages: ``{"result": ...}`` lines give their raw JSON,
    an ``{"error": ...}`` line raises the matching :class:`APIError`, and a body that ends in
    the middle of a line raises :class:`StreamInterrupted`."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        return [_result_of(self._call, line) for line in lines if line]

    def finish(self) -> list[bytes]:
        pending, call = self._pending, self._call
        if pending.strip():
            # The master ends an error with no newline; anything else unterminated is a cut.
            if pending.lstrip().startswith(b'{"error"'):
                _result_of(call, pending)
            raise StreamInterrupted(
                f"{call.method} {call.path}: the stream ended in the middle of a message",
                method=call.method, path=call.path,
            )  # fmt: skip
        return []


def _result_of(call: Call, line: bytes) -> bytes:
    if line.startswith(_RESULT_PREFIX) and line.endswith(b"}"):
        return line[len(_RESULT_PREFIX) : -1]
    try:
        document = json.loads(line)
    except ValueError:
        raise StreamInterrupted(
            f"{call.method} {call.path}: the stream sent a line that is not JSON",
            method=call.method, path=call.path,
        ) from None  # fmt: skip
    if isinstance(document, dict) and "result" in document:
        return json.dumps(document["result"]).encode()
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        status = int(error.get("httpCode") or 500)
        raise api_error_class(status)(
            method=call.method, path=call.path, status=status,
            message=str(error.get("message", "")), reason=str(error.get("httpStatus", "")),
            body=document,
        )  # fmt: skip
    raise StreamInterrupted(
        f"{call.method} {call.path}: unexpected stream line", method=call.method, path=call.path
    )
