"""Async user code that must type-check under mypy --strict: the twin of queries.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import detorm.aio as det
from detorm import LogEntry, MetricReport, TrialSummary, hp


async def recent_active(session: det.AsyncSession) -> list[det.Experiment]:
    query = (
        det.Experiment.query(session)
        .filter(state__in=["ACTIVE", "PAUSED"], tags__contains="prod")
        .order_by("-start_time", "name")
    )
    first: det.Experiment | None = await query.first()
    count: int = await query.count()
    print(first, count, await query[0])
    return await query[:50].all()


async def last_lines(trial: det.Trial) -> list[LogEntry]:
    return [entry async for entry in trial.logs(tail=10)]


async def fan_out(session: det.AsyncSession, exp: det.Experiment) -> dict[int, TrialSummary]:
    trials: list[det.Trial] = [t async for t in exp.trials.filter(hp.lr > 0.01)]
    project: det.Project = await session.load(exp, "project")
    print(project.name, exp.project.name)
    best: det.Trial | None = await exp.best_trial()
    print(best)
    logs: list[list[LogEntry]] = await asyncio.gather(*(last_lines(t) for t in trials))
    print(logs)
    async for report in session.metrics(trials, "validation"):
        value: MetricReport = report
        print(value.values)
    return await session.summaries(trials)


async def edit(session: det.AsyncSession) -> None:
    async with session.begin():
        exp = await session.get(det.Experiment, 1)
        exp.tags.add("reviewed")
    result = await det.Experiment.query(session).filter(tags__contains="old").archive()
    print(result.succeeded)
    checkpoint = await session.get(det.Checkpoint, "uuid")
    where: Path = await checkpoint.download("/tmp/ckpt")
    print(where)


async def main() -> None:
    async with det.connect("http://127.0.0.1:8080") as session:
        await recent_active(session)
