"""Operations as generators: the one implementation of everything the SDK does over the network.

An *op* is a generator that yields effects (send this call, sleep, read a stream, run these ops
together...) and receives each effect's result; its return value is the op's result. It never
touches a socket, a clock or a thread itself. Two drivers run ops: ``_drivers.SyncDriver``
(httpx.Client, threads) and ``_drivers.AsyncDriver`` (httpx.AsyncClient, tasks). The sync and
async APIs are thin facades that hand the same op to their driver, so every decision (planning,
paging, hydration, the identity map, the unit of work, retries, stream framing, caching) is
written once, and can be tested with canned replies.

Ops compose with ``yield from``; the helpers below are the only way ops emit effects, so their
results are typed::

    def fetch(session, call) -> Op[bytes]:
        response = yield from send(call)
        return response.content

Rules (the drivers rely on them):
- an op holds no lock across a ``yield``: under the async driver every task runs on one thread;
- an op never yields from a ``finally`` or ``except GeneratorExit`` block: a consumer that stops
  iterating closes the generator, and the driver then closes the streams it left open;
- ``Emit`` is for iterating ops only (queries, logs, metrics): ``run`` refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast

from .. import _display

if TYPE_CHECKING:
    import httpx

    from .._plan._call import Call, RetryPolicy

__all__ = [
    "Attempt",
    "Blocking",
    "Close",
    "Discard",
    "Effect",
    "Emit",
    "Gather",
    "Op",
    "Open",
    "Opened",
    "Read",
    "RecordReader",
    "Rows",
    "Send",
    "Sleep",
    "blocking",
    "close",
    "collect",
    "emit",
    "gather",
    "observed",
    "open_stream",
    "read",
    "relay",
    "send",
    "sleep",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Send:
    """Send a unary call (retries, deadline and a new login after a 401 included).
    Result: the successful ``httpx.Response``, body read; an ``APIError`` is thrown in."""

    call: Call
    retry: RetryPolicy | None = None
    reauthenticate: bool = True


@dataclass(frozen=True, slots=True)
class Open:
    """Send a streamed call. Result: an :class:`Opened` stream, read with :class:`Read`."""

    call: Call
    headers: Mapping[str, str] | None = None


@dataclass(eq=False, slots=True)
class Opened:
    """A successful streamed response. ``chunks`` belongs to the driver that opened it."""

    call: Call
    response: httpx.Response
    chunks: Any = field(default=None, repr=False)

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers


@dataclass(frozen=True, slots=True)
class Read:
    """The next chunk of an open stream's body; ``b""`` at its end. A connection lost midway
    throws ``StreamInterrupted`` in."""

    stream: Opened


@dataclass(frozen=True, slots=True)
class Close:
    """Close an open stream (the driver also closes any an op left open when it ends)."""

    stream: Opened


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP request, no retry (the transport's own ops yield it). Result: the response
    (an error response read in full; a stream's body unread) or a ``TransportError``."""

    call: Call
    timeout: float
    stream: bool = False
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Discard:
    """Close a response that will not be used (an attempt that is retried)."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Gather:
    """Run independent ops concurrently (each request waits for one of the session's
    ``concurrency`` slots). Result: their results in order; with ``errors`` an op's exception
    (a DetormError) takes its place, otherwise the first one is raised after all have ended."""

    ops: Sequence[Op[Any]]
    errors: bool = False


@dataclass(frozen=True, slots=True)
class Blocking:
    """Call a blocking function (disk, archives): in the async driver, on a worker thread."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Emit:
    """Hand items to whoever iterates the op (a query's rows, log entries...)."""

    items: Sequence[Any]


Effect: TypeAlias = (
    Send | Open | Read | Close | Sleep | Gather | Blocking | Emit | Attempt | Discard
)
Op: TypeAlias = Generator[Effect, Any, T]


class Rows(Generic[T_co]):
    """An iterating op with the type of the items it emits (the op itself returns None).

    Each iteration needs a new generator, so this holds the function that makes one.
    """

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Op[None]]) -> None:
        self.make = make


