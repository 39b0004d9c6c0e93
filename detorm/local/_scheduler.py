"""The simulated cluster of detorm.local: one agent with ``--slots N`` slots (default 8) in one
resource pool, ``default``, under the master's priority scheduler without preemption.

What it reproduces (``master/internal/rm/agentrm/priority.go``, ``rm/tasklist/job.go``,
``task/allocation.go``, ``command/command.go``):

* Requests queue by priority (smaller is higher; 42 by default), then by their job's queue
  position, which is its submission time (``InitializeQueuePosition``), then by request time
  and allocation id. Zero-slot requests (TensorBoards) are scheduled apart from the others and
  take one of the agent's 100 aux containers. Within a priority every request that fits starts,
  even after one that does not; once a priority leaves a request waiting, no lower priority
  starts (backfilling needs preemption, which the default scheduler does not have).
* An allocation is ``PENDING`` (the API's ``STATE_QUEUED``) until scheduled, then ``PULLING``,
  ``STARTING`` and ``RUNNING``. The master passes through ``TERMINATING`` and reaches
  ``TERMINATED`` in one step when the container exits, so ``TERMINATING`` is never seen. A
  command runs :data:`COMMAND_SECONDS` and exits with status 0; notebooks, shells and
  TensorBoards run until killed. A kill ends a queued allocation at once ("exit before start")
  and a started one :data:`KILL_SECONDS` later (the container's SIGKILL).
* Each transition writes the master's task-log lines, timestamped when it happened.
* The tasks of a workspace that was deleted are killed (``DeleteWorkspaceNTSC``).
* Trials of ``ACTIVE`` experiments (their ``ACTIVE``/``RUNNING`` trials) hold allocations in the
  same queue (``slots_per_trial`` slots each; an allocation starts ``RUNNING``). The trials of
  created experiments train by simulation (``_simulation.py``): their reports, checkpoints,
  logs, restarts and ends are events of the same replay. Seeded experiments' trials are not
  driven: their states stay as stored.

Time is the wall clock: :func:`advance` brings the cluster to now, replaying every transition
due since in time order (so the result does not depend on who looks when). Every task, job,
agent and pool route calls it first. The durations are module attributes that tests shorten;
a task takes them when it is launched.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid as uuidlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlmodel import Session, col, select

from . import _simulation as simulation
from . import _tables as t
from ._db import Database, utcnow

__all__ = [
    "Cluster",
    "QueuedJob",
    "advance",
    "as_utc",
    "exit_allocation",
    "experiment_priority",
    "job_queue",
    "kill",
    "ordered_requests",
    "priorities",
    "request_trial_allocation",
    "schedule",
    "simulated_output",
    "truncate_ms",
    "write_log",
]

# --- the simulation's durations (seconds; module attributes so tests can shorten them) ----------
PULLING_SECONDS: float = 1.0
"""From being scheduled to ``STARTING`` (pulling the image)."""
STARTING_SECONDS: float = 1.0
"""From ``STARTING`` to ``RUNNING``."""
COMMAND_SECONDS: float = 3.0
"""How long a simulated command runs before it exits with status 0."""
KILL_SECONDS: float = 0.5
"""From a kill to the exit of a started allocation's container."""
TERMINATED_RETENTION_SECONDS: float = 24 * 3600.0
"""``terminatedDuration``: how long the master keeps an exited command, notebook, shell or
TensorBoard (then it is gone from the lists and its routes answer 404)."""

# --- the cluster ---------------------------------------------------------------------------------
DEFAULT_SLOTS: Final = 8
POOL: Final = "default"
AGENT_ID: Final = "detorm-local"
AGENT_VERSION: Final = "0.38.1"
AGENT_ADDRESS: Final = "127.0.0.1"
AUX_CONTAINERS_PER_AGENT: Final = 100  # max_aux_containers_per_agent
DEFAULT_PRIORITY: Final = 42  # config.DefaultSchedulingPriority
SCHEDULER_TYPE: Final = "priority"

