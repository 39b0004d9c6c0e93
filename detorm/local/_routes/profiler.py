"""The legacy profiler routes (``api_trials.go``: ``GetTrialProfilerAvailableSeries``,
``GetTrialProfilerMetrics``, ``PostTrialProfilerMetricsBatch``; ``db/postgres_trial_profiler_metrics.go``).

In 0.38.1 system metrics are reported as metric groups (``gpu``, ``cpu``, ``memory``, ``disk``,
``network``) through ``ReportTrialMetrics`` and stored bare in ``system_metrics``
(``_metric_reports.py``): ``{agent id: {name: value}}``, with GPU values one level deeper under
the GPU's uuid. The two streams read those rows back in the old labels-and-series shape:

* ``GetTrialProfilerAvailableSeries``: for each (group, agent) the latest row holding that agent
  (``DISTINCT ON``), and a label for every metric of *every* agent of that row (so a row of two
  agents lists its metrics twice, as on the master); nested disk metrics (by disk path) are left
  out. One message; with ``follow`` the whole list again every
  :data:`AVAILABLE_SERIES_WAIT_SECONDS` until the trial has ended.
* ``GetTrialProfilerMetrics``: one message per stored value of the metric named by
  ``labels.name`` (its group is the name's prefix: ``cpu_``, ``gpu_``, ``disk_``, ``net_``,
  ``memory_``), read at ``labels.agentId`` (and ``labels.gpuUuid``). GPU metrics without a uuid
  list every GPU of the agent. Fetched 100 at a time by offset; with ``follow`` an empty fetch
  waits :data:`METRICS_MISS_WAIT_SECONDS` until the trial has ended.

``PostTrialProfilerMetricsBatch`` still inserts into ``trial_profiler_metrics``, a table nothing in
0.38.1 reads.

Map iteration order is random on the master (labels); detorm.local lists agents, GPUs and
metric names in sorted order. Where the master's SQL interpolates ``agentId`` and ``gpuUuid`` into
the query text, detorm.local reads the JSON instead (a quote in an id is a SQL error there).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from detorm._wire import Timestamp, WireModel

from .. import _scheduler as sim
from .._app import Ctx, RawJSON, rpc
from .._db import Database, utcnow
from .._errors import ApiError, Code, GatewayError, batch_errors_wrapped, not_found
from .._gateway_schema import ENUMS
from .._go import GoError
from .._go import parse_float as go_parse_float

__all__: list[str] = []

# Waits of the master, module attributes so that tests can shorten them (api_trials.go).
AVAILABLE_SERIES_WAIT_SECONDS: float = 15.0  # TrialAvailableSeriesBatchWaitTime
METRICS_MISS_WAIT_SECONDS: float = 5.0  # trialProfilerMetricsBatchMissWaitTime

BATCH_SIZE: Final = 100  # trialProfilerMetricsBatchSize
_TERMINAL: Final = frozenset({"COMPLETED", "CANCELED", "ERROR"})  # model.TerminalStates
_SYSTEM: Final = "PROFILER_METRIC_TYPE_SYSTEM"
_METRIC_TYPE_ENUM: Final = "determined.trial.v1.TrialProfilerMetricLabels.ProfilerMetricType"
_PREFIXES: Final = (
    ("cpu_", "cpu"), ("gpu_", "gpu"), ("disk_", "disk"), ("net_", "network"),
    ("memory_", "memory"),
)  # fmt: skip


# --- shared -----------------------------------------------------------------------------------
# BatchStreamProcessor wraps a fetch error ("failed to fetch batch: ...") and processBatches
# returns it in a multierror (batch_errors_wrapped).
def _fetch_error(err: Exception) -> ApiError:
    code = err.code if isinstance(err, ApiError) else Code.UNKNOWN
    message = err.message if isinstance(err, ApiError) else (str(err) or type(err).__name__)
    return ApiError(code, f"failed to fetch batch: {message}")


def _check_trial(database: Database, trial_id: int) -> None:
    """``CanGetTrialsExperimentAndCheckCanDoAction``: the trial must exist."""
    with database.transaction(write=False) as db:
        found = (
            db.connection()
            .exec_driver_sql("SELECT 1 FROM trials WHERE id = ?", (trial_id,))
            .fetchone()
        )
    if found is None:
        raise not_found(f"trial '{trial_id}' not found")


def _trial_ended(database: Database, cluster: sim.Cluster, trial_id: int) -> bool:
    """``isTrialTerminalFunc(trialID, -1)``: the trial is in a terminal state and its end time
    has passed (the simulated cluster is brought to now first)."""
    try:
        with sim.advanced(database, cluster) as db:
            row = (
                db.connection()
                .exec_driver_sql("SELECT state, end_time FROM trials WHERE id = ?", (trial_id,))
                .fetchone()
            )
    except Exception as err:
        raise ApiError(Code.UNKNOWN, f"failed to check the termination status: {err}") from None
    if row is None:
        raise ApiError(
            Code.UNKNOWN, "failed to check the termination status: sql: no rows in result set"
        )
    state, end_time = row
    if str(state) not in _TERMINAL:
        return False
    if end_time is None:
        return True
    return _stored_time(end_time) <= utcnow()


def _stored_time(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rfc3339(stored: Any) -> str:
    return Timestamp.from_datetime(_stored_time(stored)).rfc3339()


def _label(
    trial_id: int, name: str, agent_id: str, gpu_uuid: str = "", metric_type: str = _SYSTEM
) -> dict[str, Any]:
    """``trialv1.TrialProfilerMetricLabels`` with every field (EmitDefaults)."""
    return {
        "trialId": trial_id, "name": name, "agentId": agent_id, "gpuUuid": gpu_uuid,
        "metricType": metric_type,
    }  # fmt: skip


def _query(database: Database, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with database.transaction(write=False) as db:
        rows = db.connection().exec_driver_sql(sql, params).fetchall()
    return [tuple(row) for row in rows]


# --- GetTrialProfilerAvailableSeries ------------------------------------------------------------
@rpc("GetTrialProfilerAvailableSeries", trial_id=int)
def get_trial_profiler_available_series(ctx: Ctx) -> Iterator[RawJSON]:
    try:
        follow = ctx.query.get_bool("follow")
    except ApiError as err:
        raise GatewayError(err.code, err.message) from None
    trial_id: int = ctx.path["trial_id"]
    database, cluster = ctx.app.db, ctx.app.cluster
    ctx.db.close()  # a followed stream can last as long as the trial
    return batch_errors_wrapped(_available_series(database, cluster, trial_id, follow))


def _available_series(
    database: Database, cluster: sim.Cluster, trial_id: int, follow: bool
) -> Iterator[RawJSON]:
    # alwaysCheckTermination: after every message, end once the trial has ended, else wait
    checked = False
    while True:
        try:
            if not checked:
                _check_trial(database, trial_id)
                checked = True
            labels = available_series(database, trial_id)
        except Exception as err:
            raise _fetch_error(err) from None
        yield RawJSON(json.dumps({"labels": labels}, separators=(",", ":")).encode())
        if not follow or _trial_ended(database, cluster, trial_id):
            return
        if not database.follow_wait(AVAILABLE_SERIES_WAIT_SECONDS):
            return


def available_series(database: Database, trial_id: int) -> list[dict[str, Any]]:
    """``db.GetTrialProfilerAvailableSeries``."""
    rows = _query(
        database,
        "SELECT id, metric_group, end_time, metrics FROM system_metrics WHERE trial_id = ?",
        (trial_id,),
    )
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in rows:
        document = json.loads(row[3])
        if not isinstance(document, dict):
            continue
        for agent_id in document:
            key = (str(row[1]), agent_id)
            current = latest.get(key)
            # ORDER BY end_time DESC: the newest row per (group, agent); ids break ties
            if current is None or (_stored_time(row[2]), row[0]) > (
                _stored_time(current[2]),
                current[0],
            ):
                latest[key] = row
    labels: list[dict[str, Any]] = []
    for group, _agent in sorted(latest):
        document = json.loads(latest[(group, _agent)][3])
        for agent_id in sorted(document):
            metrics = document[agent_id]
            if isinstance(metrics, dict):
                labels.extend(_agent_labels(trial_id, group, agent_id, metrics))
    return labels


def _agent_labels(
    trial_id: int, group: str, agent_id: str, metrics: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    for key in sorted(metrics):
        value = metrics[key]
        if not isinstance(value, dict):
            yield _label(trial_id, key, agent_id)
            continue
        if group == "disk":  # per disk path: "Skip these for now because the Web UI needs..."
            continue
        for name in sorted(value):
            yield _label(trial_id, name, agent_id, key if group == "gpu" else "")


# --- GetTrialProfilerMetrics --------------------------------------------------------------------
class _Labels(WireModel):
    trial_id: int
    name: str
    agent_id: str
    gpu_uuid: str
    metric_type: str


def _labels_of(ctx: Ctx) -> _Labels:
    # validated by the gateway before the RPC: values here parse
    text = ctx.query.get_str("labels.metric_type")
    metric_type = ENUMS[_METRIC_TYPE_ENUM][1][0][0]
    for member, number in ENUMS[_METRIC_TYPE_ENUM][1]:
        if text == member or (text.lstrip("+-").isdigit() and int(text) == number):
            metric_type = member
    return _Labels(
        trial_id=ctx.path["labels.trial_id"],
        name=ctx.query.get_str("labels.name"),
        agent_id=ctx.query.get_str("labels.agent_id"),
        gpu_uuid=ctx.query.get_str("labels.gpu_uuid"),
        metric_type=metric_type,
    )


@rpc("GetTrialProfilerMetrics", **{"labels.trial_id": int})
def get_trial_profiler_metrics(ctx: Ctx) -> Iterator[RawJSON]:
    try:
        follow = ctx.query.get_bool("follow")
    except ApiError as err:
        raise GatewayError(err.code, err.message) from None
    labels = _labels_of(ctx)
    database, cluster = ctx.app.db, ctx.app.cluster
    ctx.db.close()
    return batch_errors_wrapped(_profiler_metrics(database, cluster, labels, follow))


def _profiler_metrics(
    database: Database, cluster: sim.Cluster, labels: _Labels, follow: bool
) -> Iterator[RawJSON]:
    """``api.BatchStreamProcessor`` over ``GetTrialProfilerMetricsBatches``: without ``follow``
    until a fetch comes back empty; with it, until an empty fetch finds the trial ended."""
    offset, checked = 0, False
    while True:
        try:
            if not checked:
                _check_trial(database, labels.trial_id)
                checked = True
            batches = profiler_metrics_batches(database, labels, offset, BATCH_SIZE)
        except Exception as err:
            raise _fetch_error(err) from None
        if batches:
            offset += len(batches)  # by what was returned, not by the rows read (as the master)
            for batch in batches:
                yield RawJSON(b'{"batch":' + batch + b"}")
            continue
        if not follow or _trial_ended(database, cluster, labels.trial_id):
            return
        if not database.follow_wait(METRICS_MISS_WAIT_SECONDS):
            return


def _group_of(name: str) -> str:
    """``groupFromLabelName``."""
    for prefix, group in _PREFIXES:
        if name.startswith(prefix):
            return group
    return ""


def profiler_metrics_batches(
    database: Database, labels: _Labels, offset: int, limit: int
) -> list[bytes]:
    """``GetTrialProfilerMetricsBatches``: encoded ``TrialProfilerMetricsBatch`` messages."""
    group = _group_of(labels.name)
    if group == "gpu" and labels.gpu_uuid == "":
        return _all_gpus(database, labels, offset, limit)
    path = [labels.agent_id] if labels.agent_id else []
    if path and group == "gpu":
        path.append(labels.gpu_uuid)
    rows = _query(
        database,
        "SELECT end_time, metrics FROM system_metrics WHERE trial_id = ? AND metric_group = ?"
        " ORDER BY id",
        (labels.trial_id, group),
    )
    found: list[tuple[Any, Any]] = []
    for end_time, text in rows:
        holder = _at(json.loads(text), path)
        # `<path> ? name`: the object holds the key
        if isinstance(holder, dict) and labels.name in holder:
            found.append((end_time, holder[labels.name]))
    echoed = labels.model_dump_wire()
    batches = []
    for end_time, value in found[offset : offset + limit]:
        number = _scan_float32(value, 0, "values")
        if number is None:
            # the master dereferences the NULL of a JSON null (in a goroutine: it stops)
            raise ApiError(
                Code.UNKNOWN, "runtime error: invalid memory address or nil pointer dereference"
            )
        batches.append(_batch(number, end_time, echoed))
    return batches


def _all_gpus(database: Database, labels: _Labels, offset: int, limit: int) -> list[bytes]:
    """``getTrialProfilerMetricsAllGPUs``: one row per (report, GPU of the agent), in jsonb key
    order; OFFSET/LIMIT count those rows, and rows without the value are dropped after."""
    rows = _query(
        database,
        "SELECT end_time, metrics FROM system_metrics WHERE trial_id = ? AND metric_group = 'gpu'"
        " ORDER BY id",
        (labels.trial_id,),
    )
    expanded: list[tuple[str, Any, Any]] = []
    for end_time, text in rows:
        document = json.loads(text)
        gpus = document.get(labels.agent_id) if isinstance(document, dict) else None
        if gpus is None:
            continue
        if not isinstance(gpus, dict):
            kind = "an array" if isinstance(gpus, list) else "a scalar"
            raise ApiError(Code.UNKNOWN, f"ERROR: cannot call jsonb_object_keys on {kind}")
        for gpu in sorted(gpus, key=_jsonb_key_order):
            metrics = gpus[gpu]
            value = metrics.get(labels.name) if isinstance(metrics, dict) else None
            expanded.append((gpu, value, end_time))
    batches = []
    for gpu, value, end_time in expanded[offset : offset + limit]:
        number = _scan_float32(value, 1, "value")
        if number is None:
            continue
        label = _label(labels.trial_id, labels.name, labels.agent_id, gpu)
        batches.append(_batch(number, end_time, label))
    return batches


def _jsonb_key_order(key: str) -> tuple[int, bytes]:
    # jsonb stores an object's keys shorter first, then bytewise
    encoded = key.encode()
    return (len(encoded), encoded)


def _at(document: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _scan_float32(value: Any, index: int, column: str) -> float | None:
    """``->>`` text scanned into a ``*float32`` (``database/sql.convertAssign``)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bool, int, float)):
        text = json.dumps(value)  # true, false, or the number
    else:
        text = json.dumps(value, separators=(", ", ": "))  # jsonb's text of an object or array
    try:
        return go_parse_float(text, 32)
    except (GoError, ValueError) as err:
        reason = "value out of range" if "range" in str(err) else "invalid syntax"
        raise ApiError(
            Code.UNKNOWN,
            f"querying profiler metric batch: sql: Scan error on column index {index}, name"
            f' "{column}": converting driver.Value type string ({json.dumps(text)}) to a'
            f" float32: {reason}",
        ) from None


