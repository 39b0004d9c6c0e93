"""Tasks on detorm.local: GetTask, GetTasks, TaskLogs, TaskLogsFields and PostTaskLogs, as
``api_tasks.go``, ``api_task.go``, ``get_task.sql`` and the Postgres task-log backend behave."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from determined.common.api import bindings
from determined.common.api import logs as det_logs
from determined.common.api._session import Session

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from tests.conftest import error_of
from tests.local.simulation import (
    HOUR,
    command,
    durations,
    launch,
    log_lines,
    logs,
    ok,
    quick_logs,
    stream,
)

PG_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?"


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    durations(monkeypatch, command=0.0)
    quick_logs(monkeypatch)


def test_get_task(api: httpx.Client) -> None:
    cmd = command(api, "echo", "hi")
    task = ok(api.get(f"/api/v1/tasks/{cmd['id']}"))["task"]
    assert list(task) == ["taskId", "taskType", "allocations", "startTime", "endTime"]
    assert (task["taskId"], task["taskType"], task["startTime"]) == (
        cmd["id"],
        "TASK_TYPE_COMMAND",
        cmd["startTime"],
    )
    (allocation,) = task["allocations"]
    # get_task.sql: Postgres' JSON of timestamp columns, and no slots
    assert list(allocation) == ["taskId", "state", "startTime", "endTime", "allocationId", "slots"]
    assert allocation["state"] == "STATE_TERMINATED"
    assert allocation["allocationId"] == f"{cmd['id']}.1" and allocation["slots"] == 0
    assert re.fullmatch(PG_TIME, allocation["startTime"])
    assert re.fullmatch(PG_TIME, allocation["endTime"])
    response = api.get("/api/v1/tasks/nope")
    assert (response.status_code, error_of(response)["error"]) == (404, "task 'nope' not found")


def test_get_task_of_a_trial(local_master: LocalMaster, api: httpx.Client) -> None:
    with Seeder(local_master.database) as seed:
        trial = seed.trial(seed.experiment(name="e"))
    with local_master.database.transaction(write=False) as db:
        row = db.get(t.TrialRow, trial)
        assert row is not None
        task_id = row.task_id
    task = ok(api.get(f"/api/v1/tasks/{task_id}"))["task"]
    assert (task["taskType"], task["allocations"]) == ("TASK_TYPE_TRIAL", [])


def test_get_tasks_lists_what_the_resource_manager_holds(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    command(api, "done")  # exits at once: no longer held
    durations(monkeypatch, command=HOUR)
    running = command(api, "sleep")
    queued = command(api, "big", resources={"slots": 8})
    notebook = launch(api, "notebooks")
    summaries = ok(api.get("/api/v1/tasks"))["allocationIdToSummary"]
    assert set(summaries) == {f"{x['id']}.1" for x in (running, queued, notebook)}
    summary = summaries[f"{running['id']}.1"]
    assert list(summary) == [
        "taskId", "allocationId", "name", "registeredTime", "resourcePool", "slotsNeeded",
        "resources", "schedulerType", "priority", "proxyPorts",
    ]  # fmt: skip
    assert (summary["schedulerType"], summary["priority"], summary["proxyPorts"]) == (
        "priority",
        42,
        [],
    )
    assert summaries[f"{queued['id']}.1"]["resources"] == []
    (port,) = summaries[f"{notebook['id']}.1"]["proxyPorts"]
    assert (port["serviceId"], port["proxyTcp"], port["unauthenticated"]) == (
        notebook["id"],
        False,
        False,
    )
    assert 2900 <= port["port"] < 3199


def test_task_logs_filters(api: httpx.Client) -> None:
    cmd = command(api, "echo", "hi")
    entries = logs(api, cmd["id"])
    assert len(entries) == 7
    first = entries[0]
    assert list(first) == [
        "id",
        "timestamp",
        "message",
        "level",
        "taskId",
        "log",
        "source",
        "stdtype",
    ]
    task_lines = [e for e in entries if e["source"] == "task"]
    assert [e["log"] for e in task_lines] == ["+ echo hi\n", "hi\n"]
    assert task_lines[1]["allocationId"] == f"{cmd['id']}.1"
    assert task_lines[1]["level"] == "LOG_LEVEL_UNSPECIFIED"
    assert task_lines[1]["message"].endswith(" || hi\n")  # no level in the legacy line
    assert log_lines(api, cmd["id"], sources="task", stdtypes="stdout") == ["hi\n"]
    assert log_lines(api, cmd["id"], allocationIds=f"{cmd['id']}.1") == ["+ echo hi\n", "hi\n"]
    assert len(log_lines(api, cmd["id"], levels="LOG_LEVEL_INFO")) == 5
    tail = logs(api, cmd["id"], limit=2, orderBy="ORDER_BY_DESC")
    assert [e["id"] for e in tail] == [entries[-1]["id"], entries[-2]["id"]]


def test_task_logs_errors(api: httpx.Client) -> None:
    cmd = command(api, "true")
    for params, message in (
        ({"limit": -1}, "Limit must be >= 0"),
        ({"limit": 2, "follow": "true"}, "Limit cannot be specified when following"),
    ):
        response = api.get(f"/api/v1/tasks/{cmd['id']}/logs", params=params)
        assert response.status_code == 400
        assert json.loads(response.text)["error"]["message"] == message
    # the access check runs in the first fetch, after the count: a stream error
    response = api.get("/api/v1/tasks/nope/logs")
    assert response.status_code == 404
    assert json.loads(response.text)["error"] == {
        "grpcCode": 5, "httpCode": 404, "httpStatus": "Not Found", "details": [],
        "message": "1 error occurred:\n\t* failed to fetch batch: task 'nope' not found\n\n",
    }  # fmt: skip
    response = api.get(f"/api/v1/tasks/{cmd['id']}/logs", params={"limit": "x"})
    assert response.status_code == 400 and "error" in response.json()


def test_following_a_command_ends_when_it_ends(
    local_master: LocalMaster, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    durations(monkeypatch, command=0.3)
    cmd = command(api, "echo", "done")
    token = api.headers["Authorization"].removeprefix("Bearer ")
    session = Session(local_master.url, "determined", token=token, cert=None)
    followed = [entry.log for entry in det_logs.task_logs(session, cmd["id"], follow=True)]
    assert followed[-1] == (
        f"{cmd['description']} was terminated: allocation stopped early after all resources"
        " exited: resources exited successfully with a zero exit code\n"
    )
    assert "done\n" in followed


def test_task_logs_of_a_trial_task(local_master: LocalMaster, api: httpx.Client) -> None:
    with Seeder(local_master.database) as seed:
        trial = seed.trial(seed.experiment(name="e"))
        seed.logs(trial, ["one\n", "two\n"])
    with local_master.database.transaction(write=False) as db:
        row = db.get(t.TrialRow, trial)
        assert row is not None
        task_id = row.task_id
    entries = logs(api, task_id)
    assert [(e["log"], e["taskId"]) for e in entries] == [("one\n", task_id), ("two\n", task_id)]
    assert "allocationId" not in entries[0] and "trialId" not in entries[0]
    fields = stream(api.get(f"/api/v1/tasks/{task_id}/logs/fields"))
    assert fields == [{"allocationIds": [], "agentIds": [], "containerIds": [], "rankIds": [],
                       "stdtypes": ["stdout"], "sources": ["agent"]}]  # fmt: skip


def test_task_logs_fields(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    cmd = command(api, "echo", "hi")
    (fields,) = stream(api.get(f"/api/v1/tasks/{cmd['id']}/logs/fields"))
    assert list(fields) == [
        "allocationIds",
        "agentIds",
        "containerIds",
        "rankIds",
        "stdtypes",
        "sources",
    ]
    assert fields["allocationIds"] == [f"{cmd['id']}.1"]
    assert fields["sources"] == ["master", "task"] and fields["stdtypes"] == ["stderr", "stdout"]
    # following: a message per poll until the task ended (it has)
    assert (
        len(stream(api.get(f"/api/v1/tasks/{cmd['id']}/logs/fields", params={"follow": "true"})))
        == 1
    )
    response = api.get("/api/v1/tasks/nope/logs/fields")
    assert response.status_code == 404
    assert json.loads(response.text)["error"]["message"] == (
        "1 error occurred:\n\t* failed to fetch batch: task 'nope' not found\n\n"
    )


def test_post_task_logs(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    durations(monkeypatch, command=HOUR)
    cmd = command(api, "sleep")
    entry = {
        "taskId": cmd["id"], "log": "shipped\n", "timestamp": "2025-01-02T03:04:05Z",
        "level": "LOG_LEVEL_WARNING", "source": "task", "stdtype": "stdout", "rankId": 0,
    }  # fmt: skip
    assert ok(api.post("/api/v1/task/logs", json={"logs": [entry]})) == {}
    shipped = logs(api, cmd["id"], levels="LOG_LEVEL_WARNING")
    assert [(e["log"], e["rankId"], e["timestamp"]) for e in shipped] == [
        ("shipped\n", 0, "2025-01-02T03:04:05Z")
    ]
    for body, status, message in (
        ({"logs": []}, 400, "len logs must be greater than 0"),
        ({"logs": [{**entry, "taskId": "nope"}]}, 404, "task 'nope' not found"),
        ({"logs": [{**entry, "id": 3}]}, 400, "ID must be nil on logs got 3 instead"),
        ({"logs": [entry, {**entry, "taskId": "x"}]}, 400,
         f"can only post logs of a single taskID per task log request got '{cmd['id']}' and 'x'"),
    ):  # fmt: skip
        response = api.post("/api/v1/task/logs", json=body)
        assert (response.status_code, error_of(response)["error"]) == (status, message)


def test_the_official_client_reads_tasks(local_master: LocalMaster, api: httpx.Client) -> None:
    cmd = command(api, "echo", "hi")
    token = api.headers["Authorization"].removeprefix("Bearer ")
    session = Session(local_master.url, "determined", token=token, cert=None)
    task = bindings.get_GetTask(session, taskId=cmd["id"]).task
    assert task.taskType == bindings.v1TaskType.COMMAND
    assert task.allocations[0].state == bindings.taskv1State.TERMINATED
    assert bindings.get_GetTasks(session).allocationIdToSummary == {}
    lines = [x.log for x in det_logs.task_logs(session, cmd["id"], tail=1)]
    assert len(lines) == 1 and "was terminated" in lines[0]