LIVE: Final = ("PENDING", "ASSIGNED", "PULLING", "STARTING", "RUNNING", "TERMINATING")
"""Allocation states the resource manager still holds (its task list)."""
STARTED: Final = ("PULLING", "STARTING", "RUNNING", "TERMINATING")
_HOLDING: Final = ("ASSIGNED", *STARTED)

EXITED_OK: Final = "allocation exited successfully"
"""``AllocationExited.String()`` when the allocation exited without an error (also after a
kill)."""
_KILLED_137: Final = (
    "resources failed with non-zero exit code: container failed with non-zero exit code: 137"
    " (exit code 137)"
)


def failure(code: int) -> str:
    """``ResourcesFailedError.Error()`` of a container that exited with ``code``."""
    return (
        "resources failed with non-zero exit code: container failed with non-zero exit code:"
        f" {code} (exit code {code})"
    )


@dataclass
class Cluster:
    """The simulated agent and pool of one detorm.local app."""

    slots: int = DEFAULT_SLOTS
    execute_commands: bool = False
    booted_at: datetime = field(default_factory=utcnow)
    time_scale: float = 1.0  # simulated trials train BATCHES_PER_SECOND * time_scale batches/s
    enable_faults: bool = False  # --enable-test-faults: simulated trials' faults apply
    # What the last advance in a transaction of its own left (see :func:`advanced`).
    settled: Settled | None = field(default=None, repr=False, compare=False)

    def settings(self) -> tuple[int, float, bool]:
        """What an advance reads besides the database and the clock."""
        return (self.slots, self.time_scale, self.enable_faults)

    def device(self, index: int) -> dict[str, Any]:
        """An artificial slot (``detect.go``: ``--artificial-slots``): a CPU, brand
        ``Artificial``, a UUID stable for the agent's id."""
        return {
            "id": index,
            "brand": "Artificial",
            "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"{AGENT_ID}/slots/{index}")),
            "type": "TYPE_CPU",
        }


@dataclass(frozen=True)
class Settled:
    """An advance's outcome that stays true until the database or the cluster's settings change
    or the clock reaches the next transition: advancing again would replay nothing."""

    data_version: int  # Database.data_version() read before the advance's transaction began
    settings: tuple[int, float, bool]
    upcoming: datetime | None  # the next transition due by itself (None: none)

    def covers(self, data_version: int, cluster: Cluster, now: datetime) -> bool:
        return (
            data_version == self.data_version
            and cluster.settings() == self.settings
            and (self.upcoming is None or now < self.upcoming)
        )


def as_utc(value: datetime) -> datetime:
    """A stored datetime (naive UTC) as an aware one."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def truncate_ms(value: datetime) -> datetime:
    """``time.Truncate(time.Millisecond)``."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# --- task logs -----------------------------------------------------------------------------------
def write_log(
    db: Session,
    task_id: str,
    at: datetime,
    text: str,
    *,
    level: str | None = "LOG_LEVEL_INFO",
    source: str = "master",
    stdtype: str = "stdout",
    allocation: t.AllocationRow | None = None,
) -> None:
    """One task-log line. The master's own lines (``allocation.sendTaskLog``) carry no
    allocation, agent or container and end with a newline; a task's lines (``ship_logs.py``)
    carry them all."""
    row = t.TaskLogRow(
        task_id=task_id, timestamp=at, level=level, log=text, source=source, stdtype=stdtype
    )
    if allocation is not None:
        row.allocation_id = allocation.allocation_id
        row.agent_id = AGENT_ID
        row.container_id = allocation.container_id
    db.add(row)


def _master_log(
    db: Session, allocation: t.AllocationRow, at: datetime, text: str, level: str = "INFO"
) -> None:
    if _task(db, allocation) is not None:
        write_log(db, allocation.task_id, at, text + "\n", level=f"LOG_LEVEL_{level}")
    else:  # a trial's: only simulated trials have their logs written
        simulation.trial_log(db, allocation.task_id, at, text + "\n", level=f"LOG_LEVEL_{level}")


def _task(db: Session, allocation: t.AllocationRow) -> t.TaskRow | None:
    return db.get(t.TaskRow, allocation.task_id)


