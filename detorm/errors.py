"""Every error detorm raises.

::

    DetormError
    ├── ConfigurationError      bad master URL, credentials or options (also a ValueError)
    ├── QueryError              a query or lookup that cannot work (also a ValueError)
    ├── InvalidValue            a value refused (also a ValueError)
    │   └── InvalidType         a value of the wrong type (also a TypeError)
    ├── InvalidAttribute        an attribute that does not exist or is read-only (AttributeError)
    ├── NotLoaded               a field this object was not loaded with (also an AttributeError)
    ├── ContextError            a context directory that cannot be sent: too large, missing,
    │                           duplicate paths, unsafe (also a ValueError)
    ├── InvalidState            an operation the object's current state does not allow, as the
    │                           master would refuse it (also a ValueError)
    ├── TransportError          the master could not be reached (after retries)
    │   └── StreamInterrupted   a stream ended before it was complete
    ├── APIError                the master answered with an error status
    │   ├── BadRequest          400
    │   ├── Unauthenticated     401
    │   ├── Forbidden           403
    │   ├── NotFound            404
    │   ├── Conflict            409
    │   ├── RateLimited         429 (after retries honouring Retry-After)
    │   ├── ServerError         5xx
    │   └── InvalidConfig       an experiment config the master refused (also a ValueError)
    ├── CommitError             some changes of a flush failed or have an unknown outcome
    ├── BulkActionError         a bulk action failed for some experiments or tasks
    ├── DownloadError           a download that cannot be done (state, storage, corrupt archive)
    ├── UnsafeArchive           an archive refused: outside its destination, too large, not
    │                           what the master says the checkpoint holds
    └── WaitTimeout             wait(timeout=...) gave up (also a TimeoutError)

Warnings: :class:`LaunchWarning` (the master's launch warnings of a new or continued
experiment, such as more slots asked for than the cluster has).

Messages name what was asked (method and path), what the master said (status, gRPC reason and
message) and, where it helps, what to do. They never contain a token or a password.

Errors about the caller's input (``ConfigurationError``, ``QueryError``, ``InvalidValue``,
``InvalidType``, ``InvalidAttribute``, ``ContextError``) are raised before anything is sent, and
also derive from the built-in exception a Python user expects, so ``except ValueError`` keeps
working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._plan._edits import Change

__all__ = [
    "APIError",
    "BadRequest",
    "BulkActionError",
    "CommitError",
    "ConfigurationError",
    "Conflict",
    "ContextError",
    "DetormError",
    "DownloadError",
    "Forbidden",
    "InvalidAttribute",
    "InvalidConfig",
    "InvalidState",
    "InvalidType",
    "InvalidValue",
    "LaunchWarning",
    "NotFound",
    "NotLoaded",
    "QueryError",
    "RateLimited",
    "ServerError",
    "StreamInterrupted",
    "TransportError",
    "Unauthenticated",
    "UnsafeArchive",
    "WaitTimeout",
]


class DetormError(Exception):
    """Base of every error raised by detorm."""


class ConfigurationError(DetormError, ValueError):
    """The session cannot be set up as asked (bad URL, missing credentials...)."""


class QueryError(DetormError, ValueError):
    """A query that cannot be compiled: an unknown field, lookup or value. Nothing was sent."""


class InvalidValue(DetormError, ValueError):
    """A value refused (an assignment, an argument). Nothing was recorded or sent."""


class InvalidType(InvalidValue, TypeError):
    """A value of the wrong type. Nothing was recorded or sent."""


class InvalidAttribute(DetormError, AttributeError):
    """An attribute that does not exist, or that cannot be assigned (read-only fields,
    relationships to many). The message lists the editable fields."""


class NotLoaded(DetormError, AttributeError):
    """A field the object was not loaded with.

    Some list endpoints return fewer fields than a single-object GET (for example a trial read
    through the runs search). detorm never fetches silently: call ``obj.refresh()`` first.
    """


class ContextError(DetormError, ValueError):
    """A context directory (and includes) that cannot be sent: too large, missing, duplicate
    paths at its top, an unreadable ``.detignore``, or unsafe (a symbolic link to outside the
    directory, a FIFO or device). Nothing was sent."""


class InvalidState(DetormError, ValueError):
    """An operation the object's current state does not allow, refused before the operation is
    sent because the master would refuse it too (continuing an experiment that is still active,
    or one trial of a multi-trial experiment; waiting on a paused experiment). The state is the
    one just read from the master. The message says what it is and what would allow it."""


class TransportError(DetormError):
    """The request could not be completed: connection refused, timeout, TLS failure...

    ``request_sent`` is False when the request certainly never reached the master (the
    connection could not be made); when True, the master may have received and applied it.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", request_sent: bool = True
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.request_sent = request_sent


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


