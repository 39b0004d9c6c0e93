"""Filter-tree search and run actions: SearchExperiments, SearchRuns, the ``/api/v1/runs/*`` bulk
actions (``api_experiment.go``, ``api_runs.go``) and GetProjectColumns (``api_project.go``).

In detorm.local a run is a trial and its project is its experiment's project, so moving runs moves
their experiments, as the master does for every run that has one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlmodel import Session

from detorm._plan._collation import collation_key
from detorm._wire import MoveRunsRequest, RunActionRequest, SearchRequest, TableType

from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import ApiError, internal
from .._filter_sql import (
    NIL_DEREFERENCE,
    CompiledFilter,
    FilterScope,
    compile_filter,
    db_time,
    decode_filter,
    error_text,
    execute,
    experiment_sort,
    fetch,
    flatten_metadata,
    go_error,
    metadata_type,
    parse_db_time,
    pg_text,
    run_sort,
    wire_time,
)
from .._pagination import sql_page
from .._sql_lists import in_list
from .experiment_actions import Outcome, activate_experiments, move_experiments, pause_experiments
from .experiments import (
    LIST_FROM,
    find_project,
    list_columns,
    list_count_from,
    list_view,
    project_archived,
)
from .trials import best_trial_views, kill_trial

__all__ = ["RUNS_FROM"]


_EXPERIMENTS: Final = FilterScope("e.id", LIST_FROM)


def _filter(
    ctx: Ctx, text: str | None, archived_sql: str, now: str, scope: FilterScope
) -> tuple[list[str], list[Any], CompiledFilter | None]:
    """The filter's condition, plus the archived condition unless ``showArchived``."""
    if text is None:
        return [], [], None
    root = decode_filter(text)
    compiled = compile_filter(ctx.db, root, now, scope)
    where = [f"({compiled.sql})"] if compiled.sql is not None else []
    if not root.show_archived:
        where.append(archived_sql)
    return where, compiled.params, compiled


def _page_query(
    ctx: Ctx, request: SearchRequest, select: str, from_sql: str, where: list[str], params: list[Any], order: str,
    order_params: list[Any], count_from: Callable[[str], str] | None = None,
) -> tuple[Any, list[tuple[Any, ...]]]:  # fmt: skip
    """One page and the total; ``count_from`` may trim ``from_sql`` for the count."""
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    counted_from = from_sql if count_from is None else count_from(clause)
    total = fetch(ctx.db, f"SELECT COUNT(*) {counted_from} {clause}", params)[0][0]
    page = sql_page(request.offset, request.limit, total)
    if page.end == page.start:
        return page, []
    sql = f"SELECT {select} {from_sql} {clause} ORDER BY {order} LIMIT ? OFFSET ?"
    return page, fetch(ctx.db, sql, [*params, *order_params, page.end - page.start, page.start])


# ================================================================================================
# SearchExperiments
# ================================================================================================
@rpc("SearchExperiments")
def search_experiments(ctx: Ctx) -> dict[str, Any]:
    """Experiments (never DELETING) with their best trial; with a ``filter`` the archived ones
    are hidden unless ``showArchived``; without a ``sort``, by id."""
    request = ctx.body(SearchRequest)
    now = db_time(utcnow())
    where: list[str] = ["e.state != 'DELETING'"]
    params: list[Any] = []
    if request.project_id is not None:
        find_project(ctx.db, request.project_id)
        where.append("e.project_id = ?")
        params.append(request.project_id)
    filter_where, filter_params, compiled = _filter(
        ctx, request.filter, "e.archived = 0", now, _EXPERIMENTS
    )
    order, order_params = (
        ("e.id ASC", []) if request.sort is None else experiment_sort(request.sort, now)
    )
    if compiled is not None:
        compiled.check()
    page, rows = _page_query(ctx, request, list_columns(), LIST_FROM, where + filter_where, params + filter_params,
                             order, order_params, list_count_from)  # fmt: skip
    experiments = [list_view(row, now, best_trial=True) for row in rows]
    best = best_trial_views(ctx.db, [e["bestTrialId"] for e in experiments if "bestTrialId" in e])
    return {
        "experiments": [{"experiment": e, "bestTrial": best.get(e["id"])} for e in experiments],
        "pagination": page.pagination.model_dump_wire(),
    }


