"""Resource-pool workspace bindings on detorm.local, as ``api_resourcepool.go`` and
``db/postgres_rp_workspace_bindings.go`` behave on a cluster whose only pool, ``default``, is the
default compute and aux pool: no binding can ever be made."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of, login

BINDINGS = "/api/v1/resource-pools/{}/workspace-bindings"


@dataclass
class World:
    api: httpx.Client  # "determined", not an admin
    admin: httpx.Client
    research: int


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        research = seed.workspace("research", owner="admin")
    admin = login(local_master.url, "admin")
    try:
        yield World(api, admin, research)
    finally:
        admin.close()


def internal(response: httpx.Response, message: str) -> None:
    assert response.status_code == 500, response.text
    assert error_of(response) == {"code": 13, "reason": "Internal", "error": message}


def test_the_default_pool_cannot_be_bound(world: World) -> None:
    body = {"workspaceIds": [world.research]}
    message = "default resource pool default cannot be bound to any workspace"
    internal(world.admin.post(BINDINGS.format("default"), json=body), message)
    internal(world.admin.put(BINDINGS.format("default"), json=body), message)


def test_unknown_pools_and_workspaces(world: World) -> None:
    url = BINDINGS.format("gpu")
    body = {"workspaceIds": [world.research]}
    internal(world.admin.post(url, json=body), "pool with name gpu doesn't exist")
    internal(world.admin.put(url, json={}), "pool with name gpu doesn't exist")
    # no workspace at all: AddRPWorkspaceBindings returns before looking at the pool
    assert world.admin.post(url, json={}).json() == {}
    internal(
        world.admin.post(url, json={"workspaceNames": ["research", "nope", "gone"]}),
        "the following workspaces do not exist: [nope gone]",
    )


def test_binding_needs_an_admin(world: World) -> None:
    internal(
        world.api.post(BINDINGS.format("gpu"), json={"workspaceNames": ["research"]}),
        "only admin privileged users can bind resource pool to a workspace",
    )
    internal(
        world.api.request(
            "DELETE", BINDINGS.format("default"), json={"workspaceIds": [world.research]}
        ),
        "only admin privileged users can bind resource pool to a workspace",
    )


def test_unbinding_a_workspace_without_binding(world: World) -> None:
    url = BINDINGS.format("default")
    internal(
        world.admin.request("DELETE", url, json={"workspaceIds": [world.research]}),
        f" workspace with id {world.research} and pool with name  default binding doesn't exist",
    )
    assert world.admin.request("DELETE", url, json={}).json() == {}


def test_listing_bindings(world: World) -> None:
    response = world.api.get(BINDINGS.format("default"))
    assert response.json() == {
        "workspaceIds": [],
        "pagination": {"offset": 0, "limit": 0, "startIndex": 0, "endIndex": 0, "total": 0},
    }
    internal(
        world.api.get(BINDINGS.format("gpu")),
        "pool with name gpu doesn't exist or is not available",
    )


def test_every_workspace_may_use_the_unbound_pool(world: World) -> None:
    for workspace_id in (world.research, 424242):  # CanGetWorkspaceID checks nothing
        response = world.api.get(f"/api/v1/workspaces/{workspace_id}/available-resource-pools")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "resourcePools": ["default"],
            "pagination": {"offset": 0, "limit": 0, "startIndex": 0, "endIndex": 1, "total": 1},
        }
    paged = world.api.get(
        f"/api/v1/workspaces/{world.research}/available-resource-pools", params={"offset": 1}
    ).json()
    assert paged["resourcePools"] == []
    assert paged["pagination"]["startIndex"] == paged["pagination"]["endIndex"] == 1
