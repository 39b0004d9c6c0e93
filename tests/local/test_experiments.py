"""Experiments on detorm.local: GetExperiments, GetExperiment, labels and PatchExperiment, as
``api_experiment.go`` behaves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from typing import Any

import httpx
import pytest
from determined.common.api import bindings

from detorm._wire import ExperimentsResponse, GetExperimentResponse
from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of, login

UTC = UTC


@dataclass
class World:
    api: httpx.Client
    project: int  # "vision", in workspace "lab"
    shelf_project: int  # a project in an archived workspace
    ids: dict[str, int]  # experiments by name


def _seed(seed: Seeder) -> tuple[int, int, dict[str, int]]:
    seed.user("alice", display_name="Alice Liddell")
    lab = seed.workspace("lab")
    shelf = seed.workspace("shelf", archived=True)
    project = seed.project("vision", workspace=lab)
    shelf_project = seed.project("old", workspace=shelf)
    day = datetime(2024, 3, 1, tzinfo=UTC)
    ids: dict[str, int] = {}
    ids["mnist"] = seed.experiment(
        project=project, name="mnist", description="Digits classifier", labels=["prod", "vision"],
        notes="# notes", start_time=day, progress=1.0, owner="alice", model_definition=b"x" * 12,
    )  # fmt: skip
    ids["cifar"] = seed.experiment(
        project=project, name="cifar_10", description="tiny images", labels=["vision"], state="ACTIVE",
        start_time=day.replace(day=2), progress=0.25, resource_pool="gpu",
    )  # fmt: skip
    ids["paused"] = seed.experiment(
        project=project, name="Beta run", state="PAUSED", start_time=day.replace(day=3)
    )
    ids["old"] = seed.experiment(
        project=project,
        name="old_mnist",
        archived=True,
        labels=["prod"],
        start_time=day.replace(day=4),
    )
    ids["shelved"] = seed.experiment(
        project=shelf_project, name="shelved", start_time=day.replace(day=5)
    )
    ids["queued"] = seed.experiment(
        name="queued",
        state="ACTIVE",
        labels=["a,b"],
        start_time=day.replace(day=6),
        parent_id=ids["mnist"],
    )
    trial = seed.trial(ids["mnist"])
    seed.trial(ids["mnist"])
    seed.metrics(trial, "validation", [(10, {"validation_loss": 0.25})])
    seed.trial(ids["cifar"])  # ACTIVE: the experiment reads RUNNING
    paused_trial = seed.trial(ids["paused"])
    seed.metrics(paused_trial, "validation", [(10, {"validation_loss": 0.5})])
    return project, shelf_project, ids


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        project, shelf_project, ids = _seed(seed)
    yield World(api, project, shelf_project, ids)


@pytest.fixture(scope="module")
def frozen() -> Iterator[World]:
    """One seeded master for the read-only tests."""
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            project, shelf_project, ids = _seed(seed)
        client = login(master.url)
        try:
            yield World(client, project, shelf_project, ids)
        finally:
            client.close()


def list_ids(world: World, **params: Any) -> list[int]:
    response = world.api.get("/api/v1/experiments", params=params)
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["experiments"]]


# --- the list view ---------------------------------------------------------------------------
def test_list_view_fields(frozen: World) -> None:
    body = frozen.api.get("/api/v1/experiments").json()
    parsed = bindings.v1GetExperimentsResponse.from_json(body)
    assert parsed.pagination is not None and parsed.pagination.total == 6
    assert ExperimentsResponse.model_validate(body).experiments[0].name == "mnist"
    mnist = body["experiments"][0]
    assert mnist["notes"] == "omitted" and mnist["trialIds"] == [] and mnist["numTrials"] == 2
    assert mnist["displayName"] == "Alice Liddell" and mnist["username"] == "alice"
    assert mnist["originalConfig"] == "" and mnist["searcherMetric"] == "validation_loss"
    assert mnist["hyperparameters"] == mnist["config"]["hyperparameters"]
    assert mnist["duration"] == 1800 and mnist["state"] == "STATE_COMPLETED"
    assert mnist["labels"] == ["prod", "vision"] and mnist["description"] == "Digits classifier"
    assert mnist["projectName"] == "vision" and mnist["workspaceName"] == "lab"
    assert mnist["checkpointSize"] == "0" and mnist["forkedFrom"] is None and mnist["progress"] == 1
    assert "modelDefinitionSize" not in mnist and "bestTrialSearcherMetric" not in mnist
    assert "bestTrialId" not in mnist and "externalExperimentId" not in mnist
    by_id = {e["id"]: e for e in body["experiments"]}
    cifar = by_id[frozen.ids["cifar"]]
    assert cifar["displayName"] == "determined" and cifar["notes"] == ""
    assert cifar["endTime"] is None and cifar["resourcePool"] == "gpu"
    assert by_id[frozen.ids["queued"]]["forkedFrom"] == frozen.ids["mnist"]


def test_reported_states(frozen: World) -> None:
    states = {
        e["id"]: e["state"] for e in frozen.api.get("/api/v1/experiments").json()["experiments"]
    }
    assert states[frozen.ids["cifar"]] == "STATE_RUNNING"  # an active trial
    assert states[frozen.ids["queued"]] == "STATE_QUEUED"  # no trial yet
    assert states[frozen.ids["paused"]] == "STATE_PAUSED"


def test_show_trial_data_adds_the_best_trial_metric(frozen: World) -> None:
    body = frozen.api.get("/api/v1/experiments", params={"showTrialData": "true"}).json()
    by_id = {e["id"]: e for e in body["experiments"]}
    assert by_id[frozen.ids["mnist"]]["bestTrialSearcherMetric"] == 0.25
    assert "bestTrialSearcherMetric" not in by_id[frozen.ids["queued"]]


# --- filters -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"states": "STATE_ACTIVE"}, ["cifar", "queued"]),  # the stored state, not the reported one
        ({"states": ["STATE_PAUSED", "STATE_COMPLETED"]}, ["mnist", "paused", "old", "shelved"]),
        ({"labels": "vision"}, ["mnist", "cifar"]),
        ({"labels": ["vision", "prod"]}, ["mnist"]),  # every label
        ({"labels": "a,b"}, []),  # joined, then split on commas
        ({"labels": ["a", "b"]}, []),
        ({"labels": ""}, ["mnist", "cifar", "paused", "old", "shelved", "queued"]),
        ({"name": "MNIST"}, ["mnist", "old"]),  # case-insensitive substring
        ({"name": "c_f"}, ["cifar"]),  # `_` is a live wildcard
        ({"description": "IMAGES"}, ["cifar"]),
        ({"archived": "true"}, ["old"]),
        (
            {"archived": "false"},
            ["mnist", "cifar", "paused", "queued"],
        ),  # archived workspace hidden too
        ({"users": "alice"}, ["mnist"]),
        ({"userIds": "2"}, ["cifar", "paused", "old", "shelved", "queued"]),
        ({"experimentIdFilter.gte": "2", "experimentIdFilter.lt": "4"}, ["cifar", "paused"]),
        ({"experimentIdFilter.gt": "4", "experimentIdFilter.lte": "5"}, ["shelved"]),
        ({"experimentIdFilter.incl": ["1", "3"]}, ["mnist", "paused"]),
        ({"experiment_id_filter.not_in": ["1", "3"]}, ["cifar", "old", "shelved", "queued"]),
    ],
)
def test_get_experiments_filters(frozen: World, params: dict[str, Any], names: list[str]) -> None:
    assert list_ids(frozen, **params) == [frozen.ids[name] for name in names]


def test_project_filter(frozen: World) -> None:
    assert list_ids(frozen, projectId=frozen.project) == [
        frozen.ids[n] for n in ("mnist", "cifar", "paused", "old")
    ]
    # with a project, archived=false only looks at the experiment itself
    assert list_ids(frozen, projectId=frozen.shelf_project, archived="false") == [
        frozen.ids["shelved"]
    ]
    missing = frozen.api.get("/api/v1/experiments", params={"projectId": 99})
    assert missing.status_code == 404 and error_of(missing) == {
        "code": 5,
        "reason": "NotFound",
        "error": "project '99' not found",
    }


@pytest.mark.parametrize(
    "state",
    ["STATE_QUEUED", "STATE_RUNNING_NOT", "STATE_DELETED", "STATE_UNSPECIFIED", "STATE_STARTING"],
)
def test_states_that_are_not_stored_states(frozen: World, state: str) -> None:
    response = frozen.api.get("/api/v1/experiments", params={"states": state})
    if state == "STATE_RUNNING_NOT":
        assert response.status_code == 400
        assert error_of(response)["error"] == "STATE_RUNNING_NOT is not a valid experimentv1.State"
        return
    name = state.removeprefix("STATE_")
    assert response.status_code == 500
    assert error_of(response) == {
        "code": 13,
        "reason": "Internal",
        "error": f'ERROR: invalid input value for enum experiment_state: "{name}" (SQLSTATE 22P02)',
    }


def test_running_is_a_stored_state(frozen: World) -> None:
    assert (
        list_ids(frozen, states="STATE_RUNNING") == []
    )  # valid in the enum, but nothing stored with it


# --- sorting and pagination --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sort_by", "order_by", "names"),
    [
        (
            "SORT_BY_UNSPECIFIED",
            "ORDER_BY_DESC",
            ["queued", "shelved", "old", "paused", "cifar", "mnist"],
        ),
        (
            "SORT_BY_NAME",
            "ORDER_BY_ASC",
            ["paused", "cifar", "mnist", "old", "queued", "shelved"],
        ),  # "Beta run" case-insensitively
        ("SORT_BY_NAME", "ORDER_BY_DESC", ["shelved", "queued", "old", "mnist", "cifar", "paused"]),
        (
            "SORT_BY_NUM_TRIALS",
            "ORDER_BY_DESC",
            ["mnist", "paused", "cifar", "queued", "shelved", "old"],
        ),  # ties by id DESC
        (
            "SORT_BY_NUM_TRIALS",
            "ORDER_BY_ASC",
            ["old", "shelved", "queued", "cifar", "paused", "mnist"],
        ),
        (
            "SORT_BY_PROGRESS",
            "ORDER_BY_ASC",
            ["paused", "queued", "cifar", "mnist", "old", "shelved"],
        ),
        (
            "SORT_BY_END_TIME",
            "ORDER_BY_DESC",
            ["shelved", "old", "mnist", "queued", "paused", "cifar"],
        ),  # NULLs last
        (
            "SORT_BY_END_TIME",
            "ORDER_BY_ASC",
            ["mnist", "old", "shelved", "cifar", "paused", "queued"],
        ),
        (
            "SORT_BY_FORKED_FROM",
            "ORDER_BY_ASC",
            ["queued", "mnist", "cifar", "paused", "old", "shelved"],
        ),
        (
            "SORT_BY_STATE",
            "ORDER_BY_ASC",
            ["cifar", "queued", "paused", "mnist", "old", "shelved"],
        ),  # enum order
        ("SORT_BY_USER", "ORDER_BY_ASC", ["mnist", "cifar", "paused", "old", "shelved", "queued"]),
        (
            "SORT_BY_RESOURCE_POOL",
            "ORDER_BY_DESC",
            ["cifar", "queued", "shelved", "old", "paused", "mnist"],
        ),
        (
            "SORT_BY_SEARCHER_METRIC_VAL",
            "ORDER_BY_ASC",
            ["mnist", "paused", "cifar", "old", "shelved", "queued"],
        ),
        (
            "SORT_BY_DESCRIPTION",
            "ORDER_BY_ASC",
            ["paused", "old", "shelved", "queued", "mnist", "cifar"],
        ),
    ],
)
def test_get_experiments_sort(frozen: World, sort_by: str, order_by: str, names: list[str]) -> None:
    assert list_ids(frozen, sortBy=sort_by, orderBy=order_by) == [
        frozen.ids[name] for name in names
    ]


def test_bad_enum_is_a_400(frozen: World) -> None:
    response = frozen.api.get("/api/v1/experiments", params={"sortBy": "SORT_BY_COLOR"})
    assert response.status_code == 400
    assert (
        error_of(response)["error"]
        == "SORT_BY_COLOR is not a valid apiv1.GetExperimentsRequest_SortBy"
    )


def test_default_page_is_100(local_master: LocalMaster, api: httpx.Client) -> None:
    with Seeder(local_master.database) as seed:
        for index in range(105):
            seed.experiment(name=f"e{index}")

    def pagination(**params: Any) -> tuple[int, dict[str, int]]:
        body = api.get("/api/v1/experiments", params=params).json()
        return len(body["experiments"]), body["pagination"]

    assert pagination() == (
        100,
        {"offset": 0, "limit": 0, "startIndex": 0, "endIndex": 100, "total": 105},
    )
    assert pagination(offset=100) == (
        5,
        {"offset": 100, "limit": 0, "startIndex": 100, "endIndex": 105, "total": 105},
    )
    assert pagination(limit=-1)[0] == 105
    assert pagination(limit=-2) == (
        0,
        {"offset": 0, "limit": -2, "startIndex": 0, "endIndex": 0, "total": 105},
    )
    assert pagination(offset=-3, limit=2) == (
        2,
        {"offset": -3, "limit": 2, "startIndex": 102, "endIndex": 104, "total": 105},
    )
    assert pagination(offset=200)[1] == {
        "offset": 200,
        "limit": 0,
        "startIndex": 105,
        "endIndex": 105,
        "total": 105,
    }
    assert pagination(offset=-200)[1]["startIndex"] == 105
    negative = api.get("/api/v1/experiments", params={"limit": -3})
    assert negative.status_code == 500
    assert error_of(negative)["error"] == "ERROR: LIMIT must not be negative (SQLSTATE 2201W)"


# --- GetExperiment ---------------------------------------------------------------------------
def test_get_experiment_single_view(frozen: World) -> None:
    body = frozen.api.get(f"/api/v1/experiments/{frozen.ids['mnist']}").json()
    assert bindings.v1GetExperimentResponse.from_json(body).experiment.name == "mnist"
    assert GetExperimentResponse.model_validate(body).config == body["experiment"]["config"]
    experiment = body["experiment"]
    assert experiment["trialIds"] == [1, 2] and experiment["numTrials"] == 2
    assert experiment["notes"] == "# notes" and experiment["originalConfig"] != ""
    assert experiment["displayName"] == "" and experiment["searcherMetric"] == ""
    assert experiment["hyperparameters"] is None and "duration" not in experiment
    assert experiment["modelDefinitionSize"] == 12 and experiment["projectOwnerId"] == 1
    assert body["jobSummary"] is None and body["config"]["name"] == "mnist"


def test_get_experiment_job_summary(frozen: World) -> None:
    running = frozen.api.get(f"/api/v1/experiments/{frozen.ids['cifar']}").json()
    assert running["experiment"]["state"] == "STATE_RUNNING"
    assert running["jobSummary"] == {"state": "STATE_SCHEDULED", "jobsAhead": 0}
    queued = frozen.api.get(f"/api/v1/experiments/{frozen.ids['queued']}").json()
    assert queued["experiment"]["state"] == "STATE_QUEUED" and queued["jobSummary"] == {
        "state": "STATE_QUEUED",
        "jobsAhead": 0,
    }
    assert (
        frozen.api.get(f"/api/v1/experiments/{frozen.ids['paused']}").json()["jobSummary"] is None
    )
    missing = frozen.api.get("/api/v1/experiments/77")
    assert missing.status_code == 404 and error_of(missing) == {
        "code": 5,
        "reason": "NotFound",
        "error": "experiment '77' not found",
    }


def test_experiment_labels_by_usage(frozen: World) -> None:
    # distinct label lists: [prod, vision], [vision], [], [prod], [a,b] -> vision 2, prod 2, a,b 1
    body = frozen.api.get("/api/v1/experiment/labels").json()
    assert body["labels"] == ["prod", "vision", "a,b"]
    assert frozen.api.get("/api/v1/experiment/labels", params={"projectId": frozen.project}).json()[
        "labels"
    ] == ["prod", "vision"]
    assert frozen.api.get("/api/v1/experiment/labels", params={"projectId": 123}).status_code == 404


# --- PatchExperiment ---------------------------------------------------------------------------
def patch(world: World, experiment: int, body: dict[str, Any]) -> httpx.Response:
    return world.api.patch(f"/api/v1/experiments/{experiment}", json=body)


def test_patch_metadata(world: World) -> None:
    mnist = world.ids["mnist"]
    response = patch(world, mnist, {"name": "digits", "description": "", "notes": "new notes"})
    assert response.status_code == 200
    experiment = bindings.v1PatchExperimentResponse.from_json(response.json()).experiment
    assert experiment is not None and experiment.name == "digits" and experiment.description == ""
    assert (
        response.json()["experiment"]["config"]["name"] == "mnist"
    )  # the config read before the edit
    after = world.api.get(f"/api/v1/experiments/{mnist}").json()
    assert after["experiment"]["name"] == "digits" and after["config"]["name"] == "digits"
    assert after["experiment"]["notes"] == "new notes" and after["config"]["description"] == ""
    assert list_ids(world, name="digits") == [mnist]


def test_patch_wrappers_and_labels(world: World) -> None:
    mnist = world.ids["mnist"]
    response = patch(world, mnist, {"labels": ["b", 3, "a", "b", None]})
    assert response.json()["experiment"]["labels"] == ["b", "a"]  # strings, de-duplicated
    untouched = patch(world, mnist, {"name": None, "notes": None}).json()["experiment"]
    assert (
        untouched["name"] == "mnist"
        and untouched["notes"] == "# notes"
        and untouched["labels"] == ["b", "a"]
    )
    assert patch(world, mnist, {"labels": []}).json()["experiment"]["labels"] == []
    assert world.api.get(f"/api/v1/experiments/{mnist}").json()["config"]["labels"] == []


def test_patch_name_rules(world: World) -> None:
    blank = patch(world, world.ids["mnist"], {"name": "   "})
    assert blank.status_code == 400
    assert error_of(blank) == {
        "code": 3,
        "reason": "InvalidArgument",
        "error": "`name` must not be an empty or whitespace string",
    }
    assert patch(world, 404, {"name": "x"}).status_code == 404


def test_patch_resources_needs_a_live_experiment(world: World) -> None:
    done = patch(world, world.ids["mnist"], {"resources": {"maxSlots": 4}})
    assert (
        done.status_code == 404
        and error_of(done)["error"] == f"experiment '{world.ids['mnist']}' not found"
    )
    live = patch(
        world, world.ids["cifar"], {"resources": {"maxSlots": 4, "weight": 2.5, "priority": 7}}
    )
    assert live.status_code == 200
    resources = world.api.get(f"/api/v1/experiments/{world.ids['cifar']}").json()["config"][
        "resources"
    ]
    assert (resources["max_slots"], resources["weight"], resources["priority"]) == (4, 2.5, 7)
    storage = patch(world, world.ids["mnist"], {"checkpointStorage": {"saveTrialBest": 3}})
    assert storage.status_code == 200
    config = world.api.get(f"/api/v1/experiments/{world.ids['mnist']}").json()["config"][
        "checkpoint_storage"
    ]
    assert (
        config["save_trial_best"],
        config["save_trial_latest"],
        config["save_experiment_best"],
    ) == (3, 0, 0)


def test_name_patch_turns_empty_labels_into_null(world: World, local_master: LocalMaster) -> None:
    paused = world.ids["paused"]
    patch(world, paused, {"name": "renamed"})
    with local_master.database.transaction(write=False) as db:
        from detorm.local import _tables as t

        row = db.get(t.ExperimentRow, paused)
        assert row is not None and row.config["labels"] is None  # a nil Go slice marshals to null
    assert world.api.get(f"/api/v1/experiments/{paused}").json()["experiment"]["labels"] == []


# --- single labels ---------------------------------------------------------------------------
def test_put_and_delete_label(world: World) -> None:
    cifar = world.ids["cifar"]
    assert world.api.put(f"/api/v1/experiments/{cifar}/labels/new").json() == {
        "labels": ["vision", "new"]
    }
    assert world.api.put(f"/api/v1/experiments/{cifar}/labels/new").json() == {
        "labels": ["vision", "new"]
    }
    assert (
        world.api.put(f"/api/v1/experiments/{cifar}/labels/with%20space").json()["labels"][-1]
        == "with space"
    )
    assert world.api.delete(f"/api/v1/experiments/{cifar}/labels/vision").json() == {
        "labels": ["new", "with space"]
    }
    assert world.api.delete(f"/api/v1/experiments/{cifar}/labels/absent").json() == {
        "labels": ["new", "with space"]
    }
    parsed = bindings.v1DeleteExperimentLabelResponse.from_json(
        world.api.delete(f"/api/v1/experiments/{cifar}/labels/new").json()
    )
    assert parsed.labels == ["with space"]
    assert list_ids(world, labels="with space") == [cifar]
    for method in ("PUT", "DELETE"):
        unknown = world.api.request(method, "/api/v1/experiments/555/labels/x")
        assert unknown.status_code == 500
        assert error_of(unknown) == {
            "code": 13,
            "reason": "Internal",
            "error": "sql: no rows in result set",
        }


def test_list_handles_many_experiments(local_master: LocalMaster, api: httpx.Client) -> None:
    with Seeder(local_master.database) as seed:
        for index in range(30):
            experiment = seed.experiment(name=f"n{index}", labels=[f"l{index % 3}"])
            seed.trial(experiment)
    body = api.get("/api/v1/experiments", params={"limit": -1, "labels": "l1"}).json()
    assert [e["name"] for e in body["experiments"]] == [f"n{i}" for i in range(1, 30, 3)]
    assert all(e["numTrials"] == 1 for e in body["experiments"])
    assert json.loads(json.dumps(body)) == body


def test_official_sdk_round_trip(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The official SDK lists, edits and drives experiments and reads their trials."""
    from determined.experimental import client

    monkeypatch.setenv("HOME", str(tmp_path))  # the SDK caches its token under ~
    sdk = client.Determined(
        master=str(world.api.base_url).rstrip("/"), user="determined", password=""
    )
    listed = sdk.list_experiments(labels=["vision"])
    assert [e.id for e in listed] == [world.ids["mnist"], world.ids["cifar"]]
    mnist = sdk.get_experiment(world.ids["mnist"])
    mnist.set_name("digits")
    mnist.set_description("numbers")
    mnist.add_label("new")
    assert mnist.labels == {"prod", "vision", "new"}
    mnist.remove_label("prod")
    mnist.set_labels({"only"})
    assert mnist.labels == {"only"} and mnist.name == "digits"
    assert mnist.wait(interval=0.01) == client.ExperimentState.COMPLETED
    assert [t.id for t in mnist.list_trials()] == [1, 2]
    assert sdk.get_trial(1).experiment_id == mnist.id
    cifar = sdk.get_experiment(world.ids["cifar"])
    cifar.pause()
    cifar.reload()
    assert cifar.state == client.ExperimentState.PAUSED
    cifar.activate()
    cifar.kill()
    assert cifar.wait(interval=0.01) == client.ExperimentState.CANCELED
    cifar.archive()
    cifar.unarchive()
    cifar.move_to_project("Uncategorized", "Uncategorized")
    assert sdk.get_experiment(world.ids["cifar"]).project_id == 1


def test_count_keeps_only_the_joins_its_filter_uses() -> None:
    from detorm.local._routes.experiments import list_count_from

    assert "JOIN" not in list_count_from("WHERE e.archived = 0")
    trimmed = list_count_from("WHERE w.archived = 0 AND u.username IN (?)")
    assert "JOIN projects p" in trimmed and "JOIN workspaces w" in trimmed  # w is joined via p
    assert "JOIN users u" in trimmed and "JOIN trials r" not in trimmed