# ================================================================================================
# SearchRuns
# ================================================================================================
RUNS_FROM: Final = """
FROM trials r
LEFT JOIN experiments e ON r.experiment_id = e.id
LEFT JOIN users u ON e.owner_id = u.id
LEFT JOIN projects p ON e.project_id = p.id
LEFT JOIN workspaces w ON p.workspace_id = w.id
"""
_RUNS: Final = FilterScope("r.id", RUNS_FROM)

_RUN_COLUMNS: Final = """r.id, r.start_time, r.end_time, r.state, r.checkpoint_size, r.checkpoint_count,
 r.searcher_metric_value, r.external_run_id, r.hparams, r.summary_metrics, e.owner_id, e.project_id,
 p.name, w.id, w.name, (w.archived OR p.archived), e.id, e.config, e.progress, e.parent_id,
 e.external_experiment_id, e.unmanaged, r.metadata, COALESCE((r.archived OR e.archived), 0), p.key, r.local_id"""


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text else None


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def _flat_run(row: Sequence[Any], now: str) -> dict[str, Any]:
    (id_, start, end, state, size, count, searcher_value, external_id, hparams, summary, owner_id,
     project_id, project_name, workspace_id, workspace_name, parent_archived, experiment_id, config_text,
     progress, parent_id, external_experiment_id, unmanaged, metadata, archived, key, local_id) = row  # fmt: skip
    config = _json_or_none(config_text) or {}
    searcher = _section(config, "searcher")
    resources = _section(config, "resources")
    labels = config.get("labels")
    view: dict[str, Any] = {
        "id": id_,
        "startTime": wire_time(start),
        "endTime": wire_time(end),
        "state": "STATE_" + state,
        "labels": [x for x in labels if isinstance(x, str)] if isinstance(labels, list) else [],
        "checkpointSize": str(size or 0),
        "checkpointCount": count or 0,
    }
    if searcher_value is not None:
        view["searcherMetricValue"] = searcher_value
    if external_id is not None:
        view["externalRunId"] = external_id
    parameters = _json_or_none(hparams)
    if parameters is not None:
        view["hyperparameters"] = parameters
    summary_metrics = _json_or_none(summary)
    if summary_metrics is not None:
        view["summaryMetrics"] = summary_metrics
    if owner_id is not None:
        view["userId"] = owner_id
    finish = parse_db_time(end if end is not None else now)
    seconds = (finish - parse_db_time(start)).total_seconds()
    view["duration"] = int(seconds + 0.5) if seconds >= 0 else -int(-seconds + 0.5)
    view.update({
        "projectId": project_id or 0,
        "projectName": project_name or "",
        "workspaceId": workspace_id or 0,
        "workspaceName": workspace_name or "",
        "parentArchived": bool(parent_archived),
    })  # fmt: skip
    if experiment_id is not None:
        view["experiment"] = _flat_run_experiment(experiment_id, config, searcher, resources, progress, parent_id,
                                                  external_experiment_id, unmanaged)  # fmt: skip
    document = _json_or_none(metadata)
    if document is not None:
        view["metadata"] = document
    view["archived"] = bool(archived)
    view["localId"] = f"{key or ''}-{local_id if local_id is not None else ''}"
    return view


def _flat_run_experiment(
    experiment_id: int, config: dict[str, Any], searcher: dict[str, Any], resources: dict[str, Any],
    progress: Any, parent_id: Any, external_id: Any, unmanaged: Any,
) -> dict[str, Any]:  # fmt: skip
    """``runv1.FlatRunExperiment`` from the master's ``jsonb_build_object`` (null members dropped)."""
    experiment: dict[str, Any] = {
        "id": experiment_id,
        "searcherType": pg_text(searcher.get("name")) or "",
        "searcherMetric": pg_text(searcher.get("metric")) or "",
    }
    if parent_id is not None:
        experiment["forkedFrom"] = parent_id
    if external_id is not None:
        experiment["externalExperimentId"] = external_id
    integrations = config.get("integrations")
    pachyderm = integrations.get("pachyderm") if isinstance(integrations, dict) else None
    experiment.update({
        "resourcePool": pg_text(resources.get("resource_pool")) or "",
        "progress": progress or 0.0,
        "description": pg_text(config.get("description")) or "",
        "name": pg_text(config.get("name")) or "",
        "unmanaged": bool(unmanaged),
        "isMultitrial": searcher.get("name") != "single",
    })  # fmt: skip
    if pachyderm is not None:
        experiment["pachydermIntegration"] = pachyderm
    return experiment


