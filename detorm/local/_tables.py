"""SQLite tables of detorm.local (SQLModel).

The layout follows the real master's Postgres schema where it matters for behaviour (labels,
name and description live in the experiment config; summary metrics on the trial; metric rows as
JSON documents), with a few denormalised columns SQLite needs to filter and sort quickly. JSON
columns hold text exactly as it is sent on the wire (NaN as strings), so responses are built
without re-encoding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "AllocationRow",
    "CheckpointRow",
    "ClusterMessageRow",
    "ExperimentRow",
    "FaultRow",
    "LocalIdRedirectRow",
    "MetricRow",
    "ModelRow",
    "ModelVersionRow",
    "ProjectRow",
    "RunHparamRow",
    "SimulatedExperimentRow",
    "SimulatedTrialRow",
    "StorageBackendRow",
    "SystemMetricRow",
    "TaskLogRow",
    "TaskConfigPolicyRow",
    "TaskRow",
    "TemplateRow",
    "TrialLogRow",
    "TrialProfilerMetricsRow",
    "TrialRow",
    "UserRow",
    "UserSessionRow",
    "WebhookRow",
    "WebhookTestEventRow",
    "WebhookTriggerRow",
    "WorkspacePinRow",
    "WorkspaceRow",
]


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


class UserRow(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True)
    # Salted-SHA-512 hex as the client sends it, then hashed again (PBKDF2) at rest; NULL means
    # "no password": only an empty password matches, as on a fresh master.
    password_hash: str | None = None
    admin: bool = False
    active: bool = True
    remote: bool = False
    display_name: str = ""
    modified_at: datetime
    last_auth_at: datetime | None = None
    agent_uid: int | None = None
    agent_gid: int | None = None
    agent_user: str | None = None
    agent_group: str | None = None


class ClusterMessageRow(SQLModel, table=True):
    """``cluster_messages``: every message set, the newest (largest id) the current one; a new
    message or a clear ends the open ones (``end_time`` = now)."""

    __tablename__ = "cluster_messages"

    id: int | None = Field(default=None, primary_key=True)
    created_by: int
    message: str
    start_time: datetime
    end_time: datetime | None = None
    created_time: datetime


class UserSessionRow(SQLModel, table=True):
    __tablename__ = "user_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token: str = Field(unique=True, index=True)
    expiry: datetime


class WorkspaceRow(SQLModel, table=True):
    __tablename__ = "workspaces"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    archived: bool = False
    immutable: bool = False
    user_id: int = Field(foreign_key="users.id")
    state: str = "WORKSPACE_STATE_UNSPECIFIED"
    error_message: str = ""
    default_compute_pool: str = ""
    default_aux_pool: str = ""
    checkpoint_storage_config: Any = _json()
    created_at: datetime
    # the workspace's agent user group (columns uid, user_, gid, group_ on the master)
    agent_uid: int | None = None
    agent_gid: int | None = None
    agent_user: str | None = None
    agent_group: str | None = None


class WorkspacePinRow(SQLModel, table=True):
    __tablename__ = "workspace_pins"

    workspace_id: int = Field(foreign_key="workspaces.id", primary_key=True)
    user_id: int = Field(foreign_key="users.id", primary_key=True)
    created_at: datetime


class ProjectRow(SQLModel, table=True):
    __tablename__ = "projects"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    workspace_id: int = Field(foreign_key="workspaces.id", index=True)
    description: str = ""
    archived: bool = False
    immutable: bool = False
    user_id: int = Field(foreign_key="users.id")
    key: str = Field(unique=True)
    notes: Any = _json()  # [{"name", "contents"}]
    state: str = "WORKSPACE_STATE_UNSPECIFIED"
    error_message: str = ""
    created_at: datetime

    __table_args__ = (UniqueConstraint("workspace_id", "name"),)


class ExperimentRow(SQLModel, table=True):
    """An experiment. ``config`` is the expconf; name, description and labels are read from it
    on the real master, and are mirrored here in columns for filtering."""

    __tablename__ = "experiments"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    state: str = Field(index=True)  # DB name, e.g. "ACTIVE", "COMPLETED" (no STATE_ prefix)
    archived: bool = Field(default=False, index=True)
    name: str = ""
    description: str = ""
    labels: Any = _json(nullable=False)  # list[str], in stored order
    config: Any = _json(nullable=False)
    original_config: str = Field(default="", sa_column=Column(Text, nullable=False))
    notes: str = ""
    start_time: datetime = Field(index=True)
    end_time: datetime | None = None
    progress: float | None = None
    parent_id: int | None = None
    job_id: str = ""
    checkpoint_size: int = 0
    checkpoint_count: int = 0
    best_trial_id: int | None = None
    unmanaged: bool = False
    external_experiment_id: str | None = None
    model_definition: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    searcher_type: str = ""
    searcher_metric: str = ""
    smaller_is_better: bool = True
    resource_pool: str = "default"
    priority: int | None = None
    weight: float = 1.0
    max_slots: int | None = None


class SimulatedExperimentRow(SQLModel, table=True):
    """An experiment whose trials detorm.local runs by simulation: one created by
    ``CreateExperiment`` (not unmanaged). Seeded experiments have no row and keep the states
    they were given. A table of its own rather than a column, so that a database written by an
    earlier detorm.local opens unchanged (``create_all`` adds tables, never columns)."""

    __tablename__ = "simulated_experiments"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)


class SimulatedTrialRow(SQLModel, table=True):
    """Where the simulation (``_simulation.py``) has brought a trial of a simulated experiment:
    the allocation it trains in, when and from which batch that allocation started, the rate
    it trains at, and the last batch it processed."""

    __tablename__ = "simulated_trials"

    trial_id: int = Field(foreign_key="trials.id", ondelete="CASCADE", primary_key=True)
    allocation_id: str = ""
    started_at: datetime
    start_batches: int = 0
    batches: int = 0
    batches_per_second: float = 0.0


class TrialFaultRow(SQLModel, table=True):
    """A test-only fault of a simulated trial (``--enable-test-faults``): when the trial reaches
    ``at_batches`` its container exits with ``exit_code``; ``remaining`` counts the crashes left
    (None: every time it gets there)."""

    __tablename__ = "trial_faults"

    id: int | None = Field(default=None, primary_key=True)
    trial_id: int = Field(foreign_key="trials.id", ondelete="CASCADE", index=True)
    at_batches: int = 0
    exit_code: int = 1
    remaining: int | None = None


class TrialRow(SQLModel, table=True):
    """A trial, which the runs API calls a run."""

    __tablename__ = "trials"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", index=True)
    state: str = "ACTIVE"  # DB name without prefix
    start_time: datetime
    end_time: datetime | None = None
    restarts: int = 0
    hparams: Any = _json(nullable=False)
    total_batches_processed: int = 0
    runner_state: str = ""
    wall_clock_time: float = 0.0
    warm_start_checkpoint_uuid: str = ""
    task_id: str = ""
    summary_metrics: Any = _json()
    searcher_metric_value: float | None = None
    best_validation_id: int | None = None
    latest_validation_id: int | None = None
    best_checkpoint_uuid: str | None = None
    checkpoint_size: int = 0
    checkpoint_count: int = 0
    metadata_: Any = Field(default=None, sa_column=Column("metadata", JSON))
    log_retention_days: int | None = None
    archived: bool = False
    local_id: int = 0
    external_run_id: str | None = None
    # trials.run_id: the trial's current run, which ReportTrialMetrics checks trialRunId against
    run_id: int = 0


class RunHparamRow(SQLModel, table=True):
    """Flattened hyperparameters of a run, for the runs filter (``run_hparams`` on the master)."""

    __tablename__ = "run_hparams"

    run_id: int = Field(foreign_key="trials.id", primary_key=True)
    hparam: str = Field(primary_key=True)
    number_val: float | None = None
    text_val: str | None = None
    bool_val: bool | None = None


class MetricRow(SQLModel, table=True):
    """One metric report; ``metrics`` is ``{"avg_metrics"|"validation_metrics": {...}, ...}``."""

    __tablename__ = "metrics"

    id: int | None = Field(default=None, primary_key=True)
    trial_id: int = Field(foreign_key="trials.id")
    trial_run_id: int = 0
    total_batches: int = 0
    end_time: datetime
    metric_group: str
    metrics: str = Field(sa_column=Column(Text, nullable=False))  # wire JSON text
    archived: bool = False

    __table_args__ = (
        Index(
            "ix_metrics_trial_group", "trial_id", "metric_group", "trial_run_id", "total_batches"
        ),
    )


class SystemMetricRow(SQLModel, table=True):
    """A report of a profiling group (``gpu``, ``cpu``, ``memory``, ``disk``, ``network``): the
    master's ``system_metrics`` partition of ``metrics``, which keeps ``total_batches`` NULL and
    the reported values bare (``_addTrialProfilingMetricsTx``). Its ids come from the sequence
    of ``metrics`` (:func:`detorm.local._metric_reports.next_metric_id`). A table of its own, so
    that older databases open unchanged."""

    __tablename__ = "system_metrics"

    id: int = Field(primary_key=True)
    trial_id: int = Field(foreign_key="trials.id", index=True)
    trial_run_id: int = 0
    total_batches: int | None = None
    end_time: datetime
    metric_group: str
    metrics: str = Field(sa_column=Column(Text, nullable=False))  # wire JSON text
    archived: bool = False


class StorageBackendRow(SQLModel, table=True):
    """``storage_backend``: a checkpoint storage config, added once (``storage.AddBackend``) by
    ``RunPrepareForReporting``; its id is what checkpoints report as ``storageId``."""

    __tablename__ = "storage_backends"

    id: int | None = Field(default=None, primary_key=True)
    config: str = Field(sa_column=Column(Text, nullable=False, unique=True))  # canonical JSON


class TrialProfilerMetricsRow(SQLModel, table=True):
    """``trial_profiler_metrics``: what ``PostTrialProfilerMetricsBatch`` inserts. Nothing reads
    it on the master 0.38.1 (the profiler streams read ``system_metrics``)."""

    __tablename__ = "trial_profiler_metrics"

    id: int | None = Field(default=None, primary_key=True)
    values: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of float32
    batches: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of int32
    ts: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of RFC 3339 times
    labels: str = Field(sa_column=Column(Text, nullable=False))  # protojson of the labels


class CheckpointRow(SQLModel, table=True):
    __tablename__ = "checkpoints"

    uuid: str = Field(primary_key=True)
    trial_id: int | None = Field(default=None, foreign_key="trials.id", index=True)
    task_id: str = ""
    allocation_id: str | None = None
    report_time: datetime
    state: str = "COMPLETED"  # DB name without prefix
    resources: Any = _json(nullable=False)  # {file: size}
    metadata_: Any = Field(default=None, sa_column=Column("metadata", JSON))
    storage_id: int | None = None
    total_batches: int = 0
    size: int = 0


class TrialLogRow(SQLModel, table=True):
    __tablename__ = "trial_logs"

    id: int | None = Field(default=None, primary_key=True)
    trial_id: int = Field(foreign_key="trials.id", index=True)
    timestamp: datetime
    level: str = "LOG_LEVEL_INFO"
    log: str = ""
    agent_id: str | None = None
    container_id: str | None = None
    rank_id: int | None = None
    source: str | None = None
    stdtype: str | None = None


class ModelRow(SQLModel, table=True):
    __tablename__ = "models"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str = ""
    metadata_: Any = Field(default=None, sa_column=Column("metadata", JSON))
    creation_time: datetime
    last_updated_time: datetime
    labels: Any = _json(nullable=False)
    user_id: int = Field(foreign_key="users.id")
    workspace_id: int = Field(foreign_key="workspaces.id")
    archived: bool = False
    notes: str = ""


class ModelVersionRow(SQLModel, table=True):
    __tablename__ = "model_versions"

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="models.id", index=True)
    version: int
    checkpoint_uuid: str = Field(foreign_key="checkpoints.uuid")
    name: str = ""
    comment: str = ""
    notes: str = ""
    labels: Any = _json(nullable=False)
    metadata_: Any = Field(default=None, sa_column=Column("metadata", JSON))
    user_id: int = Field(foreign_key="users.id")
    creation_time: datetime
    last_updated_time: datetime

    __table_args__ = (UniqueConstraint("model_id", "version"),)


class LocalIdRedirectRow(SQLModel, table=True):
    """``local_id_redirect``: run local ids kept under a project key (written when a project with
    runs is edited, or runs move); a key listed here cannot be taken by another project."""

    __tablename__ = "local_id_redirect"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="trials.id", ondelete="CASCADE", index=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    project_key: str = Field(index=True)
    local_id: int = 0


class FaultRow(SQLModel, table=True):
    """A test-only fault (see ``detorm.local`` docs): fail matching requests or bulk ids."""

    __tablename__ = "faults"

    id: int | None = Field(default=None, primary_key=True)
    method: str = "*"
    path_regex: str = ".*"
    status: int = 500
    message: str = "injected fault"
    ids: Any = _json()  # bulk actions: fail only these ids, inside a 200 response
    remaining: int | None = None  # None = until cleared


class TemplateRow(SQLModel, table=True):
    """``templates`` (``20200401000000_initial``, ``20230511153117_add-template-workspace``): the
    name is the primary key (case-sensitive). ``config`` is the stored jsonb as the master sends
    it back: Go's JSON text of the Struct (keys sorted), written as is into responses."""

    __tablename__ = "templates"

    name: str = Field(primary_key=True)
    config: str = Field(sa_column=Column(Text, nullable=False))
    workspace_id: int = Field(foreign_key="workspaces.id", index=True)


