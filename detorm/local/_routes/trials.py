"""Trials (``api_trials.go``): GetExperimentTrials, GetTrial, KillTrial.

``trial_views`` reproduces ``proto_get_trials_plus.sql``: the best validation is the validation
with the best signed searcher metric, the best checkpoint the completed checkpoint taken at the
step of the best such validation, ``restarts`` is capped at the config's ``max_restarts``, and
``searcherMetricValue`` is not selected (0). ``best_trial_views`` reproduces the lighter trial
SearchExperiments attaches to each experiment (best and latest validation by id, no checkpoint).

An ACTIVE trial is reported RUNNING (``enrichTrialState`` reports the state of its allocation;
see ``experiments.py`` for why detorm.local treats an active trial as a running one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlmodel import Session

from detorm._plan._collation import collation_key
from detorm._wire import OrderBy, TrialSortBy, TrialState

from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import ApiError, not_found
from .._filter_sql import (
    TRIAL_STATE,
    GoError,
    db_time,
    error_text,
    execute,
    fetch,
    go_error,
    parse_db_time,
    parse_input,
    pg_error,
    pg_text,
    wire_time,
)
from .._pagination import sql_page
from .._sql_lists import in_list
from .experiments import TERMINAL_STATES, in_registry

__all__ = ["best_trial_views", "finish_trials", "kill_trial", "trial_views"]


def reported_trial_state(state: str) -> str:
    return "STATE_RUNNING" if state == "ACTIVE" else "STATE_" + state


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


def _wrapped(prefix: str, err: ApiError) -> ApiError:
    """``errors.Wrapf``: a plain error again (a wrapped status keeps its code in grpc-go)."""
    if isinstance(err, GoError) or err.message.startswith("ERROR: "):  # plain and Postgres errors
        return go_error(f"{prefix}: {err.message}")
    return ApiError(err.code, f"{prefix}: {error_text(err)}")


# ================================================================================================
# Validations of a set of trials, with their signed searcher metric
# ================================================================================================
@dataclass(frozen=True)
class _Validation:
    id: int
    trial_id: int
    total_batches: int
    end_time: str
    metrics: dict[str, Any]
    signed: float | None  # sign * (validation_metrics->>metric)::float8; None when NULL


@dataclass(frozen=True)
class _Searcher:
    metric: str
    sign: float


def _searcher(config_metric: Any, smaller_is_better: Any) -> _Searcher:
    """``searcher_info``: ``coalesce((smaller_is_better)::boolean, true)`` picks the sign."""
    smaller = True if smaller_is_better is None else smaller_is_better not in (0, "false", False)
    return _Searcher(
        config_metric if isinstance(config_metric, str) else "", 1.0 if smaller else -1.0
    )


def _float8(text: str) -> float:
    value = text.strip().lower()
    special = {
        "nan": math.nan,
        "infinity": math.inf,
        "-infinity": -math.inf,
        "inf": math.inf,
        "-inf": -math.inf,
    }
    if value in special:
        return special[value]
    try:
        return float(text)
    except ValueError:
        raise pg_error(
            f'invalid input syntax for type double precision: "{text}"', "22P02"
        ) from None


def _validations(
    db: Session, trial_ids: Sequence[int], searchers: dict[int, _Searcher]
) -> list[_Validation]:
    """The ``validations`` view (live validation rows) of the trials, oldest id first."""
    if not trial_ids:
        return []
    trials, params = in_list(trial_ids)
    rows = fetch(
        db,
        f"SELECT id, trial_id, total_batches, end_time, metrics FROM metrics WHERE trial_id IN {trials}"
        " AND metric_group = 'validation' AND archived = 0 ORDER BY id",
        params,
    )
    validations = []
    for id_, trial_id, total_batches, end_time, document in rows:
        metrics = json.loads(document)
        searcher = searchers[trial_id]
        values = metrics.get("validation_metrics")
        value = pg_text(values.get(searcher.metric)) if isinstance(values, dict) else None
        signed = None if value is None else searcher.sign * _float8(value)
        validations.append(_Validation(id_, trial_id, total_batches, end_time, metrics, signed))
    return validations


def _metric_order(value: float) -> tuple[int, float]:
    # float8 order: NaN above every number
    return (1, 0.0) if math.isnan(value) else (0, value)


def _best(validations: Iterable[_Validation]) -> _Validation | None:
    scored = [v for v in validations if v.signed is not None]
    if not scored:
        return None
    return min(scored, key=lambda v: (_metric_order(v.signed or 0.0), v.id))


def _workload(validation: _Validation | None) -> dict[str, Any] | None:
    """``MetricsWorkload``: ``{"avg_metrics": validation_metrics}`` and the deprecated num_inputs."""
    if validation is None:
        return None
    return _workload_view(validation.total_batches, validation.end_time, validation.metrics)


def _workload_view(total_batches: int, end_time: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    num_inputs = metrics.get("num_inputs")
    return {
        "endTime": wire_time(end_time),
        "metrics": {"avgMetrics": metrics.get("validation_metrics"), "batchMetrics": []},
        "numInputs": num_inputs if isinstance(num_inputs, int) else 0,
        "totalBatches": total_batches,
    }


# ================================================================================================
# proto_get_trials_plus
# ================================================================================================
_TRIALS_SQL: Final = """
SELECT t.id, t.experiment_id, t.log_retention_days, t.state, t.start_time, t.end_time, t.hparams,
       t.warm_start_checkpoint_uuid, t.task_id, t.checkpoint_size, t.checkpoint_count,
       t.total_batches_processed, t.runner_state, t.summary_metrics, t.wall_clock_time, t.restarts,
       t.metadata, t.latest_validation_id, e.config ->> '$.searcher.metric',
       e.config ->> '$.searcher.smaller_is_better', e.config ->> '$.max_restarts'
