"""Experiments (``api_experiment.go``): list, get, labels, patch.

Two views of an experiment exist on the master and both are reproduced here:

* the single view (``getExperimentTx``: GetExperiment, PatchExperiment) fills ``trialIds``,
  ``originalConfig``, the full ``notes`` and ``modelDefinitionSize``, but leaves ``displayName``,
  ``searcherMetric``, ``hyperparameters`` and ``duration`` unset;
* the list view (``getExperimentColumns``: GetExperiments, SearchExperiments) has those, replaces
  non-empty notes with ``"omitted"`` and never fills ``trialIds``.

Reported state. ``enrichExperimentState`` reports an ACTIVE experiment as QUEUED, PULLING,
STARTING or RUNNING from the state of its job's allocations, QUEUED when it has none. detorm.local
has no scheduler and no allocations; an ACTIVE trial there stands for a trial that is training, so
an ACTIVE experiment with an ACTIVE (or RUNNING) trial is reported RUNNING, one without is reported
QUEUED, exactly what the master reports for a job that is scheduled or still waiting. Filters keep
working on the stored state (``states=STATE_ACTIVE`` matches both), as on the master.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from pydantic_core import from_json
from sqlmodel import Session

from detorm._plan._collation import collation_key
from detorm._wire import ExperimentSortBy, ExperimentState, OrderBy, PatchExperiment

from .. import _tables as t
from .._app import Ctx, RawJSON, rpc
from .._db import utcnow
from .._errors import ApiError, Code, internal, invalid_argument, not_found
from .._filter_sql import (
    EXPERIMENT_STATE,
    db_time,
    enum_ordinal_sql,
    execute,
    fetch,
    parse_db_time,
    parse_input,
    wire_time,
)
from .._pagination import sql_page
from .._sql_lists import in_list
from .._views import string_labels

__all__ = [
    "LIST_FROM",
    "NON_TERMINAL_STATES",
    "TERMINAL_STATES",
    "experiment_view",
    "find_project",
    "in_registry",
    "list_columns",
    "list_count_from",
    "list_view",
    "reported_state",
    "write_config",
]

TERMINAL_STATES: Final = frozenset({"CANCELED", "COMPLETED", "ERROR"})
"""``model.TerminalStates``."""

NON_TERMINAL_STATES: Final = (
    "ACTIVE", "PAUSED", "STOPPING_CANCELED", "STOPPING_KILLED", "STOPPING_COMPLETED", "STOPPING_ERROR",
)  # fmt: skip
"""``model.NonTerminalStates``: the default states of cancel and kill with filters."""

_RUNNING_TRIAL: Final = (
    "(SELECT 1 FROM trials t WHERE t.experiment_id = e.id AND t.state IN ('ACTIVE', 'RUNNING'))"
)


def in_registry(state: str) -> bool:
    """Whether the master holds a live experiment actor for this stored state (non-terminal and
    not being deleted): what pause, activate, resource changes and trial kills need."""
    return state not in TERMINAL_STATES and state not in ("DELETING", "DELETE_FAILED")


def reported_state(state: str, has_running_trial: Any) -> str:
    """The stored state as the API reports it (see the module docstring)."""
    if state == "ACTIVE":
        return "STATE_RUNNING" if has_running_trial else "STATE_QUEUED"
    return "STATE_" + state


def _config(text: str | None) -> dict[str, Any]:
    document = json.loads(text) if text else None
    return document if isinstance(document, dict) else {}


def _text(value: Any) -> str:
    """``->>`` scanned into a string field: NULL and JSON null read as ''."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _labels(labels: Any) -> list[str]:
    """A config's ``labels`` as the master scans them (strings only)."""
    return [label for label in labels if isinstance(label, str)] if isinstance(labels, list) else []


def _dig(config: dict[str, Any], *keys: str) -> Any:
    value: Any = config
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _round_half_away(value: float) -> int:
    return int(value + 0.5) if value >= 0 else -int(-value + 0.5)


