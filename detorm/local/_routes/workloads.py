"""A trial's workloads (``api_trials.go`` ``GetTrialWorkloads``,
``static/srv/proto_get_trial_workloads.sql``): what ``det trial describe`` and ``det experiment
describe`` print.

The query lists three kinds of rows, joined ``ON false`` so that each row holds one of them:
training reports (``steps``, only without a filter), validation reports (``validations``, under
every filter: ``FILTER_OPTION_CHECKPOINT`` therefore still lists validations), and checkpoints
(``checkpoints_view``, except under ``FILTER_OPTION_VALIDATION``; ``removeDeletedCheckpoints`` drops
DELETED ones). Archived reports are left out. Each container holds its one ``oneof`` member.

Order: ``ORDER BY (<sort>)::float <dir> NULLS LAST, total_batches <dir>, end_time <dir>``, where
``<sort>`` is the total batches, or with ``sortKey`` the report's ``avg_metrics`` value of that name
(checkpoints have none: last). Training rows report ``avg_metrics`` (plus ``batch_metrics`` with
``includeBatchMetrics``), validation rows their ``validation_metrics`` as ``avg_metrics``.
Pagination is ``page_info`` with a limit of 0 sent as -1 (everything), so the answer echoes
``limit: -1``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from detorm._wire import CheckpointWorkload, Metrics, MetricsWorkload, OrderBy

from .. import _tables as t
from .._app import Ctx, rpc
from .._errors import ApiError, internal, not_found
from .._gateway_schema import ENUMS
from .._pagination import sql_page
from .._views import ts
from .checkpoints import steps_completed

__all__: list[str] = []


@dataclass
class _Workload:
    kind: str  # "training", "validation" or "checkpoint"
    total_batches: int | None
    end_time: datetime
    sort_metrics: dict[str, Any] | None  # {"avg_metrics": {...}} for reports
    body: dict[str, Any]


def _enum_name(ctx: Ctx, name: str, enum: str) -> str:
    """The query value (already validated by the gateway) as the enum's name."""
    text = ctx.query.get_str(name)
    members = ENUMS[enum][1]
    if text == "":
        return members[0][0]
    for member, number in members:
        if text == member or text.lstrip("+-").isdigit() and int(text) == number:
            return member
    return members[0][0]


def _report(row: t.MetricRow, avg: Any, batches: Any, kind: str) -> _Workload:
    document = json.loads(row.metrics) if row.metrics else {}
    metrics = Metrics.model_validate({"avgMetrics": avg, "batchMetrics": batches or []})
    view = MetricsWorkload(
        end_time=ts(row.end_time),
        metrics=metrics,
        num_inputs=int(document.get("num_inputs") or 0),
        total_batches=row.total_batches,
    )
    return _Workload(
        kind, row.total_batches, row.end_time, {"avg_metrics": avg}, view.model_dump_wire()
    )


def _reports(ctx: Ctx, trial_id: int, group: str) -> list[t.MetricRow]:
    query = select(t.MetricRow).where(
        t.MetricRow.trial_id == trial_id,
        t.MetricRow.metric_group == group,
        col(t.MetricRow.archived).is_(False),
    )
    return list(ctx.db.exec(query).all())


def _workloads(ctx: Ctx, trial_id: int, filter_option: str, batch_metrics: bool) -> list[_Workload]:
    rows: list[_Workload] = []
    if filter_option == "FILTER_OPTION_UNSPECIFIED":
        for row in _reports(ctx, trial_id, "training"):
            document = json.loads(row.metrics)
            batches = document.get("batch_metrics") if batch_metrics else None
            rows.append(_report(row, document.get("avg_metrics"), batches, "training"))
    if filter_option != "FILTER_OPTION_VALIDATION":
        remove_deleted = ctx.query.get_bool("remove_deleted_checkpoints")
        query = select(t.CheckpointRow).where(t.CheckpointRow.trial_id == trial_id)
        for checkpoint in ctx.db.exec(query).all():
            if remove_deleted and checkpoint.state == "DELETED":
                continue
            steps = steps_completed(checkpoint.metadata_)
            view = CheckpointWorkload.model_validate(
                {
                    "uuid": checkpoint.uuid,
                    "endTime": ts(checkpoint.report_time),
                    "state": f"STATE_{checkpoint.state}",
                    "resources": checkpoint.resources or {},
                    "totalBatches": steps or 0,
                    "metadata": checkpoint.metadata_,
                }
            )
            body = view.model_dump_wire()
            rows.append(_Workload("checkpoint", steps, checkpoint.report_time, None, body))
    for row in _reports(ctx, trial_id, "validation"):
        document = json.loads(row.metrics)
        rows.append(_report(row, document.get("validation_metrics"), None, "validation"))
    return rows


