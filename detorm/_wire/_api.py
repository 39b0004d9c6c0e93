"""Request bodies and response envelopes of the REST endpoints detorm uses (``api/v1``).

Request models are sent with ``exclude_unset=True``: a field left unset is not sent, which is how
the master's wrapper types (``StringValue`` and friends) tell "leave unchanged" from "set to ''".
"""

from __future__ import annotations

from typing import Any

from ._base import Double, Struct, WireModel, absent
from ._cluster import ClusterMessage, SSOProvider
from ._common import Pagination, User
from ._enums import ExperimentState
from ._experiments import (
    Checkpoint,
    Experiment,
    FlatRun,
    JobSummary,
    MetricsReport,
    SearchExperimentExperiment,
    Trial,
)
from ._registry import Model, ModelVersion, Note, Project, ProjectColumn, Workspace

__all__ = [
    "ActionResult",
    "BulkActionRequest",
    "BulkActionResponse",
    "BulkExperimentFilters",
    "CheckpointResponse",
    "CheckpointsResponse",
    "ContinueExperimentResponse",
    "CreateExperimentResponse",
    "DeleteCheckpointsRequest",
    "DeleteResponse",
    "ExperimentResponse",
    "ExperimentsResponse",
    "GetExperimentResponse",
    "GetMasterResponse",
    "GetMetricsResponse",
    "GetModelVersionsResponse",
    "LabelsResponse",
    "ListRPsBoundToWorkspaceResponse",
    "LoginRequest",
    "LoginResponse",
    "ModelDefResponse",
    "ModelResponse",
    "ModelVersionResponse",
    "ModelsResponse",
    "MoveExperimentRequest",
    "MoveExperimentsRequest",
    "MoveModelRequest",
    "MoveProjectRequest",
    "MoveRunsRequest",
    "Paginated",
    "PatchExperiment",
    "PatchModel",
    "PatchModelVersion",
    "PatchProject",
    "PatchResources",
    "PatchWorkspace",
    "PostCheckpointMetadataRequest",
    "PostModelRequest",
    "PostModelVersionRequest",
    "PostProjectRequest",
    "PostWorkspaceRequest",
    "ProjectColumnsResponse",
    "ProjectNotesResponse",
    "ProjectResponse",
    "ProjectsResponse",
    "ResourcePool",
    "ResourcePoolStats",
    "ResourcePoolResponse",
    "ResourcePoolsResponse",
    "RunActionRequest",
    "SearchExperimentsResponse",
    "SearchRequest",
    "SearchRunsResponse",
    "TrialResponse",
    "TrialsResponse",
    "UserResponse",
    "UsersResponse",
    "WorkspaceResponse",
    "WorkspacesResponse",
]


class Paginated(WireModel):
    """Base of every paged list response; alone it parses a bare ``{"pagination": ...}``."""

    pagination: Pagination | None = None


# --- auth and users -------------------------------------------------------------------------
class LoginRequest(WireModel):
    username: str = ""
    password: str = ""
    is_hashed: bool = False


class LoginResponse(WireModel):
    token: str = ""
    user: User | None = None


class UserResponse(WireModel):
    """GetMe, CurrentUser, GetUser and GetUserByUsername."""

    user: User | None = None


class UsersResponse(Paginated):
    users: list[User] = []


# --- workspaces and projects ----------------------------------------------------------------
class WorkspaceResponse(WireModel):
    """GetWorkspace, PostWorkspace and PatchWorkspace."""

    workspace: Workspace | None = None


class WorkspacesResponse(Paginated):
    workspaces: list[Workspace] = []


class ListRPsBoundToWorkspaceResponse(Paginated):
    """ListRPsBoundToWorkspace: the names of the pools a workspace may use."""

    resource_pools: list[str] = []


class PostWorkspaceRequest(WireModel):
    name: str = ""


class PatchWorkspace(WireModel):
    name: str | None = None
    checkpoint_storage_config: Struct | None = None
    default_compute_resource_pool: str | None = None
    default_aux_resource_pool: str | None = None


class DeleteResponse(WireModel):
    """DeleteWorkspace and DeleteProject: ``completed`` once nothing is left to delete."""

    completed: bool = False


class ProjectResponse(WireModel):
    """GetProject, PostProject and PatchProject."""

    project: Project | None = None


class ProjectsResponse(Paginated):
    """GetWorkspaceProjects."""

    projects: list[Project] = []


