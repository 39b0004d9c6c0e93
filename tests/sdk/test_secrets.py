"""The token, the password and its hash never show: not in any repr, str or pickle of anything a
user can reach from a session, its objects and its errors, nor in exception text or logs."""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import pickle
import traceback
import types
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx
import pytest

import detorm
import detorm.aio
from detorm import Experiment, Trial
from detorm._api._drivers import Transport
from detorm._io._auth import Secret, TokenStore, config_dir, salt_and_hash
from detorm._plan._call import Call, RetryPolicy
from detorm.errors import ConfigurationError, DetormError, TransportError
from detorm.local import Seeder

from .conftest import Cluster

PASSWORD = "pw-Kx81-unique"  # noqa: S105 (a test password, searched for below)
# Followed by reference, not rendered: they hold whatever their code holds (this test's own
# frame holds the password). Exception text is checked separately, traceback included.
OPAQUE = (
    types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.CodeType,
    types.FrameType, types.TracebackType, types.MethodDescriptorType, types.WrapperDescriptorType,
)  # fmt: skip


def reachable(roots: Iterable[object]) -> Iterator[object]:
    """Everything reachable from ``roots`` through references, breadth first.

    A :class:`Secret` is rendered but not entered: its value is what it guards.
    """
    seen: dict[int, object] = {}
    queue = deque(roots)
    while queue:
        obj = queue.popleft()
        if id(obj) in seen or isinstance(obj, OPAQUE):
            continue
        seen[id(obj)] = obj  # kept alive, so that ids stay unique
        yield obj
        if isinstance(obj, types.MethodType):
            queue.append(obj.__self__)
        elif not isinstance(obj, Secret):
            queue.extend(gc.get_referents(obj))


def renderings(obj: object) -> Iterator[bytes]:
    for render in (repr, str):
        try:
            yield render(obj).encode("utf-8", "backslashreplace")
        except Exception:
            pass  # some objects refuse to render (closed files...): then they show nothing
    try:
        yield pickle.dumps(obj)
    except Exception:
        pass  # not picklable: nothing leaves the process


def leaks(roots: Iterable[object], secrets: Iterable[str]) -> list[str]:
    """Each (secret, object) where a rendering of a reachable object shows the secret."""
    wanted = {secret.encode() for secret in secrets if secret}
    found = []
    for obj in reachable(roots):
        for text in renderings(obj):
            for secret in wanted:
                if secret in text:
                    found.append(f"{secret.decode()[:6]}... in {type(obj).__qualname__}")
    return found


def exception_texts(errors: Iterable[BaseException]) -> list[str]:
    return ["".join(traceback.format_exception(error)) for error in errors]


def caught(action: Any) -> BaseException:
    try:
        action()
    except DetormError as error:
        return error
    raise AssertionError("expected an error")


def use(session: detorm.Session) -> list[object]:
    """Reads, an edit, failing requests: what a user then holds (objects, queries, errors)."""
    experiments = Experiment.query(session).order_by("id").all()
    query = Trial.query(session).filter(experiment_id=experiments[0].id)
    trials = query.all()
    list(session.metrics(trials, "validation"))  # a stream
    experiments[0].description = "edited"
    experiments[0].tags.add("checked")
    changes = session.commit()
    errors = [
        caught(lambda: session.get(Experiment, 987654)),
        caught(lambda: session.get(Trial, 987654)),
    ]
    return [session, query, *experiments, *trials, *changes, *errors]


@pytest.fixture
def carol(fresh_cluster: Cluster) -> str:
    """The URL of a master where the user carol has the password PASSWORD."""
    with Seeder(fresh_cluster.master.database) as seed:
        seed.user("carol", password=PASSWORD, admin=True)
    return fresh_cluster.url


def session_by(login: str, url: str, environ: dict[str, str]) -> tuple[detorm.Session, str]:
    """A session of carol's logged in by ``login``, and its token."""
    store = TokenStore(config_dir(environ))
    if login == "password":
        session = detorm.Session(url, user="carol", password=PASSWORD, environ=environ)
        token = store.token_for(url, "carol")  # cached in auth.json, as the det CLI does
        assert token
        return session, token
    response = httpx.post(
        url + "/api/v1/auth/login",
        json={"username": "carol", "password": salt_and_hash(PASSWORD), "isHashed": True},
    )
    token = response.raise_for_status().json()["token"]
    if login == "token":
        return detorm.Session(url, token=token, environ=environ), token
    store.store(url, "carol", token, make_active=True)  # what `det user login` leaves behind
    return detorm.Session(url, environ=environ), token


@pytest.mark.parametrize("login", ["password", "token", "auth.json"])
def test_no_rendering_of_anything_reachable_shows_a_secret(
    login: str, carol: str, environ: dict[str, str]
) -> None:
    session, token = session_by(login, carol, environ)
    with session:
        held = use(session)
        secrets = [token, PASSWORD, salt_and_hash(PASSWORD)]
        assert leaks([*held, TokenStore(config_dir(environ))], secrets) == []
        errors = [obj for obj in held if isinstance(obj, BaseException)]
        assert all(secret not in text for text in exception_texts(errors) for secret in secrets)


def test_the_walk_finds_a_token_left_in_plain_sight(carol: str, environ: dict[str, str]) -> None:
    session, token = session_by("token", carol, environ)
    with session:
        experiment = Experiment.query(session).first()
        assert leaks([experiment], [token]) == []
        session.debug_note = token  # type: ignore[attr-defined]
        assert f"{token[:6]}... in str" in leaks([experiment], [token])


