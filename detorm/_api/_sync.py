"""The sync API (``detorm``): sessions, queries and resources whose methods run ops to the end.

Every method here is a one-liner over an op of the layers below; ``detorm._api._aio`` is its
twin, and ``tests/sdk/test_parity.py`` checks that the two offer the same operations.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, TypeVar, overload

from .._ops import _create as cr
from .._ops import _executor
from .._ops import _experiments as xp
from .._ops._actions import bulk_action, delete_checkpoint, experiment_action
from .._ops._cluster import (
    ClusterMessage,
    MasterInfo,
    MasterLogEntry,
    clear_cluster_message,
    cluster_message,
    log_out,
    master_config,
    master_info,
    master_log_reader,
    set_cluster_message,
)
from .._ops._download import CHECKPOINT_MAX_SIZE, CODE_MAX_SIZE, download_checkpoint, download_code
from .._ops._effects import Op, RecordReader, Rows
from .._ops._logs import LogEntry, log_reader
from .._ops._metrics import (
    MetricReport,
    MetricsReader,
    TrialSummary,
    metric_groups,
    metric_names,
    to_pandas,
    to_polars,
)
from .._ops._profiler import ProfilerReader, ProfilerSample, ProfilerSeries, series_of
from .._ops._runs import kill_trial, run_action
from .._ops._tasks import (
    QueueStats,
    create_template,
    delete_template,
    kill_all,
    kill_task,
    launch,
    launch_body,
    launch_context,
    move_priority,
    queue_stats,
    rename_template,
    wait_for,
)
from .._ops._tensorboard import (
    TENSORBOARD_MAX_SIZE,
    delete_tensorboard_files,
    download_tensorboard,
)
from .._ops._webhooks import create_webhook, delete_webhook, test_webhook, webhook_body
from .._plan._edits import BulkResult, Change
from .._plan._query import (
    AgentFilters,
    CheckpointFilters,
    CommandFilters,
    ExperimentFilters,
    JobFilters,
    ModelFilters,
    ModelVersionFilters,
    NotebookFilters,
    ProjectFilters,
    QueryBase,
    ResourcePoolFilters,
    ShellFilters,
    TaskFilters,
    TemplateFilters,
    TensorboardFilters,
    TrialFilters,
    UserFilters,
    WebhookFilters,
    WorkspaceFilters,
)
from .._resources import _cluster as c
from .._resources import _models as m
from .._resources import _tasks as t
from .._resources._base import Resource, SessionLike
from .._resources._cluster import Trigger
from .._resources._inputs import require
from .._resources._relations import SettableToOne, ToMany, ToOne
from .._resources._unsaved import New, S
from .._resources._unsaved import saved as _saved
from .._resources._values import ExperimentConfig
from .._state._session import DefaultSession, SessionBase
from .._wire import ExperimentState, LogLevel, TaskState, TrialState, WebhookMode, WebhookType
from ._drivers import Transport

__all__ = [
    "Agent",
    "AgentQuery",
    "Checkpoint",
    "CheckpointQuery",
    "Command",
    "CommandQuery",
    "Experiment",
    "ExperimentQuery",
    "Job",
    "JobQuery",
    "MetricsStream",
    "Model",
    "ModelQuery",
    "ModelVersion",
    "ModelVersionQuery",
    "Notebook",
    "NotebookQuery",
    "ProfilerStream",
    "Project",
    "ProjectQuery",
    "Query",
    "ResourcePool",
    "ResourcePoolQuery",
    "Session",
    "Shell",
    "ShellQuery",
    "Task",
    "TaskQuery",
    "Template",
    "TemplateQuery",
    "Tensorboard",
    "TensorboardQuery",
    "Trial",
    "TrialQuery",
    "User",
    "UserQuery",
    "Webhook",
    "WebhookQuery",
    "Workspace",
    "WorkspaceQuery",
    "connect",
    "default_session",
    "set_default_session",
]

R = TypeVar("R", bound=Resource)
P = TypeVar("P", bound=Resource)
G = TypeVar("G", bound=t.GenericTask)
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

    def _opened(self) -> None:
        _defaults.opened(self)

    def close(self) -> None:
        """Close the connection pool and the disk cache (and stop being the default session)."""
        self.transport.close()
        self.cache.close()
        _defaults.closed(self)

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
    @overload
    def query(self, resource: type[Command]) -> CommandQuery: ...
    @overload
    def query(self, resource: type[Shell]) -> ShellQuery: ...
    @overload
    def query(self, resource: type[Notebook]) -> NotebookQuery: ...
    @overload
    def query(self, resource: type[Tensorboard]) -> TensorboardQuery: ...
    @overload
    def query(self, resource: type[Template]) -> TemplateQuery: ...
    @overload
    def query(self, resource: type[Job]) -> JobQuery: ...
    @overload
    def query(self, resource: type[Task]) -> TaskQuery: ...
    @overload
    def query(self, resource: type[ResourcePool]) -> ResourcePoolQuery: ...
    @overload
    def query(self, resource: type[Agent]) -> AgentQuery: ...
    @overload
    def query(self, resource: type[Webhook]) -> WebhookQuery: ...

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
        cache: bool = True, progress: bool | None = None,
    ) -> MetricsStream:  # fmt: skip
        """The reports of ``group`` for many trials, read in one streamed request.

        ``trials`` is a list of trials or trial ids, or a trial query (run when the stream is
        read). Reports of finished trials come from the disk cache when there (``cache=False``
        skips it). The profiler groups (``gpu``, ``cpu``, ``memory``, ``disk``, ``network``),
        which GetMetrics never returns, are rebuilt from the profiler routes, trial by trial
        (one request for the series, then one stream per series), one report per time in the
        harness's shape ``{agent id: {name: value}}`` (``gpu``: ``{agent id: {GPU uuid: {name:
        value}}}``) with ``step`` None; they are not cached. ``progress``: a bar counting the
        trials read (None: the session's option, else only with tqdm on a terminal or in a
        notebook; True: always; False: never).
        """
        return MetricsStream(self, trials, group, cache=self._use_cache(cache), progress=progress)

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

    def queue_stats(self, pools: Iterable[str] | None = None) -> dict[str, QueueStats]:
        """Queued and scheduled jobs by resource pool (``GetJobQueueStats``; every pool unless
        ``pools`` names some)."""
        return self.transport.run(queue_stats(pools))

    def master_info(self) -> MasterInfo:
        """The master's version, cluster id and name, features and cluster message
        (``GetMaster``)."""
        return self.transport.run(master_info())

    def master_config(self) -> dict[str, Any]:
        """The master's configuration as the master prints it (``GetMasterConfig``; admins
        only: others get the master's 403 as ``Forbidden``)."""
        return self.transport.run(master_config())

    def master_logs(
        self, *, follow: bool = False, limit: int | None = None, offset: int | None = None
    ) -> Iterator[MasterLogEntry]:
        """The master's own log lines (``MasterLogs``): ``offset`` skips that many (counted
        from the end when negative), ``limit`` keeps that many, ``follow`` waits for new ones
        until the limit or until you stop iterating."""
        reader = master_log_reader(follow=follow, limit=limit, offset=offset)
        return self.transport.iterate(reader(self.transport))

    def cluster_message(self) -> ClusterMessage | None:
        """The cluster-wide message, None when there is none (admins only)."""
        return self.transport.run(cluster_message())

    def set_cluster_message(
        self,
        message: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        duration: timedelta | str | None = None,
    ) -> None:
        """Show ``message`` cluster-wide from ``start`` (now by default) until ``end``, or for
        ``duration`` (a timedelta or a Go duration such as ``"90m"``), or with no end (admins
        only; it replaces the current one)."""
        op = set_cluster_message(message, start=start, end=end, duration=duration)
        self.transport.run(op)

    def clear_cluster_message(self) -> None:
        """Remove the cluster-wide message (admins only)."""
        self.transport.run(clear_cluster_message())

    def logout(self) -> None:
        """End this session's login on the master (``POST /api/v1/auth/logout``) and drop its
        token from the det CLI's token cache, as ``det user logout`` does. A later request
        logs in again if the session has a password; otherwise it raises ``Unauthenticated``."""
        self.transport.run(log_out(self))

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


