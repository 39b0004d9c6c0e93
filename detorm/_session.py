"""Sessions: the connection to one master, its identity map, and its unit of work.

``detorm.connect()`` opens a session and makes it the default one (used by the class-level
``Experiment.query()`` and friends) when there is none yet; ``detorm.Session(...)`` opens an
explicit one. A session is a context manager that closes its connection pool.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

from . import _auth
from . import _wire as w
from ._identity import IdentityMap
from ._loading import ROW_LOADERS, single_fetch
from ._planner import Plan, Source, prefetch_trials_call
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
from ._resources._base import Resource, TagSet, construct
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
from ._transport import NO_RETRY, Call, RetryPolicy, Transport
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
    the official client does, and never stored or shown.
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
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        try:
            self.master = _auth.canonicalize_master_url(master) if master else _auth.default_master(env)
        except ValueError as err:
            raise ConfigurationError(str(err)) from None
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
        self._lock = threading.RLock()
        self._username = self._credentials.username
        if self._credentials.token is not None:
            self._transport.token = self._credentials.token
        else:
            self._login()

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
        credentials = self._credentials
        assert credentials.username is not None and credentials.password_hash is not None
        body = w.LoginRequest(
            username=credentials.username, password=credentials.password_hash, is_hashed=True
        ).model_dump_wire()
        call = Call("POST", "/api/v1/auth/login", body=body)
        try:
            response = self._transport.send(call, retry=NO_RETRY, reauthenticate=False)
        except (Unauthenticated, Forbidden) as err:
            raise type(err)(
                method="POST", path=call.path, status=err.status, reason=err.reason,
                message=f"could not log in as {credentials.describe()}: {err.message}",
            ) from None  # fmt: skip
        login = w.LoginResponse.model_validate_json(response.content)
        self._transport.token = login.token
        self._username = credentials.username
        try:
            self._store.store(self.master, credentials.username, login.token, make_active=False)
        except OSError:
            pass  # an unwritable config directory only costs a login next time

    def _login_again(self) -> bool:
        # A token from auth.json or the environment may have expired: drop it from the cache
        # and log in with a password when one is available (the default user has "").
        with self._lock:
            credentials = self._credentials
            if credentials.from_cache and credentials.username is not None:
                try:
                    self._store.drop(self.master, credentials.username)
                except OSError:
                    pass
            if credentials.password_hash is None and not credentials.may_fall_back:
                return False
            self._credentials = credentials.with_password_fallback()
            self._login()
            return True

    # --- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool (and stop being the default session)."""
        global _default
        self._transport.close()
        with _default_lock:
            if _default is self:
                _default = None

    def __enter__(self) -> Session:
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
        return resource.query(self)  # type: ignore[attr-defined, no-any-return]

    def get(self, resource: type[R], key: Any) -> R:
        """The complete object with this key (id; uuid for checkpoints); NotFound otherwise.

        An object already in the identity map with every field loaded is returned as is.
        """
        existing = self.identity.get(resource, key)
        if existing is not None and len(existing.loaded_fields) == len(resource.model_fields):
            return existing
        return self._fetch(resource, key)

    def resolve(self, resource: type[R], key: Any) -> R:
        """The object with this key from the identity map, fetched once when missing."""
        existing = self.identity.get(resource, key)
        return existing if existing is not None else self._fetch(resource, key)

    def _fetch(self, resource: type[R], key: Any) -> R:
        call, response_type, values_of = single_fetch(resource, key)
        response = response_type.model_validate_json(self._transport.send(call).content)
        return self.merge(resource, values_of(response))

    def _refresh(self, obj: Resource) -> None:
        key = (obj.model_id, obj.version) if isinstance(obj, ModelVersion) else obj.pk
        call, response_type, values_of = single_fetch(type(obj), key)
        response = response_type.model_validate_json(self._transport.send(call).content)
        values = values_of(response)
        if obj.pk != values.get(obj._key_field):
            raise NotFound(method="GET", path=call.path, status=404, message="the object changed identity")
        self._apply(obj, values)

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
        pending = self._pending_fields(obj)
        for name, value in values.items():
            if name in pending:
                self._server_value_changed(obj, name, value)
            else:
                obj.__dict__[name] = value
                obj.__pydantic_fields_set__.add(name)
        self._watch(obj)

    def _watch(self, obj: Resource) -> None:
        for name, value in obj.__dict__.items():
            if isinstance(value, TagSet):
                value._on_change = _TagWatcher(self, obj, name)

    # Hooks of the unit of work (see _unit_of_work.py); reads only need the defaults.
    def _pending_fields(self, obj: Resource) -> frozenset[str]:
        return frozenset()

    def _server_value_changed(self, obj: Resource, name: str, value: Any) -> None:
        pass

    def _record_edit(self, obj: Resource, name: str, old: Any) -> None:
        pass

    # --- executing plans ----------------------------------------------------------------------
    def _page(self, source: Source, offset: int, limit: int) -> tuple[list[Any], w.Pagination]:
        call = source.call(offset, limit)
        response = source.response.model_validate_json(self._transport.send(call).content)
        rows = list(getattr(response, source.rows))
        pagination = getattr(response, "pagination", None) or w.Pagination(
            end_index=offset + len(rows), total=offset + len(rows)
        )
        return rows, pagination

    def _iterate(
        self, plan: Plan, resource: type[R], offset: int, limit: int | None
    ) -> Iterator[R]:
        """Every row of a plan's source from ``offset``, page by page, as resources."""
        load = ROW_LOADERS[plan.source.operation]
        remaining = limit
        while remaining is None or remaining > 0:
            size = plan.page_size if remaining is None else min(plan.page_size, remaining)
            rows, pagination = self._page(plan.source, offset, size)
            objects = [load(self, row) for row in rows]
            self._prefetch(plan, objects)
            yield from objects  # type: ignore[misc]
            if remaining is not None:
                remaining -= len(rows)
            end = pagination.end_index
            # Stop at the end, and never loop on a server that does not advance its cursor.
            if not rows or end >= pagination.total or end <= max(offset, 0) and offset >= 0:
                return
            offset = end

    def _count(self, plan: Plan) -> int:
        response = plan.source.response.model_validate_json(
            self._transport.send(plan.source.count_call()).content
        )
        pagination = getattr(response, "pagination", None)
        return pagination.total if pagination is not None else 0

    def _prefetch(self, plan: Plan, objects: list[Resource]) -> None:
        for prefetch in plan.prefetch:
            if prefetch.relation == "trials" and objects:
                self._prefetch_trials([o.pk for o in objects], plan.page_size)
            elif prefetch.relation == "checkpoints" and objects:
                self._prefetch_checkpoints(objects)

    def _prefetch_trials(self, experiment_ids: list[int], page_size: int) -> None:
        source = Source(
            "Trial", "SearchRuns", "POST", "/api/v1/runs", "sql", w.SearchRunsResponse, "runs",
            body=prefetch_trials_call(experiment_ids, page_size).body, partial=True,
        )  # fmt: skip
        by_experiment: dict[int, list[int]] = {e: [] for e in experiment_ids}
        offset = 0
        while True:
            rows, pagination = self._page(source, offset, max(page_size, 4 * len(experiment_ids)))
            for row in rows:
                trial = ROW_LOADERS["SearchRuns"](self, row)
                by_experiment.setdefault(trial.experiment_id, []).append(trial.id)
            if not rows or pagination.end_index >= pagination.total:
                break
            offset = pagination.end_index
        for experiment_id, trial_ids in by_experiment.items():
            self._loaded_collections[("Experiment", experiment_id, "trials")] = sorted(trial_ids)

    def _prefetch_checkpoints(self, trials: list[Resource]) -> None:
        experiments = {t.experiment_id for t in trials}
        by_trial: dict[int, list[str]] = {t.pk: [] for t in trials}
        for experiment_id in experiments:
            for checkpoint in Checkpoint.query(self).filter(experiment_id=experiment_id):
                if checkpoint.trial_id in by_trial:
                    by_trial[checkpoint.trial_id].append(checkpoint.uuid)
        for trial_id, uuids in by_trial.items():
            self._loaded_collections[("Trial", trial_id, "checkpoints")] = uuids

    @property
    def _loaded_collections(self) -> dict[tuple[str, Any, str], list[Any]]:
        collections: dict[tuple[str, Any, str], list[Any]] | None = getattr(self, "_collections", None)
        if collections is None:
            collections = {}
            self._collections = collections
        return collections


class _TagWatcher:
    """Tells the session that a tag set of an object changed (for the unit of work)."""

    __slots__ = ("_session", "_obj", "_name")

    def __init__(self, session: Session, obj: Resource, name: str) -> None:
        self._session, self._obj, self._name = session, obj, name

    def __call__(self, before: frozenset[str]) -> None:
        self._session._record_edit(self._obj, self._name, TagSet(before))


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

    The first session connected becomes the default session.
    """
    global _default
    session = Session(master, user=user, password=password, token=token, verify=verify, timeout=timeout)
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
    with _default_lock:
        _default = session
