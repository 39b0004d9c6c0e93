"""Commands, shells, notebooks and TensorBoards: launch, kill, wait; templates: create, rename,
delete. Each is one op, run by both APIs.

A launch is one request (``POST /api/v1/commands`` and siblings); its answer holds the task and
its merged config, so the object it returns is complete. ``kill`` of many tasks sends one request
per task (the master has no bulk kill for them), ``concurrency`` at a time. ``wait`` polls the
task's GET with backoff (``_polling.WAIT_INTERVALS``) until it is TERMINATED.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .. import _wire as w
from .._io._context import check_context_path, read_context
from .._plan._call import Call, path
from .._plan._edits import BulkResult, bulk_filters
from .._plan._loading import GENERIC_TASK_RESPONSES, generic_task_values
from .._resources._base import Resource
from .._resources._inputs import check_id, check_iterable, check_json_object, require
from .._resources._models import Experiment, Trial, Workspace
from .._resources._tasks import (
    PRIORITY_RANGE,
    GenericTask,
    Job,
    Template,
    Tensorboard,
    check_template_name,
)
from ..errors import APIError, InvalidType, InvalidValue
from ._effects import Op, blocking, gather_outcomes, send
from ._executor import rows_of
from ._polling import WAIT_INTERVALS, poll_until

if TYPE_CHECKING:
    from .._plan._query import QueryBase as Query
    from ._protocols import OpsSession as Session

G = TypeVar("G", bound=GenericTask)
T = TypeVar("T", bound=Template)

__all__ = [
    "WAIT_INTERVALS",
    "Context",
    "QueueStats",
    "create_template",
    "delete_template",
    "kill_all",
    "kill_task",
    "launch",
    "launch_body",
    "launch_context",
    "move_priority",
    "queue_stats",
    "rename_template",
    "wait_for",
]


def _base(cls: type[GenericTask]) -> str:
    return f"/api/v1/{cls._collection}"


def _entity(cls: type[GenericTask], content: bytes) -> tuple[Any, dict[str, Any] | None]:
    response = GENERIC_TASK_RESPONSES[cls.__name__].model_validate_json(content)
    return getattr(response, cls.__name__.lower()), getattr(response, "config", None)


# --- launch ---------------------------------------------------------------------------------
def launch_body(
    cls: type[GenericTask],
    *,
    entrypoint: str | Iterable[str] | None = None,
    config: Mapping[str, Any] | None = None,
    template: Template | str | None = None,
    workspace: Workspace | int | None = None,
    experiments: Iterable[Experiment | int] | None = None,
    trials: Iterable[Trial | int] | None = None,
    query: bool = False,
) -> dict[str, Any]:
    """The Launch* request body, checked before anything is sent, as the det CLI builds it (the
    entrypoint goes into the config unless the config has one). ``query``: a TensorBoard's
    experiments also come from a query (added by :func:`launch`)."""
    name = cls.__name__
    body_config: dict[str, Any] = {}
    if config is not None:
        check_json_object(f"{name}.launch(config)", config)
        body_config = dict(config)
    if entrypoint is not None:
        body_config.setdefault("entrypoint", _entrypoint(name, entrypoint))
    body: dict[str, Any] = {"config": body_config}
    if template is not None:
        body["templateName"] = (
            template.name if isinstance(template, Template)
            else check_template_name(f"{name}.launch(template)", template)
        )  # fmt: skip
    if workspace is not None:
        body["workspaceId"] = _id_of(f"{name}.launch(workspace)", workspace, Workspace)
    if experiments is not None:
        body["experimentIds"] = _ids(f"{name}.launch(experiments)", experiments, Experiment)
    if trials is not None:
        body["trialIds"] = _ids(f"{name}.launch(trials)", trials, Trial)
    if issubclass(cls, Tensorboard) and not (
        body.get("experimentIds") or body.get("trialIds") or query
    ):
        raise InvalidValue("Tensorboard.launch needs experiments, trials or a query of experiments")
    return body


@dataclass(frozen=True)
class Context:
    """The local files a launch sends: a directory and extra paths (``det cmd run -c/-i``)."""

    root: str | os.PathLike[str] | None
    includes: tuple[str | os.PathLike[str], ...] = ()


def launch_context(
    name: str, root: str | os.PathLike[str] | None, includes: Iterable[str | os.PathLike[str]]
) -> Context:
    """The paths checked before anything is read or sent (their files are read by launch)."""
    if root is not None:
        check_context_path(f"{name}.launch(context)", root, "a directory path")
    if isinstance(includes, str | bytes | os.PathLike):
        raise InvalidType(f"{name}.launch(includes) must be a list of paths, not one path")
    listed = tuple(check_iterable(f"{name}.launch(includes)", includes, "a list of paths"))
    for path in listed:
        check_context_path(f"{name}.launch(includes) item", path, "a path")
    return Context(root, listed)


def _entrypoint(name: str, entrypoint: object) -> list[str]:
    """The master's entrypoint is a list: a str becomes its one element, which runs under
    ``/bin/sh -c`` in the container (command-entrypoint.sh), as ``det cmd run 'a; b'`` sends it."""
    where = f"{name}.launch(entrypoint)"
    if isinstance(entrypoint, str):
        if not entrypoint.strip():
            raise InvalidValue(f"{where} cannot be empty")
        return [entrypoint]
    parts = list(check_iterable(where, entrypoint, "a str or a list of str"))
    for part in parts:
        require(f"{where} item", part, str, "a str")
    if not parts:
        raise InvalidValue(f"{where} cannot be an empty list")
    return parts


def _id_of(where: str, value: object, cls: type[Resource]) -> int:
    if isinstance(value, cls):
        return int(value.pk)
    return check_id(where, value, what=f"a {cls.__name__} or its id (an int)")


def _ids(where: str, values: object, cls: type[Resource]) -> list[int]:
    items = check_iterable(where, values, f"a list of {cls.__name__} or ids")
    return [_id_of(where, item, cls) for item in items]


def launch(
    session: Session,
    cls: type[G],
    body: dict[str, Any],
    query: Query[Any] | None = None,
    context: Context | None = None,
) -> Op[G]:
    """POST the launch; the answer's task (with its config) as a complete object of ``cls``
    (the API's class). A TensorBoard's experiment ``query`` goes as the master's ``filters``
    when they express it exactly, else as the ids it matches (read first). A ``context``
    directory is read as the det CLI reads it (``.detignore``, the size limit), off the event
    loop."""
    if context is not None and (context.root is not None or context.includes):
        files = yield from blocking(read_context, context.root, context.includes)
        if files:
            body = dict(body, files=files)
    if query is not None:
        sliced = bool(query._order) or query._limit is not None or query._offset != 0
        filters = None if sliced else bulk_filters(query._where)
        if filters is not None:
            body = dict(body, filters=filters)
        else:
            matched = [e.pk for e in (yield from rows_of(query))]
            body = dict(body, experimentIds=[*body.get("experimentIds", ()), *matched])
    response = yield from send(Call("POST", _base(cls), body=body))
    found, config = _entity(cls, response.content)
    obj = session.merge(cls, generic_task_values(found, config or {}))
    obj._fetched = True
    return obj


# --- kill -----------------------------------------------------------------------------------
def kill_task(session: Session, obj: GenericTask) -> Op[None]:
    """Kill one task; the object takes the state the master answers with."""
    cls = type(obj)
    call = Call("POST", path(f"{_base(cls)}/{{id}}/kill", id=obj.id))
    response = yield from send(call)
    found, _ = _entity(cls, response.content)
    if found is not None:
        session.merge(cls, cls.values_from_wire(found))


def kill_all(query: Query[Any]) -> Op[BulkResult[str]]:
    """Kill every task the query matches: one request each (the master has no bulk kill for
    these), ``concurrency`` at a time; per-id outcomes."""
    session = cast("Session", query.session)
    tasks: list[GenericTask] = yield from rows_of(query)
    outcomes = yield from gather_outcomes([kill_task(session, t) for t in tasks])
    results: dict[str, str] = {}
    for task, outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, APIError):
            results[task.id] = outcome.message
        elif isinstance(outcome, Exception):
            raise outcome
        else:
            results[task.id] = ""
    return BulkResult("kill", results)


# --- wait -----------------------------------------------------------------------------------
def wait_for(
    session: Session, obj: GenericTask, timeout: float | None, interval: float | None
) -> Op[w.TaskState]:
    """Poll the task until it is TERMINATED (or ``timeout`` seconds pass: WaitTimeout)."""
    yield from poll_until(
        session, obj, lambda task: task.state == w.TaskState.TERMINATED,
        lambda task: f"{type(task).__name__} {task.id} is still {task.state.short}",
        timeout=timeout, interval=interval,
    )  # fmt: skip
    return obj.state


# --- the job queue --------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueStats:
    """How many jobs of a resource pool wait and how many run (``GetJobQueueStats``)."""

    queued: int
    scheduled: int


def queue_stats(pools: Iterable[str] | None) -> Op[dict[str, QueueStats]]:
    """Queue stats by resource pool (every pool when ``pools`` is None)."""
    names = [] if pools is None else list(check_iterable("queue_stats(pools)", pools, "pool names"))
    for name in names:
        require("queue_stats(pools) item", name, str, "a resource pool name (a str)")
    params = tuple(("resourcePools", name) for name in names)
    response = yield from send(Call("GET", "/api/v1/job-queues/stats", params, read_only=True))
    results = w.GetJobQueueStatsResponse.model_validate_json(response.content).results
    return {
        r.resource_pool: QueueStats(
            r.stats.queued_count if r.stats else 0, r.stats.scheduled_count if r.stats else 0
        )
        for r in results
    }


def move_priority(job: Job, ahead_of: Job | None, behind_of: Job | None) -> int:
    """The priority that puts ``job`` ahead of (or behind) another job of its pool.

    The master 0.38.1 refuses QueueControl's deprecated ``aheadOf``/``behindOf`` ("unexpected
    action"), so a move is a priority edit: the priority scheduler runs smaller values first,
    and equal priorities by submission time.
    """
    if (ahead_of is None) == (behind_of is None):
        raise InvalidValue("Job.move needs exactly one of ahead_of= and behind_of=")
    other = ahead_of if ahead_of is not None else behind_of
    require("Job.move(other)", other, Job, "a Job")
    assert other is not None
    if other.resource_pool != job.resource_pool:
        raise InvalidValue(
            f"Job.move: job {other.id} waits in pool {other.resource_pool!r}, not "
            f"{job.resource_pool!r}: jobs of different pools have no order"
        )
    target = other.priority - 1 if ahead_of is not None else other.priority + 1
    low, high = PRIORITY_RANGE
    if not low <= target <= high:
        raise InvalidValue(
            f"Job.move: job {other.id} has priority {other.priority}: no priority in "
            f"{low}..{high} is {'ahead of' if ahead_of is not None else 'behind'} it"
        )
    return target


# --- templates ------------------------------------------------------------------------------
def create_template(
    session: Session,
    cls: type[T],
    name: str,
    config: Mapping[str, Any],
    workspace: Workspace | int | None,
) -> Op[T]:
    """PostTemplate: a new template (the master refuses a name that exists)."""
    check_template_name("Template.create(name)", name)
    check_json_object("Template.create(config)", config)
    body: dict[str, Any] = {"name": name, "config": dict(config)}
    if workspace is not None:
        body["workspaceId"] = _id_of("Template.create(workspace)", workspace, Workspace)
    call = Call("POST", path("/api/v1/templates/{name}", name=name), body=body)
    response = yield from send(call)
    found = w.TemplateResponse.model_validate_json(response.content).template
    values = Template.values_from_wire(found or w.Template(name=name, config=dict(config)))
    template = session.merge(cls, values)
    template._fetched = True
    return template


def delete_template(session: Session, template: Template) -> Op[None]:
    yield from send(Call("DELETE", path("/api/v1/templates/{name}", name=template.name)))
    session._forget(template)


def rename_template(session: Session, template: Template, new_name: str) -> Op[None]:
    """PatchTemplateName; the object takes its new name (and identity) once the master agrees."""
    check_template_name("Template.rename(new_name)", new_name)
    if template in session.dirty:
        raise InvalidValue(
            f"Template {template.name!r} has pending edits: commit or roll them back first"
        )
    body = {"oldName": template.name, "newName": new_name}
    yield from send(Call("PATCH", "/api/v1/template/rename", body=body))
    session._rekey(template, new_name)
