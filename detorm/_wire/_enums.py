"""Determined's enums, by their full proto names (``"STATE_ACTIVE"``) and numbers.

A member's value is the name the master sends; it is also a ``str``. Lookup accepts the full name,
the short name (``"ACTIVE"``, any case) and the proto number, as jsonpb does for requests.
``str(member)`` is the short name. A value this release does not know (a newer master) becomes a
pseudo-member instead of an error, so a response never fails to parse over an enum.
"""

from __future__ import annotations

import enum
from typing import Any, Final, Self

__all__ = [
    "AgentSortBy",
    "STORED_EXPERIMENT_STATES",
    "STORED_TRIAL_STATES",
    "CheckpointSortBy",
    "CheckpointState",
    "ColumnType",
    "ExperimentSortBy",
    "ExperimentState",
    "JobState",
    "JobType",
    "LocationType",
    "LogLevel",
    "MetricType",
    "ModelSortBy",
    "ModelVersionSortBy",
    "OrderBy",
    "ProjectSortBy",
    "TableType",
    "TaskSortBy",
    "TaskState",
    "TaskType",
    "TemplateSortBy",
    "TrialSortBy",
    "TrialState",
    "UserSortBy",
    "WireEnum",
    "WorkspaceSortBy",
    "WorkspaceState",
]


class WireEnum(str, enum.Enum):
    """Base of all Determined enums: ``value`` is the wire name, ``number`` the proto number."""

    _value_: str
    number: int

    def __new__(cls, value: str, number: int) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.number = number
        return member

    @property
    def short(self) -> str:
        """The name without the enum's prefix (``"ACTIVE"`` for ``STATE_ACTIVE``)."""
        return self._value_.removeprefix(type(self)._prefix())

    def __str__(self) -> str:
        return self.short

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.short}>"

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return next((m for m in cls if m.number == value), None)
        if not isinstance(value, str):
            return None
        upper = value.strip().upper()
        for candidate in (upper, cls._prefix() + upper):
            member = cls._value2member_map_.get(candidate)
            if member is not None:
                return member
        return cls._pseudo_member(value)

    @classmethod
    def _prefix(cls) -> str:
        # Every Determined enum has <PREFIX>UNSPECIFIED = 0; the prefix is read off it.
        unspecified: str = cls.__members__["UNSPECIFIED"].value
        return unspecified.removesuffix("UNSPECIFIED")

    @classmethod
    def _pseudo_member(cls, value: str) -> Self:
        # Forward compatibility: a newer master may send a value we do not know yet.
        pseudo = str.__new__(cls, value)
        pseudo._value_ = value
        pseudo._name_ = value
        pseudo.number = -1
        return pseudo

    @classmethod
    def lookup(cls, value: str | int) -> Self:
        """Find a member by full name, short name or number; unknown names give a pseudo-member."""
        member = cls._value2member_map_.get(value) if isinstance(value, str) else None
        if member is None:
            member = cls._missing_(value)
        if member is None:
            raise ValueError(f"{value!r} is not a {cls.__name__}")
        return member  # type: ignore[return-value]

    @classmethod
    def parse(cls, value: str | int) -> Self:
        """Look a member up, refusing values this release does not know."""
        member = cls.lookup(value)
        if member.number < 0:
            known = ", ".join(m.short for m in cls)
            raise ValueError(f"{value!r} is not a {cls.__name__}; expected one of: {known}")
        return member


class ExperimentState(WireEnum):
    """``experimentv1.State``. Terminal: COMPLETED, CANCELED, ERROR, DELETED."""

    UNSPECIFIED = "STATE_UNSPECIFIED", 0
    ACTIVE = "STATE_ACTIVE", 1
    PAUSED = "STATE_PAUSED", 2
    STOPPING_COMPLETED = "STATE_STOPPING_COMPLETED", 3
    STOPPING_CANCELED = "STATE_STOPPING_CANCELED", 4
    STOPPING_ERROR = "STATE_STOPPING_ERROR", 5
    COMPLETED = "STATE_COMPLETED", 6
    CANCELED = "STATE_CANCELED", 7
    ERROR = "STATE_ERROR", 8
    DELETED = "STATE_DELETED", 9
    DELETING = "STATE_DELETING", 10
    DELETE_FAILED = "STATE_DELETE_FAILED", 11
    STOPPING_KILLED = "STATE_STOPPING_KILLED", 12
    QUEUED = "STATE_QUEUED", 13
    PULLING = "STATE_PULLING", 14
    STARTING = "STATE_STARTING", 15
    RUNNING = "STATE_RUNNING", 16

    @property
    def is_terminal(self) -> bool:
        """True for states an experiment never leaves on its own."""
        return self in _TERMINAL_EXPERIMENT_STATES


