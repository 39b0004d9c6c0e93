"""The public surface of ``detorm``, imported on first use of one of its names.

``import detorm`` runs ``detorm/__init__.py`` only (the package, its errors and its version);
the first public name looked up (``detorm.Session``, ``from detorm import Experiment``) imports
this module, and with it the whole SDK. A script pays for the SDK when it uses it, and a tool
that only imports detorm (a CLI's ``--version``, a notebook's first cell) does not.
"""

# ruff: noqa: F401  (every name imported here is detorm's, handed out by its __getattr__)
import detorm as _detorm

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

# Public names report the short path (detorm.Experiment), as httpx does. Pydantic models keep
# their module: pydantic resolves annotations against it.
for _name in _detorm.__all__:
    _obj = globals().get(_name)
    if getattr(_obj, "__module__", "").startswith("detorm._") and not hasattr(_obj, "model_fields"):
        try:
            _obj.__module__ = "detorm"
        except (AttributeError, TypeError):
            pass
del _name, _obj
