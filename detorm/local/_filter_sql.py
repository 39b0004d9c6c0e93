"""The filter tree of SearchExperiments and SearchRuns, compiled to SQLite (``experiment_filter.go``).

The master decodes the request's ``filter`` string with Go's ``encoding/json`` into untagged structs
(:func:`decode_filter` does the same: keys match case-insensitively, unknown keys are ignored, a type
mismatch is Go's ``UnmarshalTypeError``), then builds a bun WHERE clause nested exactly like the
groups, which Postgres runs. Reproducing the *results* means reproducing what Postgres does with
that SQL, so this module also emulates the Postgres behaviour the clause relies on:

* literals are typed as bun writes them (a JSON string is an untyped quoted literal that Postgres
  coerces to the column's type, a number is ``integer``/``bigint``/``numeric``, a boolean is
  ``TRUE``), and the parse-time errors that follow are raised as the 500s the master answers
  (``invalid input syntax for type integer: "x"``, ``operator does not exist: text = integer``);
* ``LIKE``/``ILIKE`` patterns use ``\\`` as escape; text compares and sorts as glibc's
  ``en_US.UTF-8`` collation orders it (_collation.py); enums sort in declaration order;
  ``NULLS LAST`` as Postgres sorts by default;
* ``->>`` renders JSON numbers as ``numeric`` text and jsonb values sort by jsonb's ordering.

Row-level Postgres behaviour that SQLite lacks is provided by Python functions registered on the
connection (:func:`fetch`). A Postgres error raised while rows are scanned (a ``::float8`` cast of a
non-numeric hyperparameter, say) fails the request the same way.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlmodel import Session

from detorm._wire import STORED_EXPERIMENT_STATES, STORED_TRIAL_STATES

from .._plan._collation import text_compare
from . import _go
from ._errors import ApiError, Code, invalid_argument
from ._jsonpb import unmarshal
from ._sql_lists import in_list
from ._sql_tree import Condition, Junction, Leaf, render
from ._trampoline import Steps, run

__all__ = [
    "BOOL",
    "CompiledFilter",
    "EXPERIMENT_STATE",
    "FLOAT8",
    "FilterNode",
    "FilterRoot",
    "FilterScope",
    "GoError",
    "INT4",
    "INT8",
    "NIL_DEREFERENCE",
    "PgError",
    "PgType",
    "TEXT",
    "TIMESTAMPTZ",
    "TRIAL_STATE",
    "compile_filter",
    "db_time",
    "decode_filter",
    "enum_ordinal_sql",
    "error_text",
    "execute",
    "experiment_sort",
    "fetch",
    "flatten_metadata",
    "go_error",
    "jsonb_compare",
    "metadata_type",
    "numeric_text",
    "parse_db_time",
    "parse_input",
    "parse_metric_name",
    "pg_error",
    "pg_text",
    "run_sort",
    "text_compare",
    "wire_time",
]

NIL_DEREFERENCE: Final = "runtime error: invalid memory address or nil pointer dereference"


class GoError(ApiError):
    """A plain Go error (not a gRPC status): sent as 500 Internal, and printed without the
    ``rpc error: code = ... desc = ...`` wrapping where the master prints errors into results."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.INTERNAL, message)


class PgError(GoError):
    """A Postgres error as pgx formats it, passed through by the master (500)."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(f"ERROR: {message} (SQLSTATE {sqlstate})")
        self.sqlstate = sqlstate


def go_error(message: str) -> GoError:
    return GoError(message)


def pg_error(message: str, sqlstate: str) -> PgError:
    return PgError(message, sqlstate)


def error_text(err: ApiError) -> str:
    """``err.Error()`` in Go: a status prints as ``rpc error: code = X desc = Y``."""
    if isinstance(err, GoError):
        return err.message
    return f"rpc error: code = {err.code.reason} desc = {err.message}"


# ================================================================================================
# Postgres types, literals and coercions
# ================================================================================================
EXPERIMENT_STATES: Final = STORED_EXPERIMENT_STATES
"""``experiment_state`` in declaration order (migration 20230816155133), which is its sort order."""

TRIAL_STATES: Final = STORED_TRIAL_STATES
"""``trial_state`` (the ``runs.state`` column) in declaration order."""


@dataclass(frozen=True)
class PgType:
    """The Postgres type of a column expression: its name in error messages and its family."""

    name: str
    kind: str  # int | numeric | float | text | time | enum | bool
    bits: int = 0
    labels: tuple[str, ...] = ()
    with_zone: bool = True


INT4: Final = PgType("integer", "int", bits=32)
INT8: Final = PgType("bigint", "int", bits=64)
NUMERIC: Final = PgType("numeric", "numeric")
FLOAT8: Final = PgType("double precision", "float")
TEXT: Final = PgType("text", "text")
VARCHAR: Final = PgType("character varying", "text")
TIMESTAMPTZ: Final = PgType("timestamp with time zone", "time")
TIMESTAMP: Final = PgType("timestamp without time zone", "time", with_zone=False)
BOOL: Final = PgType("boolean", "bool")
EXPERIMENT_STATE: Final = PgType("experiment_state", "enum", labels=EXPERIMENT_STATES)
TRIAL_STATE: Final = PgType("trial_state", "enum", labels=TRIAL_STATES)


@dataclass(frozen=True)
class Literal:
    """A filter value as bun writes it into the SQL text."""

    kind: str  # unknown (a quoted string) | number | bool
    value: Any
    type_name: str  # unknown | integer | bigint | numeric | boolean

    @classmethod
    def of(cls, value: Any) -> Literal:
        if isinstance(value, bool):
            return cls("bool", value, "boolean")
        if isinstance(value, (int, float)):
            number = float(value)  # encoding/json decodes every number into a float64
            size = abs(number)
            if number.is_integer() and size < 2**63:
                return cls("number", int(number), "integer" if size < 2**31 else "bigint")
            return cls("number", number, "numeric")
        if isinstance(value, str):
            return cls("unknown", value, "unknown")
        # maps and slices: bun writes them as a quoted JSON string
        return cls("unknown", go_json(value), "unknown")


def _op_name(op: str) -> str:
    return "<>" if op == "!=" else op


def operator_missing(left: str, op: str, right: str) -> ApiError:
    return pg_error(f"operator does not exist: {left} {_op_name(op)} {right}", "42883")


def coerce(literal: Literal, target: PgType, op: str) -> Any:
    """The literal as Postgres reads it against a column of ``target`` (parse-time errors raised).

    Returns a Python value in the form the SQLite column holds (see :func:`sqlite_value`)."""
    if literal.kind == "unknown":
        return parse_input(str(literal.value), target)
    if literal.kind == "number":
        if target.kind in ("int", "numeric", "float"):
            return literal.value
        raise operator_missing(target.name, op, literal.type_name)
    if target.kind == "bool":
        return bool(literal.value)
    raise operator_missing(target.name, op, "boolean")


def sqlite_value(value: Any, target: PgType) -> Any:
    """A coerced value as a SQLite parameter comparable with the stored column."""
    if target.kind == "time":
        return db_time(value)
    if target.kind == "enum":
        return target.labels.index(value)
    if target.kind == "bool":
        return int(value)
    return value


_INT_INPUT: Final = re.compile(r"\s*([+-]?\d+)\s*")
_NUMERIC_INPUT: Final = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*")
_FLOAT_SPECIAL: Final = {"nan": math.nan, "infinity": math.inf, "+infinity": math.inf,
                         "-infinity": -math.inf, "inf": math.inf, "+inf": math.inf,
                         "-inf": -math.inf}  # fmt: skip


def parse_input(text: str, target: PgType) -> Any:
    """The type's input function (``int4in``, ``float8in``, ``boolin``, ``enum_in``...)."""
    kind = target.kind
    if kind == "text":
        return text
    if kind == "int":
        match = _INT_INPUT.fullmatch(text)
        if match is None:
            raise pg_error(f'invalid input syntax for type {target.name}: "{text}"', "22P02")
        value = int(match.group(1))
        if not -(2 ** (target.bits - 1)) <= value < 2 ** (target.bits - 1):
            raise pg_error(f'value "{text}" is out of range for type {target.name}', "22003")
        return value
    if kind in ("numeric", "float"):
        return _parse_number(text, target)
    if kind == "time":
        return parse_timestamp(text, target)
    if kind == "enum":
        if text not in target.labels:
            raise pg_error(f'invalid input value for enum {target.name}: "{text}"', "22P02")
        return text
    return parse_bool(text)


