"""Metric reports recorded as the master records them; shared by ReportTrialMetrics and the Seeder.

A port of ``addTrialMetrics`` (``master/internal/db/postgres_trial.go``) and its helpers in
``db/postgres_trial_metrics.go``. Per report, inside the caller's transaction:

1. the reported ``trialRunId`` must be the trial's current run (``checkTrialRunID``);
2. rows of earlier runs past the reported step are archived (``rollbackMetrics``);
3. a live row of the same group at the same step is merged into, else a row is inserted
   (``addMetricsWithMerge``);
4. the trial is updated: summary metrics (``calculateNewSummaryMetrics``, or a full recompute
   after a rollback), total batches, latest validation (only when the report holds the searcher
   metric), best validation (``setTrialBestValidation``), and the experiment's best trial (the
   ``autoupdate_exp_best_trial_metrics`` trigger).

Reports of a profiling group (``gpu``, ``cpu``, ``memory``, ``disk``, ``network``) take none of
these steps but the run id check (``_addTrialProfilingMetricsTx``): their values are stored bare in
``system_metrics`` with ``total_batches`` NULL, whatever step was reported.

Many reports at once (seeding) take a bulk path: one multi-row insert, and summaries folded per
metric name. It writes exactly what reporting them one by one would, and is only taken when no
report can roll back or merge.

Rows are written with the SQLite driver directly (the hot path of seeding); ORM objects of the
touched trial and experiment are expired afterwards so the session never serves stale values.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, Final

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from detorm._wire import dump_double

from . import _tables as t
from ._errors import ApiError, Code, internal
from ._summary import metrics_json_key, summary_key, update_summary

__all__ = [
    "PROFILING_GROUPS",
    "Report",
    "db_time",
    "driver_cursor",
    "encode_document",
    "encode_documents",
    "group_condition",
    "next_metric_id",
    "partition",
    "record_reports",
    "wire_values",
]

# model.ProfilingMetricGroups: these groups live in the PROFILING partition.
PROFILING_GROUPS: Final = ("gpu", "cpu", "memory", "disk", "network")

# The partition of a stored row, computed from its group (the master stores partition_type).
_PARTITION_SQL: Final = (
    "(CASE WHEN metric_group = 'training' THEN 'TRAINING'"
    " WHEN metric_group = 'validation' THEN 'VALIDATION'"
    " WHEN metric_group IN ('gpu', 'cpu', 'memory', 'disk', 'network') THEN 'PROFILING'"
    " ELSE 'GENERIC' END)"
)
_SPECIAL_FLOATS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_INSERT: Final = (
    "INSERT INTO metrics (id, trial_id, trial_run_id, total_batches, end_time, metric_group,"
    " metrics, archived) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
)


@dataclass(frozen=True)
class Report:
    """One ``trialv1.TrialMetrics`` of one group; ``end_time`` is the report time (or now)."""

    steps_completed: int | None
    avg_metrics: Mapping[str, Any] | None
    end_time: datetime
    trial_run_id: int = 0
    batch_metrics: Sequence[Mapping[str, Any]] | None = None


def partition(group: str) -> str:
    """``customMetricGroupToPartitionType``."""
    if group == "training":
        return "TRAINING"
    if group == "validation":
        return "VALIDATION"
    if group in PROFILING_GROUPS:
        return "PROFILING"
    return "GENERIC"


def group_condition(group: str) -> tuple[str, list[str]]:
    """The rows of ``metrics`` in ``group`` as ``db.GetMetrics`` selects them: by partition, and
    by name only for generic groups.

    A profiling group selects nothing: its rows live in ``system_metrics`` with ``total_batches``
    NULL, which ``GetMetrics``' ``total_batches > ?`` never matches, so the master streams no
    profiling report (they are read through the profiler routes, ``_routes/profiler.py``).
    """
    if partition(group) == "PROFILING":
        return "0", []
    return "metric_group = ?", [group]


# --- encoding -------------------------------------------------------------------------------
def wire_values(value: Any) -> Any:
    """NaN and infinities as the strings the master stores them as, at any depth."""
    if isinstance(value, float):
        return dump_double(value)
    if isinstance(value, Mapping):
        return {str(k): wire_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire_values(v) for v in value]
    return value


def _is_clean_flat(values: Mapping[str, Any]) -> bool:
    """Only ints and finite floats: nothing to convert, and the fast encoding applies."""
    for value in values.values():
        kind = type(value)
        if kind is int or (kind is float and value - value == 0.0):
            continue
        return False
    return True


@lru_cache(maxsize=4096)
def _key(name: str) -> str:
    return json.dumps(name)


@lru_cache(maxsize=1024)
def _template(group: str, names: tuple[str, ...]) -> tuple[str, Callable[[Any], Any]]:
    """A %-template of the document of flat numeric values with these keys (see
    :func:`encode_document`), and the getter of its values in sorted key order."""
    ordered = sorted(names)
    obj = "{" + ",".join(_key(name).replace("%", "%%") + ":%r" for name in ordered) + "}"
    document = encode_document(group, {}, None).replace("{}", obj, 1)
    if not ordered:
        return document, lambda values: ()
    if len(ordered) == 1:
        single = ordered[0]
        return document, lambda values: (values[single],)
    return document, itemgetter(*ordered)


def encode_documents(group: str, reports: Sequence[Report]) -> list[str]:
    """:func:`encode_document` of many reports, with templates for flat numeric values."""
    documents = []
    for report in reports:
        avg = report.avg_metrics
        if avg is None or report.batch_metrics or not _is_clean_flat(avg):
            documents.append(encode_document(group, avg, report.batch_metrics))
            continue
        template, getter = _template(group, tuple(avg))
        documents.append(template % getter(avg))
    return documents


def _encode_object(values: Mapping[str, Any]) -> str:
    """``json.dumps(values, sort_keys=True)`` (compact), with a fast path for flat numbers.

    Keys are sorted because the master hands metrics out as a ``google.protobuf.Struct``, whose
    fields jsonpb writes in key order.
    """
    parts = []
    for name in sorted(values):
        value = values[name]
        kind = type(value)
        if kind is float or kind is int:  # bool excluded: type(True) is bool
            parts.append(f"{_key(name)}:{value!r}")
        else:
            return json.dumps(values, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "{" + ",".join(parts) + "}"


def encode_document(
    group: str, avg: Mapping[str, Any] | None, batch: Sequence[Mapping[str, Any]] | None
) -> str:
    """The stored ``metrics`` column (``metricsBody.ToJSONObj``): validation rows hold
    ``validation_metrics``; other rows ``avg_metrics`` and ``batch_metrics`` (null when none);
    profiling rows the bare values."""
    obj = "null" if avg is None else _encode_object(avg)
    if partition(group) == "PROFILING":
        return obj
    if group == "validation":
        return '{"validation_metrics":' + obj + "}"
    batches = (
        json.dumps(list(batch), sort_keys=True, separators=(",", ":"), allow_nan=False)
        if batch
        else "null"
    )
    return '{"avg_metrics":' + obj + ',"batch_metrics":' + batches + "}"


def db_time(value: datetime) -> str:
    """A datetime as SQLAlchemy stores it in SQLite: naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"


