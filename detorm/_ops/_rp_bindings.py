"""A workspace's resource-pool bindings, read and changed at once (ListRPsBoundToWorkspace,
BindRPToWorkspace, UnbindRPFromWorkspace; ``api_resourcepool.go``, ``api_workspace.go``).

These are not edits of the unit of work: a binding belongs to the pool (the master's routes are
``/api/v1/resource-pools/{pool}/workspace-bindings``), not to a workspace field, so there is
nothing on the workspace to mark dirty and commit. Each pool is one request. The master's
refusals are plain Go errors, so they arrive as :class:`~detorm.errors.ServerError` (500) with
its message: a default pool cannot be bound, an unknown pool does not exist, a binding that does
not exist cannot be removed, only an admin may change bindings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _wire as w
from .._plan._call import Call, path
from .._resources._models import Workspace
from ..errors import InvalidValue
from ._create import _name
from ._effects import Op, send

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

__all__ = ["bind_resource_pools", "resource_pools", "unbind_resource_pools"]


def _pool_names(where: str, names: tuple[object, ...]) -> list[str]:
    """Every name checked before anything is sent (non-empty str), duplicates dropped."""
    if not names:
        raise InvalidValue(f"{where} needs at least one resource pool name")
    return list(dict.fromkeys(_name(f"{where}: a pool name", name) for name in names))


def resource_pools(session: Session, workspace: Workspace) -> Op[list[str]]:
    """ListRPsBoundToWorkspace: the pools this workspace may use (bound to it, or unbound)."""
    del session  # read only: the answer is pool names, not objects of the session
    # bunutils.Paginate: limit 0 means at most 100 rows, -1 means all of them.
    call = Call(
        "GET",
        path("/api/v1/workspaces/{id}/available-resource-pools", id=workspace.pk),
        params=(("limit", "-1"),),
    )
    response = yield from send(call)
    return w.ListRPsBoundToWorkspaceResponse.model_validate_json(response.content).resource_pools


def bind_resource_pools(
    session: Session, workspace: Workspace, names: tuple[object, ...]
) -> Op[None]:
    """BindRPToWorkspace, once per pool."""
    del session
    for pool in _pool_names("bind_resource_pools()", names):
        yield from send(_binding_call("POST", pool, workspace))


def unbind_resource_pools(
    session: Session, workspace: Workspace, names: tuple[object, ...]
) -> Op[None]:
    """UnbindRPFromWorkspace, once per pool."""
    del session
    for pool in _pool_names("unbind_resource_pools()", names):
        yield from send(_binding_call("DELETE", pool, workspace))


def _binding_call(method: str, pool: str, workspace: Workspace) -> Call:
    # The body repeats the path's pool (the gateway's body "*" maps it onto the same field).
    body = {"resourcePoolName": pool, "workspaceIds": [workspace.pk]}
    return Call(
        method, path("/api/v1/resource-pools/{pool}/workspace-bindings", pool=pool), body=body
    )