# The default session and the open sessions of this API (the rule: DefaultSession).
_defaults: DefaultSession[Session] = DefaultSession("detorm", lambda: Session())


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

    The first session opened (by ``connect()`` or ``Session(...)``) becomes the default session
    while there is none (see :func:`default_session`). ``timeout`` (seconds) bounds each
    call as a whole, retries and their waits included (see :class:`Session`).
    """
    session = Session(
        master, user=user, password=password, token=token, verify=verify, timeout=timeout
    )
    return session  # the default if there was none (Session._opened)


def default_session() -> Session:
    """The default session, used by ``Experiment.query()`` and friends without a session.

    It is the first session opened (``connect()`` or ``Session(...)``) while there was none;
    closing it forgets it. With no default and no session open, one is connected from the
    environment (``DET_MASTER``...). With no default while sessions are open, raises
    :class:`~detorm.errors.ConfigurationError` naming them: pass ``session=`` or call
    :func:`set_default_session`, rather than silently reading another master."""
    return _defaults.get()


def set_default_session(session: Session | None) -> None:
    """Make ``session`` the default session (None: forget the current one)."""
    if session is not None:
        require("session", session, Session, "a detorm.Session or None")
    _defaults.set(session)


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
    def archive(self) -> BulkResult[int]:
        """Archive every match (terminal experiments only, as on the master)."""
        return self._run(bulk_action(self, "archive"))

    def unarchive(self) -> BulkResult[int]:
        """Unarchive every match."""
        return self._run(bulk_action(self, "unarchive"))

    def pause(self) -> BulkResult[int]:
        """Pause every active match."""
        return self._run(bulk_action(self, "pause"))

    def activate(self) -> BulkResult[int]:
        """Activate every paused match."""
        return self._run(bulk_action(self, "activate"))

    def cancel(self) -> BulkResult[int]:
        """Cancel every match that has not ended (its trials stop after a checkpoint)."""
        return self._run(bulk_action(self, "cancel"))

    def kill(self) -> BulkResult[int]:
        """Kill every match that has not ended (its trials stop at once)."""
        return self._run(bulk_action(self, "kill"))

    def delete(self) -> BulkResult[int]:
        """Delete every match (terminal experiments; the master finishes deleting later)."""
        return self._run(bulk_action(self, "delete"))

    def move_to(self, project: m.Project | int) -> BulkResult[int]:
        """Move every match to ``project`` (one request)."""
        destination = project.id if isinstance(project, m.Project) else project
        return self._run(bulk_action(self, "move", destination))


class TrialQuery(TrialFilters["Trial"], Query["Trial"]):
    # Bulk actions through the runs API: one request per project holding matches (the master
    # scopes each to one project), with the query's filter when the runs filter can express it
    # exactly, else with the ids read. Each returns per-id results.
    def kill(self) -> BulkResult[int]:
        """Kill every match (a trial that already ended counts as done, as on the master)."""
        return self._run(run_action(self, "kill"))

    def pause(self) -> BulkResult[int]:
        """Pause the experiment of every match: the master pauses single-trial experiments
        only (a trial of a multi-trial experiment fails, saying so)."""
        return self._run(run_action(self, "pause"))

    def resume(self) -> BulkResult[int]:
        """Activate the experiment of every match (single-trial experiments, as ``pause``)."""
        return self._run(run_action(self, "resume"))

    def archive(self) -> BulkResult[int]:
        """Archive every match (trials that ended, of experiments that are not archived)."""
        return self._run(run_action(self, "archive"))

    def unarchive(self) -> BulkResult[int]:
        """Unarchive every match."""
        return self._run(run_action(self, "unarchive"))

    def delete(self) -> BulkResult[int]:
        """Delete every match that ended, with its logs and metrics (its experiment stays)."""
        return self._run(run_action(self, "delete"))

    def move_to(
        self, project: m.Project | int, *, skip_multitrial: bool = False
    ) -> BulkResult[int]:
        """Move every match to ``project``. The master moves a trial by moving its experiment,
        with all its trials (every one is in the results); ``skip_multitrial`` leaves the
        trials of multi-trial experiments where they are (failed, saying so)."""
        destination = project.id if isinstance(project, m.Project) else project
        op = run_action(self, "move", destination, skip_multitrial=skip_multitrial)
        return self._run(op)


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


class _TaskQuery(Query[R]):
    def kill(self) -> BulkResult[str]:
        """Kill every match: one request per task (the master has no bulk kill for these),
        ``concurrency`` at a time; per-id results (a task that already ended says so)."""
        return self._run(kill_all(self))


class CommandQuery(CommandFilters["Command"], _TaskQuery["Command"]):
    pass


class ShellQuery(ShellFilters["Shell"], _TaskQuery["Shell"]):
    pass


class NotebookQuery(NotebookFilters["Notebook"], _TaskQuery["Notebook"]):
    pass


class TensorboardQuery(TensorboardFilters["Tensorboard"], _TaskQuery["Tensorboard"]):
    pass


class TemplateQuery(TemplateFilters["Template"], Query["Template"]):
    pass


class JobQuery(JobFilters["Job"], Query["Job"]):
    pass


class TaskQuery(TaskFilters["Task"], Query["Task"]):
    pass


class ResourcePoolQuery(ResourcePoolFilters["ResourcePool"], Query["ResourcePool"]):
    pass


class WebhookQuery(WebhookFilters["Webhook"], Query["Webhook"]):
    pass


class AgentQuery(AgentFilters["Agent"], Query["Agent"]):
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


class _Stream(RecordReader[T]):
    """Rows read lazily when iterated (again on each iteration), or all at once as records."""

    @property
    def _transport(self) -> Transport:
        assert isinstance(self._session, Session)
        return self._session.transport

    def __iter__(self) -> Iterator[T]:
        return self._transport.iterate(self._rows())

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row (the class says which columns)."""
        return self._transport.run(self._records())

    def to_pandas(self) -> Any:
        """A pandas DataFrame of :meth:`to_records` (needs pandas)."""
        return to_pandas(self.to_records())

    def to_polars(self) -> Any:
        """A polars DataFrame of :meth:`to_records` (needs polars)."""
        return to_polars(self.to_records())


