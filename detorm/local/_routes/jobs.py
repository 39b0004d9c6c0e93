"""The job queue, the resource pool and the agent (``master/internal/api_job.go``,
``job/jobservice/jobservice.go``, ``command/command_job_service.go``,
``experiment_job_service.go``, ``api_resourcepool.go``, ``api_agents.go``,
``rm/agentrm/agent_resource_manager.go``) of the simulated cluster (``_scheduler.py``).

Basic (OSS) authorization: every job is visible in full (``RBACJob.full``) and anyone may
change the queue. Oddities of the master kept here, where the real API forces them:

- UpdateJobQueue's ``aheadOf``/``behindOf`` are deprecated: the job service refuses them
  (``unexpected action: &{<job id>}``), so a job's place in its priority is its submission time
  and only ``priority``, ``weight`` and (for experiments) ``resourcePool`` change the order.
  Errors are plain (500); several are joined into one message. The master applies the updates
  that succeed before it reports the others; detorm.local writes nothing for a failed request.
- SetXPriority on a command takes any number; the queue's ``priority`` must be 1..99.
- GetJobQueueStats reports, per pool, the average time allocations that started today spent
  queued (``aggregates``: today's entry; the master's daily aggregates of earlier days come from
  a background job detorm.local does not run).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlmodel import Session, col, select

from detorm._wire import OrderBy

from .. import _scheduler as sim
from .. import _tables as t
from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import ApiError, Code, internal, not_found
from .._pagination import in_memory_page
from .._sql_lists import orm_in
from .commands import (
    RESOURCE_POOLS,
    cluster_session,
    container_view,
    registry_visible,
    set_task_priority,
    wire_time,
)
from .experiments import write_config

__all__: list[str] = []

_JOB_TYPES: Final = {
    "COMMAND": "TYPE_COMMAND", "NOTEBOOK": "TYPE_NOTEBOOK", "SHELL": "TYPE_SHELL",
    "TENSORBOARD": "TYPE_TENSORBOARD",
}  # fmt: skip
_REGISTERED_EXPERIMENT_STATES: Final = (
    "ACTIVE", "PAUSED", "STOPPING_CANCELED", "STOPPING_KILLED", "STOPPING_COMPLETED",
    "STOPPING_ERROR",
)  # fmt: skip
_JOB_STATES: Final = (
    "STATE_UNSPECIFIED",
    "STATE_QUEUED",
    "STATE_SCHEDULED",
    "STATE_SCHEDULED_BACKFILLED",
)


def number(value: float) -> float | int:
    """A double as jsonpb writes it: an integral value without a fraction."""
    return int(value) if value.is_integer() and abs(value) < 1e21 else value


def float32(value: float) -> float:
    """A float32 field as jsonpb writes it: the shortest decimal that reads back as the same
    float32."""
    single = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            return float(text)
    return float(single)


# --- jobs -----------------------------------------------------------------------------------------
def _job_of_task(
    db: Session, task: t.TaskRow, names: dict[int, str], queued: sim.QueuedJob | None
) -> dict[str, Any]:
    """``Command.ToV1Job`` with the queue's summary and slots (``updateJobQInfo``)."""
    return _job(
        queued,
        job_type=_JOB_TYPES[task.task_type],
        submission=task.start_time,
        username=names.get(task.owner_id, ""),
        user_id=task.owner_id,
        pool=task.resource_pool,
        priority=task.priority,
        weight=float(task.config.get("resources", {}).get("weight", task.weight)),
        entity_id=task.task_id,
        job_id=task.job_id,
        name=task.description,
        progress=0.0,
        workspace_id=task.workspace_id,
    )


def _experiment_workspace(db: Session, project_id: int) -> int:
    project = db.get(t.ProjectRow, project_id)
    return project.workspace_id if project is not None else 0


def _job_of_experiment(
    db: Session, experiment: t.ExperimentRow, names: dict[int, str], queued: sim.QueuedJob | None
) -> dict[str, Any]:
    """``internalExperiment.ToV1Job``."""
    config = experiment.config if isinstance(experiment.config, dict) else {}
    resources = config.get("resources") if isinstance(config.get("resources"), dict) else {}
    weight = resources.get("weight", 1) if isinstance(resources, dict) else 1
    return _job(
        queued,
        job_type="TYPE_EXPERIMENT",
        submission=experiment.start_time,
        username=names.get(experiment.owner_id, ""),
        user_id=experiment.owner_id,
        pool=experiment.resource_pool or sim.POOL,
        priority=sim.experiment_priority(experiment.priority, config),
        weight=float(weight) if isinstance(weight, int | float) else 0.0,
        entity_id=str(experiment.id),
        job_id=experiment.job_id,
        name=str(config.get("name") or experiment.name),
        progress=float(experiment.progress or 0.0),
        workspace_id=_experiment_workspace(db, experiment.project_id),
    )


