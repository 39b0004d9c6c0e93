"""The sync API (``detorm``): sessions, queries and resources whose methods run ops to the end.

Every method here is a one-liner over an op of the layers below; ``detorm._api._aio`` is its
twin, and ``tests/sdk/test_parity.py`` checks that the two offer the same operations.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, TypeVar, overload

from .._ops import _executor
from .._ops._actions import bulk_action, delete_checkpoint, experiment_action
from .._ops._download import CHECKPOINT_MAX_SIZE, CODE_MAX_SIZE, download_checkpoint, download_code
from .._ops._effects import Op, Rows
from .._ops._logs import LogEntry, log_reader
from .._ops._metrics import MetricReport, MetricsReader, TrialSummary, to_pandas, to_polars
from .._plan._edits import BulkResult, Change
from .._plan._query import (
    CheckpointFilters,
    ExperimentFilters,
    ModelFilters,
    ModelVersionFilters,
    ProjectFilters,
    QueryBase,
    TrialFilters,
    UserFilters,
    WorkspaceFilters,
)
from .._resources import _models as m
from .._resources._base import Resource, SessionLike
from .._resources._inputs import require
from .._resources._relations import SettableToOne, ToMany, ToOne
from .._state._session import SessionBase
from .._wire import LogLevel
from ._drivers import Transport

__all__ = [
    "Checkpoint",
    "CheckpointQuery",
    "Experiment",
    "ExperimentQuery",
    "MetricsStream",
    "Model",
    "ModelQuery",
    "ModelVersion",
    "ModelVersionQuery",
    "Project",
    "ProjectQuery",
    "Query",
    "Session",
    "Trial",
    "TrialQuery",
    "User",
    "UserQuery",
    "Workspace",
    "WorkspaceQuery",
    "connect",
    "default_session",
    "set_default_session",
]

R = TypeVar("R", bound=Resource)
P = TypeVar("P", bound=Resource)
T = TypeVar("T")


# --- the session ---------------------------------------------------------------------------------
class Session(SessionBase):
    """A connection to one Determined master, its identity map and its unit of work.

    Credentials follow the det CLI: explicit arguments, then ``DET_USER``/``DET_PASS``, then
    ``DET_USER``/``DET_USER_TOKEN``, then the token cached in the det CLI's ``auth.json``, else
    the user ``determined`` with an empty password. Passwords are sent salted and hashed, as
    the official client does, and never stored; no repr, error message, log or pickle of the
    session or of anything reachable from it shows the token or the password hash.

    ``timeout`` (seconds) bounds each call as a whole: every attempt, backoff and
    ``Retry-After`` wait included (``retry`` says which failures are retried; its ``deadline``
    replaces ``timeout`` as the budget when set). When it is spent, the last error is raised.
    For a stream (logs, metrics, downloads) the budget covers getting the response; each read
    of the body then waits at most ``timeout``, however long the stream runs. At most
    ``concurrency`` requests are in flight at once where one operation needs many (label
    edits, per-trial reads, logs of many trials).
    """

    def _open_transport(self, master: str, **options: Any) -> Transport:
        return Transport(master, **options)

    def _connected(self) -> None:
        if self._needs_login:
            self.transport.run(self._log_in())

    @property
    def transport(self) -> Transport:
        """The sync driver this session sends with."""
        assert isinstance(self._http, Transport)
        return self._http

    def close(self) -> None:
        """Close the connection pool and the disk cache (and stop being the default session)."""
        global _default
        self.transport.close()
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
        return self._query(resource)

    def _query(self, resource: type[R]) -> Query[R]:
        cls = self._class_of(resource)
        return _QUERIES[cls.__name__](cls, self)

    def whoami(self) -> User:
        """The current user (``GET /api/v1/me``)."""
        return self.transport.run(self._whoami(User))

    def get(self, resource: type[R], key: Any) -> R:
        """The complete object with this key (id; uuid for checkpoints); NotFound otherwise.

        An object already in the identity map with every field loaded is returned as is.
        """
        return self.transport.run(self._get(resource, key))

    def resolve(self, resource: type[R], key: Any) -> R:
        """The object with this key from the identity map, fetched once when missing."""
        return self.transport.run(self._resolve(resource, key))

    def load(self, obj: Resource, relation: str) -> Any:
        """Load a relationship of ``obj`` so that reading it sends nothing more: its parent
        (``session.load(trial, "experiment")``) or its children (``session.load(exp,
        "trials")``: iterating ``exp.trials`` then reads no more). Returns the parent, or the
        list of children. The async API needs it before reading a parent that is not loaded."""
        return self.transport.run(self._load(obj, relation))

    def metrics(
        self, trials: Iterable[Trial | int] | TrialQuery, group: str = "validation", *,
        cache: bool = True,
    ) -> MetricsStream:  # fmt: skip
        """The reports of ``group`` for many trials, read in one streamed request.

        ``trials`` is a list of trials or trial ids, or a trial query (run when the stream is
        read). Reports of finished trials come from the disk cache when there (``cache=False``
        skips it).
        """
        return MetricsStream(self, trials, group, cache=self._use_cache(cache))

    def logs(
        self,
        trials: Iterable[Trial | int] | TrialQuery,
        *,
        follow: bool = False,
        search: str | None = None,
        regex: bool = False,
        levels: Iterable[LogLevel | str] | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        tail: int | None = None,
    ) -> dict[int, list[LogEntry]]:
        """The log entries of many trials, by trial id, filtered as ``Trial.logs`` filters
        them (``limit`` and ``tail`` count per trial). The master streams one trial per
        request: they are read concurrently, ``concurrency`` at a time (default 8)."""
        reader = log_reader(
            follow=follow, search=search, regex=regex, levels=levels, since=since, until=until,
            limit=limit, tail=tail,
        )  # fmt: skip
        return self.transport.run(self._logs_of_many(trials, reader))

    def summaries(
        self, trials: Iterable[Trial | int] | TrialQuery, *, cache: bool = True
    ) -> dict[int, TrialSummary]:
        """Hyperparameters and summary metrics of many trials, by trial id.

        Trials not in the disk cache are read in one runs search (more only for thousands);
        those that have finished are cached, so asking again costs nothing, in any process.
        """
        return self.transport.run(self._summaries(trials, cache))

    def commit(self, *objects: Resource) -> list[Change]:
        """Send pending edits (of ``objects`` only, if given); return the applied changes.

        Raises :class:`~detorm.errors.CommitError` when some changes failed: those stay pending
        (and are retried by the next commit), the others are applied and cleared.
        """
        return self.transport.run(self._commit(objects))

    def rollback(self, *objects: Resource) -> None:
        """Undo pending edits (of ``objects`` only, if given): back to the last server state."""
        self._rollback(objects)

    @contextmanager
    def begin(self) -> Iterator[None]:
        """``with session.begin():`` commits on success and rolls back on an exception."""
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()


_default: Session | None = None
_default_lock = threading.Lock()


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


# --- queries -------------------------------------------------------------------------------------
class Query(QueryBase[R]):
    """A lazy, immutable query of one resource type; every method returns a new query."""

    _session_kind: ClassVar[str] = "a detorm.Session or None"

    @classmethod
    def _session_type(cls) -> type[Session]:
        return Session

    def _default_session(self) -> Session:
        return default_session()

    @property
    def session(self) -> Session:
        """The session this query runs in (the default session when none was given)."""
        session = super().session
        assert isinstance(session, Session)
        return session

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> Self: ...

    def __getitem__(self, index: int | slice) -> R | Self:
        if isinstance(index, slice):
            return self._slice(index)
        return self._run(_executor.at(self, index))

    def _run(self, op: Op[T]) -> T:
        return self.session.transport.run(op)

    def __iter__(self) -> Iterator[R]:
        return self.session.transport.iterate(Rows(lambda: _executor.query_rows(self)))

    def all(self) -> list[R]:
        """Every row (all pages)."""
        return self._run(_executor.rows_of(self))

    def first(self) -> R | None:
        """The first row, or None."""
        return self._run(_executor.first(self))

    def one(self) -> R:
        """The only row; raises NotFound when there is none, QueryError when there are several."""
        return self._run(_executor.one(self))

    def one_or_none(self) -> R | None:
        """The only row or None; QueryError when there are several."""
        return self._run(_executor.one_or_none(self))

    def count(self) -> int:
        """How many rows match: one request when the master can filter everything."""
        return self._run(_executor.count(self))

    def exists(self) -> bool:
        """True when at least one row matches."""
        return self._run(_executor.exists(self))

    def get(self, key: Any) -> R:
        """The row with this id (uuid for checkpoints) among this query's rows; NotFound if none."""
        return self._run(_executor.get(self, key))

    def to_records(self) -> list[dict[str, Any]]:
        """Every row as a dict of its loaded fields (tags as sorted lists, enums by name)."""
        return self._run(_executor.records(self))

    def to_pandas(self) -> Any:
        """Every row in a pandas DataFrame (needs pandas)."""
        return to_pandas(self.to_records())

    def to_polars(self) -> Any:
        """Every row in a polars DataFrame (needs polars)."""
        return to_polars(self.to_records())