class MetricsStream(MetricsReader, _Stream[MetricReport]):
    """The reports of a metric group for some trials; iterate it (lazily, line by line of the
    stream). Iterating again reads again (from the disk cache for finished trials).

    ``to_records()``: one dict per report: trial_id, trial_run_id, step, time, then the metric
    values. A profiler group's report gives one dict per agent (and GPU): ..., time, agent_id,
    gpu_uuid ("" when not per GPU), then that agent's (GPU's) values."""


class ProfilerStream(ProfilerReader, _Stream[ProfilerSample]):
    """A trial's profiler samples; iterate it (lazily, series after series, each streamed).
    Iterating again reads again.

    ``to_records()``: one dict per sample: trial_id, group, name, agent_id, gpu_uuid, time,
    value, batch."""


class User(_Sync, m.User):
    @classmethod
    def query(cls, session: Session | None = None) -> UserQuery:
        """All users (``GET /api/v1/users``)."""
        return UserQuery(cls, session)

    @classmethod
    def create(
        cls,
        username: str,
        *,
        password: str | None = None,
        admin: bool = False,
        active: bool = True,
        display_name: str = "",
        remote: bool = False,
        session: Session | None = None,
    ) -> User:
        """A new user, now (``PostUser``; admins only). The password is sent once and never
        kept, logged or shown."""
        session = session or default_session()
        op = cr.create_user(
            session, session._class_of(cls), username, password=password, admin=admin,
            active=active, display_name=display_name, remote=remote,
        )  # fmt: skip
        return session.transport.run(op)

    def set_password(self, password: str) -> None:
        """Set this user's password now (``SetUserPassword``; the user's own, or any as an
        admin). The master ends the user's other sessions."""
        self.session.transport.run(cr.set_password(self.session, self, password))


class Workspace(_Sync, m.Workspace[S]):
    # Declared here too: pydantic's mypy plugin would type a constructor taking every field.
    def __init__(
        self: Workspace[New],
        *,
        name: str,
        checkpoint_storage_config: dict[str, Any] | None = None,
        default_compute_pool: str = "",
        default_aux_pool: str = "",
    ) -> None:
        """A new workspace: ``session.add(ws)``, then ``session.commit()`` creates it."""
        m.Workspace.__init__(
            self, name=name, checkpoint_storage_config=checkpoint_storage_config,
            default_compute_pool=default_compute_pool, default_aux_pool=default_aux_pool,
        )  # fmt: skip

    @classmethod
    def query(cls, session: Session | None = None) -> WorkspaceQuery:
        """A query of every workspace the user may see, in ``session`` (else the default session)."""
        return WorkspaceQuery(_saved(cls), session)

    projects = ToMany(lambda s: Project.query(_sync(s)), "workspace_id")
    """This workspace's projects (a query: nothing is sent until it is iterated)."""
    models = ToMany(lambda s: Model.query(_sync(s)), "workspace_id")
    """The models registered in this workspace (a query)."""
    commands = ToMany(lambda s: Command.query(_sync(s)), "workspace_id")
    """This workspace's commands (a query)."""
    shells = ToMany(lambda s: Shell.query(_sync(s)), "workspace_id")
    """This workspace's shells (a query)."""
    notebooks = ToMany(lambda s: Notebook.query(_sync(s)), "workspace_id")
    """This workspace's notebooks (a query)."""
    tensorboards = ToMany(lambda s: Tensorboard.query(_sync(s)), "workspace_id")
    """This workspace's TensorBoards (a query)."""

    @classmethod
    def create(
        cls,
        name: str,
        *,
        checkpoint_storage_config: Mapping[str, Any] | None = None,
        default_compute_pool: str | None = None,
        default_aux_pool: str | None = None,
        session: Session | None = None,
    ) -> Workspace:
        """A new workspace, now (``PostWorkspace``; a name another workspace has is refused
        with :class:`~detorm.errors.Conflict`)."""
        session = session or default_session()
        op = cr.create_workspace(
            session, session._class_of(_saved(cls)), name,
            checkpoint_storage_config=checkpoint_storage_config,
            default_compute_pool=default_compute_pool, default_aux_pool=default_aux_pool,
        )  # fmt: skip
        return session.transport.run(op)

    def delete(self: Workspace) -> None:
        """Delete this workspace now, with its projects and their experiments
        (``DeleteWorkspace``; waits while the master deletes them in the background). The
        master refuses a workspace that holds models."""
        self.session.transport.run(cr.delete_workspace(self.session, self))