FROM trials t JOIN experiments e ON e.id = t.experiment_id
WHERE t.id IN {trials}
"""


def _best_checkpoints(db: Session, validations: list[_Validation]) -> dict[int, dict[str, Any]]:
    """Per trial, the completed checkpoint at the step of its best-scoring validation."""
    trial_ids = sorted({v.trial_id for v in validations})
    if not trial_ids:
        return {}
    trials, params = in_list(trial_ids)
    rows = fetch(
        db,
        f"SELECT uuid, trial_id, report_time, resources, metadata ->> '$.steps_completed', state"
        f" FROM checkpoints WHERE trial_id IN {trials} AND state = 'COMPLETED'",
        params,
    )
    by_step: dict[tuple[int, int], list[tuple[Any, ...]]] = {}
    for row in rows:
        if row[4] is not None:
            by_step.setdefault((row[1], int(row[4])), []).append(row)
    best: dict[int, tuple[tuple[int, float], int, tuple[Any, ...]]] = {}
    for validation in validations:
        if validation.signed is None:
            continue
        for row in by_step.get((validation.trial_id, validation.total_batches), []):
            rank = (_metric_order(validation.signed), validation.id, row)
            if validation.trial_id not in best or rank[:2] < best[validation.trial_id][:2]:
                best[validation.trial_id] = rank
    return {trial_id: _checkpoint_workload(entry[2]) for trial_id, entry in best.items()}


def _checkpoint_workload(row: tuple[Any, ...]) -> dict[str, Any]:
    uuid, _trial_id, report_time, resources, steps, state = row
    files = json.loads(resources) if resources else {}
    return {
        "uuid": uuid,
        "endTime": wire_time(report_time),
        "state": "STATE_" + state,
        "resources": {name: str(size) for name, size in files.items()},
        "totalBatches": int(steps),
        "metadata": None,
    }


def trial_views(db: Session, trial_ids: Sequence[int]) -> list[dict[str, Any]]:
    """``proto_get_trials_plus`` for ``trial_ids``, in that order (missing ids are skipped)."""
    if not trial_ids:
        return []
    trials, params = in_list(trial_ids)
    rows = fetch(db, _TRIALS_SQL.format(trials=trials), params)
    by_id = {row[0]: row for row in rows}
    searchers = {row[0]: _searcher(row[18], row[19]) for row in rows}
    validations = _validations(db, list(by_id), searchers)
    per_trial: dict[int, list[_Validation]] = {}
    for validation in validations:
        per_trial.setdefault(validation.trial_id, []).append(validation)
    checkpoints = _best_checkpoints(db, validations)
    views = []
    for trial_id in trial_ids:
        row = by_id.get(trial_id)
        if row is not None:
            mine = per_trial.get(trial_id, [])
            latest = next((v for v in mine if v.id == row[17]), None)
            views.append(_trial_view(row, _best(mine), latest, checkpoints.get(trial_id)))
    return views


def _trial_view(
    row: Sequence[Any],
    best: _Validation | None,
    latest: _Validation | None,
    checkpoint: dict[str, Any] | None,
) -> dict[str, Any]:
    (id_, experiment_id, retention, state, start, end, hparams, warm_start, task_id, size, count,
     batches, runner_state, summary, wall_clock, restarts, metadata, _latest_id, _metric, _smaller,
     max_restarts) = row  # fmt: skip
    if max_restarts is not None:
        restarts = min(restarts, int(max_restarts))  # LEAST(t.restarts, max_restarts)
    view: dict[str, Any] = {
        "id": id_,
        "experimentId": experiment_id,
        "startTime": wire_time(start),
        "endTime": wire_time(end),
        "state": reported_trial_state(state),
        "restarts": restarts,
        "hparams": _json(hparams),
        "totalBatchesProcessed": batches,
        "bestValidation": _workload(best),
        "latestValidation": _workload(latest),
        "bestCheckpoint": checkpoint,
        "runnerState": runner_state or "",
        "wallClockTime": wall_clock or 0.0,
        "warmStartCheckpointUuid": warm_start or "",
        "taskId": task_id or "",
        "totalCheckpointSize": str(size or 0),
        "checkpointCount": count or 0,
        "summaryMetrics": _json(summary),
        "taskIds": [task_id] if task_id else [],
        "searcherMetricValue": 0.0,
    }
    if retention is not None:
        view["logRetentionDays"] = retention
    document = _json(metadata)
    if document is not None:
        view["metadata"] = document
    return view


# ================================================================================================
# SearchExperiments' best trial
# ================================================================================================
_BEST_TRIAL_SQL: Final = """
SELECT t.id, t.experiment_id, t.runner_state, t.checkpoint_count, t.summary_metrics,
       t.log_retention_days, t.task_id, t.start_time, t.end_time, t.restarts,
       t.warm_start_checkpoint_uuid, t.checkpoint_size, t.state, t.hparams, t.total_batches_processed,
       t.searcher_metric_value, t.metadata,
       bv.total_batches, bv.end_time, bv.metrics, t.latest_validation_id, lv.total_batches, lv.end_time,
       lv.metrics, e.config ->> '$.max_restarts'