class ExperimentQuery(ExperimentFilters["Experiment"], Query["Experiment"]):
    # Bulk actions: one request with the query's filter when the bulk endpoints' filters can
    # express it exactly, else the matching ids are read first. Each returns per-id results.
    def archive(self) -> BulkResult:
        """Archive every match (terminal experiments only, as on the master)."""
        return self._run(bulk_action(self, "archive"))

    def unarchive(self) -> BulkResult:
        return self._run(bulk_action(self, "unarchive"))

    def pause(self) -> BulkResult:
        return self._run(bulk_action(self, "pause"))

    def activate(self) -> BulkResult:
        return self._run(bulk_action(self, "activate"))

    def cancel(self) -> BulkResult:
        return self._run(bulk_action(self, "cancel"))

    def kill(self) -> BulkResult:
        return self._run(bulk_action(self, "kill"))

    def delete(self) -> BulkResult:
        """Delete every match (terminal experiments; the master finishes deleting later)."""
        return self._run(bulk_action(self, "delete"))

    def move_to(self, project: m.Project | int) -> BulkResult:
        """Move every match to ``project`` (one request)."""
        destination = project.id if isinstance(project, m.Project) else project
        return self._run(bulk_action(self, "move", destination))


class TrialQuery(TrialFilters["Trial"], Query["Trial"]):
    pass


