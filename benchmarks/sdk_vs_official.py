"""Side-by-side benchmark: detorm against the official SDK (determined==0.38.1).

    python benchmarks/sdk_vs_official.py            # every scenario
    python benchmarks/sdk_vs_official.py S1 S8 S9   # some of them
    python benchmarks/sdk_vs_official.py --rtt 20   # through a proxy adding 20 ms round trips
    python benchmarks/sdk_vs_official.py I1 L1      # the import and the lazy-iteration rows

Two rows are not scenarios of the table: I1 (``benchmarks/imports.py``: ``import detorm``
against ``import determined.experimental.client``, fresh processes, medians, and detorm's first
use up to its second request) and L1 (``benchmarks/lazy_iteration.py``: 1,000,000 experiments
iterated lazily from a synthetic paging master, against a bare httpx + json floor). They are
printed after the table.

One detorm.local (a separate process) serves the benchmark cluster: 2 workspaces x 5 projects x
200 experiments x 4 trials, each trial with 3 checkpoints and 500 metric reports, plus the
fixtures some scenarios need. Each scenario runs, for each client, in a fresh Python process
(S9 must start cold), after logging in; the table shows the HTTP requests each client sent
(counted at its HTTP layer) and the wall time of the scenario. Write scenarios act on disjoint
but identical data for each client. Absolute times on a shared machine are noise: compare
the columns of a row.

A third client, ``detorm-async`` (``detorm.aio`` on one event loop), runs the scenarios where
concurrency is the point: S2, S5, S10 (the 20 trials' logs read at once) and S12, 1,000
coroutines each waiting on one experiment (3 polls each) on one ``AsyncSession``, which the
official client cannot do (it has no async API; its cell and sync detorm's are n/a).

On loopback a request costs almost nothing but the server's own work; a real cluster is a network
away. ``--rtt`` puts a proxy between the clients and detorm.local that delivers every chunk of
bytes half a round trip after it arrived, in each direction (latency only, no bandwidth limit).

S16-S18 create experiments, which detorm.local then trains by simulation: each client runs them
on a fresh detorm.local of its own (not behind the proxy), so that one client's running trials
do not load the next one's server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "benchmarks" / ".data"
LABEL = "bench-tag"
S8_TRIALS = 50
S8_ROWS = 500
S10_TRIALS = 20
S10_LINES = 1500
S11_ROWS = 1_000_000
S12_WAITS = 1000
S12_POLLS = 3
S12_INTERVAL = 0.05
S13_COMMANDS = 1000
S14_KILLS = 100
S15_WAITS = 50
S16_CREATES = 50
S17_WAITS = 20
S17_BATCHES = 2_000  # 4 s of simulated training at detorm.local's default 500 batches/s
S18_TRIALS = 20
TARGETS = {
    "S1": "detorm <= 1/10 of the requests and <= 1/3 of the time",
    "S2": "detorm <= 1/10 of the requests and <= 1/3 of the time",
    "S3": "detorm: 1 request",
    "S4": "detorm: 1 request",
    "S5": "detorm <= requests of official, <= 1/3 of the time",
    "S6": "detorm: 1 request (one destination)",
    "S7": "detorm: 1 request",
    "S8": "detorm <= 2 requests, >= 3x faster",
    "S9": "detorm: 0 requests",
    "S10": "detorm (sync and async) >= 5x faster than official at 20 ms RTT",
    "S11": "detorm: peak memory growth < 100 MB, throughput >= 0.7 of httpx+json",
    "S12": "detorm-async: 1,000 waits on one loop, memory flat",
    "S13": "detorm: 1 request",
    "S14": "detorm: 1 + 100 requests, 8 in flight",
    "S15": "detorm: polling bounded (<= 8 polls per command for a 5 s run)",
    "S16": "detorm: 1 request per experiment, no slower than official",
    "S17": "detorm: polling bounded (a few requests a second at most)",
    "S18": "detorm: the files of 20 trials, near a plain copy",
}
DESCRIPTIONS = {
    "S1": "list every experiment (2,000)",
    "S2": "one project's trials: hparams + summary metrics",
    "S3": "active/paused with a label, by start time, first 50",
    "S4": "count experiments matching a filter",
    "S5": "add a tag to 200 experiments",
    "S6": "move 100 experiments to another project",
    "S7": "archive the 300 experiments matching a filter",
    "S8": f"validation metrics of {S8_TRIALS} trials x {S8_ROWS} rows",
    "S9": "S8 again, warm cache, new process",
    "S10": f"first 1,000 log lines of {S10_TRIALS} trials",
    "S11": "stream 1,000,000 metric rows",
    "S12": f"{S12_WAITS:,} concurrent waits on one event loop",
    "S13": f"list every command ({S13_COMMANDS:,} and the others)",
    "S14": f"kill the {S14_KILLS} commands matching a filter",
    "S15": f"launch {S15_WAITS} commands, wait for all to finish",
    "S16": f"create {S16_CREATES} experiments from a directory",
    "S17": f"wait for {S17_WAITS} experiments ({S17_BATCHES:,} batches each)",
    "S18": f"download the TensorBoard files of {S18_TRIALS} trials",
}
CLIENTS = ("official", "detorm", "detorm-async")
ASYNC_SCENARIOS = {"S2", "S5", "S10", "S12", "S13", "S14", "S15", "S16", "S17", "S18"}
SYNC_SCENARIOS = set(TARGETS) - {"S12"}
# The official SDK has no commands: S13 and S14 use its generated bindings (the det CLI's way),
# and nothing of it waits on a command.
# Nor can it read TensorBoard files (its TensorBoards read them on the cluster): S18's floor is
# a plain copy of the storage directory.
OFFICIAL_NA = {"S15", "S18"}
TASK_SCENARIOS = {"S13", "S14", "S15"}
# Each client runs these on a fresh detorm.local of its own: created experiments train by
# simulation, and one client's running trials must not slow the next client's server.
RUN_SCENARIOS = {"S16", "S17", "S18"}


# --- the cluster ----------------------------------------------------------------------------
def pristine(name: str, seed: Callable[[Any], None]) -> Path:
    """A seeded database, built once and reused (each run works on a copy)."""
    path = DATA / f"{name}.sqlite"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    from detorm.local import Database

    building = path.with_suffix(".building")
    for leftover in DATA.glob(f"{name}.building*"):
        leftover.unlink()
    started = time.perf_counter()
    database = Database(building)
    seed(database)
    database.dispose()
    for suffix in ("-wal", "-shm"):
        Path(str(building) + suffix).unlink(missing_ok=True)
    building.rename(path)
    print(f"seeded {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def seed_cluster(database: Any) -> None:
    """The cluster of the issue: 2 x 5 x 200 experiments x 4 trials x (3 checkpoints, 500 rows)."""
    from detorm.local._demo import seed_benchmark

    seed_benchmark(database)


def seed_fixtures(database: Any) -> None:
    """What the edit and stream scenarios act on, identical for the two clients."""
    from detorm.local import Seeder

    with Seeder(database) as seed:
        workspace = seed.workspace("bench-fixtures")
        for client in CLIENTS:
            for name, count in (("s5", 200), ("s6-src", 100), ("s7", 300)):
                if client == "detorm-async" and name != "s5":
                    continue
                project = seed.project(f"{name}-{client}", workspace=workspace)
                for index in range(count):
                    seed.experiment(
                        project=project,
                        name=f"{name}-{client}-{index:03d}",
                        state="COMPLETED",
                        labels=["fixture"],
                    )
            if client != "detorm-async":
                seed.project(f"s6-dst-{client}", workspace=workspace)
        project = seed.project("metrics", workspace=workspace)
        exp = seed.experiment(project=project, name="s8-validation", searcher="random")
        for index in range(S8_TRIALS):
            trial = seed.trial(exp, hparams={"lr": 0.001 * (index + 1)})
            rows = [
                (s * 10, {"validation_loss": 1.0 / s, "accuracy": s / S8_ROWS})
                for s in range(1, S8_ROWS + 1)
            ]
            seed.metrics(trial, "validation", rows)
        logs = seed.experiment(project=project, name="s10-logs", searcher="random")
        for index in range(S10_TRIALS):
            trial = seed.trial(logs, hparams={"lr": 0.01})
            seed.logs(
                trial,
                [f"[rank={i % 4}] step {i}: loss={1.0 / (i + 1):.5f}" for i in range(S10_LINES)],
            )


def run_config(name: str, batches: int, trials: int = 1) -> dict[str, Any]:
    """A created experiment's config: ``trials`` trials of ``batches`` simulated batches."""
    searcher: dict[str, Any] = {"name": "single", "metric": "validation_loss"}
    if trials > 1:
        searcher = {"name": "random", "metric": "validation_loss", "max_trials": trials,
                    "max_concurrent_trials": trials}  # fmt: skip
    searcher["max_length"] = {"batches": batches}
    return {
        "name": name,
        "entrypoint": "python3 train.py",
        "searcher": searcher,
        "hyperparameters": {"lr": {"type": "double", "minval": 0.001, "maxval": 0.1}},
        "resources": {"slots_per_trial": 1},
        "max_restarts": 0,
    }


