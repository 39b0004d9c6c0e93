"""The resources users script with: typed, fully hydrated, with declared relationships.

Relationships to many (``Workspace.projects``, ``Experiment.trials``...) are query objects: no
request until iterated. Relationships to one (``Experiment.project``...) resolve through the
session's identity map, fetching a missing object once per session.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from .._download import CHECKPOINT_MAX_SIZE, CODE_MAX_SIZE, download_checkpoint, download_code
from .._inputs import INT32_MAX, check_int, check_json_object, check_number, shown
from .._wire import (
    CheckpointState,
    ExperimentState,
    LogLevel,
    Timestamp,
    TrialState,
    WorkspaceState,
)
from .._wire import _common as wc
from .._wire import _experiments as wx
from .._wire import _registry as wr
from ..errors import InvalidValue
from ._base import Resource, TagSet
from ._relations import SettableToOne, ToMany, ToOne, session_or_default
from ._values import (
    CheckpointSummary,
    ExperimentConfig,
    JSONValue,
    MetricSummary,
    Note,
    Validation,
    summary_from_wire,
)

if TYPE_CHECKING:
    from .._logs import LogEntry
    from .._metrics import MetricsStream
    from .._query import (
        CheckpointQuery,
        ExperimentQuery,
        ModelQuery,
        ModelVersionQuery,
        ProjectQuery,
        TrialQuery,
        UserQuery,
        WorkspaceQuery,
    )
    from .._session import Session

__all__ = [
    "Checkpoint",
    "Experiment",
    "Model",
    "ModelVersion",
    "Project",
    "Trial",
    "User",
    "Workspace",
]


def _queries() -> Any:
    from .. import _query

    return _query


def _actions() -> Any:
    from .. import _actions

    return _actions


class User(Resource):
    """A Determined user."""

    id: int
    username: str
    display_name: str
    admin: bool
    active: bool
    remote: bool
    modified_at: Timestamp | None
    last_auth_at: Timestamp | None
    agent_uid: int | None
    agent_gid: int | None
    agent_user: str | None
    agent_group: str | None

    @classmethod
    def query(cls, session: Session | None = None) -> UserQuery:
        """All users (``GET /api/v1/users``)."""
        return _queries().UserQuery(cls, session)  # type: ignore[no-any-return]

    @staticmethod
    def values_from_wire(wire: wc.User) -> dict[str, Any]:
        group = wire.agent_user_group
        return {
            "id": wire.id, "username": wire.username, "display_name": wire.display_name,
            "admin": wire.admin, "active": wire.active, "remote": wire.remote,
            "modified_at": wire.modified_at, "last_auth_at": wire.last_auth_at,
            "agent_uid": group.agent_uid if group else None,
            "agent_gid": group.agent_gid if group else None,
            "agent_user": group.agent_user if group else None,
            "agent_group": group.agent_group if group else None,
        }  # fmt: skip


class Workspace(Resource):
    """A workspace: a group of projects and models."""

    _editable: ClassVar[frozenset[str]] = frozenset({"name", "archived"})

    id: int
    name: str
    archived: bool
    immutable: bool
    username: str
    user_id: int
    num_projects: int
    num_experiments: int
    pinned: bool
    pinned_at: Timestamp | None
    state: WorkspaceState
    error_message: str
    default_compute_pool: str
    default_aux_pool: str
    checkpoint_storage_config: dict[str, Any] | None

    @classmethod
    def query(cls, session: Session | None = None) -> WorkspaceQuery:
        """Workspaces (``GET /api/v1/workspaces``)."""
        return _queries().WorkspaceQuery(cls, session)  # type: ignore[no-any-return]

    def _check(self, name: str, value: Any) -> None:
        super()._check(name, value)
        # validateWorkspaceName (api_workspace.go): at most 80 bytes.
        if name == "name" and len(value.encode()) > 80:
            raise InvalidValue(f"Workspace.name must be at most 80 bytes (UTF-8): {shown(value)}")

    projects = ToMany(lambda s: Project.query(s), "workspace_id")
    """This workspace's projects (a query: nothing is sent until it is iterated)."""
    models = ToMany(lambda s: Model.query(s), "workspace_id")
    """The models registered in this workspace (a query)."""

    @staticmethod
    def values_from_wire(wire: wr.Workspace) -> dict[str, Any]:
        return {
            "id": wire.id, "name": wire.name, "archived": wire.archived,
            "immutable": wire.immutable, "username": wire.username, "user_id": wire.user_id,
            "num_projects": wire.num_projects, "num_experiments": wire.num_experiments,
            "pinned": wire.pinned, "pinned_at": wire.pinned_at, "state": wire.state,
            "error_message": wire.error_message,
            "default_compute_pool": wire.default_compute_pool,
            "default_aux_pool": wire.default_aux_pool,
            "checkpoint_storage_config": wire.checkpoint_storage_config,
        }  # fmt: skip


