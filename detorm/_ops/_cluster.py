"""The cluster itself: master information and configuration, the master's own log, the
cluster-wide message, and logging out. Each is one op, run by both APIs.

Wire facts (master 0.38.1, ``master/internal/api_master.go``, ``api_auth.go``):
- ``GET /api/v1/master`` needs no login; ``GET /api/v1/master/config`` is admin-only (403);
- ``GET /api/v1/master/logs`` streams ``{"result": {"logEntry": ...}}``; ``offset`` < 0
  counts from the end, ``limit`` 0 means no limit, a negative ``limit`` is refused, and so is a
  limit with ``follow`` (``grpcutil.ValidateFollow``);
- the cluster message routes (``GET``/``PUT``/``DELETE /api/v1/master/cluster_message``) are
  admin-only, even the GET (``CanUpdateMasterConfig``); PUT takes ``startTime`` (unset: the
  Unix epoch, so it is always sent), refuses ``endTime`` with ``duration`` ("EndTime and
  Duration are mutually exclusive"), a message over 250 characters, an end before the start
  or in the past (``db/postgres_clustermessage.go``);
- ``POST /api/v1/auth/logout`` ends the token's session on the master.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .. import _wire as w
from .._plan._call import NO_RETRY, Call, query_items
from .._resources._inputs import INT32_MAX, check_int, check_text, require
from ..errors import InvalidValue, QueryError, Unauthenticated
from ._effects import Op, Rows, blocking, emit, send

if TYPE_CHECKING:
    from .._io._auth import Secret, TokenCache
    from ._http import _Http

__all__ = [
    "ClusterMessage",
    "MasterInfo",
    "MasterLogEntry",
    "SSOProvider",
    "LoggingOut",
    "clear_cluster_message",
    "cluster_message",
    "cluster_message_body",
    "log_out",
    "master_config",
    "master_info",
    "master_log_reader",
    "set_cluster_message",
]

_MESSAGE_ROUTE = "/api/v1/master/cluster_message"
MESSAGE_MAX_LENGTH = 250  # db.ClusterMessageMaxLength, in runes (code points)


# --- value types ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClusterMessage:
    """The cluster-wide message the web UI shows from ``start`` until ``end`` (None: no end)."""

    message: str
    start: datetime | None
    end: datetime | None
    created: datetime | None

    @classmethod
    def from_wire(cls, raw: w.ClusterMessage) -> ClusterMessage:
        """The message from the master's JSON."""
        return cls(raw.message, raw.start_time, raw.end_time, raw.created_time)


@dataclass(frozen=True, slots=True)
class SSOProvider:
    name: str
    sso_url: str
    type: str  # SAML, OIDC...
    always_redirect: bool


