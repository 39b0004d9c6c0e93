"""Unmanaged trials: the routes ``determined.experimental.core_v2`` drives from a process the
cluster does not run (``api_experiment.go``: ``CreateTrial``, ``PutTrial``, ``PatchTrial``;
``trials/api_trials.go``: ``StartTrial``; ``api_runs.go``: ``RunPrepareForReporting``;
``api_trials.go``: ``ReportCheckpoint``; ``core.go``: ``POST /task-logs``).

The client's order: ``CreateExperiment`` (``unmanaged: true``, stored PAUSED), ``CreateTrial`` (or
``PutTrial`` with an external id, an upsert), ``GET /api/v1/master`` (the cluster id of its
TensorBoard paths), ``StartTrial`` (a new run: ``trialRunId`` 1, 2...), ``RunPrepareForReporting``
(the storage backend id), ``PatchTrial`` state RUNNING and then every 60 s without a state (the
heartbeat), ``ReportTrialMetrics`` and ``ReportCheckpoint`` as it trains, its stdout/stderr to
``POST /task-logs``, and ``PatchTrial`` COMPLETED (or ERROR) when it closes. Every trial change
recomputes its experiment's state from its trials (``UpdateUnmanagedExperimentStatesTx``).

Not reproduced: the master's background job that marks trials without a heartbeat for five
minutes as ERROR (``MarkLostTrials``), and the schema check of ``RunPrepareForReporting``'s
storage config (detorm.local stores it as given).
"""

from __future__ import annotations

import json
import uuid as uuidlib
from datetime import datetime
from typing import Any, Final

from sqlmodel import Session, col, select
from starlette.responses import Response

from detorm._wire import Timestamp

from .. import _tables as t
from .._app import Ctx, echo, rpc
from .._db import utcnow
from .._errors import ApiError, Code, internal, invalid_argument, not_found
from .._seed import add_trial, refresh_checkpoint_sizes, trials_in_project
from .checkpoints import go_uuid, steps_completed
from .files import echo_error_response
from .trials import trial_views

__all__ = ["update_unmanaged_experiment_state"]

_TERMINAL: Final = frozenset({"CANCELED", "COMPLETED", "ERROR"})  # model.TerminalStates
# UpdateUnmanagedExperimentStatesTx: the experiment takes its most progressed trial's state
_PROGRESS: Final = {"PAUSED": 10, "ERROR": 20, "COMPLETED": 30, "RUNNING": 40}


# --- shared ---------------------------------------------------------------------------------
def _experiment_for_edit(db: Session, experiment_id: int) -> t.ExperimentRow:
    """``getExperimentAndCheckCanDoActions(..., CanEditExperiment)``."""
    experiment = db.get(t.ExperimentRow, experiment_id)
    if experiment is None:
        raise not_found(f"experiment '{experiment_id}' not found")
    return experiment


def _experiment_of_trial(db: Session, trial_id: int) -> t.ExperimentRow:
    """``db.ExperimentByTrialID``: a missing trial is the plain ``not found``."""
    trial = db.get(t.TrialRow, trial_id)
    experiment = None if trial is None else db.get(t.ExperimentRow, trial.experiment_id)
    if experiment is None:
        raise internal("not found")
    return experiment


def update_unmanaged_experiment_state(db: Session, experiment: t.ExperimentRow) -> None:
    """``UpdateUnmanagedExperimentStatesTx``: the state of the experiment's most progressed
    trial (PAUSED < ERROR < COMPLETED < RUNNING); on a terminal state the latest trial end time
    (or now) ends it, and COMPLETED sets its progress to 1."""
    db.flush()
    trials = db.exec(select(t.TrialRow).where(t.TrialRow.experiment_id == experiment.id)).all()
    if not trials:
        return
    state = "PAUSED"
    for trial in trials:
        if trial.state in _PROGRESS and _PROGRESS[trial.state] > _PROGRESS[state]:
            state = trial.state
    if state == experiment.state:
        return
    experiment.state = state
    if state in _TERMINAL:
        ends = [trial.end_time for trial in trials if trial.end_time is not None]
        experiment.end_time = max(ends) if ends else utcnow()
        if state == "COMPLETED":
            experiment.progress = 1.0
    db.add(experiment)
    db.flush()


