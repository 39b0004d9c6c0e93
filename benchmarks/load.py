"""detorm.local under load: many clients at once, and many sessions editing the same objects.

    python benchmarks/load.py [--clients 50] [--requests 100] [--processes 10] [--rounds 20]

Part A starts one ``detorm serve`` (``LocalMaster(process=True)``) on a fresh database of 200
experiments and runs ``--clients`` threads, each with its own connection, sending ``--requests``
requests: 60% reads (an experiments page, one experiment, a filtered experiments-search, an
experiment's trials) and 40% writes (a new label on a random experiment, the description of the
client's own experiment, a new workspace). It counts errors (anything but a 200), and lost
writes: at the end every acknowledged label and workspace must exist, and each client's
experiment must hold the description it last wrote. Latency is per request, p50 and p99 by kind.

Part B runs ``--processes`` processes, each with its own ``detorm.Session``, committing edits to
the same 20 active experiments for ``--rounds`` rounds: on 5 experiments a round, add or remove
one of the process's own labels, set the description and the priority, then ``commit()``.
What the writers intended, precisely:

* a label (each belongs to one process) is present at the end iff the last successful commit
  of its process that added or removed it added it;
* a field (description, priority; every process writes them) holds the value of a successful
  commit that wrote it and that no successful commit writing it *started after it ended*: the
  last commit, up to commits that overlapped in time (their order on the master is not known).
  Times are ``time.monotonic_ns()``, one clock for all processes.

A label present against intent is *resurrected*, one missing is *lost*; a field holding any other
value is *stale*. Figures go to the README's benchmark section.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

import detorm
from detorm import Experiment
from detorm.errors import CommitError
from detorm.local import LocalMaster, Seeder

EXPERIMENTS = 200
SHARED = 20  # experiments every process of part B edits
PER_ROUND = 5
LABELS_PER_PROCESS = 3


# --- part A --------------------------------------------------------------------------------------
@dataclass
class Client:
    """One client's connection and record: latencies by kind, errors, acknowledged writes."""

    http: httpx.Client
    own_experiment: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    labels: list[tuple[int, str]] = field(default_factory=list)
    workspaces: list[str] = field(default_factory=list)
    description: str | None = None


def _seed(master: LocalMaster) -> tuple[int, list[int]]:
    with Seeder(master.database) as seed:
        project = seed.project("load")
        experiments = []
        for index in range(EXPERIMENTS):
            experiment = seed.experiment(
                project=project, name=f"exp-{index}", labels=["seeded"],
                state="ACTIVE" if index < SHARED else "COMPLETED",  # part B edits active ones
            )  # fmt: skip
            seed.trial(experiment)
            experiments.append(experiment)
    return project, experiments


def _login(url: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=120)
    response = http.post("/api/v1/auth/login", json={"username": "determined", "password": ""})
    response.raise_for_status()
    http.headers["Authorization"] = "Bearer " + response.json()["token"]
    return http


Operation = Callable[[Client, int], httpx.Response]
"""A request of a client, given the client and the request's number."""


def _operations(project: int, experiments: list[int]) -> dict[str, Operation]:
    search = {
        "projectId": project, "limit": 20,
        "filter": '{"filterGroup":{"kind":"group","conjunction":"and","children":[{"kind":"field",'
        '"columnName":"name","operator":"contains","value":"exp-1"}]},"showArchived":false}',
    }  # fmt: skip
    return {
        "read: experiments page": lambda c, n: c.http.get(
            "/api/v1/experiments", params={"projectId": project, "limit": 20, "offset": n % 180}
        ),
        "read: one experiment": lambda c, n: c.http.get(
            f"/api/v1/experiments/{random.choice(experiments)}"
        ),
        "read: experiments-search": lambda c, n: c.http.post(
            "/api/v1/experiments-search", json=search
        ),
        "read: an experiment's trials": lambda c, n: c.http.get(
            f"/api/v1/experiments/{random.choice(experiments)}/trials"
        ),
        "write: add a label": _add_label(experiments),
        "write: description": _describe,
        "write: new workspace": _create_workspace,
    }


def _add_label(experiments: list[int]) -> Operation:
    def add(client: Client, n: int) -> httpx.Response:
        experiment, label = random.choice(experiments), f"c{client.own_experiment}-{n}"
        response = client.http.put(f"/api/v1/experiments/{experiment}/labels/{label}")
        if response.status_code == 200:
            client.labels.append((experiment, label))
        return response

    return add


