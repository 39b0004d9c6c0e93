"""Metric streams and reports (``api_trials.go``: ``streamMetrics``, ``ReportTrialMetrics``).

GetMetrics, GetTrainingMetrics and GetValidationMetrics stream ``{"metrics": [MetricsReport]}``
messages: the trials in ascending id order, each in batches of up to 1000 rows ordered by
``trial_run_id, total_batches`` and fetched by keyset on ``total_batches`` alone, as
``db.GetMetrics`` does. Messages are built straight from the stored ``metrics`` text (the hot path
of the benchmarks): the rows never go through Python objects.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

from detorm._plan._collation import collation_key
from detorm._wire import Metrics, Struct, Timestamp, WireModel, absent

from .. import _scheduler as sim
from .._app import Ctx, RawJSON, rpc
from .._db import Database, utcnow
from .._errors import ApiError, GatewayError, invalid_argument, not_found
from .._metric_reports import Report, driver_cursor, group_condition, record_reports
from .._sql_lists import in_list

BATCH_SIZE: Final = 1000  # streamMetrics: `const size = 1000`


# --- streams --------------------------------------------------------------------------------
@rpc("GetMetrics")
def get_metrics(ctx: Ctx) -> Iterator[RawJSON]:
    trial_ids = _trial_ids(ctx)
    return _metrics_stream(ctx, trial_ids, ctx.query.get_str("group"))


@rpc("GetTrainingMetrics")
def get_training_metrics(ctx: Ctx) -> Iterator[RawJSON]:
    return _metrics_stream(ctx, _trial_ids(ctx), "training")


@rpc("GetValidationMetrics")
def get_validation_metrics(ctx: Ctx) -> Iterator[RawJSON]:
    return _metrics_stream(ctx, _trial_ids(ctx), "validation")


def _trial_ids(ctx: Ctx) -> list[int]:
    # Parsed by the gateway, before the RPC runs: a bad value is a unary error.
    try:
        return ctx.query.get_ints("trial_ids")
    except ApiError as err:
        raise GatewayError(err.code, err.message) from None


def _metrics_stream(ctx: Ctx, trial_ids: list[int], group: str) -> Iterator[RawJSON]:
    """``streamMetrics``; a generator, so its errors take the stream's error shape."""
    if not trial_ids:
        raise invalid_argument("must specify at least one trialId")
    # The master's duplicate check never fires (its map is never filled): a repeated id is
    # streamed twice.
    ordered = sorted(trial_ids)
    cursor = driver_cursor(ctx.db)
    for trial_id in ordered:
        if cursor.execute("SELECT 1 FROM trials WHERE id = ?", (trial_id,)).fetchone() is None:
            raise not_found(f"trial '{trial_id}' not found")
    for trial_id in ordered:
        after = -1
        while True:
            rows = fetch_batch(cursor, trial_id, after, group)
            if rows:
                yield _message(trial_id, rows)
                after = rows[-1][2]
            if len(rows) != BATCH_SIZE:
                break


def fetch_batch(
    cursor: sqlite3.Cursor, trial_id: int, after: int, group: str
) -> list[tuple[Any, ...]]:
    """``db.GetMetrics``: live rows of the group after ``after`` batches, in report order."""
    condition, params = group_condition(group)
    rows: list[tuple[Any, ...]] = cursor.execute(
        "SELECT id, trial_run_id, total_batches, end_time, metric_group, metrics FROM metrics"
        f" WHERE trial_id = ? AND total_batches > ? AND archived = 0 AND {condition}"
        # id breaks ties the way Postgres usually does (insertion order); the master leaves
        # them unordered
        " ORDER BY trial_id, trial_run_id, total_batches, id LIMIT ?",
        (trial_id, after, *params, BATCH_SIZE),
    ).fetchall()
    return rows


