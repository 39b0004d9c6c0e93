"""The model registry on detorm.local, as ``api_model.go`` and its SQL behave."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from determined.common.api import bindings

from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of, login


@dataclass
class World:
    api: httpx.Client  # "determined", not an admin
    admin: httpx.Client
    master: LocalMaster
    lab: int  # a second workspace
    checkpoints: list[str]  # completed checkpoints of one trial, batches 100, 200, 300
    active: str  # a checkpoint still being written


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        lab = seed.workspace("lab")
        trial = seed.trial(seed.experiment(name="e"))
        seed.metrics(trial, "validation", [(100, {"validation_loss": 0.3})])
        checkpoints = [seed.checkpoint(trial, total_batches=b) for b in (100, 200, 300)]
        active = seed.checkpoint(trial, total_batches=400, state="ACTIVE")
        mnist = seed.model(
            "mnist", description="Digits", labels=["vision", "prod"], metadata={"a": 1}
        )
        seed.model("gpt", description="text model", labels=["nlp"], owner="admin", workspace=lab)
        seed.model("old", labels=["prod"], archived=True)
        seed.model_version(mnist, checkpoints[0], name="first")
        seed.model_version(mnist, checkpoints[1], name="second", labels=["x"])
    admin = login(local_master.url, "admin")
    try:
        yield World(api, admin, local_master, lab, checkpoints, active)
    finally:
        admin.close()


def listed(world: World, **params: Any) -> list[str]:
    response = world.api.get("/api/v1/models", params=params)
    assert response.status_code == 200, response.text
    return [m["name"] for m in response.json()["models"]]


# --- GetModels -------------------------------------------------------------------------------------


def test_models_list_fields_and_default_order(world: World) -> None:
    body = world.api.get("/api/v1/models").json()
    assert [m["name"] for m in body["models"]] == ["mnist", "gpt", "old"]
    mnist = body["models"][0]
    assert mnist["numVersions"] == 2 and mnist["labels"] == ["vision", "prod"]
    assert mnist["username"] == "determined" and mnist["userId"] == 2 and mnist["workspaceId"] == 1
    assert mnist["metadata"] == {"a": 1} and mnist["archived"] is False
    assert body["pagination"] == {
        "offset": 0,
        "limit": 0,
        "startIndex": 0,
        "endIndex": 3,
        "total": 3,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"labels": ["prod", "nlp"]}, ["mnist", "gpt", "old"]),  # any label matches
        ({"labels": "vision"}, ["mnist"]),
        ({"name": "N"}, ["mnist"]),  # case-insensitive substring
        ({"description": "model"}, ["gpt"]),
        ({"description": "_ig"}, ["mnist"]),  # the value is a LIKE pattern
        ({"archived": "true"}, ["old"]),
        ({"users": "admin"}, ["gpt"]),
        ({"userIds": 2}, ["mnist", "old"]),
        ({"id": 2}, ["gpt"]),
        ({"workspaceNames": "lab"}, ["gpt"]),
        ({"workspaceNames": "nowhere"}, ["mnist", "gpt", "old"]),  # no workspace found: no filter
        ({"workspaceIds": 1, "workspaceNames": "lab"}, ["mnist", "old"]),  # ids win
    ],
)
def test_models_filters(world: World, params: dict[str, Any], expected: list[str]) -> None:
    assert listed(world, **params) == expected


def test_models_sorts_and_pages(world: World) -> None:
    assert listed(world, sortBy="SORT_BY_NAME") == ["gpt", "mnist", "old"]
    assert listed(world, sortBy="SORT_BY_NUM_VERSIONS", orderBy="ORDER_BY_DESC") == [
        "mnist",
        "old",
        "gpt",
    ]
    # "lab" before "Uncategorized": the database's en_US collation ignores case first
    assert listed(world, sortBy="SORT_BY_WORKSPACE") == ["gpt", "mnist", "old"]
    assert listed(world, sortBy="SORT_BY_DESCRIPTION") == ["old", "mnist", "gpt"]
    assert listed(world, offset=1, limit=1) == ["gpt"]
    beyond = world.api.get("/api/v1/models", params={"offset": 4})
    assert beyond.status_code == 400 and error_of(beyond)["error"] == "offset out of bounds"


def test_get_model_by_name_or_id(world: World) -> None:
    assert world.api.get("/api/v1/models/mnist").json()["model"]["id"] == 1
    assert world.api.get("/api/v1/models/2").json()["model"]["name"] == "gpt"
    missing = world.api.get("/api/v1/models/nope")
    assert missing.status_code == 404
    assert error_of(missing) == {"code": 5, "reason": "NotFound", "error": 'model "nope" not found'}
    assert error_of(world.api.get("/api/v1/models/77"))["error"] == 'model "77" not found'


def test_model_labels_by_popularity(world: World) -> None:
    assert world.api.get("/api/v1/model/labels").json() == {"labels": ["prod", "nlp", "vision"]}
    in_lab = world.api.get("/api/v1/model/labels", params={"workspaceId": world.lab}).json()
    assert in_lab == {"labels": ["nlp"]}


# --- PostModel, PatchModel -------------------------------------------------------------------------


def test_post_model(world: World) -> None:
    response = world.api.post(
        "/api/v1/models",
        json={"name": "new", "labels": ["a", "b,c"], "workspaceName": "lab", "notes": "n"},
    )
    assert response.status_code == 200, response.text
    model = response.json()["model"]
    assert model["workspaceId"] == world.lab and model["labels"] == [
        "a",
        "b",
        "c",
    ]  # joined, split again
    assert model["metadata"] == {} and model["username"] == "determined"
    assert model["userId"] == 0  # db.InsertModel does not select the user id
    assert world.api.get("/api/v1/models/new").json()["model"]["userId"] == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("  ", "model names cannot be blank"),
        ("a  b", "model names cannot have excessive spacing"),
        ("a/b", "model names cannot have slashes"),
        ("123", "model names cannot be only numbers"),
    ],
)
def test_post_model_validates_names(world: World, name: str, message: str) -> None:
    response = world.api.post("/api/v1/models", json={"name": name})
    assert response.status_code == 400 and error_of(response)["error"] == message


def test_post_model_refusals(world: World) -> None:
    duplicate = world.api.post("/api/v1/models", json={"name": "mnist"})
    assert duplicate.status_code == 409
    assert error_of(duplicate)["error"] == "avoid names equal to other models (case-sensitive)"
    unknown = world.api.post("/api/v1/models", json={"name": "m", "workspaceName": "nowhere"})
    assert (
        unknown.status_code == 500
        and error_of(unknown)["error"] == "failed to get workspace nowhere: not found"
    )
    missing_id = world.api.post("/api/v1/models", json={"name": "m", "workspaceId": 99})
    assert (
        missing_id.status_code == 500
        and "models_workspace_id_fkey" in error_of(missing_id)["error"]
    )


def test_patch_model_answers_the_updated_columns_only(world: World) -> None:
    before = world.api.get("/api/v1/models/mnist").json()["model"]["lastUpdatedTime"]
    response = world.api.patch(
        "/api/v1/models/mnist",
        json={
            "description": "d",
            "labels": ["z", 3, "z", "y"],
            "metadata": {"b": 2},
            "workspaceName": "lab",
        },
    )
    assert response.status_code == 200, response.text
    model = response.json()["model"]
    assert (model["description"], model["labels"], model["metadata"]) == ("d", ["z", "y"], {"b": 2})
    assert model["id"] == 0 and model["username"] == "" and model["numVersions"] == 0
    fresh = world.api.get("/api/v1/models/mnist").json()["model"]
    assert fresh["workspaceId"] == world.lab and fresh["labels"] == ["z", "y"]
    assert fresh["lastUpdatedTime"] != before


def test_patch_model_without_changes_answers_the_model(world: World) -> None:
    model = world.api.patch(
        "/api/v1/models/1", json={"name": "mnist", "metadata": {"a": 1.0}}
    ).json()["model"]
    assert model["id"] == 1 and model["numVersions"] == 2 and model["userId"] == 2


def test_patch_model_refusals(world: World) -> None:
    archived = world.api.patch("/api/v1/models/old", json={"description": "x"})
    assert archived.status_code == 500
    assert (
        error_of(archived)["error"] == 'model "old" is archived and cannot have attributes updated'
    )
    blank = world.api.patch("/api/v1/models/mnist", json={"name": " "})
    assert blank.status_code == 400 and error_of(blank)["error"] == "model names cannot be blank"
    taken = world.api.patch("/api/v1/models/mnist", json={"name": "gpt"})
    assert taken.status_code == 409
    # the workspace is read with a struct scan that cannot place the user_id column
    by_id = world.api.patch("/api/v1/models/mnist", json={"workspaceId": world.lab})
    assert by_id.status_code == 500
    assert error_of(by_id)["error"] == (
        f"failed to get workspace with id {world.lab}: missing destination name user_id in *workspacev1.Workspace"
    )
    assert world.api.patch("/api/v1/models/nope", json={}).status_code == 404


# --- archive, move, delete -------------------------------------------------------------------------


def test_archive_move_and_delete(world: World) -> None:
    assert world.api.post("/api/v1/models/mnist/archive").json() == {}
    assert world.api.get("/api/v1/models/mnist").json()["model"]["archived"] is True
    assert world.api.post("/api/v1/models/1/unarchive").json() == {}
    moved = world.api.post("/api/v1/models/mnist/move", json={"destinationWorkspaceId": world.lab})
    assert moved.json() == {}
    assert world.api.get("/api/v1/models/mnist").json()["model"]["workspaceId"] == world.lab
    nowhere = world.api.post("/api/v1/models/mnist/move", json={"destinationWorkspaceId": 99})
    assert nowhere.status_code == 500 and error_of(nowhere)["error"].startswith(
        "error moving a model (mnist):"
    )
    others = world.api.delete("/api/v1/models/gpt")
    assert others.status_code == 403
    assert (
        error_of(others)["error"]
        == "non-admin users may not delete other users' models access denied"
    )
    assert world.api.delete("/api/v1/models/mnist").json() == {}
    assert world.api.get("/api/v1/models/mnist").status_code == 404


# --- model versions --------------------------------------------------------------------------------


def test_model_versions_list(world: World) -> None:
    body = world.api.get("/api/v1/models/mnist/versions").json()
    assert [v["version"] for v in body["modelVersions"]] == [1, 2]
    assert body["model"]["workspaceId"] == 1 and body["model"]["numVersions"] == 2
    first = body["modelVersions"][0]
    assert first["model"]["workspaceId"] == 0  # get_model_versions.sql leaves it out
    assert first["checkpoint"]["uuid"] == world.checkpoints[0] and first["name"] == "first"
    assert first["username"] == "determined" and first["lastUpdatedTime"] is not None
    assert first["checkpoint"]["training"]["searcherMetric"] == 0.3
    descending = world.api.get(
        "/api/v1/models/mnist/versions", params={"orderBy": "ORDER_BY_DESC"}
    ).json()
    assert [v["version"] for v in descending["modelVersions"]] == [2, 1]
    by_time = world.api.get(
        "/api/v1/models/1/versions",
        params={"sortBy": "SORT_BY_CREATION_TIME", "orderBy": "ORDER_BY_DESC"},
    ).json()
    assert [v["version"] for v in by_time["modelVersions"]] == [2, 1]
    page = world.api.get("/api/v1/models/mnist/versions", params={"offset": 1}).json()
    assert [v["version"] for v in page["modelVersions"]] == [2] and page["pagination"]["total"] == 2
    assert world.api.get("/api/v1/models/mnist/versions", params={"offset": 3}).status_code == 400
    assert world.api.get("/api/v1/models/nope/versions").status_code == 404


def test_get_model_version(world: World) -> None:
    version = world.api.get("/api/v1/models/mnist/versions/2").json()["modelVersion"]
    assert version["labels"] == ["x"] and version["model"]["workspaceId"] == 1
    missing = world.api.get("/api/v1/models/mnist/versions/9")
    assert (
        missing.status_code == 404
        and error_of(missing)["error"] == 'version 9 for model "mnist" not found'
    )


def test_post_model_version(world: World) -> None:
    response = world.api.post(
        "/api/v1/models/mnist/versions",
        json={
            "checkpointUuid": world.checkpoints[2],
            "name": "third",
            "notes": "n",
            "labels": ["l"],
        },
    )
    assert response.status_code == 200, response.text
    version = response.json()["modelVersion"]
    assert version["version"] == 3 and version["name"] == "third" and version["labels"] == ["l"]
    assert version["model"]["numVersions"] == 2  # counted before the insert
    # db.InsertModelVersion selects neither notes, user id nor update time
    assert version["notes"] == "" and version["userId"] == 0 and version["lastUpdatedTime"] is None
    assert version["checkpoint"]["uuid"] == world.checkpoints[2]
    assert world.api.get("/api/v1/models/mnist/versions/3").json()["modelVersion"]["notes"] == "n"


def test_post_model_version_refusals(world: World) -> None:
    active = world.api.post("/api/v1/models/mnist/versions", json={"checkpointUuid": world.active})
    assert active.status_code == 500
    assert error_of(active)["error"] == (
        f"checkpoint {world.active} is in STATE_ACTIVE state. checkpoints for model versions must be in a"
        " COMPLETED state"
    )
    unknown = "00000000-0000-0000-0000-000000000000"
    missing = world.api.post("/api/v1/models/mnist/versions", json={"checkpointUuid": unknown})
    assert (
        missing.status_code == 404
        and error_of(missing)["error"] == f"checkpoint '{unknown}' not found"
    )
    bad = world.api.post("/api/v1/models/mnist/versions", json={"checkpointUuid": "abc"})
    assert bad.status_code == 500 and "invalid input syntax for type uuid" in error_of(bad)["error"]
    archived = world.api.post(
        "/api/v1/models/old/versions", json={"checkpointUuid": world.checkpoints[0]}
    )
    assert error_of(archived)["error"] == 'model "old" is archived and cannot register new versions'


def test_patch_model_version(world: World) -> None:
    response = world.api.patch(
        "/api/v1/models/mnist/versions/1", json={"comment": "c", "labels": ["p", "p", "q"]}
    )
    assert response.status_code == 200, response.text
    version = response.json()["modelVersion"]
    assert (
        version["comment"] == "c" and version["labels"] == ["p", "q"] and version["name"] == "first"
    )
    # update_model_version.sql returns neither user nor update time
    assert (
        version["username"] == "" and version["userId"] == 0 and version["lastUpdatedTime"] is None
    )
    unchanged = world.api.patch("/api/v1/models/mnist/versions/1", json={"comment": "c"}).json()[
        "modelVersion"
    ]
    assert unchanged["username"] == "determined" and unchanged["lastUpdatedTime"] is not None
    missing = world.api.patch("/api/v1/models/mnist/versions/7", json={"comment": "c"})
    assert missing.status_code == 404


def test_delete_model_version(world: World) -> None:
    assert world.api.delete("/api/v1/models/mnist/versions/2").json() == {}
    assert world.api.get("/api/v1/models/mnist/versions/2").status_code == 404
    assert world.api.get("/api/v1/models/mnist").json()["model"]["numVersions"] == 1
    with Seeder(world.master.database) as seed:
        seed.model_version(2, world.checkpoints[0], owner="admin")
    others = world.api.delete("/api/v1/models/gpt/versions/1")
    assert others.status_code == 403
    assert (
        error_of(others)["error"]
        == "non-admin users may not delete other users' model versions access denied"
    )


# --- the official client can read it all ---------------------------------------------------------------


def test_official_bindings_parse_model_responses(world: World) -> None:
    models = bindings.v1GetModelsResponse.from_json(world.api.get("/api/v1/models").json())
    assert [m.name for m in models.models] == ["mnist", "gpt", "old"]
    one = bindings.v1GetModelResponse.from_json(world.api.get("/api/v1/models/mnist").json())
    assert one.model.numVersions == 2
    posted = world.api.post("/api/v1/models", json={"name": "sdk"}).json()
    assert bindings.v1PostModelResponse.from_json(posted).model.name == "sdk"
    patched = world.api.patch("/api/v1/models/sdk", json={"notes": "n"}).json()
    assert bindings.v1PatchModelResponse.from_json(patched).model.notes == "n"
    versions = bindings.v1GetModelVersionsResponse.from_json(
        world.api.get("/api/v1/models/mnist/versions").json()
    )
    assert [v.version for v in versions.modelVersions] == [1, 2]
    assert versions.modelVersions[0].checkpoint.training.searcherMetric == 0.3
    version = world.api.get("/api/v1/models/mnist/versions/1").json()
    assert bindings.v1GetModelVersionResponse.from_json(version).modelVersion.name == "first"
    new = world.api.post(
        "/api/v1/models/sdk/versions", json={"checkpointUuid": world.checkpoints[1]}
    ).json()
    assert bindings.v1PostModelVersionResponse.from_json(new).modelVersion.version == 1
    changed = world.api.patch("/api/v1/models/sdk/versions/1", json={"name": "v"}).json()
    assert bindings.v1PatchModelVersionResponse.from_json(changed).modelVersion.name == "v"
    labels = world.api.get("/api/v1/model/labels").json()
    assert bindings.v1GetModelLabelsResponse.from_json(labels).labels[0] == "prod"


def test_official_sdk_round_trip(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The official SDK's registry helpers work end to end (workspace, project, model, version)."""
    from determined.experimental import client

    monkeypatch.setenv("HOME", str(tmp_path))  # the SDK caches its token under ~
    sdk = client.Determined(master=world.master.url, user="determined", password="")
    workspace = sdk.create_workspace("sdk-ws")
    project = workspace.create_project("sdk-project", description="d")
    project.add_note("n", "c")
    assert [p.name for p in workspace.list_projects()] == ["sdk-project"]
    model = sdk.create_model("sdk-model", labels=["a"], workspace_name="sdk-ws")
    assert model.workspace_id == workspace.id
    version = model.register_version(world.checkpoints[0])
    assert version.model_version == 1 and version.checkpoint.uuid == world.checkpoints[0]
    model.set_labels(["q"])
    model.add_metadata({"k": 1})
    fetched = sdk.get_model("sdk-model")
    assert fetched.labels == ["q"] and fetched.metadata == {"k": 1}
    model.move_to_workspace("Uncategorized")
    assert sdk.get_model("sdk-model").workspace_id == 1
    checkpoint = sdk.get_checkpoint(world.checkpoints[1])
    checkpoint.add_metadata({"z": 1})
    assert sdk.get_checkpoint(world.checkpoints[1]).metadata["z"] == 1
    model.get_version(1).delete()
    model.delete()
    workspace.delete_project("sdk-project")
    sdk.delete_workspace("sdk-ws")
    assert [w.name for w in sdk.list_workspaces()] == ["Uncategorized", "lab"]
