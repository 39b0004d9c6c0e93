"""What each resource can be filtered and sorted on, and the value types of its columns.

This catalog is the single source of the query surface: the planner validates lookups against
it before anything is sent, and ``scripts/gen_lookups.py`` generates the typed keyword
dictionaries of ``filter()`` and the ``order_by()`` literals (``detorm/_plan/_lookups.py``) from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from .._wire import (
    CheckpointState,
    ExperimentState,
    JobState,
    JobType,
    TaskState,
    TaskType,
    TrialState,
    WebhookMode,
    WebhookType,
    WireEnum,
    WorkspaceState,
)

__all__ = ["COLUMNS", "LOOKUPS", "SCALAR_LOOKUPS", "Column", "Kind", "column", "query_help"]

Kind = Literal["int", "float", "str", "bool", "time", "enum", "set"]

LOOKUPS: Final = ("exact", "in", "ne", "contains", "gt", "gte", "lt", "lte", "isnull")
SCALAR_LOOKUPS: Final = {
    "int": frozenset({"exact", "in", "ne", "gt", "gte", "lt", "lte", "isnull"}),
    "float": frozenset({"exact", "in", "ne", "gt", "gte", "lt", "lte", "isnull"}),
    "str": frozenset({"exact", "in", "ne", "contains", "gt", "gte", "lt", "lte", "isnull"}),
    "bool": frozenset({"exact", "ne", "isnull"}),
    "time": frozenset({"exact", "ne", "gt", "gte", "lt", "lte", "isnull"}),
    "enum": frozenset({"exact", "in", "ne", "isnull"}),
    "set": frozenset({"contains", "exact", "isnull"}),
}


@dataclass(frozen=True)
class Column:
    """A filterable, sortable field of a resource."""

    name: str
    kind: Kind
    enum: type[WireEnum] | None = None
    nullable: bool = False
    sortable: bool = True

    @property
    def lookups(self) -> frozenset[str]:
        lookups = SCALAR_LOOKUPS[self.kind]
        # isnull only means something for fields that can be empty.
        return lookups if self.nullable or self.kind == "set" else lookups - {"isnull"}

    def python_type(self) -> type[Any]:
        return {
            "int": int, "float": float, "str": str, "bool": bool, "time": datetime,
            "set": str,
        }.get(self.kind, str)  # fmt: skip


def _cols(*columns: Column) -> dict[str, Column]:
    return {c.name: c for c in columns}


I: Kind = "int"
F: Kind = "float"
S: Kind = "str"
B: Kind = "bool"
T: Kind = "time"

COLUMNS: Final[dict[str, dict[str, Column]]] = {
    "Experiment": _cols(
        Column("id", I), Column("name", S), Column("description", S),
        Column("tags", "set", sortable=False), Column("state", "enum", ExperimentState),
        Column("archived", B), Column("start_time", T), Column("end_time", T, nullable=True),
        Column("duration", I, nullable=True), Column("progress", F, nullable=True),
        Column("num_trials", I), Column("username", S), Column("user_id", I),
        Column("project_id", I), Column("workspace_id", I), Column("resource_pool", S),
        Column("searcher_type", S), Column("searcher_metric", S),
        Column("forked_from", I, nullable=True), Column("checkpoint_size", I),
        Column("checkpoint_count", I), Column("best_trial_searcher_metric", F, nullable=True),
        Column("external_experiment_id", S, nullable=True),
    ),
    "Trial": _cols(
        Column("id", I), Column("experiment_id", I), Column("state", "enum", TrialState),
        Column("start_time", T), Column("end_time", T, nullable=True), Column("restarts", I),
        Column("total_batches_processed", I), Column("total_checkpoint_size", I),
        Column("checkpoint_count", I), Column("searcher_metric_value", F, nullable=True),
    ),
    "Checkpoint": _cols(
        Column("uuid", S), Column("trial_id", I), Column("experiment_id", I),
        Column("state", "enum", CheckpointState), Column("report_time", T),
        Column("steps_completed", I, nullable=True), Column("size", I),
        Column("searcher_metric", F, nullable=True),
    ),
    "Workspace": _cols(
        Column("id", I), Column("name", S), Column("archived", B), Column("pinned", B),
        Column("username", S), Column("user_id", I), Column("immutable", B),
        Column("num_projects", I), Column("num_experiments", I),
        Column("state", "enum", WorkspaceState),
    ),
    "Project": _cols(
        Column("id", I), Column("name", S), Column("key", S), Column("description", S),
        Column("workspace_id", I), Column("archived", B), Column("username", S),
        Column("user_id", I), Column("num_experiments", I), Column("num_active_experiments", I),
        Column("num_runs", I), Column("last_experiment_started_at", T, nullable=True),
    ),
    "Model": _cols(
        Column("id", I), Column("name", S), Column("description", S),
        Column("labels", "set", sortable=False), Column("archived", B),
        Column("workspace_id", I), Column("username", S), Column("user_id", I),
        Column("creation_time", T), Column("last_updated_time", T), Column("num_versions", I),
    ),
    "ModelVersion": _cols(
        Column("id", I), Column("version", I), Column("model_id", I), Column("model_name", S),
        Column("name", S), Column("checkpoint_uuid", S), Column("labels", "set", sortable=False),
        Column("username", S), Column("user_id", I), Column("creation_time", T),
        Column("last_updated_time", T),
    ),
    "User": _cols(
        Column("id", I), Column("username", S), Column("display_name", S), Column("admin", B),
        Column("active", B), Column("remote", B), Column("modified_at", T),
        Column("last_auth_at", T, nullable=True),
    ),
    "Template": _cols(Column("name", S), Column("workspace_id", I)),
    "Job": _cols(
        Column("id", S), Column("type", "enum", JobType), Column("state", "enum", JobState),
        Column("jobs_ahead", I), Column("resource_pool", S), Column("priority", I),
        Column("weight", F), Column("requested_slots", I), Column("allocated_slots", I),
        Column("workspace_id", I), Column("limited", B), Column("name", S),
        Column("username", S), Column("user_id", I), Column("entity_id", S),
        Column("submission_time", T, nullable=True),
    ),
    "Task": _cols(
        Column("id", S), Column("type", "enum", TaskType), Column("start_time", T, nullable=True),
        Column("end_time", T, nullable=True), Column("parent_id", S, nullable=True),
        Column("forked_from", S, nullable=True),
    ),
    "ResourcePool": _cols(
        Column("name", S), Column("description", S), Column("type", S),
        Column("num_agents", I), Column("slots_available", I), Column("slots_used", I),
        Column("slot_type", S), Column("default_compute_pool", B),
        Column("default_aux_pool", B), Column("preemptible", B), Column("scheduler_type", S),
        Column("location", S), Column("accelerator", S), Column("queued", I),
        Column("scheduled", I),
    ),
    "Agent": _cols(
        Column("id", S), Column("registered_time", T, nullable=True), Column("enabled", B),
        Column("draining", B), Column("version", S), Column("num_slots", I),
    ),
    "Webhook": _cols(
        Column("id", I), Column("name", S), Column("url", S),
        Column("webhook_type", "enum", WebhookType), Column("mode", "enum", WebhookMode),
        Column("workspace_id", I),
    ),
}  # fmt: skip

# Commands, shells, notebooks and TensorBoards: the fields every list row carries.
_GENERIC_TASK: Final = _cols(
    Column("id", S), Column("description", S), Column("state", "enum", TaskState),
    Column("start_time", T), Column("username", S), Column("user_id", I),
    Column("display_name", S), Column("workspace_id", I), Column("resource_pool", S),
    Column("job_id", S), Column("exit_status", S, nullable=True),
)  # fmt: skip
for _name in ("Command", "Shell", "Notebook", "Tensorboard"):
    COLUMNS[_name] = dict(_GENERIC_TASK)

# Resources that can filter and sort on hyperparameters and metric summaries.
SUPPORTS_HP_AND_METRICS: Final = frozenset({"Experiment", "Trial"})


def column(resource: str, name: str) -> Column | None:
    return COLUMNS[resource].get(name)


def query_help(resource: str) -> str:
    """The filter fields and orderings of ``resource``'s queries, as ``help()`` shows them.

    Written from COLUMNS, like the generated ``_lookups.py``, so the two never disagree."""
    columns = COLUMNS[resource].values()
    width = max(len(c.name) for c in columns) + 2
    lines = [
        f"Filter fields of {resource}.query().filter(field__lookup=value) and .exclude(...):",
        "",
    ]
    for col in columns:
        lookups = ", ".join(sorted(col.lookups, key=lambda lookup: LOOKUPS.index(lookup)))
        lines.append(f"    {col.name:<{width}}{_kind_text(col):<20}{lookups}")
    for col in columns:
        if col.enum is not None:
            lines += ["", f"{col.name} values ({col.enum.__name__}):"]
            lines += _wrapped(", ".join(f'"{member.short}"' for member in col.enum))
    if resource in SUPPORTS_HP_AND_METRICS:
        lines += [
            "",
            "Hyperparameters and metric summaries: hp.<name> > 0.01 and",
            "metrics.<group>.<metric>.<min|max|mean|last> < 0.3 expressions, or the keywords",
            "hp__<name>[__<lookup>] and <group>__<metric>__<aggregate>[__<lookup>] in Q(...).",
        ]
    sortable = [c.name for c in columns if c.sortable]
    lines += ["", 'Orderings of .order_by() (a leading "-" descends):', ""]
    lines += _wrapped(", ".join(f'"{name}"' for name in sortable))
    lines += [f"    and {more}" for more in _MORE_ORDERINGS.get(resource, ())]
    return "\n".join(lines)


# Orderings beyond the columns (parse_ordering in _conditions.py accepts them).
_MORE_ORDERINGS: Final = {
    "Experiment": ('"hp.<name>", "<group>.<metric>.<min|max|mean|last>"',),
    "Trial": (
        '"hp.<name>", "<group>.<metric>.<min|max|mean|last>", "metadata.<key>" (run metadata)',
    ),
    "Checkpoint": ('"validation.<metric>.last" (the validation at the checkpoint)',),
}


def _kind_text(col: Column) -> str:
    if col.enum is not None:
        return col.enum.__name__
    text = {"set": "set of str", "time": "datetime"}.get(col.kind, col.kind)
    return text + (" | None" if col.nullable else "")


def _wrapped(text: str, width: int = 88) -> list[str]:
    lines, line = [], "   "
    for word in text.split(" "):
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = "   "
        line += " " + word
    return lines + [line]
