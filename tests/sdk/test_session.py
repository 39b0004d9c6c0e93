"""Sessions: connecting, credentials, the default session, the token cache, errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import detorm
from detorm import Experiment, User
from detorm.errors import ConfigurationError, NotFound, TransportError, Unauthenticated
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster


def test_importing_sends_nothing_and_connect_logs_in_once(
    cluster: Cluster, environ: dict[str, str]
) -> None:
    with detorm.Session(cluster.url, user="determined", password="", environ=environ) as session:
        assert session.requests_sent == 1  # the login
        assert session.username == "determined"


def test_password_user_logs_in_and_caches_the_token(
    cluster: Cluster, environ: dict[str, str]
) -> None:
    with detorm.Session(cluster.url, user="alice", password="secret", environ=environ) as session:
        assert session.whoami().username == "alice"
    auth = Path(environ["XDG_CONFIG_HOME"]) / "determined" / "auth.json"
    stored = json.loads(auth.read_text())
    assert stored["version"] == 2
    assert set(stored["masters"][cluster.url]["tokens"]) == {"alice"}
    assert stat.S_IMODE(os.stat(auth).st_mode) == 0o600
    # The next session for alice reuses the cached token: no login request.
    with detorm.Session(cluster.url, user="alice", environ=environ) as again:
        assert again.requests_sent == 0
        assert again.whoami().username == "alice"


def test_wrong_password_is_unauthenticated_without_leaking_it(
    cluster: Cluster, environ: dict[str, str]
) -> None:
    with pytest.raises(Unauthenticated) as info:
        detorm.Session(cluster.url, user="alice", password="hunter2", environ=environ)
    message = str(info.value)
    assert "invalid credentials" in message and "alice" in message
    assert "hunter2" not in message


def test_expired_cached_token_falls_back_to_login(
    cluster: Cluster, environ: dict[str, str]
) -> None:
    config = Path(environ["XDG_CONFIG_HOME"]) / "determined"
    config.mkdir(parents=True)
    (config / "auth.json").write_text(json.dumps(
        {"version": 2, "masters": {cluster.url: {"active_user": "determined", "tokens": {"determined": "stale"}}}}
    ))  # fmt: skip
    with detorm.Session(cluster.url, environ=environ) as session:
        assert session.requests_sent == 0
        assert [u.username for u in User.query(session).order_by("id")] == [
            "admin",
            "determined",
            "alice",
        ]
        assert session.requests_sent == 3  # 401 with the stale token, the login, the retry
    tokens = json.loads((config / "auth.json").read_text())["masters"][cluster.url]["tokens"]
    assert tokens["determined"] != "stale"


def test_environment_credentials(cluster: Cluster, environ: dict[str, str]) -> None:
    env = dict(environ, DET_MASTER=cluster.url, DET_USER="alice", DET_PASS="secret")
    with detorm.Session(environ=env) as session:
        assert session.master == cluster.url
        assert session.username == "alice"


def test_bad_master_url_is_a_configuration_error(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="query"):
        detorm.Session("http://host:8080/?x=1", environ=environ)


def test_unreachable_master_is_a_transport_error(environ: dict[str, str]) -> None:
    with pytest.raises(TransportError):
        detorm.Session(
            "http://127.0.0.1:9", user="determined", password="", environ=environ,
            retry=detorm.RetryPolicy(retries=1, backoff=0.01),
        )  # fmt: skip


def test_connect_sets_the_default_session(
    cluster: Cluster, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    detorm.set_default_session(None)
    try:
        first = detorm.connect(cluster.url, user="determined", password="")
        second = detorm.connect(cluster.url, user="alice", password="secret")
        assert detorm.default_session() is first
        assert Experiment.query().count() == len(cluster.experiments)
        second.close()
        first.close()
        assert detorm._api._sync._defaults.current is None  # closing the default forgets it
    finally:
        detorm.set_default_session(None)


def test_get_missing_object_is_not_found(session: detorm.Session) -> None:
    with pytest.raises(NotFound) as info:
        session.get(Experiment, 999999)
    assert info.value.status == 404
    assert "GET /api/v1/experiments/999999" in str(info.value)


# --- the same rules through either API (the async session logs in on its first request) -----------
@pytest.mark.parametrize("mode", MODES)
def test_credentials_and_the_token_cache_in_both_apis(
    mode: Mode, cluster: Cluster, environ: dict[str, str]
) -> None:
    api = Api(mode, cluster.url, environ, user="alice", password="secret")
    try:
        assert api(api.session.whoami()).username == "alice"
        assert api.session.requests_sent == 2  # the login, then GET /api/v1/me
    finally:
        api.close()
    again = Api(mode, cluster.url, environ, user="alice", password=None)
    try:
        assert api_whoami(again) == "alice"
        assert again.session.requests_sent == 1  # the cached token: no login
    finally:
        again.close()


def api_whoami(api: Api) -> str:
    return str(api(api.session.whoami()).username)


@pytest.mark.parametrize("mode", MODES)
def test_wrong_password_and_unreachable_master_in_both_apis(
    mode: Mode, cluster: Cluster, environ: dict[str, str]
) -> None:
    def connect_and_ask(url: str, **options: object) -> None:
        api = Api(mode, url, environ, **options)  # the sync API logs in here
        try:
            api(api.session.whoami())  # the async API logs in here
        finally:
            api.close()

    with pytest.raises(Unauthenticated) as info:
        connect_and_ask(cluster.url, user="alice", password="hunter2")
    assert "invalid credentials" in str(info.value) and "hunter2" not in str(info.value)
    with pytest.raises(TransportError):
        connect_and_ask("http://127.0.0.1:9", retry=detorm.RetryPolicy(retries=1, backoff=0.01))


@pytest.mark.parametrize("mode", MODES)
def test_expired_cached_token_falls_back_to_login_in_both_apis(
    mode: Mode, cluster: Cluster, environ: dict[str, str]
) -> None:
    config = Path(environ["XDG_CONFIG_HOME"]) / "determined"
    config.mkdir(parents=True)
    (config / "auth.json").write_text(json.dumps(
        {"version": 2, "masters": {cluster.url: {"active_user": "determined", "tokens": {"determined": "stale"}}}}
    ))  # fmt: skip
    api = Api(mode, cluster.url, environ, user=None, password=None)
    try:
        users = api.list(api.User.query(api.session).order_by("id"))
        assert [u.username for u in users] == ["admin", "determined", "alice"]
        assert api.session.requests_sent == 3  # 401 with the stale token, the login, the retry
        with pytest.raises(NotFound, match="GET /api/v1/experiments/999999"):
            api(api.session.get(api.Experiment, 999999))
    finally:
        api.close()
