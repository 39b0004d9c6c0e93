"""The resources the commands name, as the terminal spells them, and their default columns."""

from __future__ import annotations

import argparse
from typing import Final

__all__ = ["COLUMNS_SHOWN", "RESOURCES", "resource_named"]

# Terminal name -> resource class name (a key of detorm._plan._columns.COLUMNS).
RESOURCES: Final = {
    "experiments": "Experiment",
    "trials": "Trial",
    "checkpoints": "Checkpoint",
    "workspaces": "Workspace",
    "projects": "Project",
    "models": "Model",
    "model-versions": "ModelVersion",
    "commands": "Command",
    "shells": "Shell",
    "notebooks": "Notebook",
    "tensorboards": "Tensorboard",
    "tasks": "Task",
    "templates": "Template",
    "jobs": "Job",
    "users": "User",
    "webhooks": "Webhook",
    "resource-pools": "ResourcePool",
    "agents": "Agent",
}

_TASK_COLUMNS: Final = ("id", "description", "state", "username", "resource_pool", "start_time")

# What the table shows by default: a few fields that tell the rows apart (--columns for others).
COLUMNS_SHOWN: Final[dict[str, tuple[str, ...]]] = {
    "Experiment": ("id", "name", "state", "tags", "username", "project_id", "start_time"),
    "Trial": (
        "id", "experiment_id", "state", "total_batches_processed", "searcher_metric_value",
        "start_time",
    ),
    "Checkpoint": (
        "uuid", "trial_id", "experiment_id", "state", "steps_completed", "size", "report_time",
    ),
    "Workspace": ("id", "name", "archived", "username", "num_projects", "num_experiments"),
    "Project": ("id", "name", "workspace_id", "archived", "username", "num_experiments"),
    "Model": ("id", "name", "labels", "archived", "num_versions", "last_updated_time"),
    "ModelVersion": (
        "id", "model_name", "version", "name", "checkpoint_uuid", "labels", "creation_time",
    ),
    "Command": _TASK_COLUMNS,
    "Shell": _TASK_COLUMNS,
    "Notebook": _TASK_COLUMNS,
    "Tensorboard": _TASK_COLUMNS,
    "Task": ("id", "type", "start_time", "end_time", "parent_id"),
    "Template": ("name", "workspace_id"),
    "Job": ("id", "type", "state", "name", "username", "resource_pool", "priority"),
    "User": ("id", "username", "display_name", "admin", "active"),
    "Webhook": ("id", "name", "url", "webhook_type", "mode", "workspace_id"),
    "ResourcePool": (
        "name", "type", "num_agents", "slots_available", "slots_used", "queued", "scheduled",
    ),
    "Agent": ("id", "enabled", "draining", "num_slots", "version"),
}  # fmt: skip


def resource_named(text: str, allowed: tuple[str, ...] = tuple(RESOURCES)) -> str:
    """The terminal name of a resource: plural or singular, ``_`` or ``-``, any case."""
    name = text.strip().lower().replace("_", "-")
    for candidate in (name, name + "s", name.replace("modelversion", "model-version") + "s"):
        if candidate in allowed:
            return candidate
    raise argparse.ArgumentTypeError(f"unknown resource {text!r}; one of: {', '.join(allowed)}")