def test_an_unreachable_master_leaks_nothing(environ: dict[str, str]) -> None:
    with detorm.Session(
        "http://127.0.0.1:9", token="tok-unreachable-1", environ=environ,
        retry=RetryPolicy(retries=0),
    ) as session:  # fmt: skip
        error = caught(session.whoami)
        assert isinstance(error, TransportError) and not error.request_sent
        assert leaks([session, error], ["tok-unreachable-1"]) == []
        assert "tok-unreachable-1" not in exception_texts([error])[0]


def test_transport_and_session_reprs_hide_the_token(carol: str, environ: dict[str, str]) -> None:
    session, token = session_by("token", carol, environ)
    with session:
        shown = [repr(session.transport), str(vars(session)), repr(vars(session.transport))]
        assert all(token not in text for text in shown)


def test_debug_logs_show_no_secret(
    carol: str, environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("httpx", "httpcore", "detorm"):
        caplog.set_level(logging.DEBUG, logger=name)
    session, token = session_by("password", carol, environ)
    with session:
        use(session)
    assert any(record.name.startswith("httpcore") for record in caplog.records)
    text = "\n".join(logging.Formatter().format(record) for record in caplog.records)
    for secret in (token, PASSWORD, salt_and_hash(PASSWORD)):
        assert secret not in text


class _RawHTTP(httpx.BaseTransport):
    """HTTP/1.1 parsed by httpcore (which logs response headers at DEBUG level) from canned
    bytes: the real master's login answer, with no network."""

    def __init__(self, raw: bytes) -> None:
        self._pool = httpcore.ConnectionPool(network_backend=httpcore.MockBackend([raw]))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._pool.request(
            request.method, str(request.url), headers=request.headers.raw, content=request.content
        )
        return httpx.Response(answer.status, headers=answer.headers, content=answer.content)


def test_the_login_cookie_is_redacted_from_httpcore_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="httpcore")
    token = "v2.public.tok-in-cookie"
    body = b'{"token":"' + token.encode() + b'","user":{}}'
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Set-Cookie: auth=" + token.encode() + b"; Path=/\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    transport = Transport("http://master.test", http_transport=_RawHTTP(raw))
    assert transport.json(Call("POST", "/api/v1/auth/login", body={}))["token"] == token
    messages = [record.getMessage() for record in caplog.records]
    headers = [message for message in messages if "receive_response_headers.complete" in message]
    assert headers and "b'[secure]'" in headers[0]
    assert all(token not in message for message in messages)


def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it(
    environ: dict[str, str],
) -> None:
    for token in ("tok-line\nX-Injected: 1", "tok with space", "tok-é"):
        with pytest.raises(ConfigurationError, match="printable ASCII") as info:
            detorm.Session("http://127.0.0.1:9", token=token, environ=environ)
        assert token not in str(info.value) and "token argument" in str(info.value)


# --- the Secret wrapper and pickles -------------------------------------------------------------
def test_a_secret_shows_nothing_and_stays_in_the_process() -> None:
    secret = Secret("abc-123")
    assert (repr(secret), str(secret), f"{secret}") == ("Secret('***')", "***", "***")
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.deepcopy(secret)
    assert secret == Secret("abc-123") and secret != Secret("abc-124")
    assert secret != "abc-123"  # type: ignore[comparison-overlap]
    assert hash(secret) == hash(Secret("abc-123"))


def test_a_pickled_resource_keeps_its_data_and_leaves_the_session(session: detorm.Session) -> None:
    experiment = Experiment.query(session).filter(name="resnet-base").one()
    trial = experiment.trials.first()
    for obj in (experiment, trial):
        copy_ = pickle.loads(pickle.dumps(obj))
        assert type(copy_) is type(obj) and copy_.model_dump() == obj.model_dump()
        with pytest.raises(ConfigurationError, match="not attached to a session"):
            copy_.session
    restored = pickle.loads(pickle.dumps(experiment))
    restored.tags.add("local")  # a detached object records nothing
    assert "local" not in experiment.tags and session.dirty == []


@pytest.mark.parametrize("login", ["password", "token"])
def test_nothing_reachable_from_an_async_session_shows_a_secret(
    login: str, carol: str, environ: dict[str, str]
) -> None:
    # The async session logs in on its first request: the token is made inside the event loop.
    _, token = session_by("token", carol, environ)  # a token of carol's for the token login

    async def use_async() -> tuple[list[object], str]:
        options: dict[str, Any] = (
            {"user": "carol", "password": PASSWORD} if login == "password" else {"token": token}
        )
        session = detorm.aio.AsyncSession(carol, environ=environ, **options)
        experiments = await detorm.aio.Experiment.query(session).order_by("id").all()
        query = detorm.aio.Trial.query(session).filter(experiment_id=experiments[0].id)
        trials = await query.all()
        reports = [r async for r in session.metrics(trials, "validation")]
        experiments[0].tags.add("checked")
        changes = await session.commit()
        errors: list[object] = []
        try:
            await session.get(detorm.aio.Experiment, 987654)
        except DetormError as error:
            errors.append(error)
        used = (
            TokenStore(config_dir(environ)).token_for(carol, "carol")
            if login == "password"
            else token
        )
        assert used
        held = [session, query, *experiments, *trials, *reports[:3], *changes, *errors]
        found = leaks(held, [used, PASSWORD, salt_and_hash(PASSWORD)])
        session.transport.debug_note = used  # type: ignore[attr-defined]  # the walk sees it
        assert leaks([experiments[0]], [used]) != []
        await session.close()
        return found, used

    found, _ = asyncio.run(use_async())
    assert found == []