def _batch(value: float, end_time: Any, labels: dict[str, Any]) -> bytes:
    return (
        b'{"values":[' + float32_json(value).encode() + b'],"batches":[],"timestamps":["'
        + _rfc3339(end_time).encode() + b'"],"labels":'
        + json.dumps(labels, separators=(",", ":")).encode() + b"}"
    )  # fmt: skip


def float32_json(value: float) -> str:
    """A float32 as jsonpb writes it (``json.Marshal`` of the float32): the shortest decimal that
    reads back as the same float32, in ``%f`` form, or ``%e`` below 1e-6 and from 1e21."""
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    single = struct.unpack("f", struct.pack("f", value))[0]
    if single == 0:
        return "-0" if math.copysign(1.0, single) < 0 else "0"
    text = f"{single:.8e}"  # 9 significant digits always read back
    for digits in range(1, 10):
        candidate = f"{single:.{digits - 1}e}"
        if struct.unpack("f", struct.pack("f", float(candidate)))[0] == single:
            text = candidate
            break
    decimal = Decimal(text)
    if 1e-6 <= abs(single) < 1e21:
        return format(decimal, "f")
    mantissa, exponent = text.split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{int(exponent.lstrip('+-')):02d}".replace("e-0", "e-", 1)


# --- PostTrialProfilerMetricsBatch --------------------------------------------------------------
@rpc("PostTrialProfilerMetricsBatch")
def post_trial_profiler_metrics_batch(ctx: Ctx) -> dict[str, Any]:
    """Each batch: the trial's access check, equal-sized arrays, then an insert; failures of
    single batches are collected and answered together after the others were written."""
    document = ctx.document or {}
    failures: list[str] = []
    first_code: Code | None = None
    for batch in document.get("batches") or []:
        labels = batch.get("labels") or {}
        trial_id = int(labels.get("trialId") or 0)
        _check_trial_in(ctx, trial_id)
        values = batch.get("values") or []
        batches = batch.get("batches") or []
        stamps = batch.get("timestamps") or []
        if not len(values) == len(batches) == len(stamps):
            failures.append("values, batches and timestamps should be equal sized arrays")
            first_code = first_code or Code.INVALID_ARGUMENT
            continue
        ctx.db.connection().exec_driver_sql(
            "INSERT INTO trial_profiler_metrics (\"values\", batches, ts, labels)"
            " VALUES (?, ?, ?, ?)",
            (
                json.dumps(values), json.dumps(batches), json.dumps(stamps),
                json.dumps(_protojson_labels(labels), separators=(",", ":")),
            ),
        )  # fmt: skip
    if failures:
        items = "".join(f"\t* {failure}\n" for failure in failures)
        count = f"{len(failures)} error{'s' if len(failures) > 1 else ''} occurred"
        raise ApiError(first_code or Code.UNKNOWN, f"{count}:\n{items}\n")
    return {}


def _check_trial_in(ctx: Ctx, trial_id: int) -> None:
    found = (
        ctx.db.connection()
        .exec_driver_sql("SELECT 1 FROM trials WHERE id = ?", (trial_id,))
        .fetchone()
    )
    if found is None:
        raise not_found(f"trial '{trial_id}' not found")


def _protojson_labels(labels: dict[str, Any]) -> dict[str, Any]:
    # protojson.Marshal leaves out fields at their zero value
    return {
        k: v
        for k, v in labels.items()
        if v not in (0, "", None, "PROFILER_METRIC_TYPE_UNSPECIFIED")
    }