@rpc("SearchRuns")
def search_runs(ctx: Ctx) -> dict[str, Any]:
    """Runs as flat rows; a filter hides archived runs (or runs of archived experiments) unless
    ``showArchived``; without a ``sort``, by id."""
    request = ctx.body(SearchRequest)
    now = db_time(utcnow())
    where: list[str] = []
    params: list[Any] = []
    if request.project_id is not None:
        find_project(ctx.db, request.project_id)
        where.append("e.project_id = ?")
        params.append(request.project_id)
    filter_where, filter_params, compiled = _filter(
        ctx, request.filter, "NOT (r.archived OR e.archived)", now, _RUNS
    )
    order, order_params = ("r.id ASC", []) if request.sort is None else run_sort(request.sort, now)
    if compiled is not None:
        compiled.check()
    page, rows = _page_query(ctx, request, _RUN_COLUMNS, RUNS_FROM, where + filter_where, params + filter_params,
                             order, order_params)  # fmt: skip
    return {
        "runs": [_flat_run(row, now) for row in rows],
        "pagination": page.pagination.model_dump_wire(),
    }


# ================================================================================================
# Run actions
# ================================================================================================
_ACTION_FROM: Final = """
FROM trials r
LEFT JOIN experiments e ON r.experiment_id = e.id
JOIN projects p ON e.project_id = p.id
JOIN workspaces w ON p.workspace_id = w.id
"""
_TERMINAL: Final = "r.state IN ('CANCELED', 'COMPLETED', 'ERROR')"
_ARCHIVED: Final = "COALESCE((r.archived OR e.archived OR p.archived OR w.archived), 0)"
_MULTITRIAL: Final = "COALESCE((e.config ->> '$.searcher.name') != 'single', 0)"


@dataclass(frozen=True)
class _Result:
    id: int
    error: str = ""


def _results(results: Iterable[_Result]) -> dict[str, Any]:
    return {"results": [{"error": r.error, "id": r.id} for r in results]}


def _candidates(
    ctx: Ctx, columns: str, project_id: int, run_ids: Sequence[int], filter_text: str | None
) -> list[tuple[Any, ...]]:
    """Runs of the project among the ids, or matching the filter (``filterRunQuery``)."""
    where = ["e.project_id = ?"]
    params: list[Any] = [project_id]
    compiled = None
    if filter_text is None:
        listed, listed_params = in_list(run_ids)
        where.append(f"r.id IN {listed}")
        params.extend(listed_params)
    else:
        filter_where, filter_params, compiled = _filter(
            ctx, filter_text, "NOT (r.archived OR e.archived)", db_time(utcnow()), _RUNS
        )
        where.extend(filter_where)
        params.extend(filter_params)
    if compiled is not None:
        compiled.check()
    return fetch(
        ctx.db, f"SELECT {columns} {_ACTION_FROM} WHERE {' AND '.join(where)} ORDER BY r.id", params
    )


def _not_found(run_ids: Sequence[int], seen: Iterable[int], message: str) -> list[_Result]:
    visible = set(seen)
    return [_Result(i, message.format(id=i)) for i in run_ids if i not in visible]


def _exclusive(request: RunActionRequest) -> None:
    if request.run_ids and request.filter is not None:
        raise go_error("if filter is provided run id list must be empty")


@rpc("KillRuns")
def kill_runs(ctx: Ctx) -> dict[str, Any]:
    request = ctx.body(RunActionRequest)
    rows = _candidates(
        ctx, f"r.id, {_TERMINAL}", request.project_id, request.run_ids, request.filter
    )
    results = [_Result(run_id) for run_id, terminal in rows if terminal]
    if request.filter is None:
        results += _not_found(
            request.run_ids, [row[0] for row in rows], "Run with id '{id}' not found"
        )
    for run_id in [row[0] for row in rows if not row[1]]:
        try:
            kill_trial(ctx.db, run_id)
            results.append(_Result(run_id))
        except ApiError as err:
            results.append(_Result(run_id, f"Failed to kill run: {error_text(err)}"))
    return _results(results)