FROM trials t
JOIN experiments e ON e.id = t.experiment_id
LEFT JOIN metrics bv ON bv.id = t.best_validation_id AND bv.metric_group = 'validation' AND bv.archived = 0
LEFT JOIN metrics lv ON lv.id = t.latest_validation_id AND lv.metric_group = 'validation' AND lv.archived = 0
WHERE t.id IN {trials}
"""


def _build_workload(total_batches: Any, end_time: Any, document: Any) -> dict[str, Any]:
    # jsonb_build_object(...) scanned with encoding/json: NULL members read as zero values
    return _workload_view(total_batches or 0, end_time, json.loads(document) if document else {})


def best_trial_views(db: Session, trial_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The ``bestTrial`` of SearchExperiments, by experiment id: the best validation is always an
    object (zero-valued without one), the state is the stored one, no checkpoint or wall clock."""
    if not trial_ids:
        return {}
    trials, params = in_list(trial_ids)
    rows = fetch(db, _BEST_TRIAL_SQL.format(trials=trials), params)
    views: dict[int, dict[str, Any]] = {}
    for row in rows:
        (id_, experiment_id, runner_state, count, summary, retention, task_id, start, end, restarts,
         warm_start, size, state, hparams, batches, searcher_value, metadata, bv_batches, bv_end,
         bv_metrics, latest_id, lv_batches, lv_end, lv_metrics, max_restarts) = row  # fmt: skip
        if max_restarts is not None and restarts > int(float(max_restarts)):
            restarts = int(float(max_restarts))
        view: dict[str, Any] = {
            "id": id_,
            "experimentId": experiment_id,
            "startTime": wire_time(start),
            "endTime": wire_time(end),
            "state": "STATE_" + state,
            "restarts": restarts,
            "hparams": _json(hparams),
            "totalBatchesProcessed": batches,
            "bestValidation": _build_workload(bv_batches, bv_end, bv_metrics),
            "latestValidation": None
            if latest_id is None
            else _build_workload(lv_batches, lv_end, lv_metrics),
            "bestCheckpoint": None,
            "runnerState": runner_state or "",
            "wallClockTime": 0.0,
            "warmStartCheckpointUuid": warm_start or "",
            "taskId": task_id or "",
            "totalCheckpointSize": str(size or 0),
            "checkpointCount": count or 0,
            "summaryMetrics": _json(summary),
            "taskIds": [task_id] if task_id else [],
            "searcherMetricValue": searcher_value if searcher_value is not None else 0.0,
        }
        if retention is not None:
            view["logRetentionDays"] = retention
        document = _json(metadata)
        if document is not None:
            view["metadata"] = document
        views[experiment_id] = view
    return views