def driver_cursor(db: Session) -> sqlite3.Cursor:
    """A cursor on the session's own connection, inside its transaction."""
    connection: Any = db.connection().connection.driver_connection
    cursor: sqlite3.Cursor = connection.cursor()
    return cursor


# --- the trial's bookkeeping ----------------------------------------------------------------
@dataclass
class _Trial:
    id: int
    experiment_id: int
    run_id: int
    summary: dict[str, Any]
    total_batches: int
    latest_id: int | None
    best_id: int | None
    best_value: float | None
    metric: str
    sign: float
    best_touched: bool = False


def _searcher_value(values: Mapping[str, Any] | None, metric: str, trial_id: int) -> float | None:
    """``(metrics->'validation_metrics'->>metric)::float8``: null when absent or JSON null; a
    value Postgres cannot cast fails the whole report."""
    value = None if values is None else values.get(metric)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = value if isinstance(value, str) else json.dumps(value)
    special = _SPECIAL_FLOATS.get(text.strip())
    if special is not None:
        return special
    try:
        return float(text)
    except ValueError:
        raise internal(
            "failed to exec transaction (add trial metrics validation): error updating best"
            f" validation for trial {trial_id}: ERROR: invalid input syntax for type double"
            f' precision: "{text}" (SQLSTATE 22P02)'
        ) from None


