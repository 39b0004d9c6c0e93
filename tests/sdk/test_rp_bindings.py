"""A workspace's resource-pool bindings through both APIs against detorm.local: the pools it may
use (ListRPsBoundToWorkspace), and binding or unbinding pools (BindRPToWorkspace,
UnbindRPFromWorkspace) refused as the master refuses them, with typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from detorm.errors import InvalidType, InvalidValue, ServerError
from tests.sdk.apis import MODES, Api
from tests.sdk.conftest import Cluster


@pytest.fixture(params=MODES)
def admin_api(
    request: pytest.FixtureRequest, fresh_cluster: Cluster, environ: dict[str, str]
) -> Iterator[Api]:
    """Changing bindings is an admin's action (``CanModifyRPWorkspaceBindings``)."""
    with Api(request.param, fresh_cluster.url, environ, user="admin", password="") as api:
        yield api


def uncategorized(api: Api) -> Any:
    return api(api.Workspace.query(api.session).get(1))


def test_a_workspace_may_use_the_unbound_default_pool(api: Api) -> None:
    assert api(uncategorized(api).resource_pools()) == ["default"]


def test_a_new_workspace_may_use_the_default_pool_too(writer_api: Api) -> None:
    api = writer_api
    ws = api(api.Workspace.create("pools", session=api.session))
    assert api(ws.resource_pools()) == ["default"]


def test_binding_the_default_pool_is_the_masters_refusal(writer_api: Api) -> None:
    api = writer_api
    ws = uncategorized(api)
    with pytest.raises(ServerError) as raised:
        api(ws.bind_resource_pools("default"))
    assert raised.value.status == 500
    assert "default resource pool default cannot be bound to any workspace" in str(raised.value)
    assert api(ws.resource_pools()) == ["default"]  # nothing changed


def test_binding_an_unknown_pool_is_refused(admin_api: Api) -> None:
    api = admin_api
    with pytest.raises(ServerError, match="pool with name gpu doesn't exist"):
        api(uncategorized(api).bind_resource_pools("gpu"))


def test_only_an_admin_may_change_bindings(writer_api: Api) -> None:
    api = writer_api  # the user determined, no admin
    ws = uncategorized(api)
    for method in (ws.bind_resource_pools, ws.unbind_resource_pools):
        with pytest.raises(ServerError, match="only admin privileged users can bind"):
            api(method("gpu"))


def test_each_pool_is_sent_and_the_first_refusal_stops(admin_api: Api) -> None:
    api = admin_api
    ws = uncategorized(api)
    with pytest.raises(ServerError, match="pool with name gpu doesn't exist"):
        api(ws.bind_resource_pools("gpu", "default"))  # gpu is sent first
    with pytest.raises(ServerError, match="default resource pool default cannot be bound"):
        api(ws.bind_resource_pools("default", "gpu"))


def test_unbinding_a_pool_never_bound_is_refused(admin_api: Api) -> None:
    api = admin_api
    ws = uncategorized(api)
    with pytest.raises(ServerError, match=f"workspace with id {ws.id} and pool with name  gpu"):
        api(ws.unbind_resource_pools("gpu"))


@pytest.mark.parametrize(
    ("names", "error", "message"),
    [
        ((), InvalidValue, "needs at least one resource pool name"),
        (("",), InvalidValue, "cannot be empty or blank"),
        (("  ",), InvalidValue, "cannot be empty or blank"),
        ((3,), InvalidType, "must be a non-empty str"),
        (("gpu", None), InvalidType, "must be a non-empty str"),
    ],
)
def test_pool_names_are_checked_before_anything_is_sent(
    api: Api, names: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    ws = uncategorized(api)
    for method in (ws.bind_resource_pools, ws.unbind_resource_pools):
        # a ServerError from the master would mean the request went out
        with pytest.raises(error, match=message):
            api(method(*names))