# --- tasks and the simulated cluster (_scheduler.py, _routes/commands.py, _routes/tasks.py) ---------


class TaskRow(SQLModel, table=True):
    """A command, notebook, shell or TensorBoard: the master's ``tasks`` row (id, type, times)
    with its ``command_snapshots`` spec and ``jobs`` row folded in. A trial's task is its trial
    (``trials.task_id``) and has no row here."""

    __tablename__ = "tasks"

    task_id: str = Field(primary_key=True)
    task_type: str  # COMMAND, NOTEBOOK, SHELL, TENSORBOARD (model.TaskType)
    job_id: str = Field(index=True)
    owner_id: int = Field(foreign_key="users.id")
    # no foreign key: deleting a workspace kills its tasks and keeps their rows
    workspace_id: int = Field(index=True)
    start_time: datetime  # the registered time, truncated to milliseconds
    end_time: datetime | None = None
    description: str = ""
    config: Any = _json(nullable=False)  # the CommandConfig as the master marshals it
    resource_pool: str = "default"
    slots: int = 1
    priority: int = 42
    weight: float = 1.0
    context_directory: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    experiment_ids: Any = _json()  # TensorBoards: the request's ids
    trial_ids: Any = _json()
    private_key: str | None = None  # shells
    public_key: str | None = None
    notebook_token: str | None = None
    proxy_port: int | None = None  # notebooks, shells, TensorBoards
    agent_user_group: Any = _json()
    exit_status: str | None = None  # AllocationExited.String() once the allocation exited
    execute: bool = False  # `detorm serve --execute-commands`: a real subprocess
    owner_session: str | None = None  # the task's user session token (deleted on exit)


