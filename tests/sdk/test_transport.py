"""Retries, deadlines, error mapping and stream framing, with faults forced by a mock transport.

Every test of driver behaviour runs against both drivers (``[sync]``: :class:`Transport`,
``[async]``: :class:`AsyncTransport`) through one calling convention (:class:`Driver`), so the
async driver is held to the same retries, waits, deadlines, errors and re-login as the sync one.

Time is a fake clock: sleeping advances it at once (the async driver's sleep too), and a
"hanging" server advances it by the attempt's read timeout, so deadlines are checked exactly and
without waiting.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import pytest

import detorm
from detorm import Experiment, Trial, hp
from detorm._api._drivers import AsyncTransport, Transport
from detorm._io._auth import Secret
from detorm._ops._effects import Op
from detorm._plan._call import IDEMPOTENT, Call, RetryPolicy, parse_retry_after
from detorm.errors import (
    APIError,
    BadRequest,
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidType,
    NotFound,
    RateLimited,
    ServerError,
    StreamInterrupted,
    TransportError,
    Unauthenticated,
)
from tests.sdk.apis import MODES, Mode

Handler = Callable[[httpx.Request], httpx.Response]
MASTER = "http://master.test"
GET = Call("GET", "/api/v1/experiments")
SEARCH = Call("POST", "/api/v1/experiments-search", body={"limit": 1}, read_only=True)
ROUNDING = 1e-9  # deadline - now + now is not always exactly the deadline in floating point


class Clock:
    """A fake monotonic clock: ``sleep`` advances it at once and records the wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Driver:
    """Either driver over a mock master, in the sync driver's calling convention: ``send``,
    ``json`` and ``stream`` give what :class:`Transport`'s give, the async driver's awaited (or
    iterated) on a loop of its own. Both sleep and read the time on ``clock``."""

    def __init__(
        self, mode: Mode, handler: Handler, clock: Clock, *, timeout: float, retry: RetryPolicy
    ) -> None:
        self.mode = mode
        mock = httpx.MockTransport(handler)  # serves a sync handler to both clients
        options: dict[str, Any] = {
            "timeout": timeout,
            "retry": retry,
            "token": Secret("secret-token"),
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self.driver: Transport | AsyncTransport
        if mode == "sync":
            self.driver = Transport(MASTER, http_transport=mock, **options)
            self.driver._sleep = lambda seconds: clock.sleep(seconds)
        else:
            self._loop = asyncio.new_event_loop()
            self.driver = AsyncTransport(MASTER, http_transport=mock, **options)

            async def sleep(seconds: float) -> None:
                clock.sleep(seconds)
                await asyncio.sleep(0)  # a sleep suspends the task, however short

            self.driver._sleep = sleep
        self.driver._clock = clock.monotonic

    def _result(self, value: Any) -> Any:
        if self._loop is None:
            assert not inspect.isawaitable(value)
            return value
        assert inspect.isawaitable(value), f"{value!r} should be awaited in the async driver"
        return self._loop.run_until_complete(value)

    def send(self, call: Call, **options: Any) -> httpx.Response:
        response: httpx.Response = self._result(self.driver.send(call, **options))
        return response

    def json(self, call: Call) -> Any:
        if isinstance(self.driver, Transport):
            return self.driver.json(call)
        return self.send(call).json()  # the async driver has no json(): its send's body

    def stream(self, call: Call) -> Iterator[bytes]:
        """The stream's results, yielded one by one as the driver gives them."""
        if isinstance(self.driver, Transport):
            return self.driver.stream(call)
        results = self.driver.stream(call)
        assert hasattr(results, "__aiter__") and not hasattr(results, "__iter__")
        return self._each(results)

    def _each(self, results: AsyncIterator[bytes]) -> Iterator[bytes]:
        assert self._loop is not None
        end = object()
        try:
            while (item := self._loop.run_until_complete(_next(results, end))) is not end:
                yield item
        finally:
            self._loop.run_until_complete(results.aclose())  # type: ignore[attr-defined]

    @property
    def requests_sent(self) -> int:
        return self.driver.requests_sent

    @property
    def retries(self) -> int:
        return self.driver.retries

    def close(self) -> None:
        if isinstance(self.driver, Transport):
            self.driver.close()
            return
        assert self._loop is not None
        self._loop.run_until_complete(self.driver.aclose())
        self._loop.close()


async def _next(results: AsyncIterator[Any], end: object) -> Any:
    return await anext(results, end)


class Make(Protocol):
    def __call__(
        self, handler: Handler, clock: Clock | None = None, *, timeout: float = 60.0,
        **retry: object,
    ) -> Driver: ...  # fmt: skip


@pytest.fixture(params=MODES)
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    """Builds the driver of this test's mode over a handler (closed at the end of the test)."""
    made: list[Driver] = []

    def driver(
        handler: Handler, clock: Clock | None = None, *, timeout: float = 60.0, **retry: object
    ) -> Driver:
        policy = RetryPolicy(**{"retries": 3, "backoff": 0.01, **retry})  # type: ignore[arg-type]
        made.append(Driver(request.param, handler, clock or Clock(), timeout=timeout, retry=policy))
        return made[-1]

    yield driver
    for each in made:
        each.close()


def fresh(response: httpx.Response) -> httpx.Response:
    """A new copy of a response shared between tests: a response once sent is bound to the
    client (sync or async) that received it."""
    return httpx.Response(response.status_code, headers=response.headers, content=response.content)


def answers(*responses: httpx.Response) -> Handler:
    remaining = iter(responses)
    return lambda request: next(remaining)


def unary_error(status: int, code: int, reason: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "reason": reason, "error": message}}
    )


