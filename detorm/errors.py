"""Every error detorm raises.

::

    DetormError
    ├── ConfigurationError      bad master URL, credentials or options (nothing was sent)
    ├── QueryError              a query or lookup that cannot work (nothing was sent)
    ├── InvalidValue            a value refused on assignment (also a ValueError)
    ├── NotLoaded               a field this object was not loaded with (no hidden request)
    ├── TransportError          the master could not be reached (after retries)
    │   └── StreamInterrupted   a stream ended before it was complete
    ├── APIError                the master answered with an error status
    │   ├── BadRequest          400
    │   ├── Unauthenticated     401
    │   ├── Forbidden           403
    │   ├── NotFound            404
    │   ├── Conflict            409
    │   └── ServerError         5xx
    ├── CommitError             some changes of a flush failed (they stay pending)
    ├── BulkActionError         a bulk action failed for some experiments
    ├── DownloadError           a download that cannot be done (checkpoint state, storage)
    └── UnsafeArchive           an archive that would write outside its destination

Messages name what was asked (method and path), what the master said (status, gRPC reason and
message) and, where it helps, what to do. They never contain a token or a password.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._unit_of_work import Change

__all__ = [
    "APIError",
    "BadRequest",
    "BulkActionError",
    "CommitError",
    "ConfigurationError",
    "Conflict",
    "DetormError",
    "DownloadError",
    "Forbidden",
    "InvalidValue",
    "NotFound",
    "NotLoaded",
    "QueryError",
    "ServerError",
    "StreamInterrupted",
    "TransportError",
    "Unauthenticated",
    "UnsafeArchive",
]


class DetormError(Exception):
    """Base of every error raised by detorm."""


class ConfigurationError(DetormError):
    """The session cannot be set up as asked (bad URL, missing credentials...)."""


class QueryError(DetormError):
    """A query that cannot be compiled: an unknown field, lookup or value. Nothing was sent."""


class InvalidValue(DetormError, ValueError):
    """A value refused when assigned to a resource attribute. Nothing was recorded."""


class NotLoaded(DetormError, AttributeError):
    """A field the object was not loaded with.

    Some list endpoints return fewer fields than a single-object GET (for example a trial read
    through the runs search). detorm never fetches silently: call ``obj.refresh()`` first.
    """


class TransportError(DetormError):
    """The request could not be completed: connection refused, timeout, TLS failure..."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class StreamInterrupted(TransportError):
    """A streamed response ended early; what was received before is still valid."""


class APIError(DetormError):
    """The master answered with an error status.

    ``status`` is the HTTP status, ``reason`` the gRPC code name (``"NotFound"``) and ``message``
    the master's own message; ``body`` is the decoded error body when it was JSON.
    """

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status: int,
        message: str,
        reason: str = "",
        body: Any = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body
        label = f"{status} {reason}".strip()
        super().__init__(
            f"{method} {path} -> {label}: {message}" if message else f"{method} {path} -> {label}"
        )


class BadRequest(APIError):
    """400: the master refused the request's arguments."""


class Unauthenticated(APIError):
    """401: no valid credentials. Log in again (``detorm.connect(user=..., password=...)``)."""


class Forbidden(APIError):
    """403: the user may not do this, or is not active."""


class NotFound(APIError):
    """404: no such object (or not visible to this user)."""


class Conflict(APIError):
    """409: the object already exists or changed concurrently."""


class ServerError(APIError):
    """5xx: the master failed (some of its refusals are reported as 500, see the message)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


def api_error_class(status: int) -> type[APIError]:
    """The APIError subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)


class CommitError(DetormError):
    """A flush where some changes failed.

    ``failed`` holds ``(change, error)`` pairs, still pending and retried by the next commit;
    ``applied`` the changes that reached the master and are now reflected in the objects.
    """

    def __init__(
        self, failed: Sequence[tuple[Change, Exception]], applied: Sequence[Change]
    ) -> None:
        self.failed = list(failed)
        self.applied = list(applied)
        lines = [f"{len(self.failed)} change(s) failed, {len(self.applied)} applied:"]
        lines += [f"  FAILED {change}: {error}" for change, error in self.failed]
        lines += [f"  applied {change}" for change in self.applied]
        super().__init__("\n".join(lines))


class BulkActionError(DetormError):
    """A bulk action (``query.archive()``...) that failed for some experiments.

    ``failed`` maps each failed id to the master's message; ``succeeded`` lists the others.
    """

    def __init__(self, action: str, failed: dict[int, str], succeeded: Sequence[int]) -> None:
        self.action = action
        self.failed = dict(failed)
        self.succeeded = list(succeeded)
        lines = [
            f"{action} failed for {len(self.failed)} experiment(s), {len(self.succeeded)} succeeded:"
        ]
        lines += [f"  {key}: {message}" for key, message in sorted(self.failed.items())]
        super().__init__("\n".join(lines))


class DownloadError(DetormError):
    """A download that cannot be done: a checkpoint that is not COMPLETED or PARTIALLY_DELETED,
    storage that cannot be read directly, an experiment without code..."""


class UnsafeArchive(DetormError):
    """An archive member that would land outside the destination: an absolute path, ``..``, a
    link leaving the destination, a device file. Nothing of the archive was kept."""

    def __init__(self, member: str, reason: str) -> None:
        self.member = member
        self.reason = reason
        super().__init__(f"refused to extract {member!r}: {reason}")