class AllocationRow(SQLModel, table=True):
    """``allocations``, with what the resource manager knows of the request: the simulated
    scheduler's state. Trials' allocations are here too (``job_id`` their experiment's)."""

    __tablename__ = "allocations"

    allocation_id: str = Field(primary_key=True)
    task_id: str = Field(index=True)
    job_id: str = Field(index=True)
    name: str = ""
    resource_pool: str = "default"
    slots: int = 0
    # model.AllocationState: PENDING, ASSIGNED, PULLING, STARTING, RUNNING, TERMINATING, TERMINATED
    state: str = Field(default="PENDING", index=True)
    requested_at: datetime  # AllocateRequest.RequestTime
    submitted_at: datetime  # the job's submission time: its queue position
    assigned_at: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    is_ready: bool | None = None
    exit_reason: str | None = None
    exit_err: str | None = None
    status_code: int | None = None
    container_id: str | None = None
    devices: Any = _json()  # the agent's device ids it holds
    # the simulation, fixed when the allocation is requested
    pull_seconds: float = 0.0
    start_seconds: float = 0.0
    run_seconds: float | None = None  # None: runs until killed
    kill_at: datetime | None = None  # a kill's resources exit then
    exit_code: int | None = None  # an executed command's real exit status


class TaskLogRow(SQLModel, table=True):
    """``task_logs`` of commands, notebooks, shells and TensorBoards (a trial's are in
    ``trial_logs``)."""

    __tablename__ = "task_logs"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True)
    allocation_id: str | None = None
    timestamp: datetime
    level: str | None = None  # LOG_LEVEL_INFO...; None: no level (a task's own lines)
    log: str = ""
    agent_id: str | None = None
    container_id: str | None = None
    rank_id: int | None = None
    source: str | None = None
    stdtype: str | None = None