def _trial_view(db: Session, trial_id: int) -> dict[str, Any]:
    db.flush()
    return trial_views(db, [trial_id])[0]


# --- CreateTrial, PutTrial --------------------------------------------------------------------
def _create_trial(ctx: Ctx, request: dict[str, Any], external_id: str | None) -> dict[str, Any]:
    """``createTrialTx``: a PAUSED trial of an unmanaged experiment, upserted by external id."""
    if not request.get("unmanaged"):
        raise internal("only unmanaged trials are supported")
    experiment = _experiment_for_edit(ctx.db, int(request.get("experimentId") or 0))
    if not experiment.unmanaged:
        raise internal("trials can only be created on unmanaged experiments")
    assert experiment.id is not None
    hparams = request.get("hparams") or {}
    # the task id is "<experiment>.<external id>", or a fresh uuid
    task_id = f"{experiment.id}.{external_id if external_id is not None else uuidlib.uuid4()}"
    existing = None
    if external_id is not None:  # ON CONFLICT (experiment_id, external_run_id) DO UPDATE
        existing = ctx.db.exec(
            select(t.TrialRow).where(
                t.TrialRow.experiment_id == experiment.id,
                col(t.TrialRow.external_run_id) == external_id,
            )
        ).first()
    if existing is not None:
        assert existing.id is not None
        existing.hparams = dict(hparams)
        ctx.db.add(existing)
        return {"trial": _trial_view(ctx.db, existing.id)}
    best_trial = experiment.best_trial_id
    trial_id = add_trial(
        ctx.db, experiment, hparams=hparams, state="PAUSED", start_time=utcnow(),
        local_id=trials_in_project(ctx.db, experiment.project_id) + 1,
    )  # fmt: skip
    # UpsertTrialByExternalIDTx is not AddTrial: the experiment's best trial is left alone
    experiment.best_trial_id = best_trial
    row = ctx.db.get(t.TrialRow, trial_id)
    assert row is not None
    row.task_id, row.external_run_id = task_id, external_id
    ctx.db.add_all([row, experiment])
    return {"trial": _trial_view(ctx.db, trial_id)}


@rpc("CreateTrial")
def create_trial(ctx: Ctx) -> dict[str, Any]:
    return _create_trial(ctx, ctx.document or {}, None)


@rpc("PutTrial")
def put_trial(ctx: Ctx) -> dict[str, Any]:
    document = ctx.document or {}
    request = document.get("createTrialRequest") or {}
    if not request.get("unmanaged"):
        raise internal("only unmanaged trials are supported")
    _experiment_for_edit(ctx.db, int(request.get("experimentId") or 0))
    try:
        return _create_trial(ctx, request, str(document.get("externalTrialId") or ""))
    except ApiError as err:
        if err.code == Code.NOT_FOUND:
            raise
        raise ApiError(
            err.code, f"failed to run create trial tx: failed to create trial: {err.message}"
        ) from None


# --- StartTrial -------------------------------------------------------------------------------
@rpc("StartTrial", trial_id=int)
def start_trial(ctx: Ctx) -> dict[str, Any]:
    """A new run of the trial (RUNNING); with ``resume``, the latest completed checkpoint and its
    steps for runs after the first."""
    trial_id: int = ctx.path["trial_id"]
    try:
        experiment = _experiment_of_trial(ctx.db, trial_id)
    except ApiError as err:
        raise internal(f"failed to find experiment by trial id: {err.message}") from None
    if not experiment.unmanaged:
        raise internal("only unmanaged trials are supported")
    trial = ctx.db.get(t.TrialRow, trial_id)
    assert trial is not None
    if not (ctx.document or {}).get("resume") and trial.run_id != 0:
        raise internal("failed to start trial: trial has already been started")
    trial.run_id += 1
    trial.state = "RUNNING"
    ctx.db.add(trial)
    update_unmanaged_experiment_state(ctx.db, experiment)
    response: dict[str, Any] = {"trialRunId": trial.run_id}
    steps = 0
    if trial.run_id > 1:
        latest = _latest_checkpoint(ctx.db, trial_id)
        if latest is not None:
            response["latestCheckpoint"] = latest[0]
            steps = latest[1]
    response["stepsCompleted"] = steps
    return response