_TERMINAL_EXPERIMENT_STATES = frozenset(
    {
        ExperimentState.COMPLETED,
        ExperimentState.CANCELED,
        ExperimentState.ERROR,
        ExperimentState.DELETED,
    }
)


class TrialState(WireEnum):
    """``trialv1.State`` (also the state of a run)."""

    UNSPECIFIED = "STATE_UNSPECIFIED", 0
    ACTIVE = "STATE_ACTIVE", 1
    PAUSED = "STATE_PAUSED", 2
    STOPPING_CANCELED = "STATE_STOPPING_CANCELED", 3
    STOPPING_KILLED = "STATE_STOPPING_KILLED", 4
    STOPPING_COMPLETED = "STATE_STOPPING_COMPLETED", 5
    STOPPING_ERROR = "STATE_STOPPING_ERROR", 6
    CANCELED = "STATE_CANCELED", 7
    COMPLETED = "STATE_COMPLETED", 8
    ERROR = "STATE_ERROR", 9
    QUEUED = "STATE_QUEUED", 10
    PULLING = "STATE_PULLING", 11
    STARTING = "STATE_STARTING", 12
    RUNNING = "STATE_RUNNING", 13

    @property
    def is_terminal(self) -> bool:
        """True for CANCELED, COMPLETED and ERROR."""
        return self in _TERMINAL_TRIAL_STATES


# The database enums behind the states (migration 20230816155133), in declaration order, which is
# how Postgres sorts them. Filters on the database compare these: an experiment stored ACTIVE is
# reported as QUEUED, PULLING, STARTING or RUNNING (enrichExperimentState), and no experiment or
# trial is ever stored in a state missing here (comparing with one fails the request).
STORED_EXPERIMENT_STATES: Final = (
    "ACTIVE", "PAUSED", "STOPPING_CANCELED", "STOPPING_KILLED", "STOPPING_COMPLETED",
    "STOPPING_ERROR", "DELETING", "CANCELED", "COMPLETED", "ERROR", "DELETE_FAILED", "RUNNING",
)  # fmt: skip
STORED_TRIAL_STATES: Final = (
    "ACTIVE", "PAUSED", "STOPPING_CANCELED", "STOPPING_KILLED", "STOPPING_COMPLETED",
    "STOPPING_ERROR", "CANCELED", "COMPLETED", "ERROR", "RUNNING",
)  # fmt: skip


_TERMINAL_TRIAL_STATES = frozenset({TrialState.CANCELED, TrialState.COMPLETED, TrialState.ERROR})


class CheckpointState(WireEnum):
    """``checkpointv1.State``."""

    UNSPECIFIED = "STATE_UNSPECIFIED", 0
    ACTIVE = "STATE_ACTIVE", 1
    COMPLETED = "STATE_COMPLETED", 2
    ERROR = "STATE_ERROR", 3
    DELETED = "STATE_DELETED", 4
    PARTIALLY_DELETED = "STATE_PARTIALLY_DELETED", 5


class TaskState(WireEnum):
    """``taskv1.State``: commands, shells, notebooks, tensorboards."""

    UNSPECIFIED = "STATE_UNSPECIFIED", 0
    PULLING = "STATE_PULLING", 3
    STARTING = "STATE_STARTING", 4
    RUNNING = "STATE_RUNNING", 5
    TERMINATED = "STATE_TERMINATED", 6
    TERMINATING = "STATE_TERMINATING", 7
    QUEUED = "STATE_QUEUED", 8
    WAITING = "STATE_WAITING", 9


class WorkspaceState(WireEnum):
    """``workspacev1.WorkspaceState`` (projects use it too)."""

    UNSPECIFIED = "WORKSPACE_STATE_UNSPECIFIED", 0
    DELETING = "WORKSPACE_STATE_DELETING", 1
    DELETE_FAILED = "WORKSPACE_STATE_DELETE_FAILED", 2
    DELETED = "WORKSPACE_STATE_DELETED", 3


class OrderBy(WireEnum):
    """``v1OrderBy``."""

    UNSPECIFIED = "ORDER_BY_UNSPECIFIED", 0
    ASC = "ORDER_BY_ASC", 1
    DESC = "ORDER_BY_DESC", 2