@rpc("DeleteRuns")
def delete_runs(ctx: Ctx) -> dict[str, Any]:
    request = ctx.body(RunActionRequest)
    _exclusive(request)
    rows = _candidates(
        ctx, f"r.id, {_TERMINAL}", request.project_id, request.run_ids, request.filter
    )
    results = [
        _Result(run_id, "Run is not in a terminal state.")
        for run_id, terminal in rows
        if not terminal
    ]
    if request.filter is None:
        message = f"Run with id '{{id}}' not found in project with id '{request.project_id}'"
        results += _not_found(request.run_ids, [row[0] for row in rows], message)
    valid = [row[0] for row in rows if row[1]]
    if valid:
        _delete_runs(ctx.db, valid)
        results += [_Result(run_id) for run_id in valid]
    return _results(results)


def _delete_runs(db: Session, run_ids: Sequence[int]) -> None:
    """Delete runs with their logs, metrics and hyperparameter rows. Their experiment stays; the
    checkpoints stay too, no longer attached to a run (``run_checkpoints`` rows go on the master)."""
    runs, params = in_list(run_ids)
    # system_metrics: the master's foreign key to runs cascades (migration 20241023165301).
    for table, column in (("trial_logs", "trial_id"), ("metrics", "trial_id"),
                          ("system_metrics", "trial_id"), ("run_hparams", "run_id"),
                          ("local_id_redirect", "run_id")):  # fmt: skip
        execute(db, f"DELETE FROM {table} WHERE {column} IN {runs}", params)
    execute(db, f"UPDATE checkpoints SET trial_id = NULL WHERE trial_id IN {runs}", params)
    execute(
        db, f"UPDATE experiments SET best_trial_id = NULL WHERE best_trial_id IN {runs}", params
    )
    execute(db, f"DELETE FROM trials WHERE id IN {runs}", params)


def _archive_runs(ctx: Ctx, *, archive: bool) -> dict[str, Any]:
    request = ctx.body(RunActionRequest)
    _exclusive(request)
    columns = f"r.id, r.archived, e.archived, r.experiment_id, {_TERMINAL}"
    rows = _candidates(ctx, columns, request.project_id, request.run_ids, request.filter)
    results: list[_Result] = []
    valid: list[int] = []
    for run_id, archived, experiment_archived, experiment_id, terminal in rows:
        if experiment_archived:
            results.append(
                _Result(run_id, f"Run is part of archived Search (id: '{experiment_id}').")
            )
        elif bool(archived) == archive:
            results.append(_Result(run_id))
        elif not terminal:
            results.append(_Result(run_id, "Run is not in terminal state."))
        else:
            valid.append(run_id)
    if request.filter is None:
        message = f"Run with id '{{id}}' not found in project with id '{request.project_id}'"
        results += _not_found(request.run_ids, [row[0] for row in rows], message)
    if valid:
        runs, params = in_list(valid)
        sql = f"UPDATE trials SET archived = ? WHERE id IN {runs}"
        execute(ctx.db, sql, [int(archive), *params])
        results += [_Result(run_id) for run_id in valid]
    return _results(results)


@rpc("ArchiveRuns")
def archive_runs(ctx: Ctx) -> dict[str, Any]:
    return _archive_runs(ctx, archive=True)


@rpc("UnarchiveRuns")
def unarchive_runs(ctx: Ctx) -> dict[str, Any]:
    return _archive_runs(ctx, archive=False)