def _latest_checkpoint(db: Session, trial_id: int) -> tuple[str, int] | None:
    """``LatestCheckpointForTrialTx``: the COMPLETED checkpoint with the most steps."""
    rows = db.exec(
        select(t.CheckpointRow).where(
            t.CheckpointRow.trial_id == trial_id, t.CheckpointRow.state == "COMPLETED"
        )
    ).all()
    best: tuple[str, int] | None = None
    for row in rows:
        steps = steps_completed(row.metadata_)
        if steps is not None and (best is None or steps > best[1]):
            best = (row.uuid, steps)
    return best


# --- PatchTrial -------------------------------------------------------------------------------
@rpc("PatchTrial", trial_id=int)
def patch_trial(ctx: Ctx) -> dict[str, Any]:
    """The heartbeat (no state) and the trial's own state changes; a terminal state ends it."""
    trial_id: int = ctx.path["trial_id"]
    experiment = _experiment_of_trial(ctx.db, trial_id)
    if not experiment.unmanaged:
        raise internal("only unmanaged trials are supported")
    trial = ctx.db.get(t.TrialRow, trial_id)
    assert trial is not None
    state = (ctx.document or {}).get("state")
    if state is not None:
        trial.state = str(state).removeprefix("STATE_")
        if trial.state in _TERMINAL:
            trial.end_time = utcnow()
    ctx.db.add(trial)  # the master also records last_activity, which no answer shows
    update_unmanaged_experiment_state(ctx.db, experiment)
    return {"trial": _trial_view(ctx.db, trial_id)}


# --- RunPrepareForReporting -------------------------------------------------------------------
@rpc("RunPrepareForReporting")
def run_prepare_for_reporting(ctx: Ctx) -> dict[str, Any]:
    """The run's storage backend id (``storage.AddBackend``: one per distinct config)."""
    document = ctx.document or {}
    run_id = int(document.get("runId") or 0)
    if ctx.db.get(t.TrialRow, run_id) is None:
        raise not_found(f"trial '{run_id}' not found")
    storage = document.get("checkpointStorage")
    if storage is None:
        return {}
    key = json.dumps(storage, sort_keys=True, separators=(",", ":"))
    row = ctx.db.exec(select(t.StorageBackendRow).where(t.StorageBackendRow.config == key)).first()
    if row is None:
        row = t.StorageBackendRow(config=key)
        ctx.db.add(row)
        ctx.db.flush()
    return {"storageId": row.id}


# --- ReportCheckpoint -------------------------------------------------------------------------
@rpc("ReportCheckpoint")
def report_checkpoint(ctx: Ctx) -> dict[str, Any]:
    document = ctx.document or {}
    checkpoint = document.get("checkpoint", document)
    task_id = str(checkpoint.get("taskId") or "")
    trial = ctx.db.exec(select(t.TrialRow).where(t.TrialRow.task_id == task_id)).first()
    if trial is None or not task_id:
        # canDoActionsOnTask; detorm.local's other tasks (commands...) take no checkpoints:
        # the master's answer for them is the plain error below, after the same lookups
        if task_id and ctx.db.get(t.TaskRow, task_id) is not None:
            _converted(checkpoint)
            raise internal("can only report checkpoints on trial's tasks")
        raise not_found(f"task '{task_id}' not found")
    uuid, state, report_time = _converted(checkpoint)
    if ctx.db.get(t.CheckpointRow, uuid) is not None:
        raise internal(
            "error adding checkpoint metadata: inserting checkpoint model: ERROR: duplicate key"
            ' value violates unique constraint "checkpoints_v2_uuid_key" (SQLSTATE 23505)'
        )
    resources = {str(k): int(v) for k, v in (checkpoint.get("resources") or {}).items()}
    metadata = dict(checkpoint.get("metadata") or {})
    assert trial.id is not None
    ctx.db.add(
        t.CheckpointRow(
            uuid=uuid, trial_id=trial.id, task_id=task_id,
            allocation_id=checkpoint.get("allocationId"), report_time=report_time, state=state,
            resources=resources, metadata_=metadata, storage_id=checkpoint.get("storageId"),
            total_batches=steps_completed(metadata) or 0, size=sum(resources.values()),
        )
    )  # fmt: skip
    ctx.db.flush()
    refresh_checkpoint_sizes(ctx.db, trial.id)
    return {}


