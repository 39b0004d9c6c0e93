"""Master information: ``GET /api/v1/master`` (no auth) and the Echo route ``/info``; the
master's config, its own log, and the cluster message (``api_master.go``).

The two differ on the master: ``GetMaster`` is the ``GetMasterResponse`` proto (camelCase, every
field emitted, ``hasCustomLogo`` included: the official client requires it), ``/info`` is the Go
struct ``aproto.MasterInfo`` written by Echo's ``c.JSON`` (snake_case keys, a ``telemetry``
object, ``sso_providers`` a nil slice, so ``null``, on a cluster without SSO; ``core.go``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlmodel import col, select
from starlette.responses import Response

from detorm._wire import Timestamp
from detorm._wire._base import WireModel, absent

from .. import _tables as t
from .._app import Ctx, MessageBatch, echo, rpc
from .._db import utcnow
from .._errors import ApiError, Code, invalid_argument, permission_denied
from .._go import quote
from .._master_log import LOGGER, MASTER_LOG, LogEntry
from .._ntsc_config import parse_duration
from .._scheduler import POOL
from .._storage import SHARED_FS_CONTAINER_PATH

VERSION: Final = "0.38.1"
CLUSTER_ID: Final = str(uuid.uuid5(uuid.NAMESPACE_DNS, "detorm.local"))
CLUSTER_NAME: Final = "detorm.local"


@rpc("GetMaster")
def get_master(ctx: Ctx) -> dict[str, Any]:
    # api_master.go GetMaster; clusterMessage, a proto3 optional, only while a message is active
    body: dict[str, Any] = {
        "version": VERSION,
        "masterId": CLUSTER_ID,
        "clusterId": CLUSTER_ID,
        "clusterName": CLUSTER_NAME,
        "telemetryEnabled": False,
        "ssoProviders": [],
        "externalLoginUri": "",
        "externalLogoutUri": "",
        "branding": "determined",
        "rbacEnabled": False,
        "product": "PRODUCT_UNSPECIFIED",
        "featureSwitches": [],
        "userManagementEnabled": True,
        "strictJobQueueControl": False,
        "hasCustomLogo": False,
    }
    active = _active_message(ctx, require_started=True)
    if active is not None:
        body["clusterMessage"] = _message_view(active)
    return body


@echo("GET", "/info")
def info(ctx: Ctx) -> Response:
    # Master.Info() in core.go; Echo's JSON encoder ends the body with a newline
    body = {
        "version": VERSION,
        "master_id": CLUSTER_ID,
        "cluster_id": CLUSTER_ID,
        "cluster_name": CLUSTER_NAME,
        "telemetry": {"enabled": False, "otel_enabled": False, "otel_endpoint": ""},
        "sso_providers": None,
    }
    text = json.dumps(body, separators=(",", ":")) + "\n"
    return Response(text.encode(), 200, media_type="application/json")


# --- permissions ----------------------------------------------------------------------------
def _require_admin(ctx: Ctx) -> None:
    """``MiscAuthZBasic``'s config and cluster-message checks: ``grpcutil.ErrPermissionDenied``."""
    assert ctx.user is not None
    if not ctx.user.admin:
        raise permission_denied("user does not have permission")


# --- the master's config --------------------------------------------------------------------
_LEVEL_NAMES: Final = {
    logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn",
    logging.ERROR: "error", logging.CRITICAL: "fatal",
}  # fmt: skip


@rpc("GetMasterConfig")
def get_master_config(ctx: Ctx) -> dict[str, Any]:
    """``config.Printable()`` as a Struct: detorm.local's own settings under the keys of the
    master's ``Config`` JSON (a subset: no Postgres, no agents to reach, no SSO)."""
    _require_admin(ctx)
    cluster = ctx.app.cluster
    return {
        "config": {
            "config_file": "",
            "log": {"level": _LEVEL_NAMES.get(LOGGER.getEffectiveLevel(), "info"),
                    "color": False},
            "db": {"name": str(ctx.app.db.path)},
            "checkpoint_storage": {
                "type": "shared_fs",
                "host_path": str(ctx.app.db.path.parent / "checkpoints"),
                "container_path": SHARED_FS_CONTAINER_PATH,
                "propagation": "rprivate",
                "save_experiment_best": 0,
                "save_trial_best": 1,
                "save_trial_latest": 1,
            },
            "cluster_name": CLUSTER_NAME,
            "enable_cors": False,
            "feature_switches": None,  # a nil slice
            "telemetry": {"enabled": False},
            "resource_manager": {
                "type": "agent",
                "scheduler": {"type": "priority", "fitting_policy": "best"},
                "default_compute_resource_pool": POOL,
                "default_aux_resource_pool": POOL,
            },
            "resource_pools": [{"pool_name": POOL, "description": "",
                                "max_slots": cluster.slots}],
        }
    }  # fmt: skip


