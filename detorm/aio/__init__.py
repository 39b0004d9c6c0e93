"""detorm's async API: the twin of ``detorm``'s, for asyncio code (notebooks, services).

Same resources, queries and sessions, awaited::

    import detorm.aio as det

    async with det.AsyncSession("http://master:8080") as session:
        async for exp in det.Experiment.query(session).filter(state="ACTIVE"):
            print(exp.name, await exp.trials.count())

Queries are iterated with ``async for`` and their terminal methods awaited; metrics and logs
are async iterators; a to-one relationship that is not loaded raises NotLoaded naming
``await session.load(obj, "...")``. Everything else (filters, ``explain()``, the identity map,
the unit of work, errors) is the sync API's.
"""

from .._api._aio import (
    Agent,
    AsyncAgentQuery,
    AsyncCheckpointQuery,
    AsyncCommandQuery,
    AsyncExperimentQuery,
    AsyncJobQuery,
    AsyncMetricsStream,
    AsyncModelQuery,
    AsyncModelVersionQuery,
    AsyncNotebookQuery,
    AsyncProfilerStream,
    AsyncProjectQuery,
    AsyncQuery,
    AsyncResourcePoolQuery,
    AsyncSession,
    AsyncShellQuery,
    AsyncTaskQuery,
    AsyncTemplateQuery,
    AsyncTensorboardQuery,
    AsyncTrialQuery,
    AsyncUserQuery,
    AsyncWebhookQuery,
    AsyncWorkspaceQuery,
    Checkpoint,
    Command,
    Experiment,
    Job,
    Model,
    ModelVersion,
    Notebook,
    Project,
    ResourcePool,
    Shell,
    Task,
    Template,
    Tensorboard,
    Trial,
    User,
    Webhook,
    Workspace,
    connect,
    default_session,
    set_default_session,
)

__all__ = [
    "Agent",
    "AsyncAgentQuery",
    "AsyncCheckpointQuery",
    "AsyncCommandQuery",
    "AsyncExperimentQuery",
    "AsyncJobQuery",
    "AsyncMetricsStream",
    "AsyncModelQuery",
    "AsyncModelVersionQuery",
    "AsyncNotebookQuery",
    "AsyncProfilerStream",
    "AsyncProjectQuery",
    "AsyncQuery",
    "AsyncResourcePoolQuery",
    "AsyncSession",
    "AsyncShellQuery",
    "AsyncTaskQuery",
    "AsyncTemplateQuery",
    "AsyncTensorboardQuery",
    "AsyncTrialQuery",
    "AsyncUserQuery",
    "AsyncWebhookQuery",
    "AsyncWorkspaceQuery",
    "Checkpoint",
    "Command",
    "Experiment",
    "Job",
    "Model",
    "ModelVersion",
    "Notebook",
    "Project",
    "ResourcePool",
    "Shell",
    "Task",
    "Template",
    "Tensorboard",
    "Trial",
    "User",
    "Webhook",
    "Workspace",
    "connect",
    "default_session",
    "set_default_session",
]

# Public names report the short path (detorm.aio.AsyncSession), as in ``detorm``.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("detorm._") and not hasattr(_obj, "model_fields"):
        _obj.__module__ = "detorm.aio"