class CheckpointQuery(CheckpointFilters["Checkpoint"], Query["Checkpoint"]):
    pass


class WorkspaceQuery(WorkspaceFilters["Workspace"], Query["Workspace"]):
    pass


class ProjectQuery(ProjectFilters["Project"], Query["Project"]):
    pass


class ModelQuery(ModelFilters["Model"], Query["Model"]):
    pass


class ModelVersionQuery(ModelVersionFilters["ModelVersion"], Query["ModelVersion"]):
    pass


class UserQuery(UserFilters["User"], Query["User"]):
    pass


# --- resources -----------------------------------------------------------------------------------
class _Sync(Resource):
    """What every sync resource adds to its data: its session, refresh, save, parents."""

    @property
    def session(self) -> Session:
        """The session this object belongs to."""
        session = super().session
        assert isinstance(session, Session)
        return session

    def refresh(self) -> Self:
        """Re-fetch this object from the master, in place (pending local edits are kept)."""
        return self.session.transport.run(self.session._refresh(self))

    def save(self) -> None:
        """Send this object's pending edits now (``session.commit()`` sends everyone's)."""
        self.session.commit(self)

    def _parent(self, relation: str, target: type[P], key: Any) -> P:
        # A parent missing from the identity map is fetched once (one GET), then held.
        parent = self.session.resolve(target, key)
        self._hold(parent)
        return parent


