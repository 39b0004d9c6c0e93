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

from detorm._wire import Metrics, Struct, Timestamp, WireModel, absent

from .._app import Ctx, RawJSON, rpc
from .._db import utcnow
from .._errors import ApiError, GatewayError, invalid_argument, not_found
from .._metric_reports import Report, driver_cursor, group_condition, record_reports

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
