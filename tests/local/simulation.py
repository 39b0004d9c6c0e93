"""Helpers for tests of detorm.local's simulated cluster (commands, tasks, jobs, agents).

The simulation's durations are module attributes; tests set them so that every state they look
at is reached or never left, whenever the request comes: 0 makes a transition happen at once,
an hour keeps a task where it is. No test sleeps to wait for a state.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from detorm.local import _scheduler as sim
from detorm.local._routes import logs as logs_routes

HOUR = 3600.0


def durations(
    monkeypatch: pytest.MonkeyPatch,
    *,
    pulling: float = 0.0,
    starting: float = 0.0,
    command: float = HOUR,
    kill: float = 0.0,
) -> None:
    """Set the simulated durations (seconds) for tasks launched from now on."""
    monkeypatch.setattr(sim, "PULLING_SECONDS", pulling)
    monkeypatch.setattr(sim, "STARTING_SECONDS", starting)
    monkeypatch.setattr(sim, "COMMAND_SECONDS", command)
    monkeypatch.setattr(sim, "KILL_SECONDS", kill)


def quick_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Log streams poll fast and end as soon as their task ends."""
    monkeypatch.setattr(logs_routes, "FOLLOW_POLL_SECONDS", 0.01)
    monkeypatch.setattr(logs_routes, "FIELDS_POLL_SECONDS", 0.01)
    monkeypatch.setattr(logs_routes, "TERMINATION_GRACE_SECONDS", 0.0)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def launch(api: httpx.Client, kind: str = "commands", **body: Any) -> dict[str, Any]:
    """Launch a task; the response's task message."""
    key = kind.removesuffix("s")
    payload = ok(api.post(f"/api/v1/{kind}", json=body))
    task: dict[str, Any] = payload[key]
    return task


def command(api: httpx.Client, *entrypoint: str, **config: Any) -> dict[str, Any]:
    """``det cmd run``: a command with this entrypoint and config."""
    body: dict[str, Any] = {"config": {"entrypoint": list(entrypoint or ["true"]), **config}}
    return launch(api, "commands", **body)


def state(api: httpx.Client, task: dict[str, Any], kind: str = "commands") -> str:
    key = kind.removesuffix("s")
    body = ok(api.get(f"/api/v1/{kind}/{task['id']}"))
    value: str = body[key]["state"]
    return value


def stream(response: httpx.Response) -> list[dict[str, Any]]:
    """The messages (``result``) of a stream; an ``error`` line raises."""
    import json

    out = []
    for line in response.text.splitlines():
        if not line:
            continue
        item = json.loads(line)
        assert "result" in item, item
        out.append(item["result"])
    return out


def logs(api: httpx.Client, task_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/tasks/{task_id}/logs", params=params)
    assert response.status_code == 200, response.text
    return stream(response)


def log_lines(api: httpx.Client, task_id: str, **params: Any) -> list[str]:
    return [entry["log"] for entry in logs(api, task_id, **params)]


class Clock:
    """The simulated cluster's clock, frozen where a test puts it: the time replay
    (``_scheduler.advance``) reads it, so trials train exactly as far as the test moves it."""

    def __init__(self) -> None:
        from detorm.local._db import utcnow

        self.now = utcnow()

    def __call__(self) -> Any:
        return self.now

    def skip(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the simulated cluster's clock at now; ``clock.skip(s)`` moves it forward."""
    clock = Clock()
    monkeypatch.setattr(sim, "utcnow", clock)
    # A frozen clock's test moves time by hand and expects one request to replay all of it,
    # however slow the machine: no live replay budget.
    monkeypatch.setattr(sim, "LIVE_REPLAY_SECONDS", float("inf"))
    return clock
