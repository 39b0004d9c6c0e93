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

Secrets. The token is a :class:`~detorm._io._auth.Secret`, revealed only to build each request's
``Authorization`` header (never a default header of the client); the master's ``auth`` cookie is
not kept, and httpcore's debug records of response headers are redacted.

Logging (the ``detorm.http`` logger; both drivers run these ops, so both log alike): each attempt
at DEBUG (method, path, status or error, milliseconds, attempt number), each retry, new login
and stream resume at WARNING. Records name the path only: never a query string (it may carry
user data), a header, a body or a token.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import httpx

from .._io._auth import MasterOrigin, Secret
from .._plan._call import Call, RetryPolicy, parse_retry_after
from ..errors import StreamInterrupted, TransportError, api_error_class
from ._effects import Attempt, Discard, Op, Opened, Rows, Sleep, close, emit, open_stream, read

T = TypeVar("T")
LOGGER: Final = logging.getLogger("detorm.http")
# Between a transport error and the hint that follows it when no connection could be made.
_HINT_SEPARATOR: Final = ". Could not connect to the master at "
# A master that accepts no connection in 10 s is down: fail the attempt and retry sooner.
_CONNECT_TIMEOUT: Final = 10.0
_RESULT_PREFIX: Final = b'{"result":'
# Requests of one session in flight at once, unless it says otherwise.
DEFAULT_CONCURRENCY: Final = 8
_LOGIN_POLL: Final = 0.005  # seconds between looks at a login another call is making


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


def _outcome_text(call: Call, outcome: httpx.Response | TransportError) -> str:
    """The status ("200 OK"), or the transport error without the call and the hint."""
    if isinstance(outcome, TransportError):
        text = str(outcome).removeprefix(f"{call.method} {call.path}: ")
        return text.partition(_HINT_SEPARATOR)[0]
    return f"{outcome.status_code} {outcome.reason_phrase}".rstrip()


def _log_attempt(
    call: Call, outcome: httpx.Response | TransportError, seconds: float, attempt: int
) -> None:
    if LOGGER.isEnabledFor(logging.DEBUG):
        LOGGER.debug(
            "%s %s -> %s in %.1f ms (attempt %d)",
            call.method, call.path, _outcome_text(call, outcome), seconds * 1000, attempt + 1,
        )  # fmt: skip


def raise_for_status(call: Call, response: httpx.Response) -> None:
    if response.status_code < 300:
        return
    message, reason, body = _error_message(response)
    raise api_error_class(response.status_code)(
        method=call.method, path=call.path, status=response.status_code,
        message=message, reason=reason, body=body,
    )  # fmt: skip


class _Http:
    """What both transports share: the master, the policy, the token and the counters, and the
    ops that send a call (retries inside the deadline, a new login after a 401).

    ``requests_sent`` counts every HTTP request sent; ``retries`` those the retry policy sent
    again (a new login after a 401 is not a retry). The repr names the master only: the token
    is a :class:`~detorm._io._auth.Secret`.
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
        # Where the master URL came from (the session sets it): named when it cannot be reached.
        self.origin: MasterOrigin | None = None
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
            LOGGER.warning(
                "%s %s -> 401: the token was refused; logging in again", call.method, call.path
            )
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
            started = self._clock()
            outcome = yield Attempt(call, min(self.timeout, remaining), stream, headers)
            _log_attempt(call, outcome, self._clock() - started, attempt)
            delay = self._retry_delay(call, policy, attempt, outcome, deadline)
            if delay is None:
                break
            LOGGER.warning(
                "%s %s -> %s; retrying in %.2f s (retry %d of at most %d)",
                call.method, call.path, _outcome_text(call, outcome), delay, attempt + 1,
                policy.retries,
            )  # fmt: skip
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

    def transport_error(self, call: Call, err: Exception, *, request_sent: bool) -> TransportError:
        """The TransportError standing for httpx's ``err`` (the drivers' one message): when no
        connection could be made, it names the master, where its URL came from, and how to
        start a local one."""
        message = f"{call.method} {call.path}: {type(err).__name__}: {err}"
        if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
            message += self._unreachable()
        return TransportError(
            message, method=call.method, path=call.path, request_sent=request_sent
        )

    def _unreachable(self) -> str:
        where = self.origin.describe() if self.origin is not None else self.base_url
        return (
            f"{_HINT_SEPARATOR}{where}: is it running and reachable? "
            "To try detorm on this machine, start a local master with `detorm serve` (or "
            "`python -m detorm serve`), or pass another master (the master argument or "
            "DET_MASTER)"
        )

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

    def back_off(self, attempt: int, call: Call | None = None) -> Op[None]:
        """Wait before retry ``attempt`` (from 0) of something that broke off (``call``, the
        stream, named in the warning logged), and count it."""
        delay = self.retry.delay(attempt)
        what = "a stream" if call is None else f"{call.method} {call.path}"
        LOGGER.warning(
            "%s broke off; reading it again in %.2f s (retry %d)", what, delay, attempt + 1
        )
        yield Sleep(delay)
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
                yield from self._http.back_off(self._resumed, self._call)
                self._resumed += 1
                self._call = self._resume()
                continue
            if results:
                return results
            if not chunk:
                yield from self._close()
                return None

    def close(self) -> Op[None]:
        """Stop reading: close the stream now (a reader left open is closed when its op ends)."""
        yield from self._close()

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
