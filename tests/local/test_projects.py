"""Projects on detorm.local, as ``api_project.go`` and ``project/postgres_project.go`` behave."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from determined.common.api import bindings
from sqlmodel import select

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from tests.conftest import error_of, login


@dataclass
class World:
    api: httpx.Client  # "determined", not an admin
    admin: httpx.Client
    master: LocalMaster
    lab: int  # a workspace owned by determined
    shelf: int  # an archived workspace
    vision: int  # determined's project in lab, with experiments
    empty: int  # admin's project in lab, no experiments
    old: int  # a project in the archived workspace
    other: int  # a workspace owned by admin


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        lab = seed.workspace("lab", owner="determined")
        shelf = seed.workspace("shelf", owner="admin", archived=True)
        other = seed.workspace("other", owner="admin")
        vision = seed.project("vision", workspace=lab, owner="determined", key="VIS")
        empty = seed.project("empty", workspace=other, owner="admin", description="nothing")
        old = seed.project("old", workspace=shelf, owner="admin")
        first = seed.experiment(project=vision, name="a")
        seed.trial(first)
        seed.trial(first)
        second = seed.experiment(project=vision, name="b", state="ACTIVE")
        seed.trial(second)
    admin = login(local_master.url, "admin")
    try:
        yield World(api, admin, local_master, lab, shelf, vision, empty, old, other)
    finally:
        admin.close()


# --- reading ---------------------------------------------------------------------------------------


def test_get_project_counts_experiments_and_runs(world: World) -> None:
    project = world.api.get(f"/api/v1/projects/{world.vision}").json()["project"]
    assert project["numExperiments"] == 2 and project["numActiveExperiments"] == 1
    assert project["numRuns"] == 3
    assert project["workspaceName"] == "lab" and project["username"] == "determined"
    assert project["lastExperimentStartedAt"] is not None and project["key"] == "VIS"
    assert project["state"] == "WORKSPACE_STATE_UNSPECIFIED" and project["notes"] == []
    empty = world.api.get(f"/api/v1/projects/{world.empty}").json()["project"]
    assert empty["lastExperimentStartedAt"] is None and empty["numRuns"] == 0
    # archived is the project's or its workspace's flag
    assert world.api.get(f"/api/v1/projects/{world.old}").json()["project"]["archived"] is True
    missing = world.api.get("/api/v1/projects/99")
    assert missing.status_code == 404
    assert error_of(missing) == {"code": 5, "reason": "NotFound", "error": "project '99' not found"}


def test_get_project_by_key_ignores_case(world: World) -> None:
    assert world.api.get("/api/v1/projects/key/vis").json()["project"]["id"] == world.vision
    missing = world.api.get("/api/v1/projects/key/nope")
    assert missing.status_code == 404 and error_of(missing)["error"] == "project 'nope' not found"


# --- PostProject -----------------------------------------------------------------------------------


def test_post_project_generates_a_key_from_the_name(world: World) -> None:
    response = world.api.post(
        f"/api/v1/workspaces/{world.lab}/projects", json={"name": "a-b c!d", "description": "x"}
    )
    assert response.status_code == 200, response.text
    project = response.json()["project"]
    assert re.fullmatch(r"ABC[A-Z0-9]{2}", project["key"])
    assert project["workspaceId"] == world.lab and project["username"] == "determined"
    assert (
        project["workspaceName"] == "" and project["notes"] == []
    )  # the inserted model, not re-read
    assert (
        world.api.get(f"/api/v1/projects/{project['id']}").json()["project"]["workspaceName"]
        == "lab"
    )
    short = world.api.post(f"/api/v1/workspaces/{world.lab}/projects", json={"name": "--"}).json()[
        "project"
    ]
    assert re.fullmatch(r"[A-Z0-9]{5}", short["key"])


def test_post_project_with_a_key(world: World) -> None:
    created = world.api.post(
        f"/api/v1/workspaces/{world.lab}/projects", json={"name": "k", "key": "ab1"}
    )
    assert created.json()["project"]["key"] == "AB1"
    taken = world.api.post(
        f"/api/v1/workspaces/{world.lab}/projects", json={"name": "k2", "key": "vis"}
    )
    assert taken.status_code == 409
    assert error_of(taken)["error"] == (
        "error creating project k2 in database: rpc error: code = AlreadyExists desc = error inserting project k2"
        " into database: project key VIS is already in use: row already exists"
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("TOOLONG", "project key cannot be longer than 5 characters"),
        ("", "project key cannot be empty"),
        ("a-b", "project key can only contain alphanumeric characters: A-B"),
    ],
)
def test_post_project_validates_keys(world: World, key: str, message: str) -> None:
    response = world.api.post(
        f"/api/v1/workspaces/{world.lab}/projects", json={"name": "n", "key": key}
    )
    assert response.status_code == 400 and error_of(response)["error"] == message


def test_post_project_refusals(world: World) -> None:
    duplicate = world.api.post(f"/api/v1/workspaces/{world.lab}/projects", json={"name": "vision"})
    assert duplicate.status_code == 409
    assert error_of(duplicate)["error"].endswith(
        "project name vision is already in use: row already exists"
    )
    too_long = world.api.post(f"/api/v1/workspaces/{world.lab}/projects", json={"name": "x" * 81})
    assert too_long.status_code == 500
    assert error_of(too_long)["error"].endswith(
        "rpc error: code = Internal desc = internal server error"
    )
    immutable = world.api.post("/api/v1/workspaces/1/projects", json={"name": "p"})
    assert error_of(immutable)["error"] == "workspace (1) is immutable and cannot add new projects"
    archived = world.api.post(f"/api/v1/workspaces/{world.shelf}/projects", json={"name": "p"})
    assert (
        error_of(archived)["error"]
        == f"workspace ({world.shelf}) is archived and cannot add new projects"
    )
    assert world.api.post("/api/v1/workspaces/99/projects", json={"name": "p"}).status_code == 404


# --- PatchProject ----------------------------------------------------------------------------------


def test_patch_project_changes_and_rereads(world: World) -> None:
    response = world.api.patch(
        f"/api/v1/projects/{world.vision}", json={"name": "sight", "description": "d", "key": "sgt"}
    )
    assert response.status_code == 200, response.text
    project = response.json()["project"]
    assert (project["name"], project["description"], project["key"]) == ("sight", "d", "SGT")
    assert project["numExperiments"] == 2 and project["workspaceName"] == "lab"
    assert project["numRuns"] == 0  # the re-read after an update selects no run count
    assert world.api.get("/api/v1/projects/key/sgt").json()["project"]["numRuns"] == 3


def test_patch_project_without_changes_answers_the_locked_row(world: World) -> None:
    project = world.api.patch(f"/api/v1/projects/{world.vision}", json={"name": "vision"}).json()[
        "project"
    ]
    assert project["name"] == "vision" and project["key"] == "VIS"
    assert project["username"] == "" and project["userId"] == 0 and project["numExperiments"] == 0


def test_patch_project_refusals(world: World) -> None:
    archived = world.admin.patch(f"/api/v1/projects/{world.old}", json={"name": "x"})
    assert archived.status_code == 500
    assert (
        error_of(archived)["error"]
        == f"project ({world.old}) is archived and cannot have attributes updated"
    )
    immutable = world.admin.patch("/api/v1/projects/1", json={"name": "x"})
    assert (
        error_of(immutable)["error"]
        == "project (1) is immutable and cannot have attributes updated"
    )
    bad_key = world.api.patch(f"/api/v1/projects/{world.vision}", json={"key": "a_b"})
    assert bad_key.status_code == 400
    assert error_of(bad_key)["error"] == "project key can only contain alphanumeric characters: a_b"
    others = world.api.patch(f"/api/v1/projects/{world.empty}", json={"description": "mine"})
    assert others.status_code == 403
    # the description check reuses the name check's wording
    assert (
        error_of(others)["error"]
        == "can't set project name: non admin users need to own the project or workspace"
    )
    missing = world.api.patch("/api/v1/projects/99", json={"name": "x"})
    assert missing.status_code == 404
    # the gateway allocates req.Project before reading the body: an empty body is an empty patch
    empty = world.api.patch(f"/api/v1/projects/{world.vision}", content=b"")
    assert empty.status_code == 200, empty.text


def test_patch_project_key_leaves_a_redirect(world: World) -> None:
    assert (
        world.api.patch(f"/api/v1/projects/{world.vision}", json={"key": "NEW"}).status_code == 200
    )
    with world.master.database.transaction(write=False) as db:
        keys = set(db.exec(select(t.LocalIdRedirectRow.project_key)).all())
    assert keys == {"NEW"}
    # NEW is now listed for vision's runs: another project cannot take it even once vision lets go
    assert (
        world.api.patch(f"/api/v1/projects/{world.vision}", json={"key": "NEWER"}).status_code
        == 200
    )
    taken = world.admin.patch(f"/api/v1/projects/{world.empty}", json={"key": "NEW"})
    assert taken.status_code == 409
    assert (
        error_of(taken)["error"]
        == "error updating project empty, provided key 'NEW' already in use in redirect table"
    )


# --- notes -----------------------------------------------------------------------------------------


def test_project_notes(world: World) -> None:
    added = world.api.post(
        f"/api/v1/projects/{world.vision}/notes", json={"name": "a", "contents": "1"}
    )
    assert added.json() == {"notes": [{"name": "a", "contents": "1"}]}
    again = world.api.post(f"/api/v1/projects/{world.vision}/notes", json={"name": "b"})
    assert again.json()["notes"] == [{"name": "a", "contents": "1"}, {"name": "b", "contents": ""}]
    put = world.api.put(
        f"/api/v1/projects/{world.vision}/notes", json={"notes": [{"name": "c", "contents": "3"}]}
    )
    assert put.json() == {"notes": [{"name": "c", "contents": "3"}]}
    assert world.api.get(f"/api/v1/projects/{world.vision}").json()["project"]["notes"] == [
        {"name": "c", "contents": "3"}
    ]
    assert world.api.post("/api/v1/projects/99/notes", json={"name": "a"}).status_code == 404


# --- delete, archive, move -------------------------------------------------------------------------


def test_delete_project(world: World) -> None:
    with_experiments = world.api.delete(f"/api/v1/projects/{world.vision}")
    assert with_experiments.json() == {"completed": False}
    assert world.api.get(f"/api/v1/projects/{world.vision}").status_code == 404
    with world.master.database.transaction(write=False) as db:
        assert db.exec(select(t.TrialRow)).all() == []
    assert world.admin.delete(f"/api/v1/projects/{world.empty}").json() == {"completed": True}
    immutable = world.admin.delete("/api/v1/projects/1")
    assert immutable.status_code == 500
    assert (
        error_of(immutable)["error"]
        == "project (1) does not exist or not deletable by this user: not found"
    )


def test_delete_project_keeps_registered_checkpoints(world: World) -> None:
    with Seeder(world.master.database) as seed:
        trial = seed.db.exec(select(t.TrialRow.id)).first()
        assert trial is not None
        uuid = seed.checkpoint(trial, total_batches=10)
        seed.model_version(seed.model("kept"), uuid)
    world.api.delete(f"/api/v1/projects/{world.vision}")
    version = world.api.get("/api/v1/models/kept/versions/1").json()["modelVersion"]
    assert (
        version["checkpoint"]["uuid"] == uuid and "trialId" not in version["checkpoint"]["training"]
    )


def test_delete_project_needs_ownership(world: World) -> None:
    others = world.api.delete(f"/api/v1/projects/{world.empty}")
    assert others.status_code == 403
    assert (
        error_of(others)["error"]
        == "can't delete project: non admin users need to own the project or workspace"
    )


def test_archive_and_unarchive_project(world: World) -> None:
    assert world.api.post(f"/api/v1/projects/{world.vision}/archive").json() == {}
    assert world.api.get(f"/api/v1/projects/{world.vision}").json()["project"]["archived"] is True
    assert world.api.post(f"/api/v1/projects/{world.vision}/unarchive").json() == {}
    in_archived = world.admin.post(f"/api/v1/projects/{world.old}/unarchive")
    assert in_archived.status_code == 500
    assert error_of(in_archived)["error"] == (
        "This project belongs to an archived workspace. To make changes, first unarchive the workspace."
    )
    immutable = world.admin.post("/api/v1/projects/1/archive")
    assert error_of(immutable)["error"] == "error archiving project (1): not found"


def test_move_project(world: World) -> None:
    moved = world.api.post(
        f"/api/v1/projects/{world.vision}/move", json={"destinationWorkspaceId": world.other}
    )
    assert moved.status_code == 200 and moved.json() == {}
    project = world.api.get(f"/api/v1/projects/{world.vision}").json()["project"]
    assert project["workspaceId"] == world.other and project["workspaceName"] == "other"
    to_archived = world.api.post(
        f"/api/v1/projects/{world.vision}/move", json={"destinationWorkspaceId": world.shelf}
    )
    assert (
        error_of(to_archived)["error"]
        == f"workspace ({world.shelf}) is archived and cannot add new projects"
    )
    to_immutable = world.api.post(
        f"/api/v1/projects/{world.vision}/move", json={"destinationWorkspaceId": 1}
    )
    assert (
        error_of(to_immutable)["error"] == "workspace (1) is immutable and cannot add new projects"
    )
    others = world.api.post(
        f"/api/v1/projects/{world.empty}/move", json={"destinationWorkspaceId": world.lab}
    )
    assert others.status_code == 403
    assert error_of(others)["error"] == "non admin users can't move projects that someone else owns"
    with Seeder(world.master.database) as seed:
        seed.project("vision", workspace=world.lab)
    clash = world.api.post(
        f"/api/v1/projects/{world.vision}/move", json={"destinationWorkspaceId": world.lab}
    )
    assert (
        error_of(clash)["error"] == "project with name 'vision' already exists in target workspace"
    )
    from_archived = world.admin.post(
        f"/api/v1/projects/{world.old}/move", json={"destinationWorkspaceId": world.lab}
    )
    assert from_archived.status_code == 500
    assert error_of(from_archived)["error"] == f"error moving project ({world.old}): not found"


# --- the official client can read it all ---------------------------------------------------------------


def test_official_bindings_parse_project_responses(world: World) -> None:
    got = bindings.v1GetProjectResponse.from_json(
        world.api.get(f"/api/v1/projects/{world.vision}").json()
    )
    assert got.project.numRuns == 3 and got.project.lastExperimentStartedAt is not None
    by_key = world.api.get("/api/v1/projects/key/VIS").json()
    assert bindings.v1GetProjectByKeyResponse.from_json(by_key).project.id == world.vision
    posted = world.api.post(f"/api/v1/workspaces/{world.lab}/projects", json={"name": "sdk"}).json()
    assert bindings.v1PostProjectResponse.from_json(posted).project.name == "sdk"
    patched = world.api.patch(f"/api/v1/projects/{world.vision}", json={"description": "x"}).json()
    assert bindings.v1PatchProjectResponse.from_json(patched).project.description == "x"
    unchanged = world.api.patch(f"/api/v1/projects/{world.vision}", json={}).json()
    assert bindings.v1PatchProjectResponse.from_json(unchanged).project.key == "VIS"
    note = world.api.post(
        f"/api/v1/projects/{world.vision}/notes", json={"name": "n", "contents": "c"}
    ).json()
    assert bindings.v1AddProjectNoteResponse.from_json(note).notes[0].name == "n"
    put = world.api.put(f"/api/v1/projects/{world.vision}/notes", json={"notes": []}).json()
    assert bindings.v1PutProjectNotesResponse.from_json(put).notes == []
    deleted = world.admin.delete(f"/api/v1/projects/{world.empty}").json()
    assert bindings.v1DeleteProjectResponse.from_json(deleted).completed is True
