"""How detorm's objects show themselves: short ``repr``s and Jupyter's ``_repr_html_`` tables.

Classes only declare what they show (a resource's ``_repr_fields``); the rendering is here, once.
Every function reads what the object already holds: a repr never sends a request (a hidden
round trip each time a notebook displays a value), never raises for an unsaved object or a field
that was not loaded, and never shows a secret (a password, a token, the credentials of a URL or
of a storage config). This module sits below every other one: it imports only the wire types and
the errors, and reads the objects it renders through their attributes (duck typing), so that
resources, queries, plans and sessions can all call it without an upward import.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from ._wire import Timestamp, WireEnum
from .errors import DetormError

__all__ = [
    "bulk_html",
    "calls_html",
    "plan_html",
    "query_html",
    "resource_html",
    "resource_repr",
    "resource_repr_pairs",
    "session_html",
    "short",
    "stream_html",
    "stream_repr",
    "table",
]

# Longest text of one value in a repr, and in a table's cell (the rest is elided).
_MAX_TEXT: Final = 80
_MAX_CELL: Final = 200
# Rows of a table shown before "... N more".
MAX_ROWS: Final = 50
# Keys whose values are secrets wherever they appear (storage configs, request bodies).
_SECRET_KEY: Final = re.compile(
    r"pass(word)?|secret|token|credential|access_key|api_key|private_key|connection_string",
    re.IGNORECASE,
)
_HIDDEN: Final = "***"


# --- values ------------------------------------------------------------------------------------
def short(value: Any, limit: int = _MAX_TEXT) -> str:
    """A value as a repr shows it: enums by their short name (``COMPLETED``), timestamps in
    RFC 3339, URLs without their credentials, secrets hidden, long texts elided."""
    return _elide(_text(value), limit)


def _text(value: Any) -> str:
    if isinstance(value, WireEnum):
        return value.short
    if isinstance(value, Timestamp):
        return value.rfc3339()
    if isinstance(value, str):
        return repr(redact_url(value))
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_text(v)}" for k, v in redacted(value).items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_text(v) for v in value)
        return (
            f"({inner},)"
            if isinstance(value, tuple) and len(value) == 1
            else (f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
        )
    return repr(value)


def _elide(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact_url(text: str) -> str:
    """``text`` without the user and password of a URL it is (``https://u:p@host`` ->
    ``https://***@host``); other texts unchanged."""
    if "@" not in text or "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.netloc or "@" not in parts.netloc:
        return text
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{_HIDDEN}@{host}"))


def redacted(value: Mapping[Any, Any]) -> dict[Any, Any]:
    """A copy of ``value`` whose secret-named keys (at any depth) hold ``***``."""
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(key, str) and _SECRET_KEY.search(key) and item not in (None, ""):
            out[key] = _HIDDEN
        elif isinstance(item, Mapping):
            out[key] = redacted(item)
        else:
            out[key] = item
    return out


# --- resources ---------------------------------------------------------------------------------
def _declared(cls: type[Any]) -> tuple[str, ...]:
    fields: tuple[str, ...] = getattr(cls, "_repr_fields", ()) or (cls._key_field,)
    return fields


def resource_repr_pairs(obj: Any) -> list[tuple[str, Any]]:
    """The declared fields (``_repr_fields``) ``obj`` holds, in declared order (others are not
    loaded, or not known before a new object is created)."""
    return [(name, _field(obj, name)) for name in _declared(type(obj)) if name in obj.__dict__]


def _field(obj: Any, name: str) -> Any:
    """A field's value as displays may show it (a hidden one: its URL's scheme and host)."""
    value = obj.__dict__[name]
    if name in type(obj)._hidden_fields:
        return hidden_url(value) if isinstance(value, str) else _HIDDEN
    return value


def hidden_url(text: str) -> str:
    """A secret URL shown as its scheme and host only (``https://hooks.slack.com/***``)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return _HIDDEN
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}/{_HIDDEN}" if parts.scheme and host else _HIDDEN


def resource_repr(obj: Any) -> str:
    """``Experiment(id=155, name='mnist', state=COMPLETED)``; a new (unsaved) object says so:
    ``Workspace(new, name='scratch')``."""
    parts = [f"{name}={short(value)}" for name, value in resource_repr_pairs(obj)]
    if _is_new(obj):
        parts.insert(0, "new")
    return f"{type(obj).__name__}({', '.join(parts)})"


def _is_new(obj: Any) -> bool:
    return type(obj)._key_field not in obj.__dict__


def resource_html(obj: Any) -> str:
    """A compact table of the fields ``obj`` holds (in declaration order), and the names of
    those not loaded."""
    cls = type(obj)
    values = obj.__dict__
    fields = list(cls.model_fields)
    rows = [(name, short(_field(obj, name), _MAX_CELL)) for name in fields if name in values]
    missing = [name for name in fields if name not in values]
    notes = []
    if _is_new(obj):
        notes.append("new: created on the master by session.add() then session.commit()")
    if missing:
        notes.append("not loaded: " + ", ".join(missing))
    return table(resource_repr(obj), ("field", "value"), rows, notes=notes)


# --- queries, plans, streams, results, sessions -----------------------------------------------
def query_html(query: Any) -> str:
    """What a query will send (its plan; no request is sent to draw it): the first page's
    calls, the paging, what is left to the client, and how to see the rows."""
    title = repr(query)
    try:
        explanation = query.explain()
    except DetormError as err:  # a query that cannot be planned still displays, with the reason
        return table(title, ("plan",), [(f"cannot be planned: {err}",)])
    rows = [(call.method, _call_target(call)) for call in explanation.calls]
    notes = [f"paging: {explanation.paging}"]
    if explanation.client_side:
        notes.append(f"filtered by the client: {explanation.client_side}")
    if explanation.client_order:
        notes.append("ordered by the client: " + ", ".join(explanation.client_order))
    notes += [f"note: {note}" for note in explanation.notes]
    notes.append(
        "not run: a display sends no request; rows with .all(), q[:10].all() or .to_pandas()"
    )
    return table(title, ("method", "request"), rows, notes=notes)


def _call_target(call: Any) -> str:
    target: str = call.url
    if call.body is not None:
        body = redacted(call.body) if isinstance(call.body, Mapping) else call.body
        target += " " + _text(body)
    return target


def calls_html(title: str, calls: Iterable[Any], notes: Sequence[str] = ()) -> str:
    """A table of REST calls (a :class:`~detorm._plan._call.Call` each)."""
    return table(title, ("method", "request"), [(c.method, _call_target(c)) for c in calls], notes)


def plan_html(plan: Any) -> str:
    """The pending flush plan: the objects read again first, then each call with its stage and
    the changes it carries."""
    rows: list[tuple[Any, ...]] = [
        ("read first", "GET", f"{type(obj).__name__} {short(obj.__dict__.get(obj._key_field))}")
        for obj in plan.reads
    ]
    for planned in plan.calls:
        carried = "; ".join(str(change) for change in planned.changes)
        rows.append(
            (planned.stage, planned.call.method, f"{_call_target(planned.call)}  <- {carried}")
        )
    title = f"pending: {len(plan.calls)} call(s)" if rows else "pending: nothing to send"
    return table(title, ("stage", "method", "request and changes"), rows)


def bulk_html(result: Any) -> str:
    """A bulk action's outcome per id."""
    failed = result.failed
    rows = [(key, "ok" if not failed.get(key) else f"failed: {failed[key]}") for key in
            sorted(result.outcomes)]  # fmt: skip
    title = f"{result.action}: {len(result.succeeded)} ok, {len(failed)} failed"
    return table(title, ("id", "outcome"), rows)


def stream_repr(stream: Any, what: Sequence[tuple[str, Any]]) -> str:
    """``MetricsStream(trials=[12, 13], group='validation', cache=True)``."""
    parts = ", ".join(f"{name}={short(value)}" for name, value in what)
    return f"{type(stream).__name__}({parts})"


def stream_html(stream: Any, calls: Sequence[Any], what: Sequence[tuple[str, Any]]) -> str:
    """A lazy stream (metrics, profiler samples): what it reads, and the request it starts
    with. Nothing is read to draw it."""
    rows = [(name, short(value)) for name, value in what]
    rows += [("request", f"{c.method} {_call_target(c)}") for c in calls]
    notes = ["not read: a display sends no request; iterate it, or .to_pandas()"]
    return table(type(stream).__name__, ("", ""), rows, notes=notes)


def session_html(session: Any, facts: Sequence[tuple[str, Any]]) -> str:
    """A session: its master, user and counters (never its token)."""
    rows = [(name, short(value) if not isinstance(value, str) else redact_url(value))
            for name, value in facts]  # fmt: skip
    return table(f"detorm.{type(session).__name__}", ("", ""), rows)


# --- HTML ----------------------------------------------------------------------------------------
def table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], notes: Sequence[str] = ()
) -> str:
    """A small HTML table, every text escaped; at most :data:`MAX_ROWS` rows (the count of the
    others is said)."""
    cells = "".join(f"<th>{_escaped(h)}</th>" for h in header) if any(header) else ""
    head = f"<thead><tr>{cells}</tr></thead>" if cells else ""
    shown = rows[:MAX_ROWS]
    body = "".join(
        "<tr>" + "".join(f"<td>{_escaped(c)}</td>" for c in row) + "</tr>" for row in shown
    )
    extra = list(notes)
    if len(rows) > MAX_ROWS:
        extra.insert(0, f"... {len(rows) - MAX_ROWS} more")
    footer = "".join(f"<div><small>{_escaped(n)}</small></div>" for n in extra)
    return (
        f'<div class="detorm"><div><strong>{_escaped(title)}</strong></div>'
        f'<table style="text-align:left">{head}<tbody>{body}</tbody></table>{footer}</div>'
    )


def _escaped(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else str(value), quote=True)
