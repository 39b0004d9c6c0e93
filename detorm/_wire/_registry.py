"""Workspaces, projects, and the model registry (models and model versions)."""

from __future__ import annotations

from ._base import Struct, Timestamp, WireModel, absent
from ._common import AgentUserGroup
from ._enums import ColumnType, LocationType, WorkspaceState
from ._experiments import Checkpoint

__all__ = [
    "Model",
    "ModelVersion",
    "Note",
    "Project",
    "ProjectColumn",
    "Workspace",
]


class Workspace(WireModel):
    """``workspacev1.Workspace``."""

    id: int = 0
    name: str = ""
    archived: bool = False
    username: str = ""
    immutable: bool = False
    num_projects: int = 0
    pinned: bool = False
    user_id: int = 0
    num_experiments: int = 0
    state: WorkspaceState = WorkspaceState.UNSPECIFIED
    error_message: str = ""
    agent_user_group: AgentUserGroup | None = absent()
    checkpoint_storage_config: Struct | None = absent()
    pinned_at: Timestamp | None = absent()
    default_compute_pool: str = ""
    default_aux_pool: str = ""
    auto_created_namespace: str | None = absent()


class Note(WireModel):
    """A project note: a named markdown text."""

    name: str = ""
    contents: str = ""


class Project(WireModel):
    """``projectv1.Project``. ``archived`` is true when the project or its workspace is."""

    id: int = 0
    name: str = ""
    workspace_id: int = 0
    description: str = ""
    last_experiment_started_at: Timestamp | None = None
    notes: list[Note] = []
    num_experiments: int = 0
    num_active_experiments: int = 0
    archived: bool = False
    username: str = ""
    immutable: bool = False
    user_id: int = 0
    workspace_name: str = ""
    state: WorkspaceState = WorkspaceState.UNSPECIFIED
    error_message: str = ""
    key: str = ""
    num_runs: int = 0


class ProjectColumn(WireModel):
    """A column that a project's experiments or runs can be filtered and sorted on."""

    column: str = ""
    location: LocationType = LocationType.UNSPECIFIED
    type: ColumnType = ColumnType.UNSPECIFIED
    display_name: str = ""


class Model(WireModel):
    """``modelv1.Model``: a registered model."""

    name: str = ""
    description: str = ""
    metadata: Struct | None = None
    creation_time: Timestamp | None = None
    last_updated_time: Timestamp | None = None
    id: int = 0
    num_versions: int = 0
    labels: list[str] = []
    username: str = ""
    workspace_id: int = 0
    user_id: int = 0
    archived: bool = False
    notes: str = ""


class ModelVersion(WireModel):
    """``modelv1.ModelVersion``: a checkpoint registered under a model."""

    model: Model | None = None
    checkpoint: Checkpoint | None = None
    version: int = 0
    creation_time: Timestamp | None = None
    id: int = 0
    name: str = ""
    metadata: Struct | None = None
    last_updated_time: Timestamp | None = None
    comment: str = ""
    username: str = ""
    user_id: int = 0
    labels: list[str] = []
    notes: str = ""