def _converted(checkpoint: dict[str, Any]) -> tuple[str, str, datetime]:
    """``checkpointV2FromProtoWithDefaults``: COMPLETED (or unspecified) only, the report time
    defaulting to now, a valid uuid."""
    state = str(checkpoint.get("state") or "STATE_UNSPECIFIED")
    if state not in ("STATE_COMPLETED", "STATE_UNSPECIFIED"):
        raise invalid_argument(f"invalid state for reported checkpoint: {state}")
    stamp = checkpoint.get("reportTime")
    moment = Timestamp.parse(str(stamp)) if stamp else None
    if moment is None or moment.timestamp() == -62135596800:  # Go's zero time
        moment = Timestamp.from_datetime(utcnow())
    try:
        uuid = go_uuid(str(checkpoint.get("uuid") or ""))
    except ValueError as err:
        raise invalid_argument(f"converting checkpoint: {err}") from None
    return uuid, "COMPLETED", moment


# --- POST /task-logs ----------------------------------------------------------------------------
_DB_LEVELS: Final = {
    "TRACE": "LOG_LEVEL_TRACE", "DEBUG": "LOG_LEVEL_DEBUG", "INFO": "LOG_LEVEL_INFO",
    "WARNING": "LOG_LEVEL_WARNING", "ERROR": "LOG_LEVEL_ERROR", "CRITICAL": "LOG_LEVEL_CRITICAL",
}  # fmt: skip


@echo("POST", "/task-logs")
def post_task_logs_echo(ctx: Ctx) -> Response:
    """``postTaskLogs``: ``[model.TaskLog]`` as JSON (snake_case), no authentication; a trial's
    task logs go where TrialLogs reads them. The answer is Echo's ``c.JSON(200, "")``."""
    try:
        entries = json.loads(ctx.raw_body or b"null")
    except json.JSONDecodeError as err:
        return echo_error_response(500, f"decoding task logs: {err.msg}")
    if entries is not None and not isinstance(entries, list):
        return echo_error_response(
            500,
            f"decoding task logs: json: cannot unmarshal {_json_kind(entries)} into Go value of"
            " type []*model.TaskLog",
        )
    trials: dict[str, int | None] = {}
    rows: list[Any] = []
    for entry in entries or []:
        if entry is None:
            continue  # a nil *model.TaskLog (the master would dereference it)
        if not isinstance(entry, dict):
            return echo_error_response(
                500,
                f"decoding task logs: json: cannot unmarshal {_json_kind(entry)} into Go value of"
                " type model.TaskLog",
            )
        task_id = str(entry.get("task_id") or "")
        if task_id not in trials:
            trial = ctx.db.exec(select(t.TrialRow.id).where(t.TrialRow.task_id == task_id)).first()
            trials[task_id] = trial if task_id else None
        stamp = entry.get("timestamp")
        values: dict[str, Any] = {
            "timestamp": Timestamp.parse(str(stamp)) if stamp else utcnow(),
            "log": str(entry.get("log") or ""), "agent_id": entry.get("agent_id"),
            "container_id": entry.get("container_id"), "rank_id": entry.get("rank_id"),
            "source": entry.get("source"), "stdtype": entry.get("stdtype"),
        }  # fmt: skip
        level = _DB_LEVELS.get(str(entry.get("level")))
        trial_id = trials[task_id]
        if trial_id is not None:
            rows.append(
                t.TrialLogRow(trial_id=trial_id, level=level or "LOG_LEVEL_UNSPECIFIED", **values)
            )
        else:
            rows.append(
                t.TaskLogRow(
                    task_id=task_id, allocation_id=entry.get("allocation_id"), level=level, **values
                )
            )
    ctx.db.add_all(rows)
    return Response(b'""\n', 200, media_type="application/json")


