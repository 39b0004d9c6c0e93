"""Users (``api_user.go``): list, get, create, edit, activate, passwords."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from sqlmodel import col, delete, select, update

from detorm._plan._collation import collation_key
from detorm._wire import AgentUserGroup, OrderBy, User, UserResponse, UserSortBy, UsersResponse
from detorm._wire._base import WireModel, absent
from detorm.local._views import ts

from .. import _tables as t
from .._app import Ctx, _go_json_error, rpc
from .._db import client_hash, hash_password, utcnow
from .._errors import ApiError, Code, GatewayError, invalid_argument, not_found, permission_denied
from .._filter_sql import like
from .._go import quote
from .._pagination import in_memory_page
from .._sql_lists import orm_in

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


# --- writes (api_user.go, user/postgres_users.go, user/authz_basic_impl.go) ------------------

_DETERMINED: Final = "determined"
# Go's regexp `[^[:graph:]\s]`: neither printable ASCII nor Go's \s ([\t\n\f\r ])
_NOT_LATIN_TEXT: Final = re.compile(r"[^\x21-\x7e\t\n\f\r ]")
# `api.ErrUserExists` is an echo.HTTPError returned from a gRPC handler: grpc sees no status in
# it (codes.Unknown, its Error() text) and the error handler rewrites Unknown to Internal (500).
_USER_EXISTS: Final = "code=400, message=user already exists"


class _PostUserBody(WireModel):
    user: User | None = absent()
    password: str = ""
    is_hashed: bool = False


class _PatchUserBody(WireModel):
    """``userv1.PatchUser``: every field optional (wrappers for admin and active)."""

    username: str | None = absent()
    password: str | None = absent()
    admin: bool | None = absent()
    active: bool | None = absent()
    display_name: str | None = absent()
    agent_user_group: AgentUserGroup | None = absent()
    is_hashed: bool = False
    remote: bool | None = absent()


class _PatchUsersBody(WireModel):
    user_ids: list[int] = []
    activate: bool = False


def _go_trim_space(text: str) -> str:
    """``strings.TrimSpace``: Unicode white space (Python's str.strip also drops the
    information separators \\x1c-\\x1f, which Go keeps)."""
    keep = "\x1c\x1d\x1e\x1f"
    start, end = 0, len(text)
    while start < end and text[start].isspace() and text[start] not in keep:
        start += 1
    while end > start and text[end - 1].isspace() and text[end - 1] not in keep:
        end -= 1
    return text[start:end]


def clear_username(target_admin: bool, target_username: str, name: str, min_length: int) -> str:
    """``clearUsername``: trimmed, ASCII only, a minimum byte length, and the reserved names."""
    clear = _go_trim_space(name)
    if _NOT_LATIN_TEXT.search(clear):  # reject hidden white space, confusable letters
        raise invalid_argument("Display name and username cannot contain non-ASCII characters.")
    if len(clear.encode()) < min_length:
        raise invalid_argument("Display name or username value has minimum length.")
    if not target_admin and clear.lower() == "admin":
        raise invalid_argument("Non-admin user cannot be renamed 'admin'")
    if target_username != _DETERMINED and clear.lower() == _DETERMINED:
        raise invalid_argument("User cannot be renamed 'determined'")
    return clear


def _agent_user_group(group: AgentUserGroup) -> AgentUserGroup | None:
    """``model.AgentUserGroupFromProto``: all four fields or none (None: an empty group, which
    the master's update deletes and does not re-add)."""
    values = (group.agent_uid, group.agent_gid, group.agent_user, group.agent_group)
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise invalid_argument("agentUid, agentGid, agentUser and agentGroup cannot be empty")
    if not group.agent_user or not group.agent_group:
        raise invalid_argument("agentUser and agentGroup names cannot be empty")
    return group


def _set_agent_user_group(row: t.UserRow, group: AgentUserGroup | None) -> None:
    row.agent_uid, row.agent_gid = (group.agent_uid, group.agent_gid) if group else (None, None)
    row.agent_user, row.agent_group = (
        (group.agent_user, group.agent_group) if group else (None, None)
    )


def _stored_password(password: str, is_hashed: bool) -> str | None:
    """``UpdatePasswordHash`` of the client-side hash; the empty password is stored as none."""
    hashed = password if is_hashed else client_hash(password)
    return hash_password(hashed) if hashed else None


def _end_sessions(ctx: Ctx, user_id: int) -> None:
    """A password change deletes the user's login sessions (``user.Update``)."""
    ctx.db.execute(delete(t.UserSessionRow).where(col(t.UserSessionRow.user_id) == user_id))


def _require_admin(user: t.UserRow, message: str) -> None:
    if not user.admin:
        raise permission_denied(message)


def _require_self_or_admin(user: t.UserRow, target: t.UserRow, message: str) -> None:
    if not user.admin and user.id != target.id:
        raise permission_denied(message)


@rpc("PostUser")
def post_user(ctx: Ctx) -> UserResponse:
    assert ctx.user is not None
    body = ctx.body(_PostUserBody)
    if body.user is None:
        raise invalid_argument("must specify user to create")
    wanted = body.user
    if body.password and wanted.remote:
        raise invalid_argument("cannot set password for remote user")
    username = clear_username(wanted.admin, wanted.username, wanted.username, 2)
    display_name = ""
    if wanted.display_name:
        display_name = clear_username(wanted.admin, username, wanted.display_name, 0)
    group = _agent_user_group(wanted.agent_user_group) if wanted.agent_user_group else None
    _require_admin(ctx.user, "only admin privileged users can create users")
    if ctx.db.exec(select(t.UserRow.id).where(t.UserRow.username == username)).first():
        raise ApiError(Code.INTERNAL, _USER_EXISTS)
    row = t.UserRow(
        username=username,
        admin=wanted.admin,
        active=wanted.active,
        remote=wanted.remote,
        display_name=display_name,
        modified_at=utcnow(),
        password_hash=None if wanted.remote else _stored_password(body.password, body.is_hashed),
    )
    _set_agent_user_group(row, group)
    ctx.db.add(row)
    ctx.db.flush()
    return UserResponse(user=user_view(row))


def _target_user(ctx: Ctx) -> t.UserRow:
    row = ctx.db.get(t.UserRow, ctx.path["user_id"])
    if row is None:
        raise _user_not_found()
    return row


@rpc("SetUserPassword", user_id=int)
def set_user_password(ctx: Ctx) -> UserResponse:
    assert ctx.user is not None
    password = _password_body(ctx.raw_body)  # the gateway's decoding, before the RPC runs
    target = _target_user(ctx)
    _require_self_or_admin(
        ctx.user, target, "only admin privileged users can change other user's passwords"
    )
    # the body is the plain password: the master always applies the client-side hash here
    target.password_hash = _stored_password(password, is_hashed=False)
    target.modified_at = utcnow()
    _end_sessions(ctx, ctx.path["user_id"])
    ctx.db.add(target)
    ctx.db.flush()
    return UserResponse(user=user_view(target))


def _password_body(raw: bytes) -> str:
    """The body is the bare JSON string the gateway decodes into the request's ``password``
    (an empty body or ``null`` leaves it empty)."""
    text = raw.strip()
    if not text:
        return ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise GatewayError(Code.INVALID_ARGUMENT, _go_json_error(err)) from None
    if value is None:
        return ""
    if not isinstance(value, str):
        kind = {bool: "bool", dict: "object", list: "array"}.get(type(value), "number")
        raise GatewayError(
            Code.INVALID_ARGUMENT, f"json: cannot unmarshal {kind} into Go value of type string"
        )
    return value


@rpc("PatchUser", user_id=int)
def patch_user(ctx: Ctx) -> UserResponse:
    assert ctx.user is not None
    if not ctx.raw_body.strip() or ctx.raw_body.strip() == b"null":
        raise invalid_argument("must provide user")
    patch = ctx.body(_PatchUserBody)
    caller, target = ctx.user, _target_user(ctx)
    with ctx.db.no_autoflush:
        updates_row = _patch_user(ctx, caller, target, patch)
    if updates_row:
        target.modified_at = utcnow()  # the users table's autoupdate_users_modified_at trigger
    ctx.db.add(target)
    ctx.db.flush()
    return UserResponse(user=user_view(target))


def _patch_user(ctx: Ctx, caller: t.UserRow, target: t.UserRow, patch: _PatchUserBody) -> bool:
    """``PatchUser``'s checks in its order; each failure leaves the row unwritten (the request's
    transaction rolls back). True when ``user.Update`` would UPDATE the row (any column listed:
    the agent user group lives in its own table)."""
    columns = [patch.admin, patch.remote, patch.active, patch.password]
    renamed = patch.username is not None and patch.username != target.username
    redisplayed = patch.display_name is not None and patch.display_name != target.display_name
    was_admin, old_username = target.admin, target.username
    will_be_remote = target.remote
    if patch.admin is not None:
        _require_admin(caller, "only admin privileged users can update users")
        target.admin = patch.admin
    if patch.remote is not None:
        _require_admin(caller, "only admin privileged users can update other users")
        will_be_remote = patch.remote
        if target.remote != will_be_remote and (will_be_remote or patch.password is None):
            target.password_hash = None  # NoPasswordLogin, or the empty password
        target.remote = will_be_remote
    if patch.active is not None:
        _require_admin(caller, "only admin privileged users can update users")
        target.active = patch.active
    if patch.username is not None and patch.username != old_username:
        _require_self_or_admin(caller, target, "only admin privileged users can update other users")
        if will_be_remote:
            raise invalid_argument("Cannot set username for remote users")
        username = clear_username(was_admin, old_username, patch.username, 2)
        taken = select(t.UserRow.id).where(t.UserRow.username == username)
        if ctx.db.exec(taken.where(t.UserRow.id != target.id)).first() is not None:
            raise ApiError(Code.INTERNAL, _duplicate_username_error(username))
        target.username = username
    if patch.display_name is not None and patch.display_name != target.display_name:
        _require_self_or_admin(
            caller, target, "only admin privileged users can set another user's display name"
        )
        target.display_name = _checked_display_name(ctx, was_admin, old_username, target, patch)
    if patch.password is not None:
        _require_self_or_admin(
            caller, target, "only admin privileged users can change other user's passwords"
        )
        if will_be_remote:
            raise invalid_argument("Cannot set password for remote users")
        target.password_hash = _stored_password(patch.password, patch.is_hashed)
        _end_sessions(ctx, target.id or 0)
    if patch.agent_user_group is not None:
        group = _agent_user_group(patch.agent_user_group)
        _require_admin(caller, "only admin privileged users can update users")
        _set_agent_user_group(target, group)
    return renamed or redisplayed or any(v is not None for v in columns)


def _duplicate_username_error(username: str) -> str:
    """``user.Update``'s wrapping of pgx v4's unique violation (the model holds the new name)."""
    return (
        f"error setting active status of {quote(username)}: ERROR: duplicate key value "
        'violates unique constraint "users_username_key" (SQLSTATE 23505)'
    )


def _checked_display_name(
    ctx: Ctx, was_admin: bool, old_username: str, target: t.UserRow, patch: _PatchUserBody
) -> str:
    assert patch.display_name is not None
    display_name = clear_username(was_admin, old_username, patch.display_name, 0)
    if display_name == "":
        return ""
    lower = display_name.lower()
    others = ctx.db.exec(select(t.UserRow).where(t.UserRow.id != target.id)).all()
    # LOWER(username) = ? OR LOWER(display_name) = ?, against the stored (pre-patch) rows
    if any(lower in (o.username.lower(), (o.display_name or "").lower()) for o in others):
        raise invalid_argument(
            f"can not change display name to {display_name} found a similar username or "
            "display name"
        )
    return display_name


@rpc("PatchUsers")
def patch_users(ctx: Ctx) -> dict[str, Any]:
    assert ctx.user is not None
    body = ctx.body(_PatchUsersBody)
    results: list[dict[str, Any]] = []
    editable: list[int] = []
    for user_id in body.user_ids:
        # the master checks no existence here: a missing id is "done" and updates nothing
        if ctx.user.admin:
            results.append({"error": "", "id": user_id})
            editable.append(user_id)
        else:
            results.append({"error": "only admin privileged users can update users", "id": user_id})
    if editable:
        ctx.db.execute(
            update(t.UserRow)
            .where(orm_in(col(t.UserRow.id), editable))
            .values(active=body.activate, modified_at=utcnow())  # the modified_at trigger
        )
    return {"results": results}


@rpc("PostUserActivity")
def post_user_activity(ctx: Ctx) -> dict[str, Any]:
    # the master upserts a "recently used" row the web UI reads; nothing here reads it back
    return {}