def model_dir(workdir: Path) -> Path:
    """A small model definition: what create uploads."""
    path = workdir / "model"
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.py").write_text("print('training')\n" * 200)
    (path / "model.py").write_text("LAYERS = 4\n" * 500)
    (path / ".detignore").write_text("*.ckpt\n")
    (path / "weights.ckpt").write_bytes(b"\0" * 1_000_000)  # ignored by .detignore
    return path


def seed_tasks(url: str) -> None:
    """Commands that wait (8 slots each, on a cluster of 8): S13's, and S14's for each client.
    Launched through the API, as the master keeps them."""
    with _client(url) as http:
        names = [f"s13-{i:04d}" for i in range(S13_COMMANDS)]
        # "<client>." ends the description: no client's filter matches another's commands.
        names += [f"s14-{i:03d}-{c}." for c in CLIENTS for i in range(S14_KILLS)]
        for name in names:
            config = {"entrypoint": ["sleep 600"], "description": name, "resources": {"slots": 8}}
            http.post("/api/v1/commands", json={"config": config}).raise_for_status()


@contextlib.contextmanager
def _client(url: str) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=url, timeout=120) as http:
        token = http.post(
            "/api/v1/auth/login", json={"username": "determined", "password": ""}
        ).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


def fixture_ids(cluster_url: str, fixtures_url: str) -> dict[str, Any]:
    """Ids the scenarios need, read once with plain HTTP."""
    with _client(cluster_url) as http:
        projects = {
            p["name"]: p["id"] for p in http.get("/api/v1/workspaces/0/projects").json()["projects"]
        }
        bench = sorted(v for k, v in projects.items() if k.startswith("bench-"))
        runs = http.post("/api/v1/runs", json={"limit": S11_ROWS // 400, "sort": "id=asc"}).json()[
            "runs"
        ]
        labels = http.get("/api/v1/experiment/labels").json()["labels"]
        waited = http.get(
            "/api/v1/experiments", params={"limit": S12_WAITS, "sortBy": "SORT_BY_ID"}
        ).json()["experiments"]
    with _client(fixtures_url) as http:
        fixtures = {
            p["name"]: p["id"] for p in http.get("/api/v1/workspaces/0/projects").json()["projects"]
        }
        exps = http.get("/api/v1/experiments", params={"projectId": fixtures["metrics"]}).json()[
            "experiments"
        ]
        by_name = {e["name"]: e["id"] for e in exps}
        trials = {
            name: [
                t["id"]
                for t in http.get(
                    f"/api/v1/experiments/{by_name[name]}/trials", params={"limit": -1}
                ).json()["trials"]
            ]
            for name in ("s8-validation", "s10-logs")
        }
    return {
        "cluster": cluster_url, "fixtures": fixtures_url, "projects": fixtures, "trials": trials,
        "bench_projects": bench, "s11_trials": [r["id"] for r in runs], "label": labels[0],
        "s12_experiments": [e["id"] for e in waited],
    }  # fmt: skip


# --- scenarios ------------------------------------------------------------------------------
def official_scenarios(url: str, ids: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    from determined.common.api import bindings
    from determined.experimental import client

    client.login(master=url, user="determined", password="")
    assert client._determined is not None
    bindings_session = client._determined._session
    projects = ids["projects"]
    vision = ids["bench_projects"][0]

    def s1() -> Any:
        return len(client.list_experiments())

    def s2() -> Any:
        count = 0
        for exp in client.list_experiments(project_id=vision):
            for trial in exp.list_trials():
                count += len(trial.hparams) + len(trial.summary_metrics or {})
        return count

    def s3() -> Any:
        rows = client.list_experiments(
            states=[client.ExperimentState.ACTIVE, client.ExperimentState.PAUSED],
            labels=[ids["label"]],
            sort_by=client.ExperimentSortBy.START_TIME,
            order_by=client.OrderBy.ASC,
        )
        return len(rows[:50])

    def s4() -> Any:
        return len(
            client.list_experiments(
                states=[client.ExperimentState.COMPLETED], labels=[ids["label"]]
            )
        )

    def s5() -> Any:
        rows = client.list_experiments(project_id=projects["s5-official"])
        for exp in rows:
            exp.add_label(LABEL)
        return len(rows)

    def s6() -> Any:
        rows = client.list_experiments(project_id=projects["s6-src-official"])
        for exp in rows:
            exp.move_to_project("bench-fixtures", "s6-dst-official")
        return len(rows)

    def s7() -> Any:
        rows = client.list_experiments(
            project_id=projects["s7-official"], states=[client.ExperimentState.COMPLETED]
        )
        for exp in rows:
            exp.archive()
        return len(rows)

    def s8() -> Any:
        return sum(
            1
            for _ in client.iter_trials_metrics(ids["trials"]["s8-validation"], group="validation")
        )

    def s13() -> Any:
        return len(bindings.get_GetCommands(bindings_session).commands)

    def s14() -> Any:
        listed = bindings.get_GetCommands(bindings_session).commands
        chosen = [c for c in listed if "-official." in c.description]
        for command in chosen:
            bindings.post_KillCommand(bindings_session, commandId=command.id)
        return len(chosen)

    def s10() -> Any:
        total = 0
        for trial_id in ids["trials"]["s10-logs"]:
            total += sum(1 for _ in client.get_trial(trial_id).iter_logs(head=1000))
        return total

    def s11() -> Any:
        return sum(1 for _ in client.iter_trials_metrics(ids["s11_trials"], group="training"))

    work = Path(ids["workdir"])
    waited: list[Any] = []

    def s16() -> Any:
        config, code = run_config("s16", 10**9), str(model_dir(work))
        return len([client.create_experiment(config, code) for _ in range(S16_CREATES)])

    def s17_prepare() -> None:
        waited.extend(
            client.create_experiment(run_config(f"s17-{i}", S17_BATCHES), str(model_dir(work)))
            for i in range(S17_WAITS)
        )

    def s17() -> Any:
        return sorted({str(exp.wait()) for exp in waited})  # its default: a poll every 5 s

    return {
        "S16": s16,
        "S17:prepare": s17_prepare,
        "S17": s17,
        "S1": s1,
        "S2": s2,
        "S3": s3,
        "S4": s4,
        "S5": s5,
        "S6": s6,
        "S7": s7,
        "S8": s8,
        "S9": s8,
        "S10": s10,
        "S11": s11,
        "S13": s13,
        "S14": s14,
    }


def detorm_scenarios(
    url: str, ids: dict[str, Any], environ: dict[str, str], cache: Path
) -> tuple[Any, dict[str, Callable[[], Any]]]:
    import detorm
    from detorm import Command, Experiment, Project

    warm = bool(environ.get("DETORM_BENCH_WARM"))
    session = detorm.Session(
        url, user="determined", password=None if warm else "", environ=environ, cache=cache
    )
    projects = ids["projects"]
    vision = ids["bench_projects"][0]

    def s1() -> Any:
        return len(Experiment.query(session).all())

    def s2() -> Any:
        count = 0
        for exp in Experiment.query(session).filter(project_id=vision).prefetch("trials"):
            for trial in exp.trials:
                count += len(trial.hparams) + len(trial.summary_metrics)
        return count

    def s3() -> Any:
        query = Experiment.query(session).filter(
            state__in=["ACTIVE", "PAUSED"], tags__contains=ids["label"]
        )
        return len(query.order_by("start_time")[:50].all())

    def s4() -> Any:
        return (
            Experiment.query(session).filter(state="COMPLETED", tags__contains=ids["label"]).count()
        )

    def s5() -> Any:
        rows = Experiment.query(session).filter(project_id=projects["s5-detorm"]).all()
        for exp in rows:
            exp.tags.add(LABEL)
        session.commit()
        return len(rows)

    def s6() -> Any:
        destination = session.get(Project, projects["s6-dst-detorm"])
        rows = Experiment.query(session).filter(project_id=projects["s6-src-detorm"]).all()
        before = session.requests_sent
        for exp in rows:
            exp.project = destination
        session.commit()
        return {"moved": len(rows), "requests_of_the_move": session.requests_sent - before}

    def s7() -> Any:
        return len(
            Experiment.query(session)
            .filter(project_id=projects["s7-detorm"], state="COMPLETED")
            .archive()
            .succeeded
        )

    def s8() -> Any:
        return sum(1 for _ in session.metrics(ids["trials"]["s8-validation"], "validation"))

    def s10() -> Any:
        # The trials' logs by id, as the official client gets them (it must read each trial
        # first; detorm need not): one stream each (the master has no multi-trial logs route),
        # read concurrently by session.logs, within the session's bound.
        logs = session.logs(ids["trials"]["s10-logs"], limit=1000)
        return sum(len(lines) for lines in logs.values())

    def s11() -> Any:
        return sum(1 for _ in session.metrics(ids["s11_trials"], "training", cache=False))

    def s13() -> Any:
        return len(Command.query(session).all())

    def s14() -> Any:
        return len(Command.query(session).filter(description__contains="-detorm.").kill())

    def s15() -> Any:
        commands = [
            Command.launch(f"echo {i}", config={"resources": {"slots": 0}}, session=session)
            for i in range(S15_WAITS)
        ]
        launched = session.requests_sent
        for command in commands:
            command.wait(timeout=600)
        return _polls(commands, session.requests_sent - launched)

    work = Path(ids["workdir"])
    prepared: list[Any] = []

    def s16() -> Any:
        config, code = run_config("s16", 10**9), model_dir(work)
        created = [Experiment.create(config, code, session=session) for _ in range(S16_CREATES)]
        return len(created)

    def s17_prepare() -> None:
        prepared.extend(
            Experiment.create(run_config(f"s17-{i}", S17_BATCHES), model_dir(work), session=session)
            for i in range(S17_WAITS)
        )

    def s17() -> Any:
        return sorted({str(exp.wait(timeout=600)) for exp in prepared})

    def s18_prepare() -> None:
        prepared.append(_trained(Experiment.create(*_s18_run(work), session=session)))

    def s18() -> Any:
        return _files(prepared[0].download_tensorboard(work / "tensorboard"))

    return session, {
        "S16": s16,
        "S17:prepare": s17_prepare,
        "S17": s17,
        "S18:prepare": s18_prepare,
        "S18": s18,
        "S1": s1,
        "S2": s2,
        "S3": s3,
        "S4": s4,
        "S5": s5,
        "S6": s6,
        "S7": s7,
        "S8": s8,
        "S9": s8,
        "S10": s10,
        "S11": s11,
        "S13": s13,
        "S14": s14,
        "S15": s15,
    }


def _s18_run(work: Path) -> tuple[dict[str, Any], Path]:
    return run_config("s18", 1_000, trials=S18_TRIALS), model_dir(work)


def _trained(exp: Any) -> Any:
    state = exp.wait(timeout=600)
    assert str(state) == "COMPLETED", state
    return exp


def _files(root: Path) -> dict[str, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def _polls(commands: list[Any], polls: int) -> dict[str, Any]:
    states = {str(c.state) for c in commands}
    return {"commands": len(commands), "polls": polls, "states": sorted(states)}


def detorm_async_scenarios(
    url: str, ids: dict[str, Any], environ: dict[str, str], cache: Path
) -> tuple[Any, dict[str, Callable[[], Awaitable[Any]]]]:
    """The scenarios of ``detorm.aio``, to be awaited on one event loop."""
    from detorm import aio
    from detorm.aio import Command, Experiment

    session = aio.AsyncSession(url, user="determined", password="", environ=environ, cache=cache)
    projects = ids["projects"]
    vision = ids["bench_projects"][0]

    async def s2() -> Any:
        count = 0
        query = Experiment.query(session).filter(project_id=vision).prefetch("trials")
        async for exp in query:
            async for trial in exp.trials:
                count += len(trial.hparams) + len(trial.summary_metrics)
        return count

    async def s5() -> Any:
        rows = await Experiment.query(session).filter(project_id=projects["s5-detorm-async"]).all()
        for exp in rows:
            exp.tags.add(LABEL)
        await session.commit()
        return len(rows)

    async def s10() -> Any:
        logs = await session.logs(ids["trials"]["s10-logs"], limit=1000)
        return sum(len(lines) for lines in logs.values())

    async def s12() -> Any:
        exps = await Experiment.query(session).filter(id__in=ids["s12_experiments"]).all()
        before = _rss()
        peaks = [before] * S12_POLLS  # the peak RSS up to the end of each round of polls

        async def wait(exp: Any) -> str:
            for poll in range(S12_POLLS):
                if poll:
                    await asyncio.sleep(S12_INTERVAL)
                await exp.refresh()
                peaks[poll] = max(peaks[poll], _rss())
            return str(exp.state)

        states = await asyncio.gather(*(wait(exp) for exp in exps))
        return {
            "waits": len(states),
            "polls": len(states) * S12_POLLS,
            "rss_growth_by_poll_mb": [(peak - before) / 2**20 for peak in peaks],
        }

    async def s13() -> Any:
        return len(await Command.query(session).all())

    async def s14() -> Any:
        query = Command.query(session).filter(description__contains="-detorm-async.")
        return len(await query.kill())

    async def s15() -> Any:
        zero = {"resources": {"slots": 0}}
        commands = await asyncio.gather(
            *(Command.launch(f"echo {i}", config=zero, session=session) for i in range(S15_WAITS))
        )
        launched = session.requests_sent
        await asyncio.gather(*(c.wait(timeout=600) for c in commands))
        return _polls(list(commands), session.requests_sent - launched)

    work = Path(ids["workdir"])
    prepared: list[Any] = []

    async def s16() -> Any:
        config, code = run_config("s16", 10**9), model_dir(work)
        created = await asyncio.gather(
            *(Experiment.create(config, code, session=session) for _ in range(S16_CREATES))
        )
        return len(created)

    async def s17_prepare() -> None:
        code = model_dir(work)
        prepared.extend(
            await asyncio.gather(
                *(
                    Experiment.create(run_config(f"s17-{i}", S17_BATCHES), code, session=session)
                    for i in range(S17_WAITS)
                )
            )
        )

    async def s17() -> Any:
        states = await asyncio.gather(*(exp.wait(timeout=600) for exp in prepared))
        return sorted({str(state) for state in states})

    async def s18_prepare() -> None:
        exp = await Experiment.create(*_s18_run(work), session=session)
        assert str(await exp.wait(timeout=600)) == "COMPLETED"
        prepared.append(exp)

    async def s18() -> Any:
        return _files(await prepared[0].download_tensorboard(work / "tensorboard"))

    return session, {
        "S2": s2, "S5": s5, "S10": s10, "S12": s12, "S13": s13, "S14": s14, "S15": s15,
        "S16": s16, "S17:prepare": s17_prepare, "S17": s17, "S18:prepare": s18_prepare,
        "S18": s18,
    }  # fmt: skip


def raw_floor(scenario: str, url: str, ids: dict[str, Any]) -> dict[str, Any]:
    """The scenario's bytes read with plain httpx (and json.loads for streams): what no client
    can beat, so that the time above this floor is what a client spends itself. For S10: the
    20 trials' log requests all at once (the trial ids known, no parsing)."""
    if scenario == "S10":
        return asyncio.run(_logs_floor(url, ids["trials"]["s10-logs"]))
    if scenario == "S18":
        return _copy_floor(url, Path(ids["workdir"]))
    with _client(url) as http:
        started, cpu = time.perf_counter(), time.thread_time()
        rows = 0
        if scenario == "S1":
            rows = len(http.get("/api/v1/experiments", params={"limit": -1}).content)
        else:
            trial_ids = ids["s11_trials"] if scenario == "S11" else ids["trials"]["s8-validation"]
            group = "training" if scenario == "S11" else "validation"
            for start in range(0, len(trial_ids), 400):
                chunk = trial_ids[start : start + 400]
                params = [("trialIds", str(t)) for t in chunk] + [("group", group)]
                path = "/api/v1/trials/metrics/trial_metrics"
                with http.stream("GET", path, params=params, timeout=600) as response:
                    for line in response.iter_lines():
                        if line:
                            rows += len(json.loads(line)["result"]["metrics"])
        seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
        return {"rows": rows, "seconds": seconds, "cpu_seconds": cpu, "requests": 1}


async def _logs_floor(url: str, trial_ids: list[int]) -> dict[str, Any]:
    import httpx

    with _client(url) as http:
        token = http.headers["Authorization"]
    headers = {"Authorization": token}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(http.get(f"/api/v1/trials/{t}/logs", params={"limit": 1000}) for t in trial_ids)
        )
        rows = sum(r.content.count(b"\n") for r in responses)
        return {"rows": rows, "seconds": time.perf_counter() - started, "requests": len(responses)}


def _copy_floor(url: str, work: Path) -> dict[str, Any]:
    """S18's floor: the experiment trained as for detorm, then its storage's TensorBoard
    directory copied with shutil (what a script with the storage mounted does by hand)."""
    import detorm
    from detorm import Experiment

    with detorm.Session(url, user="determined", password="", environ={"HOME": str(work)}) as s:
        exp = _trained(Experiment.create(*_s18_run(work), session=s))
        storage = exp.config["checkpoint_storage"]
    with _client(url) as http:
        cluster = http.get("/api/v1/master").json()["clusterId"]
    source = Path(storage["host_path"], storage.get("storage_path") or "", cluster, "tensorboard",
                  "experiment", str(exp.id))  # fmt: skip
    started = time.perf_counter()
    shutil.copytree(source, work / "tensorboard")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "requests": 0, "result": _files(work / "tensorboard")}


def count_official_requests() -> Callable[[], int]:
    import requests.adapters

    counter = {"n": 0}
    send = requests.adapters.HTTPAdapter.send

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter["n"] += 1
        return send(self, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = counting  # type: ignore[method-assign]
    return lambda: counter["n"]


CLUSTER_SCENARIOS = {"S1", "S2", "S3", "S4", "S11", "S12"}
FLOORS = {"S1", "S8", "S10", "S11", "S18"}


def run_one(scenario: str, client: str, ids: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Runs in the child process: set up, measure one scenario, report JSON."""
    url = ids["cluster"] if scenario in CLUSTER_SCENARIOS else ids["fixtures"]
    if scenario in TASK_SCENARIOS:
        url = ids["tasks"]
    if scenario in RUN_SCENARIOS:
        url = ids["run"]  # this client's own fresh detorm.local
    ids["workdir"] = str(workdir)
    environ = {"HOME": str(workdir), "XDG_CONFIG_HOME": str(workdir / "config")}
    if client == "official":
        os.environ["DET_DEBUG_CONFIG_PATH"] = str(workdir / "det-config")
        sent = count_official_requests()
        scenarios = official_scenarios(url, ids)
        _prepare(scenarios, scenario)
        requests_before = sent()
        run = scenarios[scenario]
    elif client == "detorm":
        if scenario == "S9":
            environ["DETORM_BENCH_WARM"] = "1"
        session, scenarios = detorm_scenarios(url, ids, environ, workdir / "cache")
        _prepare(scenarios, scenario)
        requests_before = session.requests_sent
        sent = lambda: session.requests_sent
        run = scenarios[scenario]
    elif client == "detorm-async":
        return asyncio.run(run_async(scenario, url, ids, environ, workdir / "cache"))
    else:
        return raw_floor(scenario, url, ids)
    sampler = RssSampler()
    started = time.perf_counter()
    with sampler:
        cpu = time.thread_time()  # this thread's: not the sampler's
        result = run()
        cpu = time.thread_time() - cpu
    seconds = time.perf_counter() - started
    return {
        "requests": sent() - requests_before,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "result": result,
        "rss_growth_mb": sampler.growth_mb,
    }


async def run_async(
    scenario: str, url: str, ids: dict[str, Any], environ: dict[str, str], cache: Path
) -> dict[str, Any]:
    """run_one for detorm.aio: the session logs in (whoami) before the measure, as the others."""
    session, scenarios = detorm_async_scenarios(url, ids, environ, cache)
    async with session:
        await session.whoami()
        if f"{scenario}:prepare" in scenarios:
            await scenarios[f"{scenario}:prepare"]()
        requests_before = session.requests_sent
        sampler = RssSampler()
        started = time.perf_counter()
        with sampler:
            result = await scenarios[scenario]()
        seconds = time.perf_counter() - started
        return {
            "requests": session.requests_sent - requests_before,
            "seconds": seconds,
            "result": result,
            "rss_growth_mb": sampler.growth_mb,
        }


def _prepare(scenarios: dict[str, Callable[[], Any]], scenario: str) -> None:
    """What a scenario needs that is not measured (S17's experiments to wait for)."""
    if f"{scenario}:prepare" in scenarios:
        scenarios[f"{scenario}:prepare"]()


class RssSampler:
    """Peak resident memory above the level at the start, sampled every 20 ms."""

    def __init__(self) -> None:
        self.baseline = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


# --- the latency proxy --------------------------------------------------------------------------
class LatencyProxy:
    """A loopback TCP proxy to ``target`` that delays every chunk by ``one_way`` seconds (in
    order, without serialising the chunks: a stream keeps its throughput)."""

    def __init__(self, target: str, one_way: float) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port))
        self._one_way = one_way
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.url = ""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        await asyncio.gather(
            self._pump(reader, upstream_writer), self._pump(upstream_reader, writer),
            return_exceptions=True,
        )  # fmt: skip

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - self._loop.time()))
                if not data:
                    sink.close()
                    return
                sink.write(data)
                await sink.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while data := await source.read(1 << 16):
                queue.put_nowait((self._loop.time() + self._one_way, data))
        finally:
            queue.put_nowait((self._loop.time() + self._one_way, b""))
            await delivering


