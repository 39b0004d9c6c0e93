"""The resource pools a workspace may use (ListRPsBoundToWorkspace, ``api_workspace.go``):
read by ``session.load(workspace, "resource_pools")``. Binding and unbinding are edits of
``workspace.resource_pools`` sent by the unit of work (``_plan/_edits.py``)."""

from __future__ import annotations

from .. import _wire as w
from .._plan._call import Call, path
from .._resources._models import Workspace
from ._effects import Op, send

__all__ = ["resource_pools"]


def resource_pools(workspace: Workspace) -> Op[list[str]]:
    """The pools bound to this workspace and those bound to none (the master's
    ``ReadRPsAvailableToWorkspace``)."""
    # bunutils.Paginate: limit 0 means at most 100 rows, -1 means all of them.
    call = Call(
        "GET",
        path("/api/v1/workspaces/{id}/available-resource-pools", id=workspace.pk),
        params=(("limit", "-1"),),
    )
    response = yield from send(call)
    return w.ListRPsBoundToWorkspaceResponse.model_validate_json(response.content).resource_pools
