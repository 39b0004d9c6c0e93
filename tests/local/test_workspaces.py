"""Workspaces on detorm.local, as ``api_workspace.go`` and ``get_workspaces.sql`` behave."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
    research: int  # owned by determined, pinned by determined
    archive: int  # owned by admin, archived
    beta: int  # owned by admin
    vision: int  # a project of research


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        research = seed.workspace("research", owner="determined")
        archive = seed.workspace("Archive", owner="admin", archived=True)
        beta = seed.workspace("beta", owner="admin")
        vision = seed.project("vision", workspace=research, owner="determined")
        seed.project("audio", workspace=research, owner="admin")
        seed.experiment(project=vision, name="a")
        seed.experiment(project=vision, name="b", state="ACTIVE")
        seed.db.add(t.WorkspacePinRow(workspace_id=research, user_id=2, created_at=seed._tick()))
    admin = login(local_master.url, "admin")
    try:
        yield World(api, admin, local_master, research, archive, beta, vision)
    finally:
        admin.close()


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [w["name"] for w in response.json()["workspaces"]]


# --- GetWorkspaces ---------------------------------------------------------------------------------


def test_list_defaults_to_id_order_with_counts_and_the_callers_pins(world: World) -> None:
    body = world.api.get("/api/v1/workspaces").json()
    assert [w["name"] for w in body["workspaces"]] == [
        "Uncategorized",
        "research",
        "Archive",
        "beta",
    ]
    research = body["workspaces"][1]
    assert research["numProjects"] == 2 and research["numExperiments"] == 2
    assert research["pinned"] is True and "pinnedAt" in research
    assert research["username"] == "determined" and research["userId"] == 2
    assert "checkpointStorageConfig" not in research  # the list query does not select it
    assert body["workspaces"][0]["pinned"] is False and "pinnedAt" not in body["workspaces"][0]
    assert body["pagination"] == {
        "offset": 0,
        "limit": 0,
        "startIndex": 0,
        "endIndex": 4,
        "total": 4,
    }
    # pins are per user
    assert [w["pinned"] for w in world.admin.get("/api/v1/workspaces").json()["workspaces"]] == [
        False
    ] * 4


def test_list_sorts_by_name_and_direction(world: World) -> None:
    # Names compare with the master database's collation (en_US.UTF-8), not byte by byte.
    assert names(world.api.get("/api/v1/workspaces", params={"sortBy": "SORT_BY_NAME"})) == [
        "Archive", "beta", "research", "Uncategorized",
    ]  # fmt: skip
    assert names(world.api.get("/api/v1/workspaces", params={"orderBy": "ORDER_BY_DESC"})) == [
        "beta", "Archive", "research", "Uncategorized",
    ]  # fmt: skip
    bad = world.api.get("/api/v1/workspaces", params={"sortBy": "SORT_BY_AGE"})
    assert bad.status_code == 400 and error_of(bad)["code"] == 3


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "RESEARCH"}, ["research"]),  # ILIKE without wildcards: exact, any case
        ({"name": "res"}, []),
        ({"name": "r%"}, ["research"]),  # the value is the pattern
        ({"nameCaseSensitive": "archive"}, []),
        ({"nameCaseSensitive": "Archive"}, ["Archive"]),
        ({"archived": "true"}, ["Archive"]),
        ({"archived": "false"}, ["Uncategorized", "research", "beta"]),
        ({"pinned": "true"}, ["research"]),
        ({"users": "admin"}, ["Uncategorized", "Archive", "beta"]),
        ({"userIds": "2"}, ["research"]),
        (
            {"users": ["determined", "admin"], "archived": "false", "pinned": "false"},
            ["Uncategorized", "beta"],
        ),
    ],
)
def test_list_filters(world: World, params: dict[str, Any], expected: list[str]) -> None:
    assert names(world.api.get("/api/v1/workspaces", params=params)) == expected


def test_list_paginates_in_memory(world: World) -> None:
    body = world.api.get("/api/v1/workspaces", params={"offset": 1, "limit": 2}).json()
    assert [w["name"] for w in body["workspaces"]] == ["research", "Archive"]
    assert body["pagination"] == {
        "offset": 1,
        "limit": 2,
        "startIndex": 1,
        "endIndex": 3,
        "total": 4,
    }
    last = world.api.get("/api/v1/workspaces", params={"offset": -1}).json()
    assert [w["name"] for w in last["workspaces"]] == ["beta"]
    end = world.api.get("/api/v1/workspaces", params={"offset": 4}).json()
    assert end["workspaces"] == [] and end["pagination"]["startIndex"] == 4
    beyond = world.api.get("/api/v1/workspaces", params={"offset": 5})
    assert beyond.status_code == 400
    assert error_of(beyond) == {
        "code": 3,
        "reason": "InvalidArgument",
        "error": "offset out of bounds",
    }
    negative_limit = world.api.get("/api/v1/workspaces", params={"limit": -1})
    assert negative_limit.status_code == 500


# --- GetWorkspace, PostWorkspace, PatchWorkspace ----------------------------------------------------


def test_get_workspace_and_not_found(world: World) -> None:
    body = world.api.get(f"/api/v1/workspaces/{world.research}").json()
    assert body["workspace"]["name"] == "research" and body["workspace"]["numExperiments"] == 2
    missing = world.api.get("/api/v1/workspaces/99")
    assert missing.status_code == 404
    assert error_of(missing) == {
        "code": 5,
        "reason": "NotFound",
        "error": "workspace '99' not found",
    }


def test_post_workspace_answers_the_inserted_row_pinned(world: World) -> None:
    response = world.api.post(
        "/api/v1/workspaces", json={"name": "new one", "defaultComputePool": "default"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["namespaceBindings"] == {}
    created = body["workspace"]
    assert created["pinned"] is True and "pinnedAt" not in created  # ToProto() has no pin time
    assert created["username"] == "determined" and created["numProjects"] == 0
    assert created["defaultComputePool"] == "default"
    listed = world.api.get(f"/api/v1/workspaces/{created['id']}").json()["workspace"]
    assert listed["pinned"] is True and "pinnedAt" in listed


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "name '' must be at least 1 character long"),
        ("x" * 81, f"name '{'x' * 81}' must be at most 53 character long"),
        ("é" * 41, f"name '{'é' * 41}' must be at most 53 character long"),  # 82 bytes
        ("   ", "name must contain at least non-whitespace letter"),
    ],
)
def test_post_workspace_validates_names(world: World, name: str, message: str) -> None:
    response = world.api.post("/api/v1/workspaces", json={"name": name})
    assert response.status_code == 400
    assert error_of(response)["error"] == message


def test_post_workspace_refuses_duplicates_and_agent_groups_from_non_admins(world: World) -> None:
    duplicate = world.api.post("/api/v1/workspaces", json={"name": "beta"})
    assert duplicate.status_code == 409
    assert (
        error_of(duplicate)["error"] == "avoid names equal to other workspaces (case-insensitive)"
    )
    assert (
        world.api.post("/api/v1/workspaces", json={"name": "BETA"}).status_code == 200
    )  # unique is exact
    group = {"name": "g", "agentUserGroup": {"agentUid": 1000, "agentUser": "me"}}
    refused = world.api.post("/api/v1/workspaces", json=group)
    assert refused.status_code == 403
    assert (
        error_of(refused)["error"]
        == "only admin privileged users can set workspace agent user groups"
    )
    created = world.admin.post("/api/v1/workspaces", json=group).json()["workspace"]
    assert created["agentUserGroup"] == {"agentUid": 1000, "agentUser": "me"}


def test_patch_workspace(world: World) -> None:
    renamed = world.api.patch(f"/api/v1/workspaces/{world.research}", json={"name": "lab"})
    assert renamed.status_code == 200, renamed.text
    assert (
        renamed.json()["workspace"]["name"] == "lab" and renamed.json()["namespaceBindings"] == {}
    )
    assert renamed.json()["workspace"]["numProjects"] == 2  # the refetched workspace
    blank = world.api.patch(f"/api/v1/workspaces/{world.research}", json={"name": " "})
    assert blank.status_code == 400
    taken = world.api.patch(f"/api/v1/workspaces/{world.research}", json={"name": "beta"})
    assert taken.status_code == 409
    others = world.api.patch(f"/api/v1/workspaces/{world.beta}", json={"name": "mine"})
    assert others.status_code == 403
    assert error_of(others)["error"] == "only admins may set other user's workspaces names"
    pool = world.api.patch(
        f"/api/v1/workspaces/{world.beta}", json={"defaultComputeResourcePool": "gpu"}
    )
    assert pool.status_code == 400 and error_of(pool)["code"] == 9
    ok_pool = world.api.patch(
        f"/api/v1/workspaces/{world.beta}", json={"defaultAuxResourcePool": "default"}
    )
    assert ok_pool.json()["workspace"]["defaultAuxPool"] == "default"


def test_patch_workspace_refuses_immutable_and_archived(world: World) -> None:
    immutable = world.admin.patch("/api/v1/workspaces/1", json={"name": "x"})
    assert immutable.status_code == 500
    assert error_of(immutable)["error"] == "workspace (1) is immutable and cannot add new projects"
    archived = world.admin.patch(f"/api/v1/workspaces/{world.archive}", json={"name": "x"})
    assert (
        error_of(archived)["error"]
        == f"workspace ({world.archive}) is archived and cannot add new projects"
    )
    missing = world.admin.patch("/api/v1/workspaces/99", json={"name": "x"})
    assert missing.status_code == 404


def test_checkpoint_storage_secrets_are_masked(world: World) -> None:
    storage = {"type": "s3", "bucket": "b", "access_key": "AK", "secret_key": "SK"}
    response = world.api.patch(
        f"/api/v1/workspaces/{world.research}", json={"checkpointStorageConfig": storage}
    )
    shown = response.json()["workspace"]["checkpointStorageConfig"]
    assert shown == {
        "type": "s3",
        "bucket": "b",
        "access_key": "********",
        "secret_key": "********",
    }
    cleared = world.api.patch(
        f"/api/v1/workspaces/{world.research}", json={"checkpointStorageConfig": {}}
    )
    assert "checkpointStorageConfig" not in cleared.json()["workspace"]


# --- DeleteWorkspace ----------------------------------------------------------------------------------


def test_delete_workspace_removes_projects_and_experiments(world: World) -> None:
    response = world.api.delete(f"/api/v1/workspaces/{world.research}")
    assert response.status_code == 200, response.text
    assert response.json() == {"completed": False}  # it had projects
    assert world.api.get(f"/api/v1/workspaces/{world.research}").status_code == 404
    assert world.api.get(f"/api/v1/projects/{world.vision}").status_code == 404
    with world.master.database.transaction(write=False) as db:
        assert db.exec(select(t.ExperimentRow)).all() == []
    empty = world.admin.delete(f"/api/v1/workspaces/{world.beta}")
    assert empty.json() == {"completed": True}


def test_delete_workspace_refusals(world: World) -> None:
    others = world.api.delete(f"/api/v1/workspaces/{world.beta}")
    assert others.status_code == 403
    assert error_of(others)["error"] == "only admins may delete other user's workspaces"
    immutable = world.admin.delete("/api/v1/workspaces/1")
    assert immutable.status_code == 500
    assert (
        error_of(immutable)["error"]
        == "workspace (1) does not exist or not deletable by this user: not found"
    )
    with Seeder(world.master.database) as seed:
        seed.model("kept", workspace=world.research)
    with_models = world.api.delete(f"/api/v1/workspaces/{world.research}")
    assert with_models.status_code == 400
    assert error_of(with_models) == {
        "code": 9,
        "reason": "FailedPrecondition",
        "error": f"workspace ({world.research}) contains models; move or delete models first",
    }


# --- archive, pins ------------------------------------------------------------------------------------


def test_archive_and_unarchive(world: World) -> None:
    assert world.api.post(f"/api/v1/workspaces/{world.research}/archive").json() == {}
    assert (
        world.api.get(f"/api/v1/workspaces/{world.research}").json()["workspace"]["archived"]
        is True
    )
    assert world.api.post(f"/api/v1/workspaces/{world.research}/unarchive").json() == {}
    assert (
        world.api.get(f"/api/v1/workspaces/{world.research}").json()["workspace"]["archived"]
        is False
    )
    others = world.api.post(f"/api/v1/workspaces/{world.beta}/archive")
    assert others.status_code == 403
    assert error_of(others)["error"] == "only admins may archive other user's workspaces"
    immutable = world.admin.post("/api/v1/workspaces/1/unarchive")
    assert (
        immutable.status_code == 500
        and error_of(immutable)["error"] == "error unarchiving workspace (1): not found"
    )


def test_pin_and_unpin(world: World) -> None:
    assert world.api.post(f"/api/v1/workspaces/{world.beta}/pin").json() == {}
    assert names(world.api.get("/api/v1/workspaces", params={"pinned": "true"})) == [
        "research",
        "beta",
    ]
    twice = world.api.post(f"/api/v1/workspaces/{world.beta}/pin")
    assert twice.status_code == 500
    assert "duplicate key value violates unique constraint" in error_of(twice)["error"]
    assert world.api.post(f"/api/v1/workspaces/{world.beta}/unpin").json() == {}
    again = world.api.post(f"/api/v1/workspaces/{world.beta}/unpin")
    assert error_of(again)["error"] == f"error un-pinning workspace ({world.beta}): not found"
    assert world.api.post("/api/v1/workspaces/99/pin").status_code == 404


# --- GetWorkspaceProjects -----------------------------------------------------------------------------


def test_workspace_projects(world: World) -> None:
    body = world.api.get(f"/api/v1/workspaces/{world.research}/projects").json()
    assert [p["name"] for p in body["projects"]] == ["vision", "audio"]
    vision = body["projects"][0]
    assert vision["numExperiments"] == 2 and vision["numActiveExperiments"] == 1
    assert vision["lastExperimentStartedAt"] is not None and vision["workspaceName"] == ""
    assert body["projects"][1]["lastExperimentStartedAt"] is None
    every = world.api.get("/api/v1/workspaces/0/projects").json()
    assert [p["name"] for p in every["projects"]] == ["Uncategorized", "vision", "audio"]
    missing = world.api.get("/api/v1/workspaces/99/projects")
    assert missing.status_code == 404


def test_workspace_projects_sorts_and_filters(world: World) -> None:
    def listed(**params: Any) -> list[str]:
        response = world.api.get(f"/api/v1/workspaces/{world.research}/projects", params=params)
        assert response.status_code == 200, response.text
        return [p["name"] for p in response.json()["projects"]]

    assert listed(sortBy="SORT_BY_NAME") == ["audio", "vision"]
    # NULL (no experiment) sorts as the largest value: first when descending
    assert listed(sortBy="SORT_BY_LAST_EXPERIMENT_START_TIME", orderBy="ORDER_BY_DESC") == [
        "audio",
        "vision",
    ]
    assert listed(sortBy="SORT_BY_LAST_EXPERIMENT_START_TIME") == ["vision", "audio"]
    assert listed(orderBy="ORDER_BY_DESC") == ["audio", "vision"]
    assert listed(name="VISION") == ["vision"]
    assert listed(users="admin") == ["audio"]
    assert listed(userIds=2) == ["vision"]
    assert listed(limit=1, offset=1) == ["audio"]


def test_workspace_projects_archived_is_workspace_or_project(world: World) -> None:
    with Seeder(world.master.database) as seed:
        seed.project("old", workspace=world.archive)
    body = world.api.get(f"/api/v1/workspaces/{world.archive}/projects").json()
    assert body["projects"][0]["archived"] is True
    # the archived filter looks at the project's own flag
    unarchived = world.api.get(
        f"/api/v1/workspaces/{world.archive}/projects", params={"archived": "false"}
    ).json()
    assert [p["name"] for p in unarchived["projects"]] == ["old"]


# --- the official client can read it all ---------------------------------------------------------------


def test_official_bindings_parse_workspace_responses(world: World) -> None:
    listed = bindings.v1GetWorkspacesResponse.from_json(world.api.get("/api/v1/workspaces").json())
    assert [w.name for w in listed.workspaces][:2] == ["Uncategorized", "research"]
    one = bindings.v1GetWorkspaceResponse.from_json(
        world.api.get(f"/api/v1/workspaces/{world.research}").json()
    )
    assert one.workspace.pinned and one.workspace.pinnedAt is not None
    posted = world.admin.post(
        "/api/v1/workspaces",
        json={"name": "sdk", "agentUserGroup": {"agentGid": 5, "agentGroup": "g"}},
    )
    created = bindings.v1PostWorkspaceResponse.from_json(posted.json())
    assert (
        created.workspace.agentUserGroup is not None
        and created.workspace.agentUserGroup.agentGid == 5
    )
    patched = world.admin.patch(f"/api/v1/workspaces/{created.workspace.id}", json={"name": "sdk2"})
    assert bindings.v1PatchWorkspaceResponse.from_json(patched.json()).workspace.name == "sdk2"
    projects = world.api.get(f"/api/v1/workspaces/{world.research}/projects").json()
    assert [
        p.name for p in bindings.v1GetWorkspaceProjectsResponse.from_json(projects).projects
    ] == ["vision", "audio"]
    deleted = world.api.delete(f"/api/v1/workspaces/{world.research}").json()
    assert bindings.v1DeleteWorkspaceResponse.from_json(deleted).completed is False


def test_a_pattern_ending_in_an_escape_fails_the_query(world: World) -> None:
    response = world.api.get("/api/v1/workspaces", params={"name": "res\\"})
    assert response.status_code == 500
    assert error_of(response)["error"] == (
        "error running query: get_workspaces: ERROR: LIKE pattern must not end with escape character"
        " (SQLSTATE 22025)"
    )
    escaped = world.api.get("/api/v1/workspaces", params={"nameCaseSensitive": "b\\eta"})
    assert names(escaped) == ["beta"]


def test_patch_workspace_without_a_body_changes_nothing(world: World) -> None:
    # body "workspace": the gateway allocates req.Workspace before it reads the (empty) body
    # (decodeNonProtoField, runtime/marshal_jsonpb.go), so the patch is empty, not nil.
    before = world.api.get(f"/api/v1/workspaces/{world.research}").json()["workspace"]
    for body in (b"", b"null", b"{}"):
        response = world.api.patch(f"/api/v1/workspaces/{world.research}", content=body)
        assert response.status_code == 200, response.text
        assert response.json()["workspace"]["name"] == before["name"]
