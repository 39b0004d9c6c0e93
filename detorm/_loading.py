"""From responses to resources: the rows of each list endpoint and the single-object GETs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from . import _wire as w
from ._resources._base import Resource
from ._resources._models import (
    Checkpoint,
    Experiment,
    Model,
    ModelVersion,
    Project,
    Trial,
    User,
    Workspace,
)
from ._transport import Call, path
from .errors import QueryError

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["ROW_LOADERS", "single_fetch"]

RowLoader = Callable[["Session", Any], Resource]


def _search_experiment(session: Session, row: w.SearchExperimentExperiment) -> Resource:
    # The search returns each experiment's best trial, complete: keep it in the identity map.
    assert row.experiment is not None
    experiment = session.merge(Experiment, Experiment.values_from_wire(row.experiment, view="search"))
    if row.best_trial is not None:
        _trial(session, row.best_trial)
    return experiment


def trial_values(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Fill a trial's searcher metric from its best validation when the master left it out."""
    best = values.get("best_validation")
    if values.get("searcher_metric_value") is None and best is not None:
        experiment = session.identity.get(Experiment, values["experiment_id"])
        if experiment is not None and "searcher_metric" in experiment.__dict__:
            value = best.metrics.get(experiment.searcher_metric)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values["searcher_metric_value"] = float(value)
    return values


def _trial(session: Session, row: w.Trial) -> Resource:
    return session.merge(Trial, trial_values(session, Trial.values_from_wire(row)))


def _model_version(session: Session, row: w.ModelVersion) -> Resource:
    if row.model is not None:
        session.merge(Model, Model.values_from_wire(row.model))
    if row.checkpoint is not None and row.checkpoint.uuid:
        session.merge(Checkpoint, Checkpoint.values_from_wire(row.checkpoint))
    return session.merge(ModelVersion, ModelVersion.values_from_wire(row))


ROW_LOADERS: Final[dict[str, RowLoader]] = {
    "GetExperiments": lambda s, r: s.merge(Experiment, Experiment.values_from_wire(r, view="list")),
    "SearchExperiments": _search_experiment,
    "GetExperimentTrials": _trial,
    "SearchRuns": lambda s, r: s.merge(Trial, Trial.values_from_run(r)),
    "GetExperimentCheckpoints": lambda s, r: s.merge(Checkpoint, Checkpoint.values_from_wire(r)),
    "GetTrialCheckpoints": lambda s, r: s.merge(Checkpoint, Checkpoint.values_from_wire(r)),
    "GetWorkspaces": lambda s, r: s.merge(Workspace, Workspace.values_from_wire(r)),
    "GetWorkspaceProjects": lambda s, r: s.merge(Project, Project.values_from_wire(r)),
    "GetModels": lambda s, r: s.merge(Model, Model.values_from_wire(r)),
    "GetModelVersions": _model_version,
    "GetUsers": lambda s, r: s.merge(User, User.values_from_wire(r)),
}


def _experiment(response: w.GetExperimentResponse) -> dict[str, Any]:
    assert response.experiment is not None
    return Experiment.values_from_wire(response.experiment, view="single")


def single_fetch(
    cls: type[Resource], key: Any
) -> tuple[Call, type[w.WireModel], Callable[[Any], dict[str, Any]]]:
    """The GET that loads one object completely, its response type and the values it gives."""
    name = cls.__name__
    if name == "Experiment":
        return (
            Call("GET", path("/api/v1/experiments/{id}", id=key)), w.GetExperimentResponse,
            _experiment,
        )  # fmt: skip
    if name == "Trial":
        return (
            Call("GET", path("/api/v1/trials/{id}", id=key)), w.TrialResponse,
            lambda r: Trial.values_from_wire(r.trial),
        )  # fmt: skip
    if name == "Checkpoint":
        return (
            Call("GET", path("/api/v1/checkpoints/{uuid}", uuid=key)), w.CheckpointResponse,
            lambda r: Checkpoint.values_from_wire(r.checkpoint),
        )  # fmt: skip
    if name == "Workspace":
        return (
            Call("GET", path("/api/v1/workspaces/{id}", id=key)), w.WorkspaceResponse,
            lambda r: Workspace.values_from_wire(r.workspace),
        )  # fmt: skip
    if name == "Project":
        return (
            Call("GET", path("/api/v1/projects/{id}", id=key)), w.ProjectResponse,
            lambda r: Project.values_from_wire(r.project),
        )  # fmt: skip
    if name == "Model":
        # {modelName} takes a name or an all-digit id (ModelFromIdentifier).
        return (
            Call("GET", path("/api/v1/models/{name}", name=key)), w.ModelResponse,
            lambda r: Model.values_from_wire(r.model),
        )  # fmt: skip
    if name == "ModelVersion":
        if not (isinstance(key, tuple) and len(key) == 2):
            raise QueryError("a model version is fetched by (model id or name, version number)")
        return (
            Call("GET", path("/api/v1/models/{m}/versions/{v}", m=key[0], v=key[1])),
            w.ModelVersionResponse, lambda r: ModelVersion.values_from_wire(r.model_version),
        )  # fmt: skip
    if name == "User":
        return (
            Call("GET", path("/api/v1/users/{id}", id=key)), w.UserResponse,
            lambda r: User.values_from_wire(r.user),
        )  # fmt: skip
    raise QueryError(f"{name} cannot be fetched by key")


def patched_values(cls: type[Resource], content: bytes) -> dict[str, Any]:
    """The values of the object a PATCH answered with."""
    name = cls.__name__
    if name == "Experiment":
        experiment = w.ExperimentResponse.model_validate_json(content).experiment
        assert experiment is not None
        return Experiment.values_from_wire(experiment, view="single")
    if name == "Project":
        return Project.values_from_wire(w.ProjectResponse.model_validate_json(content).project)  # type: ignore[arg-type]
    if name == "Workspace":
        return Workspace.values_from_wire(w.WorkspaceResponse.model_validate_json(content).workspace)  # type: ignore[arg-type]
    if name == "Model":
        return Model.values_from_wire(w.ModelResponse.model_validate_json(content).model)  # type: ignore[arg-type]
    if name == "ModelVersion":
        version = w.ModelVersionResponse.model_validate_json(content).model_version
        return ModelVersion.values_from_wire(version)  # type: ignore[arg-type]
    raise QueryError(f"{name} is not patched")
