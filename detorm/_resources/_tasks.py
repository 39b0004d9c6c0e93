"""The data of tasks: commands, shells, notebooks, TensorBoards, task information, templates,
the job queue, and the resource pools and agents they run on.

Data only, as in ``_models.py``: the sync and async APIs add behaviour in subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from .. import _wire as w
from .._wire import JobState, JobType, TaskState, TaskType, Timestamp
from .._wire import _tasks as wt
from ..errors import InvalidValue
from ._base import Resource
from ._inputs import check_int, check_json_object, check_text, require

__all__ = [
    "GENERIC_TASKS",
    "TASK_STATE_TERMINAL",
    "Agent",
    "AllocationInfo",
    "AllocationResources",
    "Command",
    "ContainerInfo",
    "GenericTask",
    "Job",
    "Notebook",
    "ResourcePool",
    "Shell",
    "SlotInfo",
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
        """The container from the master's JSON (None when there is none)."""
        if wire is None:
            return None
        state = wire.state.removeprefix("STATE_")
        return ContainerInfo(wire.id, wire.parent, state, tuple(wire.devices))


@dataclass(frozen=True)
class AllocationResources:
    """One container (or pod) of an allocation and the devices it holds on each node
    (``taskv1.ResourcesSummary``): ``devices`` maps an agent id to its devices."""

    id: str
    type: str
    container_id: str | None
    devices: dict[str, tuple[dict[str, Any], ...]]

    @staticmethod
    def from_wire(wire: wt.ResourcesSummary) -> AllocationResources:
        """The resources from the master's JSON."""
        devices = {agent: tuple(d.devices) for agent, d in wire.agent_devices.items()}
        return AllocationResources(
            wire.resources_id, wire.resources_type, wire.container_id, devices
        )


@dataclass(frozen=True)
class AllocationInfo:
    """One run of a task on the cluster (``taskv1.Allocation``).

    ``resource_pool`` and ``resources`` (per node) are what the resource manager holds for an
    allocation that is queued or running: ``Task.query()`` reads them (GetTasks). GetTask does
    not carry them, so a task read alone (``session.get``, ``trial.task``) leaves them None.
    """

    id: str
    state: TaskState
    ready: bool | None
    start_time: str | None
    end_time: str | None
    slots: int
    exit_reason: str | None
    status_code: int | None
    resource_pool: str | None = None
    resources: tuple[AllocationResources, ...] | None = None

    @staticmethod
    def from_wire(wire: wt.Allocation) -> AllocationInfo:
        """The allocation from the master's JSON."""
        return AllocationInfo(
            wire.allocation_id, wire.state, wire.is_ready, wire.start_time, wire.end_time,
            wire.slots, wire.exit_reason, wire.status_code,
        )  # fmt: skip

    def held_as(self, summary: wt.AllocationSummary) -> AllocationInfo:
        """This allocation with what the resource manager holds for it (its GetTasks row)."""
        resources = tuple(AllocationResources.from_wire(r) for r in summary.resources)
        return replace(self, resource_pool=summary.resource_pool, resources=resources)


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

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "description", "state")

    def _check(self, name: str, value: Any) -> None:
        if name == "priority":
            low, high = PRIORITY_RANGE
            check_int(f"{type(self).__name__}.priority", value, low=low, high=high)

    @classmethod
    def values_from_wire(cls, wire: Any, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "type", "parent_id")

    @staticmethod
    def values_from_wire(wire: wt.Task) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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
    _repr_fields: ClassVar[tuple[str, ...]] = ("name", "workspace_id")
    _read_only_hints: ClassVar[dict[str, str]] = {
        "name": "it is the template's key: template.rename(new_name) sends PatchTemplateName at once"
    }

    name: str
    config: dict[str, Any]
    workspace_id: int

    def _check(self, name: str, value: Any) -> None:
        if name == "config":
            check_json_object("Template.config", value)

    @staticmethod
    def values_from_wire(wire: wt.Template) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
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

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "type", "state", "name")

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
        """The object's field values from the master's JSON (a wire model)."""
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


