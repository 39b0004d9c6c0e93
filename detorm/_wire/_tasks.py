"""Tasks: commands, shells, notebooks and TensorBoards, task information, templates, the job
queue, agents (``commandv1``, ``shellv1``, ``notebookv1``, ``tensorboardv1``, ``taskv1``,
``templatev1``, ``jobv1``, ``agentv1`` and their ``apiv1`` requests and responses)."""

from __future__ import annotations

from ._api import Paginated
from ._base import Struct, Timestamp, WireModel, absent
from ._enums import JobType, TaskState, TaskType
from ._experiments import JobSummary

__all__ = [
    "Agent",
    "AgentResponse",
    "AgentsResponse",
    "Allocation",
    "AllocationSummary",
    "Command",
    "CommandResponse",
    "CommandsResponse",
    "Container",
    "Devices",
    "GetJobQueueStatsResponse",
    "GetJobsV2Response",
    "GetTaskResponse",
    "GetTasksResponse",
    "Job",
    "LaunchRequest",
    "LimitedJob",
    "Notebook",
    "NotebookResponse",
    "NotebooksResponse",
    "QueueControl",
    "QueueStats",
    "RBACJob",
    "RPQueueStat",
    "ResourcesSummary",
    "Shell",
    "ShellResponse",
    "ShellsResponse",
    "Slot",
    "Task",
    "TaskLogsResponse",
    "Template",
    "TemplateResponse",
    "TemplatesResponse",
    "Tensorboard",
    "TensorboardResponse",
    "TensorboardsResponse",
    "UpdateJobQueueRequest",
]


class Container(WireModel):
    """``containerv1.Container``. ``state`` is ``containerv1.State`` (ASSIGNED, PULLING,
    STARTING, RUNNING, TERMINATED), kept as its wire name."""

    parent: str = ""
    id: str = ""
    state: str = "STATE_UNSPECIFIED"
    devices: list[Struct] = []
    permission_denied: bool = False


class _GenericTask(WireModel):
    """The fields commands, shells, notebooks and TensorBoards share."""

    id: str = ""
    description: str = ""
    state: TaskState = TaskState.UNSPECIFIED
    start_time: Timestamp | None = None
    container: Container | None = None
    display_name: str = ""
    user_id: int = 0
    username: str = ""
    resource_pool: str = ""
    exit_status: str = ""
    job_id: str = ""
    workspace_id: int = 0


class Command(_GenericTask):
    """``commandv1.Command``."""


class Shell(_GenericTask):
    """``shellv1.Shell``: also its SSH keys, addresses and agent user group."""

    private_key: str = ""
    public_key: str = ""
    addresses: list[Struct] = []
    agent_user_group: Struct | None = None


class Notebook(_GenericTask):
    """``notebookv1.Notebook``."""

    service_address: str = ""


class Tensorboard(_GenericTask):
    """``tensorboardv1.Tensorboard``."""

    experiment_ids: list[int] = []
    trial_ids: list[int] = []
    service_address: str = ""


class _Launched(WireModel):
    config: Struct | None = None
    warnings: list[str] = []


class CommandResponse(_Launched):
    """GetCommand, LaunchCommand, KillCommand, SetCommandPriority."""

    command: Command | None = None


class ShellResponse(_Launched):
    shell: Shell | None = None


class NotebookResponse(_Launched):
    notebook: Notebook | None = None


class TensorboardResponse(_Launched):
    tensorboard: Tensorboard | None = None


class CommandsResponse(Paginated):
    commands: list[Command] = []


class ShellsResponse(Paginated):
    shells: list[Shell] = []


class NotebooksResponse(Paginated):
    notebooks: list[Notebook] = []


class TensorboardsResponse(Paginated):
    tensorboards: list[Tensorboard] = []


class LaunchRequest(WireModel):
    """``LaunchCommandRequest`` and its siblings (TensorBoards add experiments, trials or
    ``filters``). ``files`` is the context as the det CLI sends it (``utilv1.File``)."""

    config: Struct | None = absent()
    template_name: str | None = absent()
    files: list[Struct] | None = absent()
    workspace_id: int | None = absent()
    experiment_ids: list[int] | None = absent()
    trial_ids: list[int] | None = absent()
    filters: Struct | None = absent()


# --- task information -----------------------------------------------------------------------
class Allocation(WireModel):
    """``taskv1.Allocation``: one run of a task on the cluster."""

    task_id: str = ""
    state: TaskState = TaskState.UNSPECIFIED
    is_ready: bool | None = absent()
    start_time: str | None = absent()
    end_time: str | None = absent()
    allocation_id: str = ""
    slots: int = 0
    exit_reason: str | None = absent()
    status_code: int | None = absent()


class Task(WireModel):
    """``taskv1.Task``."""

    task_id: str = ""
    task_type: TaskType = TaskType.UNSPECIFIED
    allocations: list[Allocation] = []
    start_time: Timestamp | None = None
    end_time: Timestamp | None = absent()
    config: str | None = absent()
    parent_id: str | None = absent()
    task_state: str | None = absent()
    forked_from: str | None = absent()
    no_pause: bool | None = absent()


class GetTaskResponse(WireModel):
    task: Task | None = None