def _job(
    queued: sim.QueuedJob | None, *, job_type: str, submission: datetime, username: str,
    user_id: int, pool: str, priority: int, weight: float, entity_id: str, job_id: str,
    name: str, progress: float, workspace_id: int,
) -> dict[str, Any]:  # fmt: skip
    summary = None
    if queued is not None:
        summary = {"state": queued.state, "jobsAhead": queued.jobs_ahead}
    return {
        "summary": summary,
        "type": job_type,
        "submissionTime": wire_time(submission),
        "username": username,
        "userId": user_id,
        "resourcePool": pool,
        "isPreemptible": False,
        "priority": priority,
        "weight": number(weight),
        "entityId": entity_id,
        "jobId": job_id,
        "requestedSlots": queued.requested_slots if queued else 0,
        "allocatedSlots": queued.allocated_slots if queued else 0,
        "name": name,
        "progress": number(float32(progress)),
        "workspaceId": workspace_id,
    }


def _queued_entities(
    db: Session, job_ids: Collection[str]
) -> tuple[dict[str, t.TaskRow], dict[str, t.ExperimentRow]]:
    """The tasks and the registered experiments of the jobs, by job id: two queries for the
    whole queue (two a job cost more than the rest of the list)."""
    tasks = db.exec(select(t.TaskRow).where(orm_in(t.TaskRow.job_id, job_ids))).all()
    experiments = db.exec(
        select(t.ExperimentRow).where(
            orm_in(t.ExperimentRow.job_id, job_ids),
            col(t.ExperimentRow.state).in_(_REGISTERED_EXPERIMENT_STATES),
        )
    ).all()
    return (
        {task.job_id: task for task in tasks},
        {experiment.job_id: experiment for experiment in experiments if experiment.job_id},
    )


def _queue_jobs(ctx: Ctx, db: Session) -> list[dict[str, Any]]:
    """``jobservice.GetJobs``: the pool's queued and scheduled jobs the service knows, ordered
    by place (``jobsAhead``) then id."""
    q = ctx.query
    pool = q.get_str("resource_pool") or sim.POOL
    descending = q.get_enum("order_by", OrderBy, "apiv1.OrderBy") == OrderBy.DESC
    states = [_JOB_STATES[_job_state(text)] for text in q.get_strs("states")]
    if pool not in RESOURCE_POOLS:
        raise internal(f"cannot find resource pool {pool}")
    queue = sim.job_queue(db, pool)
    names = {row.id: row.username for row in db.exec(select(t.UserRow)).all() if row.id}
    now = utcnow()
    jobs: list[dict[str, Any]] = []
    tasks, experiments = _queued_entities(db, queue)
    for job_id, queued in queue.items():
        task = tasks.get(job_id)
        if task is not None:
            if not registry_visible(task, ctx.app.cluster, now):
                continue
            job = _job_of_task(db, task, names, queued)
        else:
            experiment = experiments.get(job_id)
            if experiment is None:
                continue
            job = _job_of_experiment(db, experiment, names, queued)
        if not states or job["summary"]["state"] in states:
            jobs.append(job)
    jobs.sort(key=lambda job: (job["summary"]["jobsAhead"], job["jobId"]), reverse=descending)
    return jobs


def _job_state(text: str) -> int:
    if text in _JOB_STATES:
        return _JOB_STATES.index(text)
    try:
        number = int(text)
    except ValueError:
        raise ApiError(
            Code.INVALID_ARGUMENT, f"type mismatch, parameter: states, error: {text} is not valid"
        ) from None
    if not 0 <= number < len(_JOB_STATES):
        raise ApiError(
            Code.INVALID_ARGUMENT, f"type mismatch, parameter: states, error: {text} is not valid"
        )
    return number


def _paged(ctx: Ctx, key: str, items: list[Any], *, default_limit: int) -> dict[str, Any]:
    offset, limit = ctx.query.get_int("offset"), ctx.query.get_int("limit")
    if limit == 0:
        limit = default_limit
    page = in_memory_page(offset, limit, len(items))
    return {"pagination": page.pagination.model_dump_wire(), key: page.slice(items)}