class RateLimited(APIError):
    """429: the master (or a proxy in front of it) asked to slow down, and retries honouring its
    ``Retry-After`` ran out of attempts or of the call's deadline."""


class ServerError(APIError):
    """5xx: the master failed (some of its refusals are reported as 500, see the message)."""


class InvalidConfig(APIError, ValueError):
    """The master refused an experiment config (``CreateExperiment``, ``ContinueExperiment``).

    ``errors`` lists the master's messages, one per problem (``<config>.searcher.metric: ...``
    for the schema's checks, else the master's whole message); ``status`` and ``message`` are
    the response's (the master reports most config errors as a 500, some as a 400).
    """

    def __init__(
        self,
        *,
        errors: Sequence[str],
        method: str,
        path: str,
        status: int,
        message: str,
        reason: str = "",
        body: Any = None,
    ) -> None:
        self.errors = list(errors)
        super().__init__(
            method=method, path=path, status=status, message=message, reason=reason, body=body
        )


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def api_error_class(status: int) -> type[APIError]:
    """The APIError subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)


class CommitError(DetormError):
    """A flush where some changes failed or have an unknown outcome.

    ``failed`` holds ``(change, error)`` pairs the master refused: still pending, retried by the
    next commit. ``unknown`` holds ``(change, error)`` pairs whose request may or may not have
    been applied (the connection dropped after it was sent, a timeout, a gateway error): still
    pending; the next commit first re-reads those objects and sends only what the master does
    not hold yet. ``applied`` lists the changes that reached the master and are now reflected
    in the objects.
    """

    def __init__(
        self,
        failed: Sequence[tuple[Change, Exception]],
        applied: Sequence[Change],
        unknown: Sequence[tuple[Change, Exception]] = (),
    ) -> None:
        self.failed = list(failed)
        self.unknown = list(unknown)
        self.applied = list(applied)
        lines = [
            f"{len(self.failed)} change(s) failed, {len(self.unknown)} unknown, "
            f"{len(self.applied)} applied:"
        ]
        lines += [f"  FAILED {change}: {error}" for change, error in self.failed]
        lines += [f"  UNKNOWN {change}: {error}" for change, error in self.unknown]
        lines += [f"  applied {change}" for change in self.applied]
        super().__init__("\n".join(lines))


class BulkActionError(DetormError):
    """A bulk action (``query.archive()``, ``Command.query().kill()``...) that failed for some
    objects.

    ``failed`` maps each failed id to the master's message; ``succeeded`` lists the others.
    """

    def __init__(
        self, action: str, failed: Mapping[int, str] | Mapping[str, str],
        succeeded: Sequence[int] | Sequence[str],
    ) -> None:  # fmt: skip
        self.action = action
        self.failed: dict[Any, str] = dict(failed)
        self.succeeded: list[Any] = list(succeeded)
        noun = "task(s)" if any(isinstance(k, str) for k in self.failed) else "experiment(s)"
        lines = [f"{action} failed for {len(self.failed)} {noun}, {len(self.succeeded)} succeeded:"]
        lines += [f"  {key}: {message}" for key, message in sorted(self.failed.items())]
        super().__init__("\n".join(lines))


class WaitTimeout(DetormError, TimeoutError):
    """``wait(timeout=...)`` gave up: the task, experiment or trial had not reached a terminal
    state (``await_first_trial``: the experiment had no trial yet)."""


class LaunchWarning(UserWarning):
    """A warning the master attached to a new or continued experiment (``warnings`` of
    CreateExperiment and ContinueExperiment), issued with :func:`warnings.warn`: for example
    that it asks for more slots than the cluster has now, so it waits until it has them."""


class DownloadError(DetormError):
    """A download that cannot be done: a checkpoint that is not COMPLETED or PARTIALLY_DELETED,
    storage that cannot be read directly, an experiment without code, a corrupt or truncated
    archive (bad gzip, tar header or zip directory, CRC error)..."""


class UnsafeArchive(DetormError):
    """An archive member refused before any of it was written: one that would land outside the
    destination (an absolute path, ``..``, a link leaving it), a device or fifo, an over-long
    name, more bytes than the size limit or compression ratio allow, or a checkpoint file the
    master's ``resources`` map does not list at that size. Nothing of the archive was kept."""

    def __init__(self, member: str, reason: str) -> None:
        self.member = member
        self.reason = reason
        super().__init__(f"refused to extract {member!r}: {reason}")