class Project(Resource):
    """A project: a group of experiments inside a workspace."""

    _editable: ClassVar[frozenset[str]] = frozenset(
        {"name", "description", "notes", "archived", "workspace_id"}
    )

    id: int
    name: str
    key: str
    description: str
    notes: tuple[Note, ...]
    workspace_id: int
    workspace_name: str
    archived: bool
    immutable: bool
    username: str
    user_id: int
    num_experiments: int
    num_active_experiments: int
    num_runs: int
    last_experiment_started_at: Timestamp | None
    state: WorkspaceState
    error_message: str

    @classmethod
    def query(cls, session: Session | None = None) -> ProjectQuery:
        """Projects of every workspace (``GET /api/v1/workspaces/0/projects``)."""
        return _queries().ProjectQuery(cls, session)  # type: ignore[no-any-return]

    workspace = SettableToOne(lambda: Workspace, "workspace_id")
    """The workspace holding this project (identity map; fetched once). Assign one to move it."""

    experiments = ToMany(lambda s: Experiment.query(s), "project_id")
    """This project's experiments (a query)."""

    @staticmethod
    def values_from_wire(wire: wr.Project) -> dict[str, Any]:
        return {
            "id": wire.id, "name": wire.name, "key": wire.key, "description": wire.description,
            "notes": tuple(Note(n.name, n.contents) for n in wire.notes),
            "workspace_id": wire.workspace_id, "workspace_name": wire.workspace_name,
            "archived": wire.archived, "immutable": wire.immutable, "username": wire.username,
            "user_id": wire.user_id, "num_experiments": wire.num_experiments,
            "num_active_experiments": wire.num_active_experiments, "num_runs": wire.num_runs,
            "last_experiment_started_at": wire.last_experiment_started_at, "state": wire.state,
            "error_message": wire.error_message,
        }  # fmt: skip


