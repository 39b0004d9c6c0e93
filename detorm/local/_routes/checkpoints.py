"""Checkpoints (``api_checkpoint.go``, ``checkpoints/postgres_checkpoints.go``, the checkpoint lists
of ``api_experiment.go`` and ``api_trials.go``, and the views in
``static/views_and_triggers/up/checkpoints.sql``).

A checkpoint's ``training`` block joins the metric reports of its trial at the step recorded in
its metadata (``steps_completed``), exactly as ``checkpoints_view`` does: the training report and
the (non-archived) validation report of that step, and the experiment's searcher metric read off
the validation. Deleting checkpoints runs no garbage-collection task here: they are marked
``DELETED`` at once, which is where the master's GC task leaves them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlmodel import Session, col, select

from detorm._wire import (
    Checkpoint,
    CheckpointResponse,
    CheckpointSortBy,
    CheckpointsResponse,
    CheckpointState,
    CheckpointTrainingMetadata,
    Int64,
    Metrics,
    OrderBy,
    Struct,
    WireModel,
    absent,
)
from detorm.local._views import ts

from .. import _tables as t
from .._app import Ctx, rpc
from .._errors import ApiError, internal, invalid_argument, not_found
from .._pagination import in_memory_page
from .._seed import refresh_checkpoint_sizes
from .._sql_lists import orm_in

__all__ = [
    "CheckpointViews",
    "checkpoint_for_action",
    "checkpoint_view",
    "go_uuid",
    "pg_uuid",
    "steps_completed",
]

_HEX: Final = re.compile(r"[0-9a-fA-F]{32}")


# --- uuids -----------------------------------------------------------------------------------------


def go_uuid(text: str) -> str:
    """``uuid.Parse`` (google/uuid): the canonical form, or its error as a ``ValueError``."""
    body = text
    if len(text) == 36 + 9:
        if text[:9].lower() != "urn:uuid:":
            raise ValueError(f"invalid urn prefix: {json.dumps(text[:9])}")
        body = text[9:]
    elif len(text) == 36 + 2:
        body = text[1:-1]
    elif len(text) == 32:
        if not _HEX.fullmatch(text):
            raise ValueError("invalid UUID format")
        return _canonical(text)
    elif len(text) != 36:
        raise ValueError(f"invalid UUID length: {len(text.encode())}")
    if any(body[i] != "-" for i in (8, 13, 18, 23)):
        raise ValueError("invalid UUID format")
    digits = body.replace("-", "")
    if len(digits) != 32 or not _HEX.fullmatch(digits):
        raise ValueError("invalid UUID format")
    return _canonical(digits)


def pg_uuid(text: str) -> str | None:
    """Postgres ``uuid`` input (braces allowed, a hyphen after any group of four digits), or None."""
    body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    if re.fullmatch(r"[0-9a-fA-F]{4}(-?[0-9a-fA-F]{4}){7}", body) is None:
        return None
    return _canonical(body.replace("-", ""))


def _canonical(digits: str) -> str:
    d = digits.lower()
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"


# --- casts the view performs --------------------------------------------------------------------


def _pg_cast_error(kind: str, text: str) -> ApiError:
    return internal(f'ERROR: invalid input syntax for type {kind}: "{text}" (SQLSTATE 22P02)')


def _json_text(value: Any) -> str:
    """``->>``: a JSON value as text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


def _steps_completed(metadata: Any) -> int | None:
    """``(metadata ->> 'steps_completed')::integer``."""
    if not isinstance(metadata, dict):
        return None
    value = metadata.get("steps_completed")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = _json_text(value)
    if re.fullmatch(r"\s*[+-]?\d+\s*", text):
        return int(text)
    raise _pg_cast_error("integer", text)


steps_completed = _steps_completed
"""``checkpoints_view.steps_completed`` (for other route modules)."""


