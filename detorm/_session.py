"""Sessions: the connection to one master, its identity map, and its unit of work.

``detorm.connect()`` opens a session and makes it the default one (used by the class-level
``Experiment.query()`` and friends) when there is none yet; ``detorm.Session(...)`` opens an
explicit one. A session is a context manager that closes its connection pool.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import httpx

from . import _auth
from . import _wire as w
from ._auth import Secret
from ._cache import DiskCache, default_cache_dir
from ._edits import Change, FlushPlan
from ._identity import IdentityMap
from ._inputs import INT32_MAX, check_int, check_seconds, require
from ._loading import check_key, check_resource, refetch, single_fetch, trial_values
from ._metrics import MetricsStream, TrialSummary, read_summaries
from ._query import (
    CheckpointQuery,
    ExperimentQuery,
    ModelQuery,
    ModelVersionQuery,
    ProjectQuery,
    Query,
    TrialQuery,
    UserQuery,
    WorkspaceQuery,
)
from ._resources._base import Resource, TagSet, TrackedDict, construct
from ._resources._models import (
    Checkpoint,
    Experiment,
    Model,
    ModelVersion,
    Project,
    Trial,
    User,
    Workspace,
)
from ._ops import Op, blocking, send
from ._transport import NO_RETRY, Call, RetryPolicy, Transport
from ._unit_of_work import UnitOfWork
from .errors import ConfigurationError, Forbidden, NotFound, Unauthenticated

__all__ = ["Session", "connect", "default_session"]

R = TypeVar("R", bound=Resource)

_default: Session | None = None
_default_lock = threading.Lock()


class Session:
    """A connection to one Determined master.

    Credentials follow the det CLI: explicit arguments, then ``DET_USER``/``DET_PASS``, then
    ``DET_USER``/``DET_USER_TOKEN``, then the token cached in the det CLI's ``auth.json``, else
    the user ``determined`` with an empty password. Passwords are sent salted and hashed, as
    the official client does, and never stored; no repr, error message, log or pickle of the
    session or of anything reachable from it shows the token or the password hash.

    ``timeout`` (seconds) bounds each call as a whole: every attempt, backoff and
    ``Retry-After`` wait included (``retry`` says which failures are retried; its ``deadline``
    replaces ``timeout`` as the budget when set). When it is spent, the last error is raised.
    For a stream (logs, metrics, downloads) the budget covers getting the response; each read
    of the body then waits at most ``timeout``, however long the stream runs.
    """

    def __init__(
        self,
        master: str | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        verify: bool | str = True,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        cache: bool | str | os.PathLike[str] = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        _check_options(
            master=master, user=user, password=password, token=token, verify=verify,
            timeout=timeout, retry=retry, max_connections=max_connections, cache=cache,
            environ=environ,
        )  # fmt: skip
        env = os.environ if environ is None else environ
        try:
            # An explicit "" is a malformed URL, not "use the default" (canonicalize refuses it).
            self.master = (
                _auth.canonicalize_master_url(master)
                if master is not None
                else _auth.default_master(env)
            )
            httpx.URL(self.master)  # as the connection pool will parse it (control characters)
        except ValueError as err:
            raise ConfigurationError(str(err)) from None
        except httpx.InvalidURL as err:
            raise ConfigurationError(f"invalid master URL: {err}") from None
        self._store = _auth.TokenStore(_auth.config_dir(env, None))
        try:
            self._credentials = _auth.resolve_credentials(
                master=self.master, user=user, password=password, token=token,
                environ=env, store=self._store,
            )  # fmt: skip
        except ValueError as err:
            raise ConfigurationError(str(err)) from None
        self._transport = Transport(
            self.master, verify=verify, timeout=timeout, retry=retry or RetryPolicy(),
            max_connections=max_connections,
        )  # fmt: skip
        self._transport.on_unauthenticated = self._login_again
        self.identity = IdentityMap()
        self._uow = UnitOfWork(self)
        self._collections: dict[tuple[str, Any, str], list[Resource]] = {}
        self._lock = threading.RLock()
        self._username = self._credentials.username
        if self._credentials.token is not None:
            self._transport.token = self._credentials.token
        else:
            self._login()
        self._cache_enabled = cache is not False
        # Only a bare token argument leaves the user unknown: its cache is named by its hash.
        secret = self._credentials.token
        who = self._username or "token-" + (secret.fingerprint()[:12] if secret else "")
        directory = None if isinstance(cache, bool) else Path(cache)
        self.cache = DiskCache(directory or default_cache_dir(env), namespace=(self.master, who))

    # --- authentication -------------------------------------------------------------------
    @property
    def username(self) -> str | None:
        """The user this session acts as (None for a bare token until ``whoami()``)."""
        return self._username

    def whoami(self) -> User:
        """The current user (``GET /api/v1/me``)."""
        response = w.UserResponse.model_validate_json(
            self._transport.send(Call("GET", "/api/v1/me")).content
        )
        assert response.user is not None
        user = self.merge(User, User.values_from_wire(response.user))
        self._username = user.username
        return user

    def _login(self) -> None:
        self._transport.run(self._log_in())

    def _log_in(self) -> Op[None]:
        credentials = self._credentials
        assert credentials.username is not None and credentials.password_hash is not None
        body = w.LoginRequest(
            username=credentials.username,
            password=credentials.password_hash.reveal(),
            is_hashed=True,
        ).model_dump_wire()
        call = Call("POST", "/api/v1/auth/login", body=body)
        try:
            response = yield from send(call, retry=NO_RETRY, reauthenticate=False)
        except (Unauthenticated, Forbidden) as err:
            raise type(err)(
                method="POST", path=call.path, status=err.status, reason=err.reason,
                message=f"could not log in as {credentials.describe()}: {err.message}",
            ) from None  # fmt: skip
        login = w.LoginResponse.model_validate_json(response.content)
        self._transport.token = Secret(login.token)
        self._username = credentials.username
        yield from blocking(self._remember_token, credentials.username, login.token)

    def _remember_token(self, username: str, token: str) -> None:
        try:
            self._store.store(self.master, username, token, make_active=False)
        except OSError:
            pass  # an unwritable config directory only costs a login next time

    def _forget_token(self, username: str) -> None:
        try:
            self._store.drop(self.master, username)
        except OSError:
            pass

    def _login_again(self) -> Op[bool]:
        # A token from auth.json or the environment may have expired: drop it from the cache
        # and log in with a password when one is available (the default user has "").
        credentials = self._credentials
        if credentials.from_cache and credentials.username is not None:
            yield from blocking(self._forget_token, credentials.username)
        if credentials.password_hash is None and not credentials.may_fall_back:
            return False
        self._credentials = credentials.with_password_fallback()
        yield from self._log_in()
        return True

    # --- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool and the disk cache (and stop being the default session)."""
        global _default
        self._transport.close()
        self.cache.close()
        with _default_lock:
            if _default is self:
                _default = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def requests_sent(self) -> int:
        """HTTP requests this session has sent (retries included)."""
        return self._transport.requests_sent

    @property
    def retries(self) -> int:
        """Requests the retry policy sent again after a failed attempt (of all calls)."""
        return self._transport.retries

    @property
    def transport(self) -> Transport:
        return self._transport

    def __repr__(self) -> str:
        return f"<detorm.Session {self.master} as {self._username or 'the token user'!r}>"

    # --- queries ----------------------------------------------------------------------------
    @overload
    def query(self, resource: type[Experiment]) -> ExperimentQuery: ...
    @overload
    def query(self, resource: type[Trial]) -> TrialQuery: ...
    @overload
    def query(self, resource: type[Checkpoint]) -> CheckpointQuery: ...
    @overload
    def query(self, resource: type[Workspace]) -> WorkspaceQuery: ...
    @overload
    def query(self, resource: type[Project]) -> ProjectQuery: ...
    @overload
    def query(self, resource: type[Model]) -> ModelQuery: ...
    @overload
    def query(self, resource: type[ModelVersion]) -> ModelVersionQuery: ...
    @overload
    def query(self, resource: type[User]) -> UserQuery: ...

    def query(self, resource: type[Resource]) -> Query[Any]:
        """A query of ``resource`` in this session."""
        check_resource(resource)
        return resource.query(self)  # type: ignore[attr-defined, no-any-return]

    def get(self, resource: type[R], key: Any) -> R:
        """The complete object with this key (id; uuid for checkpoints); NotFound otherwise.

        An object already in the identity map with every field loaded is returned as is.
        """
        check_key(resource, key)
        existing = self.identity.get(resource, key)
        if existing is not None and existing._fetched:
            return existing
        return self._fetch(resource, key)

    def resolve(self, resource: type[R], key: Any) -> R:
        """The object with this key from the identity map, fetched once when missing."""
        check_key(resource, key)
        existing = self.identity.get(resource, key)
        return existing if existing is not None else self._fetch(resource, key)

    def _fetch(self, resource: type[R], key: Any) -> R:
        call, values_of = single_fetch(resource, key)
        values = values_of(self._transport.send(call).content)
        obj = self.merge(resource, self._completed(resource, values))
        obj._fetched = True
        return obj

    def _completed(self, resource: type[Resource], values: dict[str, Any]) -> dict[str, Any]:
        return trial_values(self, values) if resource is Trial else values

    def _refresh(self, obj: Resource) -> None:
        call, values_of = refetch(obj)
        values = self._completed(type(obj), values_of(self._transport.send(call).content))
        if obj.pk != values.get(obj._key_field):
            raise NotFound(
                method="GET", path=call.path, status=404, message="the object changed identity"
            )
        self._apply(obj, values)
        obj._fetched = True
        self._uow.read_again(obj)

    # --- identity map -----------------------------------------------------------------------
    def merge(self, resource: type[R], values: dict[str, Any]) -> R:
        """The session's object for these values: updated in place if known, else created.

        Fields with local edits not yet saved keep the local value.
        """
        key = values[resource._key_field]
        with self._lock:
            existing = self.identity.get(resource, key)
            if existing is None:
                obj = construct(resource, values, self)
                self._watch(obj)
                self.identity.add(obj)
                return obj
            self._apply(existing, values)
            return existing

    def _apply(self, obj: Resource, values: dict[str, Any]) -> None:
        tracked = self._uow.tracked_fields(obj)
        for name, value in values.items():
            if name in tracked:
                self._uow.server_value(obj, name, value)  # keeps this session's edits
            else:
                obj.__dict__[name] = value
                obj.__pydantic_fields_set__.add(name)
        self._watch(obj)

    def _watch(self, obj: Resource) -> None:
        """Link the object's mutable containers to the unit of work (in-place edits count)."""
        values = obj.__dict__
        for name in _watched_fields(type(obj)):
            value = values.get(name)
            if type(value) is TagSet:
                value._on_change = _Watcher(self, obj, name)
            elif isinstance(value, dict):
                tracked = value if type(value) is TrackedDict else TrackedDict(value)
                tracked._on_change = _Watcher(self, obj, name)
                values[name] = tracked

    # --- data-heavy reads ------------------------------------------------------------------
    def metrics(
        self,
        trials: Iterable[Trial | int] | TrialQuery,
        group: str = "validation",
        *,
        cache: bool = True,
    ) -> MetricsStream:
        """The reports of ``group`` for many trials, read in one streamed request.

        ``trials`` is a list of trials or trial ids, or a trial query (run first). Reports of
        finished trials come from the disk cache when there (``cache=False`` skips it).
        """
        require("cache", cache, bool, "True or False")
        return MetricsStream(self, trials, group, cache=cache and self._cache_enabled)

    def summaries(
        self, trials: Iterable[Trial | int] | TrialQuery, *, cache: bool = True
    ) -> dict[int, TrialSummary]:
        """Hyperparameters and summary metrics of many trials, by trial id.

        Trials not in the disk cache are read in one runs search (more only for thousands);
        those that have finished are cached, so asking again costs nothing, in any process.
        """
        require("cache", cache, bool, "True or False")
        return read_summaries(self, trials, cache=cache and self._cache_enabled)

    def _trial_states(self, trial_ids: list[int]) -> dict[int, bool]:
        """Whether each trial is finished (one runs search); unknown ids count as not."""
        query = Trial.query(self).filter(id__in=trial_ids)
        return {t.id: t.state.is_terminal for t in query}

    # --- unit of work ------------------------------------------------------------------------
    @property
    def dirty(self) -> list[Resource]:
        """Objects with edits not yet sent."""
        return self._uow.dirty

    def pending(self, *objects: Resource) -> FlushPlan:
        """The exact calls the next commit will make (for ``objects`` only, if given)."""
        _check_objects(objects)
        return self._uow.plan(objects or None)

    def commit(self, *objects: Resource) -> list[Change]:
        """Send pending edits (of ``objects`` only, if given); return the applied changes.

        Raises :class:`~detorm.errors.CommitError` when some changes failed: those stay pending
        (and are retried by the next commit), the others are applied and cleared.
        """
        _check_objects(objects)
        return self._uow.commit(objects or None)

    def rollback(self, *objects: Resource) -> None:
        """Undo pending edits (of ``objects`` only, if given): back to the last server state."""
        _check_objects(objects)
        self._uow.rollback(objects or None)

    def begin(self) -> AbstractContextManager[None]:
        """``with session.begin():`` commits on success and rolls back on an exception."""
        return self._uow.begin()

    def _record_edit(self, obj: Resource, name: str, old: Any) -> None:
        self._uow.record(obj, name, old)
        self._watch(obj)

    def _confirmed_value(self, obj: Resource, name: str, value: Any) -> None:
        """The master now holds ``value``: keep a pending edit's local value, else take it."""
        self._uow.server_value(obj, name, value)

    def _forget_collections(self, parent: str) -> None:
        """Prefetched children of ``parent`` objects are stale after a move."""
        for key in [k for k in self._collections if k[0] == parent]:
            del self._collections[key]

    def _loaded_children(self, key: tuple[str, Any, str]) -> list[Resource] | None:
        """Children a prefetch loaded for this relationship (None when not prefetched)."""
        return self._collections.get(key)