# ================================================================================================
# GetExperimentTrials
# ================================================================================================
@dataclass
class _SortRow:
    id: int
    state: str
    restarts: int
    start_time: str
    end_time: str | None
    checkpoint_size: int
    total_batches: int
    best_signed: float | None
    latest_signed: float | None
    duration: float


_SORT_KEYS: Final[dict[TrialSortBy, Callable[[_SortRow], Any]]] = {
    TrialSortBy.START_TIME: lambda r: r.start_time,
    TrialSortBy.END_TIME: lambda r: r.end_time,
    TrialSortBy.STATE: lambda r: collation_key("STATE_" + r.state),  # the 'STATE_' || state text
    TrialSortBy.BEST_VALIDATION_METRIC: lambda r: (
        None if r.best_signed is None else _metric_order(r.best_signed)
    ),
    TrialSortBy.LATEST_VALIDATION_METRIC: lambda r: (
        None if r.latest_signed is None else _metric_order(r.latest_signed)
    ),
    TrialSortBy.BATCHES_PROCESSED: lambda r: r.total_batches,
    TrialSortBy.DURATION: lambda r: r.duration,
    TrialSortBy.RESTARTS: lambda r: r.restarts,
    TrialSortBy.CHECKPOINT_SIZE: lambda r: r.checkpoint_size,
}


def _sort_rows(db: Session, experiment_id: int, states: list[str], now: datetime) -> list[_SortRow]:
    """``filtered_experiment_trials``: the experiment's trials with their signed metrics."""
    sql = (
        "SELECT t.id, t.state, t.restarts, t.start_time, t.end_time, t.checkpoint_size,"
        " t.total_batches_processed, t.best_validation_id, e.config ->> '$.searcher.metric',"
        " e.config ->> '$.searcher.smaller_is_better'"
        " FROM trials t JOIN experiments e ON e.id = t.experiment_id WHERE t.experiment_id = ?"
    )
    rows = fetch(db, sql, [experiment_id])
    if rows and states:  # the state list is cast to trial_state once a trial row is tested
        for state in states:
            parse_input(state, TRIAL_STATE)
        rows = [row for row in rows if row[1] in states]
    searchers = {row[0]: _searcher(row[8], row[9]) for row in rows}
    validations = _validations(db, list(searchers), searchers)
    per_trial: dict[int, list[_Validation]] = {}
    for validation in validations:
        per_trial.setdefault(validation.trial_id, []).append(validation)
    result = []
    for id_, state, restarts, start, end, size, batches, best_id, _metric, _smaller in rows:
        mine = per_trial.get(id_, [])
        if best_id is not None:
            chosen = next((v for v in mine if v.id == best_id), None)
            best_signed = chosen.signed if chosen else None
        else:
            best = _best(mine)
            best_signed = best.signed if best else None
        latest_signed = mine[-1].signed if mine else None
        finish = parse_db_time(end) if end is not None else now
        result.append(_SortRow(id_, state, restarts, start, end, size, batches, best_signed,
                               latest_signed, (finish - parse_db_time(start)).total_seconds()))  # fmt: skip
    return result


def _ordered(rows: list[_SortRow], sort_by: TrialSortBy, descending: bool) -> list[_SortRow]:
    # ORDER BY <col> ASC|DESC, id ASC|DESC: Postgres puts NULLs last ascending, first descending.
    key = _SORT_KEYS.get(sort_by)
    if key is None:
        return sorted(rows, key=lambda r: r.id, reverse=descending)

    def full_key(row: _SortRow) -> tuple[Any, ...]:
        value = key(row)
        return (value is None, value if value is not None else 0, row.id)

    return sorted(rows, key=full_key, reverse=descending)


