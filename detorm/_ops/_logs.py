"""Trial logs: typed entries, searched on the master, followed across dropped connections.

``GET /api/v1/trials/{id}/logs`` streams one log line per message. Filters (levels, search
text, timestamps, limit) run on the master. ``follow=True`` keeps the stream open until the
trial ends. If the connection drops midway, reading resumes (from the last entry received when
following, else from the start) and skips the entries already handed out (log ids only grow),
so there is no duplicate and no gap.

The master's v1 log path ignores ``enableRegex``: with ``regex=True`` the pattern is matched
here, after the master's other filters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from pydantic_core import from_json

from .. import _wire as w
from .._plan._call import Call, path, query_items
from .._resources._inputs import INT32_MAX, check_int, check_iterable, require
from ..errors import QueryError
from ._effects import Op, Rows, collect, emit, relay

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

__all__ = ["LogEntry", "log_reader"]

RESUME_OVERLAP: Final = timedelta(seconds=1)
_LEVELS: Final = {level.value: level for level in w.LogLevel}
MAX_RECONNECTS: Final = 20


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log line of a trial or a task (``trial_id`` is 0 for the logs of a command, shell,
    notebook or TensorBoard; ``task_id`` and ``allocation_id`` are set for those)."""

    id: int
    trial_id: int
    timestamp: w.Timestamp | None
    level: w.LogLevel
    message: str  # the raw text the task printed (``log``), without the legacy prefix
    agent_id: str | None
    container_id: str | None
    rank_id: int | None
    source: str | None
    stdtype: str | None
    task_id: str | None = None
    allocation_id: str | None = None

    @classmethod
    def many_from_wire(cls, raws: list[bytes]) -> list[LogEntry]:
        """The entries of a batch of messages, read straight from the parsed JSON (a trial can
        print millions of lines): one parse for the whole batch, and no TrialLogsResponse
        validation, with the same absent/null/zero rules. Three times faster."""
        try:
            lines = from_json(b"[" + b",".join(raws) + b"]")
        except ValueError:
            lines = [from_json(raw) for raw in raws]  # raises on the line that is not JSON
        return _entries(lines, raws)

    def __str__(self) -> str:
        return self.message.rstrip("\n")


def _slot_writers() -> tuple[Callable[[LogEntry, Any], None], ...]:
    """Each field's slot writer, in field order: its member descriptor's ``__set__``."""
    return tuple(getattr(LogEntry, field.name).__set__ for field in fields(LogEntry))


_SLOT_WRITERS: Final = _slot_writers()


def _entries(lines: list[Any], raws: list[bytes]) -> list[LogEntry]:
    """The entries of parsed messages, built field by field: a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__`` (to get past its own
    ``__setattr__``, which refuses), which cost a third of reading a log line; writing the
    slots straight costs half as much. The entries are as immutable as any other."""
    (set_id, set_trial_id, set_timestamp, set_level, set_message, set_agent_id,
     set_container_id, set_rank_id, set_source, set_stdtype, set_task_id,
     set_allocation_id) = _SLOT_WRITERS  # fmt: skip
    new, parse_time = object.__new__, w.Timestamp.parse
    entries: list[LogEntry] = []
    for line, raw in zip(lines, raws, strict=True):
        if type(line) is not dict:
            raise ValueError(f"a log message must be a JSON object, not {raw[:80]!r}")
        get = line.get
        entry = new(LogEntry)
        ident = get("id")
        set_id(entry, int(ident) if type(ident) is str and ident.isdigit() else 0)
        set_trial_id(entry, int(get("trialId") or 0))
        stamp = get("timestamp")
        set_timestamp(entry, parse_time(stamp) if stamp else None)
        set_level(entry, _level(get("level")))
        log = get("log")
        set_message(entry, log if log is not None else get("message") or "")
        set_agent_id(entry, get("agentId"))
        set_container_id(entry, get("containerId"))
        set_rank_id(entry, get("rankId"))
        set_source(entry, get("source"))
        set_stdtype(entry, get("stdtype"))
        set_task_id(entry, get("taskId"))
        set_allocation_id(entry, get("allocationId"))
        entries.append(entry)
    return entries


def _level(value: Any) -> w.LogLevel:
    found = _LEVELS.get(value) if isinstance(value, str) else None
    if found is not None:
        return found
    return w.LogLevel.lookup(value) if value else w.LogLevel.UNSPECIFIED  # numbers, unknown names


def _levels(levels: Iterable[w.LogLevel | str] | None) -> list[str]:
    out: list[str] = []
    for level in check_iterable("levels", levels or (), "a list of LogLevel or level names"):
        if isinstance(level, w.LogLevel):
            out.append(level.value)
            continue
        require("each level", level, str, "a LogLevel or a level name")
        try:
            out.append(w.LogLevel.parse(level).value)
        except ValueError as err:
            raise QueryError(f"levels: {err}") from None
    return out