def fail_with(kind: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise kind("simulated", request=request)

    return handler


# --- which calls are retried --------------------------------------------------------------------
def test_idempotent_requests_retry_on_gateway_errors(make: Make) -> None:
    clock = Clock()
    transport = make(
        answers(httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": 1})),
        clock,
    )
    assert transport.json(GET) == {"ok": 1}
    assert transport.requests_sent == 3 and transport.retries == 2
    assert len(clock.sleeps) == 2
    assert all(0 <= s <= 0.01 * 2**i for i, s in enumerate(clock.sleeps))  # full jitter


def test_read_only_posts_are_retried_like_gets(make: Make) -> None:
    transport = make(
        answers(
            httpx.Response(503), httpx.Response(502), httpx.Response(504),
            httpx.Response(200, json={"experiments": []}),
        )
    )  # fmt: skip
    assert transport.json(SEARCH) == {"experiments": []}
    assert transport.retries == 3


def test_the_planner_marks_its_searches_read_only(session: detorm.Session) -> None:
    for query in (Experiment.query(session).filter(hp.lr > 0.001), Trial.query(session)):
        call = query.plan().first_call()
        assert call.method == "POST" and call.read_only


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("status", [502, 503, 504])
def test_writes_are_not_retried_on_a_proxy_maybe(make: Make, method: str, status: int) -> None:
    transport = make(lambda request: httpx.Response(status, json={"message": "bad gateway"}))
    with pytest.raises(ServerError):
        transport.send(Call(method, "/api/v1/experiments/1", body={}))
    assert transport.requests_sent == 1 and transport.retries == 0


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    "refusal",
    [httpx.Response(429), httpx.Response(503, headers={"Retry-After": "0"})],
    ids=["429", "503 with Retry-After"],
)
def test_writes_are_retried_when_refused(make: Make, method: str, refusal: httpx.Response) -> None:
    transport = make(answers(fresh(refusal), httpx.Response(200, json={})))
    assert transport.send(Call(method, "/api/v1/experiments/1", body={})).json() == {}
    assert transport.requests_sent == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("kind", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_writes_are_retried_when_never_sent(
    make: Make, method: str, kind: type[httpx.TransportError]
) -> None:
    attempts = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise kind("not connected", request=request)
        return httpx.Response(200, json={"token": "t"})

    assert make(flaky).json(Call(method, "/api/v1/auth/login", body={})) == {"token": "t"}
    assert attempts["n"] == 3


@pytest.mark.parametrize(
    "kind", [httpx.ReadError, httpx.ReadTimeout, httpx.WriteError, httpx.RemoteProtocolError]
)
def test_writes_are_not_retried_once_sent(make: Make, kind: type[httpx.TransportError]) -> None:
    transport = make(fail_with(kind))
    with pytest.raises(TransportError, match="POST /api/v1/runs/move") as info:
        transport.send(Call("POST", "/api/v1/runs/move", body={}))
    assert info.value.request_sent and transport.requests_sent == 1


@pytest.mark.parametrize(
    ("kind", "sent"),
    [
        (httpx.ConnectError, False),
        (httpx.ConnectTimeout, False),
        (httpx.PoolTimeout, False),
        (httpx.UnsupportedProtocol, False),
        (httpx.ReadError, True),
        (httpx.ReadTimeout, True),
        (httpx.WriteError, True),
        (httpx.WriteTimeout, True),
        (httpx.RemoteProtocolError, True),
    ],
)
def test_request_sent_says_whether_the_master_may_have_it(
    make: Make, kind: type[httpx.TransportError], sent: bool
) -> None:
    transport = make(fail_with(kind), retries=0)
    with pytest.raises(TransportError) as info:
        transport.send(GET)
    error = info.value
    assert error.request_sent is sent
    assert (error.method, error.path) == ("GET", "/api/v1/experiments")
    assert kind.__name__ in str(error)
    # httpx's error holds the request, Authorization header included: it is not chained.
    assert error.__context__ is None and error.__cause__ is None


def test_an_invalid_url_is_a_transport_error_never_sent(make: Make) -> None:
    transport = make(lambda request: httpx.Response(200), retries=0)
    with pytest.raises(TransportError) as info:
        transport.send(Call("GET", "/api/v1/\x00"))
    assert not info.value.request_sent and transport.requests_sent == 0


# --- 429 and Retry-After -------------------------------------------------------------------------
def test_429_is_retried_as_retry_after_asks(make: Make) -> None:
    clock = Clock()
    transport = make(
        answers(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={})),
        clock,
    )
    assert transport.json(GET) == {}
    assert clock.sleeps == [3.0] and transport.retries == 1


def test_429_without_end_raises_rate_limited(make: Make) -> None:
    transport = make(lambda request: unary_error(429, 8, "ResourceExhausted", "slow down"))
    with pytest.raises(RateLimited, match="429 ResourceExhausted: slow down"):
        transport.send(GET)
    assert transport.requests_sent == 4  # the first attempt and 3 retries


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a past date: no wait
    ],
)
def test_retry_after_seconds_and_dates_are_honoured(
    make: Make, header: str, expected: float
) -> None:
    clock = Clock()
    transport = make(
        answers(httpx.Response(503, headers={"Retry-After": header}), httpx.Response(200)), clock
    )
    transport.send(Call("PUT", "/api/v1/experiments/1/labels/a"))
    assert clock.sleeps == [expected]