@rpc("GetJobs")
def get_jobs(ctx: Ctx) -> dict[str, Any]:
    with cluster_session(ctx) as db:
        jobs = _queue_jobs(ctx, db)
    return _paged(ctx, "jobs", jobs, default_limit=100)


@rpc("GetJobsV2")
def get_jobs_v2(ctx: Ctx) -> dict[str, Any]:
    with cluster_session(ctx) as db:
        jobs = [{"full": job} for job in _queue_jobs(ctx, db)]
    return _paged(ctx, "jobs", jobs, default_limit=100)


def _queued_seconds_today(db: Session, pool: str, now: datetime) -> float:
    """``FetchAvgQueuedTime``'s entry for today: how long allocations that started today
    waited (their QUEUED task stats: from the job's submission to the allocation)."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    waits = [
        (sim.as_utc(row.assigned_at) - sim.as_utc(row.submitted_at)).total_seconds()
        for row in db.exec(
            select(t.AllocationRow).where(
                t.AllocationRow.resource_pool == pool,
                col(t.AllocationRow.assigned_at).is_not(None),
            )
        ).all()
        if row.assigned_at is not None
        and row.start_time is not None
        and sim.as_utc(row.start_time) >= today
        and sim.as_utc(row.assigned_at) >= today
    ]
    return sum(waits) / len(waits) if waits else 0.0


def pool_stats(db: Session, pool: str) -> dict[str, int]:
    """``JobStatsByPool``: jobs with nothing scheduled are queued, the others scheduled."""
    queue = sim.job_queue(db, pool)
    queued = sum(1 for job in queue.values() if not job.scheduled)
    return {"queuedCount": queued, "scheduledCount": len(queue) - queued}


@rpc("GetJobQueueStats")
def get_job_queue_stats(ctx: Ctx) -> dict[str, Any]:
    wanted = ctx.query.get_strs("resource_pools")
    results = []
    with cluster_session(ctx) as db:
        now = utcnow()
        for pool in RESOURCE_POOLS:
            if wanted and pool not in wanted:
                continue
            results.append(
                {
                    "stats": pool_stats(db, pool),
                    "resourcePool": pool,
                    "aggregates": [
                        {
                            "periodStart": now.astimezone(UTC).strftime("%Y-%m-%d"),
                            "seconds": float32(_queued_seconds_today(db, pool, now)),
                        }
                    ],
                }
            )
    return {"results": results}


# --- UpdateJobQueue -------------------------------------------------------------------------------
def _update(ctx: Ctx, db: Session, update: dict[str, Any]) -> str | None:
    """``applyUpdate``: the error's message, or None."""
    job_id = str(update.get("jobId", ""))
    task = db.exec(select(t.TaskRow).where(t.TaskRow.job_id == job_id)).first()
    experiment = None
    if task is not None and not registry_visible(task, ctx.app.cluster, utcnow()):
        task = None
    if task is None:
        experiment = db.exec(
            select(t.ExperimentRow).where(
                t.ExperimentRow.job_id == job_id,
                col(t.ExperimentRow.state).in_(_REGISTERED_EXPERIMENT_STATES),
            )
        ).first()
        if experiment is None or not job_id:
            return f"job {job_id} not found"
    if "priority" in update:
        priority = int(update["priority"])
        if not 1 <= priority <= 99:
            return "priority must be between 1 and 99"
        if task is not None:
            set_task_priority(db, task, priority)
        else:
            assert experiment is not None
            _set_experiment_resources(db, experiment, priority=priority)
        return None
    if "weight" in update:
        # QueueControl.weight is a float32, widened to the config's float64
        weight = struct.unpack("f", struct.pack("f", float(update["weight"])))[0]
        if task is not None:
            config = dict(task.config)
            config["resources"] = {**config["resources"], "weight": weight}
            task.config = config
            task.weight = weight
            db.add(task)
        else:
            assert experiment is not None
            _set_experiment_resources(db, experiment, weight=weight)
        return None
    if "resourcePool" in update:
        pool = str(update["resourcePool"])
        if task is not None:
            return f"setting resource pool for job type {task.task_type} is not supported"
        assert experiment is not None
        old = experiment.resource_pool or sim.POOL
        resolved = pool or sim.POOL  # the workspace's default compute pool (slots_per_trial > 0)
        if resolved not in RESOURCE_POOLS:
            return f"invalid resource pool name {pool}"
        if old == resolved:
            return f"resource pool is unchanged ({old} == {resolved})"
        _set_experiment_resources(db, experiment, resource_pool=resolved)
        return None
    for name in ("aheadOf", "behindOf"):
        if name in update:
            return f"unexpected action: &{{{update[name]}}}"
    return "unexpected action: <nil>"


