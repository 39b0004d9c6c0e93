"""Trials of created experiments, run by simulation.

An experiment created through ``CreateExperiment`` (it has a ``simulated_experiments`` row;
seeded experiments do not, and keep the states they were given) has its trials trained here, as
part of the cluster's time replay (``_scheduler.advance``): the result is a function of the
wall clock, never of who looks when.

* A live trial (``ACTIVE`` in an ``ACTIVE`` experiment) holds an allocation in the scheduler's
  queue like any task. While the allocation is ``RUNNING`` the trial trains
  ``BATCHES_PER_SECOND * time_scale`` batches per second (``detorm serve --time-scale``; 500
  batches per second at the default scale of 1, so 1,000 batches take 2 seconds), from where its
  latest checkpoint left it up to the searcher's ``max_length`` (:func:`target_batches`).
* On the way it reports as the PyTorch harness does: ``training`` metrics every
  ``scheduling_unit`` batches and at the end; ``validation`` metrics (the searcher's metric
  among them) every ``min_validation_period`` and at the end; the system metrics of
  ``core/_profiler.py`` (groups ``cpu``, ``memory``, ``disk``, ``network``; no ``gpu`` group,
  the agent's artificial slots being CPUs) with each training report; checkpoints with their
  files every ``min_checkpoint_period`` and at the end. Reports go through ``record_reports``,
  as ReportTrialMetrics does. Values are a function of the trial's hparams, id and batch
  (:func:`training_metrics`, :func:`validation_metrics`, :func:`system_metrics`).
* TensorBoard: the trial's scalars as the harness writes them (``Determined/<name>``, validation
  names prefixed ``val_``), in one tfevents file per allocation under the checkpoint storage's
  ``<cluster id>/tensorboard/experiment/<e>/trial/<t>/`` (``tensorboard/build.py``), rewritten
  from the stored reports each time it grows.
* Trial logs: the master's allocation lines (``task/allocation.go``), written by the scheduler,
  and a few lines of the simulated container.
* The end: the allocation exits with status 0, the trial is ``COMPLETED``; when every trial the
  searcher plans has ended, the experiment is ``COMPLETED`` with progress 1.0 (``ERROR`` when all
  of its trials failed: ``Shutdown{Failure}`` in ``searcher.go``). Progress is the searcher's:
  the mean over trials of the fraction of ``max_length`` trained (1 for a closed trial).
* Pause: the trial's allocation is gracefully terminated (the harness checkpoints where it is)
  and resumes from that checkpoint when the experiment is activated. Cancel and kill move the
  experiment and its trials through ``STOPPING_*`` to ``CANCELED`` (graceful for a cancel, a
  kill for a kill); ``KillTrial`` kills one trial.
* Faults (``--enable-test-faults``): a ``trial_faults`` row makes the trial's container exit with
  its code when it reaches a batch: the trial restarts from its latest checkpoint in a new
  allocation (``restarts`` + 1) until ``max_restarts`` is exceeded, then it is ``ERROR``
  (``handleAllocationExit`` in ``trial.go``).

The rate of a trial is fixed when its allocation starts (like a task's durations); the time scale
of a restarted server applies to allocations started after it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import struct
import threading
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlmodel import Session, col, select

from . import _scheduler as sched
from . import _tables as t
from ._db import Database
from ._metric_reports import Report, record_reports
from ._searchers import initial_trial_count, next_trial, planned_trials
from ._seed import add_trial, refresh_checkpoint_sizes, trials_in_project
from ._storage import CheckpointStorage, StorageUnavailable, UnsupportedStorage

__all__ = [
    "BATCHES_PER_SECOND",
    "DEFAULT_SCHEDULING_UNIT",
    "SimulationError",
    "Ticker",
    "crc32c",
    "next_events",
    "settle",
    "step",
    "system_metrics",
    "target_batches",
    "training_metrics",
    "trial_log",
    "validation_metrics",
]

BATCHES_PER_SECOND: float = 500.0
"""Batches a running trial trains per second at time scale 1 (a module attribute: tests may
change it; an allocation takes the rate when it starts)."""
DEFAULT_SCHEDULING_UNIT: Final = 100
TICK_SECONDS: float = 0.2
"""How often the :class:`Ticker` brings a live simulation to now (for followed streams)."""

_TERMINAL: Final = ("COMPLETED", "CANCELED", "ERROR")
_STOPPING_TO_TERMINAL: Final = {
    "STOPPING_COMPLETED": "COMPLETED",
    "STOPPING_CANCELED": "CANCELED",
    "STOPPING_KILLED": "CANCELED",
    "STOPPING_ERROR": "ERROR",
}  # model.StoppingToTerminalStates
_REASONS: Final = {
    "PAUSED": "user requested pause",
    "STOPPING_CANCELED": "user requested cancellation",
    "STOPPING_KILLED": "user requested kill",
    "CANCELED": "user requested kill",
}  # the InformationalReason of the state change (experiment.go, api_trials.go)


class SimulationError(ValueError):
    """An experiment config the simulation cannot train (its trial ends in ERROR)."""


# --- the config ----------------------------------------------------------------------------------
def _length(value: Any, hparams: Mapping[str, Any], config: Mapping[str, Any], what: str) -> int:
    """A ``LengthV0`` in batches: a plain integer (unitless: taken as batches), ``{batches}``,
    ``{records}`` (``Batch._from_records``: records // global_batch_size, at least 1) or
    ``{epochs}`` (epochs * ``records_per_epoch`` // global_batch_size)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, Mapping) or len(value) != 1:
        raise SimulationError(f"invalid length {what}: {json.dumps(value)}")
    ((unit, units),) = value.items()
    if not isinstance(units, int) or isinstance(units, bool) or units < 0:
        raise SimulationError(f"invalid length {what}: {json.dumps(value)}")
    if unit == "batches":
        return units
    if unit not in ("records", "epochs"):
        raise SimulationError(f"invalid length {what}: {json.dumps(value)}")
    batch_size = hparams.get("global_batch_size")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise SimulationError(f"{what} in {unit} needs the hyperparameter global_batch_size")
    if unit == "records":
        return max(units // batch_size, 1)
    per_epoch = config.get("records_per_epoch")
    if not isinstance(per_epoch, int) or per_epoch <= 0:
        raise SimulationError(f"{what} in epochs needs records_per_epoch")
    return max(units * per_epoch // batch_size, 1)


def target_batches(config: Mapping[str, Any], hparams: Mapping[str, Any]) -> int:
    """The batches a trial trains: the searcher's ``max_length`` (deprecated in 0.38 but what
    the PyTorch harness still trains to, ``core._parse_searcher_max_length``), else an ASHA
    searcher's ``max_time`` (its ``time_metric`` taken as batches)."""
    searcher = config.get("searcher")
    searcher = searcher if isinstance(searcher, Mapping) else {}
    if searcher.get("max_length") is not None:
        return _length(searcher["max_length"], hparams, config, "searcher.max_length")
    max_time = searcher.get("max_time")
    if isinstance(max_time, int) and not isinstance(max_time, bool) and max_time > 0:
        return max_time
    raise SimulationError("the searcher sets no max_length: nothing tells the trial how long")


@dataclass(frozen=True)
class _Plan:
    target: int
    unit: int
    validation_period: int
    checkpoint_period: int
    metric: str
    smaller_is_better: bool
    max_restarts: int


def _plan(config: Mapping[str, Any], hparams: Mapping[str, Any]) -> _Plan:
    searcher = config.get("searcher")
    searcher = searcher if isinstance(searcher, Mapping) else {}
    unit = config.get("scheduling_unit")
    restarts = config.get("max_restarts")

    def period(key: str) -> int:
        value = config.get(key)
        return 0 if value is None else _length(value, hparams, config, key)

    return _Plan(
        target=target_batches(config, hparams),
        unit=unit if isinstance(unit, int) and unit > 0 else DEFAULT_SCHEDULING_UNIT,
        validation_period=period("min_validation_period"),
        checkpoint_period=period("min_checkpoint_period"),
        metric=str(searcher.get("metric") or "validation_loss"),
        smaller_is_better=searcher.get("smaller_is_better") is not False,
        max_restarts=restarts if isinstance(restarts, int) and restarts >= 0 else 5,
    )


def _next_boundary(done: int, plan: _Plan, fault_at: int | None) -> int:
    """The next batch after ``done`` where something happens."""
    candidates = [plan.target]
    for period in (plan.unit, plan.validation_period, plan.checkpoint_period):
        if period > 0:
            candidates.append((done // period + 1) * period)
    if fault_at is not None and fault_at > done:
        candidates.append(fault_at)
    return min(candidates)


# --- the values reported ---------------------------------------------------------------------------
def _unit_interval(*parts: Any) -> float:
    """A number in [0, 1) that is a function of ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / float(1 << 64)


def _loss(hparams: Mapping[str, Any], trial_id: int, batches: int) -> float:
    u = _unit_interval("loss", dict(hparams), trial_id)
    decay: float = math.exp(-batches * math.log(2.0) / 400.0)  # halves every 400 batches
    return (1.0 + u) * decay + 0.05 * u


def training_metrics(hparams: Mapping[str, Any], trial_id: int, batches: int) -> dict[str, float]:
    """A simulated trial's training metrics at ``batches``: a decaying ``loss``."""
    return {"loss": _loss(hparams, trial_id, batches)}


def validation_metrics(
    hparams: Mapping[str, Any],
    trial_id: int,
    batches: int,
    metric: str = "validation_loss",
    smaller_is_better: bool = True,
) -> dict[str, float]:
    """Its validation metrics: ``validation_loss`` and the searcher's ``metric`` (a loss when
    smaller is better, else a score that grows towards 1)."""
    loss = _loss(hparams, trial_id, batches) * 1.05 + 0.01
    values = {"validation_loss": loss}
    if metric != "validation_loss":
        values[metric] = loss if smaller_is_better else 1.0 / (1.0 + loss)
    return values


def system_metrics(trial_id: int, batches: int) -> dict[str, dict[str, Any]]:
    """The system metrics of ``core/_profiler.py`` by group, keyed by agent id as it reports
    them (no ``gpu`` group: the artificial slots are CPUs)."""
    u = _unit_interval("system", trial_id, batches)
    agent = sched.AGENT_ID
    return {
        "cpu": {agent: {"cpu_util_simple": round(40.0 + 50.0 * u, 2)}},
        "memory": {agent: {"memory_free": 8_000_000_000 - int(2_000_000_000 * u)}},
        "disk": {
            agent: {
                "disk_iops": round(100.0 + 50.0 * u, 2),
                "disk_throughput_read": round(1_000_000.0 * u, 2),
                "disk_throughput_write": round(500_000.0 * u, 2),
                "/": {"disk_util": round(30.0 + 10.0 * u, 2)},
            }
        },
        "network": {
            agent: {
                "net_throughput_sent": round(20_000.0 * u, 2),
                "net_throughput_recv": round(80_000.0 * u, 2),
            }
        },
    }


# --- finding the simulated trials ----------------------------------------------------------------
_SIMULATED_TRIAL: Final = """
SELECT t.id FROM trials t JOIN simulated_experiments s ON s.experiment_id = t.experiment_id
WHERE t.task_id = ?
"""
_RUNNING: Final = """
SELECT a.allocation_id, t.id FROM allocations a
JOIN trials t ON t.task_id = a.task_id
JOIN experiments e ON e.id = t.experiment_id
JOIN simulated_experiments s ON s.experiment_id = e.id
WHERE a.state = 'RUNNING' AND t.state = 'ACTIVE' AND e.state = 'ACTIVE'
ORDER BY a.allocation_id
"""
_STOPPED: Final = """
SELECT a.allocation_id, t.id FROM allocations a
JOIN trials t ON t.task_id = a.task_id
JOIN experiments e ON e.id = t.experiment_id
JOIN simulated_experiments s ON s.experiment_id = e.id
WHERE a.state != 'TERMINATED' AND NOT (t.state = 'ACTIVE' AND e.state = 'ACTIVE')
ORDER BY a.allocation_id
"""
# CROSS JOIN makes SQLite read the (few) simulated experiments first: left to choose, it
# scanned every experiment and ran the EXISTS for each (3.5 ms a request on 2,000
# experiments, none simulated; now a few microseconds).
_LIVE: Final = """
SELECT 1 FROM simulated_experiments s CROSS JOIN experiments e ON e.id = s.experiment_id
WHERE e.state IN ('ACTIVE', 'STOPPING_CANCELED', 'STOPPING_KILLED', 'STOPPING_COMPLETED',
                  'STOPPING_ERROR')
   OR EXISTS (SELECT 1 FROM trials t JOIN allocations a ON a.task_id = t.task_id
              WHERE t.experiment_id = e.id AND a.state != 'TERMINATED')
LIMIT 1
"""


def _rows(db: Session, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db.flush()
    return [tuple(row) for row in db.connection().exec_driver_sql(sql, params).fetchall()]


def simulated_trial(db: Session, task_id: str) -> int | None:
    """The simulated trial whose task this is, if any."""
    found = _rows(db, _SIMULATED_TRIAL, (task_id,))
    return int(found[0][0]) if found else None


def trial_log(
    db: Session,
    task_id: str,
    at: datetime,
    text: str,
    *,
    level: str = "LOG_LEVEL_INFO",
    source: str = "master",
    stdtype: str = "stdout",
    allocation: t.AllocationRow | None = None,
) -> None:
    """A trial-log line of a simulated trial (nothing for any other task): the master's own
    lines carry no agent or container; the container's carry them and rank 0."""
    trial_id = simulated_trial(db, task_id)
    if trial_id is None:
        return
    row = t.TrialLogRow(
        trial_id=trial_id, timestamp=at, level=level, log=text, source=source, stdtype=stdtype
    )
    if allocation is not None:
        row.agent_id = sched.AGENT_ID
        row.container_id = allocation.container_id
        row.rank_id = 0
    db.add(row)


def _container_log(
    db: Session, allocation: t.AllocationRow, at: datetime, text: str, level: str = "INFO"
) -> None:
    trial_log(
        db, allocation.task_id, at, text + "\n", level=f"LOG_LEVEL_{level}", source="task",
        stdtype="stderr" if level == "ERROR" else "stdout", allocation=allocation,
    )  # fmt: skip


@dataclass
class _Trial:
    row: t.TrialRow
    experiment: t.ExperimentRow
    config: Mapping[str, Any]

    @property
    def id(self) -> int:
        assert self.row.id is not None
        return self.row.id


def _load(db: Session, trial_id: int) -> _Trial:
    row = db.get(t.TrialRow, trial_id)
    assert row is not None
    experiment = db.get(t.ExperimentRow, row.experiment_id)
    assert experiment is not None
    config = experiment.config
    if isinstance(config, str):
        config = json.loads(config)
    return _Trial(row, experiment, config if isinstance(config, Mapping) else {})


def _hparams(trial: _Trial) -> dict[str, Any]:
    hparams = trial.row.hparams
    return dict(hparams) if isinstance(hparams, Mapping) else {}


def _fault(db: Session, cluster: sched.Cluster, trial_id: int) -> t.TrialFaultRow | None:
    if not cluster.enable_faults:
        return None
    rows = db.exec(
        select(t.TrialFaultRow)
        .where(t.TrialFaultRow.trial_id == trial_id)
        .order_by(col(t.TrialFaultRow.at_batches), col(t.TrialFaultRow.id))
    ).all()
    for row in rows:
        if row.remaining is None or row.remaining > 0:
            return row
    return None


# --- the time replay -----------------------------------------------------------------------------
def _event_time(state: t.SimulatedTrialRow, batches: int) -> datetime | None:
    if state.batches_per_second <= 0:
        return None
    seconds = (batches - state.start_batches) / state.batches_per_second
    return sched.as_utc(state.started_at) + timedelta(seconds=seconds)


def next_events(db: Session, cluster: sched.Cluster) -> dict[str, datetime | None]:
    """The running allocations of live simulated trials, with the time of each one's next event
    (None: it makes no progress)."""
    events: dict[str, datetime | None] = {}
    for allocation_id, trial_id in _rows(db, _RUNNING):
        allocation = db.get(t.AllocationRow, allocation_id)
        assert allocation is not None
        state = db.get(t.SimulatedTrialRow, trial_id)
        if state is None or state.allocation_id != allocation_id:
            events[allocation_id] = sched.as_utc(allocation.start_time or allocation.requested_at)
            continue
        trial = _load(db, trial_id)
        try:
            plan = _plan(trial.config, _hparams(trial))
        except SimulationError:
            events[allocation_id] = sched.as_utc(state.started_at)
            continue
        fault = _fault(db, cluster, trial_id)
        boundary = _next_boundary(state.batches, plan, fault.at_batches if fault else None)
        events[allocation_id] = _event_time(state, boundary)
    return events


def step(db: Session, cluster: sched.Cluster, allocation: t.AllocationRow, at: datetime) -> bool:
    """The trial's event due at ``at``; True when its allocation exited (slots freed)."""
    found = _rows(db, "SELECT id FROM trials WHERE task_id = ?", (allocation.task_id,))
    trial = _load(db, int(found[0][0]))
    state = db.get(t.SimulatedTrialRow, trial.id)
    try:
        plan = _plan(trial.config, _hparams(trial))
    except SimulationError as err:
        _container_log(db, allocation, at, f"detorm.local simulation: {err}", "ERROR")
        return _crash(db, cluster, trial, allocation, at, code=1, final=True)
    if state is None or state.allocation_id != allocation.allocation_id:
        return _start(db, cluster, trial, allocation, plan, at)
    fault = _fault(db, cluster, trial.id)
    batches = _next_boundary(state.batches, plan, fault.at_batches if fault else None)
    if fault is not None and fault.at_batches == batches:
        if fault.remaining is not None:
            fault.remaining -= 1
            db.add(fault)
        _container_log(
            db, allocation, at,
            f"detorm.local simulation: injected fault at batch {batches}: exit code"
            f" {fault.exit_code}", "ERROR",
        )  # fmt: skip
        return _crash(db, cluster, trial, allocation, at, code=fault.exit_code)
    _train_to(db, trial, allocation, state, plan, batches, at)
    if batches >= plan.target:
        _complete(db, cluster, trial, allocation, at)
        return True
    return False


def _latest_checkpoint(db: Session, trial_id: int) -> t.CheckpointRow | None:
    return db.exec(
        select(t.CheckpointRow)
        .where(t.CheckpointRow.trial_id == trial_id, t.CheckpointRow.state == "COMPLETED")
        .order_by(
            col(t.CheckpointRow.report_time).desc(), col(t.CheckpointRow.total_batches).desc()
        )
    ).first()


def _start(
    db: Session,
    cluster: sched.Cluster,
    trial: _Trial,
    allocation: t.AllocationRow,
    plan: _Plan,
    at: datetime,
) -> bool:
    """The container starts: training resumes from the latest checkpoint (or from 0)."""
    latest = _latest_checkpoint(db, trial.id)
    resume = latest.total_batches if latest is not None else 0
    rate = BATCHES_PER_SECOND * cluster.time_scale
    state = db.get(t.SimulatedTrialRow, trial.id) or t.SimulatedTrialRow(
        trial_id=trial.id, started_at=at
    )
    state.allocation_id = allocation.allocation_id
    state.started_at = at
    state.start_batches = state.batches = resume
    state.batches_per_second = rate
    db.add(state)
    trial.row.runner_state = "training"
    db.add(trial.row)
    container = (allocation.container_id or "").replace("-", "")[:12]  # the container's hostname
    _container_log(
        db, allocation, at,
        f"Running task container on agent_id={sched.AGENT_ID}, hostname={container} with"
        " visible GPUs []",
    )  # fmt: skip
    origin = f"checkpoint {latest.uuid} at batch {resume}" if latest is not None else "batch 0"
    _container_log(
        db, allocation, at,
        f"detorm.local simulation: training from {origin} to batch {plan.target} at"
        f" {rate:g} batches per second",
    )  # fmt: skip
    if resume >= plan.target:
        _complete(db, cluster, trial, allocation, at)
        return True
    return False


def _train_to(
    db: Session,
    trial: _Trial,
    allocation: t.AllocationRow,
    state: t.SimulatedTrialRow,
    plan: _Plan,
    batches: int,
    at: datetime,
) -> None:
    """Reach ``batches``: the reports, the checkpoint and the progress due there."""
    hparams, run_id = _hparams(trial), trial.row.run_id
    end = batches >= plan.target
    reported = False
    runner_state = "training"
    if batches % plan.unit == 0 or end:
        values = training_metrics(hparams, trial.id, batches)
        record_reports(
            db, trial.id, "training", [Report(batches, values, at, run_id)], check_run_id=True
        )
        for group, metrics in system_metrics(trial.id, batches).items():
            record_reports(
                db, trial.id, group, [Report(None, metrics, at, run_id)], check_run_id=True
            )
        reported = True
    validate = plan.validation_period > 0 and batches % plan.validation_period == 0
    if validate or end:
        values = validation_metrics(hparams, trial.id, batches, plan.metric, plan.smaller_is_better)
        record_reports(
            db, trial.id, "validation", [Report(batches, values, at, run_id)], check_run_id=True
        )
        reported, runner_state = True, "validating"
    checkpoint = plan.checkpoint_period > 0 and batches % plan.checkpoint_period == 0
    if checkpoint or end:
        _checkpoint(db, trial, allocation, batches, at)
        runner_state = "checkpointing"
    state.batches = batches
    db.add(state)
    db.refresh(trial.row)
    trial.row.runner_state = runner_state
    db.add(trial.row)
    _update_progress(db, trial.experiment, at)
    if reported:
        _write_tensorboard(db, trial, allocation)


def _checkpoint(
    db: Session, trial: _Trial, allocation: t.AllocationRow, batches: int, at: datetime
) -> str:
    """A checkpoint at ``batches`` with its files in the experiment's checkpoint storage (as
    ``ReportCheckpoint`` and the harness's upload leave it)."""
    uuid = str(
        uuidlib.uuid5(
            uuidlib.NAMESPACE_OID, f"detorm.local/{trial.id}/{allocation.allocation_id}/{batches}"
        )
    )
    metadata = {
        "determined_version": sched.AGENT_VERSION,
        "format": "pickle",
        "framework": "torch",
        "steps_completed": batches,
    }
    resources = {
        "metadata.json": len(json.dumps(metadata, sort_keys=True)),
        "state_dict.pth": 4096 + 8 * batches,
    }
    db.add(
        t.CheckpointRow(
            uuid=uuid, trial_id=trial.id, task_id=trial.row.task_id,
            allocation_id=allocation.allocation_id, report_time=at, state="COMPLETED",
            resources=resources, metadata_=metadata, total_batches=batches,
            size=sum(resources.values()),
        )
    )  # fmt: skip
    db.flush()
    refresh_checkpoint_sizes(db, trial.id)
    root = _storage_root(db, trial.config)
    if root is not None:
        CheckpointStorage(root).write_checkpoint(uuid, resources, metadata)
    return uuid


def _update_progress(db: Session, experiment: t.ExperimentRow, at: datetime) -> None:
    """``searcher.Progress``: the mean over trials of the fraction trained (1 once closed)."""
    trials = db.exec(select(t.TrialRow).where(t.TrialRow.experiment_id == experiment.id)).all()
    if not trials:
        return
    fractions = []
    for row in trials:
        if row.state in _TERMINAL:
            fractions.append(1.0)
            continue
        state = db.get(t.SimulatedTrialRow, row.id)
        hparams = dict(row.hparams) if isinstance(row.hparams, Mapping) else {}
        try:
            target = target_batches(_load(db, row.id or 0).config, hparams)
        except SimulationError:
            target = 0
        done = state.batches if state is not None else row.total_batches_processed
        fractions.append(min(done / target, 1.0) if target > 0 else 0.0)
    experiment.progress = sum(fractions) / len(fractions)
    db.add(experiment)


def _complete(
    db: Session, cluster: sched.Cluster, trial: _Trial, allocation: t.AllocationRow, at: datetime
) -> None:
    _container_log(db, allocation, at, "detorm.local simulation: training finished")
    sched.exit_allocation(db, allocation, at, "exited", code=0)
    _end_trial(db, cluster, trial, "COMPLETED", at)


def _crash(
    db: Session,
    cluster: sched.Cluster,
    trial: _Trial,
    allocation: t.AllocationRow,
    at: datetime,
    *,
    code: int,
    final: bool = False,
) -> bool:
    """The container exits with ``code``: the trial restarts in a new allocation, or ends in
    ERROR once it exceeded ``max_restarts`` (or at once when ``final``)."""
    sched.exit_allocation(db, allocation, at, "exited", code=code)
    trial.row.restarts += 1
    db.add(trial.row)
    try:
        max_restarts = _plan(trial.config, _hparams(trial)).max_restarts
    except SimulationError:
        final = True
        max_restarts = 0
    if final or trial.row.restarts > max_restarts:
        _end_trial(db, cluster, trial, "ERROR", at)
        return True
    sched.request_trial_allocation(db, trial.row, trial.experiment, at)
    return True


def _end_trial(
    db: Session, cluster: sched.Cluster, trial: _Trial, state: str, at: datetime
) -> None:
    trial.row.state = state
    trial.row.end_time = trial.row.end_time or at
    db.add(trial.row)
    db.flush()
    _after_trial_closed(db, trial.experiment, at)


def _after_trial_closed(db: Session, experiment: t.ExperimentRow, at: datetime) -> None:
    """The searcher after a trial closed: it creates the trials it still plans (up to
    ``max_concurrent_trials`` running), and once all have closed the experiment ends."""
    db.refresh(experiment)
    if experiment.state == "ACTIVE":
        _create_planned_trials(db, experiment, at)
    _update_progress(db, experiment, at)
    trials = db.exec(select(t.TrialRow).where(t.TrialRow.experiment_id == experiment.id)).all()
    if not trials or any(row.state not in _TERMINAL for row in trials):
        return
    if experiment.state == "ACTIVE":
        if len(trials) < _planned(experiment):
            return
        failed = all(row.state == "ERROR" for row in trials)
        final = "ERROR" if failed else "COMPLETED"
    elif experiment.state in _STOPPING_TO_TERMINAL:
        final = _STOPPING_TO_TERMINAL[experiment.state]
    else:
        return
    experiment.state = final
    experiment.end_time = experiment.end_time or at
    if final == "COMPLETED":
        experiment.progress = 1.0  # internalExperiment.stop
    db.add(experiment)


def _planned(experiment: t.ExperimentRow) -> int:
    config = experiment.config if isinstance(experiment.config, Mapping) else {}
    return planned_trials(config)


def _create_planned_trials(db: Session, experiment: t.ExperimentRow, at: datetime) -> None:
    """The searcher's next trials while fewer than it runs at once (``initial_trial_count``:
    ``max_concurrent_trials``) are open."""
    config = experiment.config if isinstance(experiment.config, Mapping) else {}
    trials = db.exec(select(t.TrialRow).where(t.TrialRow.experiment_id == experiment.id)).all()
    running = sum(1 for row in trials if row.state not in _TERMINAL)
    created = len(trials)
    while running < initial_trial_count(config):
        hparams = next_trial(config, created)
        if hparams is None:
            return
        local_id = trials_in_project(db, experiment.project_id) + 1
        add_trial(db, experiment, hparams=hparams, state="ACTIVE", start_time=at, local_id=local_id)
        created += 1
        running += 1


# --- stops: pause, cancel, kill ------------------------------------------------------------------
def settle(db: Session, cluster: sched.Cluster, now: datetime) -> None:
    """Trials that stopped being live while their allocation runs: a pause or a cancel ends it
    gracefully (the harness checkpoints first), a kill kills it; stopping trials then reach
    their terminal state, and stopping experiments theirs."""
    for allocation_id, trial_id in _rows(db, _STOPPED):
        allocation = db.get(t.AllocationRow, allocation_id)
        assert allocation is not None
        trial = _load(db, trial_id)
        trial_state = trial.row.state
        if trial_state == "ACTIVE":  # its experiment stopped without it: paused or stopping
            trial_state = trial.experiment.state
        reason = _REASONS.get(trial_state, "user requested kill")
        graceful = trial_state in ("PAUSED", "STOPPING_CANCELED", "STOPPING_COMPLETED")
        if allocation.state not in sched.STARTED:
            sched.exit_allocation(db, allocation, now, "aborted", reason=reason)
        elif graceful:
            sched._master_log(
                db, allocation, now,
                f"gracefully terminating allocation's remaining resources (reason: {reason})",
            )  # fmt: skip
            _checkpoint_on_exit(db, trial, allocation, now)
            sched.exit_allocation(db, allocation, now, "exited", code=0)
        else:
            sched._master_log(
                db, allocation, now,
                f"forcibly killing allocation's remaining resources (reason: {reason})",
            )  # fmt: skip
            sched.exit_allocation(db, allocation, now, "killed")
    _finish_stopping(db, cluster, now)


def _checkpoint_on_exit(
    db: Session, trial: _Trial, allocation: t.AllocationRow, now: datetime
) -> None:
    """The harness checkpoints when it is preempted, unless its latest checkpoint is current."""
    state = db.get(t.SimulatedTrialRow, trial.id)
    if state is None or state.allocation_id != allocation.allocation_id:
        return
    latest = _latest_checkpoint(db, trial.id)
    if latest is not None and latest.total_batches == state.batches:
        return
    _checkpoint(db, trial, allocation, state.batches, now)


_STOPPING_TRIALS: Final = """
SELECT t.id FROM trials t JOIN simulated_experiments s ON s.experiment_id = t.experiment_id
WHERE t.state LIKE 'STOPPING_%' AND NOT EXISTS (
    SELECT 1 FROM allocations a WHERE a.task_id = t.task_id AND a.state != 'TERMINATED')
ORDER BY t.id
"""
_ENDING_EXPERIMENTS: Final = """
SELECT e.id FROM experiments e JOIN simulated_experiments s ON s.experiment_id = e.id
WHERE e.state LIKE 'STOPPING_%' OR e.state = 'ACTIVE'
ORDER BY e.id
"""


def _finish_stopping(db: Session, cluster: sched.Cluster, now: datetime) -> None:
    for (trial_id,) in _rows(db, _STOPPING_TRIALS):
        trial = _load(db, trial_id)
        trial.row.state = _STOPPING_TO_TERMINAL.get(trial.row.state, "CANCELED")
        trial.row.end_time = trial.row.end_time or now
        db.add(trial.row)
    for (experiment_id,) in _rows(db, _ENDING_EXPERIMENTS):
        experiment = db.get(t.ExperimentRow, experiment_id)
        assert experiment is not None
        _after_trial_closed(db, experiment, now)


# --- files ---------------------------------------------------------------------------------------
def _database_path(db: Session) -> str | None:
    bind: Any = db.get_bind()
    engine = getattr(bind, "engine", bind)
    path = engine.url.database
    return str(path) if path else None


def _storage_root(db: Session, config: Mapping[str, Any]) -> Path | None:
    """The checkpoint storage's directory on this machine, as the master would read it (None
    for storages detorm.local cannot reach: the trial's files are then not written)."""
    database = _database_path(db)
    if database is None:
        return None
    try:
        return Path(CheckpointStorage.of(database).prefix(config.get("checkpoint_storage")))
    except (UnsupportedStorage, StorageUnavailable, ValueError):
        return None


def tensorboard_directory(root: Path, experiment_id: int, trial_id: int) -> Path:
    """``tensorboard.build.get_sync_path`` under the storage."""
    from ._routes.master import CLUSTER_ID

    return (
        root
        / CLUSTER_ID
        / "tensorboard"
        / "experiment"
        / str(experiment_id)
        / "trial"
        / str(trial_id)
    )


_TB_ROWS: Final = """
SELECT total_batches, end_time, metric_group, metrics FROM metrics
WHERE trial_id = ? AND trial_run_id = ? AND archived = 0
  AND metric_group IN ('training', 'validation')
ORDER BY total_batches, id
"""


def _write_tensorboard(db: Session, trial: _Trial, allocation: t.AllocationRow) -> None:
    """The allocation's tfevents file, from the reports of its run (written whole, so a replay
    after a rolled-back transaction writes the same file)."""
    root = _storage_root(db, trial.config)
    if root is None:
        return
    assert allocation.start_time is not None
    started = sched.as_utc(allocation.start_time).timestamp()
    events = [_event(started, 0, file_version="brain.Event:2")]
    for batches, end_time, group, document in _rows(db, _TB_ROWS, (trial.id, trial.row.run_id)):
        body = json.loads(document)
        values = body.get("validation_metrics" if group == "validation" else "avg_metrics") or {}
        scalars = {}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if group == "validation" and not name.startswith("val"):
                name = "val_" + name
            scalars["Determined/" + name] = float(value)
        wall = sched.as_utc(datetime.fromisoformat(str(end_time))).timestamp()
        events.append(_event(wall, int(batches), scalars=scalars))
    directory = tensorboard_directory(root, trial.experiment.id or 0, trial.id)
    directory.mkdir(parents=True, exist_ok=True)
    # torch's SummaryWriter names it events.out.tfevents.<time>.<hostname>.<pid>.<n>; the
    # container's hostname is its id's first 12 characters, the harness is its pid 1 here
    hostname = (allocation.container_id or "").replace("-", "")[:12]
    name = f"events.out.tfevents.{int(started)}.{hostname}.1.0"
    temporary = directory / (name + ".tmp")
    temporary.write_bytes(b"".join(tf_record(event) for event in events))
    os.replace(temporary, directory / name)


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(
    wall_time: float,
    step_: int,
    *,
    file_version: str | None = None,
    scalars: Mapping[str, float] | None = None,
) -> bytes:
    """A ``tensorflow.Event``: wall_time (1, double), step (2, int64), file_version (3) or a
    summary (5) of ``Summary.Value``s with a tag (1) and a simple_value (2, float)."""
    out = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step_)
    if file_version is not None:
        out += _field(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field(1, _field(1, tag.encode()) + b"\x15" + struct.pack("<f", value))
            for tag, value in scalars.items()
        )
        out += _field(5, values)
    return out


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE: Final = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord framing uses it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF)


def tf_record(data: bytes) -> bytes:
    """One TFRecord: length (uint64), its masked crc, the data, the data's masked crc."""
    length = struct.pack("<Q", len(data))
    return length + _masked(length) + data + _masked(data)


# --- the ticker ----------------------------------------------------------------------------------
class Ticker:
    """Brings a live simulation to now: before a request (:meth:`advance_if_live`), and every
    :data:`TICK_SECONDS` from a thread, so that followed streams (trial logs, metrics) see trials
    progress when nothing else asks. What it writes is what any request would: the replay does
    not depend on who looks when.

    Whether anything is live is asked on a connection of its own (the stdlib's, a couple of
    microseconds), so that a cluster without simulated experiments pays nothing per request."""

    def __init__(self, database: Database, cluster: sched.Cluster) -> None:
        self.database = database
        self.cluster = cluster
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def ensure_started(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, daemon=True, name="simulation")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.advance_if_live()
            except Exception:  # keep ticking: the next request or tick replays the same
                pass

    def live(self) -> bool:
        """Whether a simulated experiment may change as time passes."""
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    str(self.database.path), timeout=30, isolation_level=None,
                    check_same_thread=False,
                )  # fmt: skip
            return self._connection.execute(_LIVE).fetchone() is not None

    def advance_if_live(self) -> None:
        """Bring the cluster to now when a simulated experiment is live."""
        if self.live():
            with sched.advanced(self.database, self.cluster):
                pass  # bringing the cluster to now is all a tick does