class RecordReader(Generic[T_co]):
    """Rows read by an op, and the same rows as flat records (dicts): what each API's stream
    classes iterate and convert (``MetricsReader``, ``ProfilerReader``)."""

    _session: Any

    def _rows(self) -> Rows[T_co]:
        raise NotImplementedError

    def _records(self) -> Op[list[dict[str, Any]]]:
        raise NotImplementedError

    def _facts(self) -> list[tuple[str, Any]]:
        """What the stream reads, as its displays show it (no request is sent)."""
        raise NotImplementedError

    def _first_calls(self) -> list[Call]:
        """The request(s) an iteration starts with, when known without sending any."""
        return []

    def __repr__(self) -> str:
        return _display.stream_repr(self, self._facts())

    def _repr_html_(self) -> str:
        """Jupyter's view: what the stream reads and its first request (nothing is read)."""
        return _display.stream_html(self, self._first_calls(), self._facts())


# --- typed effect helpers ------------------------------------------------------------------------
def send(
    call: Call, *, retry: RetryPolicy | None = None, reauthenticate: bool = True
) -> Op[httpx.Response]:
    return cast("httpx.Response", (yield Send(call, retry, reauthenticate)))


def open_stream(call: Call, headers: Mapping[str, str] | None = None) -> Op[Opened]:
    return cast("Opened", (yield Open(call, headers)))


def read(stream: Opened) -> Op[bytes]:
    return cast("bytes", (yield Read(stream)))


def close(stream: Opened) -> Op[None]:
    yield Close(stream)


def sleep(seconds: float) -> Op[None]:
    yield Sleep(seconds)


def gather(ops: Sequence[Op[T]]) -> Op[list[T]]:
    if not ops:
        return []
    return cast("list[T]", (yield Gather(ops)))


def gather_outcomes(ops: Sequence[Op[T]]) -> Op[list[T | Exception]]:
    """Like :func:`gather`, each failure (a DetormError) returned in place of its result."""
    if not ops:
        return []
    return cast("list[T | Exception]", (yield Gather(ops, errors=True)))


def blocking(function: Callable[..., T], *args: Any) -> Op[T]:
    return cast("T", (yield Blocking(function, args)))


def emit(items: Sequence[Any]) -> Op[None]:
    if items:
        yield Emit(items)


def relay(op: Op[None], select: Callable[[list[Any]], tuple[Sequence[Any], bool]]) -> Op[None]:
    """Run an iterating op inside another: each batch it emits goes through ``select``, which
    says what to emit in its place and whether to go on (False closes the inner op)."""
    value: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                effect = op.send(value) if error is None else op.throw(error)
            except StopIteration:
                return
            value, error = None, None
            if isinstance(effect, Emit):
                items, go_on = select(list(effect.items))
                yield from emit(items)
                if not go_on:
                    return
                continue
            try:
                value = yield effect
            except Exception as err:  # handed to the inner op, which may handle it
                error = err
    finally:
        op.close()


def observed(op: Op[T], seen: Callable[[Effect, Any], None]) -> Op[T]:
    """``op`` unchanged, with ``seen(effect, result)`` called after each of its effects was
    performed (progress bars count an op's requests and rows this way); an effect that failed
    is not seen."""
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                effect = op.send(value) if error is None else op.throw(error)
            except StopIteration as stop:
                return cast("T", stop.value)
            value, error = None, None
            try:
                value = yield effect
            except Exception as err:  # noqa: BLE001 (handed to the inner op, which may handle it)
                error = err
                continue
            seen(effect, value)
    finally:
        op.close()


def collect(op: Op[None], keep: Callable[[list[Any]], Sequence[T]] | None = None) -> Op[list[T]]:
    """The items an iterating op emits, in a list (``keep`` maps each batch as it is emitted,
    while what the op holds for it is still held)."""
    items: list[T] = []

    def take(batch: list[Any]) -> tuple[Sequence[Any], bool]:
        items.extend(keep(batch) if keep else batch)
        return (), True

    yield from relay(op, take)
    return items
