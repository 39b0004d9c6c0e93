"""The ``det`` CLI of ``determined==0.38.1`` on commands, shells, notebooks, TensorBoards, tasks,
the job queue, agents and slots of detorm.local's simulated cluster.

The master serves from a thread of the test process (its simulated durations are shortened:
``tests/local/simulation.py``); each ``det`` command runs as a subprocess with the test's config
dir, as a user types it. One test runs ``detorm serve --execute-commands`` as a child process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from detorm.local import LocalMaster, Seeder
from detorm.local import _scheduler as sim
from tests.conftest import login
from tests.contract.test_det_cli import csv_rows, det, ok, table_rows
from tests.local.simulation import HOUR, durations, quick_logs


class Cluster:
    """A master for ``det`` (the attributes ``det()`` reads) and an API client to it."""

    def __init__(self, master: LocalMaster, api: httpx.Client) -> None:
        self.master = master
        self.url = master.url
        self.api = api

    def launch(self, kind: str, **body: Any) -> dict[str, Any]:
        response = self.api.post(f"/api/v1/{kind}", json=body)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()[kind.removesuffix("s")]
        return task

    def get(self, path: str, **params: Any) -> Any:
        response = self.api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    durations(monkeypatch, command=0.2)
    quick_logs(monkeypatch)
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            seed.experiment(name="finished")
        api = login(master.url)
        try:
            yield Cluster(master, api)
        finally:
            api.close()


@pytest.fixture
def me(cluster: Cluster, det_config: Path) -> Path:
    """``det user login determined`` (the empty password from stdin)."""
    ok(det(cluster, det_config, "user", "login", "determined", stdin="\n"))  # type: ignore[arg-type]
    return det_config


def run(cluster: Cluster, config: Path, *args: str) -> str:
    return ok(det(cluster, config, *args))  # type: ignore[arg-type]


def test_cmd_run_follows_the_logs_until_the_command_ends(cluster: Cluster, me: Path) -> None:
    out = run(cluster, me, "cmd", "run", "echo", "hello", "world").splitlines()
    launched = re.fullmatch(r"Launched command \(id: (\S+), name: (Command \(\S+\))\)\.", out[0])
    assert launched is not None
    task_id, name = launched.groups()
    assert out[-1] == (
        f"Task log stream ended. To reopen log stream, run: det task logs -f {task_id}"
    )
    lines = [line.split("|| ", 1)[1] for line in out[1:-1]]
    assert lines == [
        f"INFO: Scheduling {name} (id: {task_id}.1)",
        f"INFO: {name} was assigned to an agent",
        f"INFO: Resources for {name} have started",
        "+ echo hello world",
        "hello world",
        "INFO: resources exited successfully with a zero exit code",
        f"INFO: {name} was terminated: allocation stopped early after all resources exited:"
        " resources exited successfully with a zero exit code",
    ]
    command = cluster.get(f"/api/v1/commands/{task_id}")["command"]
    assert (command["state"], command["exitStatus"]) == (
        "STATE_TERMINATED", "allocation exited successfully"
    )  # fmt: skip


def test_cmd_list_logs_and_kill(
    cluster: Cluster, me: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    durations(monkeypatch, command=HOUR)
    task_id = run(cluster, me, "cmd", "run", "-d", "sleep", "100").strip()
    rows = csv_rows(run(cluster, me, "cmd", "list", "--csv"))
    assert [
        (r["id"], r["username"], r["state"], r["resourcePool"], r["workspaceName"]) for r in rows
    ] == [(task_id, "determined", "RUNNING", "default", "Uncategorized")]
    assert run(cluster, me, "cmd", "list", "-q").split() == [task_id]
    assert run(cluster, me, "cmd", "kill", task_id).strip() == f"Killed command {task_id}"
    (row,) = table_rows(run(cluster, me, "cmd", "list"))
    assert (row["state"], row["exitStatus"]) == ("TERMINATED", "allocation exited successfully")
    logs = run(cluster, me, "cmd", "logs", task_id).splitlines()
    assert logs[-2].endswith("was terminated: allocation killed after all resources exited:"
                             " resources were killed")  # fmt: skip
    assert (
        logs[-1] == f"Task log stream ended. To reopen log stream, run: det task logs -f {task_id}"
    )
    tail = run(cluster, me, "task", "logs", task_id, "--tail", "2").splitlines()
    assert tail[:2] == logs[-3:-1]
    # a second kill of a task that ended succeeds (KillNTSC returns it as it is)
    assert run(cluster, me, "cmd", "kill", task_id).strip() == f"Killed command {task_id}"


def test_shell_and_notebook_lists(cluster: Cluster, me: Path) -> None:
    shell = cluster.launch("shells")
    notebook_id = run(cluster, me, "notebook", "start", "--no-browser", "-d").strip()
    (row,) = table_rows(run(cluster, me, "shell", "list"))
    assert (row["id"], row["state"], row["username"]) == (shell["id"], "RUNNING", "determined")
    (row,) = csv_rows(run(cluster, me, "notebook", "list", "--csv"))
    assert (row["id"], row["state"]) == (notebook_id, "RUNNING")
    assert row["description"].startswith("JupyterLab (")
    listed = json.loads(run(cluster, me, "notebook", "list", "--json"))
    assert [n["id"] for n in listed] == [notebook_id]


def test_tensorboard_start_list_and_kill(cluster: Cluster, me: Path) -> None:
    out = run(cluster, me, "tensorboard", "start", "1", "--no-browser").splitlines()
    launched = re.match(r"Launched tensorboard \(id: (\S+),", out[0])
    assert launched is not None
    board_id = launched.group(1)
    assert out[-1].startswith(
        f"Tensorboard is running at: {cluster.url}/det/interactive/{board_id}/"
    )
    (row,) = table_rows(run(cluster, me, "tensorboard", "list"))
    assert (row["id"], row["state"], row["experimentIds"], row["trialIds"]) == (
        board_id, "RUNNING", "[1]", "[]"
    )  # fmt: skip
    killed = run(cluster, me, "tensorboard", "kill", board_id).strip()
    assert killed == f"Killed tensorboard {board_id}"
    (row,) = table_rows(run(cluster, me, "tensorboard", "list"))
    assert row["state"] == "TERMINATED"


def test_task_list_and_slot_list(
    cluster: Cluster, me: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    durations(monkeypatch, command=HOUR)
    command = cluster.launch(
        "commands", config={"entrypoint": ["sleep"], "resources": {"slots": 2}}
    )
    queued = cluster.launch("commands", config={"entrypoint": ["big"], "resources": {"slots": 7}})
    tasks = table_rows(run(cluster, me, "task", "list"))
    by_task = {row["Task ID"]: row for row in tasks}
    assert set(by_task) == {command["id"], queued["id"]}
    running = by_task[command["id"]]
    assert (
        running["Slots Needed"],
        running["Agent"],
        running["Priority"],
        running["Resource Pool"],
    ) == ("2", sim.AGENT_ID, "42", "default")
    # a queued allocation has no resources: [] on the master, not unset ("unassigned")
    assert by_task[queued["id"]]["Agent"] == "[]"
    slots = table_rows(run(cluster, me, "slot", "list"))
    assert len(slots) == sim.DEFAULT_SLOTS
    held = [row for row in slots if row["Allocation ID"] != "FREE"]
    assert [(r["Slot ID"], r["Allocation ID"], r["Task Name"]) for r in held] == [
        ("0", f"{command['id']}.1", command["description"]),
        ("1", f"{command['id']}.1", command["description"]),
    ]
    assert {(r["Type"], r["Device"]) for r in slots} == {("cpu", "Artificial")}


def test_agent_list(cluster: Cluster, me: Path) -> None:
    (row,) = table_rows(run(cluster, me, "agent", "list"))
    assert (row["Agent ID"], row["Version"], row["Slots"], row["Containers"]) == (
        sim.AGENT_ID,
        "0.38.1",
        str(sim.DEFAULT_SLOTS),
        "0",
    )
    assert (row["Resource Pool"], row["Enabled"], row["Addresses"]) == (
        "default",
        "True",
        "127.0.0.1",
    )
    listed = json.loads(run(cluster, me, "agent", "list", "--json"))
    assert [a["id"] for a in listed] == [sim.AGENT_ID]


def test_job_list_and_update(cluster: Cluster, me: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    durations(monkeypatch, command=HOUR)
    first = cluster.launch("commands", config={"entrypoint": ["a"], "resources": {"slots": 8}})
    second = cluster.launch("commands", config={"entrypoint": ["b"]})
    rows = table_rows(run(cluster, me, "job", "list"))
    columns = ("#", "Type", "Job Name", "Priority", "Slots (acquired/needed)", "State")
    assert [tuple(r[c] for c in columns) for r in rows] == [
        ("0", "TYPE_COMMAND", first["description"], "42", "8/8", "STATE_SCHEDULED"),
        ("1", "TYPE_COMMAND", second["description"], "42", "0/1", "STATE_QUEUED"),
    ]  # fmt: skip
    job_id = rows[1]["ID"]
    run(cluster, me, "job", "update", job_id, "--priority", "5")
    rows = table_rows(run(cluster, me, "job", "list"))
    assert [(r["ID"], r["Priority"], r["#"]) for r in rows][0] == (job_id, "5", "0")
    refused = det(cluster, me, "job", "update", job_id, "--priority", "0")  # type: ignore[arg-type]
    assert refused.returncode != 0
    assert "priority must be between 1 and 99" in refused.stdout + refused.stderr
    listed = json.loads(run(cluster, me, "job", "list", "--json"))
    assert [j["jobId"] for j in listed["jobs"]] == [r["ID"] for r in rows]


@pytest.fixture
def executing() -> Iterator[LocalMaster]:
    """``detorm serve --execute-commands`` as a child process (default durations)."""
    with LocalMaster(process=True, execute_commands=True) as master:
        yield master


def test_cmd_run_executes_commands_when_asked(executing: LocalMaster, det_config: Path) -> None:
    ok(det(executing, det_config, "user", "login", "determined", stdin="\n"))  # type: ignore[arg-type]
    out = ok(det(executing, det_config, "cmd", "run", "echo $((6 * 7)); exit 0"))  # type: ignore[arg-type]
    lines = [line.split("|| ", 1)[1] for line in out.splitlines()[1:-1]]
    assert "42" in lines
    assert lines[-1].endswith("resources exited successfully with a zero exit code")
