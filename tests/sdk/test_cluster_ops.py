"""session.master_info / master_config / master_logs / cluster message / logout in both APIs,
against canned replies (a mock master): what each sends, how it reads the answer, and bad
input refused before anything is sent. The same against detorm.local: test_cluster.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import detorm
from detorm import ClusterMessage, LogLevel, MasterInfo, MasterLogEntry
from detorm._api._drivers import Transport
from detorm._io._auth import TokenStore, config_dir
from detorm.errors import Forbidden, InvalidType, InvalidValue, QueryError, Unauthenticated
from tests.sdk.apis import MODES, Api

MASTER = "http://master.test"
MESSAGE = "/api/v1/master/cluster_message"


def error(status: int, message: str) -> httpx.Response:
    code = {400: 3, 401: 16, 403: 7, 404: 5}[status]
    return httpx.Response(status, json={"code": code, "message": message, "details": []})


class FakeMaster:
    """Answers from per-route callables; records every request (method, path, query, body,
    the Authorization header)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, Any, str | None]] = []
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}

    def on(self, method: str, path: str, reply: Callable[[httpx.Request], httpx.Response]) -> None:
        self.routes[(method, path)] = reply

    def reply(self, method: str, path: str, body: dict[str, Any]) -> None:
        self.on(method, path, lambda _: httpx.Response(200, json=body))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        auth = request.headers.get("authorization")
        self.requests.append(
            (request.method, request.url.path, request.url.query.decode(), body, auth)
        )
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return error(404, f"no route {request.method} {request.url.path}")
        return handler(request)

    def sent(self, method: str, path: str) -> list[tuple[str, Any]]:
        return [(q, b) for m, p, q, b, _ in self.requests if (m, p) == (method, path)]


@pytest.fixture
def master() -> FakeMaster:
    return FakeMaster()


def _both(mode: str, master: FakeMaster, environ: dict[str, str], **options: Any) -> Api:
    if mode == "sync":  # the sync session logs in as it opens: the mock must be there first
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(detorm.Session, "_open_transport", lambda self, url, **o: Transport(
                url, http_transport=httpx.MockTransport(master), **o))  # fmt: skip
            return Api(mode, MASTER, environ, cache=False, **options)  # type: ignore[arg-type]
    both = Api(mode, MASTER, environ, cache=False, **options)  # type: ignore[arg-type]
    both.session.transport._client._transport = httpx.MockTransport(master)
    return both


@pytest.fixture(params=MODES)
def api(
    request: pytest.FixtureRequest, master: FakeMaster, environ: dict[str, str]
) -> Iterator[Api]:
    both = _both(request.param, master, environ, user=None, password=None, token="t0ken")
    yield both
    both.close()


MASTER_JSON = {
    "version": "0.38.1", "masterId": "m-1", "clusterId": "c-1", "clusterName": "lab",
    "telemetryEnabled": False,
    "ssoProviders": [{"name": "okta", "ssoUrl": "https://sso", "type": "OIDC",
                      "alwaysRedirect": True}],
    "externalLoginUri": "", "externalLogoutUri": "", "branding": "determined",
    "rbacEnabled": False, "product": "PRODUCT_UNSPECIFIED", "featureSwitches": ["x"],
    "userManagementEnabled": True, "strictJobQueueControl": False,
    "clusterMessage": {"message": "maintenance", "startTime": "2026-01-01T00:00:00Z",
                       "createdTime": "2025-12-31T00:00:00Z"},
    "hasCustomLogo": False,
}  # fmt: skip


# --- master info and config -------------------------------------------------------------------
def test_master_info_reads_every_field(api: Api, master: FakeMaster) -> None:
    master.reply("GET", "/api/v1/master", MASTER_JSON)
    info = api(api.session.master_info())
    assert isinstance(info, MasterInfo)
    assert (info.version, info.master_id, info.cluster_id, info.cluster_name) == (
        "0.38.1", "m-1", "c-1", "lab",
    )  # fmt: skip
    assert info.sso_providers[0].sso_url == "https://sso" and info.sso_providers[0].always_redirect
    assert info.feature_switches == ("x",) and info.user_management_enabled
    assert info.branding == "determined" and info.product == "PRODUCT_UNSPECIFIED"
    message = info.cluster_message
    assert isinstance(message, ClusterMessage) and message.message == "maintenance"
    assert message.start == datetime(2026, 1, 1, tzinfo=UTC) and message.end is None


def test_master_info_without_a_cluster_message(api: Api, master: FakeMaster) -> None:
    master.reply("GET", "/api/v1/master", {k: v for k, v in MASTER_JSON.items()
                                           if k != "clusterMessage"})  # fmt: skip
    assert api(api.session.master_info()).cluster_message is None


def test_master_config_is_the_json_object(api: Api, master: FakeMaster) -> None:
    config = {"port": 8080, "db": {"host": "pg", "password": "********"}, "log": {"level": "info"}}
    master.reply("GET", "/api/v1/master/config", {"config": config})
    assert api(api.session.master_config()) == config


