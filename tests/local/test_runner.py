"""``detorm serve --execute-commands``: commands run their entrypoints as local processes, in a
copy of their context, their output in the task logs and their exit status reported."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from detorm.errors import ConfigurationError
from detorm.local import LocalMaster
from detorm.local._routes import logs as logs_routes
from tests.conftest import login
from tests.local.simulation import HOUR, command, durations, logs, ok, quick_logs


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    durations(monkeypatch)
    quick_logs(monkeypatch)
    # a real process writes its last lines and exits in another thread: as on the master, a
    # followed stream ends only a grace period after its task (it reads those lines first)
    monkeypatch.setattr(logs_routes, "TERMINATION_GRACE_SECONDS", 0.5)


@pytest.fixture
def executing() -> Iterator[httpx.Client]:
    with LocalMaster(process=False, execute_commands=True) as master:
        client = login(master.url)
        try:
            yield client
        finally:
            client.close()


def followed(api: httpx.Client, task_id: str) -> list[dict[str, object]]:
    """The task's logs, followed until it ends (the runner reports the process's exit)."""
    return logs(api, task_id, follow="true")


def test_a_command_runs_for_real(executing: httpx.Client) -> None:
    api = executing
    cmd = command(api, "printf 'out\\n'; echo err >&2; exit 3")
    entries = followed(api, cmd["id"])
    task_lines = [(e["log"], e["stdtype"]) for e in entries if e["source"] == "task"]
    assert sorted(task_lines) == [("err\n", "stderr"), ("out\n", "stdout")]
    failure = (
        "resources failed with non-zero exit code: container failed with non-zero exit code:"
        " 3 (exit code 3)"
    )
    assert [(e["log"], e["level"]) for e in entries[-2:]] == [
        (f"crashed: {failure}\n", "LOG_LEVEL_ERROR"),
        (f"{cmd['description']} was terminated: allocation failed: {failure}\n", "LOG_LEVEL_ERROR"),
    ]
    got = ok(api.get(f"/api/v1/commands/{cmd['id']}"))["command"]
    assert (got["state"], got["exitStatus"]) == ("STATE_TERMINATED", failure)


def test_a_command_runs_in_a_copy_of_its_context(executing: httpx.Client) -> None:
    api = executing
    files = [
        {"path": "data", "type": 53, "mode": 0o755},
        {"path": "data/a.txt", "type": 48, "mode": 0o644,
         "content": base64.b64encode(b"from the context\n").decode()},
    ]  # fmt: skip
    launched = ok(
        api.post(
            "/api/v1/commands",
            json={"config": {"entrypoint": ["cat", "data/a.txt"]}, "files": files},
        )
    )
    cmd = launched["command"]
    entries = followed(api, cmd["id"])
    assert [e["log"] for e in entries if e["source"] == "task"] == ["from the context\n"]
    got = ok(api.get(f"/api/v1/commands/{cmd['id']}"))["command"]
    assert got["exitStatus"] == "allocation exited successfully"


def test_a_killed_command_process_is_killed(
    executing: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = executing
    durations(monkeypatch, kill=HOUR)  # only the process's exit ends it
    cmd = command(api, "echo started; exec sleep 60")
    started = logs(api, cmd["id"], follow="false")
    assert started  # scheduled at least
    ok(api.post(f"/api/v1/commands/{cmd['id']}/kill"))
    entries = followed(api, cmd["id"])
    assert entries[-1]["log"] == (
        f"{cmd['description']} was terminated: allocation killed after all resources exited:"
        " resources were killed\n"
    )
    assert ok(api.get(f"/api/v1/commands/{cmd['id']}"))["command"]["state"] == "STATE_TERMINATED"


def test_executing_commands_needs_a_loopback_address() -> None:
    master = LocalMaster(process=False, execute_commands=True, host="0.0.0.0")
    with pytest.raises(ConfigurationError, match="--execute-commands"):
        master.start()
    master.stop()
