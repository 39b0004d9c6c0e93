"""detorm: a typed, ORM-style Python SDK for Determined AI clusters.

import detorm
from detorm import Experiment

detorm.connect("http://127.0.0.1:8080")
for exp in Experiment.query().filter(state="ACTIVE").order_by("start_time"):
    print(exp.id, exp.name, sorted(exp.tags))
"""

import importlib as _importlib
import logging as _logging
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import errors
from ._version import __version__

# A library's logger (stdlib logging): its records (detorm.http: requests at DEBUG, retries and
# new logins at WARNING) go where the application's logging config sends them, else nowhere.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
# The public names are imported on first use (PEP 562 ``__getattr__`` below): ``import detorm``
# stays cheap, and type checkers read the imports here.
if _TYPE_CHECKING:
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


def __getattr__(name: str) -> object:
    # First use of a public name: import the SDK (detorm/_surface.py) and hand out its names.
    # Other names are not looked up here: the import system probes private ones (submodules).
    if name not in __all__:
        raise AttributeError(f"module 'detorm' has no attribute {name!r}")
    surface = _importlib.import_module("detorm._surface")
    for public in __all__:
        if public not in globals():
            globals()[public] = getattr(surface, public)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
