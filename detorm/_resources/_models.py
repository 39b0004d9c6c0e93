"""The resources' data: typed fields, wire conversion and the rules of each editable field.

These classes hold data only. Their behaviour (``query()``, relationships, actions, I/O) is
declared by the sync and async APIs in subclasses of the same name (``detorm._api``), and each
session builds the classes of its API (``Session`` and ``AsyncSession`` register them).
Internal code uses these data classes: ``isinstance(obj, Experiment)`` holds for both APIs.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Literal

from .._wire import (
    CheckpointState,
    ExperimentState,
    Timestamp,
    TrialState,
    WorkspaceState,
)
from .._wire import _common as wc
from .._wire import _experiments as wx
from .._wire import _registry as wr
from ..errors import InvalidValue
from ._base import Resource, TagSet, init_new
from ._inputs import INT32_MAX, check_id, check_int, check_json_object, check_number, shown
from ._unsaved import New, S, Server
from ._values import (
    CheckpointSummary,
    ExperimentConfig,
    JSONValue,
    MetricSummary,
    Note,
    Validation,
    summary_from_wire,
)

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


class User(Resource):
    """A Determined user. ``display_name``, ``active``, ``admin`` and the agent user and group
    are edited through the unit of work (``PatchUser``); ``set_password`` sends at once."""

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "username", "admin", "active")

    _editable: ClassVar[frozenset[str]] = frozenset(
        {"display_name", "active", "admin", "agent_uid", "agent_gid", "agent_user", "agent_group"}
    )

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

    def _check(self, name: str, value: Any) -> None:
        super()._check(name, value)
        # AgentUserGroup's agent_uid and agent_gid are int32 (user.proto)
        if name in ("agent_uid", "agent_gid") and value is not None:
            check_int(f"User.{name}", value, low=-INT32_MAX - 1, high=INT32_MAX)

    @staticmethod
    def values_from_wire(wire: wc.User) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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


class Workspace(Resource, Generic[S]):
    """A workspace: a group of projects and models."""

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "name", "archived")

    _editable: ClassVar[frozenset[str]] = frozenset(
        {"name", "archived", "checkpoint_storage_config", "default_compute_pool",
         "default_aux_pool", "resource_pools"}
    )  # fmt: skip
    _not_loaded_hints: ClassVar[dict[str, str]] = {
        "resource_pools": "the workspace's own reads do not send its pools; load them with "
        "session.load(workspace, 'resource_pools') (ListRPsBoundToWorkspace, one request)"
    }

    id: Server[int]
    name: str
    archived: Server[bool]
    immutable: Server[bool]
    username: Server[str]
    user_id: Server[int]
    num_projects: Server[int]
    num_experiments: Server[int]
    pinned: Server[bool]
    pinned_at: Server[Timestamp | None]
    state: Server[WorkspaceState]
    error_message: Server[str]
    default_compute_pool: str
    default_aux_pool: str
    checkpoint_storage_config: dict[str, Any] | None
    # The pools its experiments and tasks may use: those bound to it and those bound to no
    # workspace. Adding a pool binds it to this workspace, discarding one unbinds it, at the
    # commit (BindRPToWorkspace, UnbindRPFromWorkspace: one request per pool).
    resource_pools: TagSet

    if TYPE_CHECKING:

        @property
        def _state(self) -> S: ...

    def __init__(
        self: Workspace[New],
        *,
        name: str,
        checkpoint_storage_config: dict[str, Any] | None = None,
        default_compute_pool: str = "",
        default_aux_pool: str = "",
    ) -> None:
        """A new workspace, created by ``session.add(ws)`` then ``session.commit()``
        (``Workspace.create(...)`` creates one at once)."""
        values = {
            "name": name, "checkpoint_storage_config": checkpoint_storage_config,
            "default_compute_pool": default_compute_pool, "default_aux_pool": default_aux_pool,
        }  # fmt: skip
        init_new(self, values, {})

    def _check(self, name: str, value: Any) -> None:
        super()._check(name, value)
        # validateWorkspaceName (api_workspace.go): at most 80 bytes.
        if name == "name" and len(value.encode()) > 80:
            raise InvalidValue(f"Workspace.name must be at most 80 bytes (UTF-8): {shown(value)}")
        # A google.protobuf.Struct on the wire: JSON values only (no NaN, no sets...).
        if name == "checkpoint_storage_config" and value is not None:
            check_json_object("Workspace.checkpoint_storage_config", value)

    @staticmethod
    def values_from_wire(wire: wr.Workspace) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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


class Project(Resource, Generic[S]):
    """A project: a group of experiments inside a workspace."""

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "name", "workspace_id")

    _editable: ClassVar[frozenset[str]] = frozenset(
        {"name", "description", "notes", "archived", "workspace_id", "key"}
    )

    id: Server[int]
    name: str
    key: str
    description: str
    notes: tuple[Note, ...]
    workspace_id: Server[int]  # editable (a move); unset while its new workspace is
    workspace_name: Server[str]
    archived: Server[bool]
    immutable: Server[bool]
    username: Server[str]
    user_id: Server[int]
    num_experiments: Server[int]
    num_active_experiments: Server[int]
    num_runs: Server[int]
    last_experiment_started_at: Server[Timestamp | None]
    state: Server[WorkspaceState]
    error_message: Server[str]

    if TYPE_CHECKING:

        @property
        def _state(self) -> S: ...

    def __init__(
        self: Project[New],
        *,
        name: str,
        workspace: Workspace[Any] | int,
        description: str = "",
        key: str | None = None,
    ) -> None:
        """A new project in ``workspace`` (an existing one, its id, or a new one added to the
        same session: created first), created by ``session.add(p)`` then ``session.commit()``.
        Without a key (None) the master makes one from the name."""
        known, creating = _parent_of(self, "workspace_id", workspace, Workspace)
        values: dict[str, Any] = {"name": name, "description": description}
        if key is not None:  # else no key until the master makes one
            values["key"] = key
        init_new(self, {**values, **known}, creating)
        # PostProject's key is optional: absent, the master makes one; given, ValidateProjectKey
        # (project/postgres_project.go) refuses an empty one. Here, not in _check: PatchProject
        # (UpdateProject) stores any key without that check.
        if key == "":
            raise InvalidValue(
                "Project(key) cannot be empty: leave it out (None) and the master makes one "
                "from the name"
            )

    def _check(self, name: str, value: Any) -> None:
        super()._check(name, value)
        # The projects table's CHECK constraint namemax: char_length(name) <= 80 (the master
        # answers a longer name with an Internal error).
        if name == "name" and len(value) > 80:
            raise InvalidValue(f"Project.name must be at most 80 characters: {shown(value)}")

    @staticmethod
    def values_from_wire(wire: wr.Project) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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


# An experiment's fields in their order (a record's columns follow it), read from the wire
# model's fields of the same names; "tags" are its labels, and priority, weight and max_slots
# are read from its config (Experiment.values_from_wire).
_EXPERIMENT_FIELDS: Final = (
    "id", "name", "description", "notes", "tags", "state", "archived", "start_time", "end_time",
    "duration", "progress", "num_trials", "trial_ids", "username", "user_id", "display_name",
    "project_id", "project_name", "project_owner_id", "workspace_id", "workspace_name",
    "parent_archived", "resource_pool", "searcher_type", "searcher_metric", "hyperparameters",
    "config", "original_config", "forked_from", "job_id", "checkpoint_size", "checkpoint_count",
    "best_trial_id", "best_trial_searcher_metric", "unmanaged", "external_experiment_id",
    "external_trial_id", "model_definition_size",
)  # fmt: skip
_experiment_wire_values: Final = operator.itemgetter(
    *("labels" if name == "tags" else name for name in _EXPERIMENT_FIELDS)
)


class Experiment(Resource):
    """An experiment. ``tags`` are its labels (Determined's wire name)."""

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "name", "state")

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
    # An unmanaged experiment's external id (PutExperiment), and the external id of its best
    # trial (the lists join the runs table on best_trial_id). Only the lists and the search
    # send them: the single GET (getExperimentTx) selects neither.
    external_experiment_id: str | None
    external_trial_id: str | None
    model_definition_size: int | None
    priority: int | None
    weight: float | None
    max_slots: int | None

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

    _not_loaded_hints: ClassVar[dict[str, str]] = {
        name: "the single GET does not send it (getExperimentTx selects it not); the lists do: "
        "read the experiment through Experiment.query().filter(id=...)"
        for name in ("external_experiment_id", "external_trial_id")
    }

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
        # One C-level pass over the wire model's values (a page holds thousands of rows).
        values = dict(zip(_EXPERIMENT_FIELDS, _experiment_wire_values(wire.__dict__)))
        values["tags"] = TagSet.of_wire(wire.labels)
        values["trial_ids"] = tuple(wire.trial_ids)
        values["hyperparameters"] = wire.hyperparameters or {}
        values["config"] = config
        values["priority"] = resources.get("priority")
        values["weight"] = resources.get("weight")
        values["max_slots"] = resources.get("max_slots")
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
            # not selected by getExperimentTx: keep what a list loaded (None is no answer)
            del values["external_experiment_id"], values["external_trial_id"]
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

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "experiment_id", "state")

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
    # An unmanaged trial's external id (PutTrial's externalTrialId, the runs table's
    # external_run_id). trialv1.Trial has no such field: only a runs search (FlatRun's
    # externalRunId) sends it, so GetTrial and an experiment's trials leave it not loaded.
    external_trial_id: str | None

    _not_loaded_hints: ClassVar[dict[str, str]] = {
        "external_trial_id": "GetTrial and an experiment's trial list do not send it (the "
        "master's Trial message has no such field); a runs search does: read the trial "
        "through Trial.query().filter(id=...)"
    }

    @property
    def best_validation_metrics(self) -> dict[str, Any]:
        """The metrics of the trial's best validation (empty when it has none)."""
        return dict(self.best_validation.metrics) if self.best_validation else {}

    @staticmethod
    def values_from_wire(wire: wx.Trial) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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
            "metadata": wire.metadata or {}, "external_trial_id": wire.external_run_id,
        }  # fmt: skip


