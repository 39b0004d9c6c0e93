"""Messages shared by many endpoints: pagination, metrics, users, error bodies."""

from __future__ import annotations

from typing import Any

from ._base import Struct, Timestamp, WireModel, absent

__all__ = [
    "AgentUserGroup",
    "ErrorBody",
    "ErrorDetail",
    "Empty",
    "Metrics",
    "Pagination",
    "StreamError",
    "StreamErrorBody",
    "User",
]


class Empty(WireModel):
    """``{}``: the response of RPCs that return nothing."""


class Pagination(WireModel):
    """``v1Pagination``: ``offset``/``limit`` echo the request; ``endIndex`` is exclusive."""

    offset: int = 0
    limit: int = 0
    start_index: int = 0
    end_index: int = 0
    total: int = 0


class Metrics(WireModel):
    """``commonv1.Metrics``: averaged metrics and optional per-batch metrics."""

    avg_metrics: Struct | None = None
    batch_metrics: list[Struct] = []


class AgentUserGroup(WireModel):
    agent_uid: int | None = absent()
    agent_gid: int | None = absent()
    agent_user: str | None = absent()
    agent_group: str | None = absent()


class User(WireModel):
    """``userv1.User``."""

    id: int = 0
    username: str = ""
    admin: bool = False
    active: bool = False
    agent_user_group: AgentUserGroup | None = None
    display_name: str = ""
    modified_at: Timestamp | None = None
    remote: bool = False
    last_auth_at: Timestamp | None = absent()


class ErrorDetail(WireModel):
    """The inner object of a unary error: gRPC code number, code name and message."""

    code: int = 0
    reason: str = ""
    error: str = ""


class ErrorBody(WireModel):
    """A unary error body: ``{"error": {"code": 5, "reason": "NotFound", "error": "..."}}``."""

    error: ErrorDetail


class StreamError(WireModel):
    """``runtime.StreamError``: the error line of a stream."""

    grpc_code: int = 0
    http_code: int = 0
    message: str = ""
    http_status: str = ""
    details: list[Any] = []


class StreamErrorBody(WireModel):
    """``{"error": {"grpcCode", "httpCode", "message", "httpStatus", "details"}}``."""

    error: StreamError
