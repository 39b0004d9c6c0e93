"""The resources users script with: typed, fully hydrated, with declared relationships.

Relationships to many (``Workspace.projects``, ``Experiment.trials``...) are query objects: no
request until iterated. Relationships to one (``Experiment.project``...) resolve through the
session's identity map, fetching a missing object once per session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final

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
from ._base import Resource, TagSet
from ._values import CheckpointSummary, MetricSummary, Note, Validation, summary_from_wire

if TYPE_CHECKING:
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


def _default(session: Session | None) -> Session:
    from .._session import default_session

    return session if session is not None else default_session()


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

    @property
    def projects(self) -> ProjectQuery:
        """This workspace's projects (lazy)."""
        return Project.query(self._session).filter(workspace_id=self.id)

    @property
    def models(self) -> ModelQuery:
        """The models registered in this workspace (lazy)."""
        return Model.query(self._session).filter(workspace_id=self.id)

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

    @property
    def workspace(self) -> Workspace:
        """The workspace holding this project (from the identity map; fetched once)."""
        return _default(self._session).resolve(Workspace, self.workspace_id)

    @property
    def experiments(self) -> ExperimentQuery:
        """This project's experiments (lazy)."""
        return Experiment.query(self._session).filter(project_id=self.id)

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
    hyperparameters: dict[str, Any]
    config: dict[str, Any]
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

    @property
    def project(self) -> Project:
        """The experiment's project (identity map; fetched once)."""
        return _default(self._session).resolve(Project, self.project_id)

    @property
    def trials(self) -> TrialQuery:
        """The experiment's trials (lazy)."""
        return Trial.query(self._session).filter(experiment_id=self.id)

    @property
    def checkpoints(self) -> CheckpointQuery:
        """The experiment's checkpoints (lazy)."""
        return Checkpoint.query(self._session).filter(experiment_id=self.id)

    # Fields a list endpoint does not send: GetExperiments and SearchExperiments replace notes
    # with "omitted", leave trialIds empty and send no originalConfig (getExperimentColumns).
    LIST_OMITS: ClassVar[frozenset[str]] = frozenset({"trial_ids", "original_config"})

    @staticmethod
    def values_from_wire(wire: wx.Experiment, *, listed: bool) -> dict[str, Any]:
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
        if listed:
            for name in Experiment.LIST_OMITS:
                del values[name]
            if wire.notes == "omitted":
                del values["notes"]
            if wire.best_trial_searcher_metric is None:
                del values["best_trial_searcher_metric"]
        return values


class Trial(Resource):
    """A trial (the runs API calls it a run): one set of hyperparameters being trained."""

    id: int
    experiment_id: int
    state: TrialState
    start_time: Timestamp | None
    end_time: Timestamp | None
    restarts: int
    hparams: dict[str, Any]
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

    @property
    def experiment(self) -> Experiment:
        """The trial's experiment (identity map; fetched once)."""
        return _default(self._session).resolve(Experiment, self.experiment_id)

    @property
    def checkpoints(self) -> CheckpointQuery:
        """The trial's checkpoints (lazy)."""
        return Checkpoint.query(self._session).filter(trial_id=self.id)

    @property
    def best_validation_metrics(self) -> dict[str, Any]:
        """The metrics of the trial's best validation (empty when it has none)."""
        return dict(self.best_validation.metrics) if self.best_validation else {}

    @staticmethod
    def values_from_wire(wire: wx.Trial) -> dict[str, Any]:
        # A trial that never validated reports searcherMetricValue 0 (a plain double): with no
        # best validation there is no searcher metric.
        searcher = wire.searcher_metric_value if wire.best_validation is not None else None
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
    hparams: dict[str, Any]
    storage_id: int | None

    @classmethod
    def query(cls, session: Session | None = None) -> CheckpointQuery:
        """Checkpoints; the master lists them per experiment or per trial."""
        return _queries().CheckpointQuery(cls, session)  # type: ignore[no-any-return]

    @property
    def trial(self) -> Trial:
        """The trial that saved this checkpoint (identity map; fetched once)."""
        if self.trial_id is None:
            from ..errors import QueryError

            raise QueryError(f"checkpoint {self.uuid} was not saved by a trial")
        return _default(self._session).resolve(Trial, self.trial_id)

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

    @property
    def workspace(self) -> Workspace:
        return _default(self._session).resolve(Workspace, self.workspace_id)

    @property
    def versions(self) -> ModelVersionQuery:
        """The model's versions (lazy)."""
        return ModelVersion.query(self._session).filter(model_id=self.id)

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

    @property
    def model(self) -> Model:
        """The model this version belongs to (identity map; fetched once)."""
        return _default(self._session).resolve(Model, self.model_id)

    @property
    def checkpoint(self) -> Checkpoint:
        """The registered checkpoint (identity map; fetched once)."""
        return _default(self._session).resolve(Checkpoint, self.checkpoint_uuid)

    @classmethod
    def _repr_fields(cls) -> frozenset[str]:
        return frozenset({"id", "version", "model_name", "name"})

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
