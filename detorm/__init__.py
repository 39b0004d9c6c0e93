"""detorm: a typed, ORM-style Python SDK for Determined AI clusters.

import detorm
from detorm import Experiment

detorm.connect("http://127.0.0.1:8080")
for exp in Experiment.query().filter(state="ACTIVE").order_by("start_time"):
    print(exp.id, exp.name, sorted(exp.tags))
"""

from . import errors
from ._api._sync import (
    Agent,
    AgentQuery,
    Checkpoint,
    CheckpointQuery,
    Command,
    CommandQuery,
    Experiment,
    ExperimentQuery,
    Job,
    JobQuery,
    MetricsStream,
    Model,
    ModelQuery,
    ModelVersion,
    ModelVersionQuery,
    Notebook,
    NotebookQuery,
    ProfilerStream,
    Project,
    ProjectQuery,
    Query,
    ResourcePool,
    ResourcePoolQuery,
    Session,
    Shell,
    ShellQuery,
    Task,
    TaskQuery,
    Template,
    TemplateQuery,
    Tensorboard,
    TensorboardQuery,
    Trial,
    TrialQuery,
    User,
    UserQuery,
    Webhook,
    WebhookQuery,
    Workspace,
    WorkspaceQuery,
    connect,
    default_session,
    set_default_session,
)
from ._ops._cluster import ClusterMessage, MasterInfo, MasterLogEntry, SSOProvider
from ._ops._logs import LogEntry
from ._ops._metrics import MetricReport, TrialSummary
from ._ops._profiler import ProfilerSample, ProfilerSeries
from ._ops._tasks import QueueStats
from ._plan._call import Call, RetryPolicy
from ._plan._conditions import Q, hp, metrics
from ._plan._edits import BulkResult, Change, FlushPlan
from ._plan._query import Explanation
from ._resources._base import TagSet
from ._resources._cluster import Trigger
from ._resources._tasks import AllocationInfo, AllocationResources, ContainerInfo, SlotInfo
from ._resources._values import (
    CheckpointSummary,
    ExperimentConfig,
    JSONValue,
    MetricSummary,
    Note,
    Validation,
)
from ._version import __version__
from ._wire import (
    CheckpointState,
    ExperimentState,
    JobState,
    JobType,
    LogLevel,
    OrderBy,
    TaskState,
    TaskType,
    Timestamp,
    TrialState,
    TriggerType,
    WebhookMode,
    WebhookType,
    WorkspaceState,
)

__all__ = [
    "Agent",
    "AgentQuery",
    "AllocationInfo",
    "AllocationResources",
    "BulkResult",
    "Call",
    "Change",
    "Checkpoint",
    "CheckpointQuery",
    "CheckpointState",
    "CheckpointSummary",
    "ClusterMessage",
    "Command",
    "CommandQuery",
    "ContainerInfo",
    "Experiment",
    "ExperimentConfig",
    "ExperimentQuery",
    "ExperimentState",
    "Explanation",
    "FlushPlan",
    "JSONValue",
    "Job",
    "JobQuery",
    "JobState",
    "JobType",
    "LogEntry",
    "LogLevel",
    "MasterInfo",
    "MasterLogEntry",
    "MetricReport",
    "MetricSummary",
    "MetricsStream",
    "Model",
    "ModelQuery",
    "ModelVersion",
    "ModelVersionQuery",
    "Note",
    "Notebook",
    "NotebookQuery",
    "OrderBy",
    "ProfilerSample",
    "ProfilerSeries",
    "ProfilerStream",
    "Project",
    "ProjectQuery",
    "Q",
    "Query",
    "QueueStats",
    "ResourcePool",
    "ResourcePoolQuery",
    "RetryPolicy",
    "SSOProvider",
    "Session",
    "Shell",
    "ShellQuery",
    "SlotInfo",
    "TagSet",
    "Task",
    "TaskQuery",
    "TaskState",
    "TaskType",
    "Template",
    "TemplateQuery",
    "Tensorboard",
    "TensorboardQuery",
    "Timestamp",
    "Trial",
    "TrialQuery",
    "TrialState",
    "TrialSummary",
    "Trigger",
    "TriggerType",
    "User",
    "UserQuery",
    "Validation",
    "Webhook",
    "WebhookMode",
    "WebhookQuery",
    "WebhookType",
    "Workspace",
    "WorkspaceQuery",
    "WorkspaceState",
    "__version__",
    "connect",
    "default_session",
    "errors",
    "hp",
    "metrics",
    "set_default_session",
]

# Public names report the short path (detorm.Experiment), as httpx does. Pydantic models keep
# their module: pydantic resolves annotations against it.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("detorm._") and not hasattr(_obj, "model_fields"):
        try:
            _obj.__module__ = "detorm"
        except (AttributeError, TypeError):
            pass
del _name, _obj