def _pause_resume(ctx: Ctx, *, pause: bool) -> dict[str, Any]:
    request = ctx.body(RunActionRequest)
    _exclusive(request)
    if not request.run_ids and request.filter is None:
        raise go_error(NIL_DEREFERENCE)  # filterRunQuery dereferences the missing filter
    columns = f"r.id, {_ARCHIVED}, r.experiment_id, {_MULTITRIAL}"
    rows = _candidates(ctx, columns, request.project_id, request.run_ids,
                       None if request.run_ids else request.filter)  # fmt: skip
    results: list[_Result] = []
    run_of: dict[int, int] = {}
    for run_id, archived, experiment_id, multitrial in rows:
        if archived:
            results.append(_Result(run_id, "Run is archived."))
        elif multitrial:
            results.append(
                _Result(run_id, f"Cannot pause/unpause run '{run_id}' (part of multi-trial).")
            )
        else:
            run_of[experiment_id] = run_id
    if request.run_ids:
        message = f"Run with id '{{id}}' not found in project with id '{request.project_id}'"
        results += _not_found(request.run_ids, [row[0] for row in rows], message)
    action = pause_experiments if pause else activate_experiments
    outcomes: list[Outcome] = action(ctx.db, request.project_id, sorted(run_of), None)
    template = (
        "Failed to pause associated experiment: {}"
        if pause
        else "Failed to resume associated experiment: {}"
    )
    for outcome in outcomes:
        run_id = run_of.get(outcome.id, 0)
        error = "" if outcome.error is None else template.format(error_text(outcome.error))
        results.append(_Result(run_id, error))
    return _results(results)


@rpc("PauseRuns")
def pause_runs(ctx: Ctx) -> dict[str, Any]:
    return _pause_resume(ctx, pause=True)


@rpc("ResumeRuns")
def resume_runs(ctx: Ctx) -> dict[str, Any]:
    return _pause_resume(ctx, pause=False)


@rpc("MoveRuns")
def move_runs(ctx: Ctx) -> dict[str, Any]:
    request = ctx.body(MoveRunsRequest)
    source, destination = request.source_project_id, request.destination_project_id
    if project_archived(ctx.db, find_project(ctx.db, source)):
        raise internal(f"project ({source}) is archived and cannot have runs moved from it")
    if project_archived(ctx.db, find_project(ctx.db, destination)):
        raise internal(f"project ({destination}) is archived and cannot add new runs")
    if source == destination:
        return {"results": []}
    columns = f"r.id, {_ARCHIVED}, r.experiment_id, {_MULTITRIAL}"
    rows = _candidates(ctx, columns, source, request.run_ids, request.filter)
    results: list[_Result] = []
    valid: dict[int, int] = {}  # run -> its experiment
    for run_id, archived, experiment_id, multitrial in rows:
        if archived:
            results.append(_Result(run_id, "Run is archived."))
        elif multitrial and request.skip_multitrial:
            results.append(_Result(run_id, f"Skipping run '{run_id}' (part of multi-trial)."))
        else:
            valid[run_id] = experiment_id
    if request.filter is None:
        message = f"Run with id '{{id}}' not found in project with id '{source}'"
        results += _not_found(request.run_ids, [row[0] for row in rows], message)
    if valid:
        outcomes = move_experiments(ctx.db, source, list(valid.values()), None, destination)
        failed = {o.id for o in outcomes if o.error is not None}
        moved = {o.id for o in outcomes if o.error is None}
        results += [_Result(run_id, "Failed to move associated experiment")
                    for run_id, experiment_id in valid.items() if experiment_id in failed]  # fmt: skip
        # every run of a moved experiment is reported, requested or not
        experiments, params = in_list(moved)
        sql = f"SELECT id FROM trials WHERE experiment_id IN {experiments} ORDER BY id"
        moved_runs = fetch(ctx.db, sql, params)
        results += [_Result(row[0]) for row in moved_runs]
    return _results(results)


# ================================================================================================
# GetProjectColumns
# ================================================================================================
def _column(column: str, location: str, kind: str, display: str = "") -> dict[str, Any]:
    return {
        "column": column,
        "location": f"LOCATION_TYPE_{location}",
        "type": f"COLUMN_TYPE_{kind}",
        "displayName": display,
    }


