"""Experiments, trials (runs), checkpoints, metric reports and log lines."""

from __future__ import annotations

from ._base import Double, Int64, Struct, Timestamp, WireModel, absent
from ._common import Metrics
from ._enums import CheckpointState, ExperimentState, LogLevel, TrialState

__all__ = [
    "Checkpoint",
    "CheckpointTrainingMetadata",
    "CheckpointWorkload",
    "Experiment",
    "FlatRun",
    "FlatRunExperiment",
    "JobSummary",
    "MetricsReport",
    "MetricsWorkload",
    "SearchExperimentExperiment",
    "Trial",
    "TrialLogsFieldsResponse",
    "TrialLogsResponse",
]


class Experiment(WireModel):
    """``experimentv1.Experiment``."""

    id: int = 0
    description: str = ""
    labels: list[str] = []
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    state: ExperimentState = ExperimentState.UNSPECIFIED
    archived: bool = False
    num_trials: int = 0
    trial_ids: list[int] = []
    display_name: str = ""
    user_id: int = 0
    username: str = ""
    resource_pool: str = ""
    searcher_type: str = ""
    searcher_metric: str = ""
    hyperparameters: Struct | None = None
    name: str = ""
    notes: str = ""
    job_id: str = ""
    forked_from: int | None = None
    progress: Double | None = None
    project_id: int = 0
    project_name: str = ""
    workspace_id: int = 0
    workspace_name: str = ""
    parent_archived: bool = False
    config: Struct | None = None
    original_config: str = ""
    project_owner_id: int = 0
    checkpoint_size: Int64 = 0
    checkpoint_count: int = 0
    best_trial_searcher_metric: Double | None = absent()
    best_trial_id: int | None = absent()
    unmanaged: bool = False
    duration: int | None = absent()
    external_experiment_id: str | None = absent()
    external_trial_id: str | None = absent()
    model_definition_size: int | None = absent()
    pachyderm_integration: Struct | None = absent()


class JobSummary(WireModel):
    """``jobv1.JobSummary``; ``state`` is a ``jobv1.State`` name such as ``STATE_QUEUED``."""

    state: str = "STATE_UNSPECIFIED"
    jobs_ahead: int = 0


class CheckpointWorkload(WireModel):
    """``trialv1.CheckpointWorkload``: a trial's best checkpoint, as listed with the trial."""

    uuid: str = ""
    end_time: Timestamp | None = None
    state: CheckpointState = CheckpointState.UNSPECIFIED
    resources: dict[str, Int64] = {}
    total_batches: int = 0
    metadata: Struct | None = None


class MetricsWorkload(WireModel):
    """``trialv1.MetricsWorkload``: one validation (best or latest) of a trial."""

    end_time: Timestamp | None = None
    metrics: Metrics | None = None
    num_inputs: int = 0
    total_batches: int = 0


class Trial(WireModel):
    """``trialv1.Trial``."""

    id: int = 0
    experiment_id: int = 0
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    state: TrialState = TrialState.UNSPECIFIED
    restarts: int = 0
    hparams: Struct | None = None
    total_batches_processed: int = 0
    best_validation: MetricsWorkload | None = None
    latest_validation: MetricsWorkload | None = None
    best_checkpoint: CheckpointWorkload | None = None
    runner_state: str = ""
    wall_clock_time: Double = 0.0
    warm_start_checkpoint_uuid: str = ""
    task_id: str = ""
    total_checkpoint_size: Int64 = 0
    checkpoint_count: int = 0
    summary_metrics: Struct | None = None
    task_ids: list[str] = []
    searcher_metric_value: Double = 0.0
    log_retention_days: int | None = absent()
    metadata: Struct | None = absent()
    log_policy_matched: str | None = absent()


class SearchExperimentExperiment(WireModel):
    """One row of SearchExperiments: the experiment and its best trial."""

    experiment: Experiment | None = None
    best_trial: Trial | None = None


class FlatRunExperiment(WireModel):
    """``runv1.FlatRunExperiment``: the experiment part of a run row."""

    id: int = 0
    searcher_type: str = ""
    searcher_metric: str = ""
    forked_from: int | None = absent()
    external_experiment_id: str | None = absent()
    resource_pool: str = ""
    progress: Double = 0.0
    description: str = ""
    name: str = ""
    unmanaged: bool = False
    is_multitrial: bool = False
    pachyderm_integration: Struct | None = absent()


class FlatRun(WireModel):
    """``runv1.FlatRun``: one row of SearchRuns (a run is a trial)."""

    id: int = 0
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    state: TrialState = TrialState.UNSPECIFIED
    labels: list[str] = []
    checkpoint_size: Int64 = 0
    checkpoint_count: int = 0
    searcher_metric_value: Double | None = absent()
    external_run_id: str | None = absent()
    hyperparameters: Struct | None = absent()
    summary_metrics: Struct | None = absent()
    user_id: int | None = absent()
    duration: int | None = absent()
    project_id: int = 0
    project_name: str = ""
    workspace_id: int = 0
    workspace_name: str = ""
    parent_archived: bool = False
    experiment: FlatRunExperiment | None = absent()
    metadata: Struct | None = absent()
    archived: bool = False
    local_id: str = ""
    log_policy_matched: str | None = absent()


class CheckpointTrainingMetadata(WireModel):
    """``checkpointv1.CheckpointTrainingMetadata``."""

    trial_id: int | None = absent()
    experiment_id: int | None = absent()
    experiment_config: Struct | None = None
    hparams: Struct | None = None
    training_metrics: Metrics | None = None
    validation_metrics: Metrics | None = None
    searcher_metric: Double | None = absent()


class Checkpoint(WireModel):
    """``checkpointv1.Checkpoint``; ``resources`` maps file names to byte sizes (int64)."""

    task_id: str = ""
    allocation_id: str | None = absent()
    uuid: str = ""
    report_time: Timestamp | None = None
    resources: dict[str, Int64] = {}
    metadata: Struct | None = None
    state: CheckpointState = CheckpointState.UNSPECIFIED
    training: CheckpointTrainingMetadata | None = None
    storage_id: int | None = absent()


class MetricsReport(WireModel):
    """``trialv1.MetricsReport``: one reported row of one metric group of one trial.

    ``metrics`` is ``{"avg_metrics": {...}}`` (``{"validation_metrics": {...}}`` for the
    validation group), with an optional ``batch_metrics`` list.
    """

    trial_id: int = 0
    end_time: Timestamp | None = None
    metrics: Struct | None = None
    total_batches: int = 0
    archived: bool = False
    id: int = 0
    trial_run_id: int = 0
    group: str = ""


class TrialLogsResponse(WireModel):
    """One trial log line. ``message`` is the legacy pre-formatted line; ``log`` the raw text."""

    id: str = ""
    timestamp: Timestamp | None = None
    message: str = ""
    level: LogLevel = LogLevel.UNSPECIFIED
    trial_id: int = 0
    agent_id: str | None = absent()
    container_id: str | None = absent()
    rank_id: int | None = absent()
    log: str | None = absent()
    source: str | None = absent()
    stdtype: str | None = absent()


class TrialLogsFieldsResponse(WireModel):
    """The distinct values of a trial's log fields."""

    agent_ids: list[str] = []
    container_ids: list[str] = []
    rank_ids: list[int] = []
    stdtypes: list[str] = []
    sources: list[str] = []
