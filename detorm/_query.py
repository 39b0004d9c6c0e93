"""Queries: immutable, chainable, lazy, typed per resource.

``Experiment.query().filter(state="ACTIVE").order_by("start_time")`` builds a query; nothing is
sent until it is iterated (page by page), counted, sliced into a list, or asked for one row.
The planner (``_planner.py``) decides the REST calls; ``explain()`` shows them.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, Unpack, overload

from . import _executor
from ._actions import bulk_action
from ._conditions import (
    And,
    Condition,
    Leaf,
    Ordering,
    check_leaf,
    parse_lookup,
    parse_ordering,
    unwrap,
)
from ._edits import BulkResult
from ._evaluate import matches, sort_key
from ._inputs import INT32_MAX, check_int, require
from ._lookups import (
    CheckpointLookups,
    CheckpointOrderKey,
    ExperimentLookups,
    ExperimentOrderKey,
    ModelLookups,
    ModelOrderKey,
    ModelVersionLookups,
    ModelVersionOrderKey,
    ProjectLookups,
    ProjectOrderKey,
    TrialLookups,
    TrialOrderKey,
    UserLookups,
    UserOrderKey,
    WorkspaceLookups,
    WorkspaceOrderKey,
)
from ._planner import DEFAULT_PAGE_SIZE, Plan, plan_query
from ._resources._base import Resource, TagSet
from ._resources._models import (
    Checkpoint,
    Experiment,
    Model,
    ModelVersion,
    Project,
    Trial,
    User,
    Workspace,
)
from ._transport import Call
from ._wire import WireEnum
from .errors import NotFound, QueryError

if TYPE_CHECKING:
    from ._session import Session

__all__ = [
    "CheckpointQuery",
    "Explanation",
    "ExperimentQuery",
    "ModelQuery",
    "ModelVersionQuery",
    "ProjectQuery",
    "Query",
    "TrialQuery",
    "UserQuery",
    "WorkspaceQuery",
]

R = TypeVar("R", bound=Resource)

PREFETCHABLE = {"Experiment": frozenset({"trials"}), "Trial": frozenset({"checkpoints"})}


@dataclass(frozen=True)
class Explanation:
    """What a query will send: the first page's request(s) and what the client does itself."""

    calls: tuple[Call, ...]
    paging: str
    client_side: str | None
    client_order: tuple[str, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": [c.describe() for c in self.calls],
            "paging": self.paging,
            "client_side": self.client_side,
            "client_order": list(self.client_order),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [str(call) for call in self.calls]
        lines.append(f"paging: {self.paging}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


class Query(Generic[R]):
    """A lazy, immutable query of one resource type; every method returns a new query."""

    def __init__(
        self,
        resource: type[R],
        session: Session | None = None,
        *,
        where: Condition | None = None,
        order: tuple[Ordering, ...] = (),
        offset: int = 0,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        prefetch: tuple[str, ...] = (),
    ) -> None:
        if session is not None:
            from ._session import Session

            require("session", session, Session, "a detorm.Session or None")
        self.resource = resource
        self._session = session
        self._where = where
        self._order = order
        self._offset = offset
        self._limit = limit
        self._page_size = page_size
        self._prefetch = prefetch
        # Set on a relationship's query (exp.trials): prefetched children answer it directly.
        self._children_of: tuple[str, Any, str] | None = None

    def _as_children(self, parent: Resource, relation: str) -> Self:
        self._children_of = (type(parent).__name__, parent.pk, relation)
        return self

    def _copy(self, **changes: Any) -> Self:
        state: dict[str, Any] = {
            "where": self._where, "order": self._order, "offset": self._offset,
            "limit": self._limit, "page_size": self._page_size, "prefetch": self._prefetch,
        }  # fmt: skip
        state.update(changes)
        return type(self)(self.resource, self._session, **state)

    @property
    def session(self) -> Session:
        """The session this query runs in (the default session when none was given)."""
        from ._session import default_session

        return self._session if self._session is not None else default_session()

    # --- building -------------------------------------------------------------------------
    def _filter(self, conditions: Sequence[Condition], lookups: dict[str, Any]) -> Self:
        name = self.resource.__name__
        parts = [_checked(name, unwrap(c)) for c in conditions]
        parts += [check_leaf(name, parse_lookup(k, v)) for k, v in lookups.items()]
        if not parts:
            return self
        where = And.of(self._where, *parts) if self._where is not None else And.of(*parts)
        return self._copy(where=where)

    def _exclude(self, conditions: Sequence[Condition], lookups: dict[str, Any]) -> Self:
        name = self.resource.__name__
        parts = [_checked(name, unwrap(c)) for c in conditions]
        parts += [check_leaf(name, parse_lookup(k, v)) for k, v in lookups.items()]
        if not parts:
            return self
        negated = ~And.of(*parts)
        where = And.of(self._where, negated) if self._where is not None else negated
        return self._copy(where=where)

    def _order_by(self, keys: Sequence[str | Ordering]) -> Self:
        name = self.resource.__name__
        return self._copy(order=tuple(parse_ordering(name, k) for k in keys))

    def limit(self, count: int | None) -> Self:
        """Return at most ``count`` rows (None: no limit)."""
        if count is not None:
            # Never sent as is (a page has at most page_size rows); the client-side slice of
            # rows filtered here takes up to sys.maxsize.
            check_int("limit", count, low=0, high=sys.maxsize, error=QueryError)
        return self._copy(limit=count)

    def offset(self, count: int) -> Self:
        """Skip the first ``count`` rows (negative: count back from the end)."""
        return self._copy(offset=_offset("offset", count))

    def page_size(self, size: int) -> Self:
        """Rows per request when iterating (default 2000)."""
        size = check_int("page_size", size, low=1, high=INT32_MAX, error=QueryError)
        return self._copy(page_size=size)

    def prefetch(self, *relations: str) -> Self:
        """Load these relationships for each page in one extra request per page."""
        allowed = PREFETCHABLE.get(self.resource.__name__, frozenset())
        for relation in relations:
            require("prefetch", relation, str, "the name of a relationship")
            if relation not in allowed:
                raise QueryError(_prefetch_refusal(self.resource.__name__, relation, allowed))
        return self._copy(prefetch=tuple(dict.fromkeys(self._prefetch + relations)))

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> Self: ...

    def __getitem__(self, index: int | slice) -> R | Self:
        if isinstance(index, slice):
            return self._slice(index)
        require("a query index", index, int, "an int or a slice")
        if index >= 0:
            offset = _offset("the query index", self._offset + index)
            rows = list(self._copy(offset=offset, limit=1))
        else:
            # Counted back from the end of all the rows, whatever the offset. Reading the last
            # -index rows tells whether there are that many (an offset before the first row
            # starts at the first row, as for a list slice).
            rows = list(self._copy(offset=_offset("the query index", index), limit=-index))
            rows = rows[:1] if len(rows) == -index else []
        if not rows:
            raise IndexError(f"query index {index} out of range")
        return rows[0]

    def _slice(self, index: slice) -> Self:
        if index.step not in (None, 1):
            raise QueryError("query slices take no step")
        start = 0 if index.start is None else _offset("the slice start", index.start)
        stop = index.stop
        if stop is not None:
            check_int("the slice stop", stop, low=-sys.maxsize, high=sys.maxsize, error=QueryError)
        if start < 0:
            if stop is not None:
                raise QueryError("a negative slice start works only without a stop: q[-10:]")
            return self._copy(offset=start, limit=None)
        if stop is not None and stop < 0:
            raise QueryError("query slices do not take a negative stop")
        limit = None if stop is None else max(0, stop - start)
        if self._limit is not None:
            limit = max(0, min(self._limit - start, limit if limit is not None else self._limit))
        return self._copy(offset=_offset("the slice start", self._offset + start), limit=limit)

    # --- planning ---------------------------------------------------------------------------
    def plan(self) -> Plan:
        """The plan the planner made for this query (no request is sent)."""
        return plan_query(self)

    def explain(self) -> Explanation:
        """The exact first-page request(s) and what is left to the client."""
        plan = self.plan()
        calls = [plan.first_call()]
        paging = (
            "one request"
            if plan.limit is not None and plan.server_paging and plan.limit <= plan.page_size
            else "next pages: offset = pagination.endIndex until endIndex >= total"
        )
        return Explanation(
            calls=tuple(calls),
            paging=paging,
            client_side=None if plan.residual is None else str(plan.residual),
            client_order=tuple(str(o) for o in plan.client_order),
            notes=plan.notes,
        )

    # --- running ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[R]:
        if self._children_of is not None:
            children = self.session._loaded_children(self._children_of)
            if children is not None:
                yield from children  # type: ignore[misc]
                return
        plan = self.plan()
        session = self.session
        if plan.server_paging:
            yield from _executor.iterate(session, plan, self.resource, plan.offset, plan.limit)
            return
        rows: Iterator[R] = (
            obj
            for obj in _executor.iterate(session, plan, self.resource, 0, None)
            if plan.residual is None or matches(plan.residual, obj)
        )
        if plan.client_order:
            ordered = sorted(rows, key=sort_key(plan.client_order))
            rows = iter(ordered)
        if plan.offset < 0:
            rows = iter(list(rows)[plan.offset :])
        stop = None if plan.limit is None else max(0, plan.offset) + plan.limit
        yield from itertools.islice(rows, max(0, plan.offset), stop)

    def all(self) -> list[R]:
        """Every row (all pages)."""
        return list(self)

    def first(self) -> R | None:
        """The first row, or None."""
        return next(iter(self.limit(1)), None)

    def one(self) -> R:
        """The only row; raises NotFound when there is none, QueryError when there are several."""
        rows = list(self.limit(2))
        if not rows:
            raise NotFound(
                method="",
                path="",
                status=404,
                message=f"no {self.resource.__name__} matches the query",
            )
        if len(rows) > 1:
            raise QueryError(f"more than one {self.resource.__name__} matches the query")
        return rows[0]

    def one_or_none(self) -> R | None:
        """The only row or None; QueryError when there are several."""
        rows = list(self.limit(2))
        if len(rows) > 1:
            raise QueryError(f"more than one {self.resource.__name__} matches the query")
        return rows[0] if rows else None

    def count(self) -> int:
        """How many rows match: one request when the master can filter everything."""
        plan = self.plan()
        if plan.server_paging:
            total = _executor.count(self.session, plan)
            start = total + plan.offset if plan.offset < 0 else plan.offset
            available = max(0, total - max(0, min(start, total)))
            return available if plan.limit is None else min(plan.limit, available)
        return sum(1 for _ in self)

    def to_records(self) -> list[dict[str, Any]]:
        """Every row as a dict of its loaded fields (tags as sorted lists, enums by name)."""
        return [_record(obj) for obj in self]

    def to_pandas(self) -> Any:
        """Every row in a pandas DataFrame (needs pandas)."""
        from ._metrics import optional_module

        return optional_module("pandas", "to_pandas()").DataFrame.from_records(self.to_records())

    def to_polars(self) -> Any:
        """Every row in a polars DataFrame (needs polars)."""
        from ._metrics import optional_module

        polars = optional_module("polars", "to_polars()")
        return polars.from_dicts(self.to_records(), infer_schema_length=None)

    def exists(self) -> bool:
        """True when at least one row matches."""
        return self.first() is not None

    def get(self, key: Any) -> R:
        """The row with this id (uuid for checkpoints) among this query's rows; NotFound if none."""
        field = self.resource._key_field
        row = self._filter((), {field: key}).limit(2).one_or_none()
        if row is None:
            raise NotFound(
                method="", path="", status=404,
                message=f"no {self.resource.__name__} with {field} {key!r} matches the query",
            )  # fmt: skip
        return row

    def __repr__(self) -> str:
        where = "" if self._where is None else f" where {self._where}"
        order = "" if not self._order else " order by " + ", ".join(str(o) for o in self._order)
        return f"<{type(self).__name__}{where}{order}>"


def _offset(where: str, value: int) -> int:
    # Sent as the int32 offset of the list endpoints (negative: from the end).
    return check_int(where, value, low=-INT32_MAX, high=INT32_MAX, error=QueryError)


def _record(obj: Resource) -> dict[str, Any]:
    """A flat, DataFrame-friendly view of an object's loaded fields."""
    out: dict[str, Any] = {}
    for name, value in obj.__dict__.items():
        if isinstance(value, WireEnum):
            value = value.short
        elif isinstance(value, TagSet):
            value = sorted(value)
        out[name] = value
    return out


def _checked(resource: str, condition: Condition) -> Condition:
    """Check every leaf of a condition tree, keeping its shape."""
    from ._conditions import Not, Or

    if isinstance(condition, Leaf):
        return check_leaf(resource, condition)
    if isinstance(condition, And):
        return And(tuple(_checked(resource, c) for c in condition.children))
    if isinstance(condition, Or):
        return Or(tuple(_checked(resource, c) for c in condition.children))
    if isinstance(condition, Not):
        return Not(_checked(resource, condition.child))
    raise QueryError(f"not a condition: {condition!r}")


def _prefetch_refusal(resource: str, relation: str, allowed: frozenset[str]) -> str:
    if resource == "Experiment" and relation == "checkpoints":
        return (
            "the master has no request that lists the checkpoints of many experiments at once, "
            "so prefetching them would cost one request per experiment; iterate "
            "exp.checkpoints explicitly, or prefetch checkpoints on exp.trials (one request)"
        )
    can = ", ".join(sorted(allowed)) or "nothing"
    return f"{resource} queries cannot prefetch {relation!r}; they can prefetch: {can}"


# --- typed queries, one per resource ---------------------------------------------------------
# filter(), exclude() and order_by() are declared with the resource's keywords and field names
# so that mypy and IDEs check them; the behaviour is the base class's.


class ExperimentQuery(Query[Experiment]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ExperimentLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ExperimentLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ExperimentOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)

    # Bulk actions: one request with the query's filter when the bulk endpoints' filters can
    # express it exactly, else the matching ids are read first. Each returns per-id results.
    def archive(self) -> BulkResult:
        """Archive every match (terminal experiments only, as on the master)."""
        return bulk_action(self.session, self, "archive")

    def unarchive(self) -> BulkResult:
        return bulk_action(self.session, self, "unarchive")

    def pause(self) -> BulkResult:
        return bulk_action(self.session, self, "pause")

    def activate(self) -> BulkResult:
        return bulk_action(self.session, self, "activate")

    def cancel(self) -> BulkResult:
        return bulk_action(self.session, self, "cancel")

    def kill(self) -> BulkResult:
        return bulk_action(self.session, self, "kill")

    def delete(self) -> BulkResult:
        """Delete every match (terminal experiments; the master finishes deleting later)."""
        return bulk_action(self.session, self, "delete")

    def move_to(self, project: Project | int) -> BulkResult:
        """Move every match to ``project`` (one request)."""
        destination = project.id if isinstance(project, Project) else project
        return bulk_action(self.session, self, "move", destination)


class TrialQuery(Query[Trial]):
    def filter(self, *conditions: Condition, **lookups: Unpack[TrialLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[TrialLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: TrialOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class CheckpointQuery(Query[Checkpoint]):
    def filter(self, *conditions: Condition, **lookups: Unpack[CheckpointLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[CheckpointLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: CheckpointOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class WorkspaceQuery(Query[Workspace]):
    def filter(self, *conditions: Condition, **lookups: Unpack[WorkspaceLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[WorkspaceLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: WorkspaceOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class ProjectQuery(Query[Project]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ProjectLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ProjectLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ProjectOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class ModelQuery(Query[Model]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ModelLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ModelLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ModelOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class ModelVersionQuery(Query[ModelVersion]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ModelVersionLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ModelVersionLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ModelVersionOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class UserQuery(Query[User]):
    def filter(self, *conditions: Condition, **lookups: Unpack[UserLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[UserLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: UserOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)
