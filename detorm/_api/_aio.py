"""The async API (``detorm.aio``): the twin of ``detorm._api._sync``, awaiting the same ops.

Every method is a one-liner over an op of the layers below, run by the async driver
(``AsyncTransport``); the docstrings are the sync API's (copied at import), and
``tests/sdk/test_parity.py`` checks that both APIs offer the same operations. Two differences
follow from the event loop: a session logs in before its first request (a constructor cannot
await), and a to-one relationship that is not loaded raises :class:`~detorm.errors.NotLoaded`
naming ``await session.load(obj, "...")`` instead of fetching inside an attribute read.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from contextlib import asynccontextmanager
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
from ..errors import NotLoaded
from . import _sync
from ._drivers import AsyncTransport

__all__ = [
    "Agent",
    "AsyncAgentQuery",
    "AsyncCheckpointQuery",
    "AsyncCommandQuery",
    "AsyncExperimentQuery",
    "AsyncJobQuery",
    "AsyncMetricsStream",
    "AsyncModelQuery",
    "AsyncModelVersionQuery",
    "AsyncNotebookQuery",
    "AsyncProfilerStream",
    "AsyncProjectQuery",
    "AsyncQuery",
    "AsyncResourcePoolQuery",
    "AsyncSession",
    "AsyncShellQuery",
    "AsyncTaskQuery",
    "AsyncTemplateQuery",
    "AsyncTensorboardQuery",
    "AsyncTrialQuery",
    "AsyncUserQuery",
    "AsyncWebhookQuery",
    "AsyncWorkspaceQuery",
    "Checkpoint",
    "Command",
    "Experiment",
    "Job",
    "Model",
    "ModelVersion",
    "Notebook",
    "Project",
    "ResourcePool",
    "Shell",
    "Task",
    "Template",
    "Tensorboard",
    "Trial",
    "User",
    "Webhook",
    "Workspace",
    "connect",
    "default_session",
    "set_default_session",
]

R = TypeVar("R", bound=Resource)
P = TypeVar("P", bound=Resource)
G = TypeVar("G", bound=t.GenericTask)
T = TypeVar("T")


# --- the session ---------------------------------------------------------------------------------
class AsyncSession(SessionBase):
    """A connection to one Determined master for asyncio code: the twin of
    :class:`detorm.Session` (same arguments, credentials, identity map and unit of work).

    It logs in before its first request (a constructor cannot await); ``async with`` closes it.
    """

    def _open_transport(self, master: str, **options: Any) -> AsyncTransport:
        return AsyncTransport(master, **options)

    def _connected(self) -> None:
        self._http.log_in = self._log_in

    @property
    def transport(self) -> AsyncTransport:
        """The async driver this session sends with."""
        assert isinstance(self._http, AsyncTransport)
        return self._http

    def _opened(self) -> None:
        _defaults.opened(self)

    async def close(self) -> None:
        await self.transport.aclose()
        self.cache.close()
        _defaults.closed(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @overload
    def query(self, resource: type[Experiment]) -> AsyncExperimentQuery: ...
    @overload
    def query(self, resource: type[Trial]) -> AsyncTrialQuery: ...
    @overload
    def query(self, resource: type[Checkpoint]) -> AsyncCheckpointQuery: ...
    @overload
    def query(self, resource: type[Workspace]) -> AsyncWorkspaceQuery: ...
    @overload
    def query(self, resource: type[Project]) -> AsyncProjectQuery: ...
    @overload
    def query(self, resource: type[Model]) -> AsyncModelQuery: ...
    @overload
    def query(self, resource: type[ModelVersion]) -> AsyncModelVersionQuery: ...
    @overload
    def query(self, resource: type[User]) -> AsyncUserQuery: ...
    @overload
    def query(self, resource: type[Command]) -> AsyncCommandQuery: ...
    @overload
    def query(self, resource: type[Shell]) -> AsyncShellQuery: ...
    @overload
    def query(self, resource: type[Notebook]) -> AsyncNotebookQuery: ...
    @overload
    def query(self, resource: type[Tensorboard]) -> AsyncTensorboardQuery: ...
    @overload
    def query(self, resource: type[Template]) -> AsyncTemplateQuery: ...
    @overload
    def query(self, resource: type[Job]) -> AsyncJobQuery: ...
    @overload
    def query(self, resource: type[Task]) -> AsyncTaskQuery: ...
    @overload
    def query(self, resource: type[ResourcePool]) -> AsyncResourcePoolQuery: ...
    @overload
    def query(self, resource: type[Agent]) -> AsyncAgentQuery: ...
    @overload
    def query(self, resource: type[Webhook]) -> AsyncWebhookQuery: ...

    def query(self, resource: type[Resource]) -> AsyncQuery[Any]:
        return self._query(resource)

    def _query(self, resource: type[R]) -> AsyncQuery[R]:
        cls = self._class_of(resource)
        return _QUERIES[cls.__name__](cls, self)

    async def whoami(self) -> User:
        return await self.transport.run(self._whoami(User))

    async def get(self, resource: type[R], key: Any) -> R:
        return await self.transport.run(self._get(resource, key))

    async def resolve(self, resource: type[R], key: Any) -> R:
        return await self.transport.run(self._resolve(resource, key))

    async def load(self, obj: Resource, relation: str) -> Any:
        return await self.transport.run(self._load(obj, relation))

    def metrics(
        self, trials: Iterable[Trial | int] | AsyncTrialQuery, group: str = "validation", *,
        cache: bool = True, progress: bool | None = None,
    ) -> AsyncMetricsStream:  # fmt: skip
        return AsyncMetricsStream(
            self, trials, group, cache=self._use_cache(cache), progress=progress
        )

    async def logs(
        self,
        trials: Iterable[Trial | int] | AsyncTrialQuery,
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
        reader = log_reader(
            follow=follow, search=search, regex=regex, levels=levels, since=since, until=until,
            limit=limit, tail=tail,
        )  # fmt: skip
        return await self.transport.run(self._logs_of_many(trials, reader))

    async def summaries(
        self, trials: Iterable[Trial | int] | AsyncTrialQuery, *, cache: bool = True
    ) -> dict[int, TrialSummary]:
        return await self.transport.run(self._summaries(trials, cache))

    async def queue_stats(self, pools: Iterable[str] | None = None) -> dict[str, QueueStats]:
        return await self.transport.run(queue_stats(pools))

    async def master_info(self) -> MasterInfo:
        return await self.transport.run(master_info())

    async def master_config(self) -> dict[str, Any]:
        return await self.transport.run(master_config())

    def master_logs(
        self, *, follow: bool = False, limit: int | None = None, offset: int | None = None
    ) -> AsyncIterator[MasterLogEntry]:
        reader = master_log_reader(follow=follow, limit=limit, offset=offset)
        return self.transport.iterate(reader(self.transport))

    async def cluster_message(self) -> ClusterMessage | None:
        return await self.transport.run(cluster_message())

    async def set_cluster_message(
        self,
        message: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        duration: timedelta | str | None = None,
    ) -> None:
        op = set_cluster_message(message, start=start, end=end, duration=duration)
        await self.transport.run(op)

    async def clear_cluster_message(self) -> None:
        await self.transport.run(clear_cluster_message())

    async def logout(self) -> None:
        await self.transport.run(log_out(self))

    async def commit(self, *objects: Resource) -> list[Change]:
        return await self.transport.run(self._commit(objects))

    async def rollback(self, *objects: Resource) -> None:
        self._rollback(objects)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        """``async with session.begin():`` commits on success and rolls back on an exception."""
        try:
            yield
        except BaseException:
            await self.rollback()
            raise
        await self.commit()


# The default session and the open sessions of this API (the rule: DefaultSession).
_defaults: DefaultSession[AsyncSession] = DefaultSession("detorm.aio", lambda: AsyncSession())


def connect(
    master: str | None = None,
    *,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    verify: bool | str = True,
    timeout: float = 60.0,
) -> AsyncSession:
    """Open an async session (it logs in on its first request); the first async session
    opened (``connect()`` or ``AsyncSession(...)``) becomes the default async session while
    there is none. Arguments as for :func:`detorm.connect`."""
    session = AsyncSession(
        master, user=user, password=password, token=token, verify=verify, timeout=timeout
    )
    return session  # the default if there was none (Session._opened)


def default_session() -> AsyncSession:
    """The default async session: the first one opened while there was none; with no session
    open, one from the environment; with sessions open but no default, a ConfigurationError
    naming them (the rule of :func:`detorm.default_session`)."""
    return _defaults.get()


def set_default_session(session: AsyncSession | None) -> None:
    """Make ``session`` the default async session (None: forget the current one)."""
    if session is not None:
        require("session", session, AsyncSession, "a detorm.aio.AsyncSession or None")
    _defaults.set(session)


# --- queries -------------------------------------------------------------------------------------
class AsyncQuery(QueryBase[R]):
    """A lazy, immutable query of one resource type: ``async for`` over it, or await a
    terminal method (``all()``, ``first()``, ``count()``...)."""

    _session_kind: ClassVar[str] = "a detorm.aio.AsyncSession or None"

    @classmethod
    def _session_type(cls) -> type[AsyncSession]:
        return AsyncSession

    def _default_session(self) -> AsyncSession:
        return default_session()

    @property
    def session(self) -> AsyncSession:
        session = super().session
        assert isinstance(session, AsyncSession)
        return session

    async def _run(self, op: Op[T]) -> T:
        return await self.session.transport.run(op)

    @overload
    def __getitem__(self, index: int) -> Awaitable[R]: ...

    @overload
    def __getitem__(self, index: slice) -> Self: ...

    def __getitem__(self, index: int | slice) -> Awaitable[R] | Self:
        """``query[i]`` is awaited (``await query[0]``); a slice is a query."""
        if isinstance(index, slice):
            return self._slice(index)
        return self._run(_executor.at(self, index))

    def __aiter__(self) -> AsyncIterator[R]:
        return self.session.transport.iterate(Rows(lambda: _executor.query_rows(self)))

    async def all(self) -> list[R]:
        return await self._run(_executor.rows_of(self))

    async def first(self) -> R | None:
        return await self._run(_executor.first(self))

    async def one(self) -> R:
        return await self._run(_executor.one(self))

    async def one_or_none(self) -> R | None:
        return await self._run(_executor.one_or_none(self))

    async def count(self) -> int:
        return await self._run(_executor.count(self))

    async def exists(self) -> bool:
        return await self._run(_executor.exists(self))

    async def get(self, key: Any) -> R:
        return await self._run(_executor.get(self, key))

    async def to_records(self) -> list[dict[str, Any]]:
        return await self._run(_executor.records(self))

    async def to_pandas(self) -> Any:
        return to_pandas(await self.to_records())

    async def to_polars(self) -> Any:
        return to_polars(await self.to_records())


class AsyncExperimentQuery(ExperimentFilters["Experiment"], AsyncQuery["Experiment"]):
    async def archive(self) -> BulkResult[int]:
        return await self._run(bulk_action(self, "archive"))

    async def unarchive(self) -> BulkResult[int]:
        return await self._run(bulk_action(self, "unarchive"))

    async def pause(self) -> BulkResult[int]:
        return await self._run(bulk_action(self, "pause"))

    async def activate(self) -> BulkResult[int]:
        return await self._run(bulk_action(self, "activate"))

    async def cancel(self) -> BulkResult[int]:
        return await self._run(bulk_action(self, "cancel"))

    async def kill(self) -> BulkResult[int]:
        return await self._run(bulk_action(self, "kill"))

    async def delete(self) -> BulkResult[int]:
        return await self._run(bulk_action(self, "delete"))

    async def move_to(self, project: m.Project | int) -> BulkResult[int]:
        destination = project.id if isinstance(project, m.Project) else project
        return await self._run(bulk_action(self, "move", destination))


class AsyncTrialQuery(TrialFilters["Trial"], AsyncQuery["Trial"]):
    async def kill(self) -> BulkResult[int]:
        return await self._run(run_action(self, "kill"))

    async def pause(self) -> BulkResult[int]:
        return await self._run(run_action(self, "pause"))

    async def resume(self) -> BulkResult[int]:
        return await self._run(run_action(self, "resume"))

    async def archive(self) -> BulkResult[int]:
        return await self._run(run_action(self, "archive"))

    async def unarchive(self) -> BulkResult[int]:
        return await self._run(run_action(self, "unarchive"))

    async def delete(self) -> BulkResult[int]:
        return await self._run(run_action(self, "delete"))

    async def move_to(
        self, project: m.Project | int, *, skip_multitrial: bool = False
    ) -> BulkResult[int]:
        destination = project.id if isinstance(project, m.Project) else project
        op = run_action(self, "move", destination, skip_multitrial=skip_multitrial)
        return await self._run(op)


class AsyncCheckpointQuery(CheckpointFilters["Checkpoint"], AsyncQuery["Checkpoint"]):
    pass


class AsyncWorkspaceQuery(WorkspaceFilters["Workspace"], AsyncQuery["Workspace"]):
    pass


class AsyncProjectQuery(ProjectFilters["Project"], AsyncQuery["Project"]):
    pass


class AsyncModelQuery(ModelFilters["Model"], AsyncQuery["Model"]):
    pass


class AsyncModelVersionQuery(ModelVersionFilters["ModelVersion"], AsyncQuery["ModelVersion"]):
    pass


class AsyncUserQuery(UserFilters["User"], AsyncQuery["User"]):
    pass


class _AsyncTaskQuery(AsyncQuery[R]):
    async def kill(self) -> BulkResult[str]:
        return await self._run(kill_all(self))


class AsyncCommandQuery(CommandFilters["Command"], _AsyncTaskQuery["Command"]):
    pass


class AsyncShellQuery(ShellFilters["Shell"], _AsyncTaskQuery["Shell"]):
    pass


class AsyncNotebookQuery(NotebookFilters["Notebook"], _AsyncTaskQuery["Notebook"]):
    pass


class AsyncTensorboardQuery(TensorboardFilters["Tensorboard"], _AsyncTaskQuery["Tensorboard"]):
    pass


class AsyncTemplateQuery(TemplateFilters["Template"], AsyncQuery["Template"]):
    pass


class AsyncJobQuery(JobFilters["Job"], AsyncQuery["Job"]):
    pass


class AsyncTaskQuery(TaskFilters["Task"], AsyncQuery["Task"]):
    pass


class AsyncResourcePoolQuery(ResourcePoolFilters["ResourcePool"], AsyncQuery["ResourcePool"]):
    pass


class AsyncWebhookQuery(WebhookFilters["Webhook"], AsyncQuery["Webhook"]):
    pass


class AsyncAgentQuery(AgentFilters["Agent"], AsyncQuery["Agent"]):
    pass


# --- resources -----------------------------------------------------------------------------------
class _Async(Resource):
    """What every async resource adds to its data: its session, refresh, save, parents."""

    @property
    def session(self) -> AsyncSession:
        session = super().session
        assert isinstance(session, AsyncSession)
        return session

    async def refresh(self) -> Self:
        return await self.session.transport.run(self.session._refresh(self))

    async def save(self) -> None:
        await self.session.commit(self)

    def _parent(self, relation: str, target: type[P], key: Any) -> P:
        # An attribute read cannot await: a parent missing from the identity map is an error
        # that says how to load it (as SQLAlchemy's asyncio extension does).
        loaded = self._session.identity.get(target, key) if self._session is not None else None
        if loaded is None:
            name = type(self).__name__.lower()
            raise NotLoaded(
                f"{type(self).__name__}.{relation} is not loaded, and an async session does not "
                f'fetch inside an attribute read: await session.load({name}, "{relation}") '
                f"first (or read that {target.__name__} in this session before: it is then "
                "taken from the identity map)"
            )
        return loaded


class _AsyncStream(RecordReader[T]):
    """Rows read lazily by ``async for`` (again on each iteration), or all at once as records."""

    @property
    def _transport(self) -> AsyncTransport:
        assert isinstance(self._session, AsyncSession)
        return self._session.transport

    def __aiter__(self) -> AsyncIterator[T]:
        return self._transport.iterate(self._rows())

    async def to_records(self) -> list[dict[str, Any]]:
        return await self._transport.run(self._records())

    async def to_pandas(self) -> Any:
        return to_pandas(await self.to_records())

    async def to_polars(self) -> Any:
        return to_polars(await self.to_records())


class AsyncMetricsStream(MetricsReader, _AsyncStream[MetricReport]):
    """The reports of a metric group for some trials: ``async for`` over it (lazily, line by
    line of the stream), or await ``to_records()``. Reading again reads again (from the disk
    cache for finished trials)."""


class AsyncProfilerStream(ProfilerReader, _AsyncStream[ProfilerSample]):
    """A trial's profiler samples: ``async for`` over it (lazily, series after series), or
    await ``to_records()``. Reading again reads again."""


class User(_Async, m.User):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncUserQuery:
        return AsyncUserQuery(cls, session)

    @classmethod
    async def create(
        cls,
        username: str,
        *,
        password: str | None = None,
        admin: bool = False,
        active: bool = True,
        display_name: str = "",
        remote: bool = False,
        session: AsyncSession | None = None,
    ) -> User:
        session = session or default_session()
        op = cr.create_user(
            session, session._class_of(cls), username, password=password, admin=admin,
            active=active, display_name=display_name, remote=remote,
        )  # fmt: skip
        return await session.transport.run(op)

    async def set_password(self, password: str) -> None:
        await self.session.transport.run(cr.set_password(self.session, self, password))


class Workspace(_Async, m.Workspace[S]):
    # Declared here too: pydantic's mypy plugin would type a constructor taking every field.
    def __init__(
        self: Workspace[New],
        *,
        name: str,
        checkpoint_storage_config: dict[str, Any] | None = None,
        default_compute_pool: str = "",
        default_aux_pool: str = "",
    ) -> None:
        m.Workspace.__init__(
            self, name=name, checkpoint_storage_config=checkpoint_storage_config,
            default_compute_pool=default_compute_pool, default_aux_pool=default_aux_pool,
        )  # fmt: skip

    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncWorkspaceQuery:
        return AsyncWorkspaceQuery(_saved(cls), session)

    projects = ToMany(lambda s: Project.query(_aio(s)), "workspace_id")
    models = ToMany(lambda s: Model.query(_aio(s)), "workspace_id")
    commands = ToMany(lambda s: Command.query(_aio(s)), "workspace_id")
    shells = ToMany(lambda s: Shell.query(_aio(s)), "workspace_id")
    notebooks = ToMany(lambda s: Notebook.query(_aio(s)), "workspace_id")
    tensorboards = ToMany(lambda s: Tensorboard.query(_aio(s)), "workspace_id")

    @classmethod
    async def create(
        cls,
        name: str,
        *,
        checkpoint_storage_config: Mapping[str, Any] | None = None,
        default_compute_pool: str | None = None,
        default_aux_pool: str | None = None,
        session: AsyncSession | None = None,
    ) -> Workspace:
        session = session or default_session()
        op = cr.create_workspace(
            session, session._class_of(_saved(cls)), name,
            checkpoint_storage_config=checkpoint_storage_config,
            default_compute_pool=default_compute_pool, default_aux_pool=default_aux_pool,
        )  # fmt: skip
        return await session.transport.run(op)

    async def delete(self: Workspace) -> None:
        await self.session.transport.run(cr.delete_workspace(self.session, self))


class Project(_Async, m.Project[S]):
    # Declared here too: pydantic's mypy plugin would type a constructor taking every field.
    def __init__(
        self: Project[New],
        *,
        name: str,
        workspace: m.Workspace[Any] | int,
        description: str = "",
        key: str | None = None,
    ) -> None:
        m.Project.__init__(self, name=name, workspace=workspace, description=description, key=key)

    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncProjectQuery:
        return AsyncProjectQuery(_saved(cls), session)

    workspace = SettableToOne(lambda: Workspace, "workspace_id")
    experiments = ToMany(lambda s: Experiment.query(_aio(s)), "project_id")

    @classmethod
    async def create(
        cls,
        workspace: Workspace | int,
        name: str,
        *,
        description: str = "",
        key: str | None = None,
        session: AsyncSession | None = None,
    ) -> Project:
        session = session or _session_of(workspace)
        op = cr.create_project(
            session,
            session._class_of(_saved(cls)),
            workspace,
            name,
            description=description,
            key=key,
        )
        return await session.transport.run(op)

    async def delete(self: Project) -> None:
        await self.session.transport.run(cr.delete_project(self.session, self))


class Experiment(_Async, m.Experiment):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncExperimentQuery:
        return AsyncExperimentQuery(cls, session)

    project = SettableToOne(lambda: Project, "project_id")
    trials = ToMany(lambda s: Trial.query(_aio(s)), "experiment_id")
    checkpoints = ToMany(lambda s: Checkpoint.query(_aio(s)), "experiment_id")

    async def _act(self, action: Any, destination: int | None = None) -> None:
        session = self.session
        await session.transport.run(experiment_action(session, self, action, destination))

    async def archive(self) -> None:
        await self._act("archive")

    async def unarchive(self) -> None:
        await self._act("unarchive")

    async def pause(self) -> None:
        await self._act("pause")

    async def activate(self) -> None:
        await self._act("activate")

    async def cancel(self) -> None:
        await self._act("cancel")

    async def kill(self) -> None:
        await self._act("kill")

    async def delete(self) -> None:
        await self._act("delete")

    async def move_to(self, project: m.Project | int) -> None:
        await self._act("move", project.id if isinstance(project, m.Project) else project)

    async def metric_names(self) -> dict[str, list[str]]:
        return await self.session.transport.run(metric_names(self.session, self.id))

    @classmethod
    async def create(
        cls,
        config: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str],
        model_dir: str | os.PathLike[str] | None = None,
        *,
        project: Project | int | None = None,
        template: Template | str | None = None,
        activate: bool = True,
        includes: Iterable[str | os.PathLike[str]] = (),
        session: AsyncSession | None = None,
    ) -> Experiment:
        session = session or default_session()
        op = xp.create_experiment(
            session, session._class_of(cls), config, model_dir, includes=includes,
            project=project, template=template, activate=activate,
        )  # fmt: skip
        return await session.transport.run(op)

    @classmethod
    async def validate_config(
        cls,
        config: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str],
        *,
        project: Project | int | None = None,
        template: Template | str | None = None,
        session: AsyncSession | None = None,
    ) -> list[str]:
        session = session or default_session()
        op = xp.validate_config(config, project=project, template=template)
        return await session.transport.run(op)

    async def fork(
        self,
        config_overrides: Mapping[str, Any] | None = None,
        *,
        project: Project | int | None = None,
        activate: bool = True,
    ) -> Experiment:
        op = xp.fork_experiment(
            self.session, self, config_overrides, project=project, activate=activate
        )
        return await self.session.transport.run(op)

    async def continue_training(
        self,
        config_overrides: Mapping[str, Any] | None = None,
        *,
        max_length: int | Mapping[str, int] | None = None,
    ) -> None:
        op = xp.continue_training(self.session, self, config_overrides, max_length)
        await self.session.transport.run(op)

    async def wait(
        self, timeout: float | None = None, *, interval: float | None = None
    ) -> ExperimentState:
        op = xp.wait_experiment(self.session, self, timeout, interval)
        return await self.session.transport.run(op)

    async def await_first_trial(
        self, timeout: float | None = None, *, interval: float | None = None
    ) -> Trial:
        op = xp.await_first_trial(self.session, self, Trial, timeout, interval)
        return await self.session.transport.run(op)

    async def best_trial(self) -> Trial | None:
        return await self.session.transport.run(_executor.best_trial(self.session, self, Trial))

    async def download_code(
        self, path: str | os.PathLike[str], *, cache: bool = True, max_size: int = CODE_MAX_SIZE
    ) -> Path:
        op = download_code(self.session, self, path, cache=cache, max_size=max_size)
        return await self.session.transport.run(op)

    async def download_tensorboard(
        self,
        path: str | os.PathLike[str],
        *,
        trials: Iterable[Trial | int] | None = None,
        progress: bool | None = None,
        max_size: int = TENSORBOARD_MAX_SIZE,
    ) -> Path:
        op = download_tensorboard(
            self.session, self, path, trials=trials, progress=progress, max_size=max_size
        )
        return await self.session.transport.run(op)

    async def delete_tensorboard_files(self) -> None:
        await self.session.transport.run(delete_tensorboard_files(self.session, self))


class _Logs(_Async):
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
    ) -> AsyncIterator[LogEntry]:
        reader = log_reader(
            follow=follow, search=search, regex=regex, levels=levels, since=since, until=until,
            limit=limit, tail=tail,
        )  # fmt: skip
        return self.session.transport.iterate(reader(self.session, self.pk))


class Trial(_Logs, m.Trial):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncTrialQuery:
        return AsyncTrialQuery(cls, session)

    experiment = ToOne(lambda: Experiment, "experiment_id")
    checkpoints = ToMany(lambda s: Checkpoint.query(_aio(s)), "trial_id")
    task = ToOne(lambda: Task, "task_id")

    @property
    def tasks(self) -> AsyncTaskQuery:
        return Task.query(self.session).filter(id__in=list(self.task_ids))

    async def continue_training(
        self,
        config_overrides: Mapping[str, Any] | None = None,
        *,
        max_length: int | Mapping[str, int] | None = None,
    ) -> None:
        op = xp.continue_training(self.session, self, config_overrides, max_length)
        await self.session.transport.run(op)

    async def wait(
        self, timeout: float | None = None, *, interval: float | None = None
    ) -> TrialState:
        op = xp.wait_trial(self.session, self, timeout, interval)
        return await self.session.transport.run(op)

    async def kill(self) -> None:
        await self.session.transport.run(kill_trial(self.session, self))

    def metrics(
        self, group: str = "validation", *, cache: bool = True, progress: bool | None = None
    ) -> AsyncMetricsStream:
        return self.session.metrics([self], group, cache=cache, progress=progress)

    async def metric_groups(self) -> dict[str, list[str]]:
        return await self.session.transport.run(metric_groups(self.session, self))

    async def profiler_series(self) -> list[ProfilerSeries]:
        return await self.session.transport.run(series_of(self.session, self.id))

    def profiler_metrics(
        self, names: Iterable[str] | str | None = None, *,
        groups: Iterable[str] | str | None = None,
    ) -> AsyncProfilerStream:  # fmt: skip
        return AsyncProfilerStream(self.session, self.id, names=names, groups=groups)


class Checkpoint(_Async, m.Checkpoint):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncCheckpointQuery:
        return AsyncCheckpointQuery(cls, session)

    trial = ToOne(lambda: Trial, "trial_id")

    async def delete(self) -> None:
        await self.session.transport.run(delete_checkpoint(self.session, self))

    async def download(
        self,
        path: str | os.PathLike[str],
        *,
        mode: Literal["auto", "direct", "master"] = "auto",
        progress: bool | None = None,
        cache: bool = True,
        max_size: int = CHECKPOINT_MAX_SIZE,
    ) -> Path:
        op = download_checkpoint(
            self.session, self, path, mode=mode, progress=progress, cache=cache, max_size=max_size
        )
        return await self.session.transport.run(op)


class Model(_Async, m.Model[S]):
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
        m.Model.__init__(
            self, name=name, workspace=workspace, description=description, notes=notes, labels=labels,
            metadata=metadata,
        )  # fmt: skip

    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncModelQuery:
        return AsyncModelQuery(_saved(cls), session)

    workspace = SettableToOne(lambda: Workspace, "workspace_id")
    versions = ToMany(lambda s: ModelVersion.query(_aio(s)), "model_id")

    @classmethod
    async def create(
        cls,
        name: str,
        *,
        workspace: Workspace | int | None = None,
        description: str = "",
        notes: str = "",
        labels: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        session: AsyncSession | None = None,
    ) -> Model:
        session = session or _session_of(workspace)
        op = cr.create_model(
            session, session._class_of(_saved(cls)), name, workspace=workspace,
            description=description, notes=notes, labels=labels, metadata=metadata,
        )  # fmt: skip
        return await session.transport.run(op)

    async def register_version(
        self: Model,
        checkpoint: Checkpoint | str,
        *,
        name: str = "",
        comment: str = "",
        notes: str = "",
        labels: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        session = self.session
        op = cr.register_version(
            session, session._class_of(ModelVersion), self, checkpoint, name=name,
            comment=comment, notes=notes, labels=labels, metadata=metadata,
        )  # fmt: skip
        return await session.transport.run(op)

    async def delete(self: Model) -> None:
        await self.session.transport.run(cr.delete_model(self.session, self))


class ModelVersion(_Async, m.ModelVersion):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncModelVersionQuery:
        return AsyncModelVersionQuery(cls, session)

    model = ToOne(lambda: Model, "model_id")
    checkpoint = ToOne(lambda: Checkpoint, "checkpoint_uuid")

    async def delete(self) -> None:
        await self.session.transport.run(cr.delete_model_version(self.session, self))


class Task(_Logs, t.Task):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncTaskQuery:
        return AsyncTaskQuery(cls, session)


class _TaskControl(_Logs, t.GenericTask):
    workspace = ToOne(lambda: Workspace, "workspace_id")
    user = ToOne(lambda: User, "user_id")
    task = ToOne(lambda: Task, "id")
    job = ToOne(lambda: Job, "job_id")

    async def kill(self) -> None:
        await self.session.transport.run(kill_task(self.session, self))

    async def wait(
        self, timeout: float | None = None, *, interval: float | None = None
    ) -> TaskState:
        return await self.session.transport.run(wait_for(self.session, self, timeout, interval))


async def _launch(
    cls: type[G],
    session: AsyncSession | None,
    query: AsyncExperimentQuery | None = None,
    context: str | os.PathLike[str] | None = None,
    includes: Iterable[str | os.PathLike[str]] = (),
    **arguments: Any,
) -> G:
    session = session or default_session()
    body = launch_body(cls, query=query is not None, **arguments)
    files = launch_context(cls.__name__, context, includes)
    op = launch(session, session._class_of(cls), body, query, files)
    return await session.transport.run(op)


class Command(_TaskControl, t.Command):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncCommandQuery:
        return AsyncCommandQuery(cls, session)

    @classmethod
    async def launch(
        cls,
        entrypoint: str | Iterable[str],
        *,
        config: dict[str, Any] | None = None,
        template: Template | str | None = None,
        workspace: Workspace | int | None = None,
        context: str | os.PathLike[str] | None = None,
        includes: Iterable[str | os.PathLike[str]] = (),
        session: AsyncSession | None = None,
    ) -> Command:
        return await _launch(
            cls, session, context=context, includes=includes, entrypoint=entrypoint,
            config=config, template=template, workspace=workspace,
        )  # fmt: skip


class Shell(_TaskControl, t.Shell):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncShellQuery:
        return AsyncShellQuery(cls, session)

    @classmethod
    async def launch(
        cls,
        *,
        config: dict[str, Any] | None = None,
        template: Template | str | None = None,
        workspace: Workspace | int | None = None,
        context: str | os.PathLike[str] | None = None,
        includes: Iterable[str | os.PathLike[str]] = (),
        session: AsyncSession | None = None,
    ) -> Shell:
        return await _launch(
            cls, session, context=context, includes=includes, config=config, template=template,
            workspace=workspace,
        )  # fmt: skip


class Notebook(_TaskControl, t.Notebook):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncNotebookQuery:
        return AsyncNotebookQuery(cls, session)

    @classmethod
    async def launch(
        cls,
        *,
        config: dict[str, Any] | None = None,
        template: Template | str | None = None,
        workspace: Workspace | int | None = None,
        context: str | os.PathLike[str] | None = None,
        includes: Iterable[str | os.PathLike[str]] = (),
        session: AsyncSession | None = None,
    ) -> Notebook:
        return await _launch(
            cls, session, context=context, includes=includes, config=config, template=template,
            workspace=workspace,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return _sync.proxy_url(self.session, self.service_address)


class Tensorboard(_TaskControl, t.Tensorboard):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncTensorboardQuery:
        return AsyncTensorboardQuery(cls, session)

    @classmethod
    async def launch(
        cls,
        *,
        experiments: Iterable[Experiment | int] | None = None,
        trials: Iterable[Trial | int] | None = None,
        query: AsyncExperimentQuery | None = None,
        config: dict[str, Any] | None = None,
        template: Template | str | None = None,
        workspace: Workspace | int | None = None,
        session: AsyncSession | None = None,
    ) -> Tensorboard:
        return await _launch(
            cls, session, query, experiments=experiments, trials=trials, config=config,
            template=template, workspace=workspace,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return _sync.proxy_url(self.session, self.service_address)

    @property
    def experiments(self) -> AsyncExperimentQuery:
        return Experiment.query(self.session).filter(id__in=list(self.experiment_ids))


class Template(_Async, t.Template):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncTemplateQuery:
        return AsyncTemplateQuery(cls, session)

    @classmethod
    async def create(
        cls,
        name: str,
        config: dict[str, Any],
        *,
        workspace: Workspace | int | None = None,
        session: AsyncSession | None = None,
    ) -> Template:
        session = session or default_session()
        op = create_template(session, session._class_of(cls), name, config, workspace)
        return await session.transport.run(op)

    async def delete(self) -> None:
        await self.session.transport.run(delete_template(self.session, self))

    async def rename(self, new_name: str) -> None:
        await self.session.transport.run(rename_template(self.session, self, new_name))


class Job(_Async, t.Job):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncJobQuery:
        return AsyncJobQuery(cls, session)

    workspace = ToOne(lambda: Workspace, "workspace_id")

    def move(self, *, ahead_of: Job | None = None, behind_of: Job | None = None) -> None:
        self.priority = move_priority(self, ahead_of, behind_of)


class ResourcePool(_Async, t.ResourcePool):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncResourcePoolQuery:
        return AsyncResourcePoolQuery(cls, session)


class Agent(_Async, t.Agent):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncAgentQuery:
        return AsyncAgentQuery(cls, session)


class Webhook(_Async, c.Webhook):
    @classmethod
    def query(cls, session: AsyncSession | None = None) -> AsyncWebhookQuery:
        return AsyncWebhookQuery(cls, session)

    @classmethod
    async def create(
        cls,
        url: str,
        *,
        triggers: Iterable[Trigger],
        webhook_type: WebhookType | str = "DEFAULT",
        name: str | None = None,
        workspace: Workspace | int | None = None,
        mode: WebhookMode | str = "WORKSPACE",
        session: AsyncSession | None = None,
    ) -> Webhook:
        body = webhook_body(
            url, triggers=triggers, webhook_type=webhook_type, name=name, workspace=workspace,
            mode=mode,
        )  # fmt: skip
        session = session or default_session()
        return await session.transport.run(create_webhook(session, session._class_of(cls), body))

    async def delete(self) -> None:
        await self.session.transport.run(delete_webhook(self.session, self))

    async def test(self) -> None:
        await self.session.transport.run(test_webhook(self))


def _session_of(parent: Resource | int | None) -> AsyncSession:
    """The session of a parent object given to a create, else the default session."""
    if isinstance(parent, Resource) and isinstance(parent._session, AsyncSession):
        return parent._session
    return default_session()


def _aio(session: SessionLike | None) -> AsyncSession | None:
    assert session is None or isinstance(session, AsyncSession)
    return session


RESOURCES = (
    User, Workspace, Project, Experiment, Trial, Checkpoint, Model, ModelVersion, Command, Shell,
    Notebook, Tensorboard, Task, Template, Job, ResourcePool, Agent, Webhook,
)  # fmt: skip
AsyncSession._classes = {cls.__name__: cls for cls in RESOURCES}
_QUERIES: dict[str, type[AsyncQuery[Any]]] = {
    "User": AsyncUserQuery, "Workspace": AsyncWorkspaceQuery, "Project": AsyncProjectQuery,
    "Experiment": AsyncExperimentQuery, "Trial": AsyncTrialQuery,
    "Checkpoint": AsyncCheckpointQuery, "Model": AsyncModelQuery,
    "ModelVersion": AsyncModelVersionQuery, "Command": AsyncCommandQuery,
    "Shell": AsyncShellQuery, "Notebook": AsyncNotebookQuery,
    "Tensorboard": AsyncTensorboardQuery, "Template": AsyncTemplateQuery,
    "Job": AsyncJobQuery, "Task": AsyncTaskQuery, "ResourcePool": AsyncResourcePoolQuery,
    "Agent": AsyncAgentQuery, "Webhook": AsyncWebhookQuery,
}  # fmt: skip


def _copy_docs() -> None:
    """Give each async class and method the docstring of its sync twin (written once)."""
    pairs: list[tuple[type, type]] = [
        (AsyncSession, _sync.Session), (_Async, _sync._Sync),
        (_AsyncStream, _sync._Stream),
        (AsyncMetricsStream, _sync.MetricsStream), (AsyncProfilerStream, _sync.ProfilerStream),
        (AsyncQuery, _sync.Query),
        (_TaskControl, _sync._TaskControl), (_AsyncTaskQuery, _sync._TaskQuery),
        (_Logs, _sync._Logs),
        *((q, getattr(_sync, q.__name__.removeprefix("Async"))) for q in _QUERIES.values()),
        *((cls, getattr(_sync, cls.__name__)) for cls in RESOURCES),
    ]  # fmt: skip
    for cls, twin in pairs:
        if cls.__doc__ is None:
            cls.__doc__ = twin.__doc__
        for name, member in list(vars(cls).items()):
            source = inspect.getattr_static(twin, name, None)
            function = member.__func__ if isinstance(member, classmethod) else member
            function = getattr(function, "fget", function)
            original = source.__func__ if isinstance(source, classmethod) else source
            original = getattr(original, "fget", original)
            if inspect.isfunction(function) and function.__doc__ is None and original is not None:
                function.__doc__ = original.__doc__
            # A property keeps the docstring its getter had when it was made: remake it.
            if isinstance(member, property) and member.__doc__ is None and original is not None:
                setattr(
                    cls, name, property(member.fget, member.fset, member.fdel, original.__doc__)
                )


_copy_docs()