# --- advancing time ------------------------------------------------------------------------------
def _started_at(allocation: t.AllocationRow) -> datetime:
    assert allocation.start_time is not None
    return as_utc(allocation.start_time)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=max(value, 0.0))


def _next_event(allocation: t.AllocationRow) -> datetime | None:
    """When the allocation next changes state by itself (None: not until something happens)."""
    if allocation.state not in STARTED:
        return None
    start = _started_at(allocation)
    natural: datetime | None = None
    if allocation.state == "PULLING":
        natural = start + _seconds(allocation.pull_seconds)
    elif allocation.state == "STARTING":
        natural = start + _seconds(allocation.pull_seconds + allocation.start_seconds)
    elif allocation.state == "RUNNING" and allocation.run_seconds is not None:
        natural = start + _seconds(
            allocation.pull_seconds + allocation.start_seconds + allocation.run_seconds
        )
    kill_at = _opt_utc(allocation.kill_at)
    if kill_at is None:
        return natural
    return kill_at if natural is None else min(kill_at, natural)


# How long one live advance may replay before it lets the request (or tick) that asked go on.
# A simulation whose transitions cost more CPU than the time they cover (a fast --time-scale on
# a busy machine) would otherwise replay for ever inside one write transaction, and every
# request would wait behind it. Past the budget the cluster stops at the last transition
# replayed: simulated time lags the wall clock, and the next advance goes on from there.
LIVE_REPLAY_SECONDS: float = 0.25


def advance(db: Session, cluster: Cluster, now: datetime | None = None) -> datetime:
    """Bring the cluster to ``now`` (default: the wall clock): every transition due, in time
    order, with a scheduling pass after each exit; then the trials' requests and a last pass.
    Returns the time it advanced to: ``now``, or, for the wall clock, an earlier time when
    replaying took longer than :data:`LIVE_REPLAY_SECONDS` (an explicit ``now`` is always
    reached)."""
    return _advance(db, cluster, now)[0]


def _advance(
    db: Session, cluster: Cluster, now: datetime | None
) -> tuple[datetime, datetime | None]:
    """:func:`advance`, and the time of the next transition due by itself after it."""
    deadline = None if now is not None else time.monotonic() + LIVE_REPLAY_SECONDS
    now, _ = _replay(db, cluster, utcnow() if now is None else now, deadline)
    _reconcile_workspaces(db, cluster, now)
    simulation.settle(db, cluster, now)
    _reconcile_trials(db, now)
    schedule(db, cluster, now)
    _, upcoming = _replay(db, cluster, now)  # what the last pass started, with durations of 0
    db.flush()
    return now, upcoming


@contextmanager
def advanced(database: Database, cluster: Cluster) -> Iterator[Session]:
    """A write transaction of its own in which the cluster has been brought to now, for a
    request that reads what time changes (task lists, a task's end).

    Most such requests find nothing to replay: when nothing was committed to the database
    since an advance that reached now, the settings are the same and no transition has come
    due, the replay (a dozen queries) is skipped. What allows the skip is recorded only once
    the transaction committed; a transaction of the caller's that wrote first must call
    :func:`advance`, which never skips."""
    version = database.data_version()  # before the transaction: a commit after it shows
    with database.transaction(write=True) as db:
        settled = cluster.settled
        outcome = None
        if settled is None or not settled.covers(version, cluster, utcnow()):
            # cut short by the replay's time budget, upcoming is a time already reached: the
            # next request replays on
            _, upcoming = _advance(db, cluster, None)
            outcome = Settled(version, cluster.settings(), upcoming)
        yield db
    if outcome is not None:
        cluster.settled = outcome


