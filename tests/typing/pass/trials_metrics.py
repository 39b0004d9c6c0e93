"""Trial actions, metric groups and profiler metrics, typed in both APIs."""

from __future__ import annotations

from datetime import datetime

import detorm
import detorm.aio
from detorm import BulkResult, ProfilerSample, ProfilerSeries, Trial


def bulk_actions(session: detorm.Session, project: detorm.Project) -> list[int]:
    query = Trial.query(session).filter(state="COMPLETED")
    archived: BulkResult[int] = query.archive()
    moved = query.move_to(project, skip_multitrial=True)
    failed: dict[int, str] = query.delete().raise_for_errors().failed
    return archived.succeeded + moved.succeeded + list(failed)


def kill_one(trial: Trial) -> None:
    trial.kill()
    trial.experiment.trials.filter(state="RUNNING").kill().raise_for_errors()


def names(trial: Trial) -> list[str]:
    groups: dict[str, list[str]] = trial.metric_groups()
    by_group: dict[str, list[str]] = trial.experiment.metric_names()
    return groups.get("inference", []) + by_group.get("validation", [])


def profiler(trial: Trial) -> float:
    series: list[ProfilerSeries] = trial.profiler_series()
    uuids = {s.gpu_uuid for s in series if s.group == "gpu"}
    total = 0.0
    for sample in trial.profiler_metrics("gpu_util", groups=["gpu"]):
        when: datetime = sample.time
        assert when.tzinfo is not None and sample.gpu_uuid in uuids
        total += sample.value
    records: list[dict[str, object]] = trial.profiler_metrics(groups="cpu").to_records()
    return total + len(records)


async def in_async(session: detorm.aio.AsyncSession, trial: detorm.aio.Trial) -> int:
    result: BulkResult[int] = await detorm.aio.Trial.query(session).filter(id=trial.id).pause()
    await trial.kill()
    groups = await trial.metric_groups()
    samples: list[ProfilerSample] = [s async for s in trial.profiler_metrics(groups="memory")]
    return len(result.succeeded) + len(groups) + len(samples)
