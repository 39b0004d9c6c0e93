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

import email.utils
import http.cookiejar
import json
import logging
import random
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Final
from urllib.parse import quote, urlencode

import httpx

from ._auth import Secret
from ._inputs import INT32_MAX, check_int, check_seconds, require
from ._version import __version__
from .errors import (
    ConfigurationError,
    InvalidValue,
    StreamInterrupted,
    TransportError,
    api_error_class,
)

__all__ = ["Call", "RetryPolicy", "Transport"]

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


class Transport:
    """A pooled HTTP client for one master; the session owns it.

    ``requests_sent`` counts every HTTP request sent; ``retries`` those the retry policy sent
    again (a new login after a 401 is not a retry). The repr names the master only: the token
    is a :class:`~detorm._auth.Secret`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = True,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        token: Secret | None = None,
        on_unauthenticated: Callable[[], bool] | None = None,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``http_transport`` replaces the network (tests force faults with a MockTransport)."""
        self.base_url = base_url
        self.timeout = timeout
        self.max_connections = max_connections
        self.retry = retry or RetryPolicy()
        self.token = token
        self.on_unauthenticated = on_unauthenticated
        self.requests_sent = 0
        self.retries = 0
        self._count_lock = threading.Lock()
        # Private hooks: tests check the deadline with a fake clock instead of waiting.
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep
        self._client = httpx.Client(
            transport=http_transport,
            base_url=base_url,
            verify=verify,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": f"detorm/{__version__}", "Accept": "application/json"},
            cookies=http.cookiejar.CookieJar(policy=_NoAuthCookie()),
        )

    def __repr__(self) -> str:
        return f"<detorm Transport {self.base_url}>"

    def close(self) -> None:
        self._client.close()

    # --- unary ----------------------------------------------------------------------------
    def send(
        self, call: Call, *, retry: RetryPolicy | None = None, reauthenticate: bool = True
    ) -> httpx.Response:
        """Send a call and return its successful response (an :class:`APIError` otherwise)."""
        return self._respond(call, retry or self.retry, stream=False, reauthenticate=reauthenticate)

    def json(self, call: Call) -> Any:
        return self.send(call).json()

    def _respond(
        self, call: Call, policy: RetryPolicy, *, stream: bool, reauthenticate: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:  # fmt: skip
        response = self._send_with_retries(call, policy, stream=stream, headers=headers)
        if response.status_code == 401 and reauthenticate and self._reauthenticate():
            # A new call: the login took its own time, so the budget starts again.
            response.close()
            response = self._send_with_retries(call, policy, stream=stream, headers=headers)
        if response.status_code >= 300:
            response.close()
            raise_for_status(call, response)
        return response

    def _reauthenticate(self) -> bool:
        # A cached token may have expired: the session logs in again once, if it can.
        return self.on_unauthenticated is not None and self.on_unauthenticated()

    def _send_with_retries(
        self, call: Call, policy: RetryPolicy, *, stream: bool, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        remaining = self.timeout if policy.deadline is None else policy.deadline
        deadline = self._clock() + remaining
        attempt = 0
        while True:
            outcome = self._attempt(call, remaining, stream, headers)
            delay = self._retry_delay(call, policy, attempt, outcome, deadline)
            if delay is None:
                break
            if isinstance(outcome, httpx.Response):
                outcome.close()
            self._sleep(delay)
            remaining = deadline - self._clock()
            if remaining <= 0:  # the wait overran: no attempt starts past the deadline
                break
            with self._count_lock:
                self.retries += 1
            attempt += 1
        if isinstance(outcome, TransportError):
            raise outcome
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

    def _attempt(
        self, call: Call, remaining: float, stream: bool, headers: Mapping[str, str] | None
    ) -> httpx.Response | TransportError:
        """One request, with timeouts cut to the time left: its response (an error response
        read in full), or the TransportError that stands for httpx's."""
        seconds = min(self.timeout, remaining)
        timeouts = httpx.Timeout(seconds, connect=min(seconds, _CONNECT_TIMEOUT))
        try:
            request = self._build(call, timeouts, headers)
            with self._count_lock:
                self.requests_sent += 1
            response = self._client.send(request, stream=stream)
            if response.status_code >= 300:
                response.read()  # small, and needed to decide on a retry and to report it
            return response
        except (httpx.TransportError, httpx.InvalidURL) as err:
            # Returned, not raised here: raised in this block it would chain httpx's error as
            # its __context__, and with it the request and its Authorization header.
            return TransportError(
                f"{call.method} {call.path}: {type(err).__name__}: {err}",
                method=call.method, path=call.path, request_sent=not isinstance(err, _NEVER_SENT),
            )  # fmt: skip

    def _build(
        self, call: Call, timeouts: httpx.Timeout, extra_headers: Mapping[str, str] | None
    ) -> httpx.Request:
        content = None if call.body is None else json.dumps(call.body, allow_nan=False).encode()
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token.reveal()}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        headers.update(extra_headers or {})
        return self._client.build_request(
            call.method, call.path, params=list(call.params), content=content, headers=headers,
            timeout=timeouts,
        )  # fmt: skip

    # --- streams --------------------------------------------------------------------------
    def stream(self, call: Call) -> Iterator[bytes]:
        """Yield the raw JSON of each ``result`` of a newline-delimited stream.

        An ``{"error": ...}`` line raises the matching :class:`APIError`; a body that stops in
        the middle raises :class:`StreamInterrupted` after the complete lines were yielded.
        """
        response = self.open_stream(call)
        try:
            yield from _results(call, response)
        finally:
            response.close()

    def stream_resuming(
        self, call: Call, resume: Callable[[], Call], *, resumes: int | None = None
    ) -> Iterator[bytes]:
        """The results of ``call``, continued when the stream breaks off midway.

        ``resume()`` gives the call that carries on from what the caller has consumed (the
        caller skips what it already had: a stream only reads, so it is safe to ask again). At
        most ``resumes`` times (by default the policy's ``retries``), after a backoff, each one
        counted in ``retries``.
        """
        limit = self.retry.retries if resumes is None else resumes
        resumed = 0
        while True:
            try:
                yield from self.stream(call)
                return
            except StreamInterrupted:
                if resumed >= limit:
                    raise
            self.back_off(resumed)
            resumed += 1
            call = resume()

    def back_off(self, attempt: int) -> None:
        """Wait before retry ``attempt`` (from 0) of something that broke off, and count it."""
        self._sleep(self.retry.delay(attempt))
        with self._count_lock:
            self.retries += 1

    def open_stream(
        self, call: Call, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """A successful streamed response (close it); read its body with :func:`body_chunks`.

        Retries and a new login after a 401 happen before the first byte is handed out, within
        the deadline; each read of the body is bounded by the timeout, not by the deadline.
        """
        return self._respond(call, self.retry, stream=True, headers=headers)


def body_chunks(call: Call, response: httpx.Response, size: int | None = None) -> Iterator[bytes]:
    """The body of a streamed response; a connection lost midway raises StreamInterrupted."""
    chunks = response.iter_bytes(size)
    while True:
        try:
            chunk = next(chunks, None)
        except httpx.TransportError as err:
            # Raised below, outside this block: chained, httpx's error would keep the request
            # (and its Authorization header) reachable from ours.
            interrupted = StreamInterrupted(
                f"{call.method} {call.path}: the stream broke off: {type(err).__name__}: {err}",
                method=call.method, path=call.path,
            )  # fmt: skip
        else:
            if chunk is None:
                return
            yield chunk
            continue
        raise interrupted


def _results(call: Call, response: httpx.Response) -> Iterator[bytes]:
    pending = b""
    for chunk in body_chunks(call, response):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line:
                yield _result_of(call, line)
    if pending.strip():
        # The master ends an error with no newline; anything else unterminated is a cut stream.
        if pending.lstrip().startswith(b'{"error"'):
            _result_of(call, pending)
        raise StreamInterrupted(
            f"{call.method} {call.path}: the stream ended in the middle of a message",
            method=call.method, path=call.path,
        )  # fmt: skip


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