def test_master_config_of_a_non_admin_is_forbidden(api: Api, master: FakeMaster) -> None:
    master.on("GET", "/api/v1/master/config",
              lambda _: error(403, "only admin privileged users can view the master config"))  # fmt: skip
    with pytest.raises(Forbidden, match="only admin"):
        api(api.session.master_config())


# --- master logs ------------------------------------------------------------------------------
def _log_lines(*entries: tuple[int, str, str]) -> bytes:
    return b"".join(
        json.dumps({"result": {"logEntry": {
            "id": ident, "message": text, "timestamp": "2026-01-01T00:00:0%dZ" % ident,
            "level": level,
        }}}).encode() + b"\n"
        for ident, text, level in entries
    )  # fmt: skip


def test_master_logs_stream_typed_entries(api: Api, master: FakeMaster) -> None:
    body = _log_lines((1, "started\n", "LOG_LEVEL_INFO"), (2, "oops", "LOG_LEVEL_ERROR"))
    master.on("GET", "/api/v1/master/logs", lambda _: httpx.Response(200, content=body))
    entries = api.list(api.session.master_logs(offset=-2, limit=5))
    assert [type(e) for e in entries] == [MasterLogEntry, MasterLogEntry]
    assert [(e.id, str(e), e.level) for e in entries] == [
        (1, "started", LogLevel.INFO), (2, "oops", LogLevel.ERROR),
    ]  # fmt: skip
    assert entries[1].timestamp == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
    ((query, _),) = master.sent("GET", "/api/v1/master/logs")
    assert sorted(query.split("&")) == ["limit=5", "offset=-2"]


def test_master_logs_follow_is_sent_and_a_stream_error_is_typed(
    api: Api, master: FakeMaster
) -> None:
    failure = {"grpcCode": 7, "httpCode": 403, "message": "permission denied",
               "httpStatus": "Forbidden", "details": []}  # fmt: skip
    body = _log_lines((7, "a", "LOG_LEVEL_INFO")) + json.dumps({"error": failure}).encode()
    master.on("GET", "/api/v1/master/logs", lambda _: httpx.Response(200, content=body))
    with pytest.raises(Forbidden, match="permission denied"):
        api.list(api.session.master_logs(follow=True))
    ((query, _),) = master.sent("GET", "/api/v1/master/logs")
    assert query == "follow=true"


def test_a_followed_streams_limit_is_applied_here(api: Api, master: FakeMaster) -> None:
    # The master refuses limit with follow ("Limit cannot be specified when following").
    body = _log_lines(
        (1, "a", "LOG_LEVEL_INFO"), (2, "b", "LOG_LEVEL_INFO"), (3, "c", "LOG_LEVEL_INFO")
    )
    master.on("GET", "/api/v1/master/logs", lambda _: httpx.Response(200, content=body))
    entries = api.list(api.session.master_logs(follow=True, limit=2))
    assert [e.id for e in entries] == [1, 2]
    ((query, _),) = master.sent("GET", "/api/v1/master/logs")
    assert query == "follow=true"


def test_master_logs_bad_arguments_are_refused_unsent(api: Api, master: FakeMaster) -> None:
    with pytest.raises(QueryError, match="limit"):
        api.session.master_logs(limit=-1)
    with pytest.raises(QueryError, match="offset"):
        api.session.master_logs(offset=2**31)
    with pytest.raises(InvalidType, match="follow"):
        api.session.master_logs(follow="yes")
    assert api.list(api.session.master_logs(limit=0)) == []  # 0 would mean "all" to the master
    assert master.requests == []


# --- the cluster message ----------------------------------------------------------------------
def test_cluster_message_get_set_clear(api: Api, master: FakeMaster) -> None:
    master.reply("GET", MESSAGE, {})
    assert api(api.session.cluster_message()) is None
    master.reply("GET", MESSAGE, {"clusterMessage": {
        "message": "down at 5", "startTime": "2026-01-01T00:00:00Z",
        "endTime": "2026-01-02T00:00:00Z", "createdTime": "2025-12-31T00:00:00Z",
    }})  # fmt: skip
    message = api(api.session.cluster_message())
    assert message.message == "down at 5" and message.end == datetime(2026, 1, 2, tzinfo=UTC)
    master.reply("PUT", MESSAGE, {})
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert (
        api(api.session.set_cluster_message("hi", start=start, end=start + timedelta(hours=1)))
        is None
    )
    api(api.session.set_cluster_message("hi", start=start, duration=timedelta(minutes=90)))
    api(api.session.set_cluster_message("hi", start=start, duration="2h45m"))
    api(api.session.set_cluster_message("forever"))
    master.reply("DELETE", MESSAGE, {})
    api(api.session.clear_cluster_message())
    bodies = [body for _, body in master.sent("PUT", MESSAGE)]
    assert bodies[0] == {"message": "hi", "startTime": "2026-03-01T12:00:00Z",
                         "endTime": "2026-03-01T13:00:00Z"}  # fmt: skip
    assert bodies[1] == {"message": "hi", "startTime": "2026-03-01T12:00:00Z",
                         "duration": "5400000000us"}  # fmt: skip
    assert bodies[2]["duration"] == "2h45m"
    assert set(bodies[3]) == {"message", "startTime"}  # start: now (the master requires one)
    sent_start = datetime.fromisoformat(bodies[3]["startTime"].replace("Z", "+00:00"))
    assert abs(sent_start - datetime.now(UTC)) < timedelta(minutes=5)
    assert len(master.sent("DELETE", MESSAGE)) == 1


