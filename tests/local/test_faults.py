"""Test-only faults (``_faults.py``): request-level failures and per-id failures of the experiment
actions, only on a master started with faults enabled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from tests.conftest import error_of, login


@dataclass
class World:
    master: LocalMaster
    api: httpx.Client
    project: int
    done: list[int]  # COMPLETED
    live: list[int]  # ACTIVE

    def fault(self, **fields: object) -> None:
        with self.master.database.transaction(write=True) as db:
            db.add(t.FaultRow(**fields))  # type: ignore[arg-type]

    def state(self, experiment_id: int) -> tuple[str, bool] | None:
        with self.master.database.transaction(write=False) as db:
            row = db.get(t.ExperimentRow, experiment_id)
            return None if row is None else (row.state, row.archived)


def _world(enable_faults: bool) -> Iterator[World]:
    with LocalMaster(process=False, enable_faults=enable_faults) as master:
        with Seeder(master.database) as seed:
            workspace = seed.workspace("w")
            project = seed.project("p", workspace=workspace)
            done = [seed.experiment(project=project, name=f"done-{i}") for i in range(3)]
            live = [
                seed.experiment(project=project, name=f"live-{i}", state="ACTIVE") for i in range(3)
            ]
            for experiment_id in live:
                seed.trial(experiment_id, state="ACTIVE")
        api = login(master.url)
        try:
            yield World(master, api, project, done, live)
        finally:
            api.close()


@pytest.fixture
def world() -> Iterator[World]:
    yield from _world(enable_faults=True)


@pytest.fixture
def plain_world() -> Iterator[World]:
    yield from _world(enable_faults=False)


def _result(error: str, experiment_id: int) -> dict[str, object]:
    return {"error": error, "id": experiment_id}


INJECTED = "rpc error: code = Internal desc = disk on fire"


def test_request_level_faults_fail_matching_requests(world: World) -> None:
    world.fault(method="GET", path_regex=r"/api/v1/experiments/\d+", status=503, message="down",
                remaining=1)  # fmt: skip
    first = world.api.get(f"/api/v1/experiments/{world.done[0]}")
    assert first.status_code == 503
    assert error_of(first) == {"code": 14, "reason": "Unavailable", "error": "down"}
    assert world.api.get(f"/api/v1/experiments/{world.done[0]}").status_code == 200
    assert world.api.get("/api/v1/experiments").status_code == 200  # path did not match


def test_bulk_archive_reports_faulty_ids_and_leaves_them(world: World) -> None:
    a, b, c = world.done
    world.fault(ids=[b], message="disk on fire", path_regex=r".*/experiments/archive")
    response = world.api.post(
        f"/api/v1/projects/{world.project}/experiments/archive", json={"experimentIds": [a, b, c]}
    )
    assert response.status_code == 200
    # the injected failure is listed with the refusals, ahead of the accepted ids
    assert response.json()["results"] == [
        _result(INJECTED, b), _result("", a), _result("", c),
    ]  # fmt: skip
    assert [world.state(i) for i in (a, b, c)] == [
        ("COMPLETED", True), ("COMPLETED", False), ("COMPLETED", True),
    ]  # fmt: skip


def test_bulk_pause_and_kill_with_faults(world: World) -> None:
    x, y, z = world.live
    world.fault(ids=[y, 999], message="disk on fire")
    paused = world.api.post(
        f"/api/v1/projects/{world.project}/experiments/pause", json={"experimentIds": [999, x, y]}
    )
    # the unknown id's NotFound and y's own outcome are both replaced, in place
    assert paused.json()["results"] == [
        _result(INJECTED, 999), _result("", x), _result(INJECTED, y),
    ]  # fmt: skip
    assert [world.state(i) for i in (x, y)] == [("PAUSED", False), ("ACTIVE", False)]
    killed = world.api.post(
        f"/api/v1/projects/{world.project}/experiments/kill",
        json={"filters": {"name": "live"}},
    )
    assert sorted(killed.json()["results"], key=lambda r: r["id"]) == [
        _result("", x), _result(INJECTED, y), _result("", z),
    ]  # fmt: skip
    assert [world.state(i) for i in (x, y, z)] == [
        ("CANCELED", False), ("ACTIVE", False), ("CANCELED", False),
    ]  # fmt: skip


def test_bulk_delete_and_move_with_faults(world: World) -> None:
    a, b, _ = world.done
    with Seeder(world.master.database) as seed:
        other = seed.project("other", workspace=seed.workspace("w2"))
    world.fault(ids=[a], status=409, message="busy")
    deleted = world.api.request(
        "DELETE",
        f"/api/v1/projects/{world.project}/experiments/delete",
        json={"experimentIds": [a, b]},
    )
    assert deleted.json()["results"] == [
        _result("rpc error: code = AlreadyExists desc = busy", a), _result("", b),
    ]  # fmt: skip
    assert world.state(a) is not None and world.state(b) is None
    moved = world.api.post(
        f"/api/v1/projects/{world.project}/experiments/move",
        json={"experimentIds": [a, world.live[0]], "destinationProjectId": other},
    )
    assert moved.json()["results"] == [
        _result("rpc error: code = AlreadyExists desc = busy", a), _result("", world.live[0]),
    ]  # fmt: skip


def test_single_actions_answer_the_injected_error(world: World) -> None:
    a = world.done[0]
    x = world.live[0]
    world.fault(ids=[a, x], message="disk on fire")
    expected = {"code": 13, "reason": "Internal", "error": "disk on fire"}
    for path in (f"/api/v1/experiments/{x}/pause", f"/api/v1/experiments/{x}/kill",
                 f"/api/v1/experiments/{x}/cancel", f"/api/v1/experiments/{x}/activate",
                 f"/api/v1/experiments/{a}/archive", f"/api/v1/experiments/{a}/unarchive"):  # fmt: skip
        response = world.api.post(path)
        assert (response.status_code, error_of(response)) == (500, expected), path
    deleted = world.api.delete(f"/api/v1/experiments/{a}")
    assert (deleted.status_code, error_of(deleted)) == (500, expected)
    assert world.state(a) == ("COMPLETED", False) and world.state(x) == ("ACTIVE", False)
    # the lookups the single forms make first still come first
    missing = world.api.delete("/api/v1/experiments/424242")
    assert missing.status_code == 404
    # another experiment is not affected
    assert world.api.post(f"/api/v1/experiments/{world.live[1]}/pause").status_code == 200


def test_per_id_faults_count_down(world: World) -> None:
    x, y, _ = world.live
    world.fault(ids=[x], message="disk on fire", remaining=1)
    body = {"experimentIds": [x]}
    first = world.api.post(f"/api/v1/projects/{world.project}/experiments/pause", json=body)
    assert first.json()["results"] == [_result(INJECTED, x)]
    second = world.api.post(f"/api/v1/projects/{world.project}/experiments/pause", json=body)
    assert second.json()["results"] == [_result("", x)]
    assert world.state(x) == ("PAUSED", False) and world.state(y) == ("ACTIVE", False)


def test_faults_are_ignored_unless_enabled(plain_world: World) -> None:
    a = plain_world.done[0]
    plain_world.fault(ids=[a], message="disk on fire")
    plain_world.fault(method="*", path_regex=".*", status=500, message="everything fails")
    response = plain_world.api.post(f"/api/v1/experiments/{a}/archive")
    assert response.status_code == 200
    assert plain_world.state(a) == ("COMPLETED", True)