# ================================================================================================
# The single view (getExperimentTx)
# ================================================================================================
_SINGLE_SQL: Final = f"""
SELECT e.id, e.original_config, e.config, e.notes, e.start_time, e.end_time, e.state, e.archived,
       e.progress, e.job_id, e.parent_id, e.owner_id, e.checkpoint_size, e.checkpoint_count,
       u.username, p.id, p.name, p.user_id, w.id, w.name, (w.archived OR p.archived), e.unmanaged,
       length(e.model_definition),
       (SELECT json_group_array(id) FROM (SELECT id FROM trials WHERE experiment_id = e.id ORDER BY id)),
       EXISTS {_RUNNING_TRIAL}
FROM experiments e
JOIN users u ON e.owner_id = u.id
LEFT JOIN projects p ON e.project_id = p.id
LEFT JOIN workspaces w ON p.workspace_id = w.id
WHERE e.id = ?
"""


def experiment_view(db: Session, experiment_id: int) -> dict[str, Any]:
    """``getExperimentTx``: the single-experiment wire message (404 when missing)."""
    rows = fetch(db, _SINGLE_SQL, [experiment_id])
    if not rows:
        raise not_found(f"experiment '{experiment_id}' not found")
    (id_, original_config, config_text, notes, start, end, state, archived, progress, job_id,
     parent_id, owner_id, checkpoint_size, checkpoint_count, username, project_id, project_name,
     project_owner, workspace_id, workspace_name, parent_archived, unmanaged, model_size,
     trial_ids, running) = rows[0]  # fmt: skip
    config = _config(config_text)
    trials = json.loads(trial_ids) if trial_ids else []
    view: dict[str, Any] = {
        "id": id_,
        "description": _text(config.get("description")),
        "labels": _labels(config.get("labels")),
        "startTime": wire_time(start),
        "endTime": wire_time(end),
        "state": reported_state(state, running),
        "archived": bool(archived),
        "numTrials": len(trials),
        "trialIds": trials,
        "displayName": "",
        "userId": owner_id,
        "username": username or "",
        "resourcePool": _text(_dig(config, "resources", "resource_pool")),
        "searcherType": _text(_dig(config, "searcher", "name")),
        "searcherMetric": "",
        "hyperparameters": None,
        "name": _text(config.get("name")),
        "notes": notes or "",
        "jobId": job_id or "",
        "forkedFrom": parent_id,
        "progress": progress,
        "projectId": project_id or 0,
        "projectName": project_name or "",
        "workspaceId": workspace_id or 0,
        "workspaceName": workspace_name or "",
        "parentArchived": bool(parent_archived),
        "config": config,
        "originalConfig": original_config or "",
        "projectOwnerId": project_owner or 0,
        "checkpointSize": str(checkpoint_size or 0),
        "checkpointCount": checkpoint_count or 0,
        "unmanaged": bool(unmanaged),
    }
    if model_size is not None:
        view["modelDefinitionSize"] = model_size
    pachyderm = _dig(config, "integrations", "pachyderm")
    if pachyderm is not None:
        view["pachydermIntegration"] = pachyderm
    return view


def job_summary(view: dict[str, Any]) -> dict[str, Any] | None:
    """GetExperiment's ``jobSummary``: only for an active experiment, from its job's queue entry
    (scheduled when running, queued otherwise; nothing is ever ahead of it in detorm.local)."""
    if view["state"] == "STATE_RUNNING":
        return {"state": "STATE_SCHEDULED", "jobsAhead": 0}
    if view["state"] in ("STATE_QUEUED", "STATE_ACTIVE"):
        return {"state": "STATE_QUEUED", "jobsAhead": 0}
    return None


# ================================================================================================
# The list view (getExperimentColumns)
# ================================================================================================
_LIST_JOINS: Final = (
    ("u", "LEFT JOIN users u ON e.owner_id = u.id"),
    ("p", "LEFT JOIN projects p ON e.project_id = p.id"),
    ("w", "LEFT JOIN workspaces w ON p.workspace_id = w.id"),
    ("r", "LEFT JOIN trials r ON r.id = e.best_trial_id"),
)
LIST_FROM: Final = "\nFROM experiments e\n" + "\n".join(join for _, join in _LIST_JOINS) + "\n"