def _replay(
    db: Session, cluster: Cluster, now: datetime, deadline: float | None = None
) -> tuple[datetime, datetime | None]:
    """Every transition due by ``now``, in time order, with a scheduling pass after each exit.
    Returns ``now``, or the time of the last transition replayed when ``deadline`` (a
    ``time.monotonic()``) passed first; and when the next transition falls due (None: none
    will by itself; the time reached when cut short)."""
    while True:
        trials = simulation.next_events(db, cluster)  # simulated trials' allocations
        due: list[tuple[datetime, t.AllocationRow]] = []
        upcoming: datetime | None = None
        for allocation in db.exec(
            select(t.AllocationRow).where(col(t.AllocationRow.state).in_(STARTED))
        ).all():
            if allocation.allocation_id in trials:
                when = trials[allocation.allocation_id]
            else:
                when = _next_event(allocation)
            if when is not None and when <= now:
                due.append((when, allocation))
            elif when is not None and (upcoming is None or when < upcoming):
                upcoming = when
        if not due:
            return now, upcoming
        first = min(when for when, _ in due)
        freed = False
        for when, allocation in sorted(due, key=lambda pair: (pair[0], pair[1].allocation_id)):
            if when != first:
                continue
            if allocation.allocation_id in trials:
                freed |= simulation.step(db, cluster, allocation, first)
            else:
                freed |= _step(db, cluster, allocation, first)
        db.flush()
        if freed:
            schedule(db, cluster, first)
        if deadline is not None and time.monotonic() > deadline:
            return first, first


def _step(db: Session, cluster: Cluster, allocation: t.AllocationRow, at: datetime) -> bool:
    """The allocation's transition due at ``at``; True when it exited (slots freed)."""
    kill_at = _opt_utc(allocation.kill_at)
    if kill_at is not None and kill_at <= at:
        exit_allocation(db, allocation, at, "killed")
        return True
    if allocation.state == "PULLING":
        allocation.state = "STARTING"
    elif allocation.state == "STARTING":
        _running(db, cluster, allocation, at)
    elif allocation.state == "RUNNING":
        exit_allocation(db, allocation, at, "exited", code=0)
        return True
    db.add(allocation)
    return False


def _running(db: Session, cluster: Cluster, allocation: t.AllocationRow, at: datetime) -> None:
    allocation.state = "RUNNING"
    task = _task(db, allocation)
    if task is None:
        return
    name = allocation.name
    _master_log(db, allocation, at, f"Resources for {name} have started")
    if task.task_type != "COMMAND":
        # check_ready_logs.py reports the service ready (AllocationReady -> SetReady)
        _master_log(db, allocation, at, f"Service of {name} is available")
        allocation.is_ready = True
        return
    if task.execute:
        return  # the runner starts the process and reports its exit
    entrypoint = _user_entrypoint(task.config)
    trace = entrypoint[0] if len(entrypoint) == 1 else shlex.join(entrypoint)
    write_log(
        db, task.task_id, at, f"+ {trace}\n", level=None, stdtype="stderr",
        source="task", allocation=allocation,
    )  # fmt: skip
    for line in simulated_output(entrypoint):
        write_log(
            db, task.task_id, at, line + "\n", level=None, source="task", allocation=allocation
        )


def _user_entrypoint(config: Any) -> list[str]:
    """The entrypoint the user gave (the master puts ``command-entrypoint.sh`` in front)."""
    entrypoint = config.get("entrypoint") if isinstance(config, dict) else None
    if not isinstance(entrypoint, list):
        return []
    words = [str(word) for word in entrypoint]
    return words[1:] if words and words[0] == COMMAND_ENTRYPOINT else words


COMMAND_ENTRYPOINT: Final = "/run/determined/command-entrypoint.sh"


def simulated_output(entrypoint: Sequence[str]) -> list[str]:
    """What a simulated command prints: the words of an ``echo`` (as one entrypoint string, the
    entrypoint script runs it with ``sh -c``), nothing for anything else."""
    words = list(entrypoint)
    if len(words) == 1:
        try:
            words = shlex.split(words[0])
        except ValueError:
            return []
    if not words or words[0] != "echo":
        return []
    return " ".join(words[1:]).split("\n")