def _set_experiment_resources(db: Session, experiment: t.ExperimentRow, **values: Any) -> None:
    """``setPriority``/``setWeight``/``setRP``: the experiment's config (and its columns)."""
    assert experiment.id is not None
    config = dict(experiment.config) if isinstance(experiment.config, dict) else {}
    resources = dict(config.get("resources") or {})
    resources.update(values)
    config["resources"] = resources
    write_config(db, experiment.id, config, **values)
    db.expire(experiment)


@rpc("UpdateJobQueue")
def update_job_queue(ctx: Ctx) -> dict[str, Any]:
    updates: Sequence[dict[str, Any]] = (ctx.document or {}).get("updates") or []
    with cluster_session(ctx) as db:
        errors = [error for update in updates if (error := _update(ctx, db, update)) is not None]
        if len(errors) == 1:
            raise internal(errors[0])
        if errors:
            raise internal(f"encountered the following errors: {', '.join(errors)}")
        db.flush()
        sim.schedule(db, ctx.app.cluster, utcnow())
    return {}


# --- resource pools -------------------------------------------------------------------------------
def pool_view(db: Session, cluster: sim.Cluster, pool: str) -> dict[str, Any]:
    """``createResourcePoolSummary`` of a static pool with one agent, priority scheduler."""
    requests = sim.ordered_requests(db, pool)
    holding = [r.allocation for r in requests if r.allocation.state not in ("PENDING",)]
    used = sum(a.slots for a in holding)
    aux = sum(1 for a in holding if a.slots == 0)
    return {
        "name": pool,
        "description": "",
        "type": "RESOURCE_POOL_TYPE_STATIC",
        "numAgents": 1,
        "slotsAvailable": cluster.slots,
        "slotsUsed": used,
        "slotType": "TYPE_CPU",
        "auxContainerCapacity": sim.AUX_CONTAINERS_PER_AGENT,
        "auxContainersRunning": aux,
        "defaultComputePool": pool == sim.POOL,
        "defaultAuxPool": pool == sim.POOL,
        "preemptible": False,
        "minAgents": 0,
        "maxAgents": 0,
        "slotsPerAgent": -1,
        "auxContainerCapacityPerAgent": sim.AUX_CONTAINERS_PER_AGENT,
        "schedulerType": "SCHEDULER_TYPE_PRIORITY",
        "schedulerFittingPolicy": "FITTING_POLICY_BEST",
        "location": "on-prem",
        "imageId": "",
        "instanceType": "",
        "masterUrl": "",
        "masterCertName": "",
        "startupScript": "",
        "containerStartupScript": "",
        "agentDockerNetwork": "",
        "agentDockerRuntime": "",
        "agentDockerImage": "",
        "agentFluentImage": "",
        "maxIdleAgentPeriod": 0,
        "maxAgentStartingPeriod": 0,
        "details": {
            "aws": None,
            "gcp": None,
            "priorityScheduler": {
                "preemption": False,
                "defaultPriority": sim.DEFAULT_PRIORITY,
                "k8Priorities": [],
            },
        },
        "accelerator": "",
        "stats": pool_stats(db, pool),
        "resourceManagerMetadata": {},
        "clusterName": "",
    }


@rpc("GetResourcePools")
def get_resource_pools(ctx: Ctx) -> dict[str, Any]:
    """Every pool (sorted by name); ``unbound``: those bound to no workspace, which the default
    pool never is."""
    with cluster_session(ctx) as db:
        pools = [pool_view(db, ctx.app.cluster, name) for name in sorted(RESOURCE_POOLS)]
    offset, limit = ctx.query.get_int("offset"), ctx.query.get_int("limit")
    ctx.query.get_bool("unbound")
    page = in_memory_page(offset, limit, len(pools))
    return {"resourcePools": page.slice(pools), "pagination": page.pagination.model_dump_wire()}