def _order_key(value: float | None, sign: float) -> tuple[int, float]:
    # ORDER BY sign * metric ASC: numbers, then NaN, then NULL (Postgres float8 ordering).
    if value is None:
        return (2, 0.0)
    if math.isnan(value):
        return (1, 0.0)
    return (0, sign * value)


def _load(cursor: sqlite3.Cursor, trial_id: int) -> _Trial:
    row = cursor.execute(
        "SELECT t.experiment_id, t.run_id, t.summary_metrics, t.total_batches_processed,"
        " t.latest_validation_id, t.best_validation_id, e.searcher_metric, e.smaller_is_better"
        " FROM trials t JOIN experiments e ON e.id = t.experiment_id WHERE t.id = ?",
        (trial_id,),
    ).fetchone()
    if row is None:
        raise ApiError(Code.NOT_FOUND, f"trial '{trial_id}' not found")
    exp_id, run_id, summary, total, latest, best, metric, smaller = row
    state = _Trial(
        id=trial_id, experiment_id=exp_id, run_id=run_id or 0,
        summary=json.loads(summary) if summary else {}, total_batches=total or 0,
        latest_id=latest, best_id=None, best_value=None, metric=metric or "",
        sign=1.0 if smaller else -1.0,
    )  # fmt: skip
    if best is not None:
        # The value is re-read from the row: SQLite stores a NaN REAL as NULL.
        found = cursor.execute(
            "SELECT metrics FROM metrics WHERE id = ? AND archived = 0", (best,)
        ).fetchone()
        if found is not None:
            state.best_id = best
            state.best_value = _searcher_value(
                json.loads(found[0]).get("validation_metrics"), state.metric, trial_id
            )
    return state


def _save(cursor: sqlite3.Cursor, state: _Trial) -> int | None:
    """Write the trial's bookkeeping; returns the experiment's new best trial, if recomputed."""
    value = state.best_value
    cursor.execute(
        "UPDATE trials SET summary_metrics = ?, total_batches_processed = ?,"
        " latest_validation_id = ?, best_validation_id = ?, searcher_metric_value = ?"
        " WHERE id = ?",
        (
            json.dumps(state.summary), state.total_batches, state.latest_id,
            state.best_id, None if value is None or math.isnan(value) else value, state.id,
        ),
    )  # fmt: skip
    if state.best_touched:
        return _update_best_trial(cursor, state.experiment_id, state.sign)
    return None


def _update_best_trial(cursor: sqlite3.Cursor, experiment_id: int, sign: float) -> int | None:
    """``autoupdate_exp_best_trial_metrics``: ORDER BY searcher_metric_value_signed LIMIT 1
    (NULLs last; ties go to the lowest id)."""
    trials = cursor.execute(
        "SELECT id, searcher_metric_value FROM trials WHERE experiment_id = ?", (experiment_id,)
    ).fetchall()
    if not trials:
        return None
    best: int = min(trials, key=lambda row: (_order_key(row[1], sign), row[0]))[0]
    cursor.execute("UPDATE experiments SET best_trial_id = ? WHERE id = ?", (best, experiment_id))
    return best


# --- summaries ------------------------------------------------------------------------------
def _as_number(value: Any) -> float | None:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if kind is str:
        return _SPECIAL_FLOATS.get(value)
    return None