class Experiment(Resource):
    """An experiment. ``tags`` are its labels (Determined's wire name)."""

    _editable: ClassVar[frozenset[str]] = frozenset(
        {"name", "description", "notes", "tags", "priority", "weight", "max_slots", "archived",
         "project_id"}
    )  # fmt: skip

    id: int
    name: str
    description: str
    notes: str
    tags: TagSet
    state: ExperimentState
    archived: bool
    start_time: Timestamp | None
    end_time: Timestamp | None
    duration: int | None
    progress: float | None
    num_trials: int
    trial_ids: tuple[int, ...]
    username: str
    user_id: int
    display_name: str
    project_id: int
    project_name: str
    project_owner_id: int
    workspace_id: int
    workspace_name: str
    parent_archived: bool
    resource_pool: str
    searcher_type: str
    searcher_metric: str
    hyperparameters: dict[str, JSONValue]
    config: ExperimentConfig
    original_config: str
    forked_from: int | None
    job_id: str
    checkpoint_size: int
    checkpoint_count: int
    best_trial_id: int | None
    best_trial_searcher_metric: float | None
    unmanaged: bool
    external_experiment_id: str | None
    external_trial_id: str | None
    model_definition_size: int | None
    priority: int | None
    weight: float | None
    max_slots: int | None

    @classmethod
    def query(cls, session: Session | None = None) -> ExperimentQuery:
        """Experiments of the whole cluster; narrow with ``filter()``."""
        return _queries().ExperimentQuery(cls, session)  # type: ignore[no-any-return]

    project = SettableToOne(lambda: Project, "project_id")
    """The experiment's project (identity map; fetched once). Assign one to move it."""

    def _check(self, name: str, value: Any) -> None:
        super()._check(name, value)
        if name in ("priority", "weight", "max_slots") and value is None:
            raise InvalidValue(f"Experiment.{name} cannot be unset once set")
        # Rules of expconf resources (pkg/model/experiment_config.go); PatchExperiment sends
        # priority and maxSlots as int32, weight as a double (JSON: finite).
        if name == "priority":
            check_int("Experiment.priority", value, low=1, high=99)
        if name == "weight" and check_number("Experiment.weight", value) <= 0:
            raise InvalidValue(f"Experiment.weight must be a finite number > 0, not {value}")
        if name == "max_slots":
            check_int("Experiment.max_slots", value, low=0, high=INT32_MAX)

    trials = ToMany(lambda s: Trial.query(s), "experiment_id")
    """The experiment's trials (a query)."""

    # Actions are sent at once (the unit of work is for attribute edits); the object follows.
    def archive(self) -> None:
        """Archive this experiment (it must be in a terminal state)."""
        _actions().experiment_action(self.session, self, "archive")

    def unarchive(self) -> None:
        _actions().experiment_action(self.session, self, "unarchive")

    def pause(self) -> None:
        _actions().experiment_action(self.session, self, "pause")

    def activate(self) -> None:
        _actions().experiment_action(self.session, self, "activate")

    def cancel(self) -> None:
        _actions().experiment_action(self.session, self, "cancel")

    def kill(self) -> None:
        _actions().experiment_action(self.session, self, "kill")

    def delete(self) -> None:
        """Delete this experiment (terminal states only; the master finishes it later)."""
        _actions().experiment_action(self.session, self, "delete")

    def move_to(self, project: Project | int) -> None:
        """Move this experiment to ``project`` now."""
        destination = project.id if isinstance(project, Project) else project
        _actions().experiment_action(self.session, self, "move", destination)

    def best_trial(self) -> Trial | None:
        """The trial with the best searcher metric, or None (one request unless known).

        Only the experiments search reports the best trial: an experiment read by a search
        already knows it (``best_trial_id``); otherwise one search for this experiment asks.
        """
        session = session_or_default(self._session)
        if "best_trial_id" not in self.__dict__:
            from .._executor import load_best_trial

            load_best_trial(session, self)
        if self.best_trial_id is None:
            return None
        return session.resolve(Trial, self.best_trial_id)

    checkpoints = ToMany(lambda s: Checkpoint.query(s), "experiment_id")
    """The experiment's checkpoints (a query)."""

    def download_code(
        self, path: str | os.PathLike[str], *, cache: bool = True, max_size: int = CODE_MAX_SIZE
    ) -> Path:
        """Extract the experiment's code (its model definition) into ``path``, a new or empty
        directory, safely; at most ``max_size`` bytes once extracted (default 128 MiB).

        Code never changes: it is read from the disk cache after the first download.
        """
        return download_code(
            session_or_default(self._session), self, path, cache=cache, max_size=max_size
        )

    # Fields a list endpoint does not send: GetExperiments and SearchExperiments replace notes
    # with "omitted", leave trialIds empty and select neither originalConfig nor the model
    # definition's size (getExperimentColumns).
    LIST_OMITS: ClassVar[frozenset[str]] = frozenset(
        {"trial_ids", "original_config", "model_definition_size"}
    )

    @staticmethod
    def values_from_wire(
        wire: wx.Experiment, *, view: Literal["list", "search", "single"]
    ) -> dict[str, Any]:
        """Values of an experiment as one of the master's three views sent it.

        Only SearchExperiments selects ``bestTrialId``; lists omit trial ids, the original
        config and notes; the single view omits what its config does not hold.
        """
        config = wire.config or {}
        resources = config.get("resources") or {}
        values: dict[str, Any] = {
            "id": wire.id, "name": wire.name, "description": wire.description,
            "notes": wire.notes, "tags": TagSet(wire.labels), "state": wire.state,
            "archived": wire.archived, "start_time": wire.start_time, "end_time": wire.end_time,
            "duration": wire.duration, "progress": wire.progress, "num_trials": wire.num_trials,
            "trial_ids": tuple(wire.trial_ids), "username": wire.username,
            "user_id": wire.user_id, "display_name": wire.display_name,
            "project_id": wire.project_id, "project_name": wire.project_name,
            "project_owner_id": wire.project_owner_id, "workspace_id": wire.workspace_id,
            "workspace_name": wire.workspace_name, "parent_archived": wire.parent_archived,
            "resource_pool": wire.resource_pool, "searcher_type": wire.searcher_type,
            "searcher_metric": wire.searcher_metric,
            "hyperparameters": wire.hyperparameters or {}, "config": config,
            "original_config": wire.original_config, "forked_from": wire.forked_from,
            "job_id": wire.job_id, "checkpoint_size": wire.checkpoint_size,
            "checkpoint_count": wire.checkpoint_count, "best_trial_id": wire.best_trial_id,
            "best_trial_searcher_metric": wire.best_trial_searcher_metric,
            "unmanaged": wire.unmanaged, "external_experiment_id": wire.external_experiment_id,
            "external_trial_id": wire.external_trial_id,
            "model_definition_size": wire.model_definition_size,
            "priority": resources.get("priority"), "weight": resources.get("weight"),
            "max_slots": resources.get("max_slots"),
        }  # fmt: skip
        if view != "search":
            del values["best_trial_id"]
        if view != "single":
            for name in Experiment.LIST_OMITS:
                del values[name]
            if wire.notes == "omitted":
                del values["notes"]
            if wire.best_trial_searcher_metric is None:
                del values["best_trial_searcher_metric"]
        else:
            Experiment._complete_single_view(values, config)
        return values

    @staticmethod
    def _complete_single_view(values: dict[str, Any], config: dict[str, Any]) -> None:
        # The single-experiment view (getExperimentTx) leaves displayName, searcherMetric,
        # hyperparameters and duration unset: read what the config holds, defer the rest.
        searcher = config.get("searcher") or {}
        if not values["searcher_metric"] and isinstance(searcher, dict):
            values["searcher_metric"] = str(searcher.get("metric") or "")
        if not values["hyperparameters"]:
            values["hyperparameters"] = dict(config.get("hyperparameters") or {})
        if values["duration"] is None:
            start, end = values["start_time"], values["end_time"]
            if start is not None and end is not None:
                values["duration"] = int((end - start).total_seconds())
            else:
                del values["duration"]  # still running: it grows every second
        if not values["display_name"]:
            del values["display_name"]
        if values["best_trial_searcher_metric"] is None:
            del values["best_trial_searcher_metric"]