class MetricsStream(MetricsReader):
    """The reports of a metric group for some trials; iterate it (lazily, line by line of the
    stream). Iterating again reads again (from the disk cache for finished trials)."""

    @property
    def _transport(self) -> Transport:
        assert isinstance(self._session, Session)
        return self._session.transport

    def __iter__(self) -> Iterator[MetricReport]:
        return self._transport.iterate(self._rows())

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per report: trial_id, trial_run_id, step, time, then the metric values."""
        return self._transport.run(self._records())

    def to_pandas(self) -> Any:
        """A pandas DataFrame of :meth:`to_records` (needs pandas)."""
        return to_pandas(self.to_records())

    def to_polars(self) -> Any:
        """A polars DataFrame of :meth:`to_records` (needs polars)."""
        return to_polars(self.to_records())


class User(_Sync, m.User):
    @classmethod
    def query(cls, session: Session | None = None) -> UserQuery:
        """All users (``GET /api/v1/users``)."""
        return UserQuery(cls, session)


class Workspace(_Sync, m.Workspace):
    @classmethod
    def query(cls, session: Session | None = None) -> WorkspaceQuery:
        return WorkspaceQuery(cls, session)

    projects = ToMany(lambda s: Project.query(_sync(s)), "workspace_id")
    """This workspace's projects (a query: nothing is sent until it is iterated)."""
    models = ToMany(lambda s: Model.query(_sync(s)), "workspace_id")
    """The models registered in this workspace (a query)."""


class Project(_Sync, m.Project):
    @classmethod
    def query(cls, session: Session | None = None) -> ProjectQuery:
        return ProjectQuery(cls, session)

    workspace = SettableToOne(lambda: Workspace, "workspace_id")
    """The workspace holding this project (identity map; fetched once). Assign one to move it."""

    experiments = ToMany(lambda s: Experiment.query(_sync(s)), "project_id")
    """This project's experiments (a query)."""


class Experiment(_Sync, m.Experiment):
    """An experiment. ``tags`` are its labels (Determined's wire name)."""

    @classmethod
    def query(cls, session: Session | None = None) -> ExperimentQuery:
        return ExperimentQuery(cls, session)

    project = SettableToOne(lambda: Project, "project_id")
    """The experiment's project (identity map; fetched once). Assign one to move it."""

    trials = ToMany(lambda s: Trial.query(_sync(s)), "experiment_id")
    """The experiment's trials (a query)."""

    checkpoints = ToMany(lambda s: Checkpoint.query(_sync(s)), "experiment_id")
    """The experiment's checkpoints (a query)."""

    # Actions are sent at once (the unit of work is for attribute edits); the object follows.
    def archive(self) -> None:
        self.session.transport.run(experiment_action(self.session, self, "archive"))

    def unarchive(self) -> None:
        self.session.transport.run(experiment_action(self.session, self, "unarchive"))

    def pause(self) -> None:
        self.session.transport.run(experiment_action(self.session, self, "pause"))

    def activate(self) -> None:
        self.session.transport.run(experiment_action(self.session, self, "activate"))

    def cancel(self) -> None:
        self.session.transport.run(experiment_action(self.session, self, "cancel"))

    def kill(self) -> None:
        self.session.transport.run(experiment_action(self.session, self, "kill"))

    def delete(self) -> None:
        self.session.transport.run(experiment_action(self.session, self, "delete"))

    def move_to(self, project: m.Project | int) -> None:
        """Move this experiment to ``project`` now."""
        destination = project.id if isinstance(project, m.Project) else project
        self.session.transport.run(experiment_action(self.session, self, "move", destination))

    def best_trial(self) -> Trial | None:
        """The trial with the best searcher metric, or None (one request unless known).

        Only the experiments search reports the best trial: an experiment read by a search
        already knows it (``best_trial_id``); otherwise one search for this experiment asks.
        """
        return self.session.transport.run(_executor.best_trial(self.session, self, Trial))

    def download_code(
        self, path: str | os.PathLike[str], *, cache: bool = True, max_size: int = CODE_MAX_SIZE
    ) -> Path:
        """Extract the experiment's code (its model definition) into ``path``, a new or empty
        directory, safely; at most ``max_size`` bytes once extracted (default 128 MiB).

        Code never changes: it is read from the disk cache after the first download.
        """
        op = download_code(self.session, self, path, cache=cache, max_size=max_size)
        return self.session.transport.run(op)


