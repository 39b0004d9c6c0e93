"""The ASGI application of detorm.local: routing, authentication, transactions, framing.

It reproduces the master's HTTP layer: Echo strips trailing slashes and sends ``/api/v1/*`` to
grpc-gateway v1.16, which matches the route table in registration order (first match wins), builds
the request message from path parameters, body and query string (400 ``InvalidArgument`` when one
does not parse), then calls the RPC behind the auth interceptor. Unary results are JSON with
``EmitDefaults``; streams are newline-delimited ``{"result": ...}`` lines, ending with a
``{"error": ...}`` object when a stream fails half-way.

Each request runs in one database transaction: a request that fails writes nothing.

How the master reads a request path (release 0.38.1: Go 1.22, Echo v4.11.1, grpc-gateway v1.16.0,
``go.mod``), reproduced by ``_respond``, ``_gateway`` and ``_typed_path_params``:

1. ``net/http`` parses the target with ``url.ParseRequestURI``: ``URL.Path`` is unescaped once
   (``+`` stays ``+``; ``%2F`` becomes ``/``), ``URL.RawPath`` keeps the path as sent when Go's
   own escaping of ``Path`` differs from it (``url.setPath``). A malformed ``%`` escape fails the
   parse and the server writes a plain-text ``400 Bad Request`` itself (``conn.serve``). Nothing
   cleans ``.``, ``..`` or ``//``: only ``http.ServeMux`` would, and Echo is the handler.
2. Echo routes on ``GetPath`` (``echo.go:950``): ``RawPath`` when set, else ``Path``, and its
   route parameters are taken from that string as they are (no unescaping in ``router.go`` or
   ``Context.Param``). The master registers no ``Pre`` middleware (``internal/core.go:1292``).
   ``/api/v1/*`` goes to the gateway with the route middleware ``RemoveTrailingSlash``
   (``internal/grpcutil/api.go:141-142``), which trims one trailing ``/`` from ``URL.Path`` only
   (``middleware/slash.go:116``).
3. ``runtime.ServeMux.ServeHTTP`` (``runtime/mux.go:191-285``) splits the already unescaped
   ``URL.Path`` at ``/``: a ``%2F`` adds segments, so the request matches a longer route or none.
   A ``:`` in the last segment starts a verb: at index 0 it is an unknown URI at once; otherwise
   it is cut off, and since every pattern of the master has no verb and ``AssumeColonVerbOpt(true)``
   (``proto/pkg/apiv1/api.pb.gw.go``), none matches (``runtime/pattern.go:163-167``). An unknown
   URI is 501 ``Not Implemented``. Every variable of the master is one segment (no ``**``), given
   to ``runtime.String`` as it is: ``%252F`` is the label ``%2F``, ``%2E%2E`` the label ``..``.
4. The gateway's gRPC client then marshals the request: a string field that is not UTF-8 (``%FF``)
   is a 500 ``grpc: error while marshaling: ...`` (grpc-go ``encode``), before authentication.

So ``DELETE .../experiments/17/labels/..%2F..%2F26`` has eight segments and is a 501 that touches
nothing; a label holding ``/`` or ``:`` cannot be addressed by the label routes (501), except that
``a%2F`` ends in ``/`` and addresses the label ``a`` (and ``%2F`` alone the label ``""``).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from sqlmodel import Session
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from detorm._wire import WireModel

from . import _gateway as gateway
from . import _tables as t
from ._db import Database, utcnow
from ._errors import ApiError, Code, GatewayError, invalid_argument, unauthenticated
from ._faults import FAULTY_IDS, apply_faults
from ._go import GoError, request_path
from ._params import QueryParams, parse_int
from ._route_table import ROUTES, STREAMING, UNAUTHENTICATED
from ._runner import Runner
from ._scheduler import DEFAULT_SLOTS, Cluster
from ._simulation import Ticker

__all__ = ["Ctx", "LocalApp", "MessageBatch", "RawJSON", "echo", "rpc"]

M = TypeVar("M", bound=BaseModel)

JSON_TYPE: Final = "application/json"


class RawJSON(bytes):
    """Already-encoded JSON, written as is: a whole result, or a value inside a result's dicts
    and lists (a stored config is spliced in rather than parsed and encoded again)."""


class MessageBatch(list[Any]):
    """Stream messages a handler produced together: still one line each, but written as one
    chunk (a message per write, through the worker thread, cost more than the message)."""


Result = WireModel | dict[str, Any] | RawJSON
Handler = Callable[["Ctx"], Any]


@dataclass(frozen=True)
class _Spec:
    op: str
    handler: Handler
    path_types: dict[str, type]


_HANDLERS: dict[str, _Spec] = {}
_ECHO: list[tuple[str, re.Pattern[str], Handler]] = []


def rpc(op: str, **path_types: type) -> Callable[[Handler], Handler]:
    """Register the handler of a Determined RPC, by its operation name in the route table.

    ``path_types`` gives the Python type of each path parameter (``int`` parses as int32).
    """
    if op not in _OPS:
        raise ValueError(f"{op} is not an RPC of the Determined master")

    def register(handler: Handler) -> Handler:
        _HANDLERS[op] = _Spec(op, handler, path_types)
        return handler

    return register


def echo(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a non-gateway (Echo) route such as ``/info``; ``pattern`` is a regex."""

    def register(handler: Handler) -> Handler:
        _ECHO.append((method, re.compile(pattern + "$"), handler))
        return handler

    return register