class PostProjectRequest(WireModel):
    name: str = ""
    description: str = ""
    workspace_id: int = 0
    key: str | None = absent()


class PatchProject(WireModel):
    name: str | None = None
    description: str | None = None
    key: str | None = None


class MoveProjectRequest(WireModel):
    project_id: int = 0
    destination_workspace_id: int = 0


class ProjectColumnsResponse(WireModel):
    columns: list[ProjectColumn] = []


class ProjectNotesResponse(WireModel):
    notes: list[Note] = []


# --- experiments ----------------------------------------------------------------------------
class GetExperimentResponse(WireModel):
    experiment: Experiment | None = None
    job_summary: JobSummary | None = None
    config: Struct | None = None


class CreateExperimentResponse(WireModel):
    """CreateExperiment: the experiment as GetExperiment shows it, its active config and the
    launch warnings (``LAUNCH_WARNING_CURRENT_SLOTS_EXCEEDED``). With ``validateOnly`` the
    master answers an empty experiment."""

    experiment: Experiment | None = None
    config: Struct | None = None
    warnings: list[str] = []


class ContinueExperimentResponse(WireModel):
    """ContinueExperiment: the experiment as GetExperiment shows it (no config) and warnings."""

    experiment: Experiment | None = None
    warnings: list[str] = []


class ExperimentResponse(WireModel):
    """PatchExperiment."""

    experiment: Experiment | None = None


class ExperimentsResponse(Paginated):
    """GetExperiments."""

    experiments: list[Experiment] = []


class PatchResources(WireModel):
    max_slots: int | None = absent()
    weight: Double | None = absent()
    priority: int | None = absent()


class PatchExperiment(WireModel):
    """The body of PatchExperiment; ``labels`` replaces the whole list."""

    id: int = 0
    name: str | None = None
    description: str | None = None
    notes: str | None = None
    labels: list[Any] | None = None
    resources: PatchResources | None = absent()


class LabelsResponse(WireModel):
    """PutExperimentLabel and DeleteExperimentLabel: the labels after the edit."""

    labels: list[str] = []


class MoveExperimentRequest(WireModel):
    experiment_id: int = 0
    destination_project_id: int = 0


class BulkExperimentFilters(WireModel):
    """The ``filters`` of a bulk experiment action; when present, ``experimentIds`` is ignored."""

    description: str = ""
    name: str = ""
    labels: list[str] = []
    archived: bool | None = None
    states: list[ExperimentState] = []
    user_ids: list[int] = []
    project_id: int = 0
    excluded_experiment_ids: list[int] = []


class BulkActionRequest(WireModel):
    """Activate/Pause/Cancel/Kill/Archive/Unarchive/DeleteExperiments."""

    experiment_ids: list[int] = []
    filters: BulkExperimentFilters | None = None
    project_id: int = 0


class MoveExperimentsRequest(BulkActionRequest):
    destination_project_id: int = 0


class ActionResult(WireModel):
    """One id's outcome in a bulk action; ``error`` is ``""`` on success."""

    error: str = ""
    id: int = 0


class BulkActionResponse(WireModel):
    results: list[ActionResult] = []


class SearchRequest(WireModel):
    """SearchExperiments and SearchRuns; ``filter`` is a JSON document encoded as a string."""

    project_id: int | None = absent()
    offset: int = 0
    limit: int = 0
    sort: str | None = absent()
    filter: str | None = absent()


class SearchExperimentsResponse(Paginated):
    experiments: list[SearchExperimentExperiment] = []


class SearchRunsResponse(Paginated):
    runs: list[FlatRun] = []


class RunActionRequest(WireModel):
    """Kill/Delete/Archive/Unarchive/Pause/ResumeRuns."""

    run_ids: list[int] = []
    project_id: int = 0
    filter: str | None = absent()


class MoveRunsRequest(WireModel):
    run_ids: list[int] = []
    source_project_id: int = 0
    destination_project_id: int = 0
    filter: str | None = absent()
    skip_multitrial: bool = False