class ExperimentSortBy(WireEnum):
    """``v1GetExperimentsRequestSortBy``."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    ID = "SORT_BY_ID", 1
    DESCRIPTION = "SORT_BY_DESCRIPTION", 2
    START_TIME = "SORT_BY_START_TIME", 4
    END_TIME = "SORT_BY_END_TIME", 5
    STATE = "SORT_BY_STATE", 6
    NUM_TRIALS = "SORT_BY_NUM_TRIALS", 8
    PROGRESS = "SORT_BY_PROGRESS", 9
    USER = "SORT_BY_USER", 10
    NAME = "SORT_BY_NAME", 11
    FORKED_FROM = "SORT_BY_FORKED_FROM", 12
    RESOURCE_POOL = "SORT_BY_RESOURCE_POOL", 13
    PROJECT_ID = "SORT_BY_PROJECT_ID", 14
    CHECKPOINT_SIZE = "SORT_BY_CHECKPOINT_SIZE", 15
    CHECKPOINT_COUNT = "SORT_BY_CHECKPOINT_COUNT", 16
    SEARCHER_METRIC_VAL = "SORT_BY_SEARCHER_METRIC_VAL", 17


class TrialSortBy(WireEnum):
    """``v1GetExperimentTrialsRequestSortBy``."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    ID = "SORT_BY_ID", 1
    START_TIME = "SORT_BY_START_TIME", 4
    END_TIME = "SORT_BY_END_TIME", 5
    STATE = "SORT_BY_STATE", 6
    BEST_VALIDATION_METRIC = "SORT_BY_BEST_VALIDATION_METRIC", 7
    LATEST_VALIDATION_METRIC = "SORT_BY_LATEST_VALIDATION_METRIC", 8
    BATCHES_PROCESSED = "SORT_BY_BATCHES_PROCESSED", 9
    DURATION = "SORT_BY_DURATION", 10
    RESTARTS = "SORT_BY_RESTARTS", 11
    CHECKPOINT_SIZE = "SORT_BY_CHECKPOINT_SIZE", 12
    LOG_RETENTION_DAYS = "SORT_BY_LOG_RETENTION_DAYS", 13


class CheckpointSortBy(WireEnum):
    """``checkpointv1.SortBy`` (the ``sortByAttr`` parameter)."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    UUID = "SORT_BY_UUID", 1
    TRIAL_ID = "SORT_BY_TRIAL_ID", 2
    BATCH_NUMBER = "SORT_BY_BATCH_NUMBER", 3
    END_TIME = "SORT_BY_END_TIME", 4
    STATE = "SORT_BY_STATE", 5
    SEARCHER_METRIC = "SORT_BY_SEARCHER_METRIC", 6


class WorkspaceSortBy(WireEnum):
    """``v1GetWorkspacesRequestSortBy``."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    ID = "SORT_BY_ID", 1
    NAME = "SORT_BY_NAME", 2


class ProjectSortBy(WireEnum):
    """``v1GetWorkspaceProjectsRequestSortBy``."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    CREATION_TIME = "SORT_BY_CREATION_TIME", 1
    LAST_EXPERIMENT_START_TIME = "SORT_BY_LAST_EXPERIMENT_START_TIME", 2
    NAME = "SORT_BY_NAME", 3
    DESCRIPTION = "SORT_BY_DESCRIPTION", 4
    ID = "SORT_BY_ID", 5


class ModelSortBy(WireEnum):
    """``v1GetModelsRequestSortBy``."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    NAME = "SORT_BY_NAME", 1
    DESCRIPTION = "SORT_BY_DESCRIPTION", 2
    CREATION_TIME = "SORT_BY_CREATION_TIME", 4
    LAST_UPDATED_TIME = "SORT_BY_LAST_UPDATED_TIME", 5
    NUM_VERSIONS = "SORT_BY_NUM_VERSIONS", 6
    WORKSPACE = "SORT_BY_WORKSPACE", 7


class ModelVersionSortBy(WireEnum):
    """``v1GetModelVersionsRequestSortBy``."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    VERSION = "SORT_BY_VERSION", 3
    CREATION_TIME = "SORT_BY_CREATION_TIME", 4


class UserSortBy(WireEnum):
    """``v1GetUsersRequestSortBy``."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    DISPLAY_NAME = "SORT_BY_DISPLAY_NAME", 1
    USER_NAME = "SORT_BY_USER_NAME", 2
    ADMIN = "SORT_BY_ADMIN", 3
    ACTIVE = "SORT_BY_ACTIVE", 4
    MODIFIED_TIME = "SORT_BY_MODIFIED_TIME", 5
    NAME = "SORT_BY_NAME", 6
    LAST_AUTH_TIME = "SORT_BY_LAST_AUTH_TIME", 7
    REMOTE = "SORT_BY_REMOTE", 8


class LogLevel(WireEnum):
    """``v1LogLevel``, ordered by severity (``number``)."""

    UNSPECIFIED = "LOG_LEVEL_UNSPECIFIED", 0
    TRACE = "LOG_LEVEL_TRACE", 1
    DEBUG = "LOG_LEVEL_DEBUG", 2
    INFO = "LOG_LEVEL_INFO", 3
    WARNING = "LOG_LEVEL_WARNING", 4
    ERROR = "LOG_LEVEL_ERROR", 5
    CRITICAL = "LOG_LEVEL_CRITICAL", 6


