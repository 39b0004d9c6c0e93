"""gRPC status errors and their HTTP form, as the master's grpc-gateway writes them.

Handlers raise :class:`ApiError` with a gRPC code; the app turns it into the unary body
``{"error": {"code", "reason", "error"}}`` or, inside a stream, the ``runtime.StreamError`` line.
Any other exception is a plain Go error on the master: ``Unknown``, rewritten to ``Internal``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from typing import Final, TypeVar

__all__ = [
    "ApiError",
    "Code",
    "GatewayError",
    "already_exists",
    "batch_errors_wrapped",
    "failed_precondition",
    "internal",
    "invalid_argument",
    "multierror",
    "not_found",
    "permission_denied",
    "unauthenticated",
    "unimplemented",
]


class Code(enum.IntEnum):
    """gRPC status codes."""

    OK = 0
    CANCELED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @property
    def reason(self) -> str:
        """``codes.Code.String()`` in grpc-go: ``NotFound``, ``InvalidArgument``..."""
        return _REASONS[self]

    @property
    def http_status(self) -> int:
        """``runtime.HTTPStatusFromCode`` (grpc-gateway v1.16)."""
        return _HTTP_STATUS[self]


_REASONS: Final = {
    Code.OK: "OK",
    Code.CANCELED: "Canceled",
    Code.UNKNOWN: "Unknown",
    Code.INVALID_ARGUMENT: "InvalidArgument",
    Code.DEADLINE_EXCEEDED: "DeadlineExceeded",
    Code.NOT_FOUND: "NotFound",
    Code.ALREADY_EXISTS: "AlreadyExists",
    Code.PERMISSION_DENIED: "PermissionDenied",
    Code.RESOURCE_EXHAUSTED: "ResourceExhausted",
    Code.FAILED_PRECONDITION: "FailedPrecondition",
    Code.ABORTED: "Aborted",
    Code.OUT_OF_RANGE: "OutOfRange",
    Code.UNIMPLEMENTED: "Unimplemented",
    Code.INTERNAL: "Internal",
    Code.UNAVAILABLE: "Unavailable",
    Code.DATA_LOSS: "DataLoss",
    Code.UNAUTHENTICATED: "Unauthenticated",
}

_HTTP_STATUS: Final = {
    Code.OK: 200,
    Code.CANCELED: 408,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

_HTTP_STATUS_TEXT: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ApiError(Exception):
    """A gRPC status raised by a handler."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def from_plain(cls, message: str) -> ApiError:
        """A plain Go error (``codes.Unknown``) as the error handler rewrites it."""
        if "access denied" in message:
            return cls(Code.PERMISSION_DENIED, message)
        return cls(Code.INTERNAL, message)

    @property
    def http_status(self) -> int:
        return self.code.http_status

    def unary_body(self) -> bytes:
        """The unary error body; Go's ``json.Encoder`` ends it with a newline."""
        body = {
            "error": {"code": int(self.code), "reason": self.code.reason, "error": self.message}
        }
        return json.dumps(body, separators=(",", ":")).encode() + b"\n"

    def stream_body(self) -> bytes:
        """The ``runtime.StreamError`` object; in streams ``Unknown`` is not remapped."""
        status = self.code.http_status
        body = {
            "error": {
                "grpcCode": int(self.code),
                "httpCode": status,
                "message": self.message,
                "httpStatus": _HTTP_STATUS_TEXT.get(status, ""),
                "details": [],
            }
        }
        return json.dumps(body, separators=(",", ":")).encode()


class GatewayError(ApiError):
    """An error of grpc-gateway itself, raised before the RPC runs (a query parameter that does
    not parse): written as the unary body even on a streaming route."""


def invalid_argument(message: str) -> ApiError:
    return ApiError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, message)


def already_exists(message: str) -> ApiError:
    return ApiError(Code.ALREADY_EXISTS, message)


def failed_precondition(message: str) -> ApiError:
    return ApiError(Code.FAILED_PRECONDITION, message)


def permission_denied(message: str) -> ApiError:
    return ApiError(Code.PERMISSION_DENIED, message)


def unauthenticated(message: str) -> ApiError:
    return ApiError(Code.UNAUTHENTICATED, message)


def internal(message: str) -> ApiError:
    return ApiError(Code.INTERNAL, message)


def unimplemented(message: str = "Not Implemented") -> ApiError:
    return ApiError(Code.UNIMPLEMENTED, message)


def multierror(message: str) -> str:
    """``processBatches``' go-multierror of one error."""
    return f"1 error occurred:\n\t* {message}\n\n"


_Batch = TypeVar("_Batch")


def batch_errors_wrapped(stream: Iterator[_Batch]) -> Iterator[_Batch]:
    """A batch stream's error as ``processBatches`` returns it: in a multierror, keeping the
    code of a wrapped status (grpc does); any other exception is Unknown."""
    try:
        yield from stream
    except ApiError as err:
        raise ApiError(err.code, multierror(err.message)) from None
    except Exception as err:
        raise ApiError(Code.UNKNOWN, multierror(str(err) or type(err).__name__)) from None