def exit_allocation(
    db: Session,
    allocation: t.AllocationRow,
    at: datetime,
    how: str,
    *,
    code: int = 0,
    reason: str = "user requested kill",
) -> None:
    """The allocation's end (``resourcesStateChanged`` -> ``terminated`` -> ``finalize``):
    ``how`` is ``exited`` (the container exited with ``code``), ``killed`` (after a kill) or
    ``aborted`` (killed before it started)."""
    name = allocation.name
    error: str | None = None
    level = "INFO"
    if how == "aborted":
        exit_reason = f"allocation aborted after exit before start: {reason}"
    elif how == "killed":
        _master_log(db, allocation, at, f"killed: {_KILLED_137}")
        exit_reason = "allocation killed after all resources exited: resources were killed"
    elif code == 0:
        stopped = "resources exited successfully with a zero exit code"
        _master_log(db, allocation, at, stopped)
        exit_reason = f"allocation stopped early after all resources exited: {stopped}"
    else:
        error = failure(code)
        _master_log(db, allocation, at, f"crashed: {error}", "ERROR")
        exit_reason = f"allocation failed: {error}"
        level = "ERROR"
        allocation.status_code = code
    allocation.state = "TERMINATED"
    allocation.exit_reason = exit_reason
    allocation.exit_err = error
    allocation.kill_at = None
    if allocation.start_time is not None:  # markResourcesReleased
        allocation.end_time = at
    db.add(allocation)
    _master_log(db, allocation, at, f"{name} was terminated: {exit_reason}", level)
    task = _task(db, allocation)
    if task is not None:  # Command.OnExit: CompleteTask
        task.end_time = at
        task.exit_status = error or EXITED_OK
        db.add(task)


def kill(
    db: Session,
    cluster: Cluster,
    task: t.TaskRow,
    now: datetime,
    reason: str = "user requested kill",
) -> None:
    """``KillNTSC``: nothing once the task completed; a queued allocation exits at once, a
    started one is killed (its container exits :data:`KILL_SECONDS` later; a kill repeated
    before then does nothing, the master's kill cooldown)."""
    if task.end_time is not None:
        return
    allocation = db.exec(
        select(t.AllocationRow).where(
            t.AllocationRow.task_id == task.task_id, col(t.AllocationRow.state).in_(LIVE)
        )
    ).first()
    if allocation is None:
        return
    if allocation.state not in STARTED:
        exit_allocation(db, allocation, now, "aborted", reason=reason)
        schedule(db, cluster, now)
        return
    if allocation.kill_at is not None:
        return
    _master_log(
        db, allocation, now, f"forcibly killing allocation's remaining resources (reason: {reason})"
    )
    allocation.kill_at = now + _seconds(KILL_SECONDS)
    db.add(allocation)


# --- scheduling ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Request:
    allocation: t.AllocationRow
    priority: int

    def key(self) -> tuple[int, int, datetime, datetime, str]:
        """``SortTasksWithPosition``: priority, queue position (the job's submission time in
        microseconds), then ``allocationRequestComparator``."""
        submitted = as_utc(self.allocation.submitted_at)
        position = int(submitted.timestamp() * 1_000_000)
        return (
            self.priority,
            position,
            submitted,
            as_utc(self.allocation.requested_at),
            self.allocation.allocation_id,
        )


def priorities(db: Session) -> dict[str, int]:
    """The priority of every job with a live allocation: its group's priority."""
    found: dict[str, int] = {}
    for job_id, priority in db.exec(select(t.TaskRow.job_id, t.TaskRow.priority)).all():
        found[job_id] = priority
    rows = db.exec(
        select(t.ExperimentRow.job_id, t.ExperimentRow.priority, t.ExperimentRow.config).where(
            t.ExperimentRow.state == "ACTIVE"
        )
    ).all()
    for job_id, stored, config in rows:
        found[job_id] = experiment_priority(stored, config)
    return found


