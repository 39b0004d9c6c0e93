"""A workspace's resource pools: ``workspace.resource_pools``, loaded by
``session.load(ws, "resource_pools")`` (ListRPsBoundToWorkspace) and changed through the unit of
work (BindRPToWorkspace per pool added, UnbindRPFromWorkspace per pool removed), in both APIs.

detorm.local has one pool, ``default``, which the master never binds: against it, the master's
refusals; against a mock master with more pools, what a commit sends and how it settles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from detorm.errors import CommitError, InvalidType, InvalidValue, NotLoaded, ServerError
from tests.sdk.apis import MODES, Api
from tests.sdk.conftest import Cluster
from tests.sdk.test_cluster_ops import FakeMaster, _both

WORKSPACE = json.loads(
    '{"workspace": {"id": 7, "name": "lab", "archived": false, "username": "admin",'
    ' "immutable": false, "numProjects": 0, "pinned": false, "userId": 1, "numExperiments": 0,'
    ' "state": "WORKSPACE_STATE_UNSPECIFIED", "errorMessage": "", "defaultComputePool": "",'
    ' "defaultAuxPool": ""}}'
)
BINDINGS = "/api/v1/resource-pools/{}/workspace-bindings"


@pytest.fixture(params=MODES)
def admin_api(
    request: pytest.FixtureRequest, fresh_cluster: Cluster, environ: dict[str, str]
) -> Iterator[Api]:
    """Changing bindings is an admin's action (``CanModifyRPWorkspaceBindings``)."""
    with Api(request.param, fresh_cluster.url, environ, user="admin", password="") as api:
        yield api


def loaded_workspace(api: Api, workspace_id: int = 1) -> Any:
    ws = api(api.Workspace.query(api.session).get(workspace_id))
    api(api.session.load(ws, "resource_pools"))
    return ws


def commit_error(api: Api) -> CommitError:
    with pytest.raises(CommitError) as raised:
        api(api.session.commit())
    return raised.value


# --- against detorm.local ---------------------------------------------------------------------
def test_a_workspace_may_use_the_unbound_default_pool(api: Api) -> None:
    ws = api(api.Workspace.query(api.session).get(1))
    assert api(api.session.load(ws, "resource_pools")) == {"default"}
    assert ws.resource_pools == {"default"}
    assert not api.session.dirty


def test_the_pools_are_not_loaded_by_the_workspaces_reads(api: Api) -> None:
    ws = api(api.Workspace.query(api.session).get(1))
    api(ws.refresh())
    with pytest.raises(NotLoaded, match=r"session.load\(workspace, 'resource_pools'\)"):
        ws.resource_pools  # noqa: B018


def test_a_new_workspace_may_use_the_default_pool_too(writer_api: Api) -> None:
    api = writer_api
    ws = api(api.Workspace.create("pools", session=api.session))
    assert api(api.session.load(ws, "resource_pools")) == {"default"}


def test_unbinding_the_default_pool_is_refused_and_stays_pending(admin_api: Api) -> None:
    api = admin_api
    ws = loaded_workspace(api)
    ws.resource_pools.discard("default")
    error = commit_error(api)
    (change, cause), *_ = error.failed
    assert isinstance(cause, ServerError) and cause.status == 500
    assert f"workspace with id {ws.id} and pool with name  default" in str(cause)
    assert ws.resource_pools == set()  # the edit is kept, visibly pending
    assert [str(c.call.url) for c in api.session.pending()] == [BINDINGS.format("default")]
    api(api.session.rollback())
    assert ws.resource_pools == {"default"} and not api.session.dirty


def test_binding_an_unknown_pool_is_refused(admin_api: Api) -> None:
    api = admin_api
    ws = loaded_workspace(api)
    ws.resource_pools.add("gpu")
    cause = commit_error(api).failed[0][1]
    assert "pool with name gpu doesn't exist" in str(cause)
    assert api(api.session.load(ws, "resource_pools")) == {"default", "gpu"}  # still pending


def test_only_an_admin_may_change_bindings(writer_api: Api) -> None:
    api = writer_api  # the user determined, no admin
    ws = loaded_workspace(api)
    ws.resource_pools.add("gpu")
    cause = commit_error(api).failed[0][1]
    assert "only admin privileged users can bind" in str(cause)


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("", InvalidValue, "non-empty str"),
        (3, InvalidType, "must be a non-empty str"),
        (None, InvalidType, "must be a non-empty str"),
        ("a\x00b", InvalidValue, "NUL"),
    ],
)
def test_pool_names_are_checked_before_anything_is_sent(
    api: Api, name: Any, error: type[Exception], message: str
) -> None:
    ws = loaded_workspace(api)
    with pytest.raises(error, match=message):
        ws.resource_pools.add(name)
    assert ws.resource_pools == {"default"} and not api.session.dirty


