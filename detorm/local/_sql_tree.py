"""AND/OR conditions of any size written as SQL that SQLite accepts.

The master writes a filter's groups as nested parentheses and Postgres takes them at any size
the filter decoder allows. SQLite refuses three things such a condition can reach: about 90
nested parentheses (its parser stack holds 100 entries; 30 levels of alternating AND/OR), an
expression tree deeper than 1,000 (an OR of 1,000 ids, which the web UI sends for a
selection), and more than 32,766 parameters. So a condition is written here:

* without the parentheses that change nothing (a group of one, a group inside a group with the
  same conjunction), which leaves only alternations of AND and OR;
* with wide groups split into nested chunks of :data:`FANOUT` (``a OR b OR ...`` becomes
  ``(...) OR (...)``, a tree of depth log₃₂ n);
* and with the part that still exceeds a limit evaluated on its own first: ``materialize``
  runs it and the part becomes ``key IN (the matching keys)``, one parameter. Under AND and OR
  a part is true for exactly the rows whose key it matched, so the result is the same. A
  statement also gets at most :data:`MAX_TERMS` conditions: SQLite plans an OR of n terms in
  about n² time (an OR of 28,000 ids took 32 s in one statement; 40,000 take 2 s in pieces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ._trampoline import Steps, run

__all__ = ["Condition", "Junction", "Leaf", "render"]

FANOUT: Final = 32
MAX_TERMS: Final = FANOUT * FANOUT
MAX_PARAMS: Final = 30_000  # SQLite's 32,766, less room for the query around the condition
MAX_DEPTH: Final = 16  # parentheses, leaving room in the parser stack for the query around


@dataclass(frozen=True)
class Leaf:
    """A condition as SQL text with its own parameters."""

    sql: str
    params: Sequence[Any] = ()


@dataclass(frozen=True)
class Junction:
    """``children`` joined by ``conjunction`` (``"AND"`` or ``"OR"``), each in parentheses."""

    conjunction: str
    children: list[Condition] = field(default_factory=list)


Condition = Leaf | Junction

Materialize = Callable[[str, list[Any]], tuple[str, list[Any]]]
"""Evaluate a condition (SQL, parameters) now; the condition that replaces it."""


@dataclass(frozen=True)
class _Written:
    sql: str
    params: list[Any]
    depth: int  # nesting of parentheses
    terms: int  # conditions joined


def render(condition: Condition, materialize: Materialize) -> Leaf:
    """``condition`` as one SQL condition within SQLite's limits."""
    written = run(_write(condition, materialize))
    return Leaf(written.sql, written.params)


def _write(condition: Condition, materialize: Materialize) -> Steps[_Written]:
    if isinstance(condition, Leaf):
        return _Written(condition.sql, list(condition.params), _paren_depth(condition.sql), 1)
    parts = []
    for child in _operands(condition):
        parts.append((yield _write(child, materialize)))
    return _join(condition.conjunction, parts, materialize)


def _operands(junction: Junction) -> Iterator[Condition]:
    """The children, with groups of one unwrapped and same-conjunction groups spliced in."""
    pending = list(reversed(junction.children))
    while pending:
        child = pending.pop()
        while isinstance(child, Junction) and len(child.children) == 1:
            child = child.children[0]
        if isinstance(child, Junction) and child.conjunction == junction.conjunction:
            pending.extend(reversed(child.children))
        else:
            yield child


def _join(conjunction: str, parts: list[_Written], materialize: Materialize) -> _Written:
    if len(parts) == 1:
        return parts[0]
    while len(parts) > FANOUT:
        parts = [
            _join(conjunction, parts[i : i + FANOUT], materialize)
            for i in range(0, len(parts), FANOUT)
        ]
    while (measure := _excess(parts)) is not None:
        largest = max(range(len(parts)), key=lambda i: measure(parts[i]))
        sql, params = materialize(parts[largest].sql, parts[largest].params)
        parts[largest] = _Written(sql, params, _paren_depth(sql), 1)
    return _Written(
        f" {conjunction} ".join(f"({p.sql})" for p in parts),
        [param for p in parts for param in p.params],
        max(p.depth for p in parts) + 1,
        sum(p.terms for p in parts),
    )


def _excess(parts: list[_Written]) -> Callable[[_Written], int] | None:
    """What makes ``parts``, joined, too large for one statement (None: nothing)."""
    if max(p.depth for p in parts) >= MAX_DEPTH:
        return lambda p: p.depth
    if sum(p.terms for p in parts) > MAX_TERMS:
        return lambda p: p.terms
    if sum(len(p.params) for p in parts) > MAX_PARAMS:
        return lambda p: len(p.params)
    return None


def _paren_depth(sql: str) -> int:
    """How deeply parentheses nest in ``sql`` (outside string literals)."""
    depth = deepest = 0
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif not quoted and char == ")":
            depth -= 1
    return deepest