def _rfc3339(value: datetime | str | None, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return w.Timestamp.from_datetime(
            value if value.tzinfo else value.replace(tzinfo=UTC)
        ).rfc3339()
    require(name, value, str, "a datetime or an RFC 3339 str")
    try:
        return w.Timestamp.parse(value).rfc3339()
    except ValueError as err:
        raise QueryError(f"{name}: {err}") from None


def _check_arguments(
    *, follow: object, search: object, regex: object, limit: object, tail: object
) -> None:
    require("follow", follow, bool, "True or False")
    require("regex", regex, bool, "True or False")
    if search is not None:
        require("search", search, str, "a str or None")
    for name, value in (("limit", limit), ("tail", tail)):
        if value is not None:
            check_int(name, value, low=0, high=INT32_MAX, error=QueryError)  # int32 on the wire
    if limit is not None and tail is not None:
        raise QueryError("give either limit (the first lines) or tail (the last lines), not both")
    if follow and tail is not None:
        raise QueryError("tail and follow cannot be combined; use limit with follow")


def log_reader(
    *,
    follow: bool = False,
    search: str | None = None,
    regex: bool = False,
    levels: Iterable[w.LogLevel | str] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = None,
    tail: int | None = None,
) -> Callable[[Session, int | str], Rows[LogEntry]]:
    """Validate the arguments (before anything is sent), once for any number of trials or
    tasks; the reader of one's entries that they describe (a trial by its id, an int; a task by
    its id, a str: TrialLogs is TaskLogs on the master, with the same parameters)."""
    _check_arguments(follow=follow, search=search, regex=regex, limit=limit, tail=tail)
    pattern = None
    if regex and search:
        try:
            pattern = re.compile(search)
        except re.error as err:
            raise QueryError(f"search is not a valid regular expression: {err}") from None
    params: dict[str, Any] = {
        "follow": follow or None,
        "searchText": None if regex else search,
        "levels": _levels(levels) or None,
        "timestampAfter": _rfc3339(since, "since"),
        "timestampBefore": _rfc3339(until, "until"),
    }
    # The master limits only what it filters itself, and not a followed stream (its batch
    # processor stops on the limit only when not following): those limits are applied here.
    limit_here = limit is not None and (pattern is not None or follow)
    if tail is not None:
        params["limit"], params["orderBy"] = tail, w.OrderBy.DESC.value
    elif limit is not None and not limit_here:
        params["limit"] = limit

    def entries(session: Session, key: int | str) -> Op[None]:
        if limit == 0 or tail == 0:
            return  # the master reads limit=0 as "no limit"
        stream = _stream(session, key, params, follow=follow)
        if tail is not None:
            yield from emit((yield from collect(stream))[::-1])
            return
        left = limit if limit_here else None

        def select(found: list[LogEntry]) -> tuple[list[LogEntry], bool]:
            # Stops as soon as the limit is reached: no wait for one more line when following.
            nonlocal left
            if pattern is not None:
                found = [e for e in found if pattern.search(e.message)]
            if left is None:
                return found, True
            found = found[:left]
            left -= len(found)
            return found, left > 0

        yield from relay(stream, select)

    return lambda session, key: Rows(lambda: entries(session, key))


def _call(key: int | str, params: dict[str, Any]) -> Call:
    route = "/api/v1/tasks/{id}/logs" if isinstance(key, str) else "/api/v1/trials/{id}/logs"
    return Call("GET", path(route, id=key), query_items(params), stream=True)


def _stream(session: Session, key: int | str, params: dict[str, Any], *, follow: bool) -> Op[None]:
    descending = params.get("orderBy") == w.OrderBy.DESC.value
    last: LogEntry | None = None
    seen_up_to: int | None = None  # after a reconnect: the id of the last entry handed out

    def resume() -> Call:
        nonlocal seen_up_to
        if last is None:
            return _call(key, params)
        seen_up_to = last.id
        if not follow or last.timestamp is None:
            return _call(key, params)  # read again from the start, skipping what was seen
        # A followed stream may run for days: resume a little before the last entry.
        resume_at = w.Timestamp.from_datetime(last.timestamp - RESUME_OVERLAP).rfc3339()
        return _call(key, dict(params, timestampAfter=resume_at))

    resumes = MAX_RECONNECTS if follow else None
    reader = session.transport.results(_call(key, params), resume, resumes=resumes)
    while (batch := (yield from reader.batch())) is not None:
        entries = LogEntry.many_from_wire(batch)
        if seen_up_to is not None:
            # received before the connection dropped (log ids only grow)
            entries = [e for e in entries if not (e.id and _seen(e.id, seen_up_to, descending))]
        if entries:
            last = entries[-1]
        yield from emit(entries)


def _seen(entry_id: int, seen_up_to: int, descending: bool) -> bool:
    return entry_id >= seen_up_to if descending else entry_id <= seen_up_to