class Trial(_Sync, m.Trial):
    @classmethod
    def query(cls, session: Session | None = None) -> TrialQuery:
        """Trials of the whole cluster (the runs search); ``exp.trials`` for one experiment."""
        return TrialQuery(cls, session)

    experiment = ToOne(lambda: Experiment, "experiment_id")
    """The trial's experiment (identity map; fetched once)."""

    checkpoints = ToMany(lambda s: Checkpoint.query(_sync(s)), "trial_id")
    """The trial's checkpoints (a query)."""

    def metrics(self, group: str = "validation", *, cache: bool = True) -> MetricsStream:
        """This trial's reports of ``group`` (``"training"``, ``"validation"``, ``"gpu"``...).

        Lazy: iterate it, or call ``to_pandas()``. Finished trials are cached on disk.
        """
        return self.session.metrics([self], group, cache=cache)

    def logs(
        self,
        *,
        follow: bool = False,
        search: str | None = None,
        regex: bool = False,
        levels: Iterable[LogLevel | str] | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        tail: int | None = None,
    ) -> Iterator[LogEntry]:
        """This trial's log entries, filtered on the master; ``follow`` waits for new ones.

        ``search`` is a substring (case-insensitive) or, with ``regex=True``, a pattern;
        ``levels`` the levels to keep; ``since``/``until`` bound the timestamps; ``limit``
        keeps the first entries and ``tail`` the last ones.
        """
        reader = log_reader(
            follow=follow, search=search, regex=regex, levels=levels, since=since, until=until,
            limit=limit, tail=tail,
        )  # fmt: skip
        return self.session.transport.iterate(reader(self.session, self.id))


class Checkpoint(_Sync, m.Checkpoint):
    @classmethod
    def query(cls, session: Session | None = None) -> CheckpointQuery:
        """Checkpoints; the master lists them per experiment or per trial."""
        return CheckpointQuery(cls, session)

    trial = ToOne(lambda: Trial, "trial_id")
    """The trial that saved this checkpoint (identity map; fetched once)."""

    def delete(self) -> None:
        """Delete this checkpoint's files (``DELETE /api/v1/checkpoints``; the master removes
        them in the background and the state becomes DELETED)."""
        self.session.transport.run(delete_checkpoint(self.session, self))

    def download(
        self,
        path: str | os.PathLike[str],
        *,
        mode: Literal["auto", "direct", "master"] = "auto",
        progress: bool = False,
        cache: bool = True,
        max_size: int = CHECKPOINT_MAX_SIZE,
    ) -> Path:
        """Download the checkpoint's files into ``path`` (see ``detorm._ops._download``): directly
        from shared storage when this machine can read it, else through the master (a
        COMPLETED checkpoint is then kept in the disk cache and downloaded only once).

        The files must be exactly those the checkpoint's ``resources`` list; ``max_size``
        (default 64 GiB) caps a checkpoint that has no ``resources``."""
        op = download_checkpoint(
            self.session, self, path, mode=mode, progress=progress, cache=cache, max_size=max_size
        )
        return self.session.transport.run(op)


class Model(_Sync, m.Model):
    @classmethod
    def query(cls, session: Session | None = None) -> ModelQuery:
        """Registered models (``GET /api/v1/models``)."""
        return ModelQuery(cls, session)

    workspace = SettableToOne(lambda: Workspace, "workspace_id")
    """The model's workspace (identity map; fetched once). Assign one to move the model."""

    versions = ToMany(lambda s: ModelVersion.query(_sync(s)), "model_id")
    """The model's versions (a query)."""


class ModelVersion(_Sync, m.ModelVersion):
    @classmethod
    def query(cls, session: Session | None = None) -> ModelVersionQuery:
        """Model versions; the master lists them per model (``model.versions``)."""
        return ModelVersionQuery(cls, session)

    model = ToOne(lambda: Model, "model_id")
    """The model this version belongs to (identity map; fetched once)."""
    checkpoint = ToOne(lambda: Checkpoint, "checkpoint_uuid")
    """The registered checkpoint (identity map; fetched once)."""


def _sync(session: SessionLike | None) -> Session | None:
    assert session is None or isinstance(session, Session)
    return session


RESOURCES = (User, Workspace, Project, Experiment, Trial, Checkpoint, Model, ModelVersion)
Session._classes = {cls.__name__: cls for cls in RESOURCES}
_QUERIES: dict[str, type[Query[Any]]] = {
    "User": UserQuery, "Workspace": WorkspaceQuery, "Project": ProjectQuery,
    "Experiment": ExperimentQuery, "Trial": TrialQuery, "Checkpoint": CheckpointQuery,
    "Model": ModelQuery, "ModelVersion": ModelVersionQuery,
}  # fmt: skip