def _parse_number(text: str, target: PgType) -> float:
    special = _FLOAT_SPECIAL.get(text.strip().lower())
    if special is not None:
        return special
    match = _NUMERIC_INPUT.fullmatch(text)
    if match is None:
        raise pg_error(f'invalid input syntax for type {target.name}: "{text}"', "22P02")
    return float(match.group(1))


def parse_bool(text: str) -> bool:
    """``boolin``: prefixes of true/false/yes/no, on/off, 1/0, case-insensitive."""
    word = text.strip().lower()
    if word:
        for spelling, value, shortest in (("true", True, 1), ("false", False, 1), ("yes", True, 1),
                                          ("no", False, 1), ("on", True, 2), ("off", False, 2)):  # fmt: skip
            if len(word) >= shortest and spelling.startswith(word):
                return value
        if word in ("1", "0"):
            return word == "1"
    raise pg_error(f'invalid input syntax for type boolean: "{text}"', "22P02")


_TIMESTAMP_INPUT: Final = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|z|UTC|[+-]\d{1,2}(?::?\d{2})?)?\s*"
)


def parse_timestamp(text: str, target: PgType = TIMESTAMPTZ) -> datetime:
    """``timestamptz_in`` for the ISO forms clients send (the zone is ignored without time zone)."""
    match = _TIMESTAMP_INPUT.fullmatch(text)
    if match is None:
        raise pg_error(f'invalid input syntax for type {target.name}: "{text}"', "22007")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = round(int((fraction or "0")[:9].ljust(9, "0")) / 1000) if fraction else 0
    try:
        value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                         int(second or 0), tzinfo=UTC)  # fmt: skip
    except ValueError:
        raise pg_error(f'date/time field value out of range: "{text}"', "22008") from None
    value = _shifted(value, timedelta(microseconds=micros))
    if zone and zone not in ("Z", "z", "UTC") and target.with_zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:-2] or digits) if len(digits) > 2 else int(digits), 0
        if len(digits) > 2:
            minutes = int(digits[-2:])
        value = _shifted(value, -sign * timedelta(hours=hours, minutes=minutes))
    return value


def _shifted(value: datetime, delta: timedelta) -> datetime:
    """``value + delta``, held at Python's first or last instant where it would leave them.

    Postgres timestamps run from 4713 BC to 294276 AD and Python's from year 1 to 9999: a bound
    such as 9999-12-31T23:59:59.9999999Z, which Postgres rounds into year 10000, compares with
    every storable time as the last instant Python has does.
    """
    try:
        return value + delta
    except OverflowError:
        edge = datetime.max if delta > timedelta(0) else datetime.min
        return edge.replace(tzinfo=UTC)


def db_time(value: datetime) -> str:
    """A datetime as SQLAlchemy stores it in SQLite: naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def parse_db_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def wire_time(text: str | None) -> str | None:
    """A stored datetime as the master's JSON writes it: RFC 3339, UTC, 0/3/6 fraction digits."""
    if text is None:
        return None
    if len(text) == 26 and text[10] == " ":
        base, fraction = f"{text[:10]}T{text[11:19]}", text[20:]
    else:
        value = parse_db_time(text).astimezone(UTC)
        base, fraction = value.strftime("%Y-%m-%dT%H:%M:%S"), f"{value.microsecond:06d}"
    if fraction == "000000":
        return base + "Z"
    if fraction.endswith("000"):
        return f"{base}.{fraction[:3]}Z"
    return f"{base}.{fraction}Z"


# --- Go formatting of values -------------------------------------------------------------------
def go_json(value: Any) -> str:
    """``json.Marshal`` of a decoded JSON value: compact, map keys sorted, integral floats bare."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return _go_number(float(value))
    if isinstance(value, str):
        return (
            json.dumps(value, ensure_ascii=False)
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
        )
    if isinstance(value, Mapping):
        return (
            "{"
            + ",".join(f"{go_json(str(k))}:{go_json(v)}" for k, v in sorted(value.items()))
            + "}"
        )
    return "[" + ",".join(go_json(v) for v in value) + "]"


def _go_number(value: float) -> str:
    # encoding/json: shortest digits, 'f' format, 'e' below 1e-6 or from 1e21 ("e-07" -> "e-7").
    size = abs(value)
    if size != 0 and (size < 1e-6 or size >= 1e21):
        mantissa, _, exponent = f"{value:e}".partition("e")
        shortest = repr(value)
        if "e" in shortest:
            mantissa, _, exponent = shortest.partition("e")
        power = int(exponent)
        return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}".replace("e-0", "e-")
    return bun_float(value)


def go_g(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)`` as ``%v`` prints a float64."""
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    digit_list = list(digits)
    assert isinstance(exponent, int)
    while len(digit_list) > 1 and digit_list[-1] == 0:
        digit_list.pop()
        exponent += 1
    text = "".join(map(str, digit_list))
    point = len(text) + exponent  # digits before the decimal point
    head = "-" if sign else ""
    power = point - 1
    if power < -4 or power >= 21 or (power >= 6):
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{head}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{head}0.{'0' * -point}{text}"
    if point >= len(text):
        return head + text + "0" * (point - len(text))
    return f"{head}{text[:point]}.{text[point:]}"


def go_sprint(value: Any) -> str:
    """``fmt.Sprintf("%s", v)`` of a decoded JSON value (non-strings get Go's ``%!s(...)``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return f"%!s(bool={'true' if value else 'false'})"
    if isinstance(value, (int, float)):
        return f"%!s(float64={go_g(float(value))})"
    if value is None:
        return "%!s(<nil>)"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_sprint(v)}" for k, v in sorted(value.items())) + "]"
    return "[" + " ".join(go_sprint(v) for v in value) + "]"


def go_type_name(value: Any) -> str:
    """The dynamic Go type of a decoded JSON value, as a failed type assertion names it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "float64"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    return "[]interface {}"


# ================================================================================================
# Postgres text, LIKE, collation and jsonb behaviour
# ================================================================================================
def like(value: str, pattern: str, *, case_insensitive: bool) -> bool:
    """Postgres ``LIKE``/``ILIKE``: ``%`` any run, ``_`` one character, ``\\`` escapes."""
    regex: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise pg_error("LIKE pattern must not end with escape character", "22025")
            regex.append(re.escape(escaped))
        elif char == "%":
            regex.append(".*")
        elif char == "_":
            regex.append(".")
        else:
            regex.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if case_insensitive else 0)
    return re.fullmatch("".join(regex), value, flags) is not None


