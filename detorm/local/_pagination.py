"""The master's two pagination algorithms (``reference/determined-rest-semantics.md`` §1).

``page_info`` (SQL side: GetExperiments, SearchExperiments, SearchRuns, GetExperimentTrials):
limit 0 means 100, -1 everything, -2 only the pagination; an offset out of range gives an empty
page. ``api.Paginate`` (in memory: checkpoints, models, workspaces, projects, users): limit 0 means
everything, and an offset out of range is a 400.

``bunutils.Paginate`` (GetTemplates) computes the indices as ``page_info`` does, but bun writes no
``LIMIT`` unless it is positive: see :func:`bun_page`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from detorm._wire import Pagination

from ._errors import internal, invalid_argument

__all__ = ["Page", "bun_page", "in_memory_page", "sql_page"]

T = TypeVar("T")

SQL_DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Page:
    """Rows ``start:end`` of ``total``, and the pagination object to return."""

    start: int
    end: int
    pagination: Pagination

    def slice(self, rows: list[T]) -> list[T]:
        return rows[self.start : self.end]


def _page_info(offset: int, limit: int, total: int) -> tuple[int, int]:
    """``page_info()``'s start and end indices (a limit below -2 ends before the start)."""
    if offset > total or offset < -total:
        start = total
    elif offset < 0:
        start = total + offset
    else:
        start = offset
    if limit == -2:
        return start, start
    if limit == -1:
        return start, total
    if limit == 0:
        return start, min(start + SQL_DEFAULT_LIMIT, total)
    return start, min(start + limit, total)


def sql_page(offset: int, limit: int, total: int) -> Page:
    """``page_info()``; a limit below -2 is a negative SQL LIMIT, which Postgres rejects."""
    if limit < -2:
        raise internal("ERROR: LIMIT must not be negative (SQLSTATE 2201W)")
    start, end = _page_info(offset, limit, total)
    return Page(start, end, _pagination(offset, limit, start, end, total))


def in_memory_page(offset: int, limit: int, total: int) -> Page:
    """``api.Paginate``; a negative limit slices backwards and panics (500)."""
    start = total + offset if offset < 0 else offset
    if not 0 <= start <= total:
        raise invalid_argument("offset out of bounds")
    end = total if limit == 0 or start + limit > total else start + limit
    if end < start:
        raise internal(f"runtime error: slice bounds out of range [{start}:{end}]")
    return Page(start, end, _pagination(offset, limit, start, end, total))


def bun_page(offset: int, limit: int, total: int) -> Page:
    """``bunutils.Paginate`` (``master/internal/db/bunutils/paginate.go``): the indices of
    ``page_info``, then ``q.Offset(start).Limit(end - start)``. bun v1.2.0 writes ``LIMIT`` only
    when it is positive, so a page of no rows by its indices (limit -2, or any limit below it,
    whose end index is ``start + limit``) lists every row from ``start`` on; nothing fails."""
    start, end = _page_info(offset, limit, total)
    rows_end = end if end > start else total
    return Page(start, rows_end, _pagination(offset, limit, start, end, total))


def _pagination(offset: int, limit: int, start: int, end: int, total: int) -> Pagination:
    return Pagination(offset=offset, limit=limit, start_index=start, end_index=end, total=total)