def list_count_from(where: str) -> str:
    """LIST_FROM without the joins ``where`` does not use: each joins at most one row by primary
    key, so dropping it keeps the count (and SQLite does not do it by itself)."""
    kept: list[str] = []
    needed = where
    for alias, join in reversed(_LIST_JOINS):
        if re.search(rf"\b{alias}\.", needed):
            kept.insert(0, join)
            needed += join  # a kept join may need an earlier one (w needs p)
    return "\nFROM experiments e\n" + "\n".join(kept) + "\n"


# The list view reads a few fields of each stored config and sends the config itself. SQLite picks
# the fields (one JSON parse, in C) and the config is spliced into the response as stored: parsing
# 2 KB of JSON per experiment in Python and encoding it again was most of a page's time.
_CONFIG_PATHS: Final = (
    "description", "labels", "resources.resource_pool", "searcher.name", "searcher.metric", "name",
    "integrations.pachyderm",
)  # fmt: skip
_CONFIG_OBJECT: Final = (
    "CASE WHEN NOT json_valid(e.config) THEN '{}' WHEN json_type(e.config) = 'object' THEN e.config"
    " ELSE '{}' END"
)
_CONFIG_FIELDS: Final = "CASE WHEN json_valid(e.config) THEN json_extract(e.config, {}) END".format(
    ", ".join(f"'$.{path}'" for path in _CONFIG_PATHS)
)
_CONFIG_HYPERPARAMETERS: Final = (
    "CASE WHEN json_valid(e.config) THEN e.config -> '$.hyperparameters' END"
)


def list_columns() -> str:
    """The columns :func:`list_view` reads, in order."""
    return f"""e.id, {_CONFIG_OBJECT}, {_CONFIG_FIELDS}, {_CONFIG_HYPERPARAMETERS},
       e.start_time, e.end_time, e.state, e.archived,
       (SELECT COUNT(*) FROM trials t WHERE t.experiment_id = e.id),
       COALESCE(NULLIF(u.display_name, ''), u.username), e.owner_id, u.username, e.notes, e.job_id,
       e.parent_id, e.progress, p.name, e.project_id, w.id, w.name, (w.archived OR p.archived),
       p.user_id, e.checkpoint_size, e.checkpoint_count, e.unmanaged, e.external_experiment_id,
       r.external_run_id, e.best_trial_id, r.searcher_metric_value,
       CASE WHEN e.state = 'ACTIVE' THEN EXISTS {_RUNNING_TRIAL} ELSE 0 END"""


def list_view(
    row: Sequence[Any], now: str, *, trial_data: bool = False, best_trial: bool = False
) -> dict[str, Any]:
    """One experiment of a list: ``trial_data`` adds ``bestTrialSearcherMetric`` (GetExperiments
    with ``showTrialData``), ``best_trial`` adds ``bestTrialId`` (SearchExperiments)."""
    (id_, config_text, config_fields, hyperparameters, start, end, state, archived, num_trials,
     display_name, owner_id, username, notes, job_id, parent_id, progress, project_name, project_id,
     workspace_id, workspace_name, parent_archived, project_owner, checkpoint_size,
     checkpoint_count, unmanaged, external_id, external_trial_id, best_trial_id, best_metric,
     running) = row  # fmt: skip
    (description, labels, resource_pool, searcher_name, searcher_metric, name,
     pachyderm) = from_json(config_fields) if config_fields else (None,) * len(_CONFIG_PATHS)  # fmt: skip
    finish = parse_db_time(end if end is not None else now)
    view: dict[str, Any] = {
        "id": id_,
        "description": _text(description),
        "labels": _labels(labels),
        "startTime": wire_time(start),
        "endTime": wire_time(end),
        "state": reported_state(state, running),
        "archived": bool(archived),
        "numTrials": num_trials,
        "trialIds": [],
        "displayName": display_name or "",
        "userId": owner_id,
        "username": username or "",
        "resourcePool": _text(resource_pool),
        "searcherType": _text(searcher_name),
        "searcherMetric": _text(searcher_metric),
        "hyperparameters": None if hyperparameters is None else RawJSON(hyperparameters.encode()),
        "name": _text(name),
        "notes": "omitted" if notes else "",
        "jobId": job_id or "",
        "forkedFrom": parent_id,
        "progress": progress,
        "projectId": project_id,
        "projectName": project_name or "",
        "workspaceId": workspace_id or 0,
        "workspaceName": workspace_name or "",
        "parentArchived": bool(parent_archived),
        "config": RawJSON(config_text.encode()),
        "originalConfig": "",
        "projectOwnerId": project_owner or 0,
        "checkpointSize": str(checkpoint_size or 0),
        "checkpointCount": checkpoint_count or 0,
    }
    if trial_data and best_metric is not None:
        view["bestTrialSearcherMetric"] = best_metric
    if best_trial and best_trial_id is not None:
        view["bestTrialId"] = best_trial_id
    view["unmanaged"] = bool(unmanaged)
    view["duration"] = _round_half_away((finish - parse_db_time(start)).total_seconds())
    if external_id is not None:
        view["externalExperimentId"] = external_id
    if external_trial_id is not None:
        view["externalTrialId"] = external_trial_id
    if pachyderm is not None:
        view["pachydermIntegration"] = pachyderm
    return view