# --- against a mock master with more pools ----------------------------------------------------
@pytest.fixture
def master() -> FakeMaster:
    return FakeMaster()


@pytest.fixture(params=MODES)
def mock_api(
    request: pytest.FixtureRequest, master: FakeMaster, environ: dict[str, str]
) -> Iterator[Api]:
    master.reply("GET", "/api/v1/workspaces/7", WORKSPACE)
    pools = {"resourcePools": ["default", "gpu"], "pagination": {}}
    master.reply("GET", "/api/v1/workspaces/7/available-resource-pools", pools)
    both = _both(request.param, master, environ, user=None, password=None, token="t0ken")
    yield both
    both.close()


def test_a_commit_binds_added_pools_and_unbinds_removed_ones(
    mock_api: Api, master: FakeMaster
) -> None:
    api = mock_api
    for pool in ("a100", "a b", "gpu"):
        for method in ("POST", "DELETE"):
            master.reply(method, BINDINGS.format(pool), {})  # the mock sees decoded paths
    ws = api(api.session.get(api.Workspace, 7))
    assert api(api.session.load(ws, "resource_pools")) == {"default", "gpu"}
    assert master.sent("GET", "/api/v1/workspaces/7/available-resource-pools") == [
        ("limit=-1", None)
    ]
    ws.resource_pools |= {"a100", "a b"}
    ws.resource_pools.discard("gpu")
    plan = [(p.call.method, str(p.call.url)) for p in api.session.pending()]
    assert plan == [
        ("POST", BINDINGS.format("a%20b")),  # one escaped path segment
        ("POST", BINDINGS.format("a100")),
        ("DELETE", BINDINGS.format("gpu")),
    ]
    applied = api(api.session.commit())
    assert [c.field for c in applied] == ["resource_pools"]
    # The requests of one stage go out concurrently: the plan above gives their order.
    sent = sorted((m, p, b) for m, p, _, b, _ in master.requests if "bindings" in p)
    assert sent == [
        ("DELETE", BINDINGS.format("gpu"), {"resourcePoolName": "gpu", "workspaceIds": [7]}),
        ("POST", BINDINGS.format("a b"), {"resourcePoolName": "a b", "workspaceIds": [7]}),
        ("POST", BINDINGS.format("a100"), {"resourcePoolName": "a100", "workspaceIds": [7]}),
    ]
    assert ws.resource_pools == {"default", "a100", "a b"}
    assert not api.session.dirty


def test_a_refused_pool_stays_pending_and_the_others_are_applied(
    mock_api: Api, master: FakeMaster
) -> None:
    api = mock_api
    master.reply("POST", BINDINGS.format("a100"), {})
    master.on("DELETE", BINDINGS.format("gpu"), lambda _: httpx.Response(
        500, json={"code": 2, "message": "workspace with id 7 and pool with name  gpu "
                   "does not exist", "details": []}))  # fmt: skip
    ws = api(api.session.get(api.Workspace, 7))
    api(api.session.load(ws, "resource_pools"))
    ws.resource_pools.add("a100")
    ws.resource_pools.discard("gpu")
    error = commit_error(api)
    assert [str(cause) for _, cause in error.failed] == [
        "DELETE /api/v1/resource-pools/gpu/workspace-bindings -> 500: workspace with id 7 and "
        "pool with name  gpu does not exist"
    ]
    assert ws.resource_pools == {"default", "a100"}
    # Only the unbind is left: the bind was applied and is not sent again.
    assert [(p.call.method, p.label) for p in api.session.pending()] == [("DELETE", "gpu")]
    # A fresh load keeps the pending unbind on top of what the master answers.
    assert api(api.session.load(ws, "resource_pools")) == {"default"}


def test_a_pool_name_that_cannot_be_one_path_segment_is_refused_before_sending(
    mock_api: Api, master: FakeMaster
) -> None:
    api = mock_api
    ws = api(api.session.get(api.Workspace, 7))
    api(api.session.load(ws, "resource_pools"))
    ws.resource_pools.add("../workspaces")
    with pytest.raises(InvalidValue, match="pool='../workspaces' cannot be sent"):
        api(api.session.commit())
    assert not [r for r in master.requests if r[0] != "GET"]
    assert ws.resource_pools == {"default", "gpu", "../workspaces"}  # pending, visibly
