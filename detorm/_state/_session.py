"""Sessions: the connection to one master, its identity map, and its unit of work.

``detorm.connect()`` opens a session and makes it the default one (used by the class-level
``Experiment.query()`` and friends) when there is none yet; ``detorm.Session(...)`` opens an
explicit one. A session is a context manager that closes its connection pool.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final, Generic, TypeVar, cast

import httpx

from .. import _display, _progress
from .. import _wire as w
from .._io import _auth
from .._io._auth import Secret
from .._io._cache import DiskCache, default_cache_dir
from .._ops._effects import (
    Effect,
    Gather,
    Op,
    Rows,
    Send,
    blocking,
    collect,
    gather,
    observed,
    send,
)
from .._ops._executor import rows_of
from .._ops._http import DEFAULT_CONCURRENCY, _Http
from .._ops._logs import LogEntry
from .._ops._metrics import TrialSummary, chosen_trials, read_summaries, trials_of
from .._ops._rp_bindings import resource_pools
from .._plan._call import NO_RETRY, Call, RetryPolicy
from .._plan._edits import Change, FlushPlan
from .._plan._loading import check_key, check_resource, refetch, single_fetch, trial_values
from .._plan._query import QueryBase
from .._resources._base import Resource, TagSet, TrackedDict, construct
from .._resources._inputs import INT32_MAX, check_int, check_seconds, require
from .._resources._models import Trial, User, Workspace
from .._resources._relations import ToMany, ToOne
from ..errors import (
    ConfigurationError,
    Forbidden,
    InvalidType,
    InvalidValue,
    NotFound,
    Unauthenticated,
)
from ._identity import IdentityMap
from ._unit_of_work import UnitOfWork

__all__ = ["DefaultSession", "SessionBase"]

R = TypeVar("R", bound=Resource)
U = TypeVar("U", bound=User)


class SessionBase:
    """What the sync and async sessions share: a connection to one Determined master, its
    identity map and its unit of work, and the ops their methods run (``detorm._api`` adds
    the methods; ``detorm.Session`` documents the options and the credential rules)."""

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
        concurrency: int = DEFAULT_CONCURRENCY,
        cache: bool | str | os.PathLike[str] = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        _check_options(
            master=master, user=user, password=password, token=token, verify=verify,
            timeout=timeout, retry=retry, max_connections=max_connections,
            concurrency=concurrency, cache=cache, environ=environ,
        )  # fmt: skip
        env = os.environ if environ is None else environ
        try:
            origin = _auth.master_origin(master, env)
            httpx.URL(origin.url)  # as the connection pool will parse it (control characters)
        except ValueError as err:
            raise ConfigurationError(str(err)) from None
        except httpx.InvalidURL as err:
            raise ConfigurationError(f"invalid master URL: {err}") from None
        self.master = origin.url
        # A local master this process started keeps its tokens in memory (never auth.json).
        self._store = _auth.token_cache_for(self.master, env)
        try:
            self._credentials = _auth.resolve_credentials(
                master=self.master, user=user, password=password, token=token,
                environ=env, store=self._store,
            )  # fmt: skip
        except ValueError as err:
            raise ConfigurationError(str(err)) from None
        self._http = self._open_transport(
            self.master, verify=verify, timeout=timeout, retry=retry or RetryPolicy(),
            max_connections=max_connections, concurrency=concurrency,
        )  # fmt: skip
        self._http.on_unauthenticated = self._login_again
        self._http.origin = origin
        self.identity = IdentityMap()
        self._uow = UnitOfWork(self)
        self._collections: dict[tuple[str, Any, str], list[Resource]] = {}
        self._lock = threading.RLock()
        self._merged_classes: dict[type[Resource], type[Resource]] = {}  # _class_of's answers
        self._username = self._credentials.username
        self._http.token = self._credentials.token
        self._cache_enabled = cache is not False
        # Only a bare token argument leaves the user unknown: its cache is named by its hash.
        secret = self._credentials.token
        who = self._username or "token-" + (secret.fingerprint()[:12] if secret else "")
        directory = None if isinstance(cache, bool) else Path(cache)
        self.cache = DiskCache(directory or default_cache_dir(env), namespace=(self.master, who))
        self._connected()
        self._opened()

    def _opened(self) -> None:
        """Called once the session is open: the facade records it (its default session)."""

    def _connected(self) -> None:
        """The facade's last step of opening a session (the sync one logs in here)."""

    def _query(self, resource: type[R]) -> QueryBase[R]:
        """A query of ``resource`` in this session, of its API's class (for internal reads)."""
        raise NotImplementedError

    def _class_of(self, resource: type[R]) -> type[R]:
        """This session's class for ``resource`` (given as its data class or as this API's
        class); the other API's class is refused (its objects would not be this session's)."""
        check_resource(resource)
        cls = self._classes[resource.__name__]
        if not issubclass(cls, resource):
            raise InvalidType(
                f"this {resource.__name__} class is the other API's: {type(self).__name__} "
                f"reads and returns {type(self).__module__}.{cls.__name__} objects"
            )
        return cls

    # --- authentication -------------------------------------------------------------------
    @property
    def username(self) -> str | None:
        """The user this session acts as (None for a bare token until ``whoami()``)."""
        return self._username

    def _whoami(self, cls: type[U]) -> Op[U]:
        """The current user (``GET /api/v1/me``), as an object of ``cls`` (the API's User)."""
        response = w.UserResponse.model_validate_json(
            (yield from send(Call("GET", "/api/v1/me"))).content
        )
        assert response.user is not None
        user = self.merge(cls, cls.values_from_wire(response.user))
        self._username = user.username
        return user

    @property
    def _needs_login(self) -> bool:
        """No token yet: the facade logs in (at once when sync, before the first request
        when async, as a constructor cannot await)."""
        return self._http.token is None

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
        self._http.token = Secret(login.token)
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
    # The facade's resource classes, by name: merging values builds them.
    _classes: ClassVar[Mapping[str, type[Resource]]] = {}

    def _open_transport(self, master: str, **options: Any) -> _Http:
        raise NotImplementedError  # the facade's driver: Transport or AsyncTransport

    @property
    def transport(self) -> _Http:
        """The driver this session sends with."""
        return self._http

    @property
    def requests_sent(self) -> int:
        """HTTP requests this session has sent (retries included)."""
        return self._http.requests_sent

    @property
    def retries(self) -> int:
        """Requests the retry policy sent again after a failed attempt (of all calls)."""
        return self._http.retries

    def __repr__(self) -> str:
        who = self._username or "the token user"
        return f"<detorm.{type(self).__name__} {self.master} as {who!r}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the master, the user, what the session holds and has sent (never
        its token; nothing is sent to draw it)."""
        facts: list[tuple[str, Any]] = [
            ("master", self.master), ("user", self._username or "the token user (whoami())"),
            ("requests sent", self.requests_sent), ("retries", self.retries),
            ("objects in the identity map", len(self.identity)),
            ("objects with pending changes", len(self.dirty)),
            ("disk cache", "on" if self._cache_enabled else "off"),
        ]  # fmt: skip
        return _display.session_html(self, facts)

    # --- reads (ops: the facades run them) ----------------------------------------------------
    def _get(self, resource: type[R], key: Any) -> Op[R]:
        """The complete object with this key (id; uuid for checkpoints); NotFound otherwise.

        An object already in the identity map with every field loaded is returned as is.
        """
        check_key(resource, key)
        resource = self._class_of(resource)
        existing = self.identity.get(resource, key)
        if existing is not None and existing._fetched:
            return existing
        return (yield from self._fetch(resource, key))

    def _resolve(self, resource: type[R], key: Any) -> Op[R]:
        """The object with this key from the identity map, fetched once when missing."""
        check_key(resource, key)
        resource = self._class_of(resource)
        existing = self.identity.get(resource, key)
        return existing if existing is not None else (yield from self._fetch(resource, key))

    def _fetch(self, resource: type[R], key: Any) -> Op[R]:
        call, values_of = single_fetch(resource, key)
        values = values_of((yield from send(call)).content)
        obj = self.merge(resource, self._completed(resource, values))
        obj._fetched = True
        return obj

    def _completed(self, resource: type[Resource], values: dict[str, Any]) -> dict[str, Any]:
        return trial_values(self, values) if issubclass(resource, Trial) else values

    def _refresh(self, obj: R) -> Op[R]:
        call, values_of = refetch(obj)
        values = self._completed(type(obj), values_of((yield from send(call)).content))
        if obj.pk != values.get(obj._key_field):
            raise NotFound(
                method="GET", path=call.path, status=404, message="the object changed identity"
            )
        self._apply(obj, values)
        obj._fetched = True
        self._uow.read_again(obj)
        return obj

    def _load(self, obj: Resource, relation: str) -> Op[Any]:
        require("obj", obj, Resource, "a resource (an Experiment, a Trial...)")
        require("relation", relation, str, "the name of a relationship (a str)")
        declared = inspect.getattr_static(type(obj), relation, None)
        if isinstance(declared, ToOne):
            key = getattr(obj, declared._key_field)
            if key is None:
                return None
            parent = yield from self._resolve(declared._target(), key)
            obj._hold(parent)  # the identity map holds objects weakly
            return parent
        if isinstance(declared, ToMany):
            query = getattr(obj, relation)
            children = yield from rows_of(query)
            self._collections[query._children_of] = children
            return children
        if isinstance(obj, Workspace) and relation == "resource_pools":
            # A field with a read of its own (not a relationship): this session's pending
            # binds and unbinds stay on top of what the master answers.
            pools = yield from resource_pools(obj)
            self._apply(obj, {"resource_pools": TagSet(pools)})
            return obj.resource_pools
        raise InvalidValue(
            f"{type(obj).__name__} has no relationship named {relation!r} (nor a field "
            "loaded by session.load: Workspace.resource_pools)"
        )

    # --- identity map -----------------------------------------------------------------------
    def merge(self, resource: type[R], values: dict[str, Any]) -> R:
        """The session's object for these values: updated in place if known, else created.

        Fields with local edits not yet saved keep the local value.
        """
        key = values[resource._key_field]
        with self._lock:
            existing = self.identity.get(resource, key)
            if existing is None:
                # A page merges thousands of rows of one class: its check is made once.
                cls = self._merged_classes.get(resource)
                if cls is None:
                    cls = self._merged_classes[resource] = self._class_of(resource)
                obj = construct(cast("type[R]", cls), values, self)
                self._watch(obj)
                self.identity.add(obj)
                return obj
            self._apply(existing, values)
            return existing

    def _forget(self, obj: Resource) -> None:
        """The master no longer has ``obj`` (deleted): drop it from the identity map."""
        with self._lock:
            self.identity.discard(obj)

    def _rekey(self, obj: Resource, value: Any) -> None:
        """The master renamed ``obj`` (its key field): file it under its new key."""
        with self._lock:
            self.identity.discard(obj)
            obj.__dict__[obj._key_field] = value
            self.identity.add(obj)

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
    def _use_cache(self, cache: object) -> bool:
        require("cache", cache, bool, "True or False")
        return bool(cache) and self._cache_enabled

    def _summaries(
        self, trials: Iterable[Trial | int] | QueryBase[Any], cache: bool
    ) -> Op[dict[int, TrialSummary]]:
        """Hyperparameters and summary metrics of many trials, by trial id (see the facades)."""
        return read_summaries(self, chosen_trials(trials), cache=self._use_cache(cache))

    def _logs_of_many(
        self,
        trials: Iterable[Trial | int] | QueryBase[Any],
        reader: Callable[[SessionBase, int], Rows[LogEntry]],
    ) -> Op[dict[int, list[LogEntry]]]:
        """The log entries of many trials, by trial id: one stream per trial (the master has
        no multi-trial logs route), read concurrently within the session's ``concurrency``."""
        return self._read_logs_of(chosen_trials(trials), reader)

    def _read_logs_of(
        self,
        trials: list[Trial | int] | QueryBase[Any],
        reader: Callable[[SessionBase, int], Rows[LogEntry]],
    ) -> Op[dict[int, list[LogEntry]]]:
        chosen = yield from trials_of(trials)
        ids = list(dict.fromkeys(t if isinstance(t, int) else t.id for t in chosen))
        reads: list[Op[list[LogEntry]]] = [
            collect(reader(self, trial_id).make()) for trial_id in ids
        ]
        return dict(zip(ids, (yield from gather(reads)), strict=True))

    def _trial_states(self, trial_ids: list[int]) -> Op[dict[int, bool]]:
        """Whether each trial is finished (one runs search); unknown ids count as not."""
        trials = yield from rows_of(self._query(Trial)._filter((), {"id__in": trial_ids}))
        return {t.id: t.state.is_terminal for t in trials}

    # --- progress bars -----------------------------------------------------------------------
    _progress_choice: bool | None = None

    @property
    def progress(self) -> bool | None:
        """Progress bars of this session's long metric reads, downloads and large commits (the
        default of each call's ``progress`` argument): None (the default) draws them with tqdm
        when it is installed and stderr is a terminal or a notebook runs the code; True always
        (a plain text bar without tqdm); False never."""
        return self._progress_choice

    @progress.setter
    def progress(self, value: bool | None) -> None:
        self._progress_choice = _progress.check_progress("session.progress", value)

    # --- unit of work ------------------------------------------------------------------------
    @property
    def dirty(self) -> list[Resource]:
        """Objects with edits not yet sent."""
        return self._uow.dirty

    def pending(self, *objects: Resource) -> FlushPlan:
        """The exact calls the next commit will make (for ``objects`` only, if given)."""
        _check_objects(objects)
        return self._uow.plan(objects or None)

    def _commit(self, objects: tuple[Resource, ...]) -> Op[list[Change]]:
        """Send pending edits (of ``objects`` only, if given); return the applied changes.

        Raises :class:`~detorm.errors.CommitError` when some changes failed: those stay pending
        (and are retried by the next commit), the others are applied and cleared.
        """
        _check_objects(objects)
        commit = self._uow.commit(objects or None)
        if not _progress.wanted(self.progress):
            return commit
        plan = self._uow.plan(objects or None)
        requests = len(plan.calls) + len(plan.reads)
        if requests < LARGE_COMMIT and self.progress is None:
            return commit  # a small commit draws no bar unless asked
        return _counted_requests(commit, requests, self.progress)

    def _rollback(self, objects: tuple[Resource, ...]) -> None:
        """Undo pending edits (of ``objects`` only, if given): back to the last server state."""
        _check_objects(objects)
        self._uow.rollback(objects or None)

    def add(self, obj: Resource) -> None:
        """Create the new object ``obj`` (made by its constructor: ``Workspace(name=...)``) at
        the next commit, with the new objects it needs (its workspace), in dependency order:
        workspaces, then the projects and models in them, then the edits (moves into them),
        then the deletions. Its ``id`` and server fields are filled in then."""
        require("session.add(obj)", obj, Resource, "a new Workspace, Project or Model")
        if obj._session is not None and obj._session is not self:
            raise InvalidValue("this object belongs to another session")
        self._uow.add(obj)

    def delete(self, obj: Resource) -> None:
        """Delete ``obj`` at the next commit (after the edits: moves out of it go first). A new
        object that was added is simply not created."""
        require("session.delete(obj)", obj, Resource, "a resource (an Experiment, a Model...)")
        if obj._session is not self and not obj.is_new:
            raise InvalidValue("this object belongs to another session")
        self._uow.delete(obj)

    def _refer_to_new(self, obj: Resource, key_field: str, parent: Resource) -> None:
        if obj._session is not self:
            raise InvalidValue(
                f"{type(obj).__name__}.{key_field.removesuffix('_id')} can name a new object "
                "only on an object of a session"
            )
        self._uow.refer_to_new(obj, key_field, parent)

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