class Project(_Sync, m.Project[S]):
    # Declared here too: pydantic's mypy plugin would type a constructor taking every field.
    def __init__(
        self: Project[New],
        *,
        name: str,
        workspace: m.Workspace[Any] | int,
        description: str = "",
        key: str | None = None,
    ) -> None:
        """A new project in ``workspace`` (existing, its id, or new: created first); ``session.add``
        then ``session.commit()`` creates it (without a key the master makes one)."""
        m.Project.__init__(self, name=name, workspace=workspace, description=description, key=key)

    @classmethod
    def query(cls, session: Session | None = None) -> ProjectQuery:
        """A query of every project the user may see, in ``session`` (else the default session)."""
        return ProjectQuery(_saved(cls), session)

    workspace = SettableToOne(lambda: Workspace, "workspace_id")
    """The workspace holding this project (identity map; fetched once). Assign one to move it."""

    experiments = ToMany(lambda s: Experiment.query(_sync(s)), "project_id")
    """This project's experiments (a query)."""

    @classmethod
    def create(
        cls,
        workspace: Workspace | int,
        name: str,
        *,
        description: str = "",
        key: str | None = None,
        session: Session | None = None,
    ) -> Project:
        """A new project in ``workspace``, now (``PostProject``; a name taken in the workspace,
        or a key taken anywhere, is refused with :class:`~detorm.errors.Conflict`)."""
        session = session or _session_of(workspace)
        op = cr.create_project(
            session,
            session._class_of(_saved(cls)),
            workspace,
            name,
            description=description,
            key=key,
        )
        return session.transport.run(op)

    def delete(self: Project) -> None:
        """Delete this project and its experiments now (``DeleteProject``; waits while the
        master deletes them in the background)."""
        self.session.transport.run(cr.delete_project(self.session, self))


class Experiment(_Sync, m.Experiment):
    """An experiment. ``tags`` are its labels (Determined's wire name)."""

    @classmethod
    def query(cls, session: Session | None = None) -> ExperimentQuery:
        """A query of every experiment the user may see, in ``session`` (else the default session)."""
        return ExperimentQuery(cls, session)

    project = SettableToOne(lambda: Project, "project_id")
    """The experiment's project (identity map; fetched once). Assign one to move it."""

    trials = ToMany(lambda s: Trial.query(_sync(s)), "experiment_id")
    """The experiment's trials (a query)."""

    checkpoints = ToMany(lambda s: Checkpoint.query(_sync(s)), "experiment_id")
    """The experiment's checkpoints (a query)."""

    # Actions are sent at once (the unit of work is for attribute edits); the object follows.
    def archive(self) -> None:
        """Archive this experiment now (ArchiveExperiment; terminal experiments only)."""
        self.session.transport.run(experiment_action(self.session, self, "archive"))

    def unarchive(self) -> None:
        """Unarchive this experiment now (UnarchiveExperiment)."""
        self.session.transport.run(experiment_action(self.session, self, "unarchive"))

    def pause(self) -> None:
        """Pause this experiment now (PauseExperiment)."""
        self.session.transport.run(experiment_action(self.session, self, "pause"))

    def activate(self) -> None:
        """Activate this experiment now (ActivateExperiment)."""
        self.session.transport.run(experiment_action(self.session, self, "activate"))

    def cancel(self) -> None:
        """Cancel this experiment now: its trials stop after a checkpoint (CancelExperiment)."""
        self.session.transport.run(experiment_action(self.session, self, "cancel"))

    def kill(self) -> None:
        """Kill this experiment now: its trials stop at once (KillExperiment)."""
        self.session.transport.run(experiment_action(self.session, self, "kill"))

    def delete(self) -> None:
        """Delete this experiment now (DeleteExperiment; the master finishes in the background)."""
        self.session.transport.run(experiment_action(self.session, self, "delete"))

    def move_to(self, project: m.Project | int) -> None:
        """Move this experiment to ``project`` now."""
        destination = project.id if isinstance(project, m.Project) else project
        self.session.transport.run(experiment_action(self.session, self, "move", destination))

    def metric_names(self) -> dict[str, list[str]]:
        """The metric names the experiment's trials reported, by group (``ExpMetricNames``:
        one message of its stream; profiler groups are not among them)."""
        return self.session.transport.run(metric_names(self.session, self.id))

    @classmethod
    def create(
        cls,
        config: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str],
        model_dir: str | os.PathLike[str] | None = None,
        *,
        project: Project | int | None = None,
        template: Template | str | None = None,
        activate: bool = True,
        includes: Iterable[str | os.PathLike[str]] = (),
        session: Session | None = None,
    ) -> Experiment:
        """Submit a new experiment (``CreateExperiment``), as ``det experiment create config
        model_dir`` does; returns it fully loaded (one request).

        ``config`` is a dict (an :class:`~detorm.ExperimentConfig`) or the path of a YAML or
        JSON file, sent as its text (the master parses it). ``model_dir`` is uploaded as the
        det CLI uploads it: ``.detignore`` and its defaults, at most 95 MiB
        (:class:`~detorm.errors.ContextError` past it, or for a missing directory), and
        ``includes`` adds files or directories under their names. ``project`` (a Project or
        its id) is where it goes (else the config's ``workspace``/``project``, else
        Uncategorized); ``template`` a Template or its name, merged under the config;
        ``activate=False`` leaves it PAUSED.

        A config the master refuses raises :class:`~detorm.errors.InvalidConfig`, whose
        ``errors`` list its messages. The master's launch warnings (more slots asked for than
        the cluster has) are issued as :class:`~detorm.errors.LaunchWarning` warnings.
        """
        session = session or default_session()
        op = xp.create_experiment(
            session, session._class_of(cls), config, model_dir, includes=includes,
            project=project, template=template, activate=activate,
        )  # fmt: skip
        return session.transport.run(op)

    @classmethod
    def validate_config(
        cls,
        config: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str],
        *,
        project: Project | int | None = None,
        template: Template | str | None = None,
        session: Session | None = None,
    ) -> list[str]:
        """The master's objections to ``config`` (a dict or a file path, as for
        :meth:`create`), merged with ``template``: one message per problem, empty when the
        master would accept it. Nothing is created (``CreateExperiment`` with
        ``validateOnly``; the model definition is not needed)."""
        session = session or default_session()
        op = xp.validate_config(config, project=project, template=template)
        return session.transport.run(op)

    def fork(
        self,
        config_overrides: Mapping[str, Any] | None = None,
        *,
        project: Project | int | None = None,
        activate: bool = True,
    ) -> Experiment:
        """A new experiment with this one's code and config, ``config_overrides`` merged in
        (objects key by key; other values replaced), as the WebUI's fork creates it
        (``CreateExperiment`` with ``parentId``: the master copies the code, so a fork cannot
        change it). It goes to ``project``, else to this experiment's project. This
        experiment is read again first (two requests). Returns the fork, fully loaded."""
        op = xp.fork_experiment(
            self.session, self, config_overrides, project=project, activate=activate
        )
        return self.session.transport.run(op)

    def continue_training(
        self,
        config_overrides: Mapping[str, Any] | None = None,
        *,
        max_length: int | Mapping[str, int] | None = None,
    ) -> None:
        """Continue this ended experiment (``ContinueExperiment``, as ``det experiment
        continue``): a single-trial experiment continues its trial, with ``config_overrides``
        merged into its config and ``searcher.max_length`` set to ``max_length`` (an int, or
        ``{"batches": n}``, ``{"epochs": n}``, ``{"records": n}``); a grid or random search
        resumes its unfinished trials (no overrides). The experiment is read again first;
        :class:`~detorm.errors.InvalidState` when the master would refuse (it is not
        COMPLETED, CANCELED or ERROR; another searcher; overrides of a search). Afterwards
        the object holds the master's answer (ACTIVE again)."""
        op = xp.continue_training(self.session, self, config_overrides, max_length)
        self.session.transport.run(op)

    def wait(
        self, timeout: float | None = None, *, interval: float | None = None
    ) -> ExperimentState:
        """Poll until the experiment is COMPLETED, CANCELED, ERROR or DELETED and return that
        state: :class:`~detorm.errors.WaitTimeout` after ``timeout`` seconds,
        :class:`~detorm.errors.InvalidState` if it is PAUSED (it would never end).

        Each poll is one GET. Polls back off from 0.25 s to one every 5 s (12 requests a
        minute, about 730 an hour) unless ``interval`` fixes the period (``60 / interval``
        requests a minute)."""
        op = xp.wait_experiment(self.session, self, timeout, interval)
        return self.session.transport.run(op)

    def await_first_trial(
        self, timeout: float | None = None, *, interval: float | None = None
    ) -> Trial:
        """Poll until the master has created this experiment's first trial, and return it,
        fully loaded: :class:`~detorm.errors.WaitTimeout` after ``timeout`` seconds,
        :class:`~detorm.errors.InvalidState` if the experiment ends or is PAUSED without one.
        Polls as :meth:`wait` does (one GET of the experiment each), then one GET of the
        trial."""
        op = xp.await_first_trial(self.session, self, Trial, timeout, interval)
        return self.session.transport.run(op)

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

    def download_tensorboard(
        self,
        path: str | os.PathLike[str],
        *,
        trials: Iterable[Trial | int] | None = None,
        progress: bool | None = None,
        max_size: int = TENSORBOARD_MAX_SIZE,
    ) -> Path:
        """Copy the TensorBoard files of this experiment's trials (all, or ``trials``) into
        ``path``, as ``<path>/trial/<trial id>/...`` (see ``detorm._ops._tensorboard``).

        Read from the experiment's checkpoint storage: the master 0.38.1 has no route that
        serves them. ``shared_fs`` storage must be mounted here; S3, GCS and Azure need the
        ``detorm[s3]``, ``[gcs]`` or ``[azure]`` extra. At most ``max_size`` bytes (default
        64 GiB); every name and link is checked to stay inside ``path``. ``progress``: a bar
        of the bytes copied (None: the session's ``progress`` option, else only with tqdm on a
        terminal or in a notebook; True: always; False: never).
        """
        op = download_tensorboard(
            self.session, self, path, trials=trials, progress=progress, max_size=max_size
        )
        return self.session.transport.run(op)

    def delete_tensorboard_files(self) -> None:
        """Delete the TensorBoard files of this experiment (DeleteTensorboardFiles: the master
        starts a task that removes them from the checkpoint storage, without waiting for it)."""
        self.session.transport.run(delete_tensorboard_files(self.session, self))


