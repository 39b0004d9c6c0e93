"""Connecting: malformed master URLs refused before anything is sent, connection errors that
name the master and where its URL came from, the default-session rule, and a LocalMaster that
never touches the user's det CLI config."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from determined.common.api._util import canonicalize_master_url as official_canonical

import detorm
import detorm.aio
from detorm._io import _auth
from detorm.errors import ConfigurationError, TransportError
from detorm.local import LocalMaster
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: what is refused must be refused before sending."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def no_default() -> Iterator[None]:
    """No default session of either API before or after the test."""
    detorm.set_default_session(None)
    detorm.aio.set_default_session(None)
    yield
    detorm.set_default_session(None)
    detorm.aio.set_default_session(None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- malformed master URLs ------------------------------------------------------------------------
MALFORMED = {
    "htp:/oops": "its scheme 'htp' is not http or https",
    "http:/oops": "http: must be followed by two slashes",
    "https:/host:8443": "https: must be followed by two slashes",
    "ftp://host:21": "its scheme 'ftp' is not http or https",
    "HTTP://host:8080": "schemes are lowercase: http://",
    "http://": "it has no host name",
    "http://:8080": "it has no host name",
    "": "it has no host name",
    "host:99999": "its port is not a number",
    "host:eighty": "its port is not a number",
    "http://host:8080/?token=abc": "it must not contain a query",
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("url", "problem"), MALFORMED.items())
def test_a_malformed_master_url_is_refused_before_anything_is_sent(
    mode: Mode, url: str, problem: str, environ: dict[str, str], no_network: None
) -> None:
    open_session = detorm.connect if mode == "sync" else detorm.aio.connect
    with pytest.raises(ConfigurationError) as info:
        open_session(url)
    message = str(info.value)
    assert message.startswith("master: invalid master URL") and problem in message
    if url:
        shown = url.split("?")[0]  # a query is masked: it may carry a secret
        assert shown.rstrip("/") in message


def test_a_password_in_a_malformed_url_is_never_shown(environ: dict[str, str]) -> None:
    for url in ("ftp://alice:hunter2@host", "htp:/alice:hunter2@host", "http://a:hunter2@host"):
        with pytest.raises(ConfigurationError) as info:
            detorm.Session(url, environ=environ)
        assert "hunter2" not in str(info.value) and "***@host" in str(info.value)
    for url in ("ftp://host/?token=hunter2", "htp:/host#hunter2"):
        with pytest.raises(ConfigurationError) as info:
            detorm.Session(url, environ=environ)
        assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_a_malformed_det_master_is_named(environ: dict[str, str], no_network: None) -> None:
    with pytest.raises(ConfigurationError, match=r"^DET_MASTER: invalid master URL 'htp:/oops'"):
        detorm.Session(environ={**environ, "DET_MASTER": "htp:/oops"})
    with pytest.raises(ConfigurationError, match=r"^DET_MASTER_ADDR: .* 'ftp' is not http"):
        detorm.Session(environ={**environ, "DET_MASTER_ADDR": "ftp://host"})


ACCEPTED = [
    "localhost", "localhost:8080", "127.0.0.1:9000", "master.example.com",
    "http://master:8080", "https://master", "https://master/prefix/", "http://[::1]:8080",
    "[::1]:8080", "host:8080/path",
]  # fmt: skip


@pytest.mark.parametrize("url", ACCEPTED)
def test_what_the_det_cli_accepts_keeps_working(url: str) -> None:
    _auth.check_master_url(url)  # no error
    origin = _auth.master_origin(url, {})
    assert origin.url == official_canonical(url)
    assert origin.source == "the master argument"


def test_the_origin_of_the_master_url() -> None:
    assert _auth.master_origin(None, {"DET_MASTER": "m:1"}).describe() == (
        "http://m:1 (from DET_MASTER)"
    )
    assert _auth.master_origin(None, {"DET_MASTER_ADDR": "m:2"}).source == "DET_MASTER_ADDR"
    assert _auth.master_origin(None, {"DET_MASTER": ""}).describe() == (
        "http://127.0.0.1:8080 (from the default: neither a master argument nor DET_MASTER was"
        " given)"
    )


# --- an unreachable master: named, with its origin and the way to start a local one ---------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("through", ["argument", "DET_MASTER"])
def test_an_unreachable_master_is_named_with_its_origin(
    mode: Mode, through: str, environ: dict[str, str]
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    env = {**environ, "DET_MASTER": url} if through == "DET_MASTER" else environ
    retry = detorm.RetryPolicy(retries=0)
    with pytest.raises(TransportError) as info:
        api = Api(mode, url if through == "argument" else None, env, retry=retry)  # type: ignore[arg-type]
        try:
            api(api.session.whoami())  # the async session logs in at its first request
        finally:
            api.close()
    message = str(info.value)
    origin = "the master argument" if through == "argument" else "DET_MASTER"
    assert f"Could not connect to the master at {url} (from {origin})" in message
    assert "`detorm serve`" in message and "`python -m detorm serve`" in message
    assert info.value.request_sent is False


def test_an_error_answer_gets_no_connection_hint(cluster: Cluster, environ: dict[str, str]) -> None:
    with pytest.raises(detorm.errors.Unauthenticated) as info:
        detorm.Session(cluster.url, user="alice", password="wrong", environ=environ)
    assert "detorm serve" not in str(info.value)


# --- the default session --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_the_first_session_opened_becomes_the_default(
    mode: Mode, cluster: Cluster, environ: dict[str, str], no_default: None
) -> None:
    first = Api(mode, cluster.url, environ)
    second = Api(mode, cluster.url, environ, user="alice", password="secret")
    try:
        assert first.mod.default_session() is first.session
        query = first.mod.Experiment.query()
        assert query.session is first.session
        assert first(query.count()) == len(cluster.experiments)
    finally:
        second.close()
        first.close()
    facade = detorm._api._sync if mode == "sync" else detorm._api._aio
    assert facade._defaults.current is None  # closing the default forgets it


@pytest.mark.parametrize("mode", MODES)
def test_no_default_while_sessions_are_open_is_an_error_naming_them(
    mode: Mode, cluster: Cluster, environ: dict[str, str], no_default: None
) -> None:
    first = Api(mode, cluster.url, environ)
    second = Api(mode, cluster.url, environ, user="alice", password="secret")
    try:
        first.close()  # the default: forgotten, and `second` is still open
        api_name = "detorm" if mode == "sync" else "detorm.aio"
        with pytest.raises(ConfigurationError) as info:
            second.mod.Experiment.query().session  # noqa: B018 (the lookup is the test)
        message = str(info.value)
        assert f"no default {api_name} session: 1 session is open (to '{cluster.url}')" in message
        assert f"{api_name}.set_default_session(session)" in message
        assert "The first session opened becomes the default" in message
        second.mod.set_default_session(second.session)
        assert second(second.mod.Experiment.query().count()) == len(cluster.experiments)
    finally:
        second.close()


def test_with_no_session_open_the_default_connects_from_the_environment(
    cluster: Cluster, environ: dict[str, str], no_default: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**environ, "DET_MASTER": cluster.url, "DET_USER": "alice",
                        "DET_PASS": "secret"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    session = detorm.default_session()
    try:
        assert session.master == cluster.url and session.username == "alice"
        assert detorm.default_session() is session
    finally:
        session.close()


def test_a_session_that_fails_to_open_is_not_the_default(
    environ: dict[str, str], no_default: None
) -> None:
    with pytest.raises(TransportError):
        detorm.Session(
            f"http://127.0.0.1:{_free_port()}", user="determined", password="", environ=environ,
            retry=detorm.RetryPolicy(retries=0),
        )  # fmt: skip
    assert detorm._api._sync._defaults.current is None


def test_the_sync_and_async_defaults_are_separate(
    cluster: Cluster, environ: dict[str, str], no_default: None
) -> None:
    async def main() -> None:
        async with detorm.aio.AsyncSession(cluster.url, environ=environ) as aio_session:
            with detorm.Session(cluster.url, user="determined", password="", environ=environ) as s:
                assert detorm.default_session() is s
                assert detorm.aio.default_session() is aio_session

    asyncio.run(main())


# --- a LocalMaster never touches ~/.config/determined ---------------------------------------------
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's HOME is a temporary directory: its det CLI config is the "real" one."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("XDG_CONFIG_HOME", "DET_DEBUG_CONFIG_PATH", "DET_USER", "DET_PASS",
                 "DET_USER_TOKEN", "DET_MASTER", "DETORM_CACHE_DIR"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert _auth.config_dir(os.environ) == tmp_path / ".config" / "determined"
    return tmp_path


@pytest.mark.parametrize("process", [False, True])
def test_a_local_master_never_writes_the_real_token_cache(
    home: Path, process: bool, no_default: None
) -> None:
    with LocalMaster(process=process) as master:
        with master.session() as session:
            assert session.whoami().username == "determined"
        # The README's form: a plain Session to the master's URL is kept off the file too.
        with detorm.Session(master.url, user="determined", password="") as plain:
            plain.logout()
        with master.session("admin") as admin:
            assert admin.whoami().username == "admin"

        async def main() -> str:
            async with master.aio_session() as aio_session:
                return (await aio_session.whoami()).username

        assert asyncio.run(main()) == "determined"
    assert not (home / ".config").exists()


def test_a_local_master_never_reads_the_real_token_cache(home: Path, no_default: None) -> None:
    with LocalMaster(process=False) as master:
        # A det CLI login cached for this address (a master that ran here before) would be used
        # as the active user's token; it is not read: the session logs in as "determined".
        config = home / ".config" / "determined"
        config.mkdir(parents=True)
        stored = {"version": 2, "masters": {master.url: {
            "active_user": "alice", "tokens": {"alice": "stale-token-from-elsewhere"}}}}  # fmt: skip
        (config / "auth.json").write_text(json.dumps(stored))
        before = (config / "auth.json").stat()
        with detorm.Session(master.url) as session:
            assert session.username == "determined"
            assert session.whoami().username == "determined"
        after = (config / "auth.json").stat()
        assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
        assert sorted(p.name for p in config.iterdir()) == ["auth.json"]  # no lock file either


def test_sessions_to_a_local_master_share_its_tokens_in_memory(
    home: Path, no_default: None
) -> None:
    with LocalMaster(process=False) as master:
        with master.session() as first:
            first.whoami()
        # A user alone takes that user's cached token: here the in-memory one, no new login.
        with detorm.Session(master.url, user="determined") as again:
            assert again.requests_sent == 0
            assert again.whoami().username == "determined" and again.requests_sent == 1
        url = master.url
    assert not _auth.is_ephemeral_master(url)  # stopped: the address is an ordinary one again


def test_a_test_config_directory_still_gets_the_file(
    home: Path, tmp_path: Path, no_default: None
) -> None:
    # An environ naming another config directory is a choice: the token cache itself is tested.
    environ = {"HOME": str(tmp_path / "elsewhere")}
    with (
        LocalMaster(process=False) as master,
        detorm.Session(master.url, user="determined", password="", environ=environ),
    ):
        pass
    assert (tmp_path / "elsewhere" / ".config" / "determined" / "auth.json").exists()
    assert not (home / ".config").exists()


def test_an_environ_without_home_keeps_a_local_master_off_the_accounts_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_default: None
) -> None:
    # The process's det config is elsewhere (DET_DEBUG_CONFIG_PATH, as under this suite); an
    # environ without HOME still names the account's own (~ from the password database).
    monkeypatch.setenv("DET_DEBUG_CONFIG_PATH", str(tmp_path / "debug"))
    monkeypatch.setattr(_auth, "_password_database_home", lambda: tmp_path / "account")
    with (
        LocalMaster(process=False) as master,
        detorm.Session(master.url, user="determined", password="", environ={}) as session,
    ):
        assert session.whoami().username == "determined"
    assert not (tmp_path / "account").exists() and not (tmp_path / "debug").exists()


def test_local_master_sessions_need_a_started_master() -> None:
    with pytest.raises(RuntimeError, match="start the LocalMaster"):
        LocalMaster(process=False).session()


def test_a_memory_token_store_refuses_empty_values() -> None:
    store = _auth.MemoryTokenStore()
    with pytest.raises(ValueError, match="non-empty"):
        store.store("http://h:1", "", "t", make_active=False)
    store.store("h:1", "u", "t", make_active=True)
    assert store.token_for("http://h:1", "u") == "t" and store.active_user("http://h:1") == "u"
    store.drop("http://h:1", "u")
    assert store.token_for("http://h:1", "u") is None
    assert repr(store) == "MemoryTokenStore()"  # no token in its repr