# --- the route table ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Route:
    op: str
    method: str
    segments: tuple[str | None, ...]  # a literal, or None for a variable
    variables: tuple[tuple[int, str], ...]  # (segment index, proto field path)
    body: str


def _compile(op: str, method: str, template: str, body: str) -> _Route:
    segments: list[str | None] = []
    variables: list[tuple[int, str]] = []
    for index, part in enumerate(template.strip("/").split("/")):
        if part.startswith("{") and part.endswith("}"):
            segments.append(None)
            variables.append((index, part[1:-1]))
        else:
            segments.append(part)
    return _Route(op, method, tuple(segments), tuple(variables), body)


_ROUTES: Final = tuple(_compile(*row) for row in ROUTES)
_OPS: Final = frozenset(route.op for route in _ROUTES)


def _match(route: _Route, parts: list[str]) -> dict[str, str] | None:
    if len(parts) != len(route.segments):
        return None
    for literal, part in zip(route.segments, parts, strict=True):
        if literal is not None and literal != part:
            return None
    # the path was already unescaped once (Go's URL.Path); variables are taken as they are
    return {name: parts[index] for index, name in route.variables}


# --- the request context --------------------------------------------------------------------
@dataclass
class Ctx:
    """What a handler gets: the transaction, the caller, and the parsed request."""

    db: Session
    app: LocalApp
    user: t.UserRow | None
    token: str | None
    path: dict[str, Any]
    query: QueryParams
    raw_body: bytes
    method: str
    url_path: str
    extra: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] | None = None  # the body as the gateway decoded it (_jsonpb.py)

    @property
    def user_id(self) -> int:
        assert self.user is not None and self.user.id is not None
        return self.user.id

    def body(self, model: type[M]) -> M:
        """The body as jsonpb decoded it (canonical JSON), validated by ``model``."""
        if self.document is None:
            return decode_body(self.raw_body, model)
        try:
            return model.model_validate(self.document)
        except ValidationError as err:
            raise invalid_argument(_validation_message(err)) from None


def decode_body(raw: bytes, model: type[M]) -> M:
    text = raw.strip()
    if not text:
        return model()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise invalid_argument(_go_json_error(err)) from None
    if document is None:  # jsonpb: a top-level null is an empty message
        return model()
    if not isinstance(document, dict):
        kind = type(document).__name__
        go_kind = {"list": "array", "str": "string", "int": "number", "float": "number"}.get(
            kind, kind
        )
        raise invalid_argument(
            f"json: cannot unmarshal {go_kind} into Go value of type map[string]json.RawMessage"
        )
    try:
        return model.model_validate(document)
    except ValidationError as err:
        raise invalid_argument(_validation_message(err)) from None


def _go_json_error(err: json.JSONDecodeError) -> str:
    if err.pos >= len(err.doc.rstrip()):
        return "unexpected EOF"
    char = err.doc[err.pos]
    return f"invalid character {char!r} looking for beginning of value"