class WebhookRow(SQLModel, table=True):
    """``webhooks``: ``workspace_id`` NULL for a global webhook; the master's unique index
    ``name_workspace_key`` (name, workspace_id) lets global webhooks share a name (NULLs are
    distinct in SQLite as in Postgres). Ids are never reused (SERIAL)."""

    __tablename__ = "webhooks"
    __table_args__ = (
        UniqueConstraint("name", "workspace_id", name="name_workspace_key"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_type: str  # DEFAULT, SLACK
    url: str
    mode: str  # WORKSPACE, SPECIFIC
    workspace_id: int | None = None
    name: str


class WebhookTriggerRow(SQLModel, table=True):
    """``webhook_triggers`` (deleted with their webhook: ON DELETE CASCADE on the master)."""

    __tablename__ = "webhook_triggers"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    trigger_type: str  # EXPERIMENT_STATE_CHANGE, METRIC_THRESHOLD_EXCEEDED, TASK_LOG, CUSTOM
    condition: Any = _json(nullable=False)
    webhook_id: int = Field(index=True)


class WebhookTestEventRow(SQLModel, table=True):
    """TestWebhook's requests, recorded instead of sent: detorm.local sends nothing off the
    machine (not a table of the master)."""

    __tablename__ = "webhook_test_events"

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(index=True)
    url: str
    payload: str  # the JSON body the master would have POSTed
    created_at: datetime


class TaskConfigPolicyRow(SQLModel, table=True):
    """``task_config_policies``: one row per (workspace or global, workload type); the policies
    are kept as the JSON text the master stores (``json.Marshal`` of each part)."""

    __tablename__ = "task_config_policies"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int | None = Field(default=None, index=True)  # None: global
    workload_type: str  # EXPERIMENT, NTSC
    last_updated_by: int
    last_updated_time: datetime
    invariant_config: str | None = None
    constraints: str | None = None