class _Logs(_Sync):
    """A trial's or a task's logs (a trial by its int id, a task by its str id: TrialLogs is
    TaskLogs on the master)."""

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
        """The log entries, filtered on the master; ``follow`` waits for new ones (until the
        trial or task ends).

        ``search`` is a substring (case-insensitive) or, with ``regex=True``, a pattern;
        ``levels`` the levels to keep; ``since``/``until`` bound the timestamps; ``limit``
        keeps the first entries and ``tail`` the last ones.
        """
        reader = log_reader(
            follow=follow, search=search, regex=regex, levels=levels, since=since, until=until,
            limit=limit, tail=tail,
        )  # fmt: skip
        return self.session.transport.iterate(reader(self.session, self.pk))


class Trial(_Logs, m.Trial):
    @classmethod
    def query(cls, session: Session | None = None) -> TrialQuery:
        """Trials of the whole cluster (the runs search); ``exp.trials`` for one experiment."""
        return TrialQuery(cls, session)

    experiment = ToOne(lambda: Experiment, "experiment_id")
    """The trial's experiment (identity map; fetched once)."""

    checkpoints = ToMany(lambda s: Checkpoint.query(_sync(s)), "trial_id")
    """The trial's checkpoints (a query)."""

    task = ToOne(lambda: Task, "task_id")
    """The trial's current task: its allocations and times (identity map; fetched once)."""

    @property
    def tasks(self) -> TaskQuery:
        """Every task the trial ran (one per continuation), oldest first: a query, one GetTask
        per task when iterated."""
        return Task.query(self.session).filter(id__in=list(self.task_ids))

    def continue_training(
        self,
        config_overrides: Mapping[str, Any] | None = None,
        *,
        max_length: int | Mapping[str, int] | None = None,
    ) -> None:
        """Continue this trial (``ContinueExperiment`` of its experiment): the master continues
        the trial of a single-trial experiment only, once the experiment is COMPLETED,
        CANCELED or ERROR (:class:`~detorm.errors.InvalidState` otherwise; for a trial of a
        search, ``experiment.fork()`` starts a new one). ``config_overrides`` and
        ``max_length`` as for :meth:`Experiment.continue_training`. The trial and its
        experiment are read again afterwards."""
        op = xp.continue_training(self.session, self, config_overrides, max_length)
        self.session.transport.run(op)

    def wait(self, timeout: float | None = None, *, interval: float | None = None) -> TrialState:
        """Poll until the trial is COMPLETED, CANCELED or ERROR and return that state
        (:class:`~detorm.errors.WaitTimeout` after ``timeout`` seconds). Polls as
        :meth:`Experiment.wait` does: one GET of the trial each, from every 0.25 s to every
        5 s (12 requests a minute) unless ``interval`` fixes the period."""
        return self.session.transport.run(xp.wait_trial(self.session, self, timeout, interval))

    def kill(self) -> None:
        """Kill this trial now (``KillTrial``); the object is read again. The master refuses a
        trial that already ended: NotFound when its experiment ended too, else ServerError
        ("trial not found")."""
        self.session.transport.run(kill_trial(self.session, self))

    def metrics(
        self, group: str = "validation", *, cache: bool = True, progress: bool | None = None
    ) -> MetricsStream:
        """This trial's reports of ``group`` (``"training"``, ``"validation"``, a custom
        group, or a profiler group: ``"gpu"``, ``"cpu"``, ``"memory"``, ``"disk"``,
        ``"network"``, see :meth:`Session.metrics`).

        Lazy: iterate it, or call ``to_pandas()``. Finished trials are cached on disk (not
        the profiler groups). ``progress``: see :meth:`Session.metrics`.
        """
        return self.session.metrics([self], group, cache=cache, progress=progress)

    def metric_groups(self) -> dict[str, list[str]]:
        """The metric groups this trial reported and the names in each (``{"training":
        ["loss"], "validation": [...], "inference": [...]}``), from its summary metrics, read
        again. Master 0.38.1 has no per-trial metric-names route: ``ExpMetricNames`` reads the
        same summaries for a whole experiment (``experiment.metric_names()``). Profiler groups
        have no summary: see :meth:`profiler_series`."""
        return self.session.transport.run(metric_groups(self.session, self))

    def profiler_series(self) -> list[ProfilerSeries]:
        """The series of this trial's profiler (system) metrics: name, agent, GPU uuid
        (``GetTrialProfilerAvailableSeries``; per-mount disk usage is not served)."""
        return self.session.transport.run(series_of(self.session, self.id))

    def profiler_metrics(
        self, names: Iterable[str] | str | None = None, *,
        groups: Iterable[str] | str | None = None,
    ) -> ProfilerStream:  # fmt: skip
        """This trial's profiler samples (``gpu_util``, ``cpu_util_simple``, ``memory_free``...),
        of the series named (every one by default) in the ``groups`` asked (``gpu``, ``cpu``,
        ``memory``, ``disk``, ``network``), one sample per series and report. Lazy: iterate
        it, or call ``to_pandas()``; one request for the series, then one stream per series.
        The master serves these only through its profiler routes (GetMetrics never returns
        them: they have no step); ``trial.metrics("gpu")`` rebuilds whole reports from them."""
        return ProfilerStream(self.session, self.id, names=names, groups=groups)


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
        progress: bool | None = None,
        cache: bool = True,
        max_size: int = CHECKPOINT_MAX_SIZE,
    ) -> Path:
        """Download the checkpoint's files into ``path`` (see ``detorm._ops._download``): directly
        from shared storage when this machine can read it, else through the master (a
        COMPLETED checkpoint is then kept in the disk cache and downloaded only once).

        The files must be exactly those the checkpoint's ``resources`` list; ``max_size``
        (default 64 GiB) caps a checkpoint that has no ``resources``. ``progress``: a bar of the
        bytes read (None: the session's ``progress`` option, else only with tqdm on a terminal
        or in a notebook; True: always; False: never)."""
        op = download_checkpoint(
            self.session, self, path, mode=mode, progress=progress, cache=cache, max_size=max_size
        )
        return self.session.transport.run(op)


