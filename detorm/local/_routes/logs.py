"""Trial logs and their fields (``api_trials.go``: ``TrialLogs``, ``TrialLogsFields``).

A trial's logs are the logs of its task: TrialLogs translates its request into a TaskLogs
request (``api_tasks.go:taskLogs``) served by the Postgres backend (``db/postgres_tasks.go``),
through ``api.BatchStreamProcessor``. This module reproduces those three pieces, including their
quirks:

* ``limit`` goes through ``EffectiveLimit`` against a count taken first: 0 means every log that
  exists then, a negative limit means none; with ``follow`` the limit is ignored.
* Rows are fetched 1000 at a time, each batch after the id of the last row sent (``id >
  last``, whatever the order): with ``orderBy=ORDER_BY_DESC`` and more than 1000 rows, later
  batches repeat rows of the first, as on the master.
* A ``-1`` in ``rankIds`` becomes ``AND rank_id IS NULL OR rank_id IN (...)``, unparenthesised
  (``db/postgres_filters.go``): NULL-rank rows of the trial match regardless of every other
  filter, and ranked rows of *other* trials match the later filters.
* ``searchText`` is ``encode(log::bytea, 'escape') ILIKE '%' || text || '%'``: ``%`` and ``_`` in
  the text are wildcards. ``enableRegex`` is parsed but ignored: TrialLogs never passes it on.
* With ``follow`` an empty fetch waits :data:`FOLLOW_POLL_SECONDS`, and the stream ends once the
  trial has ended more than :data:`TERMINATION_GRACE_SECONDS` ago.

Each log line is its own message; ``message`` is the legacy line ``[ts] <container8> [rank=N] ||
LEVEL: log``. A stored level of ``LOG_LEVEL_UNSPECIFIED`` stands for the master's NULL level (no
``LEVEL:`` part, and no level filter matches it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any, Final

from detorm._wire import LogLevel, OrderBy, Timestamp

from .._app import Ctx, MessageBatch, RawJSON, rpc
from .._db import Database
from .._errors import ApiError, Code, GatewayError, not_found
from .._metric_reports import db_time
from .._sql_lists import in_list

# Waits of the master, module attributes so that tests can shorten them.
FOLLOW_POLL_SECONDS: float = 1.0  # taskLogsBatchMissWaitTime
TERMINATION_GRACE_SECONDS: float = 5.0  # PgDB.MaxTerminationDelay
FIELDS_POLL_SECONDS: float = 5.0  # distinctFieldBatchWaitTime

BATCH_SIZE: Final = 1000  # taskLogsBatchSize
_CONTAINER_WIDTH: Final = 8  # containerIDMaxLength
_TERMINAL: Final = frozenset({"COMPLETED", "CANCELED", "ERROR"})  # model.TerminalStates
_COLUMNS: Final = "id, timestamp, level, log, agent_id, container_id, rank_id, source, stdtype"
# task_logs (TaskLogs, api_tasks.go) add the allocation; a trial's logs have none here
_TASK_COLUMNS: Final = _COLUMNS + ", allocation_id"
_UNSPECIFIED: Final = LogLevel.UNSPECIFIED.value
_KNOWN_LEVELS: Final = frozenset(level.value for level in LogLevel)
# json.dumps' own string writer (ensure_ascii, the C version when available).
_json_str: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii


@dataclass(frozen=True)
class LogsRequest:
    """The filters of an ``apiv1.TrialLogsRequest`` (or ``TaskLogsRequest``: then ``table`` is
    ``task_logs`` and ``task_id`` names the task, or it reads a trial's ``trial_logs``)."""

    trial_id: int
    limit: int = 0
    follow: bool = False
    agent_ids: Sequence[str] = ()
    container_ids: Sequence[str] = ()
    rank_ids: Sequence[int] = ()
    levels: Sequence[LogLevel] = ()
    stdtypes: Sequence[str] = ()
    sources: Sequence[str] = ()
    timestamp_before: Timestamp | None = None
    timestamp_after: Timestamp | None = None
    descending: bool = False
    search_text: str = ""
    table: str = "trial_logs"
    task_id: str | None = None
    allocation_ids: Sequence[str] = ()


# --- TrialLogs ------------------------------------------------------------------------------
@rpc("TrialLogs", trial_id=int)
def trial_logs(ctx: Ctx) -> Iterator[MessageBatch]:
    return _logs_stream(ctx, parse_request(ctx))


def parse_request(ctx: Ctx, task_id: str | None = None) -> LogsRequest:
    """A TrialLogs request (the trial of the path), or a TaskLogs one for ``task_id``, which
    also takes ``allocationIds``. Parsed by the gateway, before the RPC runs: a bad value is a
    unary error."""
    q = ctx.query
    try:
        q.get_bool("enable_regex")  # parsed, then dropped by TrialLogs
        owner: dict[str, Any] = {"trial_id": ctx.path["trial_id"]} if task_id is None else {
            "trial_id": 0, "table": "task_logs", "task_id": task_id,
            "allocation_ids": q.get_strs("allocation_ids"),
        }  # fmt: skip
        return LogsRequest(
            **owner,
            limit=q.get_int("limit"),
            follow=q.get_bool("follow"),
            agent_ids=q.get_strs("agent_ids"),
            container_ids=q.get_strs("container_ids"),
            rank_ids=q.get_ints("rank_ids"),
            levels=q.get_enums("levels", LogLevel, "logv1.LogLevel"),
            stdtypes=q.get_strs("stdtypes"),
            sources=q.get_strs("sources"),
            timestamp_before=q.get_timestamp("timestamp_before"),
            timestamp_after=q.get_timestamp("timestamp_after"),
            descending=q.get_enum("order_by", OrderBy, "apiv1.OrderBy") == OrderBy.DESC,
            search_text=q.get_str("search_text"),
        )
    except ApiError as err:
        raise GatewayError(err.code, err.message) from None


def _logs_stream(ctx: Ctx, request: LogsRequest) -> Iterator[MessageBatch]:
    task_id = _task_of(ctx, request.trial_id)
    database = ctx.app.db
    try:
        yield from _batches(database, request)
    except ApiError as err:
        raise ApiError(err.code, _wrapped(task_id, err.message)) from None
    except Exception as err:
        raise ApiError(Code.UNKNOWN, _wrapped(task_id, str(err) or type(err).__name__)) from None


def _task_of(ctx: Ctx, trial_id: int) -> str:
    """The access check (404 before any message), then frees the request's connection: a
    followed stream can last as long as the trial."""
    row = (
        ctx.db.connection()
        .exec_driver_sql("SELECT task_id FROM trials WHERE id = ?", (trial_id,))
        .fetchone()
    )
    ctx.db.close()
    if row is None:
        raise not_found(f"trial '{trial_id}' not found")
    return str(row[0])


def _wrapped(task_id: str, message: str) -> str:
    # processBatches collects errors in a go-multierror, which TrialLogs wraps once more.
    return f"getting trial logs for task ID {task_id}: 1 error occurred:\n\t* {message}\n\n"


def _batches(
    database: Database,
    request: LogsRequest,
    *,
    ended: Callable[[], bool] | None = None,
    message: Callable[[tuple[Any, ...]], RawJSON] | None = None,
    authorize: Callable[[], None] | None = None,
) -> Iterator[MessageBatch]:
    """``taskLogs`` run by ``api.BatchStreamProcessor``. TaskLogs passes its own termination
    check, message and the access check its first fetch runs (TrialLogs checked before)."""
    where, params = _filters(request)
    try:
        count_sql = f"SELECT count(*) FROM {request.table} WHERE {where}"
        (total,) = _query(database, count_sql, params)[0]
    except Exception as err:
        raise _as_error(err, "getting log count from backend") from None
    if authorize is not None:
        try:
            authorize()
        except Exception as err:
            raise _as_error(err, "failed to fetch batch") from None
    if ended is None:
        trial_id = request.trial_id
        ended = lambda: _ended(database, trial_id)  # noqa: E731
    if message is None:  # _log_message's, without a call per row
        message = partial(_message, owner=_trial_owner(request.trial_id))
    remaining = _effective_limit(request.limit, total)
    last_id: int | None = None
    while True:
        size = BATCH_SIZE if request.follow or remaining > BATCH_SIZE else remaining
        rows: list[tuple[Any, ...]] = []
        if size > 0:
            try:
                rows = fetch_logs(
                    database, where, params, last_id, request.descending, size, request.table
                )
            except Exception as err:
                raise _as_error(err, "failed to fetch batch") from None
        if not rows:
            if not request.follow:
                return
            if ended():
                return
            if not database.follow_wait(FOLLOW_POLL_SECONDS):
                return
            continue
        remaining -= len(rows)
        last_id = rows[-1][0]
        yield MessageBatch(map(message, rows))
        if not request.follow and remaining <= 0:
            return


def _as_error(err: Exception, context: str) -> ApiError:
    code = err.code if isinstance(err, ApiError) else Code.UNKNOWN
    message = err.message if isinstance(err, ApiError) else (str(err) or type(err).__name__)
    return ApiError(code, f"{context}: {message}")


def _effective_limit(limit: int, total: int) -> int:
    """``api.EffectiveLimit(limit, 0, total)``."""
    if limit < 0:
        return -1
    if limit == 0 or limit > total:
        return total
    return limit


def _filters(request: LogsRequest) -> tuple[str, list[Any]]:
    """``constructTaskLogsFilters`` + ``filtersToSQL``, fragment for fragment (precedence and
    all): the ``WHERE`` text after the trial, and its parameters."""
    if request.table == "task_logs":
        fragments = ["task_id = ?"]
        params: list[Any] = [request.task_id]
    else:
        fragments = ["trial_id = ?"]
        params = [request.trial_id]

    if request.rank_ids:
        ranks, rank_params = in_list(request.rank_ids)
        null_rank = "rank_id IS NULL OR " if -1 in request.rank_ids else ""
        fragments.append(f"AND {null_rank}rank_id IN {ranks}")
        params += rank_params
    if request.allocation_ids:  # TaskLogs only; a trial's rows here have no allocation
        listed, listed_params = in_list(request.allocation_ids)
        column = "allocation_id" if request.table == "task_logs" else "NULL"
        fragments.append(f"AND {column} IN {listed}")
        params += listed_params
    for column, values in (
        ("agent_id", request.agent_ids), ("container_id", request.container_ids),
        ("stdtype", request.stdtypes), ("source", request.sources),
    ):  # fmt: skip
        if values:
            listed, listed_params = in_list(values)
            fragments.append(f"AND {column} IN {listed}")
            params += listed_params
    if request.levels:
        # NULL never matches IN; LOG_LEVEL_UNSPECIFIED stands for NULL here.
        levels, level_params = in_list(
            [level.value for level in request.levels if level != LogLevel.UNSPECIFIED]
        )
        fragments.append(f"AND level IN {levels}")
        params += level_params
    if request.timestamp_before is not None:
        fragments.append("AND timestamp <= ?")
        params.append(_bound(request.timestamp_before))
    if request.timestamp_after is not None:
        fragments.append("AND timestamp > ?")
        params.append(_bound(request.timestamp_after))
    if request.search_text:
        fragments.append("AND pg_escape(log) LIKE ('%' || ? || '%') ESCAPE '\\'")
        params.append(request.search_text)
    return "\n".join(fragments), params


def _bound(value: Timestamp) -> str:
    # pgx sends a time as microseconds, dropping the nanoseconds (db_time keeps microseconds).
    return db_time(value)


def fetch_logs(
    database: Database,
    where: str,
    params: list[Any],
    after_id: int | None,
    descending: bool,
    limit: int,
    table: str = "trial_logs",
) -> list[tuple[Any, ...]]:
    """``PgDB.TaskLogs``: one batch, after the id of the last row of the previous batch."""
    follow = "" if after_id is None else "\nAND id > ?"
    extra = [] if after_id is None else [after_id]
    order = "DESC" if descending else "ASC"
    columns = _TASK_COLUMNS if table == "task_logs" else _COLUMNS
    return _query(
        database,
        f"SELECT {columns} FROM {table} WHERE {where}{follow} ORDER BY id {order} LIMIT ?",
        [*params, *extra, limit],
    )


def _query(database: Database, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with database.transaction(write=False) as db:
        connection: Any = db.connection().connection.driver_connection
        connection.create_function("pg_escape", 1, _pg_escape, deterministic=True)
        rows: list[tuple[Any, ...]] = connection.execute(sql, tuple(params)).fetchall()
        return rows


def _pg_escape(text: str | None) -> str | None:
    """``encode(text::bytea, 'escape')``: NUL and non-ASCII bytes as ``\\ooo``, ``\\`` doubled."""
    if text is None:
        return None
    if text.isascii() and "\\" not in text and "\x00" not in text:
        return text
    out = []
    for byte in text.encode():
        if byte == 0 or byte >= 0x80:
            out.append(f"\\{byte:03o}")
        elif byte == 0x5C:
            out.append("\\\\")
        else:
            out.append(chr(byte))
    return "".join(out)


def _ended(database: Database, trial_id: int) -> bool:
    """``isTaskTerminalFunc``: the trial's task ended more than the grace period ago."""
    try:
        rows = _query(database, "SELECT state, end_time FROM trials WHERE id = ?", [trial_id])
        if not rows:
            raise ApiError(Code.NOT_FOUND, f"trial '{trial_id}' not found")
    except Exception as err:
        raise _as_error(err, "failed to check the termination status") from None
    state, end_time = rows[0]
    if end_time is None:
        return str(state) in _TERMINAL
    ended = datetime.fromisoformat(str(end_time)).replace(tzinfo=UTC)
    return ended + timedelta(seconds=TERMINATION_GRACE_SECONDS) < datetime.now(UTC)


# --- messages -------------------------------------------------------------------------------
def _log_message(trial_id: int, row: tuple[Any, ...]) -> RawJSON:
    """A ``TrialLogsResponse``."""
    return _message(row, _trial_owner(trial_id))


def _trial_owner(trial_id: int) -> str:
    return f',"trialId":{trial_id}'


def task_log_message(task_id: str, row: tuple[Any, ...]) -> RawJSON:
    """A ``TaskLogsResponse``: the trial message's fields with ``taskId`` and the allocation
    (a row of ``trial_logs`` has none)."""
    allocation_id = row[9] if len(row) > 9 else None
    owner = f',"taskId":{_json_str(task_id)}'
    if allocation_id is not None:
        owner += f',"allocationId":{_json_str(allocation_id)}'
    return _message(row[:9], owner)


def _message(row: tuple[Any, ...], owner: str) -> RawJSON:
    """The message as ``json.dumps(..., separators=(",", ":"))`` writes it, assembled by hand:
    the logs routes write thousands of these per request, and building a dict for each to
    encode cost as much as the rest of the request. ``owner``: the trial or task fields, in
    the master's order after ``level``.

    The text is escaped once: the legacy line is its escaped prefix followed by the escaped
    text (the escape writes each character on its own, so escaping the halves is escaping
    the whole). What a trial's rows repeat (their agent, container, rank, level, source) is
    written once per distinct value (cached)."""
    log_id, stamp, level, text, agent_id, container_id, rank_id, source, stdtype = row
    wire_time, legacy_time = _times(stamp if type(stamp) is str else str(stamp))
    escaped = _json_str(text)
    middle, level_field, ids, origin = _repeated_parts(
        agent_id, container_id, rank_id, level, source, stdtype
    )
    return RawJSON(
        f'{{"id":"{log_id}","timestamp":"{wire_time}","message":"[{legacy_time}]{middle}'
        f'{escaped[1:]},{level_field}{owner}{ids},"log":{escaped}{origin}}}'.encode()
    )


@lru_cache(maxsize=4096)
def _repeated_parts(
    agent_id: str | None, container_id: str | None, rank_id: int | None, level: str | None,
    source: str | None, stdtype: str | None,
) -> tuple[str, str, str, str]:  # fmt: skip
    """The parts of a message its row's repeated fields make, written: the legacy line
    between its time and its text (escaped, without quotes), the level, the agent, container
    and rank fields, the source and stdtype fields."""
    has_level = level is not None and level != _UNSPECIFIED
    legacy = _legacy_line("", container_id, rank_id, level if has_level else None, "")
    middle = _json_str(legacy.removeprefix("[]"))[1:-1]
    known_level = level if level is not None and level in _KNOWN_LEVELS else _UNSPECIFIED
    level_field = '"level":' + _json_str(known_level)
    agent = "" if agent_id is None else f',"agentId":{_json_str(agent_id)}'
    container = "" if container_id is None else f',"containerId":{_json_str(container_id)}'
    rank = "" if rank_id is None else f',"rankId":{int(rank_id)}'
    source_field = "" if source is None else f',"source":{_json_str(source)}'
    stdtype_field = "" if stdtype is None else f',"stdtype":{_json_str(stdtype)}'
    return middle, level_field, agent + container + rank, source_field + stdtype_field


def _times(stored: str) -> tuple[str, str]:
    """The stored time as jsonpb writes it (0/3/6 digits) and as the legacy line does
    (``RFC3339MicroTrailingZeroes``: always 6)."""
    if not (len(stored) == 26 and stored[10] == " " and stored[19] == "."):
        stored = db_time(datetime.fromisoformat(stored))
    legacy = f"{stored[:10]}T{stored[11:]}Z"
    if not stored.endswith("000"):
        return legacy, legacy
    if stored.endswith("000000"):
        return f"{stored[:10]}T{stored[11:19]}Z", legacy
    return f"{stored[:10]}T{stored[11:23]}Z", legacy


def _legacy_line(
    stamp: str, container_id: str | None, rank_id: int | None, level: str | None, text: str
) -> str:
    """``model.TaskLog.Message``."""
    if container_id:
        # Go slices bytes; a cut rune becomes U+FFFD when the JSON is written
        container = container_id.encode()[:_CONTAINER_WIDTH].decode(errors="replace")
    else:
        container = " " * _CONTAINER_WIDTH
    rank = "" if rank_id is None else f" [rank={rank_id}]"
    prefix = "" if level is None else f" {level.removeprefix('LOG_LEVEL_')}:"
    return f"[{stamp}] {container}{rank} ||{prefix} {text}"


# --- TrialLogsFields ------------------------------------------------------------------------
@rpc("TrialLogsFields", trial_id=int)
def trial_logs_fields(ctx: Ctx) -> Iterator[RawJSON]:
    try:
        follow = ctx.query.get_bool("follow")
    except ApiError as err:
        raise GatewayError(err.code, err.message) from None
    return _fields_stream(ctx, ctx.path["trial_id"], follow)


def _fields_stream(ctx: Ctx, trial_id: int, follow: bool) -> Iterator[RawJSON]:
    """One message of the distinct values; with ``follow``, one more every
    :data:`FIELDS_POLL_SECONDS` until the trial has ended (``alwaysCheckTermination``)."""
    task_id = _task_of(ctx, trial_id)
    database = ctx.app.db
    while True:
        try:
            fields = _fields(database, trial_id)
        except Exception as err:
            raise ApiError(Code.UNKNOWN, _fields_error(task_id, err)) from None
        yield RawJSON(json.dumps(fields, separators=(",", ":")).encode())
        if not follow or _ended(database, trial_id):
            return
        if not database.follow_wait(FIELDS_POLL_SECONDS):
            return


def _fields_error(task_id: str, err: Exception) -> str:
    inner = err.message if isinstance(err, ApiError) else str(err)
    return (
        f"merging and sending trial log field batches for task id {task_id}:"
        f" 1 error occurred:\n\t* failed to fetch batch: {inner}\n\n"
    )


def _fields(database: Database, trial_id: int) -> dict[str, list[Any]]:
    """``get_task_logs_fields.sql``: distinct non-null values. The master merges them through Go
    maps (random order); they are sorted here."""
    return log_fields(database, "trial_logs", "trial_id", trial_id)


def log_fields(
    database: Database, table: str, key_column: str, key: Any, *, allocations: bool = False
) -> dict[str, list[Any]]:
    """The distinct values of a trial's or task's logs (``allocations``: TaskLogsFields' first
    field, which a trial's ``trial_logs`` rows lack)."""
    values: dict[str, list[Any]] = {}
    if allocations:
        values["allocationIds"] = []
    for name, column in (
        ("allocationIds", "allocation_id"), ("agentIds", "agent_id"),
        ("containerIds", "container_id"), ("rankIds", "rank_id"), ("stdtypes", "stdtype"),
        ("sources", "source"),
    ):  # fmt: skip
        if column == "allocation_id" and (not allocations or table != "task_logs"):
            continue
        rows = _query(
            database,
            f"SELECT DISTINCT {column} FROM {table} WHERE {key_column} = ? AND {column} IS NOT NULL"
            f" ORDER BY {column}",
            [key],
        )
        values[name] = [row[0] for row in rows]
    return values