def _describe(client: Client, n: int) -> httpx.Response:
    text = f"client {client.own_experiment}, request {n}"
    response = client.http.patch(
        f"/api/v1/experiments/{client.own_experiment}", json={"description": text}
    )
    if response.status_code == 200:
        client.description = text
    return response


def _create_workspace(client: Client, n: int) -> httpx.Response:
    name = f"ws-{client.own_experiment}-{n}"
    response = client.http.post("/api/v1/workspaces", json={"name": name})
    if response.status_code == 200:
        client.workspaces.append(name)
    return response


_MIX = (
    ["read: experiments page"] * 15 + ["read: one experiment"] * 20
    + ["read: experiments-search"] * 15 + ["read: an experiment's trials"] * 10
    + ["write: add a label"] * 20 + ["write: description"] * 10 + ["write: new workspace"] * 10
)  # fmt: skip


def _client_run(
    client: Client, operations: dict[str, Operation], requests: int, start: threading.Barrier
) -> None:
    start.wait()
    for n in range(requests):
        kind = random.choice(_MIX)
        began = time.perf_counter()
        try:
            response = operations[kind](client, n)
            if response.status_code != 200:
                client.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
        except httpx.HTTPError as err:
            client.errors.append(f"{kind}: {err!r}")
        client.latencies[kind].append(time.perf_counter() - began)


def _lost_writes(url: str, clients: list[Client]) -> tuple[int, int]:
    """(acknowledged writes, of which missing at the end)."""
    touched = {e for c in clients for e, _ in c.labels} | {c.own_experiment for c in clients}
    http = _login(url)
    experiments = {e: http.get(f"/api/v1/experiments/{e}").json()["experiment"] for e in touched}
    listed = http.get("/api/v1/workspaces").json()["workspaces"]  # limit 0: all of them
    http.close()
    workspaces = {w["name"] for w in listed}
    checks = [label in experiments[e]["labels"] for c in clients for e, label in c.labels]
    checks += [name in workspaces for c in clients for name in c.workspaces]
    checks += [
        experiments[c.own_experiment]["description"] == c.description
        for c in clients
        if c.description is not None
    ]
    return len(checks), checks.count(False)


