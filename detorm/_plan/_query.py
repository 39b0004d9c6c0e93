"""Queries: immutable, chainable, lazy, typed per resource.

``Experiment.query().filter(state="ACTIVE").order_by("start_time")`` builds a query; nothing is
sent until it is iterated (page by page), counted, sliced into a list, or asked for one row.
The planner (``_planner.py``) decides the REST calls; ``explain()`` shows them.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, Unpack

from .. import _display
from .._resources._base import Resource, SessionLike, TagSet
from .._resources._inputs import INT32_MAX, check_int, require
from .._wire import WireEnum
from ..errors import QueryError
from ._call import Call
from ._columns import COLUMNS, query_help
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
from ._lookups import (
    AgentLookups,
    AgentOrderKey,
    CheckpointLookups,
    CheckpointOrderKey,
    CommandLookups,
    CommandOrderKey,
    ExperimentLookups,
    ExperimentOrderKey,
    JobLookups,
    JobOrderKey,
    ModelLookups,
    ModelOrderKey,
    ModelVersionLookups,
    ModelVersionOrderKey,
    NotebookLookups,
    NotebookOrderKey,
    ProjectLookups,
    ProjectOrderKey,
    ResourcePoolLookups,
    ResourcePoolOrderKey,
    ShellLookups,
    ShellOrderKey,
    TaskLookups,
    TaskOrderKey,
    TemplateLookups,
    TemplateOrderKey,
    TensorboardLookups,
    TensorboardOrderKey,
    TrialLookups,
    TrialOrderKey,
    UserLookups,
    UserOrderKey,
    WebhookLookups,
    WebhookOrderKey,
    WorkspaceLookups,
    WorkspaceOrderKey,
)
from ._planner import DEFAULT_PAGE_SIZE, Plan, plan_query

__all__ = ["Explanation", "QueryBase"]

R = TypeVar("R", bound=Resource)


class QuerySession(SessionLike, Protocol):
    """What queries, and the reads that run them, need of their session (``SessionBase`` in
    ``_state``, which imports this module)."""

    def _query(self, resource: type[R]) -> QueryBase[R]: ...
    def _loaded_children(self, key: tuple[str, Any, str]) -> list[Resource] | None: ...


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
        """The explanation as plain data (for JSON or a notebook)."""
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

    def _repr_html_(self) -> str:
        """Jupyter's view: the calls as a table, then the paging and the notes."""
        notes = [f"paging: {self.paging}", *(f"note: {n}" for n in self.notes)]
        if self.client_side:
            notes.append(f"filtered by the client: {self.client_side}")
        return _display.calls_html("explain()", self.calls, notes)