def _message(trial_id: int, rows: list[tuple[Any, ...]]) -> RawJSON:
    # trialv1.MetricsReport in field order; `metrics` is the stored document as is.
    reports = [
        f'{{"trialId":{trial_id},"endTime":"{_end_time(end)}","metrics":{metrics},'
        f'"totalBatches":{batches},"archived":false,"id":{row_id},"trialRunId":{run_id},'
        f'"group":{_json_string(group)}}}'
        for row_id, run_id, batches, end, group, metrics in rows
    ]
    return RawJSON(('{"metrics":[' + ",".join(reports) + "]}").encode())


@lru_cache(maxsize=256)
def _json_string(text: str) -> str:
    return json.dumps(text)


def _end_time(stored: str) -> str:
    """The stored end time, truncated to milliseconds (``GetMetrics`` truncates it for the
    harness's timestamp parser), as jsonpb writes it."""
    if len(stored) == 26 and stored[10] == " " and stored[19] == ".":
        millis = stored[20:23]
        fraction = "" if millis == "000" else "." + millis
        return f"{stored[:10]}T{stored[11:19]}{fraction}Z"
    value = datetime.fromisoformat(stored)
    return Timestamp.from_datetime(
        value.replace(microsecond=value.microsecond // 1000 * 1000)
    ).rfc3339()


# --- reports --------------------------------------------------------------------------------
class TrialMetricsBody(WireModel):
    """``trialv1.TrialMetrics``."""

    trial_id: int = 0
    trial_run_id: int = 0
    steps_completed: int | None = absent()
    report_time: Timestamp | None = absent()
    metrics: Metrics | None = None


class ReportTrialMetricsBody(WireModel):
    """``apiv1.ReportTrialMetricsRequest``."""

    metrics: TrialMetricsBody | None = None
    group: str = ""


@rpc("ReportTrialMetrics", **{"metrics.trial_id": int})
def report_trial_metrics(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(ReportTrialMetricsBody)
    _report(ctx, ctx.path["metrics.trial_id"], body.metrics or TrialMetricsBody(), body.group)
    return {}


@rpc("ReportTrialTrainingMetrics", **{"training_metrics.trial_id": int})
def report_trial_training_metrics(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(TrialMetricsBody)
    _report(ctx, ctx.path["training_metrics.trial_id"], body, "training")
    return {}


@rpc("ReportTrialValidationMetrics", **{"validation_metrics.trial_id": int})
def report_trial_validation_metrics(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(TrialMetricsBody)
    _report(ctx, ctx.path["validation_metrics.trial_id"], body, "validation")
    return {}


def _report(ctx: Ctx, trial_id: int, metrics: TrialMetricsBody, group: str) -> None:
    # MetricGroup.Validate, then the trial's access check, then db.AddTrialMetrics.
    if not group:
        raise invalid_argument("metric group cannot be empty")
    if "." in group:
        raise invalid_argument("metric group cannot contain '.'")
    cursor = driver_cursor(ctx.db)
    if cursor.execute("SELECT 1 FROM trials WHERE id = ?", (trial_id,)).fetchone() is None:
        raise not_found(f"trial '{trial_id}' not found")
    avg: Struct | None = None if metrics.metrics is None else metrics.metrics.avg_metrics
    batches = None if metrics.metrics is None else metrics.metrics.batch_metrics
    report = Report(
        steps_completed=metrics.steps_completed, avg_metrics=avg,
        end_time=metrics.report_time or utcnow(), trial_run_id=metrics.trial_run_id,
        batch_metrics=batches or None,
    )  # fmt: skip
    record_reports(ctx.db, trial_id, group, [report], check_run_id=True)


# --- metric names -----------------------------------------------------------------------------
# Waits of the master (api_experiment.go), module attributes so that tests can shorten them.
DEFAULT_METRICS_STREAM_PERIOD: float = 30.0  # defaultMetricsStreamPeriod
_TERMINAL_EXPERIMENT: Final = frozenset({"COMPLETED", "CANCELED", "ERROR"})  # model.TerminalStates


@rpc("ExpMetricNames")
def exp_metric_names(ctx: Ctx) -> Iterator[RawJSON]:
    """``ExpMetricNames``: a first message with the experiments' searcher metrics and every
    metric name of their trials' summaries, then, every ``periodSeconds`` (default 30) while an
    experiment is not terminal, a message of the names not sent before (possibly none)."""
    try:
        ids = sorted(set(ctx.query.get_ints("ids")))
        period = ctx.query.get_int("period_seconds")
    except ApiError as err:
        raise GatewayError(err.code, err.message) from None
    database, cluster = ctx.app.db, ctx.app.cluster
    ctx.db.close()  # the stream lasts as long as the experiments run
    return _metric_names_stream(database, cluster, ids, period or DEFAULT_METRICS_STREAM_PERIOD)


def _metric_names_stream(
    database: Database, cluster: sim.Cluster, ids: list[int], period: float
) -> Iterator[RawJSON]:
    if not ids:
        raise invalid_argument("must specify at least one experiment id")
    seen_searcher: set[str] = set()
    seen: dict[str, set[str]] = {}
    first = True
    while True:
        message: dict[str, Any] = {
            "searcherMetrics": [], "trainingMetrics": [], "validationMetrics": [],
            "metricNames": [],
        }  # fmt: skip
        with database.transaction(write=False) as db:
            cursor = driver_cursor(db)
            if first:  # getExperimentAndCheckCanDoActions; the searcher metrics once
                for metric in _searcher_metrics(cursor, ids):
                    if metric not in seen_searcher:
                        seen_searcher.add(metric)
                        message["searcherMetrics"].append(metric)
                first = False
            names = metric_names(cursor, ids)
        for group, key in (("training", "trainingMetrics"), ("validation", "validationMetrics")):
            known = seen.get(group, set())
            message[key] = [name for name in names.get(group, []) if name not in known]
        for group, group_names in names.items():
            known = seen.setdefault(group, set())
            for name in group_names:
                if name not in known:
                    known.add(name)
                    message["metricNames"].append({"group": group, "name": name})
        yield RawJSON(json.dumps(message, separators=(",", ":")).encode())
        if not _any_running(database, cluster, ids):
            return
        if not database.follow_wait(max(period, 0.0)):
            return


def _searcher_metrics(cursor: sqlite3.Cursor, ids: list[int]) -> list[str]:
    metrics = []
    for experiment_id in ids:
        row = cursor.execute(
            "SELECT searcher_metric FROM experiments WHERE id = ?", (experiment_id,)
        ).fetchone()
        if row is None:
            raise not_found(f"experiment '{experiment_id}' not found")
        metrics.append(str(row[0] or ""))
    return metrics


def metric_names(cursor: sqlite3.Cursor, ids: list[int]) -> dict[str, list[str]]:
    """``db.MetricNames``: the distinct (summary key, metric name) pairs of the experiments'
    runs, ordered by key then name (text order), keyed by group (``TrialSummaryMetricGroup``:
    ``avg_metrics`` is training, ``validation_metrics`` validation)."""
    pairs: set[tuple[str, str]] = set()
    ids_sql, params = in_list(ids)
    for (text,) in cursor.execute(
        f"SELECT summary_metrics FROM trials WHERE experiment_id IN {ids_sql}"
        " AND summary_metrics IS NOT NULL",
        params,
    ):
        summary = json.loads(text) if isinstance(text, str) else text
        if not isinstance(summary, dict):
            continue
        for key, group_summary in summary.items():
            if isinstance(group_summary, dict):
                pairs.update((key, name) for name in group_summary)
    names: dict[str, list[str]] = {}
    for key, name in sorted(pairs, key=lambda p: (collation_key(p[0]), collation_key(p[1]))):
        group = {"avg_metrics": "training", "validation_metrics": "validation"}.get(key, key)
        names.setdefault(group, []).append(name)
    return names


def _any_running(database: Database, cluster: sim.Cluster, ids: list[int]) -> bool:
    """``GetNonTerminalExperimentCount`` > 0 (the simulated cluster brought to now first)."""
    with sim.advanced(database, cluster) as db:
        ids_sql, params = in_list(ids)
        states = [
            row[0]
            for row in driver_cursor(db).execute(
                f"SELECT state FROM experiments WHERE id IN {ids_sql}", params
            )
        ]
    return any(state not in _TERMINAL_EXPERIMENT for state in states)