def _as_double(value: Any) -> float | None:
    """``(... ->> metric)::double precision``."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = _json_text(value)
    special = {
        "nan": math.nan,
        "infinity": math.inf,
        "+infinity": math.inf,
        "-infinity": -math.inf,
        "inf": math.inf,
        "+inf": math.inf,
        "-inf": -math.inf,
    }
    if text.strip().lower() in special:
        return special[text.strip().lower()]
    try:
        return float(text)
    except ValueError:
        raise _pg_cast_error("double precision", text) from None


# --- the view -------------------------------------------------------------------------------------


class CheckpointViews:
    """Builds ``checkpointv1.Checkpoint`` messages, caching trials, experiments and reports."""

    def __init__(self, db: Session) -> None:
        self._db = db
        self._trials: dict[int, t.TrialRow | None] = {}
        self._experiments: dict[int, t.ExperimentRow | None] = {}
        self._reports: dict[tuple[int, int], tuple[Any, Any]] = {}

    def _trial(self, trial_id: int) -> t.TrialRow | None:
        if trial_id not in self._trials:
            self._trials[trial_id] = self._db.get(t.TrialRow, trial_id)
        return self._trials[trial_id]

    def _experiment(self, experiment_id: int) -> t.ExperimentRow | None:
        if experiment_id not in self._experiments:
            self._experiments[experiment_id] = self._db.get(t.ExperimentRow, experiment_id)
        return self._experiments[experiment_id]

    def _load_reports(self, trial_id: int, steps: set[int]) -> None:
        """The training and validation reports at these steps (one query per trial)."""
        wanted = {s for s in steps if (trial_id, s) not in self._reports}
        if not wanted:
            return
        for step in wanted:
            self._reports[(trial_id, step)] = (None, None)
        rows = self._db.exec(
            select(t.MetricRow)
            .where(
                t.MetricRow.trial_id == trial_id,
                col(t.MetricRow.metric_group).in_(("training", "validation")),
                orm_in(t.MetricRow.total_batches, wanted),
                col(t.MetricRow.archived).is_(False),
            )
            .order_by(col(t.MetricRow.id))
        ).all()
        for row in rows:
            training, validation = self._reports[(trial_id, row.total_batches)]
            document = json.loads(row.metrics)
            if row.metric_group == "training":
                training = document
            else:
                validation = document
            self._reports[(trial_id, row.total_batches)] = (training, validation)

    def views(self, rows: Sequence[t.CheckpointRow]) -> list[Checkpoint]:
        steps_by_trial: dict[int, set[int]] = {}
        for row in rows:
            step = _steps_completed(row.metadata_)
            if row.trial_id is not None and step is not None:
                steps_by_trial.setdefault(row.trial_id, set()).add(step)
        for trial_id, steps in steps_by_trial.items():
            self._load_reports(trial_id, steps)
        return [self.view(row) for row in rows]

    def view(self, row: t.CheckpointRow) -> Checkpoint:
        return Checkpoint(
            task_id=row.task_id,
            allocation_id=row.allocation_id,
            uuid=row.uuid,
            report_time=ts(row.report_time),
            resources=dict(row.resources or {}),
            metadata=row.metadata_,
            state=CheckpointState.lookup(row.state),
            training=self._training(row),
            storage_id=row.storage_id,
        )

    def _training(self, row: t.CheckpointRow) -> CheckpointTrainingMetadata:
        trial = self._trial(row.trial_id) if row.trial_id is not None else None
        experiment = self._experiment(trial.experiment_id) if trial is not None else None
        step = _steps_completed(row.metadata_)
        training: Any = None
        validation: Any = None
        if trial is not None and trial.id is not None and step is not None:
            self._load_reports(trial.id, {step})
            training, validation = self._reports[(trial.id, step)]
        validation_values = (validation or {}).get("validation_metrics")
        searcher_metric = None
        if experiment is not None and isinstance(validation_values, dict):
            metric_name = ((experiment.config or {}).get("searcher") or {}).get("metric")
            if isinstance(metric_name, str):
                searcher_metric = _as_double(validation_values.get(metric_name))
        return CheckpointTrainingMetadata(
            trial_id=trial.id if trial is not None else None,
            experiment_id=experiment.id if experiment is not None else None,
            experiment_config=experiment.config if experiment is not None else None,
            hparams=trial.hparams if trial is not None else None,
            training_metrics=Metrics(
                avg_metrics=(training or {}).get("avg_metrics"),
                batch_metrics=(training or {}).get("batch_metrics") or [],
            ),
            validation_metrics=Metrics(avg_metrics=validation_values),
            searcher_metric=searcher_metric,
        )


def checkpoint_view(db: Session, row: t.CheckpointRow) -> Checkpoint:
    """The full ``Checkpoint`` message of one row (``proto_checkpoints_view``)."""
    return CheckpointViews(db).view(row)


# --- lookups ------------------------------------------------------------------------------------


def checkpoint_for_action(db: Session, text: str) -> t.CheckpointRow:
    """``canDoActionOnCheckpoint``: the uuid must parse (``uuid.Parse``, else a plain 500) and the
    checkpoint exist (404)."""
    try:
        canonical = go_uuid(text)
    except ValueError as err:
        raise internal(str(err)) from None
    row = db.get(t.CheckpointRow, canonical)
    if row is None:
        raise not_found(f"checkpoint '{text}' not found")
    return row


def _checkpoint_for_request(db: Session, text: str) -> t.CheckpointRow:
    """``canDoActionOnCheckpoint`` then ``get_checkpoint``."""
    row = checkpoint_for_action(db, text)
    if pg_uuid(text) is None:  # get_checkpoint.sql then reads the text as given: no "urn:uuid:"
        raise internal(
            f"error fetching checkpoint {text} from database: error running query: get_checkpoint:"
            f' ERROR: invalid input syntax for type uuid: "{text}" (SQLSTATE 22P02)'
        )
    return row


def _uuid_list(texts: Iterable[str]) -> list[str]:
    """``ProtoConverter.ToUUIDList``."""
    parsed = []
    for text in texts:
        try:
            parsed.append(go_uuid(text))
        except ValueError:
            raise invalid_argument(
                f"converting checkpoint: string {text} is not a valid uuid"
            ) from None
    return parsed


def _editable_checkpoints(db: Session, uuids: Sequence[str]) -> list[t.CheckpointRow]:
    """``checkpointsRBACEditCheck``: every checkpoint must exist and belong to an experiment."""
    rows = {
        r.uuid: r
        for r in db.exec(select(t.CheckpointRow).where(orm_in(t.CheckpointRow.uuid, uuids))).all()
    }
    if any(row.trial_id is None for row in rows.values()):
        # grouped under experiment id 0, which ExperimentByID does not find: a plain error
        raise internal("not found")
    missing = sorted({u for u in uuids if u not in rows})
    if missing:
        raise not_found(f"checkpoints '{', '.join(missing)}' not found")
    return [rows[u] for u in uuids]


def _refuse_registered(db: Session, uuids: Sequence[str], verb: str) -> None:
    """``GetRegisteredCheckpoints`` + ``makeRegisteredCheckpointErrorMessage``."""
    rows = db.exec(
        select(
            t.ModelVersionRow.checkpoint_uuid,
            t.ModelVersionRow.model_id,
            t.ModelVersionRow.version,
            t.ModelRow.name,
        )
        .join(t.ModelRow, t.ModelRow.id == t.ModelVersionRow.model_id)  # type: ignore[arg-type]
        .where(orm_in(t.ModelVersionRow.checkpoint_uuid, uuids))
        .order_by(col(t.ModelVersionRow.id))
    ).all()
    registered = {uuid: (model_id, version, name) for uuid, model_id, version, name in rows}
    if not registered:
        return
    # the master joins these in Go map order; detorm.local sorts them by uuid
    parts = [
        f"{uuid}, registered to {name} (model #{model_id}), version {version}"
        for uuid, (model_id, version, name) in sorted(registered.items())
    ]
    raise invalid_argument(
        "this subset of checkpoints provided are in the model registry and cannot be"
        f" {verb}: {', '.join(parts)}."
    )


def _refresh_sizes(db: Session, rows: Iterable[t.CheckpointRow]) -> None:
    db.flush()
    for trial_id in sorted({r.trial_id for r in rows if r.trial_id is not None}):
        refresh_checkpoint_sizes(db, trial_id)


# --- request bodies ---------------------------------------------------------------------------------


class _MetadataBody(WireModel):
    checkpoint: Checkpoint | None = None


class _DeleteBody(WireModel):
    checkpoint_uuids: list[str] = []


class _OptionalResources(WireModel):
    resources: dict[str, Int64] = {}


class _PatchCheckpoint(WireModel):
    uuid: str = ""
    resources: _OptionalResources | None = absent()


class _PatchBody(WireModel):
    checkpoints: list[_PatchCheckpoint] = []


# --- handlers -------------------------------------------------------------------------------------


@rpc("GetCheckpoint")
def get_checkpoint(ctx: Ctx) -> CheckpointResponse:
    row = _checkpoint_for_request(ctx.db, ctx.path["checkpoint_uuid"])
    return CheckpointResponse(checkpoint=checkpoint_view(ctx.db, row))


@rpc("PostCheckpointMetadata")
def post_checkpoint_metadata(ctx: Ctx) -> CheckpointResponse:
    body = ctx.body(_MetadataBody)
    row = _checkpoint_for_request(ctx.db, ctx.path["checkpoint.uuid"])
    metadata: Struct | None = body.checkpoint.metadata if body.checkpoint is not None else None
    # the answer is the checkpoint read before the update, carrying the request's metadata as is
    # (null when none was sent); the row stores protojson of it, so "{}" for none
    answer = checkpoint_view(ctx.db, row)
    answer.metadata = metadata
    row.metadata_ = metadata if metadata is not None else {}
    ctx.db.add(row)
    return CheckpointResponse(checkpoint=answer)


@rpc("DeleteCheckpoints")
def delete_checkpoints(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(_DeleteBody)
    uuids = _uuid_list(body.checkpoint_uuids)
    rows = _editable_checkpoints(ctx.db, uuids)
    _refuse_registered(ctx.db, uuids, "deleted")
    for row in rows:
        row.state = "DELETED"
        ctx.db.add(row)
    _refresh_sizes(ctx.db, rows)
    return {}


@rpc("PatchCheckpoints")
def patch_checkpoints(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(_PatchBody)
    uuids = _uuid_list(c.uuid for c in body.checkpoints)
    rows = _editable_checkpoints(ctx.db, uuids)
    _refuse_registered(ctx.db, uuids, "patched")
    updated = []
    for patch, row in zip(body.checkpoints, rows, strict=True):
        if patch.resources is None:
            continue
        _patch_resources(row, patch.resources.resources)
        ctx.db.add(row)
        updated.append(row)
    _refresh_sizes(ctx.db, updated)
    return {}


def _patch_resources(row: t.CheckpointRow, resources: dict[str, int]) -> None:
    """An empty map deletes the checkpoint; otherwise its files shrink to the given ones (and it
    becomes PARTIALLY_DELETED if the list changed)."""
    if not resources:
        row.state = "DELETED"
        return
    old = dict(row.resources or {})
    if "metadata.json" not in old and "metadata.json" in resources:
        old["metadata.json"] = resources["metadata.json"]  # older checkpoints lack it
    row.resources = dict(resources)
    row.size = sum(resources.values())
    if old != resources:
        row.state = "PARTIALLY_DELETED"


# --- listing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ListParams:
    """The list request's query string, parsed (by the gateway, before the handler runs)."""

    attribute: CheckpointSortBy | None
    metric: str | None
    order: OrderBy
    states: list[CheckpointState]
    offset: int
    limit: int