def find_project(db: Session, project_id: int) -> t.ProjectRow:
    """``GetProjectByID``: 404 ``project 'N' not found``."""
    row = db.get(t.ProjectRow, project_id)
    if row is None:
        raise not_found(f"project '{project_id}' not found")
    return row


def project_archived(db: Session, project: t.ProjectRow) -> bool:
    """A project reads as archived when it or its workspace is (``getProjectColumns``)."""
    workspace = db.get(t.WorkspaceRow, project.workspace_id)
    return project.archived or bool(workspace is not None and workspace.archived)


def like_pattern(value: str) -> str:
    """``ILIKE ('%' || v || '%')``: the user's text is a live pattern."""
    return f"%{value}%"


def labels_condition(labels: Sequence[str]) -> tuple[str | None, list[Any]]:
    """``string_to_array(join(labels, ','), ',') <@ config labels``: every part must be a label
    (a label holding a comma is split; an empty join filters nothing)."""
    joined = ",".join(labels)
    if not joined:
        return None, []
    # one parameter for all the parts (see _sql_lists.py)
    sql = (
        "NOT EXISTS (SELECT 1 FROM json_each(?) AS wanted"
        " WHERE wanted.value NOT IN (SELECT value FROM json_each(e.config, '$.labels')))"
    )
    return sql, [json.dumps(joined.split(","))]


def states_condition(states: Sequence[ExperimentState]) -> tuple[str, list[Any]]:
    """``e.state IN (...)`` of stored states; a name that is not a stored state fails in Postgres."""
    names = [state.value.removeprefix("STATE_") for state in states]
    for name in names:
        parse_input(name, EXPERIMENT_STATE)
    listed, params = in_list(names)
    return f"e.state IN {listed}", params


# ================================================================================================
# GetExperiments, GetExperiment, GetExperimentLabels
# ================================================================================================
_GET_EXPERIMENTS_ORDER: Final = {
    ExperimentSortBy.DESCRIPTION: "(e.config ->> '$.description') COLLATE pgtext",
    ExperimentSortBy.NAME: "(e.config ->> '$.name') COLLATE pgtext",
    ExperimentSortBy.START_TIME: "e.start_time",
    ExperimentSortBy.END_TIME: "e.end_time",
    ExperimentSortBy.STATE: enum_ordinal_sql("e.state", EXPERIMENT_STATE),
    ExperimentSortBy.NUM_TRIALS: "(SELECT COUNT(*) FROM trials t WHERE t.experiment_id = e.id)",
    ExperimentSortBy.PROGRESS: "COALESCE(e.progress, 0)",
    ExperimentSortBy.USER: "COALESCE(NULLIF(u.display_name, ''), u.username) COLLATE pgtext",
    ExperimentSortBy.FORKED_FROM: "e.parent_id",
    ExperimentSortBy.RESOURCE_POOL: "(e.config ->> '$.resources.resource_pool') COLLATE pgtext",
    ExperimentSortBy.PROJECT_ID: "e.project_id",
    ExperimentSortBy.CHECKPOINT_SIZE: "e.checkpoint_size",
    ExperimentSortBy.CHECKPOINT_COUNT: "e.checkpoint_count",
    ExperimentSortBy.SEARCHER_METRIC_VAL: "r.searcher_metric_value",
}