def _check_options(
    *,
    master: object,
    user: object,
    password: object,
    token: object,
    verify: object,
    timeout: object,
    retry: object,
    max_connections: object,
    cache: object,
    environ: object,
) -> None:
    """Refuse bad session options before anything is set up or sent: InvalidType for a wrong
    type (naming the option), ConfigurationError for a value that cannot work."""
    # A URL may embed a password, and environment values hold tokens: never shown.
    for name, value in (("master", master), ("user", user), ("password", password),
                        ("token", token)):  # fmt: skip
        if value is not None:
            require(name, value, str, "a str or None", secret=name != "user")
    require("verify", verify, (bool, str), "True, False or the path of a CA bundle")
    if isinstance(verify, str) and not os.path.exists(verify):
        raise ConfigurationError(
            f"verify={verify!r}: there is no CA bundle file or directory at this path; pass "
            "True (the system's CAs), False (no verification) or the path of a CA bundle"
        )
    check_seconds("timeout", timeout, error=ConfigurationError)
    if retry is not None:
        require("retry", retry, RetryPolicy, "a detorm.RetryPolicy or None")
    check_int("max_connections", max_connections, low=1, high=INT32_MAX, error=ConfigurationError)
    _check_cache(cache)
    if environ is not None:
        require("environ", environ, Mapping, "a mapping of str to str, or None")
        assert isinstance(environ, Mapping)
        for key, value in environ.items():
            require(f"environ[{key!r}]", value, str, "a str", secret=True)