# --- the driver -----------------------------------------------------------------------------
def child(scenario: str, client: str, ids: dict[str, Any], workdir: Path) -> dict[str, Any]:
    if scenario in RUN_SCENARIOS:
        from detorm.local import LocalMaster

        with LocalMaster(db_path=workdir.parent / f"run-{scenario}-{client}.sqlite") as master:
            return _child(scenario, client, {**ids, "run": master.url}, workdir)
    return _child(scenario, client, ids, workdir)


def _child(scenario: str, client: str, ids: dict[str, Any], workdir: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", scenario, client, str(workdir)]
    process = subprocess.run(
        command, input=json.dumps(ids), capture_output=True, text=True, timeout=3600, check=False
    )
    if process.returncode != 0:
        return {
            "error": process.stderr.strip().splitlines()[-1] if process.stderr.strip() else "failed"
        }
    return json.loads(process.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", nargs="*", default=[*TARGETS, *EXTRA_ROWS])
    parser.add_argument("--rtt", type=float, default=0.0, help="added round-trip time, in ms")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        scenario, client, workdir = args.child
        print(
            json.dumps(
                run_one(scenario, client, json.loads(sys.stdin.read()), Path(workdir)), default=str
            )
        )
        return 0

    from detorm.local import LocalMaster

    extra_rows = [s for s in args.scenarios if s in EXTRA_ROWS]
    args.scenarios = [s for s in args.scenarios if s not in EXTRA_ROWS]
    cluster_db = pristine("cluster-v2", seed_cluster)
    fixtures_db = pristine("fixtures-v3", seed_fixtures)
    with tempfile.TemporaryDirectory(prefix="detorm-bench-") as tmp:
        work = Path(tmp)
        shutil.copyfile(cluster_db, work / "cluster.sqlite")
        shutil.copyfile(fixtures_db, work / "fixtures.sqlite")
        with (
            LocalMaster(db_path=work / "cluster.sqlite") as cluster,
            LocalMaster(db_path=work / "fixtures.sqlite") as fixtures,
            LocalMaster(db_path=work / "tasks.sqlite") as tasks,
            contextlib.ExitStack() as proxies,
        ):
            if TASK_SCENARIOS & set(args.scenarios):
                seed_tasks(tasks.url)  # about 40 s: every launch schedules the whole queue
            urls = [cluster.url, fixtures.url, tasks.url]
            if args.rtt > 0:
                one_way = args.rtt / 2000
                urls = [proxies.enter_context(LatencyProxy(url, one_way)).url for url in urls]
                print(f"every request through a proxy adding {args.rtt:g} ms round trips\n")
            ids = fixture_ids(*urls[:2])
            ids["tasks"] = urls[2]
            print(
                f"| {'':<4}| {'scenario':<54}| {'official 0.38.1':<26}| {'detorm':<26}"
                f"| {'detorm-async':<26}| {'':<29}|"
            )
            print(f"|{'-' * 5}|{'-' * 55}|{'-' * 27}|{'-' * 27}|{'-' * 27}|{'-' * 30}|")
            na: dict[str, Any] = {"n/a": True}
            for scenario in args.scenarios:
                official, ours = na, na
                if scenario in SYNC_SCENARIOS:
                    if scenario not in OFFICIAL_NA:
                        official = child(scenario, "official", ids, work / f"official-{scenario}")
                    ours = child(scenario, "detorm", ids, work / "detorm")
                aio = (
                    child(scenario, "detorm-async", ids, work / "detorm-async")
                    if scenario in ASYNC_SCENARIOS
                    else None
                )
                floor = (
                    child(scenario, "floor", ids, work / "floor") if scenario in FLOORS else None
                )
                print_row(scenario, official, ours, aio, floor)
            for row in extra_rows:
                print(f"{row}: {EXTRA_ROWS[row]}: {extra_row(row, cluster.url)}", flush=True)
    return 0


EXTRA_ROWS = {
    "I1": "import time (fresh processes, medians)",
    "L1": "iterate 1,000,000 experiments lazily (synthetic paging master)",
}


def extra_row(row: str, cluster_url: str) -> str:
    """The figures of row I1 or L1, as one line."""
    if row == "I1":
        from benchmarks import imports

        figures = imports.measure()
        first = imports.first_use(cluster_url)
        official, ours = figures["official"], figures["detorm"]
        return (
            f"official {official['wall'] * 1000:.1f} ms ({official['cpu'] * 1000:.1f} ms CPU),"
            f" detorm {ours['wall'] * 1000:.1f} ms ({ours['cpu'] * 1000:.1f} ms CPU); detorm's"
            " first use: "
            + ", ".join(f"{step} {seconds * 1000:.1f} ms" for step, seconds in first.items())
        )
    from benchmarks import lazy_iteration

    return lazy_iteration.describe(lazy_iteration.measure(S11_ROWS))


def print_row(
    scenario: str,
    official: dict[str, Any],
    ours: dict[str, Any],
    aio: dict[str, Any] | None,
    extra: dict[str, Any] | None,
) -> None:
    def cell(r: dict[str, Any] | None) -> str:
        if r is None:
            return ""
        if "n/a" in r:
            return f"{'n/a':>10}"
        if "error" in r:
            return f"error: {r['error'][:60]}"
        return f"{r['requests']:>6} req {r['seconds']:>8.3f} s"

    ratios = []
    for name, r in (("", ours), ("async ", aio)):
        if r and "seconds" in official and "seconds" in r and r["seconds"] > 0:
            ratios.append(f"{name}x{official['seconds'] / r['seconds']:.1f}")
    ratio = ", ".join(ratios) + " faster" if ratios else ""
    line = (
        f"| {scenario:<4}| {DESCRIPTIONS[scenario]:<54}| {cell(official):<26}| {cell(ours):<26}"
        f"| {cell(aio):<26}| {ratio:<29}|"
    )
    if extra and "error" in extra:
        line += f" floor: {extra['error'][:80]}"
    elif scenario in ("S1", "S8") and extra and "seconds" in ours and "seconds" in official:
        floor = extra["seconds"]
        line += (
            f" raw httpx floor {floor:.3f} s; above it: official {official['seconds'] - floor:.3f} s,"
            f" detorm {ours['seconds'] - floor:.3f} s"
        )
        if scenario == "S1" and "cpu_seconds" in extra and "cpu_seconds" in ours:
            # The clients' own CPU time (their thread's), steadier than wall time on a busy
            # machine: the floor's is httpx reading the bytes, the server's is not in it.
            line += (
                f"; client CPU: floor {extra['cpu_seconds']:.3f} s, official"
                f" {official['cpu_seconds']:.3f} s, detorm {ours['cpu_seconds']:.3f} s"
            )
    elif scenario == "S11" and extra and "seconds" in ours:
        rows = ours["result"] if isinstance(ours.get("result"), int) else S11_ROWS
        line += f" floor {extra['rows'] / extra['seconds']:,.0f} rows/s; detorm {rows / ours['seconds']:,.0f} rows/s"
        line += f" ({extra['seconds'] / ours['seconds']:.2f} of floor), RSS +{ours['rss_growth_mb']:.0f} MB"
    elif scenario == "S10" and extra and "seconds" in official:
        floor = extra["seconds"]
        line += (
            f" raw httpx floor {floor:.3f} s (the {S10_TRIALS} requests at once, unparsed;"
            f" official / floor = x{official['seconds'] / floor:.1f})"
        )
    elif scenario == "S12" and aio and isinstance(aio.get("result"), dict):
        waits = aio["result"]
        line += (
            f" {waits['waits']:,} waits x {S12_POLLS} polls; RSS +{aio['rss_growth_mb']:.0f} MB"
            " (the waits alone, after each round of polls: "
            + ", ".join(f"+{mb:.1f}" for mb in waits["rss_growth_by_poll_mb"])
            + " MB)"
        )
    if scenario == "S17":
        for name, r in (("official", official), ("detorm", ours), ("async", aio)):
            if r and "seconds" in r:
                line += f" {name}: {r['requests'] / r['seconds']:.1f} polls/s;"
    if scenario == "S18" and extra and "seconds" in extra:
        line += f" plain copy (shutil) {extra['seconds']:.3f} s for {extra['result']};"
    if scenario == "S15":
        for name, r in (("detorm", ours), ("async", aio)):
            if r and isinstance(r.get("result"), dict):
                waited = r["result"]
                line += (
                    f" {name}: {waited['polls']} polls for {waited['commands']} commands"
                    f" ({waited['polls'] / waited['commands']:.1f} each, "
                    f"{waited['polls'] / r['seconds']:.1f}/s), ended {','.join(waited['states'])};"
                )
    print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
