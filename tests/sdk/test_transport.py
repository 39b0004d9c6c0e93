"""Retries, deadlines, error mapping and stream framing, with faults forced by a mock transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from detorm import _transport
from detorm._transport import Call, RetryPolicy, Transport
from detorm.errors import (
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServerError,
    StreamInterrupted,
    TransportError,
    Unauthenticated,
)


def make(handler: Callable[[httpx.Request], httpx.Response], **retry: object) -> Transport:
    policy = RetryPolicy(**{"retries": 3, "backoff": 0.01, **retry})  # type: ignore[arg-type]
    return Transport(
        "http://master.test",
        retry=policy,
        http_transport=httpx.MockTransport(handler),
        token="secret-token",
    )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(_transport.time, "sleep", recorded.append)
    return recorded


def unary_error(status: int, code: int, reason: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "reason": reason, "error": message}}
    )


def test_idempotent_requests_retry_on_gateway_errors(sleeps: list[float]) -> None:
    answers = iter([httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": 1})])
    transport = make(lambda request: next(answers))
    assert transport.json(Call("GET", "/api/v1/experiments")) == {"ok": 1}
    assert transport.requests_sent == 3 and len(sleeps) == 2
    assert all(0 <= s <= 0.01 * 2**i for i, s in enumerate(sleeps))  # full jitter, growing cap


def test_retry_after_is_honoured(sleeps: list[float]) -> None:
    answers = iter(
        [httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(200, json={})]
    )
    make(lambda request: next(answers)).json(Call("PUT", "/api/v1/experiments/1/labels/a"))
    assert sleeps == [2.0]


def test_post_and_patch_are_not_retried_on_status(sleeps: list[float]) -> None:
    for method in ("POST", "PATCH"):
        transport = make(lambda request: httpx.Response(503, json={"message": "busy"}))
        with pytest.raises(ServerError):
            transport.send(Call(method, "/api/v1/experiments-search", body={}))
        assert transport.requests_sent == 1
    assert sleeps == []


def test_connection_failures_are_retried_for_every_method(sleeps: list[float]) -> None:
    attempts = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"token": "t"})

    assert make(flaky).json(Call("POST", "/api/v1/auth/login", body={})) == {"token": "t"}
    assert attempts["n"] == 3


def test_read_errors_are_not_retried_for_posts(sleeps: list[float]) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    transport = make(broken)
    with pytest.raises(TransportError, match="POST /api/v1/runs"):
        transport.send(Call("POST", "/api/v1/runs", body={}))
    assert transport.requests_sent == 1


def test_the_deadline_bounds_all_attempts(sleeps: list[float]) -> None:
    transport = make(
        lambda request: httpx.Response(503, headers={"Retry-After": "30"}),
        deadline=10.0,
        retries=10,
    )
    with pytest.raises(ServerError):
        transport.send(Call("GET", "/api/v1/me"))
    assert transport.requests_sent == 1 and sleeps == []  # waiting 30 s would pass the deadline


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (unary_error(400, 3, "InvalidArgument", "bad sort"), BadRequest),
        (unary_error(401, 16, "Unauthenticated", "invalid credentials"), Unauthenticated),
        (unary_error(403, 7, "PermissionDenied", "user does not have permission"), Forbidden),
        (unary_error(404, 5, "NotFound", "experiment '9' not found"), NotFound),
        (unary_error(409, 6, "AlreadyExists", "exists"), Conflict),
        (unary_error(500, 13, "Internal", "kaboom"), ServerError),
        (
            httpx.Response(
                501,
                json={"error": {"code": 12, "reason": "Unimplemented", "error": "Not Implemented"}},
            ),
            ServerError,
        ),
        (httpx.Response(429, text="slow down"), APIError),
    ],
)
def test_errors_are_typed_and_say_what_happened(
    response: httpx.Response, kind: type[APIError]
) -> None:
    transport = make(lambda request: response)
    with pytest.raises(kind) as info:
        transport.send(Call("GET", "/api/v1/experiments/9", (("limit", "5"),)))
    error = info.value
    assert type(error) is kind and error.status == response.status_code
    text = str(error)
    assert text.startswith("GET /api/v1/experiments/9 -> ")
    assert "secret-token" not in text and "limit" not in text


def stream_of(*lines: bytes) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, content=b"".join(lines))


def test_stream_yields_results_then_raises_the_error_line() -> None:
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


def test_a_cut_stream_is_interrupted_after_the_complete_lines() -> None:
    transport = make(stream_of(b'{"result":{"a":1}}\n', b'{"result":{"a":'))
    received = []
    with pytest.raises(StreamInterrupted, match="middle of a message"):
        for raw in transport.stream(
            Call("GET", "/api/v1/trials/metrics/trial_metrics", stream=True)
        ):
            received.append(raw)
    assert received == [b'{"a":1}']


def test_error_before_the_first_line_uses_the_status(sleeps: list[float]) -> None:
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


def test_a_401_logs_in_again_once() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return (
            httpx.Response(200, json={})
            if request.headers["Authorization"] == "Bearer fresh"
            else httpx.Response(401)
        )

    transport = make(handler)

    def relogin() -> bool:
        transport.token = "fresh"
        return True

    transport.on_unauthenticated = relogin
    assert transport.json(Call("GET", "/api/v1/me")) == {}
    assert seen == ["Bearer secret-token", "Bearer fresh"]