class QueryBase(Generic[R]):
    """What the sync and async queries share: building (every method returns a new query),
    planning and ``explain()``. Running is the facades' (``detorm._api``)."""

    def __init__(
        self,
        resource: type[R],
        session: QuerySession | None = None,
        *,
        where: Condition | None = None,
        order: tuple[Ordering, ...] = (),
        offset: int = 0,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        prefetch: tuple[str, ...] = (),
    ) -> None:
        if session is not None:
            require("session", session, self._session_type(), self._session_kind)
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # help(Experiment.query()) lists the filter fields and orderings, written from the
        # column catalog that also generates the typed keywords (one source for both).
        super().__init_subclass__(**kwargs)
        resource = _resource_of(cls.__name__)
        if resource is not None:
            intro = cls.__doc__ or (
                f"A lazy, immutable query of {resource} objects; every method returns a new "
                "query and nothing is sent until it is iterated."
            )
            cls.__doc__ = f"{textwrap.fill(intro.strip(), 92)}\n\n{query_help(resource)}\n"

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

    # The facades name their session type and their default session.
    _session_kind: ClassVar[str] = "a session"

    @classmethod
    def _session_type(cls) -> type[QuerySession]:
        raise NotImplementedError

    def _default_session(self) -> QuerySession:
        raise NotImplementedError

    @property
    def session(self) -> QuerySession:
        """The session this query runs in (the default session when none was given)."""
        return self._session if self._session is not None else self._default_session()

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
        return self._copy(offset=query_offset("offset", count))

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

    def _slice(self, index: slice) -> Self:
        if index.step not in (None, 1):
            raise QueryError("query slices take no step")
        start = 0 if index.start is None else query_offset("the slice start", index.start)
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
        return self._copy(offset=query_offset("the slice start", self._offset + start), limit=limit)

    # --- planning ---------------------------------------------------------------------------
    def plan(self) -> Plan:
        """The plan the planner made for this query (no request is sent)."""
        return plan_query(self)

    def explain(self) -> Explanation:
        """The exact first-page request(s) and what is left to the client."""
        plan = self.plan()
        calls = list(plan.first_calls())
        if plan.source.paging == "keys":
            paging = "one request per key, sent concurrently"
        elif plan.source.paging == "none":
            paging = "one request (the master does not page this listing)"
        elif plan.limit is not None and plan.server_paging and plan.limit <= plan.page_size:
            paging = "one request"
        else:
            paging = "next pages: offset = pagination.endIndex until endIndex >= total"
        return Explanation(
            calls=tuple(calls),
            paging=paging,
            client_side=None if plan.residual is None else str(plan.residual),
            client_order=tuple(str(o) for o in plan.client_order),
            notes=plan.notes,
        )

    def __repr__(self) -> str:
        where = "" if self._where is None else f" where {self._where}"
        order = "" if not self._order else " order by " + ", ".join(str(o) for o in self._order)
        return f"<{type(self).__name__}{where}{order}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the query's plan (the requests it would send). Displaying a query
        runs nothing; ask for rows with ``.all()``, ``q[:10].all()`` or ``.to_pandas()``."""
        return _display.query_html(self)


def _resource_of(class_name: str) -> str | None:
    """The resource of a public typed query class (``AsyncTrialQuery`` -> ``Trial``)."""
    if class_name.startswith("_"):
        return None
    name = class_name.removeprefix("Async")
    for suffix in ("Query", "Filters"):
        if name.endswith(suffix) and name.removesuffix(suffix) in COLUMNS:
            return name.removesuffix(suffix)
    return None


def query_offset(where: str, value: int) -> int:
    # Sent as the int32 offset of the list endpoints (negative: from the end).
    return check_int(where, value, low=-INT32_MAX, high=INT32_MAX, error=QueryError)


def record(obj: Resource) -> dict[str, Any]:
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


# --- typed filters, one per resource -----------------------------------------------------------
# filter(), exclude() and order_by() are declared with the resource's keywords and field names
# so that mypy and IDEs check them; the behaviour is the base class's. The sync and async typed
# queries (``detorm._api``) inherit them.


class ExperimentFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ExperimentLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ExperimentLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ExperimentOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class TrialFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[TrialLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[TrialLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: TrialOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class CheckpointFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[CheckpointLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[CheckpointLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: CheckpointOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class WorkspaceFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[WorkspaceLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[WorkspaceLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: WorkspaceOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class ProjectFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ProjectLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ProjectLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ProjectOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class ModelFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ModelLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ModelLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ModelOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class ModelVersionFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ModelVersionLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ModelVersionLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ModelVersionOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class UserFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[UserLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[UserLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: UserOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends), ``hp``/``metrics`` orderings; replaces any order."""
        return self._order_by(keys)


class CommandFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[CommandLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[CommandLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: CommandOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class ShellFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ShellLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ShellLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ShellOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class NotebookFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[NotebookLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[NotebookLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: NotebookOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class TensorboardFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[TensorboardLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[TensorboardLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: TensorboardOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class TemplateFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[TemplateLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[TemplateLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: TemplateOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class JobFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[JobLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[JobLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: JobOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class TaskFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[TaskLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[TaskLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: TaskOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class ResourcePoolFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[ResourcePoolLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[ResourcePoolLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: ResourcePoolOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class WebhookFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[WebhookLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[WebhookLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: WebhookOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)


class AgentFilters(QueryBase[R]):
    def filter(self, *conditions: Condition, **lookups: Unpack[AgentLookups]) -> Self:
        """Keep the rows matching every condition and lookup (``field__lookup=value``)."""
        return self._filter(conditions, dict(lookups))

    def exclude(self, *conditions: Condition, **lookups: Unpack[AgentLookups]) -> Self:
        """Drop the rows matching all the given conditions and lookups together."""
        return self._exclude(conditions, dict(lookups))

    def order_by(self, *keys: AgentOrderKey | Ordering) -> Self:
        """Sort by fields (``"-name"`` descends); replaces any order."""
        return self._order_by(keys)