class Checkpoint(Resource):
    """A checkpoint, identified by its ``uuid``."""

    _repr_fields: ClassVar[tuple[str, ...]] = ("uuid", "state", "trial_id", "steps_completed")

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

    def _check(self, name: str, value: Any) -> None:
        if name == "metadata":
            check_json_object("Checkpoint.metadata", value)

    @staticmethod
    def values_from_wire(wire: wx.Checkpoint) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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


class Model(Resource, Generic[S]):
    """A registered model in the model registry."""

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "name", "workspace_id", "num_versions")

    _editable: ClassVar[frozenset[str]] = frozenset(
        {"name", "description", "notes", "labels", "metadata", "archived", "workspace_id"}
    )

    id: Server[int]
    name: str
    description: str
    notes: str
    labels: TagSet
    metadata: dict[str, Any]
    archived: bool
    workspace_id: Server[int]  # editable (a move); unset while its new workspace is
    username: Server[str]
    user_id: Server[int]
    creation_time: Server[Timestamp | None]
    last_updated_time: Server[Timestamp | None]
    num_versions: Server[int]

    if TYPE_CHECKING:

        @property
        def _state(self) -> S: ...

    def __init__(
        self: Model[New],
        *,
        name: str,
        workspace: Workspace[Any] | int | None = None,
        description: str = "",
        notes: str = "",
        labels: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """A new model (in ``workspace``: an existing one, its id, or a new one added to the
        same session; else the Uncategorized workspace), created by ``session.add(m)`` then
        ``session.commit()``."""
        # metadata as given: init_new checks it (a dict of JSON values) and copies it
        values: dict[str, Any] = {
            "name": name, "description": description, "notes": notes,
            "labels": TagSet(labels), "metadata": {} if metadata is None else metadata,
        }  # fmt: skip
        known, creating = (
            ({}, {})
            if workspace is None
            else _parent_of(self, "workspace_id", workspace, Workspace)
        )
        init_new(self, {**values, **known}, creating)

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

    @staticmethod
    def values_from_wire(wire: wr.Model) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "model_name", "version", "name")

    def _check(self, name: str, value: Any) -> None:
        # A version's name may be empty (it is optional); only its metadata has rules.
        if name == "metadata":
            check_json_object("ModelVersion.metadata", value)

    @staticmethod
    def values_from_wire(wire: wr.ModelVersion) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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


def _parent_of(
    obj: Resource, key_field: str, parent: Resource | int, cls: type[Resource]
) -> tuple[dict[str, Any], dict[str, Resource]]:
    """A new object's parent: an existing one (or its id) is its key now (the values to hold);
    a new one is created first (the objects to create first), and its id filled in then."""
    where = f"{type(obj).__name__}({key_field.removesuffix('_id')})"
    if isinstance(parent, cls) and parent.is_new:
        return {}, {key_field: parent}
    key = (
        parent.pk
        if isinstance(parent, cls)
        else check_id(where, parent, what=f"a {cls.__name__} or its id")
    )
    return {key_field: key}, {}