@dataclass(frozen=True, slots=True)
class MasterInfo:
    """What ``GET /api/v1/master`` says of the master (no login needed)."""

    version: str
    master_id: str
    cluster_id: str
    cluster_name: str
    telemetry_enabled: bool
    sso_providers: tuple[SSOProvider, ...]
    external_login_uri: str
    external_logout_uri: str
    branding: str
    rbac_enabled: bool
    product: str  # PRODUCT_UNSPECIFIED or PRODUCT_COMMUNITY
    feature_switches: tuple[str, ...]
    user_management_enabled: bool
    strict_job_queue_control: bool
    cluster_message: ClusterMessage | None
    has_custom_logo: bool

    @classmethod
    def from_wire(cls, raw: w.GetMasterResponse) -> MasterInfo:
        """The master's information from GetMaster's JSON."""
        providers = tuple(
            SSOProvider(p.name, p.sso_url, p.type, p.always_redirect) for p in raw.sso_providers
        )
        message = raw.cluster_message
        return cls(
            raw.version, raw.master_id, raw.cluster_id, raw.cluster_name, raw.telemetry_enabled,
            providers, raw.external_login_uri, raw.external_logout_uri, raw.branding,
            raw.rbac_enabled, raw.product, tuple(raw.feature_switches),
            raw.user_management_enabled, raw.strict_job_queue_control,
            ClusterMessage.from_wire(message) if message is not None else None,
            raw.has_custom_logo,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MasterLogEntry:
    """One line of the master's own log (``id``: its place in the master's log buffer)."""

    id: int
    timestamp: datetime | None
    level: w.LogLevel
    message: str

    def __str__(self) -> str:
        return self.message.rstrip("\n")


# --- master information and configuration -----------------------------------------------------
def master_info() -> Op[MasterInfo]:
    response = yield from send(Call("GET", "/api/v1/master"))
    return MasterInfo.from_wire(w.GetMasterResponse.model_validate_json(response.content))


def master_config() -> Op[dict[str, Any]]:
    """The master's configuration as it prints it (secrets redacted by the master); a
    non-admin gets the master's 403 as ``Forbidden``."""
    response = yield from send(Call("GET", "/api/v1/master/config"))
    return w.GetMasterConfigResponse.model_validate_json(response.content).config or {}


# --- the master's log -------------------------------------------------------------------------
def master_log_reader(
    *, follow: bool = False, limit: int | None = None, offset: int | None = None
) -> Callable[[_Http], Rows[MasterLogEntry]]:
    """The master's log lines, arguments checked before anything is sent. ``offset`` skips
    that many lines (from the end when negative); ``limit`` keeps that many; ``follow`` waits
    for new lines until the limit or the end of the iteration."""
    require("follow", follow, bool, "True or False")
    if limit is not None:
        check_int("limit", limit, low=0, high=INT32_MAX, error=QueryError)  # int32 on the wire
    if offset is not None:
        check_int("offset", offset, low=-INT32_MAX - 1, high=INT32_MAX, error=QueryError)
    # The master refuses a limit with follow ("Limit cannot be specified when following"):
    # a followed stream's limit is applied here, and the stream closed once it is reached.
    limit_here = limit if follow else None
    params = {
        "follow": follow or None, "limit": None if follow else limit or None,
        "offset": offset or None,
    }  # fmt: skip
    call = Call("GET", "/api/v1/master/logs", query_items(params), stream=True)

    def entries(http: _Http) -> Op[None]:
        if limit == 0:
            return  # the master reads limit=0 as "no limit"
        left = limit_here
        # No resume after a dropped connection: the log is the master's memory, and an offset
        # from the end moves as it grows, so a second request could repeat or skip lines.
        reader = http.results(call)
        while (batch := (yield from reader.batch())) is not None:
            found = [_log_entry(raw) for raw in batch]
            if left is not None:
                found, left = found[:left], left - min(left, len(found))
            yield from emit(found)
            if left == 0:
                return

    return lambda http: Rows(lambda: entries(http))


def _log_entry(raw: bytes) -> MasterLogEntry:
    entry = w.MasterLogsResponse.model_validate_json(raw).log_entry or w.MasterLogEntry()
    return MasterLogEntry(entry.id, entry.timestamp, entry.level, entry.message)


# --- the cluster message ----------------------------------------------------------------------
def cluster_message() -> Op[ClusterMessage | None]:
    """The cluster message (admins only), None when there is none."""
    response = yield from send(Call("GET", _MESSAGE_ROUTE))
    raw = w.GetClusterMessageResponse.model_validate_json(response.content).cluster_message
    return ClusterMessage.from_wire(raw) if raw is not None else None


def set_cluster_message(
    message: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    duration: timedelta | str | None = None,
) -> Op[None]:
    """Set the cluster message (admins only): shown from ``start`` (now by default) until
    ``end``, or for ``duration`` (a timedelta, or a Go duration such as ``"90m"``), or with no
    end."""
    body = cluster_message_body(message, start=start, end=end, duration=duration)
    yield from send(Call("PUT", _MESSAGE_ROUTE, body=body))


def cluster_message_body(
    message: object, *, start: object, end: object, duration: object
) -> dict[str, Any]:
    """The SetClusterMessage body, checked before anything is sent."""
    require("message", message, str, "a str")
    assert isinstance(message, str)
    check_text("message", message)
    if len(message) > MESSAGE_MAX_LENGTH:
        raise InvalidValue(
            f"message must be at most {MESSAGE_MAX_LENGTH} characters, not {len(message)}"
        )
    if end is not None and duration is not None:
        raise InvalidValue("give either end or duration, not both (the master refuses both)")
    starts = _timestamp("start", start) if start is not None else w.Timestamp.now()
    request = w.SetClusterMessageRequest(message=message, start_time=starts)
    if end is not None:
        request.end_time = _timestamp("end", end)
        if request.end_time < starts:
            raise InvalidValue(f"end ({request.end_time.isoformat()}) is before start")
    if duration is not None:
        request.duration = _go_duration(duration)
    return request.model_dump_wire(exclude_unset=True)


def _timestamp(name: str, value: object) -> w.Timestamp:
    require(name, value, datetime, "a datetime")
    assert isinstance(value, datetime)
    return w.Timestamp.from_datetime(value if value.tzinfo else value.replace(tzinfo=UTC))


def _go_duration(value: object) -> str:
    """A duration as Go's ``time.ParseDuration`` reads it (the master's only syntax: no
    days or weeks, whatever its proto comment says)."""
    require("duration", value, (timedelta, str), "a timedelta or a Go duration str")
    if isinstance(value, str):
        if not value.strip() or value.lstrip().startswith("-"):
            raise InvalidValue(
                f"duration must be a positive Go duration such as '90m', not {value!r}"
            )
        return value
    assert isinstance(value, timedelta)
    if value < timedelta(0):
        raise InvalidValue(f"duration must not be negative, not {value}")
    return f"{value // timedelta(microseconds=1)}us"


def clear_cluster_message() -> Op[None]:
    yield from send(Call("DELETE", _MESSAGE_ROUTE))


# --- logging out ------------------------------------------------------------------------------
class LoggingOut(Protocol):
    """What logging out needs of the session."""

    master: str

    @property
    def transport(self) -> _Http: ...
    @property
    def username(self) -> str | None: ...
    @property
    def _store(self) -> TokenCache: ...


def log_out(session: LoggingOut) -> Op[None]:
    """End this session's login on the master (``POST /api/v1/auth/logout``) and drop its
    token from the det CLI's token cache, as ``det user logout`` does. A token the master no
    longer accepts is already logged out. Later requests log in again when the session has a
    password (else they raise ``Unauthenticated``)."""
    http = session.transport
    token = http.token
    if token is None:
        return
    try:
        yield from send(Call("POST", "/api/v1/auth/logout", body={}), retry=NO_RETRY,
                        reauthenticate=False)  # fmt: skip
    except Unauthenticated:
        pass  # expired or already logged out: nothing to end (the det CLI ignores it too)
    # The token stays in place, revoked: the next request's 401 logs in again through the
    # session's one path (password, or Unauthenticated without one), in both APIs alike.
    if session.username is not None:
        yield from blocking(_drop_if_cached, session._store, session.master, session.username,
                            token)  # fmt: skip


def _drop_if_cached(store: TokenCache, master: str, username: str, token: Secret) -> None:
    # Only this session's token: another login of the same user (a det CLI login, another
    # session's) stays cached. The token stays a Secret until compared (never in a repr).
    try:
        if store.token_for(master, username) == token.reveal():
            store.drop(master, username)
    except OSError:
        pass  # an unwritable config directory: the master has ended the session anyway