# --- the agent ------------------------------------------------------------------------------------
def _slots(db: Session, cluster: sim.Cluster) -> dict[str, dict[str, Any]]:
    """``getSlotsSummary``: each device, with the container holding it."""
    holder: dict[int, t.AllocationRow] = {}
    for allocation in db.exec(
        select(t.AllocationRow).where(col(t.AllocationRow.state).in_(sim.STARTED))
    ).all():
        for index in allocation.devices or []:
            holder[index] = allocation
    slots: dict[str, dict[str, Any]] = {}
    for index in range(cluster.slots):
        slots[f"/agents/{sim.AGENT_ID}/slots/{index}"] = {
            "id": str(index),
            "device": cluster.device(index),
            "enabled": True,
            "container": container_view(cluster, holder.get(index)),
            "draining": False,
        }
    return slots


def _slot_stats(slots: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``model.SummarizeSlots``."""

    def stats() -> dict[str, Any]:
        return {"states": {}, "draining": 0, "disabled": 0, "total": 0}

    by_type: dict[str, dict[str, Any]] = {}
    by_brand: dict[str, dict[str, Any]] = {}
    for slot in slots.values():
        device = slot["device"]
        for table, key in ((by_type, device["type"]), (by_brand, device["brand"])):
            entry = table.setdefault(key, stats())
            entry["total"] += 1
            if not slot["enabled"]:
                entry["disabled"] += 1
            if slot["draining"]:
                entry["draining"] += 1
            if slot["container"] is not None:
                state = slot["container"]["state"]
                entry["states"][state] = entry["states"].get(state, 0) + 1
    return {"typeStats": by_type, "brandStats": by_brand}


def agent_view(db: Session, cluster: sim.Cluster) -> dict[str, Any]:
    """``AgentSummary.ToProto``: the containers are those on slots."""
    slots = _slots(db, cluster)
    containers = {
        slot["container"]["id"]: slot["container"]
        for slot in slots.values()
        if slot["container"] is not None
    }
    return {
        "id": sim.AGENT_ID,
        "registeredTime": wire_time(cluster.booted_at),
        "slots": slots,
        "containers": containers,
        "addresses": [sim.AGENT_ADDRESS],
        "enabled": True,
        "draining": False,
        "version": sim.AGENT_VERSION,
        "resourcePools": [sim.POOL],
        "slotStats": _slot_stats(slots),
    }


def _find_agent(db: Session, ctx: Ctx, agent_id: str) -> dict[str, Any]:
    if agent_id != sim.AGENT_ID:
        raise not_found(f"agent '{agent_id}' not found")
    return agent_view(db, ctx.app.cluster)


@rpc("GetAgents")
def get_agents(ctx: Ctx) -> dict[str, Any]:
    q = ctx.query
    exclude_slots = q.get_bool("exclude_slots")
    exclude_containers = q.get_bool("exclude_containers")
    q.get_str("label")
    with cluster_session(ctx) as db:
        agent = agent_view(db, ctx.app.cluster)
    if exclude_slots:
        agent["slots"] = {}
    if exclude_containers:
        agent["containers"] = {}
    agents = [agent]  # one agent: any sort order is the same
    page = in_memory_page(q.get_int("offset"), q.get_int("limit"), len(agents))
    return {"agents": page.slice(agents), "pagination": page.pagination.model_dump_wire()}


@rpc("GetAgent")
def get_agent(ctx: Ctx) -> dict[str, Any]:
    with cluster_session(ctx) as db:
        return {"agent": _find_agent(db, ctx, ctx.path["agent_id"])}


@rpc("GetSlots")
def get_slots(ctx: Ctx) -> dict[str, Any]:
    with cluster_session(ctx) as db:
        agent = _find_agent(db, ctx, ctx.path["agent_id"])
    slots = sorted(agent["slots"].values(), key=lambda slot: str(slot["id"]))
    return {"slots": slots}


@rpc("GetSlot")
def get_slot(ctx: Ctx) -> dict[str, Any]:
    slot_id: str = ctx.path["slot_id"]
    if not re.fullmatch(r"[+-]?[0-9]+", slot_id):  # strconv.Atoi
        raise internal(f"invalid slot id: {slot_id}")
    index = int(slot_id)
    with cluster_session(ctx) as db:
        agent = _find_agent(db, ctx, ctx.path["agent_id"])
    slot = agent["slots"].get(f"/agents/{sim.AGENT_ID}/slots/{index}")
    if slot is None:
        raise internal(f"bad updateSlotDeviceView on device: {index} ({sim.AGENT_ID}): not found")
    return {"slot": slot}