def _list_params(ctx: Ctx) -> _ListParams:
    q = ctx.query
    if q.has("sort_by_attr") and q.has("sort_by_metric"):
        raise invalid_argument("field already set for sort_by oneof")
    attribute = (
        q.get_enum("sort_by_attr", CheckpointSortBy, "checkpointv1.SortBy")
        if q.has("sort_by_attr")
        else None
    )
    return _ListParams(
        attribute=attribute,
        metric=q.get_str("sort_by_metric") if q.has("sort_by_metric") else None,
        order=q.get_enum("order_by", OrderBy, "apiv1.OrderBy"),
        states=q.get_enums("states", CheckpointState, "checkpointv1.State"),
        offset=q.get_int("offset"),
        limit=q.get_int("limit"),
    )


def _listed(
    db: Session, params: _ListParams, rows: list[t.CheckpointRow], *, smaller_is_better: bool | None
) -> CheckpointsResponse:
    """Filter by state, sort as the handlers' ``sort.Slice`` does, then ``api.Paginate``.

    ``smaller_is_better`` is given for an experiment's list only: there, sorting by searcher
    metric defaults to the better-first direction and always puts missing metrics last.
    """
    order = params.order
    # the query's own order: newest report first
    rows.sort(key=lambda r: r.report_time, reverse=True)
    checkpoints = CheckpointViews(db).views(rows)
    if params.states:
        checkpoints = [c for c in checkpoints if c.state in params.states]
    if params.attribute == CheckpointSortBy.SEARCHER_METRIC and smaller_is_better is not None:
        if order == OrderBy.UNSPECIFIED:
            order = OrderBy.ASC if smaller_is_better else OrderBy.DESC
        checkpoints = _searcher_metric_nulls_last(checkpoints, descending=order == OrderBy.DESC)
    else:
        checkpoints = _sorted(
            checkpoints, params.attribute, params.metric, descending=order == OrderBy.DESC
        )
    page = in_memory_page(params.offset, params.limit, len(checkpoints))
    return CheckpointsResponse(checkpoints=page.slice(checkpoints), pagination=page.pagination)