class Model(_Sync, m.Model[S]):
    # Declared here too: pydantic's mypy plugin would type a constructor taking every field.
    def __init__(
        self: Model[New],
        *,
        name: str,
        workspace: m.Workspace[Any] | int | None = None,
        description: str = "",
        notes: str = "",
        labels: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """A new model (in ``workspace``, else Uncategorized); ``session.add`` then
        ``session.commit()`` creates it."""
        m.Model.__init__(
            self, name=name, workspace=workspace, description=description, notes=notes, labels=labels,
            metadata=metadata,
        )  # fmt: skip

    @classmethod
    def query(cls, session: Session | None = None) -> ModelQuery:
        """Registered models (``GET /api/v1/models``)."""
        return ModelQuery(_saved(cls), session)

    workspace = SettableToOne(lambda: Workspace, "workspace_id")
    """The model's workspace (identity map; fetched once). Assign one to move the model."""

    versions = ToMany(lambda s: ModelVersion.query(_sync(s)), "model_id")
    """The model's versions (a query)."""

    @classmethod
    def create(
        cls,
        name: str,
        *,
        workspace: Workspace | int | None = None,
        description: str = "",
        notes: str = "",
        labels: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        session: Session | None = None,
    ) -> Model:
        """A new registered model, now (``PostModel``; in the Uncategorized workspace unless
        ``workspace``; a name any model has is refused with :class:`~detorm.errors.Conflict`)."""
        session = session or _session_of(workspace)
        op = cr.create_model(
            session, session._class_of(_saved(cls)), name, workspace=workspace,
            description=description, notes=notes, labels=labels, metadata=metadata,
        )  # fmt: skip
        return session.transport.run(op)

    def register_version(
        self: Model,
        checkpoint: Checkpoint | str,
        *,
        name: str = "",
        comment: str = "",
        notes: str = "",
        labels: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register a COMPLETED checkpoint (or its uuid) as this model's next version, now
        (``PostModelVersion``)."""
        session = self.session
        op = cr.register_version(
            session, session._class_of(ModelVersion), self, checkpoint, name=name,
            comment=comment, notes=notes, labels=labels, metadata=metadata,
        )  # fmt: skip
        return session.transport.run(op)

    def delete(self: Model) -> None:
        """Delete this model and its versions now (``DeleteModel``; the checkpoints stay)."""
        self.session.transport.run(cr.delete_model(self.session, self))


class ModelVersion(_Sync, m.ModelVersion):
    @classmethod
    def query(cls, session: Session | None = None) -> ModelVersionQuery:
        """Model versions; the master lists them per model (``model.versions``)."""
        return ModelVersionQuery(cls, session)

    model = ToOne(lambda: Model, "model_id")
    """The model this version belongs to (identity map; fetched once)."""
    checkpoint = ToOne(lambda: Checkpoint, "checkpoint_uuid")
    """The registered checkpoint (identity map; fetched once)."""

    def delete(self) -> None:
        """Delete this version now (``DeleteModelVersion``; the checkpoint stays)."""
        self.session.transport.run(cr.delete_model_version(self.session, self))


class Task(_Logs, t.Task):
    """Task information (``GET /api/v1/tasks/{id}``): ``session.get(Task, task_id)``,
    ``trial.task``, ``trial.tasks``, ``command.task``."""

    @classmethod
    def query(cls, session: Session | None = None) -> TaskQuery:
        """The tasks queued or running now (``GET /api/v1/tasks``, then one GetTask per task);
        filtered on ``id``, those tasks whatever their state."""
        return TaskQuery(cls, session)


class _TaskControl(_Logs, t.GenericTask):
    """What commands, shells, notebooks and TensorBoards can do (launches are per type)."""

    workspace = ToOne(lambda: Workspace, "workspace_id")
    """The workspace the task runs in (identity map; fetched once)."""
    user = ToOne(lambda: User, "user_id")
    """The user who launched it (identity map; fetched once)."""
    task = ToOne(lambda: Task, "id")
    """Its task information: allocations, times (identity map; fetched once)."""
    job = ToOne(lambda: Job, "job_id")
    """Its job in the queue (found in the default pool's queue; fetched once)."""

    def kill(self) -> None:
        """Kill it now; the object takes the state the master answers with."""
        self.session.transport.run(kill_task(self.session, self))

    def wait(self, timeout: float | None = None, *, interval: float | None = None) -> TaskState:
        """Poll until the task is TERMINATED and return that state (``WaitTimeout`` after
        ``timeout`` seconds). Polls back off from 0.25 s to every 5 s unless ``interval``
        fixes the period."""
        return self.session.transport.run(wait_for(self.session, self, timeout, interval))


def _launch(
    cls: type[G],
    session: Session | None,
    query: ExperimentQuery | None = None,
    context: str | os.PathLike[str] | None = None,
    includes: Iterable[str | os.PathLike[str]] = (),
    **arguments: Any,
) -> G:
    session = session or default_session()
    body = launch_body(cls, query=query is not None, **arguments)
    files = launch_context(cls.__name__, context, includes)
    return session.transport.run(launch(session, session._class_of(cls), body, query, files))


class Command(_TaskControl, t.Command):
    @classmethod
    def query(cls, session: Session | None = None) -> CommandQuery:
        """Commands (``GET /api/v1/commands``): running ones, and those ended within 24 h."""
        return CommandQuery(cls, session)

    @classmethod
    def launch(
        cls,
        entrypoint: str | Iterable[str],
        *,
        config: dict[str, Any] | None = None,
        template: Template | str | None = None,
        workspace: Workspace | int | None = None,
        context: str | os.PathLike[str] | None = None,
        includes: Iterable[str | os.PathLike[str]] = (),
        session: Session | None = None,
    ) -> Command:
        """Run ``entrypoint`` (a shell command line, or its argv) on the cluster; ``config``,
        ``template``, ``context`` (a directory uploaded as the det CLI does: ``.detignore``,
        the master's size limit) and ``includes`` as for ``det cmd run -c ... -i ...``.
        Returns the command, fully loaded."""
        return _launch(
            cls, session, context=context, includes=includes, entrypoint=entrypoint,
            config=config, template=template, workspace=workspace,
        )  # fmt: skip


class Shell(_TaskControl, t.Shell):
    @classmethod
    def query(cls, session: Session | None = None) -> ShellQuery:
        """Shells (``GET /api/v1/shells``)."""
        return ShellQuery(cls, session)

    @classmethod
    def launch(
        cls,
        *,
        config: dict[str, Any] | None = None,
        template: Template | str | None = None,
        workspace: Workspace | int | None = None,
        context: str | os.PathLike[str] | None = None,
        includes: Iterable[str | os.PathLike[str]] = (),
        session: Session | None = None,
    ) -> Shell:
        """Start a shell (connect to it with ``det shell open``)."""
        return _launch(
            cls, session, context=context, includes=includes, config=config, template=template,
            workspace=workspace,
        )  # fmt: skip


class Notebook(_TaskControl, t.Notebook):
    @classmethod
    def query(cls, session: Session | None = None) -> NotebookQuery:
        """Notebooks (``GET /api/v1/notebooks``)."""
        return NotebookQuery(cls, session)

    @classmethod
    def launch(
        cls,
        *,
        config: dict[str, Any] | None = None,
        template: Template | str | None = None,
        workspace: Workspace | int | None = None,
        context: str | os.PathLike[str] | None = None,
        includes: Iterable[str | os.PathLike[str]] = (),
        session: Session | None = None,
    ) -> Notebook:
        """Start a Jupyter notebook; open ``url`` once it is RUNNING."""
        return _launch(
            cls, session, context=context, includes=includes, config=config, template=template,
            workspace=workspace,
        )  # fmt: skip

    @property
    def url(self) -> str:
        """Where the notebook answers: the master's proxy address (no request sent)."""
        return proxy_url(self.session, self.service_address)


class Tensorboard(_TaskControl, t.Tensorboard):
    @classmethod
    def query(cls, session: Session | None = None) -> TensorboardQuery:
        """TensorBoards (``GET /api/v1/tensorboards``)."""
        return TensorboardQuery(cls, session)

    @classmethod
    def launch(
        cls,
        *,
        experiments: Iterable[Experiment | int] | None = None,
        trials: Iterable[Trial | int] | None = None,
        query: ExperimentQuery | None = None,
        config: dict[str, Any] | None = None,
        template: Template | str | None = None,
        workspace: Workspace | int | None = None,
        session: Session | None = None,
    ) -> Tensorboard:
        """Start a TensorBoard of ``experiments``, ``trials``, or the experiments ``query``
        matches (sent as the master's ``filters`` when they can express it, else its ids)."""
        return _launch(
            cls, session, query, experiments=experiments, trials=trials, config=config,
            template=template, workspace=workspace,
        )  # fmt: skip

    @property
    def url(self) -> str:
        """Where the TensorBoard answers: the master's proxy address (no request sent)."""
        return proxy_url(self.session, self.service_address)

    @property
    def experiments(self) -> ExperimentQuery:
        """The experiments it shows (a query: nothing is sent until it is iterated)."""
        return Experiment.query(self.session).filter(id__in=list(self.experiment_ids))


def proxy_url(session: SessionBase, service_address: str) -> str:
    """The master's proxy address of a notebook or TensorBoard (both APIs)."""
    return session.master.rstrip("/") + service_address


class Template(_Sync, t.Template):
    @classmethod
    def query(cls, session: Session | None = None) -> TemplateQuery:
        """Templates (``GET /api/v1/templates``)."""
        return TemplateQuery(cls, session)

    @classmethod
    def create(
        cls,
        name: str,
        config: dict[str, Any],
        *,
        workspace: Workspace | int | None = None,
        session: Session | None = None,
    ) -> Template:
        """A new template (``PostTemplate``; the master refuses a name that exists)."""
        session = session or default_session()
        op = create_template(session, session._class_of(cls), name, config, workspace)
        return session.transport.run(op)

    def delete(self) -> None:
        """Delete this template now."""
        self.session.transport.run(delete_template(self.session, self))

    def rename(self, new_name: str) -> None:
        """Rename it now (``PatchTemplateName``): the name is the template's key, so this is not
        an edit the unit of work holds."""
        self.session.transport.run(rename_template(self.session, self, new_name))


class Job(_Sync, t.Job):
    @classmethod
    def query(cls, session: Session | None = None) -> JobQuery:
        """Jobs of a resource pool's queue, in queue order (``GET /api/v1/job-queues-v2``;
        the default pool unless filtered on ``resource_pool``)."""
        return JobQuery(cls, session)

    workspace = ToOne(lambda: Workspace, "workspace_id")
    """The workspace of the job (identity map; fetched once)."""

    def move(self, *, ahead_of: Job | None = None, behind_of: Job | None = None) -> None:
        """Put this job ahead of (or behind) another of its pool: a pending priority edit, sent
        by ``commit()`` with the other queue edits in one ``UpdateJobQueue`` (the master 0.38.1
        refuses the deprecated ``aheadOf``/``behindOf``; the scheduler runs smaller priorities
        first)."""
        self.priority = move_priority(self, ahead_of, behind_of)


class ResourcePool(_Sync, t.ResourcePool):
    @classmethod
    def query(cls, session: Session | None = None) -> ResourcePoolQuery:
        """The cluster's resource pools (``GET /api/v1/resource-pools``)."""
        return ResourcePoolQuery(cls, session)


class Agent(_Sync, t.Agent):
    @classmethod
    def query(cls, session: Session | None = None) -> AgentQuery:
        """The cluster's agents and their slots (``GET /api/v1/agents``)."""
        return AgentQuery(cls, session)


def _session_of(parent: Resource | int | None) -> Session:
    """The session of a parent object given to a create, else the default session."""
    if isinstance(parent, Resource) and isinstance(parent._session, Session):
        return parent._session
    return default_session()


class Webhook(_Sync, c.Webhook):
    @classmethod
    def query(cls, session: Session | None = None) -> WebhookQuery:
        """Every webhook you may see (``GET /api/v1/webhooks``, one answer: filters and order
        are applied here)."""
        return WebhookQuery(cls, session)

    @classmethod
    def create(
        cls,
        url: str,
        *,
        triggers: Iterable[Trigger],
        webhook_type: WebhookType | str = "DEFAULT",
        name: str | None = None,
        workspace: Workspace | int | None = None,
        mode: WebhookMode | str = "WORKSPACE",
        session: Session | None = None,
    ) -> Webhook:
        """A new webhook (``PostWebhook``), created now: the master POSTs to ``url`` when one
        of ``triggers`` fires. ``webhook_type`` ``DEFAULT`` or ``SLACK`` (the payload's
        shape); ``workspace`` limits it to one workspace (default: all); ``mode``
        ``WORKSPACE`` (every experiment there) or ``SPECIFIC`` (experiments whose config
        names it; needed by CUSTOM triggers)."""
        body = webhook_body(
            url, triggers=triggers, webhook_type=webhook_type, name=name, workspace=workspace,
            mode=mode,
        )  # fmt: skip
        session = session or default_session()
        return session.transport.run(create_webhook(session, session._class_of(cls), body))

    def delete(self) -> None:
        """Delete this webhook now."""
        self.session.transport.run(delete_webhook(self.session, self))

    def test(self) -> None:
        """Have the master send a test event to the URL now (``TestWebhook``); a URL that
        cannot be reached or answers an error status raises ``BadRequest``."""
        self.session.transport.run(test_webhook(self))


def _sync(session: SessionLike | None) -> Session | None:
    assert session is None or isinstance(session, Session)
    return session


RESOURCES = (
    User, Workspace, Project, Experiment, Trial, Checkpoint, Model, ModelVersion, Command, Shell,
    Notebook, Tensorboard, Task, Template, Job, ResourcePool, Agent, Webhook,
)  # fmt: skip
Session._classes = {cls.__name__: cls for cls in RESOURCES}
_QUERIES: dict[str, type[Query[Any]]] = {
    "User": UserQuery, "Workspace": WorkspaceQuery, "Project": ProjectQuery,
    "Experiment": ExperimentQuery, "Trial": TrialQuery, "Checkpoint": CheckpointQuery,
    "Model": ModelQuery, "ModelVersion": ModelVersionQuery, "Command": CommandQuery,
    "Shell": ShellQuery, "Notebook": NotebookQuery, "Tensorboard": TensorboardQuery,
    "Template": TemplateQuery, "Job": JobQuery, "Task": TaskQuery,
    "ResourcePool": ResourcePoolQuery, "Agent": AgentQuery, "Webhook": WebhookQuery,
}  # fmt: skip