def _fold(group_summary: dict[str, Any], reports: Sequence[Mapping[str, Any]]) -> None:
    """Fold reports into a group's summary exactly as one ``update_summary`` per report would,
    metric by metric when every value is a number (the bulk case)."""
    columns: dict[str, list[Any]] = {}
    for values in reports:
        for name, value in values.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = []
            column.append(value)
    numbers: dict[str, list[float]] = {}
    for name, column in columns.items():
        entry = group_summary.get(name)
        converted = _numbers(column)
        if converted is None or (
            entry is not None and (not isinstance(entry, dict) or entry.get("type") != "number")
        ):
            _fold_one_by_one(group_summary, reports)
            return
        numbers[name] = converted
    for name, column_numbers in numbers.items():
        _fold_column(group_summary, name, column_numbers)
    last = reports[-1] if reports else {}
    for name, entry in group_summary.items():
        if isinstance(entry, dict):
            entry["last"] = last.get(name)


def _numbers(column: list[Any]) -> list[float] | None:
    """The column as floats, or None when a value is not a number (bools are not)."""
    kinds = set(map(type, column))
    if kinds == {float}:
        return column
    if kinds <= {float, int}:
        return [float(v) for v in column]
    converted = [_as_number(v) for v in column]
    if any(v is None for v in converted):
        return None
    return converted  # type: ignore[return-value]


def _fold_one_by_one(group_summary: dict[str, Any], reports: Sequence[Mapping[str, Any]]) -> None:
    for values in reports:
        update_summary(group_summary, dict(values))


def _fold_column(group_summary: dict[str, Any], name: str, numbers: list[float]) -> None:
    entry = group_summary.get(name)
    if entry is None or "count" not in entry:
        entry = entry if entry is not None else {"type": "number"}
        total = low = high = numbers[0]
        count, rest = 1, numbers[1:]
    else:
        total, low, high = (_unwire(entry[k]) for k in ("sum", "min", "max"))
        count, rest = int(_unwire(entry["count"])), numbers
    for number in rest:  # a left fold, as the master adds one report at a time
        total += number
    if rest:
        # Go's math.Min/Max: a NaN anywhere wins (a NaN-free column can only sum to NaN when
        # it holds both infinities, so the scan is rarely needed)
        nan = (
            math.isnan(low)
            or math.isnan(high)
            or (math.isnan(total) and any(math.isnan(x) for x in rest))
        )
        low = math.nan if nan else min(low, min(rest))
        high = math.nan if nan else max(high, max(rest))
    count += len(rest)
    entry.update(
        max=dump_double(high), min=dump_double(low), mean=dump_double(total / count),
        sum=dump_double(total), count=count,
    )  # fmt: skip
    group_summary[name] = entry


def _unwire(value: Any) -> float:
    return _SPECIAL_FLOATS[value] if isinstance(value, str) else float(value)


# --- recording ------------------------------------------------------------------------------
def record_reports(
    db: Session,
    trial_id: int,
    group: str,
    reports: Sequence[Report],
    *,
    check_run_id: bool,
) -> None:
    """Record ``reports`` of one group for one trial (``check_run_id``: as the REST API does;
    the Seeder writes history and skips it)."""
    if not reports:
        return
    for report in reports:
        _check_values(report)
    db.flush()
    cursor = driver_cursor(db)
    state = _load(cursor, trial_id)
    clean = [_cleaned(report) for report in reports]
    if _can_append(cursor, state, group, clean, check_run_id):
        _append(cursor, state, group, clean)
    else:
        for report in clean:
            _record_one(cursor, state, group, report, check_run_id)
    best_trial = _save(cursor, state)
    _refresh_orm(db, state, best_trial)


def _check_values(report: Report) -> None:
    """``addTrialMetrics`` before its transaction: ``epoch`` and ``epochs`` must be numbers."""
    if report.avg_metrics is None:
        # The master dereferences avgMetrics unconditionally; the recovery interceptor answers.
        raise internal("runtime error: invalid memory address or nil pointer dereference")
    for name in ("epoch", "epochs"):
        value = report.avg_metrics.get(name)
        if value is None or _as_number(value) is not None:
            continue
        raise internal(f"cannot add metric with non numeric '{name}' value got {_go_format(value)}")


