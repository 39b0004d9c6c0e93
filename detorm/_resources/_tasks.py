"""The data of tasks: commands, shells, notebooks, TensorBoards, task information, templates.

Data only, as in ``_models.py``: the sync and async APIs add behaviour in subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from .._wire import JobState, JobType, TaskState, TaskType, Timestamp
from .._wire import _tasks as wt
from ..errors import InvalidValue
from ._base import Resource
from ._inputs import check_int, check_json_object, check_text, require

__all__ = [
    "GENERIC_TASKS",
    "TASK_STATE_TERMINAL",
    "AllocationInfo",
    "Command",
    "ContainerInfo",
    "GenericTask",
    "Job",
    "Notebook",
    "Shell",
    "Task",
    "Template",
    "Tensorboard",
    "check_template_name",
]

# taskv1.State: a task that reached TERMINATED never runs again.
TASK_STATE_TERMINAL: Final = frozenset({TaskState.TERMINATED})
PRIORITY_RANGE: Final = (1, 99)  # the priority scheduler's range (resources.priority)


@dataclass(frozen=True)
class ContainerInfo:
    """The container a task runs in (``containerv1.Container``); ``state`` is ASSIGNED,
    PULLING, STARTING, RUNNING or TERMINATED."""

    id: str
    parent: str
    state: str
    devices: tuple[dict[str, Any], ...]

    @staticmethod
    def from_wire(wire: wt.Container | None) -> ContainerInfo | None:
        if wire is None:
            return None
        state = wire.state.removeprefix("STATE_")
        return ContainerInfo(wire.id, wire.parent, state, tuple(wire.devices))


@dataclass(frozen=True)
class AllocationInfo:
    """One run of a task on the cluster (``taskv1.Allocation``)."""

    id: str
    state: TaskState
    ready: bool | None
    start_time: str | None
    end_time: str | None
    slots: int
    exit_reason: str | None
    status_code: int | None

    @staticmethod
    def from_wire(wire: wt.Allocation) -> AllocationInfo:
        return AllocationInfo(
            wire.allocation_id, wire.state, wire.is_ready, wire.start_time, wire.end_time,
            wire.slots, wire.exit_reason, wire.status_code,
        )  # fmt: skip


class GenericTask(Resource):
    """What commands, shells, notebooks and TensorBoards share. ``id`` is the task id (a
    uuid); ``priority`` is read from the task's config (single reads and launches carry it;
    list rows do not)."""

    _editable: ClassVar[frozenset[str]] = frozenset({"priority"})
    # The master's name of the type in paths and messages: commands, shells...
    _collection: ClassVar[str] = ""

    id: str
    description: str
    state: TaskState
    start_time: Timestamp | None
    username: str
    user_id: int
    display_name: str
    workspace_id: int
    resource_pool: str
    job_id: str
    exit_status: str | None
    container: ContainerInfo | None
    config: dict[str, Any]
    priority: int | None

    @classmethod
    def _repr_fields(cls) -> frozenset[str]:
        return frozenset({"id", "description", "state"})

    def _check(self, name: str, value: Any) -> None:
        if name == "priority":
            low, high = PRIORITY_RANGE
            check_int(f"{type(self).__name__}.priority", value, low=low, high=high)

    @classmethod
    def values_from_wire(cls, wire: Any, config: dict[str, Any] | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {
            "id": wire.id, "description": wire.description, "state": wire.state,
            "start_time": wire.start_time, "username": wire.username, "user_id": wire.user_id,
            "display_name": wire.display_name, "workspace_id": wire.workspace_id,
            "resource_pool": wire.resource_pool, "job_id": wire.job_id,
            "exit_status": wire.exit_status or None,
            "container": ContainerInfo.from_wire(wire.container),
        }  # fmt: skip
        values.update(cls._own_values(wire))
        if config is not None:
            values["config"] = dict(config)
            priority = (config.get("resources") or {}).get("priority")
            values["priority"] = priority if isinstance(priority, int) else None
        return values

    @staticmethod
    def _own_values(wire: Any) -> dict[str, Any]:
        return {}


class Command(GenericTask):
    """A command: an entrypoint run once on the cluster."""

    _collection: ClassVar[str] = "commands"


class Shell(GenericTask):
    """An interactive shell (its SSH keys are not kept: they are secrets the SDK has no use
    for)."""

    _collection: ClassVar[str] = "shells"


class Notebook(GenericTask):
    """A Jupyter notebook served through the master's proxy."""

    _collection: ClassVar[str] = "notebooks"

    service_address: str

    @staticmethod
    def _own_values(wire: Any) -> dict[str, Any]:
        return {"service_address": wire.service_address}