def _report_time(c: Checkpoint) -> datetime:
    assert c.report_time is not None
    return c.report_time


def _missing_first(
    items: list[Checkpoint], value: Callable[[Checkpoint], Any], *, descending: bool
) -> list[Checkpoint]:
    """The ``protoless`` comparators: a missing value is "less" (first ascending, last
    descending, where they keep report-time order); equal values fall back to report time."""
    present = [c for c in items if value(c) is not None]
    missing = sorted((c for c in items if value(c) is None), key=_report_time)
    present.sort(key=lambda c: (value(c), _report_time(c)), reverse=descending)
    return present + missing if descending else missing + present


def _sorted(
    items: list[Checkpoint],
    attribute: CheckpointSortBy | None,
    metric: str | None,
    *,
    descending: bool,
) -> list[Checkpoint]:
    if metric is not None:
        return _missing_first(items, _metric_value(items, metric), descending=descending)
    if attribute == CheckpointSortBy.UUID:
        return sorted(items, key=lambda c: c.uuid, reverse=descending)
    if attribute == CheckpointSortBy.END_TIME:
        return sorted(items, key=_report_time, reverse=descending)
    if attribute == CheckpointSortBy.STATE:
        return sorted(
            items, key=lambda c: c.state.number, reverse=descending
        )  # ties keep query order
    if attribute == CheckpointSortBy.BATCH_NUMBER:
        return _missing_first(items, _steps_value, descending=descending)
    if attribute == CheckpointSortBy.SEARCHER_METRIC:
        return _missing_first(items, _searcher_value, descending=descending)
    return _missing_first(items, _trial_value, descending=descending)  # the default: trial id


