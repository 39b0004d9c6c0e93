"""HTTP to the master: one pooled httpx client, retries, deadlines, error mapping, NDJSON streams.

The planner describes each request as a :class:`Call`; this module only sends Calls. Retries
follow the official client's safe policy (idempotent methods on 502/503/504; any method when the
connection could not even be made) with exponential backoff, full jitter, ``Retry-After``, and
an overall deadline per call, so retries never multiply the caller's timeout.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlencode

import httpx

from ._version import __version__
from ._inputs import INT32_MAX, check_int, check_seconds, require
from .errors import ConfigurationError, StreamInterrupted, TransportError, api_error_class

__all__ = ["Call", "RetryPolicy", "Transport"]

IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
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
    """One REST request, as the planner describes it (method, path, query, JSON body)."""

    method: str
    path: str
    params: QueryItems = ()
    body: Any = None
    stream: bool = False

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT

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
    """Fill a path template, quoting string parameters like the official bindings (``/`` kept)."""
    return template.format(**{k: quote(str(v), safe="/") for k, v in values.items()})


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry. ``deadline`` bounds one call, all attempts included."""

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    statuses: frozenset[int] = frozenset({502, 503, 504})
    deadline: float | None = 120.0

    def __post_init__(self) -> None:
        # Refused where the policy is written, not in the middle of a retry later on.
        error = ConfigurationError
        check_int("RetryPolicy.retries", self.retries, low=0, high=INT32_MAX, error=error)
        check_seconds("RetryPolicy.backoff", self.backoff, error=error, zero=True)
        check_seconds("RetryPolicy.max_backoff", self.max_backoff, error=error, zero=True)
        require("RetryPolicy.statuses", self.statuses, (set, frozenset), "a set of HTTP statuses")
        for status in self.statuses:
            check_int("RetryPolicy.statuses", status, low=100, high=599, error=error)
        if self.deadline is not None:
            check_seconds("RetryPolicy.deadline", self.deadline, error=error)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))


NO_RETRY: Final = RetryPolicy(retries=0)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


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


@dataclass
class Transport:
    """A pooled HTTP client for one master."""

    base_url: str
    verify: bool | str = True
    timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_connections: int = 16
    token: str | None = None
    on_unauthenticated: Callable[[], bool] | None = None
    requests_sent: int = 0
    # Tests swap the network for an httpx.MockTransport to force faults.
    http_transport: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            transport=self.http_transport,
            base_url=self.base_url,
            verify=self.verify,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
            ),
            headers={"User-Agent": f"detorm/{__version__}", "Accept": "application/json"},
        )
        self._count_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # --- unary ----------------------------------------------------------------------------
    def send(
        self, call: Call, *, retry: RetryPolicy | None = None, reauthenticate: bool = True
    ) -> httpx.Response:
        """Send a call and return its successful response (an :class:`APIError` otherwise)."""
        response = self._send_with_retries(call, retry or self.retry)
        if response.status_code == 401 and reauthenticate and self._reauthenticate():
            response = self._send_with_retries(call, retry or self.retry)
        raise_for_status(call, response)
        return response

    def json(self, call: Call) -> Any:
        return self.send(call).json()

    def _reauthenticate(self) -> bool:
        # A cached token may have expired: the session logs in again once, if it can.
        return self.on_unauthenticated is not None and self.on_unauthenticated()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _build(self, call: Call, extra_headers: Mapping[str, str] | None = None) -> httpx.Request:
        content = None if call.body is None else json.dumps(call.body, allow_nan=False).encode()
        headers = self._headers()
        if content is not None:
            headers["Content-Type"] = "application/json"
        headers.update(extra_headers or {})
        return self._client.build_request(
            call.method, call.path, params=list(call.params), content=content, headers=headers
        )

    def _send_with_retries(self, call: Call, retry: RetryPolicy) -> httpx.Response:
        deadline = None if retry.deadline is None else time.monotonic() + retry.deadline
        attempt = 0
        while True:
            try:
                response = self._send_once(call, stream=False)
            except httpx.TransportError as err:
                # A failed connect never reached the master, so any method may be retried.
                retriable = call.idempotent or isinstance(err, httpx.ConnectError)
                if not retriable or not self._sleep_before_retry(retry, attempt, None, deadline):
                    raise TransportError(
                        f"{call.method} {call.path}: {type(err).__name__}: {err}",
                        method=call.method, path=call.path,
                    ) from None  # fmt: skip
            else:
                if not (call.idempotent and response.status_code in retry.statuses):
                    return response
                if not self._sleep_before_retry(retry, attempt, _retry_after(response), deadline):
                    return response
            attempt += 1

    def _sleep_before_retry(
        self, retry: RetryPolicy, attempt: int, retry_after: float | None, deadline: float | None
    ) -> bool:
        if attempt >= retry.retries:
            return False
        delay = retry.delay(attempt, retry_after)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        time.sleep(delay)
        return True

    def _send_once(
        self, call: Call, *, stream: bool, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        with self._count_lock:
            self.requests_sent += 1
        return self._client.send(self._build(call, headers), stream=stream)

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

    def open_stream(
        self, call: Call, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """A successful streamed response (close it): reconnects, a new login after a 401 and
        retries on 502/503/504 happen before the first byte is handed out."""
        deadline = None if self.retry.deadline is None else time.monotonic() + self.retry.deadline
        attempt = 0
        reauthenticated = False
        while True:
            try:
                response = self._send_once(call, stream=True, headers=headers)
            except httpx.TransportError as err:
                if not self._sleep_before_retry(self.retry, attempt, None, deadline):
                    raise TransportError(
                        f"{call.method} {call.path}: {type(err).__name__}: {err}",
                        method=call.method, path=call.path,
                    ) from None  # fmt: skip
                attempt += 1
                continue
            if response.status_code == 401 and not reauthenticated and self._reauthenticate():
                response.close()
                reauthenticated = True
                continue
            if response.status_code in self.retry.statuses and self._sleep_before_retry(
                self.retry, attempt, _retry_after(response), deadline
            ):
                response.close()
                attempt += 1
                continue
            if response.status_code >= 300:
                response.read()
                response.close()
                raise_for_status(call, response)
            return response


def _results(call: Call, response: httpx.Response) -> Iterator[bytes]:
    pending = b""
    try:
        for chunk in response.iter_bytes():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line:
                    yield _result_of(call, line)
    except httpx.TransportError as err:
        raise StreamInterrupted(
            f"{call.method} {call.path}: the stream broke off: {type(err).__name__}: {err}",
            method=call.method, path=call.path,
        ) from None  # fmt: skip
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