S = TypeVar("S", bound=SessionBase)


class DefaultSession(Generic[S]):
    """The default session of one API (``detorm`` or ``detorm.aio``) and which of its sessions
    are open: one implementation of the rule both APIs document.

    The first session opened, by ``connect()`` or by the session class itself, becomes the
    default while there is none; closing it (or ``set_default_session(None)``) forgets it.
    With no default, ``default_session()`` connects from the environment only when no session
    of the API is open; otherwise ``Experiment.query()`` would silently read a master the
    script never named, so it raises :class:`ConfigurationError` naming the open sessions.
    """

    def __init__(self, api: str, from_environment: Callable[[], S]) -> None:
        self._api = api
        self._from_environment = from_environment
        self.current: S | None = None
        self._open: weakref.WeakSet[S] = weakref.WeakSet()
        # Reentrant: a session made from the environment reports itself open while held.
        self._lock = threading.RLock()

    def opened(self, session: S) -> None:
        """``session`` is open: the default if there is none."""
        with self._lock:
            self._open.add(session)
            if self.current is None:
                self.current = session

    def closed(self, session: S) -> None:
        """``session`` was closed: no longer open, nor the default."""
        with self._lock:
            self._open.discard(session)
            if self.current is session:
                self.current = None

    def set(self, session: S | None) -> None:
        with self._lock:
            self.current = session

    def get(self) -> S:
        """The default session; one connected from the environment when no session is open."""
        with self._lock:
            if self.current is not None:
                return self.current
            if len(self._open):
                raise ConfigurationError(self._ambiguous(list(self._open)))
            session = self._from_environment()
            self.current = session
            return session

    def _ambiguous(self, sessions: list[S]) -> str:
        masters = ", ".join(sorted({repr(s.master) for s in sessions}))
        count = f"{len(sessions)} session{'s are' if len(sessions) > 1 else ' is'} open"
        return (
            f"no default {self._api} session: {count} (to {masters}) but none is the default "
            "(it was closed or set_default_session(None) forgot it), and connecting from the "
            "environment could reach another master. Pass session=... (e.g. "
            f"session.query(Experiment)) or call {self._api}.set_default_session(session). "
            "The first session opened becomes the default; closing it forgets it."
        )