def _sort_value(trial_id: int, workload: _Workload, key: str, metric_type: str) -> float | None:
    if key in ("", "batches"):
        return None if workload.total_batches is None else float(workload.total_batches)
    wanted = {"METRIC_TYPE_VALIDATION": "validation", "METRIC_TYPE_TRAINING": "training"}
    if workload.sort_metrics is None or wanted.get(metric_type, workload.kind) != workload.kind:
        return None
    avg = workload.sort_metrics.get("avg_metrics")
    value = avg.get(key.replace("'", "")) if isinstance(avg, dict) else None
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        return float(text)  # "NaN", "Infinity" as Postgres reads them
    except ValueError:
        raise internal(
            f"failed to get trial {trial_id} workloads: error running query:"
            f" proto_get_trial_workloads: ERROR: invalid input syntax for type double precision:"
            f' "{text}" (SQLSTATE 22P02)'
        ) from None


def _ordered(
    trial_id: int, rows: list[_Workload], key: str, metric_type: str, descending: bool
) -> list[_Workload]:
    def sort_key(workload: _Workload) -> tuple[Any, ...]:
        value = _sort_value(trial_id, workload, key, metric_type)
        # Postgres: NaN above every number; NULLS LAST in either direction
        rank = (1, 0.0) if value is None else (0, math.inf if math.isnan(value) else value)
        if descending:
            rank = (rank[0], -rank[1])
        batches = workload.total_batches
        # "total_batches DESC" puts NULLs first (Postgres default), ASC last
        nulls = (0 if descending else 1) if batches is None else (1 if descending else 0)
        stamp = workload.end_time.timestamp()
        return (*rank, nulls, -(batches or 0) if descending else (batches or 0),
                -stamp if descending else stamp)  # fmt: skip

    return sorted(rows, key=sort_key)


@rpc("GetTrialWorkloads", trial_id=int)
def get_trial_workloads(ctx: Ctx) -> dict[str, Any]:
    trial_id: int = ctx.path["trial_id"]
    if ctx.db.get(t.TrialRow, trial_id) is None:
        raise not_found(
            f"trial '{trial_id}' not found"
        )  # CanGetTrialsExperimentAndCheckCanDoAction
    q = ctx.query
    filter_option = _enum_name(
        ctx, "filter", "determined.api.v1.GetTrialWorkloadsRequest.FilterOption"
    )
    metric_type = _enum_name(ctx, "metric_type", "determined.api.v1.MetricType")
    descending = _enum_name(ctx, "order_by", "determined.api.v1.OrderBy") == OrderBy.DESC.value
    rows = _workloads(ctx, trial_id, filter_option, q.get_bool("include_batch_metrics"))
    limit = q.get_int("limit") or -1
    try:
        page = sql_page(q.get_int("offset"), limit, len(rows))
    except ApiError as err:
        raise internal(
            f"failed to get trial {trial_id} workloads: error running query:"
            f" proto_get_trial_workloads: {err.message}"
        ) from None
    ordered = _ordered(trial_id, rows, q.get_str("sort_key"), metric_type, descending)
    return {
        "workloads": [{w.kind: w.body} for w in page.slice(ordered)],
        "pagination": page.pagination.model_dump_wire(),
    }