class _PatchMasterConfigBody(WireModel):
    config: dict[str, Any] | None = absent()
    field_mask: str | dict[str, Any] | None = absent()


def _mask_paths(mask: str | dict[str, Any] | None) -> list[str]:
    """A ``FieldMask`` in JSON is one comma-separated string of lowerCamel paths."""
    if mask is None:
        return []
    if isinstance(mask, dict):
        return [str(p) for p in mask.get("paths", [])]
    return [p for p in mask.split(",") if p]


@rpc("PatchMasterConfig")
def patch_master_config(ctx: Ctx) -> dict[str, Any]:
    """Accepts ``log.level`` and ``log.color`` and changes nothing, as 0.38.1 does: its handler
    re-applies the master's *current* log config (``logger.SetLogrus(a.m.config.Log)``) and never
    reads ``config`` from the request. Any other path panics; the recovery interceptor answers
    Internal with the panic's text."""
    _require_admin(ctx)
    body = ctx.body(_PatchMasterConfigBody)
    for path in _mask_paths(body.field_mask):
        if path not in ("log.level", "log.color"):
            raise ApiError(Code.INTERNAL, f"unsupported or invalid field: {path}")
    return {}


# --- the master's log (_master_log.py) -----------------------------------------------------
FOLLOW_POLL_SECONDS: float = 1.0  # masterLogsBatchMissWaitTime; an attribute tests can shorten


def _effective_offset(offset: int, total: int) -> int:
    """``api.EffectiveOffset``: a negative offset counts from the end."""
    if offset < -total:
        return 0
    return max(total + offset, 0) if offset < 0 else offset


def _effective_limit(limit: int, offset: int, total: int) -> int:
    """``api.EffectiveLimit``: 0 (unset) or more than remain means all that remain."""
    if limit < 0:
        return -1
    return total - offset if limit == 0 or limit > total - offset else limit


def _entry_view(entry: LogEntry) -> dict[str, Any]:
    return {
        "logEntry": {
            "id": entry.id,
            "message": entry.message,
            "timestamp": Timestamp.from_datetime(entry.time).rfc3339(),
            "level": entry.level.value,
        }
    }


@rpc("MasterLogs")
def master_logs(ctx: Ctx) -> Iterator[MessageBatch]:
    q = ctx.query
    offset, limit, follow = q.get_int("offset"), q.get_int("limit"), q.get_bool("follow")
    if limit < 0:
        raise invalid_argument("Limit must be >= 0")
    if limit != 0 and follow:
        raise invalid_argument("Limit cannot be specified when following")
    total = len(MASTER_LOG)
    start = _effective_offset(offset, total)
    count = -1 if follow else _effective_limit(limit, start, total)
    return _log_batches(start, count, follow)


def _log_batches(start: int, count: int, follow: bool) -> Iterator[MessageBatch]:
    """Unfollowed: ``count`` entries from ``start``; followed: everything from ``start``, then
    each new entry, polling as the batch stream processor does (until the client leaves)."""
    entries = MASTER_LOG.entries(start, count)
    if entries:
        yield MessageBatch(_entry_view(e) for e in entries)
    if not follow:
        return
    last = entries[-1].id if entries else start - 1
    while True:
        MASTER_LOG.wait_beyond(last, FOLLOW_POLL_SECONDS)
        entries = MASTER_LOG.entries(last + 1, -1)
        if entries:
            last = entries[-1].id
            yield MessageBatch(_entry_view(e) for e in entries)
        else:
            yield MessageBatch()


