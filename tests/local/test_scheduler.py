"""The simulated scheduler and the job queue on detorm.local: the priority scheduler of
``rm/agentrm/priority.go`` (priority, then submission; no backfilling without preemption), the
job service (``api_job.go``, ``job/jobservice``), the resource pool and the agent."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from detorm.local import LocalMaster, Seeder
from detorm.local import _scheduler as sim
from detorm.local import _tables as t
from tests.conftest import error_of, login
from tests.local.simulation import command, durations, frozen_clock, launch, ok, state


@pytest.fixture(autouse=True)
def running(monkeypatch: pytest.MonkeyPatch) -> None:
    durations(monkeypatch)


@pytest.fixture
def small() -> Iterator[LocalMaster]:
    """A cluster of two slots."""
    with LocalMaster(process=False, slots=2) as master:
        yield master


@pytest.fixture
def small_api(small: LocalMaster) -> Iterator[httpx.Client]:
    client = login(small.url)
    try:
        yield client
    finally:
        client.close()


def kill(api: httpx.Client, task: dict[str, str]) -> None:
    ok(api.post(f"/api/v1/commands/{task['id']}/kill"))


def jobs(api: httpx.Client, **params: object) -> list[dict[str, object]]:
    return [item["full"] for item in ok(api.get("/api/v1/job-queues-v2", params=params))["jobs"]]


def test_requests_queue_by_priority_then_submission(small_api: httpx.Client) -> None:
    api = small_api
    blocker = command(api, "sleep", resources={"slots": 2})
    b = command(api, "b")
    c = command(api, "c", resources={"priority": 10})
    d = command(api, "d")
    e = command(api, "e", resources={"priority": 10})
    queue = jobs(api)
    # the queue's order is the scheduler's, scheduled jobs included: priority first
    assert [j["entityId"] for j in queue] == [c["id"], e["id"], blocker["id"], b["id"], d["id"]]
    assert [j["summary"] for j in queue] == [
        {"state": "STATE_QUEUED", "jobsAhead": 0},
        {"state": "STATE_QUEUED", "jobsAhead": 1},
        {"state": "STATE_SCHEDULED", "jobsAhead": 2},
        {"state": "STATE_QUEUED", "jobsAhead": 3},
        {"state": "STATE_QUEUED", "jobsAhead": 4},
    ]
    kill(api, blocker)
    # two slots free: the two of priority 10 start, in submission order
    assert [state(api, x) for x in (c, e, b, d)] == [
        "STATE_RUNNING",
        "STATE_RUNNING",
        "STATE_QUEUED",
        "STATE_QUEUED",
    ]
    kill(api, c)
    assert [state(api, x) for x in (b, d)] == ["STATE_RUNNING", "STATE_QUEUED"]


def test_no_lower_priority_starts_while_a_higher_one_waits(small_api: httpx.Client) -> None:
    """Without preemption nothing is backfilled; within one priority, whatever fits starts."""
    api = small_api
    command(api, "one slot")
    big = command(api, "two slots", resources={"slots": 2, "priority": 10})
    low = command(api, "low")
    same = command(api, "same priority", resources={"priority": 10})
    assert state(api, big) == "STATE_QUEUED"
    assert state(api, low) == "STATE_QUEUED"  # would fit, but a higher priority waits
    assert state(api, same) == "STATE_RUNNING"  # fits, in the waiting request's priority


def test_a_priority_change_reorders_the_queue(small_api: httpx.Client) -> None:
    api = small_api
    blocker = command(api, "sleep", resources={"slots": 2})
    first, second = command(api, "first"), command(api, "second")
    assert [j["entityId"] for j in jobs(api)][1:] == [first["id"], second["id"]]
    queue = {j["entityId"]: j["jobId"] for j in jobs(api)}
    ok(
        api.post(
            "/api/v1/job-queues", json={"updates": [{"jobId": queue[second["id"]], "priority": 5}]}
        )
    )
    ordered = jobs(api)
    assert [j["entityId"] for j in ordered] == [second["id"], blocker["id"], first["id"]]
    assert ordered[0]["priority"] == 5
    config = ok(api.get(f"/api/v1/commands/{second['id']}"))["config"]
    assert config["resources"]["priority"] == 5
    ok(
        api.post(
            "/api/v1/job-queues", json={"updates": [{"jobId": queue[first["id"]], "weight": 2.5}]}
        )
    )
    assert [j["weight"] for j in jobs(api) if j["entityId"] == first["id"]] == [2.5]
    # the update's weight is a float32, widened into the config's float64
    ok(
        api.post(
            "/api/v1/job-queues", json={"updates": [{"jobId": queue[first["id"]], "weight": 0.1}]}
        )
    )
    assert [j["weight"] for j in jobs(api) if j["entityId"] == first["id"]] == [0.10000000149011612]
    kill(api, blocker)
    assert state(api, second) == "STATE_RUNNING" and state(api, first) == "STATE_RUNNING"


def test_update_job_queue_errors(api: httpx.Client, local_master: LocalMaster) -> None:
    cmd = command(api, "sleep")
    (job,) = jobs(api)
    job_id = job["jobId"]

    def update(*updates: dict[str, object]) -> httpx.Response:
        return api.post("/api/v1/job-queues", json={"updates": list(updates)})

    for body, message in (
        ({"jobId": job_id, "priority": 0}, "priority must be between 1 and 99"),
        ({"jobId": job_id, "resourcePool": "default"},
         "setting resource pool for job type COMMAND is not supported"),
        ({"jobId": job_id, "aheadOf": "x"}, "unexpected action: &{x}"),
        ({"jobId": job_id}, "unexpected action: <nil>"),
        ({"jobId": "nope", "priority": 3}, "job nope not found"),
    ):  # fmt: skip
        response = update(body)
        assert response.status_code == 500, body
        assert error_of(response) == {"code": 13, "reason": "Internal", "error": message}
    response = update({"jobId": job_id, "priority": 0}, {"jobId": "nope", "weight": 1})
    assert error_of(response)["error"] == (
        "encountered the following errors: priority must be between 1 and 99, job nope not found"
    )
    # a failed request writes nothing (the master applies the updates that succeed)
    response = update({"jobId": job_id, "priority": 3}, {"jobId": "nope", "priority": 3})
    assert response.status_code == 500
    assert jobs(api)[0]["priority"] == 42
    assert state(api, cmd) == "STATE_RUNNING"


@pytest.fixture
def experiment(small: LocalMaster) -> int:
    """An active experiment with two live trials (a slot each), submitted before any task."""
    with Seeder(small.database, now=datetime(2025, 1, 1, tzinfo=UTC)) as seed:
        exp = seed.experiment(name="train", state="ACTIVE", progress=0.25)
        seed.trial(exp)
        seed.trial(exp)
        seed.trial(exp, state="COMPLETED")
    return exp


def test_experiments_hold_slots_in_the_same_queue(
    small: LocalMaster, small_api: httpx.Client, experiment: int
) -> None:
    api = small_api
    cmd = command(api, "waits")
    queue = jobs(api)
    assert [(j["type"], j["entityId"]) for j in queue] == [
        ("TYPE_EXPERIMENT", str(experiment)), ("TYPE_COMMAND", cmd["id"])
    ]  # fmt: skip
    exp_job = queue[0]
    assert (exp_job["name"], exp_job["requestedSlots"], exp_job["allocatedSlots"]) == (
        "train",
        2,
        2,
    )
    assert exp_job["progress"] == 0.25
    assert exp_job["summary"] == {"state": "STATE_SCHEDULED", "jobsAhead": 0}
    assert state(api, cmd) == "STATE_QUEUED"
    tasks = ok(api.get("/api/v1/tasks"))["allocationIdToSummary"]
    trials = [s for s in tasks.values() if s["name"].startswith("Trial ")]
    assert len(trials) == 2 and all(s["resources"] for s in trials)
    # pausing the experiment releases its trials' slots
    ok(api.post(f"/api/v1/experiments/{experiment}/pause"))
    assert state(api, cmd) == "STATE_RUNNING"
    assert [j["type"] for j in jobs(api)] == ["TYPE_COMMAND"]


def test_an_experiments_priority_and_pool_through_the_queue(
    small_api: httpx.Client, experiment: int
) -> None:
    api = small_api
    (job,) = jobs(api)
    job_id = job["jobId"]
    ok(api.post("/api/v1/job-queues", json={"updates": [{"jobId": job_id, "priority": 7}]}))
    assert jobs(api)[0]["priority"] == 7
    experiment_view = ok(api.get(f"/api/v1/experiments/{experiment}"))["experiment"]
    assert experiment_view["config"]["resources"]["priority"] == 7
    for pool, message in (("default", "resource pool is unchanged (default == default)"),
                          ("gpus", "invalid resource pool name gpus")):  # fmt: skip
        response = api.post(
            "/api/v1/job-queues", json={"updates": [{"jobId": job_id, "resourcePool": pool}]}
        )
        assert error_of(response)["error"] == message


def test_get_jobs_pages_and_filters(small_api: httpx.Client) -> None:
    api = small_api
    tasks = [command(api, "x", resources={"slots": 2}), command(api, "y"), command(api, "z")]
    body = ok(api.get("/api/v1/job-queues-v2", params={"limit": 2, "offset": 1}))
    assert list(body) == ["pagination", "jobs"]
    assert body["pagination"] == {
        "offset": 1,
        "limit": 2,
        "startIndex": 1,
        "endIndex": 3,
        "total": 3,
    }
    # limit 0 is 100 here
    assert ok(api.get("/api/v1/job-queues-v2"))["pagination"]["limit"] == 100
    queued = jobs(api, states="STATE_QUEUED")
    assert [j["entityId"] for j in queued] == [tasks[1]["id"], tasks[2]["id"]]
    desc = jobs(api, orderBy="ORDER_BY_DESC")
    assert [j["entityId"] for j in desc] == [tasks[2]["id"], tasks[1]["id"], tasks[0]["id"]]
    v1 = ok(api.get("/api/v1/job-queues"))
    assert [j["entityId"] for j in v1["jobs"]] == [x["id"] for x in tasks]
    response = api.get("/api/v1/job-queues-v2", params={"resourcePool": "gpus"})
    assert (response.status_code, error_of(response)["error"]) == (
        500,
        "cannot find resource pool gpus",
    )
    stats = ok(api.get("/api/v1/job-queues/stats"))["results"]
    assert [(s["resourcePool"], s["stats"]) for s in stats] == [
        ("default", {"queuedCount": 2, "scheduledCount": 1})
    ]
    assert ok(api.get("/api/v1/job-queues/stats", params={"resourcePools": "gpus"})) == {
        "results": []
    }


def test_resource_pools(small_api: httpx.Client) -> None:
    api = small_api
    command(api, "x")
    launch(api, "notebooks")
    body = ok(api.get("/api/v1/resource-pools"))
    (pool,) = body["resourcePools"]
    assert (pool["name"], pool["type"], pool["schedulerType"]) == (
        "default",
        "RESOURCE_POOL_TYPE_STATIC",
        "SCHEDULER_TYPE_PRIORITY",
    )
    assert (pool["slotsAvailable"], pool["slotsUsed"], pool["slotType"]) == (2, 2, "TYPE_CPU")
    assert (pool["defaultComputePool"], pool["defaultAuxPool"], pool["numAgents"]) == (
        True,
        True,
        1,
    )
    assert pool["details"]["priorityScheduler"] == {
        "preemption": False,
        "defaultPriority": 42,
        "k8Priorities": [],
    }
    assert pool["stats"] == {"queuedCount": 0, "scheduledCount": 2}
    assert body["pagination"]["total"] == 1
    assert ok(api.get("/api/v1/resource-pools", params={"unbound": "true"}))["resourcePools"]


def test_the_agent_and_its_slots(small: LocalMaster, small_api: httpx.Client) -> None:
    api = small_api
    cmd = command(api, "x")
    (agent,) = ok(api.get("/api/v1/agents"))["agents"]
    assert (agent["id"], agent["version"], agent["resourcePools"]) == (
        sim.AGENT_ID,
        "0.38.1",
        ["default"],
    )
    assert list(agent["slots"]) == [f"/agents/{sim.AGENT_ID}/slots/{i}" for i in range(2)]
    held = agent["slots"][f"/agents/{sim.AGENT_ID}/slots/0"]
    assert held["container"]["state"] == "STATE_RUNNING"
    assert list(agent["containers"]) == [held["container"]["id"]]
    assert agent["slotStats"]["typeStats"]["TYPE_CPU"] == {
        "states": {"STATE_RUNNING": 1},
        "draining": 0,
        "disabled": 0,
        "total": 2,
    }
    allocations = ok(api.get("/api/v1/tasks"))["allocationIdToSummary"]
    (summary,) = allocations.values()
    assert summary["resources"][0]["containerId"] == held["container"]["id"]
    assert summary["taskId"] == cmd["id"]
    slim = ok(
        api.get("/api/v1/agents", params={"excludeSlots": "true", "excludeContainers": "true"})
    )
    assert (slim["agents"][0]["slots"], slim["agents"][0]["containers"]) == ({}, {})
    assert ok(api.get(f"/api/v1/agents/{sim.AGENT_ID}"))["agent"]["id"] == sim.AGENT_ID
    slots = ok(api.get(f"/api/v1/agents/{sim.AGENT_ID}/slots"))["slots"]
    assert [s["id"] for s in slots] == ["0", "1"]
    assert ok(api.get(f"/api/v1/agents/{sim.AGENT_ID}/slots/1"))["slot"]["container"] is None
    for path, status, message in (
        ("/api/v1/agents/nope", 404, "agent 'nope' not found"),
        ("/api/v1/agents/nope/slots", 404, "agent 'nope' not found"),
        (f"/api/v1/agents/{sim.AGENT_ID}/slots/x", 500, "invalid slot id: x"),
        (f"/api/v1/agents/{sim.AGENT_ID}/slots/5", 500,
         f"bad updateSlotDeviceView on device: 5 ({sim.AGENT_ID}): not found"),
    ):  # fmt: skip
        response = api.get(path)
        assert (response.status_code, error_of(response)["error"]) == (status, message)


def test_the_scheduler_replays_transitions_in_time_order(
    small: LocalMaster, small_api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """advance() brings the cluster to a time: what is due happens at its own time, whoever
    looks later."""
    durations(monkeypatch, pulling=10, starting=10, command=10)
    cmd = command(small_api, "x")
    with small.database.transaction(write=True) as db:
        row = db.get(t.AllocationRow, f"{cmd['id']}.1")
        assert row is not None and row.state == "PULLING" and row.start_time is not None
        start = sim.as_utc(row.start_time)
    cluster = sim.Cluster(slots=2)
    seen = []
    for seconds in (5, 15, 25, 35):
        with small.database.transaction(write=True) as db:
            sim.advance(db, cluster, start + timedelta(seconds=seconds))
            row = db.get(t.AllocationRow, f"{cmd['id']}.1")
            assert row is not None
            seen.append(row.state)
    assert seen == ["PULLING", "STARTING", "RUNNING", "TERMINATED"]
    with small.database.transaction(write=False) as db:
        row = db.get(t.AllocationRow, f"{cmd['id']}.1")
        assert row is not None and row.end_time is not None
        assert sim.as_utc(row.end_time) == start + timedelta(seconds=30)


def test_a_settled_cluster_is_replayed_only_after_a_change_or_when_a_transition_is_due(
    small: LocalMaster, small_api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read of a task advances the cluster first; the replay is skipped when nothing was
    committed since an advance that reached now and no transition has come due since."""
    clock = frozen_clock(monkeypatch)
    durations(monkeypatch, pulling=10, starting=10, command=10)
    replays: list[datetime] = []
    replay = sim._advance

    def counted(db: Any, cluster: sim.Cluster, now: datetime | None) -> Any:
        replays.append(clock.now)
        return replay(db, cluster, now)

    monkeypatch.setattr(sim, "_advance", counted)
    cmd = command(small_api, "x")
    assert [state(small_api, cmd) for _ in range(3)] == ["STATE_PULLING"] * 3
    after_launch = len(replays)
    assert [state(small_api, cmd) for _ in range(3)] == ["STATE_PULLING"] * 3
    assert len(replays) == after_launch  # settled: nothing replayed
    with small.database.transaction(write=False) as db:
        row = db.get(t.AllocationRow, f"{cmd['id']}.1")
        assert row is not None and row.start_time is not None
        pulled = sim.as_utc(row.start_time) + timedelta(seconds=10)
    clock.now = pulled - timedelta(microseconds=1)
    assert state(small_api, cmd) == "STATE_PULLING" and len(replays) == after_launch
    clock.now = pulled  # the pull ends: a transition is due
    assert state(small_api, cmd) == "STATE_STARTING" and len(replays) == after_launch + 1
    # that replay wrote (the pull ended): the next read replays once, then the cluster is settled
    assert state(small_api, cmd) == "STATE_STARTING" and len(replays) == after_launch + 2
    assert state(small_api, cmd) == "STATE_STARTING" and len(replays) == after_launch + 2
    # a commit by another connection (here: another process's would do the same)
    with closing(sqlite3.connect(small.database.path)) as other:
        other.execute("UPDATE users SET display_name = 'someone' WHERE username = 'admin'")
        other.commit()
    assert state(small_api, cmd) == "STATE_STARTING" and len(replays) == after_launch + 3


def test_what_an_advance_rolled_back_is_not_taken_as_settled(small: LocalMaster) -> None:
    cluster = sim.Cluster(slots=2)
    with pytest.raises(RuntimeError), sim.advanced(small.database, cluster):
        raise RuntimeError("the request failed after the advance")
    assert cluster.settled is None
    with sim.advanced(small.database, cluster):
        pass
    settled, version = cluster.settled, small.database.data_version()
    assert settled is not None and settled.covers(version, cluster, sim.utcnow())
    cluster.slots = 3  # a setting the replay reads
    assert not settled.covers(version, cluster, sim.utcnow())