def part_a(clients_count: int, requests: int) -> list[str]:
    with LocalMaster(process=True) as master:
        project, experiments = _seed(master)
        operations = _operations(project, experiments)
        clients = [
            Client(_login(master.url), own_experiment=experiments[SHARED + i])
            for i in range(clients_count)
        ]
        start = threading.Barrier(clients_count + 1)
        threads = [
            threading.Thread(target=_client_run, args=(c, operations, requests, start))
            for c in clients
        ]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        for client in clients:
            client.http.close()
        acknowledged, missing = _lost_writes(master.url, clients)
    lines = [
        f"part A: {clients_count} concurrent clients x {requests} requests against one"
        " `detorm serve` (200 experiments)",
        "",
        f"{'request':32} {'count':>6} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    everything: list[float] = []
    for kind in sorted({k for c in clients for k in c.latencies}):
        times = [t for c in clients for t in c.latencies[kind]]
        everything += times
        lines.append(f"{kind:32} {len(times):>6} {_ms(times, 50):>8} {_ms(times, 99):>8}")
    lines.append(
        f"{'all':32} {len(everything):>6} {_ms(everything, 50):>8} {_ms(everything, 99):>8}"
    )
    errors = [e for c in clients for e in c.errors]
    lines += [
        "",
        f"throughput {len(everything) / elapsed:,.0f} requests/s over {elapsed:.1f} s;"
        f" errors: {len(errors)}; lost writes: {missing} of {acknowledged} acknowledged",
        *(f"  error: {e}" for e in errors[:10]),
    ]
    return lines


def _ms(times: list[float], percentile: int) -> str:
    if len(times) < 2:
        return "-"
    return f"{statistics.quantiles(times, n=100, method='inclusive')[percentile - 1] * 1000:.1f}"


# --- part B --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Commit:
    """One commit of part B: when it ran, whether it succeeded, and what it wrote."""

    process: int
    started: int
    ended: int
    ok: bool
    labels: tuple[tuple[int, str, bool], ...]  # (experiment, label, added)
    fields: tuple[tuple[int, str, Any], ...]  # (experiment, field, value)


def _editor(url: str, process: int, experiments: list[int], rounds: int) -> list[Commit]:
    """One process of part B: its own session, ``rounds`` commits."""
    rng = random.Random(process)
    commits = []
    with detorm.Session(url, user="determined", password="") as session:
        loaded = {e: session.get(Experiment, e) for e in experiments}
        for round_ in range(rounds):
            labels, fields = [], []
            for experiment in rng.sample(experiments, PER_ROUND):
                exp = loaded[experiment]
                label = f"p{process}-{rng.randrange(LABELS_PER_PROCESS)}"
                added = label not in exp.tags
                if added:
                    exp.tags.add(label)
                else:
                    exp.tags.discard(label)
                exp.description = f"p{process} r{round_}"
                exp.priority = rng.randint(1, 99)
                labels.append((experiment, label, added))
                fields += [
                    (experiment, "description", exp.description),
                    (experiment, "priority", exp.priority),
                ]
            started = time.monotonic_ns()
            try:
                session.commit()
                ok = True
            except CommitError:
                ok = False
                session.rollback()
            ended = time.monotonic_ns()
            commits.append(Commit(process, started, ended, ok, tuple(labels), tuple(fields)))
    return commits


def _intended_labels(commits: list[Commit]) -> dict[tuple[int, str], bool | None]:
    """(experiment, label) -> present at the end (None: its last change did not succeed)."""
    last: dict[tuple[int, str], bool | None] = {}
    for commit in sorted(commits, key=lambda c: (c.process, c.started)):
        for experiment, label, added in commit.labels:
            last[(experiment, label)] = added if commit.ok else None
    return last


def _possible_values(commits: list[Commit]) -> dict[tuple[int, str], set[Any]]:
    """(experiment, field) -> the values the master may end with (see the module docstring)."""
    writes: dict[tuple[int, str], list[tuple[Commit, Any]]] = defaultdict(list)
    for commit in commits:
        if commit.ok:
            for experiment, name, value in commit.fields:
                writes[(experiment, name)].append((commit, value))
    return {
        key: {
            value
            for commit, value in candidates
            if not any(other.started > commit.ended for other, _ in candidates)
        }
        for key, candidates in writes.items()
    }


def part_b(processes: int, rounds: int) -> list[str]:
    with LocalMaster(process=True) as master:
        _, experiments = _seed(master)
        shared = experiments[:SHARED]
        with ProcessPoolExecutor(max_workers=processes) as pool:
            began = time.perf_counter()
            futures = [
                pool.submit(_editor, master.url, p, shared, rounds) for p in range(processes)
            ]
            commits = [c for f in futures for c in f.result()]
            elapsed = time.perf_counter() - began
        with detorm.Session(master.url, user="determined", password="") as session:
            final = {e: session.get(Experiment, e) for e in shared}
    intended = _intended_labels(commits)
    lost = resurrected = unknown = 0
    for (experiment, label), present in intended.items():
        if present is None:
            unknown += 1
        elif present and label not in final[experiment].tags:
            lost += 1
        elif not present and label in final[experiment].tags:
            resurrected += 1
    stale = 0
    possible = _possible_values(commits)
    for (experiment, name), values in possible.items():
        stale += getattr(final[experiment], name) not in values
    failed = sum(not c.ok for c in commits)
    return [
        f"part B: {processes} processes x {rounds} commits (one detorm.Session each) on the same"
        f" {SHARED} experiments, {PER_ROUND} experiments a commit: tags add/remove, description,"
        " priority",
        "",
        f"commits: {len(commits) - failed} succeeded, {failed} failed, in {elapsed:.1f} s"
        f" ({len(commits) / elapsed:,.1f} commits/s)",
        f"labels checked: {len(intended) - unknown}; lost: {lost}; resurrected: {resurrected}",
        f"fields checked: {len(possible)}; stale: {stale}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=100, help="requests per client")
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20, help="commits per process")
    args = parser.parse_args()
    for line in [*part_a(args.clients, args.requests), "", *part_b(args.processes, args.rounds)]:
        print(line)


if __name__ == "__main__":
    main()
