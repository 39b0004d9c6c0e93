"""Workspaces (``api_workspace.go``, ``static/srv/get_workspaces.sql``, ``get_workspace.sql``,
``get_workspace_projects.sql``).

Basic (non-RBAC) authorization, as on an OSS master (``workspace/authz_basic_impl.go``): anyone may
list, read, create, pin and unpin; renaming, archiving and deleting need an admin or the owner;
agent user groups need an admin. detorm.local has one resource manager and one resource pool
(``default``), and no Kubernetes namespaces.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from detorm._plan._collation import collation_key
from detorm._wire import (
    AgentUserGroup,
    OrderBy,
    ProjectSortBy,
    ProjectsResponse,
    Struct,
    WireModel,
    Workspace,
    WorkspaceSortBy,
    WorkspacesResponse,
    absent,
)
from detorm.local._views import ts

from .. import _tables as t
from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import (
    ApiError,
    Code,
    failed_precondition,
    internal,
    invalid_argument,
    permission_denied,
)
from .._pagination import in_memory_page
from .._sql_lists import orm_in
from .config_policies import delete_workspace_policies
from .projects import (
    delete_project_rows,
    find_workspace,
    like_match,
    list_filter,
    list_project_view,
    project_stats,
    usernames,
    workspace_state,
)
from .templates import delete_workspace_templates

__all__ = ["workspace_view"]

RESOURCE_POOLS: Final = ("default",)
"""The pools a workspace may default to (detorm.local has a single one)."""


# --- views ---------------------------------------------------------------------------------------


class _Counts:
    """Projects and experiments per workspace (the two sub-selects of the workspace queries)."""

    def __init__(self, db: Session, workspace_ids: Sequence[int]) -> None:
        project = t.ProjectRow
        self.projects: dict[int, int] = {
            wid: n
            for wid, n in db.exec(
                select(project.workspace_id, func.count())
                .where(orm_in(project.workspace_id, workspace_ids))
                .group_by(col(project.workspace_id))
            ).all()
        }
        self.experiments: dict[int, int] = {
            wid: n
            for wid, n in db.exec(
                select(project.workspace_id, func.count())
                .select_from(t.ExperimentRow)
                .join(project, project.id == t.ExperimentRow.project_id)  # type: ignore[arg-type]
                .where(orm_in(project.workspace_id, workspace_ids))
                .group_by(col(project.workspace_id))
            ).all()
        }


def _pins(db: Session, user_id: int) -> dict[int, t.WorkspacePinRow]:
    pins = db.exec(select(t.WorkspacePinRow).where(t.WorkspacePinRow.user_id == user_id)).all()
    return {pin.workspace_id: pin for pin in pins}


def _agent_user_group(row: t.WorkspaceRow) -> AgentUserGroup | None:
    values = (row.agent_uid, row.agent_gid, row.agent_user, row.agent_group)
    if all(value is None for value in values):
        return None
    return AgentUserGroup(
        agent_uid=row.agent_uid,
        agent_gid=row.agent_gid,
        agent_user=row.agent_user,
        agent_group=row.agent_group,
    )


def _printable_storage(config: Any) -> Struct | None:
    """``maskStorageConfigSecrets``: S3 keys are shown as ``********``."""
    if not config:
        return None
    shown: Struct = copy.deepcopy(config)
    if shown.get("type") == "s3":
        for secret in ("access_key", "secret_key"):
            if shown.get(secret) is not None:
                shown[secret] = "********"
    return shown


def workspace_view(
    db: Session,
    row: t.WorkspaceRow,
    caller_id: int,
    *,
    counts: _Counts | None = None,
    pins: dict[int, t.WorkspacePinRow] | None = None,
    names: dict[int, str] | None = None,
    with_storage: bool = True,
) -> Workspace:
    """A workspace as ``get_workspace.sql`` (``with_storage``) or ``get_workspaces.sql`` builds it;
    ``pinned`` is for the caller."""
    assert row.id is not None
    counts = counts or _Counts(db, [row.id])
    pins = pins if pins is not None else _pins(db, caller_id)
    names = names if names is not None else usernames(db)
    pin = pins.get(row.id)
    return Workspace(
        id=row.id,
        name=row.name,
        archived=row.archived,
        username=names.get(row.user_id, ""),
        immutable=row.immutable,
        num_projects=counts.projects.get(row.id, 0),
        pinned=pin is not None,
        user_id=row.user_id,
        num_experiments=counts.experiments.get(row.id, 0),
        state=workspace_state(row.state),
        error_message=row.error_message or "",
        agent_user_group=_agent_user_group(row),
        checkpoint_storage_config=_printable_storage(row.checkpoint_storage_config)
        if with_storage
        else None,
        pinned_at=ts(pin.created_at) if pin is not None else None,
        default_compute_pool=row.default_compute_pool,
        default_aux_pool=row.default_aux_pool,
    )


def _workspace_response(workspace: Workspace) -> dict[str, Any]:
    # Post/PatchWorkspaceResponse also carry the (here always empty) namespace bindings map
    return {"workspace": workspace.model_dump_wire(), "namespaceBindings": {}}


# --- request bodies ------------------------------------------------------------------------------


class _PostWorkspaceBody(WireModel):
    name: str = ""
    agent_user_group: AgentUserGroup | None = absent()
    checkpoint_storage_config: Struct | None = absent()
    default_compute_pool: str = ""
    default_aux_pool: str = ""


class _PatchWorkspaceBody(WireModel):
    name: str | None = None
    agent_user_group: AgentUserGroup | None = absent()
    checkpoint_storage_config: Struct | None = absent()
    default_compute_resource_pool: str | None = absent()
    default_aux_resource_pool: str | None = absent()


# --- validation and permissions ------------------------------------------------------------------


def _validate_name(name: str) -> None:
    """``validateWorkspaceName``; lengths are Go byte lengths (and "53" is the master's typo)."""
    size = len(name.encode())
    if size < 1:
        raise invalid_argument(f"name '{name}' must be at least 1 character long")
    if size > 80:
        raise invalid_argument(f"name '{name}' must be at most 53 character long")
    if not name.strip():
        raise invalid_argument("name must contain at least non-whitespace letter")


def _owner_or_admin(user: t.UserRow, row: t.WorkspaceRow, message: str) -> None:
    if not user.admin and user.id != row.user_id:
        raise permission_denied(message)


def _name_taken(db: Session, name: str, *, other_than: int | None = None) -> bool:
    query = select(t.WorkspaceRow.id).where(t.WorkspaceRow.name == name)
    if other_than is not None:
        query = query.where(t.WorkspaceRow.id != other_than)
    return db.exec(query).first() is not None


_DUPLICATE_NAME: Final = "avoid names equal to other workspaces (case-insensitive)"


def _caller(ctx: Ctx) -> t.UserRow:
    assert ctx.user is not None
    return ctx.user


# --- handlers ------------------------------------------------------------------------------------


@rpc("GetWorkspaces")
def get_workspaces(ctx: Ctx) -> WorkspacesResponse:
    q = ctx.query
    sort_by = q.get_enum("sort_by", WorkspaceSortBy, "apiv1.GetWorkspacesRequest_SortBy")
    order = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    archived = q.get_bool_value("archived")
    pinned = q.get_bool_value("pinned")
    offset, limit = q.get_int("offset"), q.get_int("limit")
    users = list_filter(q.get_strs("users"))
    user_ids = q.get_ints("user_ids")
    name, name_exact = q.get_str("name"), q.get_str("name_case_sensitive")
    pins = _pins(ctx.db, ctx.user_id)
    names = usernames(ctx.db)
    rows = []
    for row in ctx.db.exec(select(t.WorkspaceRow)).all():
        if users is not None and names.get(row.user_id) not in users:
            continue
        if user_ids and row.user_id not in user_ids:
            continue
        if name and not like_match(row.name, name, case_insensitive=True, query="get_workspaces"):
            continue
        if name_exact and not like_match(
            row.name, name_exact, case_insensitive=False, query="get_workspaces"
        ):
            continue
        if archived is not None and row.archived != archived:
            continue
        if pinned is not None and (row.id in pins) != pinned:
            continue
        rows.append(row)
    # ORDER BY <col> <dir>, id <dir>, pins.created_at DESC; ids are unique, so ids decide ties
    descending = order == OrderBy.DESC
    rows.sort(key=lambda r: r.id or 0, reverse=descending)
    if sort_by == WorkspaceSortBy.NAME:
        rows.sort(key=lambda r: collation_key(r.name), reverse=descending)
    page = in_memory_page(offset, limit, len(rows))
    shown = page.slice(rows)
    counts = _Counts(ctx.db, [r.id for r in shown if r.id is not None])
    workspaces = [
        workspace_view(
            ctx.db, r, ctx.user_id, counts=counts, pins=pins, names=names, with_storage=False
        )
        for r in shown
    ]
    return WorkspacesResponse(workspaces=workspaces, pagination=page.pagination)


@rpc("GetWorkspace", id=int)
def get_workspace(ctx: Ctx) -> dict[str, Any]:
    row = find_workspace(ctx.db, ctx.path["id"])
    return {"workspace": workspace_view(ctx.db, row, ctx.user_id).model_dump_wire()}


@rpc("PostWorkspace")
def post_workspace(ctx: Ctx) -> dict[str, Any]:
    user = _caller(ctx)
    body = ctx.body(_PostWorkspaceBody)
    _validate_name(body.name)
    if body.agent_user_group is not None and not user.admin:
        raise permission_denied("only admin privileged users can set workspace agent user groups")
    if _name_taken(ctx.db, body.name):
        raise ApiError(Code.ALREADY_EXISTS, _DUPLICATE_NAME)
    group = body.agent_user_group or AgentUserGroup()
    now = utcnow()
    row = t.WorkspaceRow(
        name=body.name,
        user_id=ctx.user_id,
        created_at=now,
        default_compute_pool=body.default_compute_pool,
        default_aux_pool=body.default_aux_pool,
        checkpoint_storage_config=body.checkpoint_storage_config or None,
        agent_uid=group.agent_uid,
        agent_gid=group.agent_gid,
        agent_user=group.agent_user,
        agent_group=group.agent_group,
    )
    ctx.db.add(row)
    ctx.db.flush()
    assert row.id is not None and user.id is not None
    ctx.db.add(t.WorkspacePinRow(workspace_id=row.id, user_id=user.id, created_at=now))
    # Workspace.ToProto() of the inserted model, plus username and pinned: no counts, no pinnedAt
    workspace = Workspace(
        id=row.id,
        name=row.name,
        username=user.username,
        pinned=True,
        user_id=user.id,
        agent_user_group=_agent_user_group(row),
        checkpoint_storage_config=_printable_storage(row.checkpoint_storage_config),
        default_compute_pool=row.default_compute_pool,
        default_aux_pool=row.default_aux_pool,
    )
    return _workspace_response(workspace)


@rpc("PatchWorkspace", id=int)
def patch_workspace(ctx: Ctx) -> dict[str, Any]:
    user = _caller(ctx)
    patch = ctx.body(_PatchWorkspaceBody)
    row = find_workspace(ctx.db, ctx.path["id"], reject_immutable=True)
    if patch.name is not None:
        _validate_name(patch.name)
    with ctx.db.no_autoflush:
        changed = _apply_workspace_patch(ctx.db, user, row, patch)
        if changed and _name_taken(ctx.db, row.name, other_than=row.id):
            raise ApiError(Code.ALREADY_EXISTS, _DUPLICATE_NAME)
    if changed:
        ctx.db.add(row)
        ctx.db.flush()
    return _workspace_response(workspace_view(ctx.db, row, ctx.user_id))


def _apply_workspace_patch(
    db: Session, user: t.UserRow, row: t.WorkspaceRow, patch: _PatchWorkspaceBody
) -> bool:
    changed = False
    if patch.name is not None and patch.name != row.name:
        _owner_or_admin(user, row, "only admins may set other user's workspaces names")
        row.name, changed = patch.name, True
    if patch.agent_user_group is not None:
        if not user.admin:
            raise permission_denied(
                "only admin privileged users can set workspace agent user groups"
            )
        group = patch.agent_user_group
        row.agent_uid, row.agent_gid = group.agent_uid, group.agent_gid
        row.agent_user, row.agent_group = group.agent_user, group.agent_group
        changed = True
    for pool, attribute in (
        (patch.default_compute_resource_pool, "default_compute_pool"),
        (patch.default_aux_resource_pool, "default_aux_pool"),
    ):
        if pool is not None:
            if pool not in (*RESOURCE_POOLS, ""):
                raise failed_precondition(
                    "unable to bind a resource pool that does not exist or is not available to the workspace"
                )
            setattr(row, attribute, pool)
            changed = True
    if patch.checkpoint_storage_config is not None:
        _owner_or_admin(
            user, row, "only admins may set checkpoint storage config on other user's workspaces"
        )
        # an empty object clears the workspace's storage
        row.checkpoint_storage_config = patch.checkpoint_storage_config or None
        changed = True
    return changed


@rpc("DeleteWorkspace", id=int)
def delete_workspace(ctx: Ctx) -> dict[str, Any]:
    user = _caller(ctx)
    workspace_id: int = ctx.path["id"]
    row = find_workspace(ctx.db, workspace_id)
    _owner_or_admin(user, row, "only admins may delete other user's workspaces")
    if ctx.db.exec(
        select(t.ModelRow.id).where(t.ModelRow.workspace_id == workspace_id).limit(1)
    ).first():
        raise failed_precondition(
            f"workspace ({workspace_id}) contains models; move or delete models first"
        )
    if row.immutable:
        raise internal(
            f"workspace ({workspace_id}) does not exist or not deletable by this user: not found"
        )
    project_ids = ctx.db.exec(
        select(t.ProjectRow.id).where(t.ProjectRow.workspace_id == workspace_id)
    ).all()
    # The master deletes the projects (and their experiments) in a goroutine it waits for, then the
    # workspace; it still answers "not completed" whenever there were projects.
    for project_id in project_ids:
        assert project_id is not None
        delete_project_rows(ctx.db, project_id)
    delete_workspace_templates(ctx.db, workspace_id)
    delete_workspace_policies(ctx.db, workspace_id)  # ON DELETE CASCADE
    ctx.db.execute(
        delete(t.WorkspacePinRow).where(col(t.WorkspacePinRow.workspace_id) == workspace_id)
    )
    ctx.db.execute(delete(t.WorkspaceRow).where(col(t.WorkspaceRow.id) == workspace_id))
    return {"completed": not project_ids}


def _set_archived(ctx: Ctx, *, archived: bool) -> dict[str, Any]:
    user = _caller(ctx)
    workspace_id: int = ctx.path["id"]
    row = find_workspace(ctx.db, workspace_id)
    verb = "archive" if archived else "unarchive"
    _owner_or_admin(user, row, f"only admins may {verb} other user's workspaces")
    if row.immutable:
        raise internal(f"error {verb[:-1]}ing workspace ({workspace_id}): not found")
    row.archived = archived
    ctx.db.add(row)
    return {}


@rpc("ArchiveWorkspace", id=int)
def archive_workspace(ctx: Ctx) -> dict[str, Any]:
    return _set_archived(ctx, archived=True)


@rpc("UnarchiveWorkspace", id=int)
def unarchive_workspace(ctx: Ctx) -> dict[str, Any]:
    return _set_archived(ctx, archived=False)


@rpc("PinWorkspace", id=int)
def pin_workspace(ctx: Ctx) -> dict[str, Any]:
    workspace_id: int = ctx.path["id"]
    find_workspace(ctx.db, workspace_id)
    if workspace_id in _pins(ctx.db, ctx.user_id):
        raise internal(
            f"error pinning workspace ({workspace_id}): error running query: pin_workspace:"
            " ERROR: duplicate key value violates unique constraint"
            ' "workspace_pins_user_id_workspace_id_key" (SQLSTATE 23505)'
        )
    ctx.db.add(
        t.WorkspacePinRow(workspace_id=workspace_id, user_id=ctx.user_id, created_at=utcnow())
    )
    return {}


@rpc("UnpinWorkspace", id=int)
def unpin_workspace(ctx: Ctx) -> dict[str, Any]:
    workspace_id: int = ctx.path["id"]
    find_workspace(ctx.db, workspace_id)
    pin = _pins(ctx.db, ctx.user_id).get(workspace_id)
    if pin is None:
        raise internal(f"error un-pinning workspace ({workspace_id}): not found")
    ctx.db.delete(pin)
    return {}


@rpc("GetWorkspaceProjects", id=int)
def get_workspace_projects(ctx: Ctx) -> ProjectsResponse:
    q = ctx.query
    workspace_id: int = ctx.path["id"]
    sort_by = q.get_enum("sort_by", ProjectSortBy, "apiv1.GetWorkspaceProjectsRequest_SortBy")
    order = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    offset, limit = q.get_int("offset"), q.get_int("limit")
    archived = q.get_bool_value("archived")
    users = list_filter(q.get_strs("users"))
    user_ids = q.get_ints("user_ids")
    name = q.get_str("name")
    if workspace_id != 0:
        find_workspace(ctx.db, workspace_id)
    names = usernames(ctx.db)
    query = select(t.ProjectRow)
    if workspace_id != 0:
        query = query.where(t.ProjectRow.workspace_id == workspace_id)
    rows = []
    for row in ctx.db.exec(query).all():
        if users is not None and names.get(row.user_id) not in users:
            continue
        if user_ids and row.user_id not in user_ids:
            continue
        if name and not like_match(
            row.name, name, case_insensitive=True, query="get_workspace_projects"
        ):
            continue
        if archived is not None and row.archived != archived:  # the project's own flag only
            continue
        rows.append(row)
    stats = project_stats(ctx.db, [r.id for r in rows if r.id is not None])
    _sort_projects(rows, sort_by, descending=order == OrderBy.DESC, stats=stats)
    page = in_memory_page(offset, limit, len(rows))
    archived_workspaces = set(
        ctx.db.exec(select(t.WorkspaceRow.id).where(col(t.WorkspaceRow.archived))).all()
    )
    projects = [
        list_project_view(r, stats, names, workspace_archived=r.workspace_id in archived_workspaces)
        for r in page.slice(rows)
    ]
    return ProjectsResponse(projects=projects, pagination=page.pagination)


def _sort_projects(
    rows: list[t.ProjectRow], sort_by: ProjectSortBy, *, descending: bool, stats: Any
) -> None:
    """``ORDER BY <col> <dir>, id <dir>``; Postgres puts NULL start times last ascending, first
    descending (they are the largest values)."""
    rows.sort(key=lambda r: r.id or 0, reverse=descending)
    if sort_by == ProjectSortBy.CREATION_TIME:
        rows.sort(key=lambda r: r.created_at, reverse=descending)
    elif sort_by == ProjectSortBy.NAME:
        rows.sort(key=lambda r: collation_key(r.name), reverse=descending)
    elif sort_by == ProjectSortBy.DESCRIPTION:
        rows.sort(key=lambda r: collation_key(r.description), reverse=descending)
    elif sort_by == ProjectSortBy.LAST_EXPERIMENT_START_TIME:

        def last_start(row: t.ProjectRow) -> tuple[bool, Any]:
            started = stats.last_start.get(row.id)
            return (started is None, started or 0)

        rows.sort(key=last_start, reverse=descending)
