"""Users (``api_user.go``): list and get."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from detorm._plan._collation import collation_key
from detorm._wire import AgentUserGroup, OrderBy, User, UserResponse, UserSortBy, UsersResponse
from detorm.local._views import ts

from .. import _tables as t
from .._app import Ctx, rpc
from .._errors import ApiError, invalid_argument, not_found
from .._filter_sql import like
from .._pagination import in_memory_page

# ORDER BY <column> <dir>, id ASC; text in the database's collation
_SORT_KEYS: dict[UserSortBy, Any] = {
    UserSortBy.UNSPECIFIED: lambda u: u.id,
    UserSortBy.DISPLAY_NAME: lambda u: collation_key(u.display_name),
    UserSortBy.USER_NAME: lambda u: collation_key(u.username),
    UserSortBy.ADMIN: lambda u: u.admin,
    UserSortBy.ACTIVE: lambda u: u.active,
    UserSortBy.MODIFIED_TIME: lambda u: u.modified_at,
    UserSortBy.NAME: lambda u: collation_key(u.display_name or u.username),
    UserSortBy.LAST_AUTH_TIME: lambda u: (u.last_auth_at is None, u.last_auth_at),
    UserSortBy.REMOTE: lambda u: u.remote,
}


def user_view(row: t.UserRow) -> User:
    group = None
    if row.agent_uid is not None or row.agent_user is not None:
        group = AgentUserGroup(
            agent_uid=row.agent_uid,
            agent_gid=row.agent_gid,
            agent_user=row.agent_user,
            agent_group=row.agent_group,
        )
    return User(
        id=row.id or 0,
        username=row.username,
        admin=row.admin,
        active=row.active,
        agent_user_group=group,
        display_name=row.display_name,
        modified_at=ts(row.modified_at),
        remote=row.remote,
        last_auth_at=ts(row.last_auth_at),
    )


@rpc("GetUsers")
def get_users(ctx: Ctx) -> UsersResponse:
    q = ctx.query
    if q.get_ints("role_id_assigned_directly_to_user"):
        raise invalid_argument("cannot filter by role id. RBAC must be enabled.")
    rows = list(ctx.db.exec(select(t.UserRow)).all())
    name = q.get_str("name")
    if name:  # `u.display_name ILIKE ? OR u.username ILIKE ?` with '%' + name + '%'
        pattern = f"%{name}%"
        rows = [r for r in rows if any(like(text, pattern, case_insensitive=True)
                                       for text in (r.display_name, r.username))]  # fmt: skip
    admin, active = q.get_bool_value("admin"), q.get_bool_value("active")
    if admin is not None:
        rows = [r for r in rows if r.admin == admin]
    if active is not None:
        rows = [r for r in rows if r.active == active]
    sort_by = q.get_enum("sort_by", UserSortBy, "apiv1.GetUsersRequest_SortBy")
    order = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    rows.sort(key=lambda r: r.id or 0)  # ties: id ASC
    rows.sort(key=_SORT_KEYS[sort_by], reverse=order == OrderBy.DESC)
    page = in_memory_page(q.get_int("offset"), q.get_int("limit"), len(rows))
    return UsersResponse(users=[user_view(r) for r in page.slice(rows)], pagination=page.pagination)


@rpc("GetUser", user_id=int)
def get_user(ctx: Ctx) -> UserResponse:
    row = ctx.db.get(t.UserRow, ctx.path["user_id"])
    if row is None:
        raise _user_not_found()
    return UserResponse(user=user_view(row))


def _user_not_found() -> ApiError:
    """``getFullModelUser``: ``api.NotFoundErrs("user", "", true)``, which names no id."""
    return not_found("user not found")


@rpc("GetUserByUsername")
def get_user_by_username(ctx: Ctx) -> UserResponse:
    username = ctx.path["username"]
    row = ctx.db.exec(select(t.UserRow).where(t.UserRow.username == username)).first()
    if row is None:
        raise _user_not_found()  # getFullModelUserByUsername
    return UserResponse(user=user_view(row))