class Trial(Resource):
    """A trial (the runs API calls it a run): one set of hyperparameters being trained."""

    id: int
    experiment_id: int
    state: TrialState
    start_time: Timestamp | None
    end_time: Timestamp | None
    restarts: int
    hparams: dict[str, JSONValue]
    total_batches_processed: int
    best_validation: Validation | None
    latest_validation: Validation | None
    best_checkpoint: CheckpointSummary | None
    runner_state: str
    wall_clock_time: float
    warm_start_checkpoint_uuid: str
    task_id: str
    task_ids: tuple[str, ...]
    total_checkpoint_size: int
    checkpoint_count: int
    summary_metrics: dict[str, dict[str, MetricSummary]]
    searcher_metric_value: float | None
    log_retention_days: int | None
    metadata: dict[str, Any]

    @classmethod
    def query(cls, session: Session | None = None) -> TrialQuery:
        """Trials of the whole cluster (the runs search); ``exp.trials`` for one experiment."""
        return _queries().TrialQuery(cls, session)  # type: ignore[no-any-return]

    experiment = ToOne(lambda: Experiment, "experiment_id")
    """The trial's experiment (identity map; fetched once)."""

    checkpoints = ToMany(lambda s: Checkpoint.query(s), "trial_id")
    """The trial's checkpoints (a query)."""

    def metrics(self, group: str = "validation", *, cache: bool = True) -> MetricsStream:
        """This trial's reports of ``group`` (``"training"``, ``"validation"``, ``"gpu"``...).

        Lazy: iterate it, or call ``to_pandas()``. Finished trials are cached on disk.
        """
        return session_or_default(self._session).metrics([self], group, cache=cache)

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
        from .._logs import read_logs

        return read_logs(
            session_or_default(self._session), self.id, follow=follow, search=search, regex=regex,
            levels=levels, since=since, until=until, limit=limit, tail=tail,
        )  # fmt: skip

    @property
    def best_validation_metrics(self) -> dict[str, Any]:
        """The metrics of the trial's best validation (empty when it has none)."""
        return dict(self.best_validation.metrics) if self.best_validation else {}

    @staticmethod
    def values_from_wire(wire: wx.Trial) -> dict[str, Any]:
        # GetTrial and GetExperimentTrials do not select the searcher metric (the master sends
        # 0, proto_get_trials_plus.sql); the session derives it from the best validation.
        searcher = wire.searcher_metric_value if wire.searcher_metric_value else None
        return {
            "id": wire.id, "experiment_id": wire.experiment_id, "state": wire.state,
            "start_time": wire.start_time, "end_time": wire.end_time, "restarts": wire.restarts,
            "hparams": wire.hparams or {}, "total_batches_processed": wire.total_batches_processed,
            "best_validation": Validation.from_wire(wire.best_validation),
            "latest_validation": Validation.from_wire(wire.latest_validation),
            "best_checkpoint": CheckpointSummary.from_wire(wire.best_checkpoint),
            "runner_state": wire.runner_state, "wall_clock_time": wire.wall_clock_time,
            "warm_start_checkpoint_uuid": wire.warm_start_checkpoint_uuid,
            "task_id": wire.task_id, "task_ids": tuple(wire.task_ids),
            "total_checkpoint_size": wire.total_checkpoint_size,
            "checkpoint_count": wire.checkpoint_count,
            "summary_metrics": summary_from_wire(wire.summary_metrics),
            "searcher_metric_value": searcher,
            "log_retention_days": wire.log_retention_days, "metadata": wire.metadata or {},
        }  # fmt: skip

    @staticmethod
    def values_from_run(wire: wx.FlatRun) -> dict[str, Any]:
        """The fields a runs-search row carries; the others stay not loaded."""
        return {
            "id": wire.id,
            "experiment_id": wire.experiment.id if wire.experiment is not None else 0,
            "state": wire.state, "start_time": wire.start_time, "end_time": wire.end_time,
            "hparams": wire.hyperparameters or {},
            "total_checkpoint_size": wire.checkpoint_size,
            "checkpoint_count": wire.checkpoint_count,
            "summary_metrics": summary_from_wire(wire.summary_metrics),
            "searcher_metric_value": wire.searcher_metric_value,
            "metadata": wire.metadata or {},
        }  # fmt: skip