def _searcher_metric_nulls_last(items: list[Checkpoint], *, descending: bool) -> list[Checkpoint]:
    """``CheckpointSearcherMetricNullsLast``: checkpoints without a searcher metric go last
    whatever the direction, in query order."""
    present = [c for c in items if _searcher_value(c) is not None]
    missing = [c for c in items if _searcher_value(c) is None]
    present.sort(key=lambda c: (_searcher_value(c), _report_time(c)), reverse=descending)
    return present + missing


def _trial_value(c: Checkpoint) -> int | None:
    return c.training.trial_id if c.training is not None else None


def _searcher_value(c: Checkpoint) -> float | None:
    return c.training.searcher_metric if c.training is not None else None


def _steps_value(c: Checkpoint) -> float | None:
    # Metadata.AsMap()["steps_completed"].(float64): only JSON numbers count
    value = (c.metadata or {}).get("steps_completed")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


_GO_TYPES: Final = {
    str: "string",
    bool: "bool",
    dict: "map[string]interface {}",
    list: "[]interface {}",
}


def _metric_value(items: list[Checkpoint], name: str) -> Callable[[Checkpoint], float | None]:
    """``CheckpointMetricNameLess``: a value that is not a number makes the comparison panic."""

    def avg(c: Checkpoint) -> dict[str, Any]:
        if c.training is None or c.training.validation_metrics is None:
            return {}
        return c.training.validation_metrics.avg_metrics or {}

    present = [avg(c)[name] for c in items if name in avg(c)]
    odd = [v for v in present if not isinstance(v, (int, float)) or isinstance(v, bool)]
    if odd and len(present) > 1:
        kind = "nil" if odd[0] is None else _GO_TYPES.get(type(odd[0]), type(odd[0]).__name__)
        raise internal(f"interface conversion: interface {{}} is {kind}, not float64")

    def value(c: Checkpoint) -> float | None:
        metrics = avg(c)
        return float(metrics[name]) if name in metrics and metrics[name] is not None else None

    return value


@rpc("GetExperimentCheckpoints", id=int)
def get_experiment_checkpoints(ctx: Ctx) -> CheckpointsResponse:
    params = _list_params(ctx)
    experiment_id: int = ctx.path["id"]
    experiment = ctx.db.get(t.ExperimentRow, experiment_id)
    if experiment is None:
        raise not_found(f"experiment '{experiment_id}' not found")
    rows = list(
        ctx.db.exec(
            select(t.CheckpointRow)
            .join(t.TrialRow, t.TrialRow.id == t.CheckpointRow.trial_id)  # type: ignore[arg-type]
            .where(t.TrialRow.experiment_id == experiment_id)
        ).all()
    )
    searcher = (experiment.config or {}).get("searcher") or {}
    smaller_is_better = searcher.get("smaller_is_better")
    return _listed(
        ctx.db,
        params,
        rows,
        smaller_is_better=True if smaller_is_better is None else bool(smaller_is_better),
    )


@rpc("GetTrialCheckpoints", id=int)
def get_trial_checkpoints(ctx: Ctx) -> CheckpointsResponse:
    params = _list_params(ctx)
    trial_id: int = ctx.path["id"]
    if ctx.db.get(t.TrialRow, trial_id) is None:
        raise not_found(f"trial '{trial_id}' not found")
    rows = list(
        ctx.db.exec(select(t.CheckpointRow).where(t.CheckpointRow.trial_id == trial_id)).all()
    )
    return _listed(ctx.db, params, rows, smaller_is_better=None)