class GetMasterResponse(WireModel):
    """GetMaster (``GET /api/v1/master``), every field of master 0.38.1."""

    version: str = ""
    master_id: str = ""
    cluster_id: str = ""
    cluster_name: str = ""
    telemetry_enabled: bool = False
    sso_providers: list[SSOProvider] = []
    external_login_uri: str = ""
    external_logout_uri: str = ""
    branding: str = ""
    rbac_enabled: bool = False
    product: str = "PRODUCT_UNSPECIFIED"  # GetMasterResponse.Product
    feature_switches: list[str] = []
    user_management_enabled: bool = False
    strict_job_queue_control: bool = False
    cluster_message: ClusterMessage | None = absent()  # proto3 optional
    has_custom_logo: bool = False


class ModelDefResponse(WireModel):
    """GetModelDef: the experiment's code as a base64-encoded .tar.gz."""

    b64_tgz: str = ""


# --- trials, checkpoints, metrics -----------------------------------------------------------
class TrialResponse(WireModel):
    trial: Trial | None = None


class TrialsResponse(Paginated):
    """GetExperimentTrials."""

    trials: list[Trial] = []


class CheckpointResponse(WireModel):
    """GetCheckpoint and PostCheckpointMetadata."""

    checkpoint: Checkpoint | None = None


class CheckpointsResponse(Paginated):
    """GetExperimentCheckpoints and GetTrialCheckpoints."""

    checkpoints: list[Checkpoint] = []


class PostCheckpointMetadataRequest(WireModel):
    checkpoint: Checkpoint | None = None


class DeleteCheckpointsRequest(WireModel):
    checkpoint_uuids: list[str] = []


class GetMetricsResponse(WireModel):
    """One line of the GetMetrics stream: up to 1000 reports of one trial."""

    metrics: list[MetricsReport] = []


# --- model registry -------------------------------------------------------------------------
class ModelResponse(WireModel):
    """GetModel, PostModel and PatchModel."""

    model: Model | None = None


class ModelsResponse(Paginated):
    models: list[Model] = []


class PostModelRequest(WireModel):
    name: str = ""
    description: str = ""
    metadata: Struct | None = None
    labels: list[str] = []
    workspace_name: str | None = absent()
    workspace_id: int | None = absent()
    notes: str = ""


class PatchModel(WireModel):
    name: str | None = None
    description: str | None = None
    metadata: Struct | None = None
    labels: list[Any] | None = None
    notes: str | None = None
    workspace_name: str | None = absent()
    workspace_id: int | None = absent()


class MoveModelRequest(WireModel):
    model_name: str = ""
    destination_workspace_id: int = 0


class ModelVersionResponse(WireModel):
    """GetModelVersion, PostModelVersion and PatchModelVersion."""

    model_version: ModelVersion | None = None


class GetModelVersionsResponse(Paginated):
    model: Model | None = None
    model_versions: list[ModelVersion] = []


class PostModelVersionRequest(WireModel):
    model_name: str = ""
    checkpoint_uuid: str = ""
    name: str = ""
    comment: str = ""
    metadata: Struct | None = None
    labels: list[str] = []
    notes: str = ""


class PatchModelVersion(WireModel):
    checkpoint: Checkpoint | None = None
    name: str | None = None
    metadata: Struct | None = None
    comment: str | None = None
    labels: list[Any] | None = None
    notes: str | None = None


# --- resource pools and agents ------------------------------------------------------------
class ResourcePoolStats(WireModel):
    """``jobv1.QueueStats`` of a pool."""

    queued_count: int = 0
    scheduled_count: int = 0


class ResourcePool(WireModel):
    """``resourcepoolv1.ResourcePool``; the cloud provisioning fields are kept as extras."""

    name: str = ""
    description: str = ""
    type: str = "RESOURCE_POOL_TYPE_UNSPECIFIED"
    num_agents: int = 0
    slots_available: int = 0
    slots_used: int = 0
    slot_type: str = "TYPE_UNSPECIFIED"
    aux_container_capacity: int = 0
    aux_containers_running: int = 0
    default_compute_pool: bool = False
    default_aux_pool: bool = False
    preemptible: bool = False
    min_agents: int = 0
    max_agents: int = 0
    slots_per_agent: int = 0
    scheduler_type: str = "SCHEDULER_TYPE_UNSPECIFIED"
    scheduler_fitting_policy: str = "FITTING_POLICY_UNSPECIFIED"
    location: str = ""
    accelerator: str = ""
    stats: ResourcePoolStats | None = absent()
    cluster_name: str = ""


class ResourcePoolResponse(WireModel):
    resource_pool: ResourcePool | None = None


class ResourcePoolsResponse(Paginated):
    resource_pools: list[ResourcePool] = []
