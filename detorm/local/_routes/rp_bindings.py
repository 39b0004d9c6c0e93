"""Resource-pool workspace bindings (``api_resourcepool.go``, ``api_workspace.go``'s
ListRPsBoundToWorkspace, ``db/postgres_rp_workspace_bindings.go``).

detorm.local has one pool, ``default``, which is both the default compute and the default aux
pool. The master refuses to bind a default pool (``checkIfPoolIsDefault``) and refuses any pool it
does not know, so on this cluster no binding can ever exist: there is no bindings table, every
workspace may use ``default``, and nothing about bindings restricts creating or launching.

The master's errors here are plain Go errors (500s): ``default resource pool default cannot be
bound to any workspace``, ``pool with name x doesn't exist``, the basic authorization's ``only
admin privileged users can bind resource pool to a workspace`` (binding needs an admin). Bind
with no workspaces at all succeeds without looking at the pool (``AddRPWorkspaceBindings`` returns
early); Overwrite checks the pool first. Unbinding a workspace that has no binding says so with
the master's own spacing. Unknown workspace ids are not checked before the (here impossible)
insert; unknown names are (``WorkspaceIDsFromNames``).
"""

from __future__ import annotations

from typing import Any, Final

from sqlmodel import select

from .. import _tables as t
from .._app import Ctx, rpc
from .._errors import ApiError, internal
from .._pagination import bun_page
from .._sql_lists import orm_in
from .workspaces import RESOURCE_POOLS

__all__: list[str] = []

_DEFAULT_POOLS: Final = frozenset(RESOURCE_POOLS)  # the default compute and aux pool


def _go_list(items: list[str]) -> str:
    """``fmt``'s ``%s`` of a ``[]string``."""
    return "[" + " ".join(items) + "]"


def _check_not_default(pool: str) -> None:
    if pool in _DEFAULT_POOLS:
        raise internal(f"default resource pool {pool} cannot be bound to any workspace")


def _workspace_ids(ctx: Ctx, body: dict[str, Any]) -> list[int]:
    """``combineWorkspaceIDsAndNames``: the ids, plus the named workspaces (all must exist)."""
    ids: set[int] = set(body.get("workspaceIds", []))
    names: list[str] = body.get("workspaceNames", [])
    if names:
        found = ctx.db.exec(
            select(t.WorkspaceRow.id, t.WorkspaceRow.name).where(orm_in(t.WorkspaceRow.name, names))
        ).all()
        if len(found) != len(names):
            have = {name for _, name in found}
            missing = [name for name in names if name not in have]
            raise internal(f"the following workspaces do not exist: {_go_list(missing)}")
        ids.update(wid for wid, _ in found if wid is not None)
    return sorted(ids)


def _check_admin(ctx: Ctx) -> None:
    """``CanModifyRPWorkspaceBindings`` (basic): an admin; its plain error is not substituted."""
    assert ctx.user is not None
    if not ctx.user.admin:
        raise ApiError.from_plain(
            "only admin privileged users can bind resource pool to a workspace"
        )


def _check_pool_exists(pool: str) -> None:
    if pool not in RESOURCE_POOLS:
        raise internal(f"pool with name {pool} doesn't exist")


@rpc("BindRPToWorkspace", resource_pool_name=str)
def bind_rp_to_workspace(ctx: Ctx) -> dict[str, Any]:
    pool = ctx.path["resource_pool_name"]
    _check_not_default(pool)
    ids = _workspace_ids(ctx, ctx.document or {})
    _check_admin(ctx)
    if ids:
        _check_pool_exists(pool)  # always refuses: the only pool is the default one
    return {}


@rpc("OverwriteRPWorkspaceBindings", resource_pool_name=str)
def overwrite_rp_workspace_bindings(ctx: Ctx) -> dict[str, Any]:
    pool = ctx.path["resource_pool_name"]
    _check_not_default(pool)
    _workspace_ids(ctx, ctx.document or {})
    _check_admin(ctx)
    _check_pool_exists(pool)
    return {}


@rpc("UnbindRPFromWorkspace", resource_pool_name=str)
def unbind_rp_from_workspace(ctx: Ctx) -> dict[str, Any]:
    pool = ctx.path["resource_pool_name"]
    ids = _workspace_ids(ctx, ctx.document or {})
    _check_admin(ctx)
    if ids:  # no workspace has a binding
        raise internal(
            f" workspace with id {ids[0]} and pool with name  {pool} binding doesn't exist"
        )
    return {}


@rpc("ListWorkspacesBoundToRP", resource_pool_name=str)
def list_workspaces_bound_to_rp(ctx: Ctx) -> dict[str, Any]:
    pool = ctx.path["resource_pool_name"]
    if pool not in RESOURCE_POOLS:
        raise internal(f"pool with name {pool} doesn't exist or is not available")
    page = bun_page(ctx.query.get_int("offset"), ctx.query.get_int("limit"), 0)
    return {"workspaceIds": [], "pagination": page.pagination.model_dump_wire()}


@rpc("ListRPsBoundToWorkspace", workspace_id=int)
def list_rps_bound_to_workspace(ctx: Ctx) -> dict[str, Any]:
    # CanGetWorkspaceID (basic) lets anyone name any workspace, existing or not; every pool is
    # unbound, so every workspace may use all of them.
    pools = list(RESOURCE_POOLS)
    page = bun_page(ctx.query.get_int("offset"), ctx.query.get_int("limit"), len(pools))
    pagination = page.pagination
    # the rows are scanned only when the page's indices differ (then with bun's LIMIT quirk)
    shown = page.slice(pools) if pagination.start_index != pagination.end_index else []
    return {"resourcePools": shown, "pagination": pagination.model_dump_wire()}