@rpc("GetExperimentTrials", experiment_id=int)
def get_experiment_trials(ctx: Ctx) -> dict[str, Any]:
    q = ctx.query
    experiment_id = ctx.path["experiment_id"]
    sort_by = q.get_enum("sort_by", TrialSortBy, "apiv1.GetExperimentTrialsRequest_SortBy")
    order_by = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    offset, limit = q.get_int("offset"), q.get_int("limit")
    states = [
        s.value.removeprefix("STATE_") for s in q.get_enums("states", TrialState, "trialv1.State")
    ]
    if not fetch(ctx.db, "SELECT 1 FROM experiments WHERE id = ?", [experiment_id]):
        raise not_found(f"experiment '{experiment_id}' not found")
    prefix = (
        f"failed to get trial ids for experiment {experiment_id}: "
        "error running query: proto_get_trial_ids_for_experiment"
    )
    try:
        if sort_by == TrialSortBy.LOG_RETENTION_DAYS:  # not a column of the query's CTE
            raise pg_error('column "log_retention_days" does not exist', "42703")
        rows = _sort_rows(ctx.db, experiment_id, states, utcnow())
        page = sql_page(offset, limit, len(rows))
    except ApiError as err:
        raise _wrapped(prefix, err) from None
    ordered = _ordered(rows, sort_by, order_by == OrderBy.DESC)
    ids = [row.id for row in page.slice(ordered)]
    prefix = f"failed to get trials detail for experiment {experiment_id}: error running query: proto_get_trials_plus"
    try:
        trials = trial_views(ctx.db, ids)
    except ApiError as err:
        raise _wrapped(prefix, err) from None
    return {"trials": trials, "pagination": page.pagination.model_dump_wire()}


@rpc("GetTrial", trial_id=int)
def get_trial(ctx: Ctx) -> dict[str, Any]:
    trial_id = ctx.path["trial_id"]
    if not fetch(ctx.db, "SELECT 1 FROM trials WHERE id = ?", [trial_id]):
        raise not_found(f"trial '{trial_id}' not found")
    try:
        views = trial_views(ctx.db, [trial_id])
    except ApiError as err:
        raise _wrapped(
            f"failed to get trial {trial_id}: error running query: proto_get_trials_plus", err
        ) from None
    return {"trial": views[0]}


# ================================================================================================
# KillTrial and the state changes trials follow
# ================================================================================================
def finish_trials(db: Session, trial_ids: Sequence[int], state: str) -> None:
    """End live trials in ``state`` now. On the master the trial's allocation is killed and the
    trial reaches its terminal state when it exits; detorm.local has nothing running, so the
    trial is terminal at once (and its experiment keeps its state, as the searcher decides)."""
    if not trial_ids:
        return
    trials, params = in_list(trial_ids)
    terminal = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATES))
    execute(
        db,
        f"UPDATE trials SET state = ?, end_time = COALESCE(end_time, ?) WHERE id IN {trials} AND state NOT IN ({terminal})",
        [state, db_time(utcnow()), *params],
    )


def kill_trial(db: Session, trial_id: int) -> None:
    """``KillTrial``: 404 for an unknown trial or a terminal experiment (no live actor); a trial
    that already exited is no longer known to its experiment (``trial not found``, a plain 500)."""
    rows = fetch(
        db,
        "SELECT t.state, e.id, e.state FROM trials t JOIN experiments e ON e.id = t.experiment_id WHERE t.id = ?",
        [trial_id],
    )
    if not rows:
        raise not_found(f"trial '{trial_id}' not found")
    trial_state, experiment_id, experiment_state = rows[0]
    if not in_registry(experiment_state):
        raise not_found(f"experiment '{experiment_id}' not found")
    if trial_state in TERMINAL_STATES:
        raise go_error("trial not found: not found")
    # STOPPING_KILLED, then CANCELED once the trial exits
    finish_trials(db, [trial_id], "CANCELED")


@rpc("KillTrial", id=int)
def kill_trial_route(ctx: Ctx) -> dict[str, Any]:
    kill_trial(ctx.db, ctx.path["id"])
    return {}