_EXPERIMENT_COLUMNS: Final = [
    ("id", "ID", "NUMBER"), ("name", "Name", "TEXT"), ("description", "Description", "TEXT"),
    ("tags", "Tags", "TEXT"), ("forkedFrom", "Forked", "NUMBER"), ("startTime", "Start time", "DATE"),
    ("duration", "Duration", "NUMBER"), ("numTrials", "Trial count", "NUMBER"), ("state", "State", "TEXT"),
    ("searcherType", "Searcher", "TEXT"), ("resourcePool", "Resource pool", "TEXT"),
    ("progress", "Progress", "NUMBER"), ("checkpointSize", "Checkpoint size", "NUMBER"),
    ("checkpointCount", "Checkpoints", "NUMBER"), ("user", "User", "TEXT"),
    ("searcherMetric", "Searcher Metric", "TEXT"), ("searcherMetricsVal", "Searcher Metric Value", "NUMBER"),
    ("externalExperimentId", "External Experiment ID", "TEXT"), ("externalTrialId", "External Trial ID", "TEXT"),
    ("archived", "Archived", "UNSPECIFIED"),
]  # fmt: skip

_RUN_COLUMNS_DEFAULT: Final = [
    ("id", "Global Run ID", "NUMBER"), ("experimentDescription", "Search Description", "TEXT"),
    ("tags", "Tags", "TEXT"), ("forkedFrom", "Forked", "NUMBER"), ("startTime", "Start Time", "DATE"),
    ("endTime", "End Time", "DATE"), ("duration", "Duration", "NUMBER"), ("state", "State", "TEXT"),
    ("searcherType", "Searcher", "TEXT"), ("resourcePool", "Resource Pool", "TEXT"),
    ("checkpointSize", "Checkpoint Size", "NUMBER"), ("checkpointCount", "Checkpoints", "NUMBER"),
    ("user", "User", "TEXT"), ("searcherMetric", "Searcher Metric", "TEXT"),
    ("searcherMetricsVal", "Searcher Metric Value", "NUMBER"),
    ("externalExperimentId", "External Experiment ID", "TEXT"), ("projectId", "Project ID", "NUMBER"),
    ("externalRunId", "External Run ID", "TEXT"), ("experimentProgress", "Search Progress", "NUMBER"),
    ("experimentId", "Search ID", "NUMBER"), ("experimentName", "Search Name", "TEXT"),
    ("isExpMultitrial", "Part of Search", "UNSPECIFIED"), ("parentArchived", "Parent Archived", "UNSPECIFIED"),
    ("localId", "Run ID", "TEXT"), ("archived", "Archived", "UNSPECIFIED"),
]  # fmt: skip

_METRIC_TYPES: Final = {
    "string": "TEXT",
    "number": "NUMBER",
    "date": "DATE",
    "boolean": "TEXT",
    "array": "ARRAY",
}
"""``parseMetricsType``."""


def _metric_type(kind: str | None) -> str:
    return _METRIC_TYPES.get(kind or "", "UNSPECIFIED")


def _summary_metric_columns(summaries: Iterable[str | None]) -> list[dict[str, Any]]:
    """``getRunSummaryMetrics``: one column per (group, metric); a metric seen with several types
    is reported once, untyped; numbers get last/max/mean/min, anything else only last."""
    stats: set[tuple[str, str, str | None]] = set()
    for text in summaries:
        document = _json_or_none(text)
        if not isinstance(document, dict):
            continue
        for group, metrics in document.items():
            if isinstance(metrics, dict):
                for name, entry in metrics.items():
                    stats.add(
                        (
                            group,
                            name,
                            pg_text(entry.get("type")) if isinstance(entry, dict) else None,
                        )
                    )
    ordered = sorted(
        stats, key=lambda s: (collation_key(s[0]), collation_key(s[1]), s[2] is None, s[2] or "")
    )
    counts: list[int] = []
    for index, (group, name, _kind) in enumerate(ordered):
        previous = ordered[index - 1] if index else None
        counts.append(counts[-1] + 1 if previous and previous[:2] == (group, name) else 1)
    columns: list[dict[str, Any]] = []
    for index, (group, name, kind) in enumerate(ordered):
        if counts[index] > 1:
            continue
        column_type = _metric_type(kind)
        if index + 1 < len(ordered) and counts[index + 1] > 1:
            column_type = "UNSPECIFIED"
        prefix, location = {"avg_metrics": ("training", "TRAINING"),
                            "validation_metrics": ("validation", "VALIDATIONS")}.get(group, (group, "CUSTOM_METRIC"))  # fmt: skip
        aggregates = ("last", "max", "mean", "min") if column_type == "NUMBER" else ("last",)
        columns += [_column(f"{prefix}.{name}.{a}", location, column_type) for a in aggregates]
    return columns