def _check_objects(objects: tuple[object, ...]) -> None:
    for obj in objects:
        require("each object", obj, Resource, "a resource (an Experiment, a Model...)")


def _check_cache(cache: object) -> None:
    require("cache", cache, (bool, str, os.PathLike), "True, False or a directory path")
    if isinstance(cache, bool):
        return
    assert isinstance(cache, str | os.PathLike)
    location = os.fspath(cache)
    require("cache", location, str, "True, False or a directory path (of str)")
    if not location:
        raise ConfigurationError("cache='' names no directory; pass True, False or a directory")
    if os.path.exists(location) and not os.path.isdir(location):
        raise ConfigurationError(f"cache={location!r} exists and is not a directory")


@functools.cache
def _watched_fields(cls: type[Resource]) -> tuple[str, ...]:
    """Fields holding tag sets, and editable dicts: the containers edited in place."""
    return tuple(
        name
        for name, info in cls.model_fields.items()
        if info.annotation is TagSet
        or (
            name in cls._editable
            and info.annotation is not None
            and getattr(info.annotation, "__origin__", None) is dict
        )
    )


class _Watcher:
    """Tells the session that a tag set or metadata dict of an object changed in place."""

    __slots__ = ("_session", "_obj", "_name")

    def __init__(self, session: Session, obj: Resource, name: str) -> None:
        self._session, self._obj, self._name = session, obj, name

    def __call__(self, before: Any) -> None:
        old = TagSet(before) if isinstance(self._obj.__dict__.get(self._name), TagSet) else before
        self._session._record_edit(self._obj, self._name, old)


def connect(
    master: str | None = None,
    *,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    verify: bool | str = True,
    timeout: float = 60.0,
) -> Session:
    """Open a session to ``master`` (else ``DET_MASTER``, else ``http://127.0.0.1:8080``).

    The first session connected becomes the default session. ``timeout`` (seconds) bounds each
    call as a whole, retries and their waits included (see :class:`Session`).
    """
    global _default
    session = Session(
        master, user=user, password=password, token=token, verify=verify, timeout=timeout
    )
    with _default_lock:
        if _default is None:
            _default = session
    return session


def default_session() -> Session:
    """The default session: the first one connected, or one connected from the environment."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Session()
        return _default


def set_default_session(session: Session | None) -> None:
    """Make ``session`` the default session (None: forget the current one)."""
    global _default
    if session is not None:
        require("session", session, Session, "a detorm.Session or None")
    with _default_lock:
        _default = session