@pytest.mark.parametrize("header", ["soon", "-1", "1.5", "nan", "inf", "", "١", "²", "Mon, 99"])
def test_a_garbled_retry_after_falls_back_to_backoff(make: Make, header: str) -> None:
    clock = Clock()
    transport = make(
        answers(httpx.Response(429, headers={"Retry-After": header.encode()}), httpx.Response(200)),
        clock,
    )
    transport.send(GET)
    assert len(clock.sleeps) == 1 and 0 <= clock.sleeps[0] <= 0.01  # the backoff's first cap


@pytest.mark.parametrize("header", ["99999", "9" * 400, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_wait_longer_than_the_deadline_raises_at_once(make: Make, header: str) -> None:
    clock = Clock()
    transport = make(
        lambda request: httpx.Response(429, headers={"Retry-After": header}), clock, retries=10
    )
    with pytest.raises(RateLimited):
        transport.send(GET)
    assert transport.requests_sent == 1 and clock.sleeps == []


def test_retry_after_is_capped(make: Make) -> None:
    clock = Clock()
    transport = make(
        answers(httpx.Response(503, headers={"Retry-After": "3000"}), httpx.Response(200)),
        clock, deadline=86400.0, max_retry_after=45.0,
    )  # fmt: skip
    transport.send(GET)
    assert clock.sleeps == [45.0]


def test_parse_retry_after() -> None:
    now = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Fri, 01 Mar 2024 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Friday, 01-Mar-24 12:01:00 GMT", now) == 60.0  # RFC 850
    assert parse_retry_after("Fri Mar  1 12:00:10 2024", now) == 10.0  # asctime, GMT
    assert parse_retry_after("Thu, 29 Feb 2024 12:00:00 GMT", now) == 0.0
    for garbage in ("soon", "-5", "3.5", "1e3", "NaN", "Fri, 32 Mar 2024 12:00:00 GMT"):
        assert parse_retry_after(garbage, now) is None


# --- the deadline --------------------------------------------------------------------------------
def slow(clock: Clock, seconds: float, answer: httpx.Response | None = None) -> Handler:
    """A master that answers ``answer`` after ``seconds`` (None: never). An attempt whose read
    timeout comes first lasts that timeout and times out, as over a real connection."""

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions["timeout"]
        assert all(clock.now + limit <= DEADLINE + ROUNDING for limit in timeouts.values())
        if answer is None or seconds > timeouts["read"]:
            clock.now += timeouts["read"]
            raise httpx.ReadTimeout("timed out", request=request)
        clock.now += seconds
        return fresh(answer)

    return handler


DEADLINE = 1.0
UNAVAILABLE = unary_error(503, 14, "Unavailable", "try later")


@pytest.mark.parametrize("call", [GET, SEARCH], ids=["GET", "read-only POST"])
def test_a_hanging_master_costs_the_timeout_once(make: Make, call: Call) -> None:
    clock = Clock()
    transport = make(slow(clock, math.inf), clock, timeout=DEADLINE, retries=5, backoff=0.5)
    with pytest.raises(TransportError, match="ReadTimeout") as info:
        transport.send(call)
    assert info.value.request_sent
    assert transport.requests_sent == 1 and clock.now == DEADLINE


@pytest.mark.parametrize("seconds", [0.0, 0.05, 0.3])
def test_a_master_always_unavailable_costs_the_timeout_at_most(make: Make, seconds: float) -> None:
    clock = Clock()
    transport = make(slow(clock, seconds, UNAVAILABLE), clock, timeout=DEADLINE, retries=100)
    with pytest.raises((ServerError, TransportError)):
        transport.send(GET)
    assert transport.requests_sent > 2  # retried, but within the budget
    assert clock.now <= DEADLINE + ROUNDING
    assert transport.retries == transport.requests_sent - 1


def test_the_policy_deadline_overrides_the_timeout(make: Make) -> None:
    clock = Clock()
    seen: list[float] = []

    def hangs(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        clock.now += seen[-1]
        raise httpx.ReadTimeout("timed out", request=request)

    transport = make(hangs, clock, timeout=2.0, deadline=5.0, retries=10, backoff=0)
    with pytest.raises(TransportError):
        transport.send(GET)
    assert seen == [2.0, 2.0, 1.0] and clock.now == 5.0


class Oversleeping(Clock):
    """A machine too busy to wake up in time: each sleep lasts 1.5 s more than asked."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds + 1.5)


def test_no_attempt_starts_after_a_sleep_that_overran(make: Make) -> None:
    clock = Oversleeping()
    transport = make(
        answers(httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(200)),
        clock, timeout=DEADLINE,
    )  # fmt: skip
    with pytest.raises(ServerError):
        transport.send(GET)
    assert transport.requests_sent == 1 and transport.retries == 0
    assert clock.sleeps == [1.5] and clock.now == 1.5


@pytest.mark.parametrize("seconds", [0.0, 0.1])
def test_a_stream_gets_its_response_within_the_deadline(make: Make, seconds: float) -> None:
    clock = Clock()
    transport = make(slow(clock, seconds, UNAVAILABLE), clock, timeout=DEADLINE, retries=100)
    with pytest.raises((ServerError, TransportError)):
        list(transport.stream(Call("GET", "/api/v1/trials/3/logs", stream=True)))
    assert transport.requests_sent > 2 and clock.now <= DEADLINE + ROUNDING


def test_streams_are_retried_before_the_first_line(make: Make) -> None:
    transport = make(
        answers(httpx.Response(502), httpx.Response(200, content=b'{"result":{"a":1}}\n'))
    )
    assert list(transport.stream(Call("GET", "/api/v1/trials/3/logs", stream=True))) == [b'{"a":1}']
    assert transport.retries == 1


# --- RetryPolicy is checked when built ----------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"retries": -1}, ConfigurationError, r"retries must be an int in 0\.\."),
        ({"retries": 2.5}, InvalidType, "retries must be an int"),
        ({"retries": True}, InvalidType, "retries must be an int"),
        ({"backoff": float("nan")}, ConfigurationError, "backoff must be a finite number"),
        (
            {"max_backoff": -1},
            ConfigurationError,
            r"max_backoff must be a number of seconds in \[0",
        ),
        ({"max_retry_after": "60"}, InvalidType, "max_retry_after must be a number"),
        ({"deadline": 0}, ConfigurationError, r"deadline must be a number of seconds in \(0"),
        ({"deadline": float("inf")}, ConfigurationError, "deadline must be a finite number"),
        ({"statuses": [503]}, InvalidType, "statuses must be a set"),
        ({"statuses": frozenset({"503"})}, InvalidType, "statuses must be a set"),
        ({"statuses": frozenset({0, "0000"})}, InvalidType, "statuses must be a set"),
        ({"statuses": frozenset({200})}, ConfigurationError, "in 400..599"),
    ],
)
def test_a_bad_retry_policy_is_refused(
    arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RetryPolicy(**arguments)  # type: ignore[arg-type]


# --- errors and streams --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (unary_error(400, 3, "InvalidArgument", "bad sort"), BadRequest),
        (unary_error(401, 16, "Unauthenticated", "invalid credentials"), Unauthenticated),
        (unary_error(403, 7, "PermissionDenied", "user does not have permission"), Forbidden),
        (unary_error(404, 5, "NotFound", "experiment '9' not found"), NotFound),
        (unary_error(409, 6, "AlreadyExists", "exists"), Conflict),
        (unary_error(429, 8, "ResourceExhausted", "too many"), RateLimited),
        (unary_error(500, 13, "Internal", "kaboom"), ServerError),
        (
            httpx.Response(
                501,
                json={"error": {"code": 12, "reason": "Unimplemented", "error": "Not Implemented"}},
            ),
            ServerError,
        ),
        (httpx.Response(418, text="teapot"), APIError),
    ],
)
def test_errors_are_typed_and_say_what_happened(
    make: Make, response: httpx.Response, kind: type[APIError]
) -> None:
    transport = make(lambda request: fresh(response), retries=0)
    with pytest.raises(kind) as info:
        transport.send(Call("GET", "/api/v1/experiments/9", (("limit", "5"),)))
    error = info.value
    assert type(error) is kind and error.status == response.status_code
    text = str(error)
    assert text.startswith("GET /api/v1/experiments/9 -> ")
    assert "secret-token" not in text and "limit" not in text


def stream_of(*lines: bytes) -> Handler:
    return lambda request: httpx.Response(200, content=b"".join(lines))


def test_stream_yields_results_then_raises_the_error_line(make: Make) -> None:
    error = json.dumps(
        {
            "error": {
                "grpcCode": 5,
                "httpCode": 404,
                "message": "trial '3' not found",
                "httpStatus": "Not Found",
                "details": [],
            }
        }
    ).encode()
    transport = make(stream_of(b'{"result":{"a":1}}\n', b'{"result": {"a": 2}}\n', error))
    received: list[bytes] = []
    with pytest.raises(NotFound, match="trial '3' not found"):
        for raw in transport.stream(Call("GET", "/api/v1/trials/3/logs", stream=True)):
            received.append(raw)
    assert [json.loads(r) for r in received] == [{"a": 1}, {"a": 2}]


def test_a_cut_stream_is_interrupted_after_the_complete_lines(make: Make) -> None:
    transport = make(stream_of(b'{"result":{"a":1}}\n', b'{"result":{"a":'))
    received = []
    with pytest.raises(StreamInterrupted, match="middle of a message"):
        for raw in transport.stream(
            Call("GET", "/api/v1/trials/metrics/trial_metrics", stream=True)
        ):
            received.append(raw)
    assert received == [b'{"a":1}']


class _Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body whose connection is reset after its first line (for either client)."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"result":{"a":1}}\n'
        raise httpx.ReadError("connection reset")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"result":{"a":1}}\n'
        raise httpx.ReadError("connection reset")


def test_a_lost_connection_is_interrupted_without_chaining_httpx(make: Make) -> None:
    transport = make(lambda request: httpx.Response(200, stream=_Broken()))
    received = []
    with pytest.raises(StreamInterrupted, match="broke off: ReadError") as info:
        for raw in transport.stream(Call("GET", "/api/v1/trials/3/logs", stream=True)):
            received.append(raw)
    assert received == [b'{"a":1}']
    assert info.value.__context__ is None and info.value.request_sent


def test_error_before_the_first_line_uses_the_status(make: Make) -> None:
    body = {
        "error": {
            "grpcCode": 16,
            "httpCode": 401,
            "message": "invalid credentials",
            "httpStatus": "Unauthorized",
            "details": [],
        }
    }
    transport = make(lambda request: httpx.Response(401, json=body))
    with pytest.raises(Unauthenticated, match="invalid credentials"):
        list(transport.stream(Call("GET", "/api/v1/trials/3/logs", stream=True)))


def test_a_401_logs_in_again_once(make: Make) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return (
            httpx.Response(200, json={})
            if request.headers["Authorization"] == "Bearer fresh"
            else httpx.Response(401)
        )

    transport = make(handler)

    def relogin() -> Op[bool]:
        transport.driver.token = Secret("fresh")
        return True
        yield  # an op: a generator (that sends nothing here)

    transport.driver.on_unauthenticated = relogin
    assert transport.json(Call("GET", "/api/v1/me")) == {}
    assert seen == ["Bearer secret-token", "Bearer fresh"]


# --- the token stays out of the client ------------------------------------------------------------
def test_the_token_is_a_per_request_header_and_the_auth_cookie_is_not_kept(make: Make) -> None:
    seen: list[httpx.Request] = []

    def master(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        # The real master sets the token as a cookie for its web UI (grpcutil/auth.go).
        cookies = [("Set-Cookie", "auth=secret-token; Path=/"), ("Set-Cookie", "lb=node-2; Path=/")]
        return httpx.Response(200, json={"token": "secret-token"}, headers=cookies)

    transport = make(master)
    transport.send(Call("POST", "/api/v1/auth/login", body={}))
    transport.send(GET)
    assert seen[1].headers["Cookie"] == "lb=node-2"  # other cookies (a load balancer's) stay
    client = transport.driver._client
    assert "secret-token" not in repr(client.cookies)
    assert "authorization" not in client.headers
    name = {"sync": "Transport", "async": "AsyncTransport"}[transport.mode]
    assert repr(transport.driver) == f"<detorm {name} http://master.test>"


def test_retry_constants_are_what_the_docs_say() -> None:
    assert RetryPolicy().statuses == frozenset({429, 502, 503, 504})
    assert RetryPolicy().deadline is None  # the session's timeout
    assert IDEMPOTENT == frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