class Checkpoint(Resource):
    """A checkpoint, identified by its ``uuid``."""

    _key_field: ClassVar[str] = "uuid"
    _editable: ClassVar[frozenset[str]] = frozenset({"metadata"})

    uuid: str
    state: CheckpointState
    trial_id: int | None
    experiment_id: int | None
    task_id: str
    allocation_id: str | None
    report_time: Timestamp | None
    resources: dict[str, int]
    size: int
    metadata: dict[str, Any]
    steps_completed: int | None
    searcher_metric: float | None
    training_metrics: dict[str, Any]
    validation_metrics: dict[str, Any]
    hparams: dict[str, JSONValue]
    storage_id: int | None

    @classmethod
    def query(cls, session: Session | None = None) -> CheckpointQuery:
        """Checkpoints; the master lists them per experiment or per trial."""
        return _queries().CheckpointQuery(cls, session)  # type: ignore[no-any-return]

    def _check(self, name: str, value: Any) -> None:
        if name == "metadata":
            check_json_object("Checkpoint.metadata", value)

    def delete(self) -> None:
        """Delete this checkpoint's files (``DELETE /api/v1/checkpoints``; the master removes
        them in the background and the state becomes DELETED)."""
        from .._transport import Call

        session = session_or_default(self._session)
        session.transport.send(
            Call("DELETE", "/api/v1/checkpoints", body={"checkpointUuids": [self.uuid]})
        )
        self.refresh()

    trial = ToOne(lambda: Trial, "trial_id")
    """The trial that saved this checkpoint (identity map; fetched once)."""

    def download(
        self,
        path: str | os.PathLike[str],
        *,
        mode: Literal["auto", "direct", "master"] = "auto",
        progress: bool = False,
        cache: bool = True,
        max_size: int = CHECKPOINT_MAX_SIZE,
    ) -> Path:
        """Download the checkpoint's files into ``path`` (see ``detorm._download``): directly
        from shared storage when this machine can read it, else through the master (a
        COMPLETED checkpoint is then kept in the disk cache and downloaded only once).

        The files must be exactly those the checkpoint's ``resources`` list; ``max_size``
        (default 64 GiB) caps a checkpoint that has no ``resources``."""
        return download_checkpoint(
            session_or_default(self._session), self, path,
            mode=mode, progress=progress, cache=cache, max_size=max_size,
        )  # fmt: skip

    @staticmethod
    def values_from_wire(wire: wx.Checkpoint) -> dict[str, Any]:
        training = wire.training
        steps = (wire.metadata or {}).get("steps_completed")

        def averaged(metrics: wc.Metrics | None) -> dict[str, Any]:
            return dict(metrics.avg_metrics or {}) if metrics is not None else {}

        return {
            "uuid": wire.uuid, "state": wire.state,
            "trial_id": training.trial_id if training else None,
            "experiment_id": training.experiment_id if training else None,
            "task_id": wire.task_id, "allocation_id": wire.allocation_id,
            "report_time": wire.report_time, "resources": dict(wire.resources),
            "size": sum(wire.resources.values()), "metadata": dict(wire.metadata or {}),
            "steps_completed": steps if isinstance(steps, int) else None,
            "searcher_metric": training.searcher_metric if training else None,
            "training_metrics": averaged(training.training_metrics if training else None),
            "validation_metrics": averaged(training.validation_metrics if training else None),
            "hparams": dict(training.hparams or {}) if training else {},
            "storage_id": wire.storage_id,
        }  # fmt: skip