class Tensorboard(GenericTask):
    """A TensorBoard of some experiments or trials, served through the master's proxy."""

    _collection: ClassVar[str] = "tensorboards"

    service_address: str
    experiment_ids: tuple[int, ...]
    trial_ids: tuple[int, ...]

    @staticmethod
    def _own_values(wire: Any) -> dict[str, Any]:
        return {
            "service_address": wire.service_address,
            "experiment_ids": tuple(wire.experiment_ids),
            "trial_ids": tuple(wire.trial_ids),
        }


GENERIC_TASKS: Final = (Command, Shell, Notebook, Tensorboard)


class Task(Resource):
    """Task information: a trial's, command's or other task's runs on the cluster."""

    id: str
    type: TaskType
    start_time: Timestamp | None
    end_time: Timestamp | None
    parent_id: str | None
    forked_from: str | None
    allocations: tuple[AllocationInfo, ...]

    @classmethod
    def _repr_fields(cls) -> frozenset[str]:
        return frozenset({"id", "type"})

    @staticmethod
    def values_from_wire(wire: wt.Task) -> dict[str, Any]:
        return {
            "id": wire.task_id, "type": wire.task_type, "start_time": wire.start_time,
            "end_time": wire.end_time, "parent_id": wire.parent_id,
            "forked_from": wire.forked_from,
            "allocations": tuple(AllocationInfo.from_wire(a) for a in wire.allocations),
        }  # fmt: skip


class Template(Resource):
    """A named config that launches and experiments merge into theirs. Its name is its key:
    ``rename()`` changes it at once (an identity cannot change while edits are pending)."""

    _key_field: ClassVar[str] = "name"
    _editable: ClassVar[frozenset[str]] = frozenset({"config"})

    name: str
    config: dict[str, Any]
    workspace_id: int

    def _check(self, name: str, value: Any) -> None:
        if name == "config":
            check_json_object("Template.config", value)

    @staticmethod
    def values_from_wire(wire: wt.Template) -> dict[str, Any]:
        return {"name": wire.name, "config": dict(wire.config), "workspace_id": wire.workspace_id}


class Job(Resource):
    """A job in the cluster's queue: an experiment, command, notebook... waiting or scheduled.

    ``priority``, ``weight`` and ``resource_pool`` are edits of the unit of work: every queue
    edit of one commit goes out in one ``UpdateJobQueue`` request. ``jobs_ahead`` is the job's
    position in its pool's queue. A job of a workspace the user cannot see is *limited*: the
    master hides its name, owner, entity and submission time (empty here, so that filters on
    them simply do not match it).
    """

    _editable: ClassVar[frozenset[str]] = frozenset({"priority", "weight", "resource_pool"})

    id: str
    type: JobType
    state: JobState
    jobs_ahead: int
    limited: bool
    resource_pool: str
    is_preemptible: bool
    priority: int
    weight: float
    requested_slots: int
    allocated_slots: int
    progress: float
    workspace_id: int
    entity_id: str
    name: str
    username: str
    user_id: int
    submission_time: Timestamp | None

    @classmethod
    def _repr_fields(cls) -> frozenset[str]:
        return frozenset({"id", "type", "state", "name"})

    def _check(self, name: str, value: Any) -> None:
        if name == "priority":
            low, high = PRIORITY_RANGE
            check_int("Job.priority", value, low=low, high=high)
        elif name == "weight" and not value > 0:
            raise InvalidValue(f"Job.weight must be greater than 0, not {value!r}")
        elif name == "resource_pool" and not value:
            raise InvalidValue("Job.resource_pool cannot be empty")

    @staticmethod
    def values_from_wire(wire: wt.RBACJob) -> dict[str, Any]:
        job: wt.Job | wt.LimitedJob | None = wire.full or wire.limited
        if job is None:
            raise InvalidValue("a job row holds neither a full nor a limited job")
        summary = job.summary
        values: dict[str, Any] = {
            "id": job.job_id, "type": job.type,
            "state": JobState.lookup(summary.state) if summary else JobState.UNSPECIFIED,
            "jobs_ahead": summary.jobs_ahead if summary else 0,
            "limited": wire.full is None, "resource_pool": job.resource_pool,
            "is_preemptible": job.is_preemptible, "priority": job.priority,
            "weight": job.weight, "requested_slots": job.requested_slots,
            "allocated_slots": job.allocated_slots, "progress": job.progress,
            "workspace_id": job.workspace_id,
        }  # fmt: skip
        full = wire.full
        values.update(
            entity_id=full.entity_id if full else "", name=full.name if full else "",
            username=full.username if full else "", user_id=full.user_id if full else 0,
            submission_time=full.submission_time if full else None,
        )  # fmt: skip
        return values


def check_template_name(where: str, value: object) -> str:
    """A template name the master can hold (non-empty text)."""
    require(where, value, str, "a template name (a str)")
    assert isinstance(value, str)
    if not value:
        raise InvalidValue(f"{where} cannot be empty")
    return check_text(where, value)