def pg_text(value: Any) -> str | None:
    """``->>`` of a JSON value: strings as is, numbers as ``numeric`` text, the rest as jsonb text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return jsonb_text(value)


def jsonb_text(value: Any) -> str:
    """jsonb's output function: ``", "`` and ``": "`` separators, keys in storage order."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return numeric_text(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        pairs = (
            f"{json.dumps(k, ensure_ascii=False)}: {jsonb_text(value[k])}"
            for k in _storage_order(value)
        )
        return "{" + ", ".join(pairs) + "}"
    return "[" + ", ".join(jsonb_text(v) for v in value) + "]"


def numeric_text(value: float | int) -> str:
    """A number as jsonb prints it: the ``numeric`` of the value the master's Go code wrote."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _storage_order(document: Mapping[str, Any]) -> list[str]:
    """jsonb keeps object keys shorter first, then bytewise."""
    return sorted(document, key=lambda k: (len(k.encode()), k.encode()))


_JSONB_RANK: Final = {type(None): 0, str: 1, int: 2, float: 2, bool: 3, list: 4, dict: 5}


def jsonb_compare(a: Any, b: Any) -> int:
    """jsonb's b-tree order: object > array > boolean > number > string > null; objects by
    pair count then key/value in storage order (shorter keys first), arrays by length."""
    rank_a, rank_b = _JSONB_RANK.get(type(a), 1), _JSONB_RANK.get(type(b), 1)
    if rank_a != rank_b:
        return -1 if rank_a < rank_b else 1
    if isinstance(a, str):
        return text_compare(a, b)
    if isinstance(a, (bool, int, float)):
        return int(a > b) - int(a < b)
    if isinstance(a, list):
        if len(a) != len(b):
            return -1 if len(a) < len(b) else 1
        for x, y in zip(a, b, strict=True):
            order = jsonb_compare(x, y)
            if order:
                return order
        return 0
    if isinstance(a, dict):
        if len(a) != len(b):
            return -1 if len(a) < len(b) else 1
        for ka, kb in zip(_storage_order(a), _storage_order(b), strict=True):
            order = text_compare(ka, kb) or jsonb_compare(a[ka], b[kb])
            if order:
                return order
        return 0
    return 0


# ================================================================================================
# SQLite connection: Postgres functions and collations
# ================================================================================================
class _Pending(threading.local):
    error: ApiError | None = None


_PENDING: Final = _Pending()


def _raising(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a SQL function so a Postgres error it raises fails the query with that error."""

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except ApiError as err:
            if _PENDING.error is None:
                _PENDING.error = err
            raise

    return call


def _sql_like(value: Any, pattern: Any, case_insensitive: Any) -> int | None:
    if value is None or pattern is None:
        return None
    return int(like(str(value), str(pattern), case_insensitive=bool(case_insensitive)))


def _sql_jsonb_text(document: Any) -> str | None:
    """``->>`` of a JSON text SQLite's ``->`` returned (NULL when missing or JSON null)."""
    if document is None:
        return None
    return pg_text(json.loads(document))


def _sql_metric(summary: Any, group: str, name: str, qualifier: str) -> str | None:
    """``r.summary_metrics->group->name->>qualifier``."""
    if summary is None:
        return None
    document = json.loads(summary)
    for key in (group, name):
        document = document.get(key) if isinstance(document, dict) else None
    value = document.get(qualifier) if isinstance(document, dict) else None
    return pg_text(value)


def _sql_float8(text: Any) -> float | None:
    """``text::float8``; a text that is not a number fails the query as the cast does."""
    if text is None:
        return None
    return _parse_number(str(text), FLOAT8)


def _sql_float8_test(text: Any, op: str, value: Any) -> int | None:
    """``text::float8 <op> value`` or ``text::float8 IS [NOT] NULL``, with Postgres's NaN: equal
    to itself, above every number, not NULL (a NaN returned to SQLite would read as NULL)."""
    number = _sql_float8(text)
    if op in ("IS NULL", "IS NOT NULL"):
        return int((number is None) == (op == "IS NULL"))
    if number is None or value is None:
        return None
    return int(_compare(_pg_float_key(number), op, _pg_float_key(float(value))))


def _sql_duration(end: Any, start: Any, now: str) -> float | None:
    """``extract(epoch FROM coalesce(end, now()) - start)``, in seconds."""
    if start is None:
        return None
    finish = parse_db_time(end if end is not None else now)
    return (finish - parse_db_time(start)).total_seconds()


