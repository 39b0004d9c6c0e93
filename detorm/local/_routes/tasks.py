"""Tasks: their information, allocations and logs (``master/internal/api_tasks.go``,
``api_task.go``, ``static/srv/get_task.sql``, ``get_task_logs_fields.sql``,
``db/postgres_tasks.go``).

A task is a command, notebook, shell or TensorBoard (``tasks`` rows) or a trial (whose
``task_id`` names it; its logs are the trial's). TaskLogs is the stream TrialLogs runs underneath
(``logs.py`` holds the shared batch processor); here the access check runs in the first fetch,
after the count, so a missing task is a stream error (``failed to fetch batch``), and ``limit``
is validated first (no negative limit, none with ``follow``).

GetTask reads ``get_task.sql``: the allocations' times are ``timestamp`` columns turned into JSON
by Postgres (``2024-01-02T03:04:05.123456``, trailing zeros dropped, no zone), their ``slots`` are
not selected (0), and neither are the exit reason and status code.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlmodel import Session, col, select

from detorm._wire import LogLevel, Timestamp

from .. import _scheduler as sim
from .. import _tables as t
from .._app import Ctx, MessageBatch, RawJSON, rpc
from .._db import Database, utcnow
from .._errors import (
    ApiError,
    Code,
    GatewayError,
    batch_errors_wrapped,
    invalid_argument,
    multierror,
    not_found,
)
from . import logs
from .commands import cluster_session, wire_time

__all__ = ["allocation_summary", "find_any_task"]


# --- the task a task id names ------------------------------------------------------------------
@dataclass(frozen=True)
class AnyTask:
    """A task as ``db.TaskByID`` sees it."""

    task_id: str
    task_type: str  # COMMAND, ..., TRIAL
    start_time: datetime
    end_time: datetime | None
    trial_id: int | None = None


def find_any_task(db: Session, task_id: str) -> AnyTask | None:
    task = db.get(t.TaskRow, task_id)
    if task is not None:
        return AnyTask(task.task_id, task.task_type, task.start_time, task.end_time)
    trial = db.exec(select(t.TrialRow).where(t.TrialRow.task_id == task_id)).first()
    if trial is None or not task_id:
        return None
    return AnyTask(task_id, "TRIAL", trial.start_time, trial.end_time, trial.id)


def _task_not_found(task_id: str) -> ApiError:
    return not_found(f"task '{task_id}' not found")


# --- GetTask ----------------------------------------------------------------------------------
def pg_json_time(value: datetime | None) -> str | None:
    """A ``timestamp without time zone`` as Postgres writes it in JSON."""
    if value is None:
        return None
    value = sim.as_utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def _allocation_view(allocation: t.AllocationRow) -> dict[str, Any]:
    view: dict[str, Any] = {
        "taskId": allocation.task_id,
        "state": "STATE_QUEUED"
        if allocation.state in ("PENDING", "ASSIGNED")
        else f"STATE_{allocation.state}",
    }
    if allocation.is_ready is not None:
        view["isReady"] = allocation.is_ready
    if allocation.start_time is not None:
        view["startTime"] = pg_json_time(allocation.start_time)
    if allocation.end_time is not None:
        view["endTime"] = pg_json_time(allocation.end_time)
    view["allocationId"] = allocation.allocation_id
    view["slots"] = 0  # get_task.sql does not select it
    return view


@rpc("GetTask")
def get_task(ctx: Ctx) -> dict[str, Any]:
    task_id: str = ctx.path["task_id"]
    with cluster_session(ctx) as db:
        task = find_any_task(db, task_id)
        if task is None:
            raise _task_not_found(task_id)
        allocations = db.exec(
            select(t.AllocationRow).where(t.AllocationRow.task_id == task_id)
        ).all()
        # ORDER BY end_time DESC NULLS FIRST (ties: the order rows were written)
        ordered = sorted(
            allocations,
            key=lambda a: (a.end_time is not None, -(sim.as_utc(a.end_time).timestamp())
                           if a.end_time is not None else 0.0),
        )  # fmt: skip
        view: dict[str, Any] = {
            "taskId": task.task_id,
            "taskType": f"TASK_TYPE_{task.task_type}",
            "allocations": [_allocation_view(a) for a in ordered],
            "startTime": wire_time(task.start_time),
        }
        if task.end_time is not None:
            view["endTime"] = wire_time(task.end_time)
        return {"task": view}


@rpc("GetTaskContextDirectory")
def get_task_context_directory(ctx: Ctx) -> dict[str, Any]:
    """The context a task was launched with, as a base64 tar.gz (empty when it had none;
    ``api_experiment.go``)."""
    task_id: str = ctx.path["task_id"]
    with cluster_session(ctx) as db:
        task = find_any_task(db, task_id)
        if task is None:
            raise _task_not_found(task_id)
        row = db.get(t.TaskRow, task_id)
        context = row.context_directory if row is not None else None
        if task.trial_id is not None:  # a trial's: its experiment's model definition
            trial = db.get(t.TrialRow, task.trial_id)
            experiment = db.get(t.ExperimentRow, trial.experiment_id) if trial else None
            context = experiment.model_definition if experiment is not None else None
        return {"b64Tgz": base64.b64encode(context or b"").decode()}


# --- GetTasks ---------------------------------------------------------------------------------
def proxy_ports(task: t.TaskRow | None) -> list[dict[str, Any]]:
    """``NewProxyPortConfig``: the task's own port (its default service), then the config's."""
    if task is None:
        return []
    ports: list[dict[str, Any]] = []
    if task.proxy_port is not None:
        shell = task.task_type == "SHELL"
        ports.append(
            {"serviceId": task.task_id, "port": task.proxy_port, "proxyTcp": shell,
             "unauthenticated": shell}
        )  # fmt: skip
    for port in (task.config.get("environment") or {}).get("proxy_ports") or []:
        number = int(port.get("proxy_port") or 0)
        default = bool(port.get("default_service_id"))
        ports.append(
            {
                "serviceId": task.task_id if default else f"{task.task_id}:{number}",
                "port": number,
                "proxyTcp": bool(port.get("proxy_tcp")),
                "unauthenticated": bool(port.get("unauthenticated")),
            }
        )
    return ports


def allocation_summary(
    db: Session, cluster: sim.Cluster, allocation: t.AllocationRow, priority: int | None
) -> dict[str, Any]:
    """``AllocationSummary.Proto``: the request, its resources once scheduled."""
    resources = []
    if allocation.container_id is not None and allocation.state != "PENDING":
        resources.append(
            {
                "resourcesId": allocation.container_id,
                "resourcesType": "docker-container",
                "allocationId": allocation.allocation_id,
                "agentDevices": {
                    sim.AGENT_ID: {"devices": [cluster.device(i) for i in allocation.devices or []]}
                },
                "containerId": allocation.container_id,
            }
        )
    summary: dict[str, Any] = {
        "taskId": allocation.task_id,
        "allocationId": allocation.allocation_id,
        "name": allocation.name,
        "registeredTime": wire_time(allocation.requested_at),
        "resourcePool": allocation.resource_pool,
        "slotsNeeded": allocation.slots,
        "resources": resources,
        "schedulerType": sim.SCHEDULER_TYPE,
    }
    if priority is not None:
        summary["priority"] = priority
    summary["proxyPorts"] = proxy_ports(db.get(t.TaskRow, allocation.task_id))
    return summary


@rpc("GetTasks")
def get_tasks(ctx: Ctx) -> dict[str, Any]:
    """Every allocation the resource manager holds (queued or scheduled), by allocation id."""
    with cluster_session(ctx) as db:
        priorities = sim.priorities(db)
        rows = db.exec(
            select(t.AllocationRow).where(col(t.AllocationRow.state).in_(sim.LIVE))
        ).all()
        return {
            "allocationIdToSummary": {
                row.allocation_id: allocation_summary(
                    db, ctx.app.cluster, row, priorities.get(row.job_id)
                )
                for row in rows
            }
        }


# --- TaskLogs ---------------------------------------------------------------------------------
def task_ended(database: Database, cluster: sim.Cluster, task_id: str) -> bool:
    """``isTaskTerminalFunc``: the task ended more than the grace period ago (the cluster
    advanced first: a simulated task ends only when time is brought forward)."""
    last_log = "SELECT max(id) FROM task_logs WHERE task_id = ?"
    with database.transaction(write=True) as db:
        connection = db.connection()
        before = connection.exec_driver_sql(last_log, (task_id,)).scalar()
        sim.advance(db, cluster)
        db.flush()
        after = connection.exec_driver_sql(last_log, (task_id,)).scalar()
        task = find_any_task(db, task_id)
    if task is None:
        raise _task_not_found(task_id)
    if task.end_time is None or after != before:
        # lines the advance just wrote are read before the stream may end (the master's are
        # written as they happen, seconds before the grace period runs out)
        return False
    grace = timedelta(seconds=logs.TERMINATION_GRACE_SECONDS)
    return sim.as_utc(task.end_time) + grace < utcnow()


@rpc("TaskLogs")
def task_logs(ctx: Ctx) -> Iterator[MessageBatch]:
    task_id: str = ctx.path["task_id"]
    request = logs.parse_request(ctx, task_id)
    if request.limit < 0:
        raise invalid_argument("Limit must be >= 0")
    if request.limit != 0 and request.follow:
        raise invalid_argument("Limit cannot be specified when following")
    database, cluster = ctx.app.db, ctx.app.cluster
    with sim.advanced(database, cluster) as db:
        task = find_any_task(db, task_id)
    ctx.db.close()  # a followed stream can last as long as the task
    if task is not None and task.trial_id is not None:  # a trial's logs
        request = logs.LogsRequest(
            **{**request.__dict__, "table": "trial_logs", "trial_id": task.trial_id}
        )

    def authorize() -> None:
        if task is None:
            raise _task_not_found(task_id)

    def message(row: tuple[Any, ...]) -> RawJSON:
        return logs.task_log_message(task_id, row)

    def ended() -> bool:
        try:
            return task_ended(database, cluster, task_id)
        except ApiError as err:
            raise ApiError(err.code, f"failed to check the termination status: {err.message}")

    return batch_errors_wrapped(
        logs._batches(database, request, ended=ended, message=message, authorize=authorize)
    )


@rpc("TaskLogsFields")
def task_logs_fields(ctx: Ctx) -> Iterator[RawJSON]:
    task_id: str = ctx.path["task_id"]
    try:
        follow = ctx.query.get_bool("follow")
    except ApiError as err:
        raise GatewayError(err.code, err.message) from None
    database, cluster = ctx.app.db, ctx.app.cluster
    ctx.db.close()
    return _fields_stream(database, cluster, task_id, follow)


def _fields_stream(
    database: Database, cluster: sim.Cluster, task_id: str, follow: bool
) -> Iterator[RawJSON]:
    import json

    while True:
        with sim.advanced(database, cluster) as db:
            task = find_any_task(db, task_id)
        if task is None:
            raise ApiError(
                Code.NOT_FOUND,
                multierror(f"failed to fetch batch: task '{task_id}' not found"),
            )
        if task.trial_id is not None:
            fields = logs.log_fields(database, "trial_logs", "trial_id", task.trial_id)
            fields = {"allocationIds": [], **fields}
        else:
            fields = logs.log_fields(database, "task_logs", "task_id", task_id, allocations=True)
        yield RawJSON(json.dumps(fields, separators=(",", ":")).encode())
        if not follow or task_ended(database, cluster, task_id):
            return
        if not database.follow_wait(logs.FIELDS_POLL_SECONDS):
            return


# --- PostTaskLogs -----------------------------------------------------------------------------
_LEVELS: Final = frozenset(level.value for level in LogLevel)


@rpc("PostTaskLogs")
def post_task_logs(ctx: Ctx) -> dict[str, Any]:
    """Logs a task's own process ships (``ship_logs.py``): one task per request, no ids."""
    entries: list[dict[str, Any]] = (ctx.document or {}).get("logs") or []
    if not entries:
        raise invalid_argument("len logs must be greater than 0")
    task_id = str(entries[0].get("taskId", ""))
    with cluster_session(ctx) as db:
        task = find_any_task(db, task_id)
        if task is None:
            raise _task_not_found(task_id)
        rows: list[Any] = []
        for entry in entries:
            if entry.get("id") is not None:
                raise invalid_argument(f"ID must be nil on logs got {entry['id']} instead")
            other = str(entry.get("taskId", ""))
            if other != task_id:
                raise invalid_argument(
                    "can only post logs of a single taskID per task log request got"
                    f" '{task_id}' and '{other}'"
                )
            stamp = entry.get("timestamp")
            # TaskLogFromProto: Timestamp.AsTime() of no timestamp is the Unix epoch
            moment = Timestamp.parse(str(stamp)) if stamp else datetime(1970, 1, 1, tzinfo=UTC)
            level = entry.get("level")
            values: dict[str, Any] = {
                "timestamp": moment,
                "level": level if level in _LEVELS else None,
                "log": str(entry.get("log", "")),
                "agent_id": entry.get("agentId"),
                "container_id": entry.get("containerId"),
                "rank_id": entry.get("rankId"),
                "source": entry.get("source"),
                "stdtype": entry.get("stdtype"),
            }
            if task.trial_id is not None:
                rows.append(t.TrialLogRow(trial_id=task.trial_id, **values))
            else:
                rows.append(
                    t.TaskLogRow(task_id=task_id, allocation_id=entry.get("allocationId"), **values)
                )
        db.add_all(rows)
    return {}