def test_cluster_message_bad_input_is_refused_unsent(api: Api, master: FakeMaster) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(InvalidValue, match="either end or duration"):
        api(api.session.set_cluster_message("x", end=start, duration="1h"))
    with pytest.raises(InvalidValue, match="before start"):
        api(api.session.set_cluster_message("x", start=start, end=start - timedelta(days=1)))
    with pytest.raises(InvalidValue, match="negative"):
        api(api.session.set_cluster_message("x", duration=timedelta(seconds=-1)))
    with pytest.raises(InvalidValue, match="positive Go duration"):
        api(api.session.set_cluster_message("x", duration="-5m"))
    with pytest.raises(InvalidType, match="message must be a str"):
        api(api.session.set_cluster_message(42))
    with pytest.raises(InvalidType, match="start must be a datetime"):
        api(api.session.set_cluster_message("x", start="tomorrow"))
    with pytest.raises(InvalidValue, match="NUL"):
        api(api.session.set_cluster_message("a\x00b"))
    with pytest.raises(InvalidValue, match="at most 250 characters, not 251"):
        api(api.session.set_cluster_message("é" * 251))  # characters, as Go counts runes
    assert master.requests == []


def test_the_masters_refusal_of_a_duration_is_a_typed_error(api: Api, master: FakeMaster) -> None:
    master.on("PUT", MESSAGE, lambda _: error(
        400, "Duration must be a Go-formatted duration string with a positive value"))  # fmt: skip
    from detorm.errors import BadRequest

    with pytest.raises(BadRequest, match="Go-formatted duration"):
        api(api.session.set_cluster_message("x", duration="2w"))


# --- logout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_logout_ends_the_session_and_drops_only_its_cached_token(
    mode: str, master: FakeMaster, environ: dict[str, str]
) -> None:
    tokens = iter(["tok-1", "tok-2"])
    master.on("POST", "/api/v1/auth/login",
              lambda _: httpx.Response(200, json={"token": next(tokens), "user": {}}))  # fmt: skip
    master.reply("POST", "/api/v1/auth/logout", {})
    store = TokenStore(config_dir(environ, None))
    with _both(mode, master, environ, user="alice", password="pw") as api:
        master.reply("GET", "/api/v1/me", {"user": {"id": 2, "username": "alice"}})
        api(api.session.whoami())
        assert store.token_for(MASTER, "alice") == "tok-1"
        api(api.session.logout())
        assert store.token_for(MASTER, "alice") is None
        ((_, body),) = master.sent("POST", "/api/v1/auth/logout")
        assert body == {}
        logout_auth = [a for m, p, _, _, a in master.requests if p == "/api/v1/auth/logout"]
        assert logout_auth == ["Bearer tok-1"]
        # The master no longer accepts tok-1: the next request logs in again with the password.
        master.on("GET", "/api/v1/me", lambda r: (
            error(401, "invalid credentials") if r.headers["authorization"] == "Bearer tok-1"
            else httpx.Response(200, json={"user": {"id": 2, "username": "alice"}})
        ))  # fmt: skip
        assert api(api.session.whoami()).username == "alice"
        assert store.token_for(MASTER, "alice") == "tok-2"


@pytest.mark.parametrize("mode", MODES)
def test_logout_leaves_another_cached_token_and_a_tokenless_session_stays_out(
    mode: str, master: FakeMaster, environ: dict[str, str]
) -> None:
    store = TokenStore(config_dir(environ, None))
    store.store(MASTER, "bob", "cli-token", make_active=True)  # det user login, elsewhere
    master.reply("POST", "/api/v1/auth/logout", {})
    master.reply("GET", "/api/v1/me", {"user": {"id": 3, "username": "bob"}})
    with _both(mode, master, environ, user=None, password=None, token="arg-token") as api:
        api(api.session.whoami())
        api(api.session.logout())
        assert store.token_for(MASTER, "bob") == "cli-token"  # not this session's token
        master.on("GET", "/api/v1/me", lambda _: error(401, "invalid credentials"))
        with pytest.raises(Unauthenticated):
            api(api.session.whoami())


def test_logout_of_an_expired_token_is_not_an_error(api: Api, master: FakeMaster) -> None:
    master.on("POST", "/api/v1/auth/logout", lambda _: error(401, "invalid credentials"))
    assert api(api.session.logout()) is None
    assert len(master.sent("POST", "/api/v1/auth/logout")) == 1  # no login to log out