def _order(sort_by: ExperimentSortBy, order_by: OrderBy) -> str:
    # ASC (NULLs last in Postgres) or DESC NULLS LAST; ties by id in the same direction.
    direction = "DESC NULLS LAST" if order_by == OrderBy.DESC else "ASC NULLS LAST"
    column = _GET_EXPERIMENTS_ORDER.get(sort_by)
    if column is None:
        return f"e.id {direction}"
    return f"{column} {direction}, e.id {direction}"


def _get_experiments_where(ctx: Ctx) -> tuple[list[str], list[Any], bool]:
    q = ctx.query
    where: list[str] = []
    params: list[Any] = []
    description, name = q.get_str("description"), q.get_str("name")
    if description:
        where.append("pg_like(e.config ->> '$.description', ?, 1)")
        params.append(like_pattern(description))
    if name:
        where.append("pg_like(e.config ->> '$.name', ?, 1)")
        params.append(like_pattern(name))
    labels_sql, label_params = labels_condition(q.get_strs("labels"))
    if labels_sql is not None:
        where.append(labels_sql)
        params.extend(label_params)
    project_id = q.get_int("project_id")
    archived = q.get_bool_value("archived")
    if archived is not None:
        where.append("e.archived = ?")
        params.append(int(archived))
        if project_id == 0 and not archived:  # also hide what sits in archived projects/workspaces
            where.append("w.archived = 0 AND p.archived = 0")
    states = q.get_enums("states", ExperimentState, "experimentv1.State")
    users = q.get_strs("users")
    user_ids = q.get_ints("user_ids")
    for column, values in (("u.username", users), ("e.owner_id", user_ids)):
        if values:
            listed, listed_params = in_list(values)
            where.append(f"{column} IN {listed}")
            params.extend(listed_params)
    for key, op in (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")):
        bound = q.get_optional_int(f"experiment_id_filter.{key}")
        if bound is not None:
            where.append(f"e.id {op} ?")
            params.append(bound)
    for key, op in (("incl", "IN"), ("not_in", "NOT IN")):
        ids = q.get_ints(f"experiment_id_filter.{key}")
        if ids:
            listed, listed_params = in_list(ids)
            where.append(f"e.id {op} {listed}")
            params.extend(listed_params)
    if project_id != 0:
        find_project(ctx.db, project_id)
        where.append("e.project_id = ?")
        params.append(project_id)
    if states:  # checked by Postgres when the query runs, after the project lookup
        state_sql, state_params = states_condition(states)
        where.append(state_sql)
        params.extend(state_params)
    return where, params, q.get_bool("show_trial_data")


@rpc("GetExperiments")
def get_experiments(ctx: Ctx) -> dict[str, Any]:
    q = ctx.query
    sort_by = q.get_enum("sort_by", ExperimentSortBy, "apiv1.GetExperimentsRequest_SortBy")
    order_by = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    offset, limit = q.get_int("offset"), q.get_int("limit")
    where, params, trial_data = _get_experiments_where(ctx)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = fetch(ctx.db, f"SELECT COUNT(*) {list_count_from(clause)} {clause}", params)[0][0]
    page = sql_page(offset, limit, total)
    rows: list[tuple[Any, ...]] = []
    if page.end > page.start:
        sql = f"SELECT {list_columns()} {LIST_FROM} {clause} ORDER BY {_order(sort_by, order_by)} LIMIT ? OFFSET ?"
        rows = fetch(ctx.db, sql, [*params, page.end - page.start, page.start])
    now = db_time(utcnow())
    return {
        "experiments": [list_view(row, now, trial_data=trial_data) for row in rows],
        "pagination": page.pagination.model_dump_wire(),
    }


@rpc("GetExperiment", experiment_id=int)
def get_experiment(ctx: Ctx) -> dict[str, Any]:
    view = experiment_view(ctx.db, ctx.path["experiment_id"])
    return {"experiment": view, "jobSummary": job_summary(view), "config": view["config"]}


@rpc("GetExperimentLabels")
def get_experiment_labels(ctx: Ctx) -> dict[str, Any]:
    """Labels by how many *distinct label lists* carry them, most used first."""
    project_id = ctx.query.get_int("project_id")
    sql, params = "SELECT DISTINCT e.config -> '$.labels' FROM experiments e", []
    if project_id != 0:
        find_project(ctx.db, project_id)
        sql += " WHERE e.project_id = ?"
        params.append(project_id)
    usage: Counter[str] = Counter()
    seen: set[str] = set()
    for (document,) in fetch(ctx.db, sql, params):
        labels = json.loads(document) if document else None
        if not isinstance(labels, list):
            continue
        canonical = json.dumps(labels)  # DISTINCT compares the jsonb values
        if canonical in seen:
            continue
        seen.add(canonical)
        usage.update(label for label in labels if isinstance(label, str))
    # ties come out in Go's map order on the master (random); detorm.local orders them by name
    ordered = sorted(usage, key=collation_key)
    ordered.sort(key=lambda label: -usage[label])
    return {"labels": ordered}


# ================================================================================================
# Edits: PatchExperiment, PutExperimentLabel, DeleteExperimentLabel
# ================================================================================================
def write_config(db: Session, experiment_id: int, config: dict[str, Any], **columns: Any) -> None:
    """Store a new config and keep the mirrored columns (name, description, labels) in step."""
    labels = config.get("labels")
    values: dict[str, Any] = {
        "config": json.dumps(config),
        "name": _text(config.get("name")),
        "description": _text(config.get("description")),
        "labels": json.dumps(
            [x for x in labels if isinstance(x, str)] if isinstance(labels, list) else []
        ),
        **columns,
    }
    assignments = ", ".join(f"{name} = ?" for name in values)
    execute(
        db, f"UPDATE experiments SET {assignments} WHERE id = ?", [*values.values(), experiment_id]
    )


def _stored_config(db: Session, experiment_id: int) -> dict[str, Any]:
    rows = fetch(db, "SELECT config FROM experiments WHERE id = ?", [experiment_id])
    return _config(rows[0][0]) if rows else {}


def _patch_metadata(ctx: Ctx, view: dict[str, Any], patch: PatchExperiment) -> None:
    changed = False
    labels_patched = False
    if patch.name is not None and view["name"] != patch.name:
        changed = True
        if not patch.name.strip():
            raise invalid_argument("`name` must not be an empty or whitespace string")
        view["name"] = patch.name
    if patch.notes is not None and view["notes"] != patch.notes:
        changed = True
        view["notes"] = patch.notes
    if patch.description is not None and view["description"] != patch.description:
        changed = True
        view["description"] = patch.description
    if patch.labels is not None:
        labels = string_labels(patch.labels)
        if ",".join(view["labels"]) != ",".join(labels):
            changed = labels_patched = True
            view["labels"] = labels
    if not changed:
        return
    # patch_experiment.sql: config || {labels, description, name}; labels read back empty are a
    # nil slice, which marshals to null (a labels list patched to [] stays []).
    config = _stored_config(ctx.db, view["id"])
    config["labels"] = view["labels"] if (view["labels"] or labels_patched) else None
    config["description"] = view["description"]
    config["name"] = view["name"]
    write_config(ctx.db, view["id"], config, notes=view["notes"])


def _patch_resources(ctx: Ctx, view: dict[str, Any], patch: PatchExperiment, storage: Any) -> None:
    resources = patch.resources
    if resources is None and storage is None:
        return
    config = _stored_config(ctx.db, view["id"])
    columns: dict[str, Any] = {}
    if storage is not None:
        if not isinstance(storage, dict):
            raise invalid_argument("invalid value for checkpointStorage")
        _require_workspace(ctx.db, config)
        section = config.setdefault("checkpoint_storage", {})
        for key, wire in (("save_experiment_best", "saveExperimentBest"), ("save_trial_best", "saveTrialBest"),
                          ("save_trial_latest", "saveTrialLatest")):  # fmt: skip
            section[key] = int(storage.get(wire, storage.get(key)) or 0)
        # The master then garbage-collects checkpoints beyond the new policy, asynchronously;
        # detorm.local stores no checkpoint files and keeps the rows.
    if resources is not None:
        state = fetch(ctx.db, "SELECT state FROM experiments WHERE id = ?", [view["id"]])[0][0]
        if not in_registry(state):
            raise not_found(f"experiment '{view['id']}' not found")
        section = config.setdefault("resources", {})
        for key, value in (("max_slots", resources.max_slots), ("weight", resources.weight),
                           ("priority", resources.priority)):  # fmt: skip
            if value is not None:
                section[key] = value
                columns[key] = value
    write_config(ctx.db, view["id"], config, **columns)


def _require_workspace(db: Session, config: dict[str, Any]) -> None:
    """``getWorkspaceByConfig``: the config's workspace (Uncategorized when unnamed) must exist."""
    name = _text(config.get("workspace")) or "Uncategorized"
    if not fetch(db, "SELECT 1 FROM workspaces WHERE name = ?", [name]):
        raise internal(f"failed to get workspace {name}")


@rpc("PatchExperiment", **{"experiment.id": int})
def patch_experiment(ctx: Ctx) -> dict[str, Any]:
    """Wrapper fields: absent leaves a value alone, ``""`` sets it. The response is the experiment
    as read before the edit with name, notes, description and labels replaced (its ``config`` is
    the one read before the edit, as on the master)."""
    patch = ctx.body(PatchExperiment)
    experiment_id = ctx.path["experiment.id"]
    view = experiment_view(ctx.db, experiment_id)
    extra = patch.model_extra or {}
    storage = extra.get("checkpointStorage", extra.get("checkpoint_storage"))
    _patch_metadata(ctx, view, patch)
    # The master writes the metadata before it checks the resources (a 404 there keeps the new
    # name); a failed request writes nothing in detorm.local.
    _patch_resources(ctx, view, patch, storage)
    return {"experiment": view}


def _config_for_labels(ctx: Ctx, experiment_id: int) -> dict[str, Any]:
    """The stored config, read once for a label edit; an unknown experiment is a bare
    ``sql.ErrNoRows`` on the master (500)."""
    rows = fetch(ctx.db, "SELECT config FROM experiments WHERE id = ?", [experiment_id])
    if not rows:
        raise ApiError(Code.INTERNAL, "sql: no rows in result set")
    return _config(rows[0][0])


def _store_labels(ctx: Ctx, experiment_id: int, config: dict[str, Any], labels: list[str]) -> None:
    config["labels"] = labels  # jsonb_set(config, '{labels}', labels)
    write_config(ctx.db, experiment_id, config)


@rpc("PutExperimentLabel", experiment_id=int)
def put_experiment_label(ctx: Ctx) -> dict[str, Any]:
    experiment_id, label = ctx.path["experiment_id"], ctx.path["label"]
    config = _config_for_labels(ctx, experiment_id)
    labels = _labels(config.get("labels"))  # as GetExperiments' columns read them
    if label not in labels:
        labels.append(label)
        _store_labels(ctx, experiment_id, config, labels)
    return {"labels": labels}


@rpc("DeleteExperimentLabel", experiment_id=int)
def delete_experiment_label(ctx: Ctx) -> dict[str, Any]:
    experiment_id, label = ctx.path["experiment_id"], ctx.path["label"]
    config = _config_for_labels(ctx, experiment_id)
    labels = _labels(config.get("labels"))
    if label in labels:
        labels.remove(label)
        _store_labels(ctx, experiment_id, config, labels)
    return {"labels": labels}