class Model(Resource):
    """A registered model in the model registry."""

    _editable: ClassVar[frozenset[str]] = frozenset(
        {"name", "description", "notes", "labels", "metadata", "archived", "workspace_id"}
    )

    id: int
    name: str
    description: str
    notes: str
    labels: TagSet
    metadata: dict[str, Any]
    archived: bool
    workspace_id: int
    username: str
    user_id: int
    creation_time: Timestamp | None
    last_updated_time: Timestamp | None
    num_versions: int

    @classmethod
    def query(cls, session: Session | None = None) -> ModelQuery:
        """Registered models (``GET /api/v1/models``)."""
        return _queries().ModelQuery(cls, session)  # type: ignore[no-any-return]

    workspace = SettableToOne(lambda: Workspace, "workspace_id")
    """The model's workspace (identity map; fetched once). Assign one to move the model."""

    def _check(self, name: str, value: Any) -> None:
        super()._check(name, value)
        if name == "metadata":
            check_json_object("Model.metadata", value)
        # clearModelName (api_model.go); an all-digit name would read as an id in the routes.
        if name == "name" and (
            "  " in value or "/" in value or "\\" in value or (value.isascii() and value.isdigit())
        ):
            raise InvalidValue(
                f"Model.name {value!r}: a model name cannot hold two spaces in a row, a slash or "
                "a backslash, or be only digits"
            )

    versions = ToMany(lambda s: ModelVersion.query(s), "model_id")
    """The model's versions (a query)."""

    @staticmethod
    def values_from_wire(wire: wr.Model) -> dict[str, Any]:
        return {
            "id": wire.id, "name": wire.name, "description": wire.description,
            "notes": wire.notes, "labels": TagSet(wire.labels),
            "metadata": dict(wire.metadata or {}), "archived": wire.archived,
            "workspace_id": wire.workspace_id, "username": wire.username,
            "user_id": wire.user_id, "creation_time": wire.creation_time,
            "last_updated_time": wire.last_updated_time, "num_versions": wire.num_versions,
        }  # fmt: skip


class ModelVersion(Resource):
    """A version of a model: a registered checkpoint."""

    _editable: ClassVar[frozenset[str]] = frozenset(
        {"name", "comment", "notes", "labels", "metadata"}
    )

    id: int
    version: int
    model_id: int
    model_name: str
    checkpoint_uuid: str
    name: str
    comment: str
    notes: str
    labels: TagSet
    metadata: dict[str, Any]
    username: str
    user_id: int
    creation_time: Timestamp | None
    last_updated_time: Timestamp | None

    @classmethod
    def query(cls, session: Session | None = None) -> ModelVersionQuery:
        """Model versions; the master lists them per model (``model.versions``)."""
        return _queries().ModelVersionQuery(cls, session)  # type: ignore[no-any-return]

    model = ToOne(lambda: Model, "model_id")
    """The model this version belongs to (identity map; fetched once)."""
    checkpoint = ToOne(lambda: Checkpoint, "checkpoint_uuid")
    """The registered checkpoint (identity map; fetched once)."""

    @classmethod
    def _repr_fields(cls) -> frozenset[str]:
        return frozenset({"id", "version", "model_name", "name"})

    def _check(self, name: str, value: Any) -> None:
        # A version's name may be empty (it is optional); only its metadata has rules.
        if name == "metadata":
            check_json_object("ModelVersion.metadata", value)

    @staticmethod
    def values_from_wire(wire: wr.ModelVersion) -> dict[str, Any]:
        model = wire.model
        return {
            "id": wire.id, "version": wire.version,
            "model_id": model.id if model else 0, "model_name": model.name if model else "",
            "checkpoint_uuid": wire.checkpoint.uuid if wire.checkpoint else "",
            "name": wire.name, "comment": wire.comment, "notes": wire.notes,
            "labels": TagSet(wire.labels), "metadata": dict(wire.metadata or {}),
            "username": wire.username, "user_id": wire.user_id,
            "creation_time": wire.creation_time, "last_updated_time": wire.last_updated_time,
        }  # fmt: skip


RESOURCES: Final = (User, Workspace, Project, Experiment, Trial, Checkpoint, Model, ModelVersion)