class ResourcePool(Resource):
    """A resource pool of the cluster (read-only; ``GetResourcePools``). Its name is its key.
    Enum-valued fields are the master's names without their prefix (``STATIC``, ``CUDA``,
    ``PRIORITY``); ``queued``/``scheduled`` count its queue's jobs."""

    _key_field: ClassVar[str] = "name"

    name: str
    description: str
    type: str
    num_agents: int
    slots_available: int
    slots_used: int
    slot_type: str
    aux_container_capacity: int
    aux_containers_running: int
    default_compute_pool: bool
    default_aux_pool: bool
    preemptible: bool
    min_agents: int
    max_agents: int
    slots_per_agent: int
    scheduler_type: str
    scheduler_fitting_policy: str
    location: str
    accelerator: str
    queued: int
    scheduled: int

    _repr_fields: ClassVar[tuple[str, ...]] = ("name", "type", "slots_available", "slots_used")

    @staticmethod
    def values_from_wire(wire: w.ResourcePool) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
        stats = wire.stats or w.ResourcePoolStats()
        return {
            "name": wire.name, "description": wire.description,
            "type": wire.type.removeprefix("RESOURCE_POOL_TYPE_"),
            "num_agents": wire.num_agents, "slots_available": wire.slots_available,
            "slots_used": wire.slots_used, "slot_type": wire.slot_type.removeprefix("TYPE_"),
            "aux_container_capacity": wire.aux_container_capacity,
            "aux_containers_running": wire.aux_containers_running,
            "default_compute_pool": wire.default_compute_pool,
            "default_aux_pool": wire.default_aux_pool, "preemptible": wire.preemptible,
            "min_agents": wire.min_agents, "max_agents": wire.max_agents,
            "slots_per_agent": wire.slots_per_agent,
            "scheduler_type": wire.scheduler_type.removeprefix("SCHEDULER_TYPE_"),
            "scheduler_fitting_policy": wire.scheduler_fitting_policy.removeprefix(
                "FITTING_POLICY_"
            ),
            "location": wire.location, "accelerator": wire.accelerator,
            "queued": stats.queued_count, "scheduled": stats.scheduled_count,
        }  # fmt: skip


@dataclass(frozen=True)
class SlotInfo:
    """One device of an agent (``agentv1.Slot``): ``device`` as the master sends it (id,
    brand, uuid, type), the container holding it if any."""

    id: str
    device: dict[str, Any]
    enabled: bool
    draining: bool
    container: ContainerInfo | None

    @staticmethod
    def from_wire(wire: wt.Slot) -> SlotInfo:
        """The slot from the master's JSON."""
        container = ContainerInfo.from_wire(wire.container)
        return SlotInfo(wire.id, wire.device or {}, wire.enabled, wire.draining, container)


class Agent(Resource):
    """A node of the cluster (read-only; ``GetAgents``, ``GetAgent``) with its slots."""

    id: str
    registered_time: Timestamp | None
    enabled: bool
    draining: bool
    version: str
    addresses: tuple[str, ...]
    resource_pools: tuple[str, ...]
    num_slots: int
    slots: tuple[SlotInfo, ...]

    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "enabled", "num_slots")

    @staticmethod
    def values_from_wire(wire: wt.Agent) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
        # The master keys slots by "/agents/<id>/slots/<n>": in device order here.
        slots = sorted(wire.slots.values(), key=lambda slot: (len(slot.id), slot.id))
        return {
            "id": wire.id, "registered_time": wire.registered_time, "enabled": wire.enabled,
            "draining": wire.draining, "version": wire.version,
            "addresses": tuple(wire.addresses), "resource_pools": tuple(wire.resource_pools),
            "num_slots": len(slots), "slots": tuple(SlotInfo.from_wire(s) for s in slots),
        }  # fmt: skip


def check_template_name(where: str, value: object) -> str:
    """A template name the master can hold (non-empty text)."""
    require(where, value, str, "a template name (a str)")
    assert isinstance(value, str)
    if not value:
        raise InvalidValue(f"{where} cannot be empty")
    return check_text(where, value)