def _json_kind(value: Any) -> str:
    """The JSON kind ``encoding/json`` names in an ``UnmarshalTypeError``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "number"


# --- the trial's own status and metadata (Core API: train.set_status, set_metadata) ----------
@rpc("PostTrialRunnerMetadata", trial_id=int)
def post_trial_runner_metadata(ctx: Ctx) -> dict[str, Any]:
    """``train.set_status``: the runner state the Web UI shows (``UpdateTrialFields``)."""
    trial_id: int = ctx.path["trial_id"]
    trial = ctx.db.get(t.TrialRow, trial_id)
    if trial is None:
        raise not_found(f"trial '{trial_id}' not found")
    if ctx.document is not None:  # no body: no metadata message, nothing to update
        trial.runner_state = str(ctx.document.get("state") or "")
        ctx.db.add(trial)
    return {}


@rpc("GetRunMetadata", run_id=int)
def get_run_metadata(ctx: Ctx) -> dict[str, Any]:
    run_id: int = ctx.path["run_id"]
    trial = ctx.db.get(t.TrialRow, run_id)
    if trial is None:
        raise not_found(f"trial '{run_id}' not found")
    return {"metadata": trial.metadata_ if trial.metadata_ is not None else {}}


@rpc("PostRunMetadata", run_id=int)
def post_run_metadata(ctx: Ctx) -> dict[str, Any]:
    """``train.set_metadata``: the run's metadata replaced, after ``run.FlattenMetadata``'s
    checks (its limits on depth, keys, arrays, strings and the number of leaves)."""
    run_id: int = ctx.path["run_id"]
    trial = ctx.db.get(t.TrialRow, run_id)
    if trial is None:
        raise not_found(f"trial '{run_id}' not found")
    metadata = (ctx.document or {}).get("metadata") or {}
    problem = metadata_problem(metadata)
    if problem is not None:
        raise invalid_argument(f"error flattening metadata: {problem}")
    trial.metadata_ = dict(metadata)
    ctx.db.add(trial)
    return {"metadata": trial.metadata_}


_MAX_VALUE_LENGTH: Final = 5000  # run.MaxMetadataValueStringLength
_MAX_KEY_LENGTH: Final = 50
_MAX_ARRAY_LENGTH: Final = 100
_MAX_DEPTH: Final = 10
_MAX_KEYS: Final = 1000
_EXCLUDED: Final = frozenset("$.[]")


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    """``flattenMetadata``'s first error, walking as it does (a stack; Go visits a map's keys
    in random order, detorm.local in the order given, so with several faults either may be
    reported), or None."""
    stack: list[tuple[str, Any, int, bool]] = [("", metadata, 0, False)]
    leaves = 0
    while stack and leaves <= _MAX_KEYS:
        key, value, depth, in_array = stack.pop()
        if depth > _MAX_DEPTH:
            return f"metadata exceeds maximum nesting depth of {_MAX_DEPTH}"
        if len(key.encode()) > _MAX_KEY_LENGTH:
            return f"metadata key exceeds maximum length of {_MAX_KEY_LENGTH} characters"
        if _EXCLUDED & set(key):
            return "metadata keys can not contain the following character(s):  $ . [ ]"
        if isinstance(value, dict) and value and not in_array:
            stack.extend((name, item, depth + 1, False) for name, item in value.items())
            continue
        if isinstance(value, list) and value:
            if len(value) > _MAX_ARRAY_LENGTH:
                return (
                    f"metadata array exceeds maximum length of {len(value)}/{_MAX_ARRAY_LENGTH}"
                    " elements"
                )
            stack.extend((key, item, depth + 1, True) for item in value)
            continue
        # (a string that parses as a timestamp is exempt, and none is that long)
        if isinstance(value, str) and len(value.encode()) > _MAX_VALUE_LENGTH:
            return f"metadata value exceeds maximum length of {_MAX_VALUE_LENGTH} characters"
        leaves += 1
    if leaves > _MAX_KEYS:
        return f"request exceeds run metadata key count limit ofs {_MAX_KEYS}"
    return None


# --- GetTrialByExternalID -----------------------------------------------------------------------
@rpc("GetTrialByExternalID")
def get_trial_by_external_id(ctx: Ctx) -> dict[str, Any]:
    """The trial of the external experiment and trial ids ``PutExperiment`` and ``PutTrial``
    gave; none is the plain ``not found`` (``db.MatchSentinelError``)."""
    found = ctx.db.exec(
        select(t.TrialRow.id)
        .join(t.ExperimentRow, col(t.ExperimentRow.id) == t.TrialRow.experiment_id)
        .where(
            col(t.TrialRow.external_run_id) == ctx.path["external_trial_id"],
            col(t.ExperimentRow.external_experiment_id) == ctx.path["external_experiment_id"],
        )
    ).first()
    if found is None:
        raise internal("not found")
    return {"trial": _trial_view(ctx.db, found)}