# --- the cluster message (db/postgres_clustermessage.go) ------------------------------------
MESSAGE_MAX_LENGTH: Final = 250  # db.ClusterMessageMaxLength, in runes


class _SetClusterMessageBody(WireModel):
    message: str = ""
    start_time: Timestamp | None = None
    end_time: Timestamp | None = absent()
    duration: str | None = absent()


def _message_view(row: t.ClusterMessageRow) -> dict[str, Any]:
    view: dict[str, Any] = {"message": row.message, "startTime": _rfc3339(row.start_time)}
    if row.end_time is not None:
        view["endTime"] = _rfc3339(row.end_time)
    view["createdTime"] = _rfc3339(row.created_time)
    return view


def _rfc3339(value: datetime) -> str:
    return Timestamp.from_datetime(value).rfc3339()


def _active_message(ctx: Ctx, *, require_started: bool) -> t.ClusterMessageRow | None:
    """The newest message unless it has ended (``GetClusterMessage``), and for ``GetMaster``
    only once it has started (``GetActiveClusterMessage``)."""
    newest = ctx.db.exec(
        select(t.ClusterMessageRow).order_by(col(t.ClusterMessageRow.id).desc()).limit(1)
    ).first()
    now = utcnow()
    if newest is None or (newest.end_time is not None and _aware(newest.end_time) <= now):
        return None
    if require_started and not _aware(newest.start_time) < now:
        return None
    return newest


def _aware(value: datetime) -> datetime:
    return Timestamp.from_datetime(value)


@rpc("GetClusterMessage")
def get_cluster_message(ctx: Ctx) -> dict[str, Any]:
    _require_admin(ctx)  # CanUpdateMasterConfig, even to read it
    row = _active_message(ctx, require_started=False)
    return {} if row is None else {"clusterMessage": _message_view(row)}


@rpc("SetClusterMessage")
def set_cluster_message(ctx: Ctx) -> dict[str, Any]:
    assert ctx.user is not None
    _require_admin(ctx)
    body = ctx.body(_SetClusterMessageBody)
    if body.end_time is not None and body.duration is not None:
        raise invalid_argument("EndTime and Duration are mutually exclusive")
    # an unset start time is the zero Timestamp: the Unix epoch
    start: datetime = body.start_time or Timestamp(1970, 1, 1, tzinfo=UTC)
    end: datetime | None = body.end_time
    if body.duration is not None:
        end = start + timedelta(microseconds=_positive_duration(body.duration) // 1000)
    _check_message(body.message, start, end)
    now = utcnow()
    _end_open_messages(ctx, now)
    ctx.db.add(
        t.ClusterMessageRow(
            created_by=ctx.user_id, message=body.message, start_time=start, end_time=end,
            created_time=now,
        )
    )  # fmt: skip
    LOGGER.info("cluster message set by %s", quote(ctx.user.username))
    return {}


def _positive_duration(text: str) -> int:
    try:
        nanos = parse_duration(text)
    except ValueError:
        nanos = -1
    if nanos < 0:
        raise invalid_argument(
            "Duration must be a Go-formatted duration string with a positive value"
        )
    return nanos


def _check_message(message: str, start: datetime, end: datetime | None) -> None:
    """``db.SetClusterMessage``'s checks, wrapping ``db.ErrInvalidInput`` ("invalid input")."""
    if len(message) > MESSAGE_MAX_LENGTH:
        raise invalid_argument(
            f"invalid input: message must be at most {MESSAGE_MAX_LENGTH} characters; "
            f"got {len(message)}"
        )
    if end is not None and end < start:
        raise invalid_argument("invalid input, end time must be after start time")
    if end is not None and end < utcnow():
        raise invalid_argument("invalid input, end time must be after current time")


def _end_open_messages(ctx: Ctx, now: datetime) -> None:
    """``SET end_time = NOW() WHERE end_time >= NOW() OR end_time IS NULL``."""
    for row in ctx.db.exec(select(t.ClusterMessageRow)).all():
        if row.end_time is None or _aware(row.end_time) >= now:
            row.end_time = now
            ctx.db.add(row)


@rpc("DeleteClusterMessage")
def delete_cluster_message(ctx: Ctx) -> dict[str, Any]:
    _require_admin(ctx)
    _end_open_messages(ctx, utcnow())
    return {}