# Commits of at least this many requests draw a progress bar (when progress is automatic).
LARGE_COMMIT = 20


def _counted_requests(
    commit: Op[list[Change]], total: int, choice: bool | None
) -> Op[list[Change]]:
    """``commit`` with a bar counting its requests (a gathered op counts as one request)."""
    with _progress.progress_bar(total, "commit", unit="request", choice=choice) as bar:

        def seen(effect: Effect, result: Any) -> None:
            if isinstance(effect, Send):
                bar(1)
            elif isinstance(effect, Gather):
                bar(len(effect.ops))

        return (yield from observed(commit, seen))


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
    concurrency: object,
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
    check_int("concurrency", concurrency, low=1, high=1024, error=ConfigurationError)
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


_NO_KEY: Final = object()


class _Watcher:
    """Tells the session that a tag set or metadata dict of an object changed in place.

    It holds its object weakly: object -> tag set -> watcher -> object would be a reference
    cycle, and every object read would outlive the loop that dropped it until the cyclic garbage
    collector ran (a lazy loop over a million experiments grew by gigabytes). A container kept
    after its object was dropped still records its edits, on the session's object for that key:
    the identity map's, or a new one holding the key and this field only.
    """

    __slots__ = ("_cls", "_key", "_name", "_new", "_obj", "_session")

    def __init__(self, session: SessionBase, obj: Resource, name: str) -> None:
        self._session, self._name, self._cls = session, name, type(obj)
        self._obj = weakref.ref(obj)
        # A new object has no key yet (is_new): held strongly (the session holds it until
        # created). Read from __dict__ at once: a page makes thousands of watchers.
        key = obj.__dict__.get(obj._key_field, _NO_KEY)
        self._new = obj if key is _NO_KEY else None
        self._key = None if key is _NO_KEY else key

    def __call__(self, container: TagSet | TrackedDict, before: Any) -> None:
        obj = self._obj()
        if obj is None:
            values = {self._cls._key_field: self._key, self._name: container}
            obj = self._session.merge(self._cls, values)
        old = TagSet(before) if isinstance(container, TagSet) else before
        self._session._record_edit(obj, self._name, old)