def _sql_round(value: Any) -> int | None:
    """``::int`` of numeric rounds half away from zero."""
    if value is None:
        return None
    return int(Decimal(repr(float(value))).quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def _sql_rint(value: Any) -> int | None:
    """``ROUND(double precision)::INTEGER``: round half to even (``rint``)."""
    return None if value is None else round(float(value))


def _sql_jsonb_collation(a: str, b: str) -> int:
    return jsonb_compare(json.loads(a), json.loads(b))


def connection(db: Session) -> sqlite3.Connection:
    """The session's SQLite connection (inside its transaction), with the Postgres emulation."""
    db.flush()
    raw: Any = db.connection().connection.driver_connection
    conn: sqlite3.Connection = raw
    conn.create_function("pg_like", 3, _raising(_sql_like), deterministic=True)
    conn.create_function("pg_jsonb_text", 1, _sql_jsonb_text, deterministic=True)
    conn.create_function("pg_metric", 4, _sql_metric, deterministic=True)
    conn.create_function("pg_float8_test", 3, _raising(_sql_float8_test), deterministic=True)
    conn.create_function("pg_duration", 3, _sql_duration, deterministic=True)
    conn.create_function("pg_round", 1, _sql_round, deterministic=True)
    conn.create_function("pg_rint", 1, _sql_rint, deterministic=True)
    conn.create_function("pg_hp", 5, _raising(_sql_hp), deterministic=True)
    conn.create_collation("pgtext", text_compare)
    conn.create_collation("pgjsonb", _sql_jsonb_collation)
    return conn


def fetch(db: Session, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run a query on the session's connection; a Postgres error raised by a row fails it."""
    conn = connection(db)
    _PENDING.error = None
    try:
        return conn.execute(sql, tuple(params)).fetchall()
    except sqlite3.OperationalError:
        pending, _PENDING.error = _PENDING.error, None
        if pending is not None:
            raise pending from None
        raise


def execute(db: Session, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
    """Run a statement on the session's connection (writes), returning the cursor."""
    return connection(db).execute(sql, tuple(params))


def enum_ordinal_sql(column: str, kind: PgType) -> str:
    """An enum column as its ordinal (enums compare and sort in declaration order)."""
    whens = " ".join(f"WHEN '{label}' THEN {i}" for i, label in enumerate(kind.labels))
    return f"(CASE {column} {whens} END)"


# ================================================================================================
# Decoding the filter document as encoding/json does
# ================================================================================================
_MISSING: Final = object()


@dataclass
class FilterNode:
    """``experimentFilter``: ``None`` marks a nil pointer (absent or JSON null)."""

    kind: str = ""
    children: list[FilterNode | None] = field(default_factory=list)
    conjunction: str | None = None
    operator: str | None = None
    value: Any = None
    column_name: str = ""
    location: str | None = None
    type: str | None = None


@dataclass
class FilterRoot:
    """``experimentFilterRoot``."""

    filter_group: FilterNode = field(default_factory=FilterNode)
    show_archived: bool = False


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


class _Decoder:
    """Go's ``json.Unmarshal`` into the filter structs (first type error wins, as Go reports)."""

    _NODE_FIELDS: Final = (
        "Children",
        "Conjunction",
        "Operator",
        "Value",
        "Kind",
        "ColumnName",
        "Location",
        "Type",
    )
    _FIELD_TYPES: Final = {
        "Conjunction": "internal.filterConjunction", "Operator": "internal.operator",
        "Kind": "internal.filterType", "ColumnName": "string", "Location": "string", "Type": "string",
    }  # fmt: skip

    def __init__(self) -> None:
        self.error: str | None = None

    def fail(self, json_kind: str, struct: str, path: Sequence[str], go_type: str) -> None:
        if self.error is None:
            self.error = (
                f"json: cannot unmarshal {json_kind} into Go struct field "
                f"{struct}.{'.'.join(path)} of type {go_type}"
            )

    @staticmethod
    def fields(document: dict[str, Any], names: Sequence[str]) -> Iterator[tuple[str, Any]]:
        # An exact name wins, else a case-insensitive match; later keys overwrite earlier ones.
        for key, value in document.items():
            name = next((n for n in names if n == key), None) or next(
                (n for n in names if n.lower() == key.lower()), None
            )
            if name is not None:
                yield name, value

    def root(self, document: Any) -> FilterRoot:
        root = FilterRoot()
        if document is None:
            return root
        if not isinstance(document, dict):
            self.error = f"json: cannot unmarshal {_json_kind(document)} into Go value of type internal.experimentFilterRoot"
            return root
        for name, value in self.fields(document, ("FilterGroup", "ShowArchived")):
            if name == "ShowArchived":
                if isinstance(value, bool):
                    root.show_archived = value
                elif value is not None:
                    self.fail(_json_kind(value), "experimentFilterRoot", ["ShowArchived"], "bool")
            elif isinstance(value, dict):
                root.filter_group = run(self.node(value, ["FilterGroup"], into=root.filter_group))
            elif value is not None:
                self.fail(
                    _json_kind(value),
                    "experimentFilterRoot",
                    ["FilterGroup"],
                    "internal.experimentFilter",
                )
        return root

    def node(
        self, document: dict[str, Any], path: list[str], *, into: FilterNode | None = None
    ) -> Steps[FilterNode]:
        node = into or FilterNode()
        for name, value in self.fields(document, self._NODE_FIELDS):
            where = [*path, name]
            if name == "Value":
                node.value = value
            elif name == "Children":
                node.children = yield self.children(value, where, node.children)
            elif value is None:
                if name in ("Conjunction", "Operator", "Location", "Type"):
                    setattr(node, _ATTRIBUTE[name], None)
            elif isinstance(value, str):
                setattr(node, _ATTRIBUTE[name], value)
            else:
                self.fail(_json_kind(value), "experimentFilter", where, self._FIELD_TYPES[name])
        return node

    def children(
        self, value: Any, path: list[str], current: list[FilterNode | None]
    ) -> Steps[list[FilterNode | None]]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(_json_kind(value), "experimentFilter", path, "[]*internal.experimentFilter")
            return current
        nodes: list[FilterNode | None] = []
        for item in value:
            if item is None:
                nodes.append(None)
            elif isinstance(item, dict):
                nodes.append((yield self.node(item, path)))
            else:
                self.fail(_json_kind(item), "experimentFilter", path, "internal.experimentFilter")
                nodes.append(FilterNode())
        return nodes


_ATTRIBUTE: Final = {
    "Conjunction": "conjunction", "Operator": "operator", "Kind": "kind",
    "ColumnName": "column_name", "Location": "location", "Type": "type",
}  # fmt: skip


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError("invalid constant", name, 0)


def decode_filter(text: str) -> FilterRoot:
    """``json.Unmarshal([]byte(filter), &efr)``; a failure is a plain error (500)."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise go_error(_go_syntax_error(err)) from None
    except RecursionError:  # deeper than Python's json reads: Go's own limit is 10,000
        try:
            document = unmarshal(text)
        except _go.GoError as err:
            raise go_error(str(err)) from None
    decoder = _Decoder()
    root = decoder.root(document)
    if decoder.error is not None:
        raise go_error(decoder.error)
    return root


def _quote_char(char: str) -> str:
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return repr(char) if not char.isprintable() else f"'{char}'"


_LITERALS: Final = {"n": "null", "t": "true", "f": "false"}


def _go_syntax_error(err: json.JSONDecodeError) -> str:
    text, pos = err.doc, err.pos
    if pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):
        return "unexpected end of JSON input"
    char = text[pos]
    word = _LITERALS.get(char)
    if word is not None and err.msg == "Expecting value":
        for index, expected in enumerate(word):
            if pos + index >= len(text):
                return "unexpected end of JSON input"
            if text[pos + index] != expected:
                found = _quote_char(text[pos + index])
                return f"invalid character {found} in literal {word} (expecting {_quote_char(expected)})"
    if err.msg == "Extra data":
        return f"invalid character {_quote_char(char)} after top-level value"
    if err.msg.startswith("Expecting ':'"):
        return f"invalid character {_quote_char(char)} after object key"
    if err.msg.startswith("Expecting ','"):
        inside = "object key:value pair" if _innermost(text, pos) == "{" else "array element"
        return f"invalid character {_quote_char(char)} after {inside}"
    if err.msg.startswith("Expecting property name"):
        return f"invalid character {_quote_char(char)} looking for beginning of object key string"
    if err.msg.startswith("Invalid control character"):
        return f"invalid character {_quote_char(char)} in string literal"
    return f"invalid character {_quote_char(char)} looking for beginning of value"


def _innermost(text: str, pos: int) -> str:
    stack: list[str] = []
    in_string = escaped = False
    for char in text[:pos]:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


# ================================================================================================
# Compiling the tree
# ================================================================================================
@dataclass(frozen=True)
class Column:
    sql: str
    type: PgType
    # isExpMultitrial splices "a != 'single'" unparenthesised: every operator fails to parse
    bare_comparison: bool = False


_EXPERIMENT_TEXT: Final = {
    "description": "(e.config ->> '$.description')",
    "name": "(e.config ->> '$.name')",
    "tags": "pg_jsonb_text(e.config -> '$.labels')",
    "searcherType": "(e.config ->> '$.searcher.name')",
    "searcherMetric": "(e.config ->> '$.searcher.metric')",
    "resourcePool": "(e.config ->> '$.resources.resource_pool')",
}

# the searcher metric of the experiment's best-scoring trial (MIN or MAX by smaller_is_better)
_SEARCHER_METRIC_VAL: Final = (
    "(CASE WHEN COALESCE(e.config ->> '$.searcher.smaller_is_better', 1)"
    " THEN (SELECT MIN(t.searcher_metric_value) FROM trials t WHERE t.experiment_id = e.id)"
    " ELSE (SELECT MAX(t.searcher_metric_value) FROM trials t WHERE t.experiment_id = e.id) END)"
)


def experiment_columns(now: str) -> dict[str, Column]:
    """``expColumnNameToSQL`` (``projectId`` is handled apart: the master's SQL is ambiguous)."""
    columns = {name: Column(sql, TEXT) for name, sql in _EXPERIMENT_TEXT.items()}
    columns.update({
        "id": Column("e.id", INT4),
        "startTime": Column("e.start_time", TIMESTAMPTZ),
        "endTime": Column("e.end_time", TIMESTAMPTZ),
        "duration": Column(f"pg_duration(e.end_time, e.start_time, '{now}')", NUMERIC),
        "state": Column("e.state", EXPERIMENT_STATE),
        "numTrials": Column("(SELECT COUNT(*) FROM trials t WHERE t.experiment_id = e.id)", INT8),
        "progress": Column("pg_rint(COALESCE(e.progress, 0) * 100)", INT4),
        "user": Column("e.owner_id", INT4),
        "forkedFrom": Column("e.parent_id", INT4),
        "checkpointSize": Column("e.checkpoint_size", INT8),
        "checkpointCount": Column("e.checkpoint_count", INT4),
        "searcherMetricsVal": Column(_SEARCHER_METRIC_VAL, FLOAT8),
        "externalExperimentId": Column("e.external_experiment_id", TEXT),
        "externalTrialId": Column("r.external_run_id", TEXT),
    })  # fmt: skip
    return columns


def run_columns(now: str) -> dict[str, Column]:
    """``runColumnNameToSQL``; a run's project is its experiment's project in detorm.local."""
    columns = {
        "experimentDescription": Column(_EXPERIMENT_TEXT["description"], TEXT),
        "experimentName": Column(_EXPERIMENT_TEXT["name"], TEXT),
        **{name: Column(_EXPERIMENT_TEXT[name], TEXT)
           for name in ("tags", "searcherType", "searcherMetric", "resourcePool")},
    }  # fmt: skip
    columns.update({
        "id": Column("r.id", INT4),
        "startTime": Column("r.start_time", TIMESTAMPTZ),
        "endTime": Column("r.end_time", TIMESTAMPTZ),
        "duration": Column(f"pg_duration(r.end_time, r.start_time, '{now}')", NUMERIC),
        "state": Column("r.state", TRIAL_STATE),
        "experimentProgress": Column("pg_rint(COALESCE(e.progress, 0) * 100)", INT4),
        "user": Column("e.owner_id", INT4),
        "forkedFrom": Column("e.parent_id", INT4),
        "projectId": Column("e.project_id", INT4),
        "checkpointSize": Column("r.checkpoint_size", INT8),
        "checkpointCount": Column("r.checkpoint_count", INT4),
        "searcherMetricsVal": Column("r.searcher_metric_value", FLOAT8),
        "externalExperimentId": Column("e.external_experiment_id", TEXT),
        "externalRunId": Column("r.external_run_id", TEXT),
        "experimentId": Column("e.id", INT4),
        "localId": Column("(p.key || '-' || COALESCE(r.local_id, ''))", TEXT),
        "isExpMultitrial": Column("((e.config ->> '$.searcher.name') != 'single')", BOOL, bare_comparison=True),
        "parentArchived": Column("(w.archived OR p.archived)", BOOL),
    })  # fmt: skip
    return columns


_OPERATORS: Final = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
                     "isEmpty": "IS NULL", "notEmpty": "IS NOT NULL", "contains": "", "notContains": ""}  # fmt: skip
_COMPARISONS: Final = frozenset({"=", "!=", "<", "<=", ">", ">="})

_METRIC_ID: Final = re.compile(r"([\x20-\x7e]+?)\.([\x20-\x7e]+)\.(min|max|mean|last)")


def parse_metric_name(name: str) -> tuple[str, str, str]:
    """``parseMetricsName``: ``<group>.<name>.<min|max|mean|last>`` found anywhere in ``name``."""
    match = _METRIC_ID.search(name)
    if match is None:
        raise go_error(f"{name} is not a valid metrics id")
    group, metric, qualifier = match.groups()
    group = {"training": "avg_metrics", "validation": "validation_metrics"}.get(group, group)
    return group, metric, qualifier


class _Compiler:
    def __init__(self, db: Session, now: str) -> None:
        self.db = db
        self.now = now
        self.params: list[Any] = []
        self.experiment = experiment_columns(now)
        self.run = run_columns(now)
        self._metadata: list[tuple[int, list[_MetadataEntry]]] | None = None
        self.deferred: PgError | None = None

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    # --- tree ------------------------------------------------------------------------------
    def node(self, node: FilterNode) -> Steps[Condition | None]:
        if node.kind == "field":
            return self.field(node)
        if node.kind == "group":
            group: Condition | None = yield self.group(node)
            return group
        return None  # another kind adds no condition

    def group(self, node: FilterNode) -> Steps[Condition | None]:
        if node.conjunction is None:
            raise go_error("group specified with no conjunction")
        if not node.children:
            return Leaf("1")
        conjunction = {"and": "AND", "or": "OR"}.get(node.conjunction)
        if conjunction is None:
            raise go_error(f"invalid conjunction value {node.conjunction}")
        parts: list[Condition] = []
        for child in node.children:
            if child is None:  # a JSON null child is a nil pointer, dereferenced
                raise go_error(NIL_DEREFERENCE)
            part = yield self.node(child)
            if part is not None:
                parts.append(part)
        return Junction(conjunction, parts) if parts else None

    def field(self, node: FilterNode) -> Leaf | None:
        op = node.operator
        if op is None:
            raise go_error("field specified with value but no operator")
        if node.value is None and op not in ("isEmpty", "notEmpty"):
            return Leaf("1")
        if op not in _OPERATORS:
            raise go_error(f"invalid operator {op}")
        try:
            sql = self.located(node, op)
        except PgError as err:
            # Postgres sees the SQL only when it runs, after the whole tree (and the sort) was
            # built: keep the error for then (a syntax error wins over later analysis errors).
            self.defer(err)
            self.params = []
            return Leaf("0")
        # each condition keeps its own parameters: _sql_tree.py may move conditions around
        params, self.params = self.params, []
        return None if sql is None else Leaf(sql, params)

    def defer(self, err: PgError) -> None:
        if self.deferred is None or (err.sqlstate == "42601" and self.deferred.sqlstate != "42601"):
            self.deferred = err

    def materialize(self, scope: FilterScope, sql: str, params: list[Any]) -> tuple[str, list[Any]]:
        """``sql`` evaluated now, as ``key IN (matching keys)`` (see _sql_tree.py). A Postgres
        error it raises is kept for when the master would raise it, like the others."""
        if self.deferred is not None:  # the query will never run
            return "0", []
        try:
            rows = fetch(self.db, f"SELECT {scope.key} {scope.from_sql} WHERE {sql}", params)
        except PgError as err:
            self.defer(err)
            return "0", []
        listed, listed_params = in_list([row[0] for row in rows])
        return f"{scope.key} IN {listed}", listed_params

    def located(self, node: FilterNode, op: str) -> str | None:
        location = node.location if node.location is not None else "LOCATION_TYPE_EXPERIMENT"
        if location == "LOCATION_TYPE_EXPERIMENT":
            if node.column_name not in self.experiment and node.column_name != "projectId":
                raise go_error(f"invalid experiment column {node.column_name}")
            if node.column_name == "projectId":
                # "project_id" unqualified: the experiments and the joined runs both have one
                raise pg_error('column reference "project_id" is ambiguous', "42702")
            return self.column_condition(self.experiment[node.column_name], op, node.value)
        if location == "LOCATION_TYPE_RUN":
            column = self.run.get(node.column_name)
            if column is None:
                raise go_error(f"invalid run column {node.column_name}")
            return self.column_condition(column, op, node.value)
        if location in (
            "LOCATION_TYPE_VALIDATIONS",
            "LOCATION_TYPE_TRAINING",
            "LOCATION_TYPE_CUSTOM_METRIC",
        ):
            return self.metric_condition(node, op)
        if location == "LOCATION_TYPE_HYPERPARAMETERS":
            return self.hp_condition(node, op)
        if location == "LOCATION_TYPE_RUN_HYPERPARAMETERS":
            return self.run_hp_condition(node, op)
        if location == "LOCATION_TYPE_RUN_METADATA":
            return self.metadata_condition(node, op)
        return None

    # --- experiment and run columns (expRunOperatorQuery) ----------------------------------
    def column_condition(self, column: Column, op: str, value: Any) -> str:
        if column.bare_comparison:
            self.bare_comparison_error(op)
        kind = column.type
        if op in ("contains", "notContains"):
            if kind.kind != "text":
                raise operator_missing(kind.name, "~~*" if op == "contains" else "!~~*", "unknown")
            pattern = self.param(f"%{go_sprint(value)}%")
            match = f"pg_like({column.sql}, {pattern}, 1)"
            return match if op == "contains" else f"NOT {match}"
        if op in ("isEmpty", "notEmpty"):
            if kind.kind != "text":
                parse_input("", kind)  # `col = ''` fails to parse for every other type
            if op == "isEmpty":
                return f"{column.sql} IS NULL OR {column.sql} = '' OR {column.sql} = '[]'"
            return f"{column.sql} IS NOT NULL AND {column.sql} != '' AND {column.sql} != '[]'"
        return self.comparison(column.sql, kind, op, Literal.of(value))

    def comparison(self, sql: str, kind: PgType, op: str, literal: Literal) -> str:
        value = sqlite_value(coerce(literal, kind, op), kind)
        if kind.kind == "enum":
            sql = enum_ordinal_sql(sql, kind)
        collate = " COLLATE pgtext" if kind.kind == "text" else ""
        return f"{sql} {op} {self.param(value)}{collate}"

    @staticmethod
    def bare_comparison_error(op: str) -> None:
        # `a != 'single' <op> v` does not parse (comparisons do not associate); LIKE binds tighter
        if op in _COMPARISONS:
            raise pg_error(f'syntax error at or near "{op}"', "42601")
        if op in ("contains", "notContains"):
            raise operator_missing("text", "!=", "boolean")
        raise pg_error(
            'syntax error at or near "="' if op == "isEmpty" else 'syntax error at or near "!="',
            "42601",
        )

    # --- metrics (summary metrics of the run; the best trial's for experiments) --------------
    def metric_condition(self, node: FilterNode, op: str) -> str:
        group, name, qualifier = parse_metric_name(node.column_name)
        text = f"pg_metric(r.summary_metrics, {self.param(group)}, {self.param(name)}, {self.param(qualifier)})"
        numeric = node.type == "COLUMN_TYPE_NUMBER"
        if op in ("contains", "notContains"):
            if numeric:
                raise operator_missing(FLOAT8.name, "~~" if op == "contains" else "!~~", "unknown")
            match = f"pg_like({text}, {self.param(f'%{go_sprint(node.value)}%')}, 0)"
            return match if op == "contains" else f"NOT {match}"
        if op in ("isEmpty", "notEmpty"):
            if numeric:
                return f"pg_float8_test({text}, {self.param(_OPERATORS[op])}, NULL)"
            return f"{text} {_OPERATORS[op]}"
        if numeric:  # `(...)::float8 <op> v`: summaries hold NaN, which SQLite cannot compare
            value = coerce(Literal.of(node.value), FLOAT8, op)
            return f"pg_float8_test({text}, {self.param(op)}, {self.param(value)})"
        return self.comparison(text, TEXT, op, Literal.of(node.value))

    # --- hyperparameter search space of the experiment (hpToSQL) -----------------------------
    def hp_condition(self, node: FilterNode, op: str) -> str:
        path = node.column_name.removeprefix("hp.").split(".")
        textual = node.type in ("COLUMN_TYPE_TEXT", "COLUMN_TYPE_DATE")
        value = node.value
        if op in ("isEmpty", "notEmpty"):
            spec: dict[str, Any] = {"op": op}
        elif textual:
            spec = self.text_hp_spec(op, value)
        else:
            spec = self.number_hp_spec(op, value)
        return f"pg_hp(e.config, {self.param(json.dumps(path))}, {self.param('text' if textual else 'number')}, {self.param(op)}, {self.param(json.dumps(spec))})"

    def text_hp_spec(self, op: str, value: Any) -> dict[str, Any]:
        if op in ("contains", "notContains"):
            if not isinstance(value, str):
                raise go_error(
                    f"interface conversion: interface {{}} is {go_type_name(value)}, not string"
                )
            return {"op": op, "pattern": f"%{value}%", "key": value}
        # const `val` (->> text) against the literal
        return {"op": op, "text": coerce(Literal.of(value), TEXT, op)}

    def number_hp_spec(self, op: str, value: Any) -> dict[str, Any]:
        literal = Literal.of(value)
        if op not in ("contains", "notContains"):
            return {"op": op, "number": coerce(literal, FLOAT8, op)}
        # `(vals)::jsonb ? '<v>'`: bun writes the value inside quotes the SQL already has, so a
        # non-empty string (or a map, written as quoted JSON) breaks the statement's syntax
        if isinstance(value, str) and value:
            raise pg_error(f'syntax error at or near "{_first_token(value)}"', "42601")
        if isinstance(value, (dict, list)):
            raise pg_error(f'syntax error at or near "{_first_token(go_json(value))}"', "42601")
        bound = coerce(literal, FLOAT8, "<=" if op == "contains" else ">=")
        return {"op": op, "key": bun_float(float(bound)), "number": bound}

    # --- run hyperparameters (runHpToSQL) ----------------------------------------------------
    def run_hp_condition(self, node: FilterNode, op: str) -> str:
        name = self.param(node.column_name.removeprefix("hp."))
        kind, column = _HPARAM_COLUMNS.get(node.type or "", (BOOL, "bool_val"))
        if op == "isEmpty":
            return f"r.id NOT IN (SELECT run_id FROM run_hparams WHERE hparam = {name})"
        if op == "notEmpty":
            return f"r.id IN (SELECT run_id FROM run_hparams WHERE hparam = {name})"
        value = node.value
        if op in ("contains", "notContains"):
            if not isinstance(value, str):
                raise go_error(
                    f"interface conversion: interface {{}} is {go_type_name(value)}, not string"
                )
            pattern = f"%{value}%"
            if kind.kind != "text":  # `number_val = '%v%'`, `bool_val = '%v%'`
                parse_input(pattern, kind)
            condition = f"pg_like({column}, {self.param(pattern)}, 0)"
            if op == "notContains":
                condition = f"NOT {condition}"
        else:
            condition = self.comparison(column, kind, op, Literal.of(value))
        return f"r.id IN (SELECT run_id FROM run_hparams WHERE hparam = {name} AND {condition})"

    # --- run metadata (runMetadataToSQL over runs_metadata_index) -----------------------------
    def metadata_condition(self, node: FilterNode, op: str) -> str:
        key = node.column_name.removeprefix("metadata.")
        value = node.value
        if op in ("contains", "notContains") and not isinstance(value, str):
            raise go_error(
                f"interface conversion: interface {{}} is {go_type_name(value)}, not string"
            )
        predicate = self.metadata_predicate(node.type or "", op, value)
        ids = [
            run
            for run, entries in self.metadata_index()
            if any(e.key == key and predicate(e) for e in entries)
        ]
        membership = "NOT IN" if op == "isEmpty" else "IN"
        return f"r.id {membership} (SELECT value FROM json_each({self.param(json.dumps(ids))}))"

    def metadata_predicate(
        self, column_type: str, op: str, value: Any
    ) -> Callable[[_MetadataEntry], bool]:
        if op in ("isEmpty", "notEmpty"):
            return lambda entry: True
        if op in ("contains", "notContains"):
            pattern = f"%{value}%"
            if column_type == "COLUMN_TYPE_NUMBER":
                raise pg_error('column "number_value" does not exist', "42703")
            if column_type != "COLUMN_TYPE_TEXT":
                parse_input(pattern, BOOL)
            wanted = op == "contains"
            return lambda entry: (
                entry.string is not None
                and like(entry.string, pattern, case_insensitive=False) == wanted
            )
        literal = Literal.of(value)
        if column_type == "COLUMN_TYPE_NUMBER":
            as_int, as_float = coerce(literal, INT4, op), coerce(literal, FLOAT8, op)
            return lambda entry: (
                (entry.integer is not None and _compare(entry.integer, op, as_int))
                or (entry.float is not None and _compare(entry.float, op, as_float))
            )
        if column_type == "COLUMN_TYPE_TEXT":
            text = coerce(literal, VARCHAR, op)
            return lambda entry: entry.string is not None and _compare_text(entry.string, op, text)
        if column_type == "COLUMN_TYPE_DATE":
            moment = coerce(literal, TIMESTAMP, op)
            return lambda entry: (
                entry.timestamp is not None and _compare(entry.timestamp, op, moment)
            )
        flag = coerce(literal, BOOL, op)
        return lambda entry: entry.boolean is not None and _compare(entry.boolean, op, flag)

    def metadata_index(self) -> list[tuple[int, list[_MetadataEntry]]]:
        if self._metadata is None:
            rows = fetch(
                self.db,
                "SELECT id, metadata FROM trials WHERE metadata IS NOT NULL AND metadata != 'null'",
            )
            self._metadata = [(row[0], flatten_metadata(json.loads(row[1]))) for row in rows]
        return self._metadata


_HPARAM_COLUMNS: Final = {
    "COLUMN_TYPE_NUMBER": (FLOAT8, "number_val"),
    "COLUMN_TYPE_TEXT": (TEXT, "text_val"),
}


def _first_token(text: str) -> str:
    token = re.match(r"\s*([^\s']+)", text)
    return token.group(1) if token else text


def bun_float(value: float) -> str:
    """A float64 as bun writes it into SQL (``strconv.AppendFloat(v, 'f', -1, 64)``)."""
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _compare_text(left: str, op: str, right: str) -> bool:
    return _compare(text_compare(left, right), op, 0)


def _pg_float_key(value: float) -> tuple[int, float]:
    # float8 comparisons: NaN equals NaN and sorts above every number
    return (1, 0.0) if math.isnan(value) else (0, value)


# --- runs_metadata_index ------------------------------------------------------------------------
@dataclass(frozen=True)
class _MetadataEntry:
    key: str
    string: str | None = None
    integer: int | None = None
    float: float | None = None
    boolean: bool | None = None
    timestamp: datetime | None = None
    array: bool = False


_METADATA_TIMESTAMP: Final = re.compile(
    r"\d{4}-\d{2}(-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}))?)?"
)


def flatten_metadata(document: Any) -> list[_MetadataEntry]:
    """``run.FlattenMetadata``: one entry per leaf, dotted keys, array elements under the array's key."""
    entries: list[_MetadataEntry] = []

    def walk(prefix: str, value: Any, in_array: bool) -> None:
        if isinstance(value, dict):
            if not value:
                entries.append(_MetadataEntry(prefix))
            elif in_array:
                entries.append(_MetadataEntry(prefix, string=go_json(value), array=True))
            else:
                for key, item in value.items():
                    walk(f"{prefix}.{key}" if prefix else key, item, False)
        elif isinstance(value, list):
            if not value:
                entries.append(_MetadataEntry(prefix, array=True))
            for item in value:
                walk(prefix, item, True)
        else:
            entries.append(_leaf(prefix, value, in_array))

    if isinstance(document, dict):
        walk("", document, False)
    return entries


def _leaf(key: str, value: Any, in_array: bool) -> _MetadataEntry:
    if isinstance(value, bool):
        return _MetadataEntry(key, boolean=value, array=in_array)
    if isinstance(value, (int, float)):
        number = float(value)
        if number.is_integer():
            return _MetadataEntry(key, integer=int(number), array=in_array)
        return _MetadataEntry(key, float=number, array=in_array)
    if isinstance(value, str):
        if _METADATA_TIMESTAMP.fullmatch(value):
            padded = value if len(value) > 7 else value + "-01"
            try:
                return _MetadataEntry(
                    key, timestamp=parse_timestamp(padded, TIMESTAMPTZ), array=in_array
                )
            except ApiError:
                pass
        return _MetadataEntry(key, string=value, array=in_array)
    return _MetadataEntry(key, array=in_array)


def metadata_type(entry: _MetadataEntry) -> str:
    """The column type GetProjectColumns derives for an index entry."""
    if entry.array:
        return "array"
    if entry.string is not None:
        return "string"
    if entry.integer is not None or entry.float is not None:
        return "number"
    if entry.timestamp is not None:
        return "date"
    if entry.boolean is not None:
        return "boolean"
    return "string"


# --- the hyperparameter CASE expression, evaluated per experiment ------------------------------
def _sql_hp(config: Any, path: str, branch: str, op: str, spec_text: str) -> int | None:
    if config is None:
        return None
    definition: Any = json.loads(config).get("hyperparameters")
    for key in json.loads(path):
        definition = definition.get(key) if isinstance(definition, dict) else None
    if not isinstance(definition, dict):
        return 0  # `->>'type'` is NULL: no WHEN matches, ELSE false
    spec = json.loads(spec_text)
    kind = pg_text(definition.get("type"))
    result = (_text_hp if branch == "text" else _number_hp)(definition, kind, op, spec)
    return None if result is None else int(result)


def _text_hp(
    definition: dict[str, Any], kind: str | None, op: str, spec: dict[str, Any]
) -> bool | None:
    val, vals = pg_text(definition.get("val")), pg_text(definition.get("vals"))
    if op in ("isEmpty", "notEmpty"):
        target = val if kind == "const" else vals if kind == "categorical" else _NO_MATCH
        if target is _NO_MATCH:
            return False
        return (target is None) == (op == "isEmpty")
    if op in ("contains", "notContains"):
        if kind == "const":
            if val is None:
                return None
            return like(val, spec["pattern"], case_insensitive=False) == (op == "contains")
        if kind == "categorical":
            has = _jsonb_has_key(vals, spec["key"])
            return has if op == "contains" else has is not True
        return False
    if kind != "const":
        return False
    if val is None:
        return None
    return _compare_text(val, op, spec["text"])


_NO_MATCH: Final = object()


def _number_hp(
    definition: dict[str, Any], kind: str | None, op: str, spec: dict[str, Any]
) -> bool | None:
    if op in ("isEmpty", "notEmpty"):
        empty = op == "isEmpty"
        if kind == "const":
            return (_sql_float8(pg_text(definition.get("val"))) is None) == empty
        if kind == "categorical":
            return (pg_text(definition.get("vals")) is None) == empty
        if kind in ("int", "double", "log"):
            return not empty
        return False
    bound = spec["number"]
    if op in ("contains", "notContains"):
        if kind == "categorical":
            has = _jsonb_has_key(pg_text(definition.get("vals")), spec["key"])
            return has if op == "contains" else has is not True
        if kind in ("int", "double", "log"):
            low, high = _bound(definition, "minval"), _bound(definition, "maxval")
            first, second = ("<=", ">=") if op == "contains" else (">=", "<=")
            return _or(_float_compare(low, first, bound), _float_compare(high, second, bound))
        return False
    if kind == "const":
        return _float_compare(_bound(definition, "val"), op, bound)
    if kind in ("int", "double", "log"):
        return _or(_float_compare(_bound(definition, "minval"), op, bound),
                   _float_compare(_bound(definition, "maxval"), op, bound))  # fmt: skip
    return False


def _bound(definition: dict[str, Any], key: str) -> float | None:
    text = pg_text(definition.get(key))
    return None if text is None else _parse_number(text, FLOAT8)


def _float_compare(left: float | None, op: str, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    return _compare(_pg_float_key(left), op, _pg_float_key(float(right)))


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a or b:
        return True
    return None if a is None or b is None else False


def _jsonb_has_key(text: str | None, key: str) -> bool | None:
    """``text::jsonb ? key``: an array holding the string ``key`` (or an object with that key)."""
    if text is None:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise pg_error("invalid input syntax for type json", "22P02") from None
    if isinstance(document, list):
        return any(isinstance(item, str) and item == key for item in document)
    if isinstance(document, dict):
        return key in document
    return isinstance(document, str) and document == key


@dataclass
class CompiledFilter:
    """A filter's WHERE condition (None: no condition), its parameters, and the Postgres error
    the master's query would fail with (raise it once the rest of the request was checked)."""

    sql: str | None
    params: list[Any]
    deferred: PgError | None

    def check(self) -> None:
        if self.deferred is not None:
            raise self.deferred


@dataclass(frozen=True)
class FilterScope:
    """The rows a filter selects: ``key`` names one (``e.id``, ``r.id``), ``from_sql`` is the
    ``FROM`` that binds the aliases its conditions use."""

    key: str
    from_sql: str


def compile_filter(db: Session, root: FilterRoot, now: str, scope: FilterScope) -> CompiledFilter:
    """Compile a decoded filter; Go errors (bad operator, column, conjunction...) raise at once.

    Table aliases: ``e`` experiments, ``r`` trials (the run, or the experiment's best trial),
    ``p`` projects, ``w`` workspaces. ``now`` is the transaction time in :func:`db_time` form.
    A condition too large for one SQLite statement is partly evaluated here (_sql_tree.py)."""
    compiler = _Compiler(db, now)
    condition = run(compiler.node(root.filter_group))
    if condition is None:
        return CompiledFilter(None, [], compiler.deferred)
    written = render(condition, lambda sql, params: compiler.materialize(scope, sql, params))
    return CompiledFilter(written.sql, list(written.params), compiler.deferred)


# ================================================================================================
# Sort strings (sortExperiments, sortRuns)
# ================================================================================================
_TEXT_SORT: Final = " COLLATE pgtext"


def _experiment_sort_columns(now: str) -> dict[str, str]:
    text = {name: sql + _TEXT_SORT for name, sql in _EXPERIMENT_TEXT.items() if name != "tags"}
    return {
        **text,
        "id": "e.id",
        "startTime": "e.start_time",
        "endTime": "e.end_time",
        "state": enum_ordinal_sql("e.state", EXPERIMENT_STATE),
        "numTrials": "(SELECT COUNT(*) FROM trials t WHERE t.experiment_id = e.id)",
        "progress": "COALESCE(e.progress, 0)",
        "user": "COALESCE(NULLIF(u.display_name, ''), u.username)" + _TEXT_SORT,
        "forkedFrom": "e.parent_id",
        "projectId": "e.project_id",
        "checkpointSize": "e.checkpoint_size",
        "checkpointCount": "e.checkpoint_count",
        "duration": f"pg_round(pg_duration(e.end_time, e.start_time, '{now}'))",
        "searcherMetricsVal": _SEARCHER_METRIC_VAL,
        "externalExperimentId": "e.external_experiment_id" + _TEXT_SORT,
        "externalTrialId": "r.external_run_id" + _TEXT_SORT,
    }


def _run_sort_columns(now: str) -> dict[str, str]:
    return {
        "id": "r.id",
        "experimentDescription": _EXPERIMENT_TEXT["description"] + _TEXT_SORT,
        "experimentName": _EXPERIMENT_TEXT["name"] + _TEXT_SORT,
        "searcherType": _EXPERIMENT_TEXT["searcherType"] + _TEXT_SORT,
        "searcherMetric": _EXPERIMENT_TEXT["searcherMetric"] + _TEXT_SORT,
        "startTime": "r.start_time",
        "endTime": "r.end_time",
        "state": enum_ordinal_sql("r.state", TRIAL_STATE),
        "experimentProgress": "COALESCE(e.progress, 0)",
        "user": "u.username" + _TEXT_SORT,
        "forkedFrom": "e.parent_id",
        "resourcePool": _EXPERIMENT_TEXT["resourcePool"] + _TEXT_SORT,
        "projectId": "e.project_id",
        "checkpointSize": "r.checkpoint_size",
        "checkpointCount": "r.checkpoint_count",
        "duration": f"pg_round(pg_duration(r.end_time, r.start_time, '{now}'))",
        "searcherMetricsVal": "r.searcher_metric_value",
        "externalExperimentId": "e.external_experiment_id" + _TEXT_SORT,
        "externalRunId": "r.external_run_id" + _TEXT_SORT,
        "experimentId": "e.id",
        "isExpMultitrial": "((e.config ->> '$.searcher.name') != 'single')",
        "parentArchived": "(w.archived OR p.archived)",
        "localId": "r.local_id",
        "archived": "COALESCE((r.archived OR e.archived), 0)",
    }


def _json_path(keys: Sequence[str]) -> str:
    return "$" + "".join(f'."{key}"' for key in keys)


def _sort(
    sort: str, columns: Mapping[str, str], prefixes: Mapping[str, str], id_sql: str
) -> tuple[str, list[Any]]:
    """Parse ``col=asc|desc[,...]``: 400 for a bad parameter, direction or column; 500 for a bad
    metric name. Both directions put NULLs last; ``id ASC`` breaks ties unless id is sorted on."""
    terms: list[str] = []
    params: list[Any] = []
    has_id = False
    for part in sort.split(","):
        pieces = part.split("=")
        if len(pieces) != 2:
            raise invalid_argument(f"invalid sort parameter: {part}")
        name, direction = pieces
        if direction not in ("asc", "desc"):
            raise invalid_argument(f"invalid sort direction: {direction}")
        order = f"{direction.upper()} NULLS LAST"
        prefix = next((p for p in prefixes if name.startswith(p)), None)
        if prefix is not None:
            keys = name.replace("'", "").removeprefix(prefix).split(".")
            params.append(_json_path(keys))
            terms.append(f"({prefixes[prefix]} -> ?) COLLATE pgjsonb {order}")
        elif "." in name:
            group, metric, qualifier = parse_metric_name(name)
            params.extend([group, metric, qualifier])
            terms.append(f"pg_metric(r.summary_metrics, ?, ?, ?) COLLATE pgtext {order}")
        elif name in columns:
            has_id = has_id or name == "id"
            terms.append(f"{columns[name]} {order}")
        else:
            raise invalid_argument(f"invalid sort col: {name}")
    if not has_id:
        terms.append(f"{id_sql} ASC")
    return ", ".join(terms), params


def experiment_sort(sort: str, now: str) -> tuple[str, list[Any]]:
    """``sortExperiments``: ``hp.a.b`` sorts by the jsonb search-space definition."""
    return _sort(
        sort, _experiment_sort_columns(now), {"hp.": "e.config -> '$.hyperparameters'"}, "e.id"
    )


def run_sort(sort: str, now: str) -> tuple[str, list[Any]]:
    """``sortRuns``: ``hp.a.b`` sorts by the run's jsonb value, ``metadata.a`` by its metadata."""
    return _sort(
        sort, _run_sort_columns(now), {"hp.": "r.hparams", "metadata.": "r.metadata"}, "r.id"
    )
