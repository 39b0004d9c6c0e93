"""From responses to resources: the rows of each list endpoint and the single-object GETs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .. import _wire as w
from .._resources._base import Resource
from .._resources._base import SessionLike as Session
from .._resources._cluster import Webhook
from .._resources._inputs import check_id, check_text, require, shown
from .._resources._models import (
    Checkpoint,
    Experiment,
    Model,
    ModelVersion,
    Project,
    Trial,
    User,
    Workspace,
)
from .._resources._tasks import (
    GENERIC_TASKS,
    Agent,
    GenericTask,
    Job,
    ResourcePool,
    Task,
    Template,
    check_template_name,
)
from ..errors import InvalidType, InvalidValue, NotFound, QueryError
from ._call import Call, path

__all__ = [
    "GENERIC_TASK_RESPONSES",
    "ROW_LOADERS",
    "check_key",
    "check_resource",
    "refetch",
    "single_fetch",
]

RowLoader = Callable[[Session, Any], Resource]

# Merging a row sets only the fields its route carries; the others keep the value another route
# loaded. These routes send some fields as zero values because their queries do not select them:
# SearchExperiments' best trial has no checkpoint, no wall clock and the stored (not the
# reported) state, and stands for "no best validation" with a zero-valued one
# (proto_search_experiments' trial columns); get_workspace_projects.sql selects no workspace
# name; the model inside get_model_versions.sql's rows has no workspace id.
_BEST_TRIAL_OMITS: Final = frozenset({"best_checkpoint", "wall_clock_time", "state"})
_LISTED_PROJECT_OMITS: Final = frozenset({"workspace_name"})
_VERSION_MODEL_OMITS: Final = frozenset({"workspace_id"})


def _carried(values: dict[str, Any], omitted: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name not in omitted}


def _search_experiment(session: Session, row: w.SearchExperimentExperiment) -> Resource:
    # The search returns each experiment's best trial: keep it in the identity map. It sends no
    # bestTrialSearcherMetric, which is that trial's searcher metric (GetExperiments'
    # showTrialData selects `searcher_metric_value FROM trials WHERE id = e.best_trial_id`).
    assert row.experiment is not None
    experiment = session.merge(
        Experiment, Experiment.values_from_wire(row.experiment, view="search")
    )
    best = None if row.best_trial is None else _best_trial(session, row.best_trial)
    experiment._held = () if best is None else (best,)
    if row.experiment.best_trial_id is None or best is not None:
        metric = None if best is None else best.__dict__.get("searcher_metric_value")
        session.merge(Experiment, {"id": experiment.id, "best_trial_searcher_metric": metric})
    return experiment


def _best_trial(session: Session, row: w.Trial) -> Resource:
    values = _carried(Trial.values_from_wire(row), _BEST_TRIAL_OMITS)
    best = values.get("best_validation")
    if best is not None and not best.metrics:
        del values["best_validation"]
    return session.merge(Trial, trial_values(session, values))


def trial_values(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Fill a trial's searcher metric from its best validation when the master left it out.

    GetTrial and GetExperimentTrials do not select it: without the experiment (whose config
    names the searcher metric) in the identity map, the field is left as it was, not loaded
    (a runs search or ``exp.trials`` after reading the experiment loads it).
    """
    if values.get("searcher_metric_value") is not None:
        return values
    best = values.get("best_validation")
    experiment = session.identity.get(Experiment, values["experiment_id"])
    if experiment is None or "searcher_metric" not in experiment.__dict__:
        del values["searcher_metric_value"]
    elif best is not None:
        value = best.metrics.get(experiment.searcher_metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values["searcher_metric_value"] = float(value)
    return values


def _trial(session: Session, row: w.Trial) -> Resource:
    return session.merge(Trial, trial_values(session, Trial.values_from_wire(row)))


def _model_version(session: Session, row: w.ModelVersion) -> Resource:
    if row.model is not None:
        session.merge(Model, _carried(Model.values_from_wire(row.model), _VERSION_MODEL_OMITS))
    if row.checkpoint is not None and row.checkpoint.uuid:
        session.merge(Checkpoint, Checkpoint.values_from_wire(row.checkpoint))
    return session.merge(ModelVersion, ModelVersion.values_from_wire(row))


def _generic_task_row(cls: type[GenericTask]) -> RowLoader:
    return lambda session, row: session.merge(cls, cls.values_from_wire(row))


ROW_LOADERS: Final[dict[str, RowLoader]] = {
    "GetExperiments": lambda s, r: s.merge(Experiment, Experiment.values_from_wire(r, view="list")),
    "SearchExperiments": _search_experiment,
    "GetExperimentTrials": _trial,
    "SearchRuns": lambda s, r: s.merge(Trial, Trial.values_from_run(r)),
    "GetExperimentCheckpoints": lambda s, r: s.merge(Checkpoint, Checkpoint.values_from_wire(r)),
    "GetTrialCheckpoints": lambda s, r: s.merge(Checkpoint, Checkpoint.values_from_wire(r)),
    "GetWorkspaces": lambda s, r: s.merge(Workspace, Workspace.values_from_wire(r)),
    "GetWorkspaceProjects": lambda s, r: s.merge(
        Project, _carried(Project.values_from_wire(r), _LISTED_PROJECT_OMITS)
    ),
    "GetModels": lambda s, r: s.merge(Model, Model.values_from_wire(r)),
    "GetModelVersions": _model_version,
    "GetUsers": lambda s, r: s.merge(User, User.values_from_wire(r)),
    "GetTemplates": lambda s, r: s.merge(Template, Template.values_from_wire(r)),
    "GetJobsV2": lambda s, r: s.merge(Job, Job.values_from_wire(r)),
    "GetResourcePools": lambda s, r: s.merge(ResourcePool, ResourcePool.values_from_wire(r)),
    "GetAgents": lambda s, r: s.merge(Agent, Agent.values_from_wire(r)),
    "GetWebhooks": lambda s, r: s.merge(Webhook, Webhook.values_from_wire(r)),
    # List rows carry no config (nor the priority in it): those stay as loaded.
    **{f"Get{cls._collection.capitalize()}": _generic_task_row(cls) for cls in GENERIC_TASKS},
}


@dataclass(frozen=True)
class _Single:
    """How one object is read: its GET path, the response holding it, the values it gives.

    A PATCH of the object answers with the same envelope.
    """

    path: str
    response: type[w.WireModel]
    field: str
    values: Callable[[Any], dict[str, Any]]
    # Commands and their siblings: the answer's config goes with the object.
    with_config: bool = False

    def parse(self, content: bytes) -> dict[str, Any]:
        response = self.response.model_validate_json(content)
        found = getattr(response, self.field)
        if found is None:
            raise QueryError(f"the master's answer holds no {self.field}")
        if self.with_config:
            return generic_task_values(found, getattr(response, "config", None) or {})
        return self.values(found)


def generic_task_values(wire: Any, config: dict[str, Any]) -> dict[str, Any]:
    """A command's (shell's...) values from an answer that carries its config."""
    cls = _GENERIC_BY_WIRE[type(wire).__name__]
    return cls.values_from_wire(wire, config)


_GENERIC_BY_WIRE: Final[dict[str, type[GenericTask]]] = {c.__name__: c for c in GENERIC_TASKS}


GENERIC_TASK_RESPONSES: Final[dict[str, type[w.WireModel]]] = {
    "Command": w.CommandResponse, "Shell": w.ShellResponse, "Notebook": w.NotebookResponse,
    "Tensorboard": w.TensorboardResponse,
}  # fmt: skip

_SINGLE: Final = {
    "Experiment": _Single(
        "/api/v1/experiments/{key}", w.GetExperimentResponse, "experiment",
        lambda e: Experiment.values_from_wire(e, view="single"),
    ),
    "Trial": _Single("/api/v1/trials/{key}", w.TrialResponse, "trial", Trial.values_from_wire),
    "Checkpoint": _Single(
        "/api/v1/checkpoints/{key}", w.CheckpointResponse, "checkpoint", Checkpoint.values_from_wire
    ),
    "Workspace": _Single(
        "/api/v1/workspaces/{key}", w.WorkspaceResponse, "workspace", Workspace.values_from_wire
    ),
    "Project": _Single("/api/v1/projects/{key}", w.ProjectResponse, "project", Project.values_from_wire),
    # {model_name} takes a name or an all-digit id (ModelFromIdentifier).
    "Model": _Single("/api/v1/models/{key}", w.ModelResponse, "model", Model.values_from_wire),
    "ModelVersion": _Single(
        "/api/v1/models/{model}/versions/{version}", w.ModelVersionResponse, "model_version",
        ModelVersion.values_from_wire,
    ),
    "User": _Single("/api/v1/users/{key}", w.UserResponse, "user", User.values_from_wire),
    "Task": _Single("/api/v1/tasks/{key}", w.GetTaskResponse, "task", Task.values_from_wire),
    "Template": _Single(
        "/api/v1/templates/{key}", w.TemplateResponse, "template", Template.values_from_wire
    ),
    "Agent": _Single("/api/v1/agents/{key}", w.AgentResponse, "agent", Agent.values_from_wire),
    **{
        cls.__name__: _Single(
            f"/api/v1/{cls._collection}/{{key}}", GENERIC_TASK_RESPONSES[cls.__name__],
            cls.__name__.lower(), cls.values_from_wire, with_config=True,
        )
        for cls in GENERIC_TASKS
    },
}  # fmt: skip


# Read from their listing: the master has no GET of one job, one pool or one webhook (0.38.1
# declares GetWebhookRequest but routes no RPC to it).
_LISTED: Final = ("Job", "ResourcePool", "Webhook")


def check_resource(resource: object) -> None:
    """``resource`` is one of the resource classes."""
    if not (
        isinstance(resource, type)
        and issubclass(resource, Resource)
        and (resource.__name__ in _SINGLE or resource.__name__ in _LISTED)
    ):
        raise InvalidType(
            f"expected a resource class ({', '.join(sorted([*_SINGLE, *_LISTED]))}), not "
            f"{shown(resource)}"
        )


_QUEUE_PATH: Final = "/api/v1/job-queues-v2"
_POOLS_PATH: Final = "/api/v1/resource-pools"
_WEBHOOKS_PATH: Final = "/api/v1/webhooks"
_WHOLE_LIST: Final = 100_000  # in-memory pagination: the whole list in one answer

# Task ids: uuids for commands and their siblings, "<experiment>.<trial>..." for trials.
_TEXT_KEYS: Final = frozenset(
    {"Task", "Job", "Agent", "ResourcePool", *(cls.__name__ for cls in GENERIC_TASKS)}
)


def check_key(resource: type[Resource], key: object) -> None:
    """Refuse what cannot name an object (a class that is not a resource, a key of the wrong
    type or out of range) before the identity map or a URL sees it."""
    check_resource(resource)
    name = resource.__name__
    where = f"the {name} key"
    if name == "Checkpoint":
        require(where, key, str, "a checkpoint uuid (a str)")
        try:
            uuid.UUID(str(key))
        except ValueError:
            raise InvalidValue(f"{where} must be a uuid, not {shown(key)}") from None
    elif name == "Model":
        require(where, key, (int, str), "a model id (an int) or name (a str)")
        if isinstance(key, int):
            check_id(where, key)
        elif not key:
            raise InvalidValue(f"{where} must be a model id or a non-empty name, not ''")
    elif name == "Template":
        check_template_name(where, key)
    elif name in _TEXT_KEYS:
        require(where, key, str, f"a {name.lower()} id (a str)")
        assert isinstance(key, str)
        if not key:
            raise InvalidValue(f"{where} must be a non-empty id, not ''")
        check_text(where, key)
    elif name == "ModelVersion":
        if not (isinstance(key, tuple) and len(key) == 2):
            raise InvalidType(
                f"{where} must be a (model id or name, version number) pair, not {shown(key)}"
            )
        check_key(Model, key[0])
        check_id("a ModelVersion's version number", key[1], what="an int")
    else:
        check_id(where, key, what="an id (an int)")


def _job_in_queue(key: str) -> Callable[[bytes], dict[str, Any]]:
    def parse(content: bytes) -> dict[str, Any]:
        for row in w.GetJobsV2Response.model_validate_json(content).jobs:
            job = row.full or row.limited
            if job is not None and job.job_id == key:
                return Job.values_from_wire(row)
        raise NotFound(
            method="GET", path=_QUEUE_PATH, status=404,
            message=f"job '{key}' is not in the default pool's queue (it ended, or it waits "
            "in another pool: Job.query().filter(resource_pool=...) finds it there)",
        )  # fmt: skip

    return parse


def _pool_in_list(key: str) -> Callable[[bytes], dict[str, Any]]:
    def parse(content: bytes) -> dict[str, Any]:
        for pool in w.ResourcePoolsResponse.model_validate_json(content).resource_pools:
            if pool.name == key:
                return ResourcePool.values_from_wire(pool)
        raise NotFound(
            method="GET", path=_POOLS_PATH, status=404,
            message=f"resource pool '{key}' does not exist",
        )  # fmt: skip

    return parse


def _webhook_in_list(key: int) -> Callable[[bytes], dict[str, Any]]:
    def parse(content: bytes) -> dict[str, Any]:
        for webhook in w.WebhooksResponse.model_validate_json(content).webhooks:
            if webhook.id == key:
                return Webhook.values_from_wire(webhook)
        raise NotFound(
            method="GET", path=_WEBHOOKS_PATH, status=404,
            message=f"webhook {key} does not exist (or you may not see it)",
        )  # fmt: skip

    return parse


def single_fetch(cls: type[Resource], key: Any) -> tuple[Call, Callable[[bytes], dict[str, Any]]]:
    """The GET that loads one object completely, and how to read its values from the answer
    (``key`` was checked by :func:`check_key`, or comes from the object itself). The master
    has no GET of one job or one pool: a job is found in its pool's queue, a pool in the list
    of pools (one request)."""
    if cls.__name__ == "Job":
        params = (("limit", str(_WHOLE_LIST)),)
        return Call("GET", _QUEUE_PATH, params, read_only=True), _job_in_queue(key)
    if cls.__name__ == "ResourcePool":
        params = (("limit", str(_WHOLE_LIST)),)
        return Call("GET", _POOLS_PATH, params, read_only=True), _pool_in_list(key)
    if cls.__name__ == "Webhook":
        return Call("GET", _WEBHOOKS_PATH, read_only=True), _webhook_in_list(key)
    spec = _SINGLE[cls.__name__]
    if cls.__name__ == "ModelVersion":
        return Call("GET", path(spec.path, model=key[0], version=key[1])), spec.parse
    return Call("GET", path(spec.path, key=key)), spec.parse


def refetch(obj: Resource) -> tuple[Call, Callable[[bytes], dict[str, Any]]]:
    """The GET that reads ``obj`` again (a model version by its model and number; a job in
    its own pool's queue)."""
    if isinstance(obj, Job):
        params = (("resourcePool", obj.resource_pool), ("limit", str(_WHOLE_LIST)))
        return Call("GET", _QUEUE_PATH, params, read_only=True), _job_in_queue(obj.id)
    key = (obj.model_id, obj.version) if isinstance(obj, ModelVersion) else obj.pk
    return single_fetch(type(obj), key)