def experiment_priority(priority: int | None, config: Any) -> int:
    """``config.ReadPriority``: the config's ``resources.priority``, else the pool's default."""
    if priority is not None:
        return priority
    resources = config.get("resources") if isinstance(config, dict) else None
    value = resources.get("priority") if isinstance(resources, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_PRIORITY


def ordered_requests(db: Session, pool: str = POOL) -> list[_Request]:
    """The pool's live allocations in the scheduler's order."""
    jobs = priorities(db)
    rows = db.exec(
        select(t.AllocationRow).where(
            col(t.AllocationRow.state).in_(LIVE), t.AllocationRow.resource_pool == pool
        )
    ).all()
    requests = [_Request(row, jobs.get(row.job_id, DEFAULT_PRIORITY)) for row in rows]
    requests.sort(key=_Request.key)
    return requests


def _used_devices(requests: Sequence[_Request]) -> set[int]:
    used: set[int] = set()
    for request in requests:
        if request.allocation.state in _HOLDING:
            used.update(request.allocation.devices or [])
    return used


def schedule(db: Session, cluster: Cluster, at: datetime) -> None:
    """One pass of ``prioritySchedule`` at ``at``: zero-slot and other requests apart, each by
    priority; a priority that leaves a request waiting stops every lower one."""
    requests = ordered_requests(db)
    used = _used_devices(requests)
    free = [index for index in range(cluster.slots) if index not in used]
    aux_free = AUX_CONTAINERS_PER_AGENT - sum(
        1 for r in requests if r.allocation.state in _HOLDING and r.allocation.slots == 0
    )
    for zero_slots in (False, True):
        pending = [
            r for r in requests
            if r.allocation.state == "PENDING" and (r.allocation.slots == 0) == zero_slots
        ]  # fmt: skip
        backfilling = False
        for priority in sorted({r.priority for r in pending}):
            waiting = False
            for request in (r for r in pending if r.priority == priority):
                slots = request.allocation.slots
                fits = aux_free > 0 if slots == 0 else slots <= len(free)
                if not fits:
                    waiting = True
                    continue
                devices = free[:slots]
                free = free[slots:]
                if slots == 0:
                    aux_free -= 1
                if not backfilling:  # without preemption nothing is backfilled
                    _assign(db, request.allocation, devices, at)
            backfilling = backfilling or waiting


def _assign(db: Session, allocation: t.AllocationRow, devices: list[int], at: datetime) -> None:
    """ResourcesAllocated, then the container's first state change (``markResourcesStarted``)."""
    allocation.assigned_at = at
    allocation.start_time = truncate_ms(at)
    allocation.devices = devices
    allocation.container_id = str(uuidlib.uuid4())
    if _task(db, allocation) is None:  # a trial: its container starts at once
        allocation.state = "RUNNING"
        _master_log(db, allocation, at, f"{allocation.name} was assigned to an agent")
        _master_log(db, allocation, at, f"Resources for {allocation.name} have started")
    else:
        allocation.state = "PULLING"
        _master_log(db, allocation, at, f"{allocation.name} was assigned to an agent")
    db.add(allocation)


# --- deleted workspaces --------------------------------------------------------------------------
def _reconcile_workspaces(db: Session, cluster: Cluster, now: datetime) -> None:
    """``DeleteWorkspaceNTSC``: the tasks of a workspace that is gone are killed."""
    orphans = db.exec(
        select(t.TaskRow).where(
            col(t.TaskRow.end_time).is_(None),
            col(t.TaskRow.workspace_id).not_in(select(t.WorkspaceRow.id)),
        )
    ).all()
    for task in orphans:
        kill(db, cluster, task, now, reason="user requested workspace delete")


# --- trials' allocations -------------------------------------------------------------------------
_LIVE_TRIALS: Final = """
SELECT t.id, t.task_id, t.start_time, e.id, e.job_id, e.start_time, e.config, e.resource_pool
FROM trials t JOIN experiments e ON e.id = t.experiment_id
WHERE e.state = 'ACTIVE' AND t.state IN ('ACTIVE', 'RUNNING') AND NOT e.unmanaged
  AND t.task_id != '' AND e.job_id != ''
"""
_TRIAL_ALLOCATIONS: Final = """
SELECT a.allocation_id, a.task_id FROM allocations a
WHERE a.state != 'TERMINATED' AND a.task_id IN (SELECT task_id FROM trials)
"""


def _reconcile_trials(db: Session, now: datetime) -> None:
    """Each live trial of an active experiment holds one live allocation; the others hold
    none (the experiment paused, ended, or was killed)."""
    connection = db.connection()
    live = {row[1]: row for row in connection.exec_driver_sql(_LIVE_TRIALS).fetchall()}
    held = {task: alloc for alloc, task in connection.exec_driver_sql(_TRIAL_ALLOCATIONS)}
    for task_id, allocation_id in held.items():
        if task_id not in live:
            row = db.get(t.AllocationRow, allocation_id)
            assert row is not None
            row.state = "TERMINATED"
            row.end_time = now if row.start_time is not None else None
            row.exit_reason = "allocation stopped early after all resources exited"
            db.add(row)
    for task_id, (
        trial_id,
        _,
        trial_start,
        exp_id,
        job_id,
        exp_start,
        config,
        pool,
    ) in live.items():
        if task_id in held:
            continue
        _request(
            db, task_id, trial_id, _stored(trial_start), exp_id, job_id, _stored(exp_start),
            config, pool, now,
        )  # fmt: skip
    db.flush()


def request_trial_allocation(
    db: Session, trial: t.TrialRow, experiment: t.ExperimentRow, at: datetime
) -> None:
    """A trial's next allocation, requested at ``at`` (a simulated trial's restart)."""
    assert trial.id is not None and experiment.id is not None
    _request(
        db, trial.task_id, trial.id, as_utc(trial.start_time), experiment.id, experiment.job_id,
        as_utc(experiment.start_time), experiment.config, experiment.resource_pool, at,
    )  # fmt: skip
    db.flush()


def _request(
    db: Session,
    task_id: str,
    trial_id: int,
    trial_start: datetime,
    exp_id: int,
    job_id: str,
    exp_start: datetime,
    config: Any,
    pool: str | None,
    now: datetime,
) -> None:
    """``maybeAllocateTask``: the allocation ``<task id>.<n>``; a simulated trial's run id
    counts it (``t.runID++``) and its log says so."""
    count = len(
        db.exec(select(t.AllocationRow.allocation_id).where(t.AllocationRow.task_id == task_id))
        .all()
    )  # fmt: skip
    document = json.loads(config) if isinstance(config, str) else config
    resources = document.get("resources") if isinstance(document, dict) else None
    slots = resources.get("slots_per_trial", 1) if isinstance(resources, dict) else 1
    requested = trial_start if count == 0 else now
    allocation = t.AllocationRow(
        allocation_id=f"{task_id}.{count + 1}",
        task_id=task_id,
        job_id=job_id,
        name=f"Trial {trial_id} (Experiment {exp_id})",
        resource_pool=pool or POOL,
        slots=slots if isinstance(slots, int) and slots >= 0 else 1,
        requested_at=requested,
        submitted_at=exp_start,
    )
    db.add(allocation)
    if simulation.simulated_trial(db, task_id) is not None:
        trial = db.get(t.TrialRow, trial_id)
        assert trial is not None
        trial.run_id += 1
        db.add(trial)
        _master_log(
            db,
            allocation,
            requested,
            f"Scheduling {allocation.name} (id: {allocation.allocation_id})",
        )


def _stored(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return as_utc(moment)


# --- the job queue -------------------------------------------------------------------------------
@dataclass
class QueuedJob:
    """``sproto.RMJobInfo``: a job's place and slots in the queue."""

    job_id: str
    jobs_ahead: int
    scheduled: bool = False
    requested_slots: int = 0
    allocated_slots: int = 0

    @property
    def state(self) -> str:
        return "STATE_SCHEDULED" if self.scheduled else "STATE_QUEUED"


def job_queue(db: Session, pool: str = POOL) -> dict[str, QueuedJob]:
    """``ReduceToJobQInfo`` over the pool's live allocations in the scheduler's order."""
    jobs: dict[str, QueuedJob] = {}
    for request in ordered_requests(db, pool):
        allocation = request.allocation
        job = jobs.get(allocation.job_id)
        if job is None:
            job = jobs[allocation.job_id] = QueuedJob(allocation.job_id, len(jobs))
        job.requested_slots += allocation.slots
        if allocation.state != "PENDING":
            job.scheduled = True
            job.allocated_slots += allocation.slots
    return jobs