class Devices(WireModel):
    """``ResourcesSummary.Devices``: the devices of one agent."""

    devices: list[Struct] = []


class ResourcesSummary(WireModel):
    """``taskv1.ResourcesSummary``: one container (or pod) of an allocation and its devices
    per agent."""

    resources_id: str = ""
    resources_type: str = ""
    allocation_id: str = ""
    agent_devices: dict[str, Devices] = {}
    container_id: str | None = absent()
    started: Struct | None = absent()
    exited: Struct | None = absent()


class AllocationSummary(WireModel):
    """``taskv1.AllocationSummary``: an allocation the resource manager holds now."""

    task_id: str = ""
    allocation_id: str = ""
    name: str = ""
    registered_time: Timestamp | None = None
    resource_pool: str = ""
    slots_needed: int = 0
    resources: list[ResourcesSummary] = []
    scheduler_type: str = ""
    priority: int | None = absent()
    proxy_ports: list[Struct] = []


class GetTasksResponse(WireModel):
    """GetTasks: the active allocations, by allocation id."""

    allocation_id_to_summary: dict[str, AllocationSummary] = {}

    @property
    def allocations(self) -> list[AllocationSummary]:
        """The summaries in allocation id order (the master's JSON sorts map keys)."""
        return [self.allocation_id_to_summary[k] for k in sorted(self.allocation_id_to_summary)]


class TaskLogsResponse(WireModel):
    """One message of the TaskLogs stream."""

    id: str = ""
    task_id: str = ""
    allocation_id: str | None = absent()
    agent_id: str | None = absent()
    container_id: str | None = absent()
    rank_id: int | None = absent()
    timestamp: Timestamp | None = None
    level: str = "LOG_LEVEL_UNSPECIFIED"
    message: str = ""
    log: str = ""
    source: str | None = absent()
    stdtype: str | None = absent()


# --- templates ------------------------------------------------------------------------------
class Template(WireModel):
    """``templatev1.Template``: a named config merged into what is launched with it."""

    name: str = ""
    config: Struct = {}
    workspace_id: int = 0


class TemplateResponse(WireModel):
    """GetTemplate, PostTemplate, PutTemplate, PatchTemplateConfig, PatchTemplateName."""

    template: Template | None = None


class TemplatesResponse(Paginated):
    templates: list[Template] = []


# --- the job queue --------------------------------------------------------------------------
class Job(WireModel):
    """``jobv1.Job``."""

    summary: JobSummary | None = None
    type: JobType = JobType.UNSPECIFIED
    submission_time: Timestamp | None = None
    username: str = ""
    user_id: int = 0
    resource_pool: str = ""
    is_preemptible: bool = False
    priority: int = 0
    weight: float = 0.0
    entity_id: str = ""
    job_id: str = ""
    requested_slots: int = 0
    allocated_slots: int = 0
    name: str = ""
    progress: float = 0.0
    workspace_id: int = 0


class LimitedJob(WireModel):
    """``jobv1.LimitedJob``: a job of a workspace the user cannot see (no name, no owner)."""

    summary: JobSummary | None = None
    type: JobType = JobType.UNSPECIFIED
    resource_pool: str = ""
    is_preemptible: bool = False
    priority: int = 0
    weight: float = 0.0
    job_id: str = ""
    requested_slots: int = 0
    allocated_slots: int = 0
    progress: float = 0.0
    workspace_id: int = 0


class RBACJob(WireModel):
    """One of ``full`` and ``limited``."""

    full: Job | None = absent()
    limited: LimitedJob | None = absent()


class GetJobsV2Response(Paginated):
    jobs: list[RBACJob] = []


class QueueControl(WireModel):
    """One queue edit: exactly one of the actions (a oneof). The master 0.38.1 applies
    ``priority``, ``weight`` and ``resourcePool``; ``aheadOf``/``behindOf`` are deprecated and
    refused ("unexpected action")."""

    job_id: str = ""
    priority: int | None = absent()
    weight: float | None = absent()
    resource_pool: str | None = absent()


class UpdateJobQueueRequest(WireModel):
    updates: list[QueueControl] = []


class QueueStats(WireModel):
    queued_count: int = 0
    scheduled_count: int = 0


class RPQueueStat(WireModel):
    stats: QueueStats | None = None
    resource_pool: str = ""
    aggregates: list[Struct] = []


class GetJobQueueStatsResponse(WireModel):
    results: list[RPQueueStat] = []


# --- agents ---------------------------------------------------------------------------------
class Slot(WireModel):
    """``agentv1.Slot``: one device of an agent and the container holding it."""

    id: str = ""
    device: Struct | None = absent()
    enabled: bool = False
    container: Container | None = absent()
    draining: bool = False


class Agent(WireModel):
    """``agentv1.Agent``. Slots are keyed ``/agents/<id>/slots/<n>``."""

    id: str = ""
    registered_time: Timestamp | None = absent()
    slots: dict[str, Slot] = {}
    containers: dict[str, Container] = {}
    addresses: list[str] = []
    enabled: bool = False
    draining: bool = False
    version: str = ""
    resource_pools: list[str] = []
    slot_stats: Struct | None = absent()


class AgentResponse(WireModel):
    agent: Agent | None = None


class AgentsResponse(Paginated):
    agents: list[Agent] = []
