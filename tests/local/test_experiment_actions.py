"""Experiment actions on detorm.local (``experiment/bulk_action.go``): single forms with their
status codes, bulk forms with per-id results, moves and deletes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from determined.common.api import bindings
from sqlmodel import func, select

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from tests.conftest import error_of, login


@dataclass
class World:
    api: httpx.Client
    master: LocalMaster
    project: int
    target: int  # another project
    closed: int  # a project in an archived workspace
    ids: dict[str, int]
    trials: dict[str, int]


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        project = seed.project("work")
        target = seed.project("target")
        closed = seed.project("closed", workspace=seed.workspace("attic", archived=True))
        ids = {
            "active": seed.experiment(project=project, name="active", state="ACTIVE"),
            "paused": seed.experiment(project=project, name="paused", state="PAUSED"),
            "done": seed.experiment(project=project, name="done", state="COMPLETED"),
            "archived": seed.experiment(
                project=project, name="archived", state="CANCELED", archived=True
            ),
            "stopping": seed.experiment(
                project=project, name="stopping", state="STOPPING_CANCELED"
            ),
            "finishing": seed.experiment(
                project=project, name="finishing", state="STOPPING_COMPLETED"
            ),
            "elsewhere": seed.experiment(project=target, name="elsewhere", state="ACTIVE"),
        }
        trials = {
            "active": seed.trial(ids["active"]),
            "paused": seed.trial(ids["paused"]),
            "done": seed.trial(ids["done"]),
        }
        seed.metrics(trials["done"], "validation", [(10, {"validation_loss": 0.5})])
        seed.checkpoint(trials["done"], total_batches=10)
        seed.logs(trials["done"], ["hello"])
    yield World(api, local_master, project, target, closed, ids, trials)


def state_of(world: World, name: str) -> str:
    state: str = world.api.get(f"/api/v1/experiments/{world.ids[name]}").json()["experiment"][
        "state"
    ]
    return state


def trial_state(world: World, name: str) -> str:
    state: str = world.api.get(f"/api/v1/trials/{world.trials[name]}").json()["trial"]["state"]
    return state


def action(world: World, verb: str, name: str | int) -> httpx.Response:
    experiment = world.ids[name] if isinstance(name, str) else name
    return world.api.post(f"/api/v1/experiments/{experiment}/{verb}")


def error(response: httpx.Response) -> tuple[int, str]:
    body = error_of(response)
    return response.status_code, body["error"]


# --- single forms ----------------------------------------------------------------------------
def test_pause_and_activate(world: World) -> None:
    assert action(world, "pause", "active").json() == {}
    assert (
        state_of(world, "active") == "STATE_PAUSED"
        and trial_state(world, "active") == "STATE_PAUSED"
    )
    assert action(world, "pause", "active").status_code == 200  # already paused: no-op
    assert action(world, "activate", "active").json() == {}
    assert (
        state_of(world, "active") == "STATE_RUNNING"
        and trial_state(world, "active") == "STATE_RUNNING"
    )
    assert action(world, "activate", "active").status_code == 200


@pytest.mark.parametrize(
    ("verb", "name", "status", "message"),
    [
        ("pause", 99, 404, "experiment '99' not found"),
        ("pause", "done", 400, "experiment in terminal state"),
        ("pause", "archived", 404, "experiment '{id}' not found"),  # archived ones are not editable
        ("pause", "stopping", 400, "experiment in incompatible state STOPPING_CANCELED"),
        ("activate", 99, 404, "experiment '99' not found"),
        ("activate", "done", 404, "experiment '{id}' not found"),  # no live actor
        ("activate", "finishing", 400, "experiment in incompatible state STOPPING_COMPLETED"),
        ("cancel", 99, 404, "experiment '99' not found"),
        ("kill", "finishing", 400, "experiment in incompatible state STOPPING_COMPLETED"),
        ("archive", "active", 400, "Experiment is not in terminal state."),
        ("archive", "archived", 400, "Experiment is already archived."),
        ("archive", 99, 404, "experiment '99' not found"),
        ("unarchive", "done", 400, "Experiment is not archived."),
    ],
)
def test_single_action_errors(
    world: World, verb: str, name: str | int, status: int, message: str
) -> None:
    response = action(world, verb, name)
    experiment = world.ids[name] if isinstance(name, str) else name
    assert error(response) == (status, message.format(id=experiment))


def test_cancel_and_kill(world: World) -> None:
    assert action(world, "cancel", "active").json() == {}
    experiment = world.api.get(f"/api/v1/experiments/{world.ids['active']}").json()["experiment"]
    assert experiment["state"] == "STATE_CANCELED" and experiment["endTime"] is not None
    assert trial_state(world, "active") == "STATE_CANCELED"
    assert action(world, "cancel", "done").status_code == 200  # terminal: nothing to do, no error
    assert (
        action(world, "cancel", "stopping").status_code == 200
        and state_of(world, "stopping") == "STATE_STOPPING_CANCELED"
    )
    assert action(world, "kill", "stopping").json() == {}
    assert state_of(world, "stopping") == "STATE_CANCELED"
    assert (
        action(world, "kill", "paused").status_code == 200
        and trial_state(world, "paused") == "STATE_CANCELED"
    )


def test_archive_and_unarchive(world: World) -> None:
    assert action(world, "archive", "done").json() == {}
    assert (
        world.api.get(f"/api/v1/experiments/{world.ids['done']}").json()["experiment"]["archived"]
        is True
    )
    assert action(world, "unarchive", "done").json() == {}
    assert action(world, "unarchive", "archived").json() == {}


def test_delete_experiment(world: World) -> None:
    done = world.ids["done"]
    assert world.api.delete(f"/api/v1/experiments/{done}").json() == {}
    assert world.api.get(f"/api/v1/experiments/{done}").status_code == 404
    assert world.api.get(f"/api/v1/trials/{world.trials['done']}").status_code == 404
    with world.master.database.transaction(write=False) as db:
        for table in (t.MetricRow, t.TrialLogRow, t.CheckpointRow):
            assert db.exec(select(func.count()).select_from(table)).one() == 0
    active = world.api.delete(f"/api/v1/experiments/{world.ids['active']}")
    assert error(active) == (400, "cannot delete experiment in STATE_ACTIVE state")
    assert error(world.api.delete("/api/v1/experiments/99")) == (404, "experiment '99' not found")


def test_delete_refuses_registered_checkpoints_and_other_users(world: World) -> None:
    with Seeder(world.master.database) as seed:
        uuid = seed.checkpoint(world.trials["done"], total_batches=20)
        seed.model_version(seed.model("m"), uuid)
        theirs = seed.experiment(project=world.project, name="theirs", owner="admin")
    registered = world.api.delete(f"/api/v1/experiments/{world.ids['done']}")
    assert error(registered) == (400, "checkpoints are registered as model versions")
    assert error_of(registered)["reason"] == "InvalidArgument"
    forbidden = world.api.delete(f"/api/v1/experiments/{theirs}")
    assert error(forbidden) == (403, "non admin users may not delete other user's experiments")
    admin = login(world.master.url, "admin")
    try:
        assert admin.delete(f"/api/v1/experiments/{theirs}").status_code == 200
    finally:
        admin.close()


def test_move_experiment(world: World) -> None:
    done = world.ids["done"]
    response = world.api.post(
        f"/api/v1/experiments/{done}/move", json={"destinationProjectId": world.target}
    )
    assert response.json() == {}
    experiment = world.api.get(f"/api/v1/experiments/{done}").json()["experiment"]
    assert experiment["projectId"] == world.target and experiment["projectName"] == "target"
    run = world.api.post("/api/v1/runs", json={"projectId": world.target}).json()["runs"]
    assert [(r["id"], r["localId"].rsplit("-", 1)[1]) for r in run] == [(world.trials["done"], "1")]
    archived = world.api.post(
        f"/api/v1/experiments/{world.ids['archived']}/move",
        json={"destinationProjectId": world.target},
    )
    assert error(archived) == (
        500,
        f"experiment ({world.ids['archived']}) is archived and cannot be moved",
    )
    closed = world.api.post(
        f"/api/v1/experiments/{done}/move", json={"destinationProjectId": world.closed}
    )
    assert error(closed) == (
        500,
        f"project ({world.closed}) is archived and cannot add new experiments",
    )
    missing = world.api.post(f"/api/v1/experiments/{done}/move", json={"destinationProjectId": 404})
    assert error(missing) == (404, "project '404' not found")


# --- bulk forms --------------------------------------------------------------------------------
def bulk(
    world: World, verb: str, body: dict[str, Any], *, project: int | None = None
) -> list[tuple[int, str]]:
    path = f"/api/v1/projects/{world.project if project is None else project}/experiments/{verb}"
    response = world.api.request("DELETE" if verb == "delete" else "POST", path, json=body)
    assert response.status_code == 200, response.text
    parsed = bindings.v1PauseExperimentsResponse.from_json(response.json())
    return [(r.id, r.error) for r in parsed.results]


def status(code: str, message: str) -> str:
    return f"rpc error: code = {code} desc = {message}"


def test_bulk_pause_results_order(world: World) -> None:
    ids = world.ids
    body = {
        "experimentIds": [
            ids["done"],
            ids["active"],
            99,
            ids["elsewhere"],
            ids["archived"],
            ids["paused"],
        ]
    }
    assert bulk(world, "pause", body) == [
        (99, status("NotFound", "experiment '99' not found")),
        (
            ids["elsewhere"],
            status("NotFound", f"experiment '{ids['elsewhere']}' not found"),
        ),  # other project
        (ids["archived"], status("NotFound", f"experiment '{ids['archived']}' not found")),
        (ids["done"], status("FailedPrecondition", "experiment in terminal state")),
        (ids["active"], ""),
        (ids["paused"], ""),
    ]
    assert state_of(world, "active") == "STATE_PAUSED"


def test_bulk_cancel_and_kill(world: World) -> None:
    ids = world.ids
    assert bulk(world, "cancel", {"experimentIds": [ids["done"], ids["active"], ids["finishing"]]}) == [
        (ids["done"], ""), (ids["active"], ""), (ids["finishing"], ""),
    ]  # fmt: skip
    assert state_of(world, "finishing") == "STATE_STOPPING_COMPLETED"  # already stopping
    assert bulk(world, "kill", {"experimentIds": [ids["finishing"]]}) == [
        (
            ids["finishing"],
            status("FailedPrecondition", "experiment in incompatible state STOPPING_COMPLETED"),
        )
    ]


def test_bulk_filters_and_default_states(world: World) -> None:
    ids = world.ids
    # filters win over ids, never report unknown ids, and default to the states the action needs
    assert bulk(world, "pause", {"experimentIds": [99], "filters": {}}) == [(ids["active"], "")]
    assert bulk(world, "activate", {"filters": {"name": "PAUS"}}) == [
        (ids["paused"], "")
    ]  # PAUSED and named so
    assert (
        state_of(world, "paused") == "STATE_RUNNING" and state_of(world, "active") == "STATE_PAUSED"
    )
    assert (
        bulk(
            world,
            "activate",
            {"filters": {"states": ["STATE_PAUSED"], "excludedExperimentIds": [ids["active"]]}},
        )
        == []
    )
    cancelled = bulk(world, "cancel", {"filters": {"projectId": world.project}})
    assert [i for i, _ in cancelled] == [
        ids["active"],
        ids["paused"],
        ids["stopping"],
        ids["finishing"],
    ]
    assert bulk(world, "archive", {"filters": {}}) == [
        (ids["active"], ""), (ids["paused"], ""), (ids["done"], ""),
    ]  # fmt: skip


def test_bulk_filter_with_a_state_postgres_rejects(world: World) -> None:
    path = f"/api/v1/projects/{world.project}/experiments/pause"
    response = world.api.post(path, json={"filters": {"states": ["STATE_QUEUED"]}})
    assert error(response) == (
        500,
        'ERROR: invalid input value for enum experiment_state: "QUEUED" (SQLSTATE 22P02)',
    )


def test_bulk_archive_unarchive_results_order(world: World) -> None:
    ids = world.ids
    body = {"experimentIds": [99, ids["active"], ids["done"], ids["archived"]]}
    assert bulk(world, "archive", body) == [
        (ids["active"], status("FailedPrecondition", "Experiment is not in terminal state.")),
        (ids["archived"], status("FailedPrecondition", "Experiment is already archived.")),
        (99, status("NotFound", "experiment '99' not found")),
        (ids["done"], ""),
    ]
    assert bulk(world, "unarchive", {"experimentIds": [ids["done"], ids["active"]]}) == [
        (ids["active"], status("FailedPrecondition", "Experiment is not archived.")),
        (ids["done"], ""),
    ]
    assert bulk(world, "archive", {"experimentIds": []}) == []


def test_bulk_delete(world: World) -> None:
    ids = world.ids
    body = {"experimentIds": [ids["active"], ids["done"], ids["archived"], 99]}
    assert bulk(world, "delete", body) == [
        (
            ids["active"],
            status("FailedPrecondition", "cannot delete experiment in STATE_ACTIVE state"),
        ),
        (99, status("NotFound", "experiment '99' not found")),
        (ids["done"], ""),
        (ids["archived"], ""),
    ]
    remaining = world.api.get("/api/v1/experiments", params={"projectId": world.project}).json()[
        "experiments"
    ]
    assert ids["done"] not in [e["id"] for e in remaining]


def test_bulk_move(world: World) -> None:
    ids = world.ids
    body = {
        "experimentIds": [ids["done"], ids["archived"], ids["elsewhere"]],
        "destinationProjectId": world.target,
    }
    assert bulk(world, "move", body) == [
        (ids["archived"], status("FailedPrecondition", "Experiment is archived.")),
        (ids["elsewhere"], status("NotFound", f"experiment '{ids['elsewhere']}' not found")),
        (ids["done"], ""),
    ]
    closed = world.api.post(f"/api/v1/projects/{world.project}/experiments/move",
                            json={"experimentIds": [ids["done"]], "destinationProjectId": world.closed})  # fmt: skip
    assert error(closed) == (
        500,
        f"project ({world.closed}) is archived and cannot add new experiments",
    )
    missing = world.api.post(
        f"/api/v1/projects/{world.project}/experiments/move", json={"destinationProjectId": 77}
    )
    assert error(missing) == (404, "project '77' not found")
