"""Crash safety: ``detorm serve`` killed with SIGKILL in the middle of a burst of writes opens
again on the same database, and every write it acknowledged is there.

A request's transaction commits before its response is written, and SQLite in WAL mode with
``synchronous=NORMAL`` keeps every committed transaction when the process dies (it is the
operating system that holds the unsynced pages; a power loss could lose the last ones)."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from detorm.local import LocalMaster, Seeder
from tests.conftest import login

WRITERS = 8
ACKNOWLEDGED_BEFORE_KILL = 400
MAX_ROUNDS = 10_000  # a bound if the kill never came


@dataclass
class Writer:
    """One client's writes to its own experiment: what the server acknowledged, and the rounds
    it attempted (a write cut off by the kill may or may not have been applied)."""

    experiment: int
    labels: list[str] = field(default_factory=list)
    description: int = -1  # round of the last acknowledged description
    attempted_rounds: int = 0
    moves: dict[int, int] = field(default_factory=dict)  # round -> destination, acknowledged
    workspaces: list[str] = field(default_factory=list)


def burst(
    client: httpx.Client, writer: Writer, projects: tuple[int, int], acked: threading.Semaphore
) -> None:
    """Label adds, description patches, moves and workspace creations until the server dies."""
    experiment = writer.experiment
    try:
        for round_ in range(MAX_ROUNDS):
            writer.attempted_rounds = round_ + 1
            label = f"w{experiment}-{round_}"
            if client.put(f"/api/v1/experiments/{experiment}/labels/{label}").status_code == 200:
                writer.labels.append(label)
                acked.release()
            patched = client.patch(
                f"/api/v1/experiments/{experiment}", json={"description": str(round_)}
            )
            if patched.status_code == 200:
                writer.description = round_
                acked.release()
            destination = projects[round_ % 2]
            moved = client.post(
                f"/api/v1/experiments/{experiment}/move",
                json={"destinationProjectId": destination},
            )
            if moved.status_code == 200:
                writer.moves[round_] = destination
                acked.release()
            name = f"ws-{experiment}-{round_}"
            if client.post("/api/v1/workspaces", json={"name": name}).status_code == 200:
                writer.workspaces.append(name)
                acked.release()
    except httpx.TransportError:
        return  # the server is gone


def test_acknowledged_writes_survive_a_kill_mid_burst(tmp_path: Path) -> None:
    database = tmp_path / "crash.sqlite"
    with LocalMaster(db_path=database) as master:
        with Seeder(master.database) as seed:
            projects = (seed.project("a"), seed.project("b"))
            writers = [
                Writer(seed.experiment(project=projects[0], name=f"e{i}")) for i in range(WRITERS)
            ]
        clients = [login(master.url) for _ in writers]
        acked = threading.Semaphore(0)
        threads = [
            threading.Thread(target=burst, args=(client, writer, projects, acked))
            for client, writer in zip(clients, writers, strict=True)
        ]
        for thread in threads:
            thread.start()
        for _ in range(ACKNOWLEDGED_BEFORE_KILL):
            assert acked.acquire(timeout=120), "the burst stalled"
        master.kill()
        for thread in threads:
            thread.join(timeout=120)
        for client in clients:
            client.close()
        assert not any(thread.is_alive() for thread in threads)
        assert all(w.attempted_rounds < MAX_ROUNDS for w in writers)  # cut off by the kill

    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with LocalMaster(db_path=database) as master:
        api = login(master.url)
        workspaces = {w["name"] for w in api.get("/api/v1/workspaces").json()["workspaces"]}
        for writer in writers:
            found = api.get(f"/api/v1/experiments/{writer.experiment}").json()["experiment"]
            assert set(writer.labels) <= set(found["labels"])
            # the last acknowledged value, or one written later whose answer the kill cut off
            assert writer.description <= int(found["description"] or -1) < writer.attempted_rounds
            last_move = max(writer.moves, default=-1)
            possible = {writer.moves.get(last_move, projects[0])} | {
                projects[r % 2] for r in range(last_move + 1, writer.attempted_rounds)
            }
            assert found["projectId"] in possible
            assert set(writer.workspaces) <= workspaces
        api.close()
