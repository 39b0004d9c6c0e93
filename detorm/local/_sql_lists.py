"""Lists of values in SQL (``x IN (...)``) of any length.

The master's bun writes ``bun.In(ids)`` into the query text, so Postgres takes a million ids in
one statement; SQLite allows at most 32,766 parameters per statement. Here a whole list is one
parameter, a JSON array, read back with ``json_each``: one statement, whatever the length.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select

__all__ = ["in_list", "orm_in"]


def in_list(values: Collection[Any]) -> tuple[str, list[Any]]:
    """The ``(...)`` of ``x IN (...)`` and its parameters. An empty list is ``(NULL)``, as bun
    writes it: nothing matches, with ``IN`` or ``NOT IN``."""
    if not values:
        return "(NULL)", []
    return "(SELECT value FROM json_each(?))", [json.dumps(list(values))]


def orm_in(column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN (values)`` for SQLAlchemy queries (its ``in_`` binds one parameter a value)."""
    listed: Select[tuple[Any]] = select(literal_column("value")).select_from(
        func.json_each(json.dumps(list(values)))
    )
    result: ColumnElement[bool] = column.in_(listed)
    return result