def _flatten_space(space: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``expconf.FlattenHPs``: nested hyperparameters (objects without a ``type``) flatten."""
    flat: dict[str, Any] = {}
    for key, value in space.items():
        if isinstance(value, dict) and "type" not in value:
            flat.update(_flatten_space(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _hp_type(definition: Any) -> str:
    if not isinstance(definition, dict):  # a bare value is a const
        definition = {"type": "const", "val": definition}
    kind = definition.get("type")
    if kind in ("int", "double", "log"):
        return "NUMBER"
    if kind == "const":
        value = definition.get("val")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return "NUMBER"
        return "TEXT" if isinstance(value, str) else "UNSPECIFIED"
    return "UNSPECIFIED"


def _experiment_table_columns(db: Session, project_id: int) -> list[dict[str, Any]]:
    columns = [_column(c, "EXPERIMENT", kind, display) for c, display, kind in _EXPERIMENT_COLUMNS]
    rows = fetch(
        db,
        "SELECT e.config -> '$.hyperparameters', e.best_trial_id FROM experiments e"
        " WHERE e.project_id = ? AND (e.config ->> '$.hyperparameters') IS NOT NULL ORDER BY e.id",
        [project_id],
    )
    best = [row[1] for row in rows if row[1] is not None]
    if best:
        listed, params = in_list(best)
        summaries = fetch(db, f"SELECT summary_metrics FROM trials WHERE id IN {listed}", params)
        columns += _summary_metric_columns(row[0] for row in summaries)
    seen: set[str] = set()
    for document, _best in rows:
        space = _json_or_none(document)
        if not isinstance(space, dict):
            continue
        flat = _flatten_space(space)
        for key in sorted(flat):
            if key not in seen:
                seen.add(key)
                columns.append(_column(f"hp.{key}", "HYPERPARAMETERS", _hp_type(flat[key])))
    return columns


def _run_table_columns(db: Session, project_id: int) -> list[dict[str, Any]]:
    columns = [_column(c, "RUN", kind, display) for c, display, kind in _RUN_COLUMNS_DEFAULT]
    in_project = "SELECT t.id FROM trials t JOIN experiments e ON e.id = t.experiment_id WHERE e.project_id = ?"
    summaries = fetch(
        db, f"SELECT summary_metrics FROM trials WHERE id IN ({in_project})", [project_id]
    )
    columns += _summary_metric_columns(row[0] for row in summaries)
    # project_hparams: (name, type) pairs of the project's runs, in the order runs added them
    hparams = fetch(
        db,
        f"SELECT hparam, CASE WHEN number_val IS NOT NULL THEN 'number' WHEN bool_val IS NOT NULL THEN 'boolean'"
        f" ELSE 'string' END, MIN(run_id) FROM run_hparams WHERE run_id IN ({in_project})"
        f" GROUP BY 1, 2 ORDER BY 3, 1",
        [project_id],
    )
    columns += [
        _column(f"hp.{name}", "RUN_HYPERPARAMETERS", _metric_type(kind))
        for name, kind, _ in hparams
    ]
    metadata: set[tuple[str, str]] = set()
    rows = fetch(
        db,
        f"SELECT metadata FROM trials WHERE id IN ({in_project}) AND metadata IS NOT NULL",
        [project_id],
    )
    for (text,) in rows:
        for entry in flatten_metadata(_json_or_none(text)):
            metadata.add(("metadata." + entry.key, metadata_type(entry)))
    columns += [
        _column(name, "RUN_METADATA", _metric_type(kind)) for name, kind in sorted(metadata)
    ]
    return columns


@rpc("GetProjectColumns", id=int)
def get_project_columns(ctx: Ctx) -> dict[str, Any]:
    project_id = ctx.path["id"]
    table = ctx.query.get_enum("table_type", TableType, "apiv1.TableType")
    find_project(ctx.db, project_id)
    if table == TableType.RUN:
        return {"columns": _run_table_columns(ctx.db, project_id)}
    return {"columns": _experiment_table_columns(ctx.db, project_id)}
