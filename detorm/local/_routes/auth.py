"""Login, logout and the current user (``api_auth.go``)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Final

from sqlmodel import col, delete, select

from detorm._wire import Empty, LoginRequest, LoginResponse, UserResponse

from .. import _tables as t
from .._app import Ctx, rpc
from .._db import client_hash, utcnow, verify_password
from .._errors import ApiError, Code, invalid_argument, unauthenticated
from .users import user_view

SESSION_DURATION: Final = timedelta(days=7)


def start_session(ctx: Ctx, user: t.UserRow) -> str:
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    ctx.db.add(t.UserSessionRow(user_id=user.id, token=token, expiry=utcnow() + SESSION_DURATION))
    return token


@rpc("Login")
def login(ctx: Ctx) -> LoginResponse:
    request = ctx.body(LoginRequest)
    if request.username == "":
        raise invalid_argument("missing argument: username")
    user = ctx.db.exec(select(t.UserRow).where(t.UserRow.username == request.username)).first()
    if user is None or user.remote:
        raise unauthenticated("invalid credentials")
    hashed = request.password if request.is_hashed else client_hash(request.password)
    if not verify_password(user.password_hash, hashed):
        raise unauthenticated("invalid credentials")
    if not user.active:
        raise ApiError(Code.PERMISSION_DENIED, "user is not active")
    user.last_auth_at = utcnow()
    token = start_session(ctx, user)
    ctx.db.flush()
    return LoginResponse(token=token, user=user_view(user))


@rpc("Logout")
def logout(ctx: Ctx) -> Empty:
    assert ctx.token is not None
    token = ctx.token.removeprefix("Bearer ")
    ctx.db.execute(delete(t.UserSessionRow).where(col(t.UserSessionRow.token) == token))
    return Empty()


@rpc("CurrentUser")
def current_user(ctx: Ctx) -> UserResponse:
    assert ctx.user is not None
    return UserResponse(user=user_view(ctx.user))


@rpc("GetMe")
def get_me(ctx: Ctx) -> UserResponse:
    assert ctx.user is not None
    return UserResponse(user=user_view(ctx.user))