def _validation_message(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    value = first.get("input")
    return f"bad input for field {where}: {json.dumps(value, default=str)}: {first['msg']}"


# --- the application ------------------------------------------------------------------------
class LocalApp:
    """The ASGI app serving one :class:`Database`."""

    def __init__(
        self,
        database: Database,
        *,
        enable_faults: bool = False,
        slots: int = DEFAULT_SLOTS,
        execute_commands: bool = False,
        time_scale: float = 1.0,
    ) -> None:
        self.db = database
        self.enable_faults = enable_faults
        self.lock = threading.RLock()
        # the simulated agent and scheduler (_scheduler.py); with execute_commands, a runner
        # thread runs commands' entrypoints for real (_runner.py); created experiments' trials
        # train by simulation (_simulation.py), brought to now before each request and by a
        # ticker thread (for followed streams)
        self.cluster = Cluster(
            slots=slots, execute_commands=execute_commands, time_scale=time_scale,
            enable_faults=enable_faults,
        )  # fmt: skip
        self.runner: Runner | None = Runner(database, self.cluster) if execute_commands else None
        self.ticker = Ticker(database, self.cluster)
        # importing the routes registers their handlers
        from . import _routes  # noqa: F401

    def close(self) -> None:
        """Stop what the app runs besides requests (the command runner and its processes, the
        simulation's ticker)."""
        if self.runner is not None:
            self.runner.stop()
        self.ticker.stop()

    def start_background(self) -> None:
        """Start what the app runs besides requests."""
        if self.runner is not None:
            self.runner.ensure_started()
        self.ticker.ensure_started()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self._respond(request)
        except ClientDisconnect:  # gone before its body arrived (or timed out): nobody to answer
            return
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        # See "How the master reads a request path" (module docstring); uvicorn sets raw_path.
        try:
            url_path, raw_path = request_path(request.scope["raw_path"].decode("latin-1"))
        except GoError:
            return _bad_request_line()
        body = await request.body()
        echo_path = raw_path or url_path
        if echo_path.startswith("/api/v1/"):
            # RemoveTrailingSlash drops one "/" from URL.Path, then the gateway splits URL.Path
            return await self._gateway(request, url_path.removesuffix("/"), body)
        if len(echo_path) > 1:
            echo_path = echo_path.rstrip("/") or "/"
        return await self._echo(request, echo_path, body)

    async def _echo(self, request: Request, path: str, body: bytes) -> Response:
        for method, pattern, handler in _ECHO:
            match = pattern.match(path)
            if match and method == request.method:
                return await run_in_threadpool(self._run_echo, handler, request, match, body)
        return _json_response(404, {"message": "Not Found"})

    def _run_echo(
        self, handler: Handler, request: Request, match: re.Match[str], body: bytes
    ) -> Response:
        with self.db.transaction(write=request.method != "GET") as db:
            token = _token(request)
            user = _user_for_token(db, token) if token else None
            ctx = Ctx(
                db=db,
                app=self,
                user=user,
                token=token,
                path=match.groupdict(),
                query=QueryParams(parse_qsl(request.url.query, keep_blank_values=True)),
                raw_body=body,
                method=request.method,
                url_path=request.url.path,
                extra={"headers": request.headers},
            )
            result = handler(ctx)
            if isinstance(result, Response):
                return result
            return _json_response(200, result)

    async def _gateway(self, request: Request, path: str, body: bytes) -> Response:
        route, raw_params = _find_route(request.method, path[1:].split("/"))
        if route is None:
            return _error_response(ApiError(Code.UNIMPLEMENTED, "Not Implemented"))
        # The generated request_* function parses body, path and query before the RPC (and so
        # before authentication) runs: see _gateway.py.
        try:
            query_string = request.scope.get("query_string", b"").decode("utf-8", "surrogateescape")
            prepared = gateway.prepare(route.op, raw_params, query_string, body)
        except ApiError as err:
            return _error_response(err)
        raw_params.update(prepared.overrides)
        spec = _HANDLERS.get(route.op)
        if spec is None:
            message = f"{route.op} is not available in detorm.local"
            return _error_response(ApiError(Code.UNIMPLEMENTED, message))
        try:
            params = _typed_path_params(spec, raw_params)
        except ApiError as err:
            return _error_response(err)
        query = QueryParams(prepared.query)
        # simulated trials are brought to now first, so that what a request sees (and changes)
        # does not depend on when it comes (_simulation.py)
        self.ticker.advance_if_live()
        if route.op in STREAMING:
            return await self._stream(spec, request, params, query, body, prepared.body)
        # Unary handlers run on the event loop: SQLite serialises writers anyway, and a thread
        # hand-off per request cost more than most handlers. Streams run in worker threads.
        response = self._unary(spec, request, params, query, body, prepared.body)
        if request.method != "GET":  # what it changed (a pause, an activation) applies now
            self.ticker.advance_if_live()
        return response

    def _context(
        self, db: Session, spec: _Spec, request: Request, params: dict[str, Any],
        query: QueryParams, body: bytes, document: dict[str, Any] | None,
    ) -> Ctx:  # fmt: skip
        token = _token(request)
        user = None
        if spec.op not in UNAUTHENTICATED:
            if token is None and "grpc-metadata-x-allocation-token" in request.headers:
                # GetUser falls back to a task's allocation token; detorm.local runs no tasks,
                # so none is known (getAllocationSessionBun: ErrInvalidCredentials)
                raise unauthenticated("invalid credentials")
            user = _authenticate(db, token)
        return Ctx(
            db=db,
            app=self,
            user=user,
            token=token,
            path=params,
            query=query,
            raw_body=body,
            method=request.method,
            url_path=request.url.path,
            document=document,
        )

    def _unary(
        self, spec: _Spec, request: Request, params: dict[str, Any], query: QueryParams,
        body: bytes, document: dict[str, Any] | None,
    ) -> Response:  # fmt: skip
        try:
            faults = self._inject_fault(request)
            with self.db.transaction(write=request.method != "GET") as db:
                ctx = self._context(db, spec, request, params, query, body, document)
                if faults:
                    ctx.extra[FAULTY_IDS] = faults
                result = spec.handler(ctx)
                payload = _encode(result)
            return Response(payload, 200, media_type=JSON_TYPE)
        except ApiError as err:
            return _error_response(err)
        except Exception as err:  # a plain Go error on the master: Unknown -> Internal
            return _error_response(ApiError.from_plain(str(err) or type(err).__name__))

    async def _stream(
        self, spec: _Spec, request: Request, params: dict[str, Any], query: QueryParams,
        body: bytes, document: dict[str, Any] | None,
    ) -> Response:  # fmt: skip
        session = self.db.session()
        try:
            ctx = self._context(session, spec, request, params, query, body, document)
            messages: Iterator[Result] = iter(spec.handler(ctx))
            first = await run_in_threadpool(_next_or_none, messages)
        except ApiError as err:
            session.close()
            body = err.unary_body() if isinstance(err, GatewayError) else err.stream_body()
            return Response(body, err.http_status, media_type=JSON_TYPE)
        except Exception as err:  # reported in the stream's error shape
            session.close()
            plain = ApiError(Code.UNKNOWN, str(err) or type(err).__name__)
            return Response(plain.stream_body(), 500, media_type=JSON_TYPE)
        return StreamingResponse(
            iterate_in_threadpool(_frames(first, messages, session)),
            200,
            media_type=JSON_TYPE,
        )

    def _inject_fault(self, request: Request) -> dict[int, ApiError]:
        """Test-only faults (``_faults.py``): raise a request-level one, or return the per-id
        ones for the handler."""
        if not self.enable_faults:
            return {}
        return apply_faults(self.db, request.method, request.url.path)


_END: Final = object()


def _next_or_none(messages: Iterator[Result]) -> Any:
    return next(messages, _END)


def _frames(first: Any, messages: Iterator[Result], session: Session) -> Iterator[bytes]:
    # Each message is its own line; a failure after the first message becomes the last line,
    # an error object without a trailing newline (runtime.StreamError; Unknown stays Unknown).
    try:
        item = first
        while item is not _END:
            if isinstance(item, MessageBatch):
                yield b"".join(b'{"result":' + _encode(message) + b"}\n" for message in item)
            else:
                yield b'{"result":' + _encode(item) + b"}\n"
            item = next(messages, _END)
    except ApiError as err:
        yield err.stream_body()
    except Exception as err:  # a plain Go error: Unknown
        yield ApiError(Code.UNKNOWN, str(err) or type(err).__name__).stream_body()
    finally:
        close = getattr(messages, "close", None)
        if close is not None:
            close()
        session.close()


# A nested RawJSON is written by json.dumps as a placeholder string, then swapped for its bytes.
# The nonce makes the placeholder impossible to meet in real data (json.dumps writes NUL as
# \u0000, and no client can guess the nonce).
_RAW_MARK: Final = f"\x00raw-{secrets.token_hex(8)}-"
_RAW_PLACEHOLDER: Final = re.compile(
    re.escape(json.dumps(_RAW_MARK)[:-1]).encode() + rb"(\d+)\\u0000\""
)


def _encode(result: Any) -> bytes:
    if isinstance(result, RawJSON):
        return bytes(result)
    if isinstance(result, WireModel):
        return result.model_dump_wire_json()
    fragments: list[bytes] = []

    def placeholder(value: object) -> str:
        if not isinstance(value, RawJSON):
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
        fragments.append(value)
        return f"{_RAW_MARK}{len(fragments) - 1}\x00"

    text = json.dumps(result, separators=(",", ":"), allow_nan=False, default=placeholder).encode()
    if not fragments:
        return text
    return _RAW_PLACEHOLDER.sub(lambda match: fragments[int(match[1])], text)


def _bad_request_line() -> Response:
    """What ``net/http`` writes when it cannot parse the request line (before any handler)."""
    return Response(
        b"400 Bad Request", 400, media_type="text/plain", headers={"Connection": "close"}
    )


def _json_response(status: int, content: Any) -> Response:
    return Response(_encode(content), status, media_type=JSON_TYPE)


def _error_response(err: ApiError) -> Response:
    return Response(err.unary_body(), err.http_status, media_type=JSON_TYPE)


def _find_route(method: str, parts: list[str]) -> tuple[_Route | None, dict[str, str]]:
    """runtime.ServeMux's match of the segments of ``URL.Path``."""
    if ":" in parts[-1]:
        # a final segment with ":" carries a verb; no route of the master has one, so such a
        # path (and ".../:x") is an unknown URI
        return None, {}
    for route in _ROUTES:
        if route.method == method:
            params = _match(route, parts)
            if params is not None:
                return route, params
    return None, {}


def _typed_path_params(spec: _Spec, raw: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for name, text in raw.items():
        kind = spec.path_types.get(name, str)
        if kind is int:
            try:
                typed[name] = parse_int(text)
            except ValueError as err:
                raise invalid_argument(f"type mismatch, parameter: {name}, error: {err}") from None
        elif _is_utf8(text):
            typed[name] = text
        else:
            raise ApiError(Code.INTERNAL, _NOT_UTF8)
    return typed


# The gateway's gRPC client encodes the request before the RPC (and its auth) runs: grpc-go's
# encode() wraps the error of protobuf-go's fast-path string codec (v1.34.2 codec_field.go:22).
_NOT_UTF8: Final = "grpc: error while marshaling: string field contains invalid UTF-8"


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")  # bytes that were not UTF-8 are lone surrogates here
    except UnicodeEncodeError:
        return False
    return True


# --- authentication -------------------------------------------------------------------------
def _token(request: Request) -> str | None:
    """``x-user-token`` metadata first, then ``Authorization``, then the ``auth`` cookie."""
    header = request.headers.get("grpc-metadata-x-user-token") or request.headers.get(
        "authorization"
    )
    if header is None and "auth" in request.cookies:
        header = "Bearer " + request.cookies["auth"]
    return header


def _user_for_token(db: Session, header: str) -> t.UserRow | None:
    if not header.startswith("Bearer "):
        return None
    # Every request authenticates: plain SQL on the driver's connection here, as SQLAlchemy's
    # execution path (even exec_driver_sql) costs more than the query.
    raw: Any = db.connection().connection.driver_connection
    found = raw.execute(_USER_BY_TOKEN, (header[len("Bearer ") :],)).fetchone()
    if found is None:
        return None
    values = dict(zip(_USER_COLUMNS, found[1:], strict=True))
    if _stored_time(found[0]) <= utcnow():
        return None
    for name in ("modified_at", "last_auth_at"):
        values[name] = None if values[name] is None else _stored_time(values[name])
    for name in ("admin", "active", "remote"):
        values[name] = bool(values[name])
    return t.UserRow.model_construct(**values)


_USER_COLUMNS: Final = (
    "id", "username", "password_hash", "admin", "active", "remote", "display_name",
    "modified_at", "last_auth_at", "agent_uid", "agent_gid", "agent_user", "agent_group",
)  # fmt: skip
_USER_BY_TOKEN: Final = (
    "SELECT s.expiry, "
    + ", ".join(f"u.{c}" for c in _USER_COLUMNS)
    + " FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.token = ?"
)


def _stored_time(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _authenticate(db: Session, header: str | None) -> t.UserRow:
    if header is None:
        raise unauthenticated("token missing")
    user = _user_for_token(db, header)
    if user is None:
        raise unauthenticated("invalid credentials")
    if not user.active:
        raise ApiError(Code.PERMISSION_DENIED, "user does not have permission")
    return user


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