def _go_format(value: Any) -> str:
    """Go's ``%v`` of a decoded JSON value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        items = " ".join(f"{k}:{_go_format(v)}" for k, v in sorted(value.items()))
        return f"map[{items}]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_go_format(v) for v in value) + "]"
    return str(value)


def _cleaned(report: Report) -> Report:
    avg = report.avg_metrics
    if not report.batch_metrics and (avg is None or _is_clean_flat(avg)):
        return report
    batch = None if not report.batch_metrics else [wire_values(b) for b in report.batch_metrics]
    clean = None if avg is None else wire_values(avg)
    return Report(report.steps_completed, clean, report.end_time, report.trial_run_id, batch)


def _refresh_orm(db: Session, state: _Trial, best_trial: int | None) -> None:
    """Give loaded ORM objects the values just written (they had no pending changes: the
    session was flushed first)."""
    trial = db.identity_map.get(Session.identity_key(t.TrialRow, state.id))
    if trial is not None:
        value = state.best_value
        for name, new in (
            ("summary_metrics", state.summary), ("total_batches_processed", state.total_batches),
            ("latest_validation_id", state.latest_id), ("best_validation_id", state.best_id),
            ("searcher_metric_value", None if value is None or math.isnan(value) else value),
        ):  # fmt: skip
            set_committed_value(trial, name, new)
    experiment = db.identity_map.get(Session.identity_key(t.ExperimentRow, state.experiment_id))
    if experiment is not None and best_trial is not None:
        set_committed_value(experiment, "best_trial_id", best_trial)


def _can_append(
    cursor: sqlite3.Cursor, state: _Trial, group: str, reports: Sequence[Report], check: bool
) -> bool:
    """True when no report can fail, roll back or merge: the bulk path is then exact."""
    if partition(group) == "PROFILING":
        return False
    run_ids = {r.trial_run_id for r in reports}
    steps = [r.steps_completed for r in reports]
    if len(run_ids) != 1 or any(s is None for s in steps) or len(set(steps)) != len(steps):
        return False
    if any(r.avg_metrics is None for r in reports):
        return False
    (run_id,) = run_ids
    if check and run_id != state.run_id:
        return False
    older = cursor.execute(
        "SELECT 1 FROM metrics WHERE trial_id = ? AND archived = 0 AND trial_run_id < ? LIMIT 1",
        (state.id, run_id),
    ).fetchone()
    if older is not None:
        return False
    condition, params = group_condition(group)
    existing = {
        row[0]
        for row in cursor.execute(
            f"SELECT total_batches FROM metrics WHERE trial_id = ? AND archived = 0 AND {condition}",
            (state.id, *params),
        )
    }
    return existing.isdisjoint(steps)


def next_metric_id(cursor: sqlite3.Cursor) -> int:
    """The next value of ``metrics_id_seq``, which every partition of ``metrics`` (and so
    ``system_metrics``) draws its ids from."""
    # sqlite_sequence remembers ids of deleted rows too (the tables are AUTOINCREMENT, _db.py)
    (current,) = cursor.execute(
        "SELECT max(coalesce((SELECT max(id) FROM metrics), 0),"
        " coalesce((SELECT max(id) FROM system_metrics), 0),"
        " coalesce((SELECT max(seq) FROM sqlite_sequence"
        " WHERE name IN ('metrics', 'system_metrics')), 0))"
    ).fetchone()
    return int(current or 0) + 1


_next_id = next_metric_id


def _append(cursor: sqlite3.Cursor, state: _Trial, group: str, reports: Sequence[Report]) -> None:
    """Insert new rows and update the trial as if each had been reported in turn."""
    first_id = _next_id(cursor)
    documents = encode_documents(group, reports)
    rows = [
        (first_id + index, state.id, r.trial_run_id, r.steps_completed, db_time(r.end_time),
         group, documents[index])
        for index, r in enumerate(reports)
    ]  # fmt: skip
    cursor.executemany(_INSERT, rows)
    values = [r.avg_metrics or {} for r in reports]
    _fold(state.summary.setdefault(summary_key(group), {}), values)
    state.total_batches = max(state.total_batches, *(r.steps_completed or 0 for r in reports))
    if group == "validation":
        for index, avg in enumerate(values):
            row_id = first_id + index
            if avg.get(state.metric) is not None:
                state.latest_id = row_id
            _consider_best(state, row_id, _searcher_value(avg, state.metric, state.id))


def _consider_best(state: _Trial, row_id: int | None, value: float | None) -> None:
    """``setTrialBestValidation``: the better of the current best and the reported row."""
    state.best_touched = True
    if row_id is None:
        if state.best_id is None:
            state.best_value = None
        return
    if state.best_id is None or _order_key(value, state.sign) < _order_key(
        state.best_value, state.sign
    ):
        state.best_id, state.best_value = row_id, value


def _record_one(
    cursor: sqlite3.Cursor, state: _Trial, group: str, report: Report, check_run_id: bool
) -> None:
    """One report, with every step of ``_addTrialMetricsTx``."""
    where = f"failed to exec transaction (add trial metrics {group})"
    if check_run_id and report.trial_run_id != state.run_id:
        raise internal(
            f"{where}: invalid run id, {report.trial_run_id} (reported) != {state.run_id}"
            " (expected): invalid arguments"
        )
    if partition(group) == "PROFILING":
        _insert_profiling(cursor, state, group, report)
        return
    steps = report.steps_completed
    rollbacks = _rollback(cursor, state.id, report.trial_run_id, steps or 0, group)
    if steps is None:
        raise internal(
            f'{where}: inserting metrics: ERROR: null value in column "total_batches"'
            " violates not-null constraint (SQLSTATE 23502)"
        )
    merged = _merge(cursor, state, group, report, where)
    if merged is None and not rollbacks:
        _append(cursor, state, group, [report])
        return
    if merged is None:
        merged = _next_id(cursor)
        cursor.execute(
            _INSERT,
            (
                merged, state.id, report.trial_run_id, steps, db_time(report.end_time), group,
                encode_document(group, report.avg_metrics, report.batch_metrics),
            ),
        )  # fmt: skip
    if rollbacks:
        _recompute_after_rollback(cursor, state)
    else:
        avg = dict(report.avg_metrics or {})
        _fold(state.summary.setdefault(summary_key(group), {}), [avg])
        state.total_batches = max(state.total_batches, steps)
        if group == "validation" and avg.get(state.metric) is not None:
            state.latest_id = merged
    if group == "validation":
        _best_after_write(cursor, state, report.trial_run_id, steps)


def _insert_profiling(cursor: sqlite3.Cursor, state: _Trial, group: str, report: Report) -> None:
    # _addTrialProfilingMetricsTx: the bare values in system_metrics, total_batches NULL
    # whatever step was reported, no rollback, merge or bookkeeping.
    cursor.execute(
        "INSERT INTO system_metrics (id, trial_id, trial_run_id, total_batches, end_time,"
        " metric_group, metrics, archived) VALUES (?, ?, ?, NULL, ?, ?, ?, 0)",
        (
            _next_id(cursor), state.id, report.trial_run_id, db_time(report.end_time), group,
            encode_document(group, report.avg_metrics, None),
        ),
    )  # fmt: skip


def _rollback(cursor: sqlite3.Cursor, trial_id: int, run_id: int, steps: int, group: str) -> int:
    """``rollbackMetrics``: archive rows of earlier runs reported after ``steps``."""
    result = cursor.execute(
        "UPDATE metrics SET archived = 1 WHERE trial_id = ? AND archived = 0 AND trial_run_id < ?"
        f" AND (({_PARTITION_SQL} != ? AND total_batches > ?)"
        f" OR ({_PARTITION_SQL} = ? AND total_batches >= ?))",
        (trial_id, run_id, partition(group), steps, partition(group), steps),
    )
    return result.rowcount


def _merge(
    cursor: sqlite3.Cursor, state: _Trial, group: str, report: Report, where: str
) -> int | None:
    """``addMetricsWithMerge``: union the report into a live row at the same step."""
    found = cursor.execute(
        "SELECT id, metrics FROM metrics WHERE archived = 0 AND total_batches = ? AND trial_id = ?"
        f" AND {_PARTITION_SQL} = ? AND metric_group = ?",
        (report.steps_completed, state.id, partition(group), group),
    ).fetchone()
    if found is None:
        return None
    row_id, text = found
    body = json.loads(text)
    key = metrics_json_key(group)
    old = body.get(key)
    if not isinstance(old, dict):
        raise internal(f"{where}: expected key {key} in JSON body")
    old_batches = None if group == "validation" else body.get("batch_metrics")
    if old_batches is not None and report.batch_metrics:
        raise internal(f"{where}: overwriting batch metrics is not supported")
    for name, value in (report.avg_metrics or {}).items():
        if name in old and old[name] != value:
            raise internal(
                f"{where}: overwriting existing metric keys is not supported, conflicting key:"
                f" {name}"
            )
        old[name] = value
    document = encode_document(group, old, old_batches)
    cursor.execute("UPDATE metrics SET metrics = ? WHERE id = ?", (document, row_id))
    return int(row_id)


def _recompute_after_rollback(cursor: sqlite3.Cursor, state: _Trial) -> None:
    """``updateTotalBatches``, ``updateLatestValidationID``, ``fullTrialSummaryMetricsRecompute``."""
    (total,) = cursor.execute(
        "SELECT max(total_batches) FROM metrics WHERE trial_id = ? AND archived = 0", (state.id,)
    ).fetchone()
    state.total_batches = int(total or 0)
    state.latest_id = None
    for row_id, text in cursor.execute(
        "SELECT id, metrics FROM metrics WHERE trial_id = ? AND metric_group = 'validation'"
        " AND archived = 0 ORDER BY end_time DESC, id DESC",
        (state.id,),
    ).fetchall():
        if (json.loads(text).get("validation_metrics") or {}).get(state.metric) is not None:
            state.latest_id = row_id
            break
    groups = [
        row[0]
        for row in cursor.execute(
            f"SELECT DISTINCT metric_group FROM metrics WHERE trial_id = ? AND {_PARTITION_SQL}"
            " = 'GENERIC' ORDER BY metric_group",
            (state.id,),
        )
    ]
    summary: dict[str, Any] = {}
    for group in [*groups, "training", "validation"]:
        group_summary: dict[str, Any] = {}
        key = metrics_json_key(group)
        for (text,) in cursor.execute(
            "SELECT metrics FROM metrics WHERE trial_id = ? AND metric_group = ? AND archived = 0"
            " ORDER BY end_time, id",
            (state.id, group),
        ).fetchall():
            update_summary(group_summary, json.loads(text).get(key) or {})
        if group_summary:
            summary[summary_key(group)] = group_summary
    state.summary = summary


def _best_after_write(cursor: sqlite3.Cursor, state: _Trial, run_id: int, steps: int) -> None:
    # The current best (if still live) against the live row at (run id, steps).
    if state.best_id is not None:
        live = cursor.execute(
            "SELECT 1 FROM metrics WHERE id = ? AND archived = 0", (state.best_id,)
        ).fetchone()
        if live is None:
            state.best_id, state.best_value = None, None
    found = cursor.execute(
        "SELECT id, metrics FROM metrics WHERE trial_id = ? AND metric_group = 'validation'"
        " AND archived = 0 AND trial_run_id = ? AND total_batches = ?",
        (state.id, run_id, steps),
    ).fetchone()
    if found is None:
        _consider_best(state, None, None)
        return
    values = json.loads(found[1]).get("validation_metrics")
    _consider_best(state, int(found[0]), _searcher_value(values, state.metric, state.id))