class MetricType(WireEnum):
    """``v1MetricType``."""

    UNSPECIFIED = "METRIC_TYPE_UNSPECIFIED", 0
    TRAINING = "METRIC_TYPE_TRAINING", 1
    VALIDATION = "METRIC_TYPE_VALIDATION", 2
    PROFILING = "METRIC_TYPE_PROFILING", 3


class LocationType(WireEnum):
    """``v1LocationType``: where a filter-tree column lives."""

    UNSPECIFIED = "LOCATION_TYPE_UNSPECIFIED", 0
    EXPERIMENT = "LOCATION_TYPE_EXPERIMENT", 1
    HYPERPARAMETERS = "LOCATION_TYPE_HYPERPARAMETERS", 2
    VALIDATIONS = "LOCATION_TYPE_VALIDATIONS", 3
    TRAINING = "LOCATION_TYPE_TRAINING", 4
    CUSTOM_METRIC = "LOCATION_TYPE_CUSTOM_METRIC", 5
    RUN = "LOCATION_TYPE_RUN", 6
    RUN_HYPERPARAMETERS = "LOCATION_TYPE_RUN_HYPERPARAMETERS", 7
    RUN_METADATA = "LOCATION_TYPE_RUN_METADATA", 8


class ColumnType(WireEnum):
    """``v1ColumnType``: how a filter-tree value is cast."""

    UNSPECIFIED = "COLUMN_TYPE_UNSPECIFIED", 0
    TEXT = "COLUMN_TYPE_TEXT", 1
    NUMBER = "COLUMN_TYPE_NUMBER", 2
    DATE = "COLUMN_TYPE_DATE", 3
    ARRAY = "COLUMN_TYPE_ARRAY", 4


class TableType(WireEnum):
    """``v1TableType``."""

    UNSPECIFIED = "TABLE_TYPE_UNSPECIFIED", 0
    EXPERIMENT = "TABLE_TYPE_EXPERIMENT", 1
    RUN = "TABLE_TYPE_RUN", 2


class TaskType(WireEnum):
    """``taskv1.TaskType``."""

    UNSPECIFIED = "TASK_TYPE_UNSPECIFIED", 0
    TRIAL = "TASK_TYPE_TRIAL", 1
    NOTEBOOK = "TASK_TYPE_NOTEBOOK", 2
    SHELL = "TASK_TYPE_SHELL", 3
    COMMAND = "TASK_TYPE_COMMAND", 4
    TENSORBOARD = "TASK_TYPE_TENSORBOARD", 5
    CHECKPOINT_GC = "TASK_TYPE_CHECKPOINT_GC", 6
    GENERIC = "TASK_TYPE_GENERIC", 7


class JobType(WireEnum):
    """``jobv1.Type``."""

    UNSPECIFIED = "TYPE_UNSPECIFIED", 0
    EXPERIMENT = "TYPE_EXPERIMENT", 1
    NOTEBOOK = "TYPE_NOTEBOOK", 2
    TENSORBOARD = "TYPE_TENSORBOARD", 3
    SHELL = "TYPE_SHELL", 4
    COMMAND = "TYPE_COMMAND", 5
    CHECKPOINT_GC = "TYPE_CHECKPOINT_GC", 6
    EXTERNAL = "TYPE_EXTERNAL", 7
    GENERIC = "TYPE_GENERIC", 8


class JobState(WireEnum):
    """``jobv1.State``."""

    UNSPECIFIED = "STATE_UNSPECIFIED", 0
    QUEUED = "STATE_QUEUED", 1
    SCHEDULED = "STATE_SCHEDULED", 2
    SCHEDULED_BACKFILLED = "STATE_SCHEDULED_BACKFILLED", 3


class TaskSortBy(WireEnum):
    """``GetTensorboardsRequest.SortBy``, which the generated bindings share with commands,
    shells and notebooks (identical enums)."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    ID = "SORT_BY_ID", 1
    DESCRIPTION = "SORT_BY_DESCRIPTION", 2
    START_TIME = "SORT_BY_START_TIME", 4
    WORKSPACE_ID = "SORT_BY_WORKSPACE_ID", 5


class AgentSortBy(WireEnum):
    """``GetAgentsRequest.SortBy``: the field numbers api.Sort compares (id, registered_time)."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    ID = "SORT_BY_ID", 1
    TIME = "SORT_BY_TIME", 2


class TemplateSortBy(WireEnum):
    """``GetTemplatesRequest.SortBy``."""

    UNSPECIFIED = "SORT_BY_UNSPECIFIED", 0
    NAME = "SORT_BY_NAME", 1
