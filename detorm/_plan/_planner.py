"""The planner: turns a query into the REST calls that answer it, pushing down what it can.

For each resource it knows the list endpoints of the real master and what each can filter and
sort on. It pushes every condition and ordering the chosen endpoint supports into the request
(query parameters, or the filter tree of experiments-search / runs) and leaves the rest to be
evaluated on the client, which :meth:`Query.explain` shows. Executing a plan (paging, parsing,
hydrating) is the thin loop in ``_query.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from .. import _wire as w
from .._resources._base import Resource
from ..errors import APIError, NotFound, QueryError
from ._call import Call, path, query_items
from ._conditions import And, Condition, FieldRef, Leaf, Not, Or, Ordering

__all__ = ["NEGATED", "Plan", "Source", "like_escape", "plan_query"]

# "sql" and "memory": the master's two pagination algorithms; "none": one unpaged answer;
# "keys": no listing at all, one GET per key (the source's path names it).
Paging = Literal["sql", "memory", "none", "keys"]
DEFAULT_PAGE_SIZE: Final = 2000


class Query(Protocol):
    """What the planner reads of a query (``QueryBase`` in ``_query.py``, which imports this
    module)."""

    @property
    def resource(self) -> type[Resource]: ...
    @property
    def _where(self) -> Condition | None: ...
    @property
    def _order(self) -> tuple[Ordering, ...]: ...
    @property
    def _offset(self) -> int: ...
    @property
    def _limit(self) -> int | None: ...
    @property
    def _page_size(self) -> int: ...
    @property
    def _prefetch(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Source:
    """A list endpoint: how to ask for one page and how to read the rows of its response."""

    resource: str
    operation: str
    method: str
    path: str
    paging: Paging
    response: type[w.WireModel]
    rows: str
    params: tuple[tuple[str, str], ...] = ()
    body: dict[str, Any] | None = None
    # A row type that carries fewer fields than a single GET (see Trial.values_from_run).
    partial: bool = False
    # Listed under a parent (an experiment, a trial, a model, a project, a workspace): the
    # master answers 404 when it does not exist, which means that nothing matches.
    scoped: bool = False
    # The same for a parent the master reports missing with another status (a resource pool:
    # a 500 naming it): an error whose message holds this text means nothing matches.
    missing_parent: str = ""
    # The objects a "keys" source reads, one GET each.
    keys: tuple[str, ...] = ()

    def matches_nothing(self, error: APIError) -> bool:
        """Whether ``error`` says that the parent this listing names does not exist."""
        if self.missing_parent:
            return self.missing_parent in error.message
        return self.scoped and isinstance(error, NotFound)

    def key_calls(self) -> tuple[Call, ...]:
        """The GETs of a "keys" source."""
        return tuple(Call(self.method, path(self.path, key=k), read_only=True) for k in self.keys)

    def call(self, offset: int, limit: int) -> Call:
        if self.paging == "none":
            return Call(self.method, self.path, self.params, read_only=True)
        # A list endpoint only reads, even the POSTs (experiments-search, runs search): each
        # page may be retried like a GET.
        if self.body is not None:
            body = dict(self.body, offset=offset, limit=limit)
            return Call(self.method, self.path, self.params, body, read_only=True)
        params = self.params + (("offset", str(offset)), ("limit", str(limit)))
        return Call(self.method, self.path, params, read_only=True)

    def count_call(self) -> Call:
        # SQL pagination answers limit=-2 with the total only; the in-memory one needs limit>0.
        return self.call(0, -2 if self.paging == "sql" else 1)


@dataclass(frozen=True)
class Prefetch:
    """Children loaded for every page of parents in one request per page."""

    relation: str


@dataclass(frozen=True)
class Plan:
    """How a query is answered."""

    source: Source
    residual: Condition | None = None
    client_order: tuple[Ordering, ...] = ()
    offset: int = 0
    limit: int | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    prefetch: tuple[Prefetch, ...] = ()
    notes: tuple[str, ...] = ()
    # An experiment to load before the rows: it names their searcher metric (the trials of an
    # experiment are listed without their searcher_metric_value; see loading.trial_values).
    experiment: int | None = None

    @property
    def server_paging(self) -> bool:
        """True when offset and limit are sent to the master (nothing left to the client)."""
        paged = self.source.paging in ("sql", "memory")
        return paged and self.residual is None and not self.client_order

    def first_calls(self) -> tuple[Call, ...]:
        """What is sent first: the first page's request, or every GET of a keys source."""
        return self.source.key_calls() if self.source.paging == "keys" else (self.first_call(),)

    def first_call(self) -> Call:
        if not self.server_paging:
            return self.source.call(0, self.page_size)
        size = self.page_size if self.limit is None else min(self.page_size, self.limit)
        return self.source.call(self.offset, size)


# --- helpers --------------------------------------------------------------------------------
def conjuncts(condition: Condition | None) -> list[Condition]:
    if condition is None:
        return []
    return list(condition.children) if isinstance(condition, And) else [condition]


def _join(parts: Sequence[Condition]) -> Condition | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _column_leaf(cond: Condition, name: str, lookups: Sequence[str] = ("exact",)) -> Leaf | None:
    if not isinstance(cond, Leaf) or cond.field.kind != "column" or cond.field.name != name:
        return None
    return cond if cond.lookup in lookups else None


def scope_leaf(condition: Condition | None, name: str) -> Leaf | None:
    """The first top-level ``name == value`` conjunct (a relationship scope), if any."""
    for cond in conjuncts(condition):
        leaf = _column_leaf(cond, name)
        if leaf is not None:
            return leaf
    return None


def _listable(*values: Any) -> bool:
    # Some endpoints join a repeated string parameter with ',' and split it again in SQL, and
    # an empty one means no filter: only non-empty strings without a comma survive the trip.
    return all(not isinstance(v, str) or (v and "," not in v) for v in values)


def _without(condition: Condition | None, scope: Leaf | None) -> list[Condition]:
    """The conjuncts but the scope; another condition on the scope's field stays (the client
    checks it: filter(experiment_id=1).filter(experiment_id=2) matches nothing)."""
    return [c for c in conjuncts(condition) if c != scope]


# --- filter-tree compilation (experiments-search and runs) ----------------------------------
EXP, RUN = "LOCATION_TYPE_EXPERIMENT", "LOCATION_TYPE_RUN"
NUM, TXT, DATE = "COLUMN_TYPE_NUMBER", "COLUMN_TYPE_TEXT", "COLUMN_TYPE_DATE"

Bounds = list[tuple[str, Any]]


def _identity(value: Any) -> Any:
    return value


def like_escape(text: str) -> str:
    """``text`` as a literal inside a ``LIKE``/``ILIKE`` pattern.

    The master puts values into patterns as they are (``'%' || v || '%'``), so ``%`` and ``_``
    would be wildcards; a backslash escapes them, Postgres's default ``LIKE`` escape.
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _literal(value: Any) -> tuple[Any, bool] | None:
    if isinstance(value, bool):
        return None  # see _not_bool
    return (like_escape(value) if isinstance(value, str) else value), True


def _not_bool(value: Any) -> Any:
    # The tree types a hyperparameter, metric or metadata comparison as a number or a text; a
    # boolean compared with either fails the request: the client compares booleans.
    return None if isinstance(value, bool) else value


def _quoted_label(label: str) -> tuple[Any, bool]:
    # tags is the labels' JSON text (`e.config->>'labels'`, jsonb's output): the quoted label
    # matches one whole label, but ILIKE ignores case, so the client checks the matches.
    return like_escape(json.dumps(label, ensure_ascii=False)), False


def _plain(value: Any) -> tuple[Any, bool] | None:
    # An experiment hyperparameter is matched with LIKE when it is a constant and as a jsonb key
    # when it is categorical (hpToSQL): no escaping suits both, so only plain text is sent.
    if isinstance(value, bool) or (isinstance(value, str) and any(c in value for c in "\\%_")):
        return None
    return value, True


@dataclass(frozen=True)
class TreeColumn:
    """How a resource field appears in the filter tree and in the sort string."""

    column: str
    location: str
    type: str
    convert: Callable[[Any], Any] = _identity
    sortable: bool = True
    filterable: bool = True
    # False where the tree has no comparison matching the field's (tags are a set).
    comparable: bool = True
    # The master's SQL for the field is text, so isEmpty/notEmpty can run: for any other type
    # their `col = ''` makes Postgres fail the request (expRunOperatorQuery), so the client
    # evaluates isnull instead.
    text: bool = False
    # The pattern of a contains and whether it matches exactly (else it narrows), or None.
    contains: Callable[[Any], tuple[Any, bool] | None] = _literal
    # For a column the master computes unlike the field the SDK reports: comparisons (ANDed)
    # selecting a superset of `field <lookup> value`, or None; the client checks the matches.
    widen: Callable[[str, Any], Bounds | None] | None = None
    # For a state: the stored states a reported state stands for, and whether exactly.
    stored: Callable[[Any], tuple[list[str], bool]] | None = None


def _rfc3339(value: Any) -> str:
    return value.rfc3339() if isinstance(value, w.Timestamp) else str(value)


def _percent(lookup: str, value: float) -> Bounds | None:
    # The tree's progress is ROUND(COALESCE(progress, 0) * 100)::INTEGER: a rounded percent, 0
    # when unset. Rounding is monotonic, so these bounds keep every match of the exact fraction.
    low, high = math.floor(value * 100), math.ceil(value * 100)
    bounds: dict[str, Bounds] = {
        "gt": [(">=", low)], "gte": [(">=", low)], "lt": [("<=", high)],
        "lte": [("<=", high)], "exact": [(">=", low), ("<=", high)],
    }  # fmt: skip
    return bounds.get(lookup)


def _seconds(lookup: str, value: int) -> Bounds | None:
    # The tree's duration is fractional seconds; the field is those seconds rounded (`::int`,
    # getExperimentColumns), within half a second: rounded > v implies seconds > v, and so on.
    bounds: dict[str, Bounds] = {
        "gt": [(">", value)], "gte": [(">", value - 1)], "lt": [("<", value)],
        "lte": [("<", value + 1)], "exact": [(">", value - 1), ("<", value + 1)],
    }  # fmt: skip
    return bounds.get(lookup)


_ACTIVE_REPORTED: Final = {
    w.ExperimentState.QUEUED: ["ACTIVE"], w.ExperimentState.PULLING: ["ACTIVE"],
    w.ExperimentState.STARTING: ["ACTIVE"], w.ExperimentState.RUNNING: ["ACTIVE", "RUNNING"],
}  # fmt: skip


def experiment_states(state: w.ExperimentState) -> tuple[list[str], bool]:
    """The stored states a reported experiment state stands for, and whether exactly.

    The master filters on the stored state and reports a stored ACTIVE (and RUNNING) as QUEUED,
    PULLING, STARTING or RUNNING (enrichExperimentState): ACTIVE stands for all of them, exactly;
    one of them narrows to the active experiments. A state never stored matches nothing.
    """
    if state is w.ExperimentState.ACTIVE:
        return ["ACTIVE", "RUNNING"], True
    if state in _ACTIVE_REPORTED:
        return _ACTIVE_REPORTED[state], False
    return ([state.short], True) if state.short in w.STORED_EXPERIMENT_STATES else ([], True)


def _trial_states(state: w.TrialState) -> tuple[list[str], bool]:
    return ([state.short], True) if state.short in w.STORED_TRIAL_STATES else ([], True)


# experiment_filter.go expColumnNameToSQL and sortExperiments.
EXPERIMENT_TREE: Final = {
    "id": TreeColumn("id", EXP, NUM),
    "name": TreeColumn("name", EXP, TXT, text=True),
    "description": TreeColumn("description", EXP, TXT, text=True),
    "tags": TreeColumn(
        "tags", EXP, TXT, sortable=False, comparable=False, text=True, contains=_quoted_label
    ),
    "state": TreeColumn("state", EXP, TXT, stored=experiment_states),
    "start_time": TreeColumn("startTime", EXP, DATE, _rfc3339),
    "end_time": TreeColumn("endTime", EXP, DATE, _rfc3339),
    "duration": TreeColumn("duration", EXP, NUM, widen=_seconds),
    "progress": TreeColumn("progress", EXP, NUM, widen=_percent),
    "num_trials": TreeColumn("numTrials", EXP, NUM),
    # Filtering only: the sort string's user is the owner's display name (sortExperiments).
    "user_id": TreeColumn("user", EXP, NUM, sortable=False),
    # Sorting only: the filter's projectId is an unqualified `project_id`, which Postgres
    # rejects as ambiguous (experiments and the joined runs both have one).
    "project_id": TreeColumn("projectId", EXP, NUM, filterable=False),
    "resource_pool": TreeColumn("resourcePool", EXP, TXT, text=True),
    "searcher_type": TreeColumn("searcherType", EXP, TXT, text=True),
    "searcher_metric": TreeColumn("searcherMetric", EXP, TXT, text=True),
    "forked_from": TreeColumn("forkedFrom", EXP, NUM),
    "checkpoint_size": TreeColumn("checkpointSize", EXP, NUM),
    "checkpoint_count": TreeColumn("checkpointCount", EXP, NUM),
    "best_trial_searcher_metric": TreeColumn("searcherMetricsVal", EXP, NUM),
    "external_experiment_id": TreeColumn("externalExperimentId", EXP, TXT, text=True),
}

# experiment_filter.go runColumnNameToSQL and sortRuns.
RUN_TREE: Final = {
    "id": TreeColumn("id", RUN, NUM),
    "experiment_id": TreeColumn("experimentId", RUN, NUM),
    "state": TreeColumn("state", RUN, TXT, stored=_trial_states),
    "start_time": TreeColumn("startTime", RUN, DATE, _rfc3339),
    "end_time": TreeColumn("endTime", RUN, DATE, _rfc3339),
    "total_checkpoint_size": TreeColumn("checkpointSize", RUN, NUM),
    "checkpoint_count": TreeColumn("checkpointCount", RUN, NUM),
    "searcher_metric_value": TreeColumn("searcherMetricsVal", RUN, NUM),
}

_COMPARISONS: Final = {"exact": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# NOT (field <lookup> v) as a lookup; SQL NULLs stay unknown either way.
NEGATED: Final = {
    "exact": "ne", "ne": "exact", "gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt",
    "contains": "notcontains", "in": "notin", "isnull": "isnull",
}  # fmt: skip
_METRIC_LOCATIONS: Final = {
    "validation": "LOCATION_TYPE_VALIDATIONS",
    "training": "LOCATION_TYPE_TRAINING",
}


@dataclass(frozen=True)
class Pushed:
    """A condition as a filter tree: exactly its rows, or (``exact`` False) a superset of them,
    which the client narrows by checking the condition again."""

    node: w.FilterNode
    exact: bool = True


def _group(conjunction: Literal["and", "or"], parts: Sequence[Pushed]) -> Pushed:
    node = w.FilterNode.group(conjunction, [p.node for p in parts])
    return Pushed(node, all(p.exact for p in parts))


class TreeCompiler:
    """Compiles a condition into the filter tree of experiments-search or runs.

    ``compile`` returns ``(node, residual)``: what the master evaluates and what the client
    evaluates on the rows it returns. Inside an OR nothing can be left out, so an OR with a part
    the tree cannot express stays on the client as a whole. The tree has no NOT: negations are
    pushed to the leaves (De Morgan; ``<`` becomes ``>=``...). A part the tree can only narrow
    (tags compared case-insensitively, a rounded progress...) is sent and kept for the client.
    """

    def __init__(self, resource: str, columns: dict[str, TreeColumn], hp_location: str) -> None:
        self.resource = resource
        self.columns = columns
        self.hp_location = hp_location

    def compile(self, condition: Condition) -> tuple[w.FilterNode | None, Condition | None]:
        if isinstance(condition, And):
            nodes, left = [], []
            for child in condition.children:
                node, rest = self.compile(child)
                if node is not None:
                    nodes.append(node)
                if rest is not None:
                    left.append(rest)
            group = w.FilterNode.group("and", nodes) if nodes else None
            return group, _join(left)
        pushed = self.tree(condition)
        if pushed is None:
            return None, condition
        return pushed.node, None if pushed.exact else condition

    def tree(self, condition: Condition, negate: bool = False) -> Pushed | None:
        """The whole condition as a tree, or None when any part cannot be expressed."""
        if isinstance(condition, Not):
            return self.tree(condition.child, not negate)
        if isinstance(condition, (And, Or)):
            conj: Literal["and", "or"] = "and" if isinstance(condition, And) else "or"
            if negate:
                conj = "or" if conj == "and" else "and"
            parts = [self.tree(c, negate) for c in condition.children]
            if any(p is None for p in parts):
                return None
            return _group(conj, [p for p in parts if p is not None])
        assert isinstance(condition, Leaf)
        return self._leaf(condition, negate)

    def _leaf(self, leaf: Leaf, negate: bool) -> Pushed | None:
        target = self._target(leaf.field)
        if target is None or not target.filterable:
            return None
        lookup, value = leaf.lookup, leaf.value
        if negate:
            lookup = NEGATED[lookup]
            value = not value if lookup == "isnull" else value
        if lookup in ("in", "notin"):
            each = "exact" if lookup == "in" else "ne"
            parts = [self._compare(target, each, v) for v in value]
            if any(p is None for p in parts):
                return None
            return _group("or" if lookup == "in" else "and", [p for p in parts if p is not None])
        return self._compare(target, lookup, value)

    def _compare(self, target: TreeColumn, lookup: str, value: Any) -> Pushed | None:
        if lookup == "isnull":
            if not target.text:
                return None
            return Pushed(self._field(target, "isEmpty" if value else "notEmpty", None))
        if target.stored is not None:
            return self._state(target, lookup, value)
        if lookup in ("contains", "notcontains"):
            pattern = target.contains(value)
            if pattern is None or (lookup == "notcontains" and not pattern[1]):
                return None  # the negation of a superset is not one
            operator = "contains" if lookup == "contains" else "notContains"
            return Pushed(self._field(target, operator, pattern[0]), pattern[1])
        if lookup not in _COMPARISONS or not target.comparable:
            return None
        if target.widen is not None:
            bounds = target.widen(lookup, value)
            if not bounds:
                return None
            fields = [self._field(target, op, bound) for op, bound in bounds]
            node = fields[0] if len(fields) == 1 else w.FilterNode.group("and", fields)
            return Pushed(node, exact=False)
        converted = target.convert(value)
        if converted is None:
            return None  # a null value would make the master ignore the field
        return Pushed(self._field(target, _COMPARISONS[lookup], converted))

    def _state(self, target: TreeColumn, lookup: str, value: Any) -> Pushed | None:
        assert target.stored is not None
        if lookup not in ("exact", "ne"):
            return None
        names, exact = target.stored(value)
        if not names or (lookup == "ne" and not exact):
            return None  # matches nothing (or everything): left to the client
        operator = _COMPARISONS[lookup]
        fields = [self._field(target, operator, name) for name in names]
        if len(fields) == 1:
            return Pushed(fields[0], exact)
        return Pushed(w.FilterNode.group("or" if lookup == "exact" else "and", fields), exact)

    @staticmethod
    def _field(target: TreeColumn, operator: str, value: Any) -> w.FilterNode:
        return w.FilterNode.field(
            target.column, operator, value, location=target.location, type=target.type
        )

    def _target(self, ref: FieldRef) -> TreeColumn | None:
        if ref.kind == "column":
            return self.columns.get(ref.name)
        if ref.kind == "hp":
            # An experiment's isEmpty casts a constant to float8 (hpToSQL): a text one fails the
            # request, so the client evaluates isnull on experiments.
            runs = self.hp_location == "LOCATION_TYPE_RUN_HYPERPARAMETERS"
            return TreeColumn(
                f"hp.{ref.name}", self.hp_location, NUM, _not_bool, text=runs,
                contains=_literal if runs else _plain,
            )  # fmt: skip
        if ref.kind == "metadata":
            location = "LOCATION_TYPE_RUN_METADATA"
            return TreeColumn(f"metadata.{ref.name}", location, NUM, _not_bool, text=True)
        location = _METRIC_LOCATIONS.get(ref.group, "LOCATION_TYPE_CUSTOM_METRIC")
        name = f"{ref.group}.{ref.name}.{ref.aggregate}"
        return TreeColumn(name, location, NUM, _not_bool, text=True)

    def sort_key(self, ordering: Ordering) -> str | None:
        ref = ordering.field
        if ref.kind == "column":
            tree = self.columns.get(ref.name)
            if tree is None or not tree.sortable:
                return None
            name = tree.column
        elif ref.kind == "hp":
            if self.hp_location == "LOCATION_TYPE_HYPERPARAMETERS":
                return None  # experiments sort by the hp *definition* object: not a value order
            name = f"hp.{ref.name}"
        elif ref.kind == "metadata":
            name = f"metadata.{ref.name}"
        else:
            return None  # metric sorts compare text (->>), so numbers would sort as strings
        return f"{name}={'desc' if ordering.descending else 'asc'}"


def _typed_leaf_types(node: w.FilterNode) -> None:
    # Numbers compared to hp/metric columns must be cast as numbers; strings as text.
    if node.kind == "field" and node.location not in (EXP, RUN):
        node.type = TXT if isinstance(node.value, str) else NUM
    for child in node.children or ():
        _typed_leaf_types(child)


def encode_filter(node: w.FilterNode | None, *, show_archived: bool) -> str:
    # The root is always a group, as the web UI sends it.
    if node is None:
        node = w.FilterNode.group("and", [])
    elif node.kind != "group":
        node = w.FilterNode.group("and", [node])
    root = w.FilterRoot(filter_group=node, show_archived=show_archived)
    _typed_leaf_types(root.filter_group)
    return root.encode()


# --- per-resource planning ------------------------------------------------------------------
def plan_query(query: Query) -> Plan:
    """The plan of a query (no request is sent)."""
    planner = _PLANNERS[query.resource.__name__]
    return planner(query)


def _ordering_notes(plan_order: Sequence[Ordering]) -> tuple[str, ...]:
    if not plan_order:
        return ()
    return (
        f"sorted on the client by {', '.join(str(o) for o in plan_order)} (all matches are read)",
    )


def _finish(query: Query, source: Source, residual: Condition | None,
            client_order: Sequence[Ordering], notes: Sequence[str] = (),
            experiment: int | None = None) -> Plan:  # fmt: skip
    extra: list[str] = list(notes)
    if residual is not None:
        extra.append(f"evaluated on the client: {residual}")
    extra.extend(_ordering_notes(client_order))
    for name in query._prefetch:
        extra.append(f"prefetch {name}: one extra request per page of {source.resource.lower()}s")
    return Plan(
        source=source, residual=residual, client_order=tuple(client_order),
        offset=query._offset, limit=query._limit, page_size=query._page_size,
        prefetch=tuple(Prefetch(p) for p in query._prefetch), notes=tuple(extra),
        experiment=experiment,
    )  # fmt: skip


# Experiments ---------------------------------------------------------------------------------
_EXPERIMENT_SORT: Final = {
    "id": w.ExperimentSortBy.ID, "description": w.ExperimentSortBy.DESCRIPTION,
    "name": w.ExperimentSortBy.NAME, "start_time": w.ExperimentSortBy.START_TIME,
    "end_time": w.ExperimentSortBy.END_TIME, "state": w.ExperimentSortBy.STATE,
    "num_trials": w.ExperimentSortBy.NUM_TRIALS, "progress": w.ExperimentSortBy.PROGRESS,
    "forked_from": w.ExperimentSortBy.FORKED_FROM,
    "resource_pool": w.ExperimentSortBy.RESOURCE_POOL,
    "project_id": w.ExperimentSortBy.PROJECT_ID,
    "checkpoint_size": w.ExperimentSortBy.CHECKPOINT_SIZE,
    "checkpoint_count": w.ExperimentSortBy.CHECKPOINT_COUNT,
    "best_trial_searcher_metric": w.ExperimentSortBy.SEARCHER_METRIC_VAL,
}  # fmt: skip


class _GetExperimentsParams:
    """Pushes conjuncts into GetExperiments query parameters."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.residual: list[Condition] = []

    def add(self, cond: Condition) -> bool:
        """Push one conjunct; False when it cannot be pushed at all."""
        if not isinstance(cond, Leaf) or cond.field.kind != "column":
            return False
        handler = getattr(self, f"_{cond.field.name}", None)
        return bool(handler is not None and handler(cond))

    def _id(self, leaf: Leaf) -> bool:
        ops = {
            "exact": "incl",
            "in": "incl",
            "ne": "notIn",
            "gt": "gt",
            "gte": "gte",
            "lt": "lt",
            "lte": "lte",
        }
        op = ops.get(leaf.lookup)
        if op is None:
            return False
        key = f"experimentIdFilter.{op}"
        values = leaf.value if leaf.lookup == "in" else [leaf.value]
        if key in self.params and op != "notIn":
            if op == "incl":
                self.params[key] = [v for v in self.params[key] if v in values]
                return True
            return False
        self.params.setdefault(key, [] if op in ("incl", "notIn") else None)
        if op in ("incl", "notIn"):
            self.params[key] = list(self.params[key]) + [
                v for v in values if v not in self.params[key]
            ]
        else:
            self.params[key] = leaf.value
        return True

    def _state(self, leaf: Leaf) -> bool:
        # `states` filters on the stored state (see experiment_states), and a state the
        # database does not have fails the request: never send one.
        if leaf.lookup not in ("exact", "in"):
            return False
        stored: set[str] = set()
        exact = True
        for state in leaf.value if leaf.lookup == "in" else [leaf.value]:
            names, precise = experiment_states(state)
            stored.update(names)
            exact = exact and precise
        if "states" in self.params:
            stored &= {s.short for s in self.params["states"]}
        if not stored:
            return False
        self.params["states"] = sorted(
            (w.ExperimentState.parse(name) for name in stored), key=lambda s: s.number
        )
        if not exact:
            self.residual.append(leaf)
        return True

    def _tags(self, leaf: Leaf) -> bool:
        if leaf.lookup != "contains" or not _listable(leaf.value):
            return False
        self.params.setdefault("labels", [])
        if leaf.value not in self.params["labels"]:
            self.params["labels"].append(leaf.value)
        return True

    def _substring(self, param: str, leaf: Leaf) -> bool:
        # name/description filter with ILIKE '%v%', a case-insensitive substring: contains is
        # exact once escaped; an exact value narrows the rows and is checked here too.
        if leaf.lookup not in ("contains", "exact") or param in self.params:
            return False
        if leaf.value:  # an empty value is the proto default: no filter
            self.params[param] = like_escape(leaf.value)
        if leaf.lookup == "exact":
            self.residual.append(leaf)
        return True

    def _name(self, leaf: Leaf) -> bool:
        return self._substring("name", leaf)

    def _description(self, leaf: Leaf) -> bool:
        return self._substring("description", leaf)

    def _archived(self, leaf: Leaf) -> bool:
        # archived=false with projectId 0 also drops experiments of archived projects and
        # workspaces (GetExperiments); only archived=true is an exact filter everywhere.
        if leaf.lookup != "exact" or "archived" in self.params:
            return False
        if leaf.value is False and "projectId" not in self.params:
            return False
        self.params["archived"] = leaf.value
        return True

    def _username(self, leaf: Leaf) -> bool:
        return self._many("users", leaf)

    def _user_id(self, leaf: Leaf) -> bool:
        return self._many("userIds", leaf)

    def _many(self, param: str, leaf: Leaf) -> bool:
        if leaf.lookup not in ("exact", "in") or param in self.params:
            return False
        self.params[param] = list(leaf.value) if leaf.lookup == "in" else [leaf.value]
        return True

    def _project_id(self, leaf: Leaf) -> bool:
        if leaf.lookup != "exact" or "projectId" in self.params or leaf.value == 0:
            return False
        self.params["projectId"] = leaf.value
        return True


def _plan_experiments(query: Query) -> Plan:
    get_plan = _experiments_via_get(query)
    if get_plan is not None:
        return get_plan
    return _experiments_via_search(query)


def _experiments_via_get(query: Query) -> Plan | None:
    """GetExperiments when every conjunct and the ordering fit its parameters."""
    if len(query._order) > 1:
        return None
    pusher = _GetExperimentsParams()
    # projectId first: it decides whether archived=false can be pushed.
    ordered = sorted(conjuncts(query._where), key=lambda c: _column_leaf(c, "project_id") is None)
    for cond in ordered:
        if not pusher.add(cond):
            return None
    params = dict(pusher.params)
    if query._order:
        ordering = query._order[0]
        sort = (
            _EXPERIMENT_SORT.get(ordering.field.name) if ordering.field.kind == "column" else None
        )
        if sort is None:
            return None
        params["sortBy"] = sort
        params["orderBy"] = w.OrderBy.DESC if ordering.descending else w.OrderBy.ASC
    if "best_trial_searcher_metric" in (o.field.name for o in query._order):
        params["showTrialData"] = True
    source = Source(
        "Experiment", "GetExperiments", "GET", "/api/v1/experiments", "sql",
        w.ExperimentsResponse, "experiments", params=query_items(params),
        scoped="projectId" in params,
    )  # fmt: skip
    return _finish(query, source, _join(pusher.residual), ())


def _experiments_via_search(query: Query) -> Plan:
    compiler = TreeCompiler("Experiment", EXPERIMENT_TREE, "LOCATION_TYPE_HYPERPARAMETERS")
    scope = scope_leaf(query._where, "project_id")
    project = None if scope is None else scope.value
    rest = _without(query._where, scope) if project else conjuncts(query._where)
    show_archived = True
    pushable: list[Condition] = []
    residual: list[Condition] = []
    for cond in rest:
        archived = _column_leaf(cond, "archived")
        if archived is not None and archived.value is False and show_archived:
            show_archived = False  # showArchived=false is exactly "e.archived = false"
            continue
        pushable.append(cond)
    node, left = compiler.compile(And(tuple(pushable))) if pushable else (None, None)
    if left is not None:
        residual.extend(conjuncts(left))
    sort, client_order = _tree_sort(compiler, query._order)
    body: dict[str, Any] = {}
    if project:
        body["projectId"] = project
    if node is not None or not show_archived:
        body["filter"] = encode_filter(node, show_archived=show_archived)
    if sort:
        body["sort"] = sort
    source = Source(
        "Experiment", "SearchExperiments", "POST", "/api/v1/experiments-search", "sql",
        w.SearchExperimentsResponse, "experiments", body=body, scoped=bool(project),
    )  # fmt: skip
    return _finish(query, source, _join(residual), client_order)


def _tree_sort(
    compiler: TreeCompiler, order: Sequence[Ordering]
) -> tuple[str | None, tuple[Ordering, ...]]:
    keys = [compiler.sort_key(o) for o in order]
    if any(k is None for k in keys):
        return None, tuple(order)
    return (",".join(k for k in keys if k) or None), ()


# Trials --------------------------------------------------------------------------------------
_TRIAL_SORT: Final = {
    "id": w.TrialSortBy.ID, "start_time": w.TrialSortBy.START_TIME,
    "end_time": w.TrialSortBy.END_TIME, "state": w.TrialSortBy.STATE,
    "total_batches_processed": w.TrialSortBy.BATCHES_PROCESSED,
    "restarts": w.TrialSortBy.RESTARTS, "total_checkpoint_size": w.TrialSortBy.CHECKPOINT_SIZE,
}  # fmt: skip


# FlatRun (run/v1/run.proto) has no restarts and no batch count.
_NOT_IN_RUNS: Final = frozenset({"restarts", "total_batches_processed"})


def _plan_trials(query: Query) -> Plan:
    scope = scope_leaf(query._where, "experiment_id")
    if scope is not None:
        return _trials_of_experiment(query, scope)
    return _trials_via_runs(query)


def _trials_of_experiment(query: Query, scope: Leaf) -> Plan:
    """GetExperimentTrials: full trial objects; states and one ordering are pushed down."""
    params: dict[str, Any] = {}
    residual: list[Condition] = []
    for cond in _without(query._where, scope):
        leaf = _column_leaf(cond, "state", ("exact", "in"))
        values = [] if leaf is None else leaf.value if leaf.lookup == "in" else [leaf.value]
        stored = [v for v in values if v.short in w.STORED_TRIAL_STATES]
        if stored and "states" not in params:
            # Typed as experimentv1.State names and cast to the database's trial_state: a state
            # it does not have fails the request; it also matches no trial.
            params["states"] = ["STATE_" + v.short for v in stored]
        else:
            residual.append(cond)
    client_order: tuple[Ordering, ...] = ()
    if len(query._order) == 1 and query._order[0].field.kind == "column":
        sort = _TRIAL_SORT.get(query._order[0].field.name)
        if sort is not None:
            params["sortBy"] = sort
            params["orderBy"] = w.OrderBy.DESC if query._order[0].descending else w.OrderBy.ASC
        else:
            client_order = query._order
    elif query._order:
        client_order = query._order
    source = Source(
        "Trial", "GetExperimentTrials", "GET",
        path("/api/v1/experiments/{id}/trials", id=scope.value), "sql", w.TrialsResponse,
        "trials", params=query_items(params), scoped=True,
    )  # fmt: skip
    residual_condition = _join(residual)
    if "searcher_metric_value" not in _fields(residual_condition, client_order):
        return _finish(query, source, residual_condition, client_order)
    # The rows have no searcher metric: the client reads it from the best validation, under
    # the name the experiment's config gives (loading.trial_values).
    note = f"loads experiment {scope.value} first: it names the trials' searcher metric"
    return _finish(query, source, residual_condition, client_order, (note,), scope.value)


def _fields(condition: Condition | None, order: Sequence[Ordering]) -> set[str]:
    """The columns a residual condition and a client-side ordering read."""
    leaves = () if condition is None else condition.leaves()
    refs = [leaf.field for leaf in leaves] + [o.field for o in order]
    return {ref.name for ref in refs if ref.kind == "column"}


def _trials_via_runs(query: Query) -> Plan:
    compiler = TreeCompiler("Trial", RUN_TREE, "LOCATION_TYPE_RUN_HYPERPARAMETERS")
    node, left = compiler.compile(query._where) if query._where is not None else (None, None)
    sort, client_order = _tree_sort(compiler, query._order)
    missing = sorted(_fields(left, client_order) & _NOT_IN_RUNS)
    if missing:
        raise QueryError(
            f"trials are listed across experiments by the runs search, whose rows have no "
            f"{' or '.join(missing)}: filter(experiment_id=...) (or exp.trials) to filter or "
            f"order on {'them' if len(missing) > 1 else 'it'}"
        )
    body: dict[str, Any] = {}
    if node is not None:
        body["filter"] = encode_filter(node, show_archived=True)
    if sort:
        body["sort"] = sort
    source = Source(
        "Trial", "SearchRuns", "POST", "/api/v1/runs", "sql", w.SearchRunsResponse, "runs",
        body=body, partial=True,
    )  # fmt: skip
    notes = (
        "runs search rows carry a subset of trial fields; the rest raise NotLoaded until refresh()",
    )
    return _finish(query, source, left, client_order, notes)


# Checkpoints ---------------------------------------------------------------------------------
_CHECKPOINT_SORT: Final = {
    "uuid": w.CheckpointSortBy.UUID, "trial_id": w.CheckpointSortBy.TRIAL_ID,
    "steps_completed": w.CheckpointSortBy.BATCH_NUMBER,
    "report_time": w.CheckpointSortBy.END_TIME, "state": w.CheckpointSortBy.STATE,
    "searcher_metric": w.CheckpointSortBy.SEARCHER_METRIC,
}  # fmt: skip


def _plan_checkpoints(query: Query) -> Plan:
    trial = scope_leaf(query._where, "trial_id")
    experiment = scope_leaf(query._where, "experiment_id")
    if trial is not None:
        where = path("/api/v1/trials/{id}/checkpoints", id=trial.value)
        rest = _without(query._where, trial)
    elif experiment is not None:
        where = path("/api/v1/experiments/{id}/checkpoints", id=experiment.value)
        rest = _without(query._where, experiment)
    else:
        raise QueryError(
            "the master lists checkpoints per experiment or per trial: use exp.checkpoints, "
            "trial.checkpoints, or filter(experiment_id=...) / filter(trial_id=...)"
        )
    params: dict[str, Any] = {}
    residual: list[Condition] = []
    for cond in rest:
        leaf = _column_leaf(cond, "state", ("exact", "in"))
        if leaf is not None and "states" not in params:
            params["states"] = leaf.value if leaf.lookup == "in" else [leaf.value]
        else:
            residual.append(cond)
    client_order: tuple[Ordering, ...] = ()
    if len(query._order) == 1:
        ordering = query._order[0]
        ref = ordering.field
        if ref.kind == "column" and ref.name in _CHECKPOINT_SORT:
            params["sortByAttr"] = _CHECKPOINT_SORT[ref.name]
        elif ref.kind == "metric" and ref.group == "validation" and ref.aggregate == "last":
            params["sortByMetric"] = ref.name
        else:
            client_order = query._order
        if not client_order:
            params["orderBy"] = w.OrderBy.DESC if ordering.descending else w.OrderBy.ASC
    elif query._order:
        client_order = query._order
    operation = "GetTrialCheckpoints" if trial is not None else "GetExperimentCheckpoints"
    source = Source(
        "Checkpoint", operation, "GET", where, "memory", w.CheckpointsResponse, "checkpoints",
        params=query_items(params), scoped=True,
    )  # fmt: skip
    return _finish(query, source, _join(residual), client_order)


# Workspaces, projects, models, users ---------------------------------------------------------
@dataclass
class _SimpleParams:
    """Pushes conjuncts into a GET list endpoint described by a small table.

    The endpoints' SQL has its quirks, followed here: a zero value ('' or 0) is the proto
    default and means no filter; repeated strings are joined with ',' and split again; name
    filters are LIKE / ILIKE patterns, so values are escaped.
    """

    exact: dict[str, str] = field(default_factory=dict)  # column -> param (one value)
    many: dict[str, str] = field(default_factory=dict)  # column -> repeated param (exact/in)
    contains: dict[str, str] = field(default_factory=dict)  # column -> ILIKE '%v%' param
    patterns: frozenset[str] = frozenset()  # exact params matched with LIKE
    params: dict[str, Any] = field(default_factory=dict)
    residual: list[Condition] = field(default_factory=list)

    def push_all(self, condition: Condition | None) -> None:
        for cond in conjuncts(condition):
            if not self._push(cond):
                self.residual.append(cond)

    def _push(self, cond: Condition) -> bool:
        if not isinstance(cond, Leaf) or cond.field.kind != "column":
            return False
        name, value = cond.field.name, cond.value
        if cond.lookup == "exact" and name in self.exact:
            param = self.exact[name]
            return self._set(param, like_escape(value) if param in self.patterns else value)
        if cond.lookup in ("exact", "in") and name in self.many:
            values = list(value) if cond.lookup == "in" else [value]
            return _listable(*values) and self._set(self.many[name], values)
        if cond.lookup in ("contains", "exact") and name in self.contains:
            pushed = self._set(self.contains[name], like_escape(value))
            if pushed and cond.lookup == "exact":
                self.residual.append(cond)  # a substring match narrows; the client checks
            return pushed
        return False

    def _set(self, param: str, value: Any) -> bool:
        # '' and 0 are the proto defaults, which the master reads as "no filter".
        unset = value in ("", 0) and not isinstance(value, bool)
        if param in self.params or unset:
            return False
        self.params[param] = value
        return True


def _simple_sort(
    query: Query, table: Mapping[str, w.WireEnum], params: dict[str, Any]
) -> tuple[Ordering, ...]:
    if not query._order:
        return ()
    if len(query._order) == 1 and query._order[0].field.kind == "column":
        sort = table.get(query._order[0].field.name)
        if sort is not None:
            params["sortBy"] = sort
            params["orderBy"] = w.OrderBy.DESC if query._order[0].descending else w.OrderBy.ASC
            return ()
    return query._order


def _plan_workspaces(query: Query) -> Plan:
    pusher = _SimpleParams(
        exact={"name": "nameCaseSensitive", "archived": "archived", "pinned": "pinned"},
        many={"username": "users", "user_id": "userIds"},
        patterns=frozenset({"nameCaseSensitive"}),
    )
    pusher.push_all(query._where)
    client_order = _simple_sort(
        query, {"id": w.WorkspaceSortBy.ID, "name": w.WorkspaceSortBy.NAME}, pusher.params
    )
    source = Source(
        "Workspace", "GetWorkspaces", "GET", "/api/v1/workspaces", "memory",
        w.WorkspacesResponse, "workspaces", params=query_items(pusher.params),
    )  # fmt: skip
    return _finish(query, source, _join(pusher.residual), client_order)


def _plan_projects(query: Query) -> Plan:
    scope = scope_leaf(query._where, "workspace_id")
    if scope is not None and scope.value == 0:
        scope = None  # /workspaces/0/projects lists the projects of every workspace
    workspace = 0 if scope is None else scope.value
    pusher = _SimpleParams(many={"username": "users", "user_id": "userIds"})
    residual: list[Condition] = []
    for cond in _without(query._where, scope):
        name = _column_leaf(cond, "name")
        archived = _column_leaf(cond, "archived")
        if name is not None and "name" not in pusher.params:
            # name= is a case-insensitive LIKE on the master; the client checks the case.
            if name.value:
                pusher.params["name"] = like_escape(name.value)
            residual.append(cond)
        elif archived is not None and "archived" not in pusher.params:
            # The master filters on the project's own flag but reports project OR workspace.
            pusher.params["archived"] = archived.value
            residual.append(cond)
        else:
            pusher.push_all(cond)
    sort_table = {
        "id": w.ProjectSortBy.ID, "name": w.ProjectSortBy.NAME,
        "description": w.ProjectSortBy.DESCRIPTION,
        "last_experiment_started_at": w.ProjectSortBy.LAST_EXPERIMENT_START_TIME,
    }  # fmt: skip
    client_order = _simple_sort(query, sort_table, pusher.params)
    source = Source(
        "Project", "GetWorkspaceProjects", "GET",
        path("/api/v1/workspaces/{id}/projects", id=workspace), "memory", w.ProjectsResponse,
        "projects", params=query_items(pusher.params), scoped=bool(workspace),
    )  # fmt: skip
    return _finish(query, source, _join(residual + pusher.residual), client_order)


def _plan_models(query: Query) -> Plan:
    pusher = _SimpleParams(
        exact={"archived": "archived", "id": "id"},
        many={"username": "users", "user_id": "userIds", "workspace_id": "workspaceIds"},
        contains={"name": "name", "description": "description"},
    )
    residual: list[Condition] = []
    for cond in conjuncts(query._where):
        label = _column_leaf(cond, "labels", ("contains",))
        if label is not None and "labels" not in pusher.params and _listable(label.value):
            pusher.params["labels"] = [label.value]  # ANY semantics: one label at a time
        else:
            pusher.push_all(cond)
    sort_table = {
        "name": w.ModelSortBy.NAME, "description": w.ModelSortBy.DESCRIPTION,
        "creation_time": w.ModelSortBy.CREATION_TIME,
        "last_updated_time": w.ModelSortBy.LAST_UPDATED_TIME,
        "num_versions": w.ModelSortBy.NUM_VERSIONS, "id": w.ModelSortBy.UNSPECIFIED,
    }  # fmt: skip
    client_order = _simple_sort(query, sort_table, pusher.params)
    source = Source(
        "Model", "GetModels", "GET", "/api/v1/models", "memory", w.ModelsResponse, "models",
        params=query_items(pusher.params),
    )  # fmt: skip
    return _finish(query, source, _join(residual + pusher.residual), client_order)


def _plan_model_versions(query: Query) -> Plan:
    scope = scope_leaf(query._where, "model_id") or scope_leaf(query._where, "model_name")
    if scope is None:
        raise QueryError(
            "the master lists model versions per model: use model.versions or "
            "filter(model_id=...) / filter(model_name=...)"
        )
    rest = _without(query._where, scope)
    params: dict[str, Any] = {}
    client_order = _simple_sort(
        query,
        {
            "version": w.ModelVersionSortBy.VERSION,
            "creation_time": w.ModelVersionSortBy.CREATION_TIME,
        },
        params,
    )
    source = Source(
        "ModelVersion", "GetModelVersions", "GET",
        path("/api/v1/models/{name}/versions", name=scope.value), "memory",
        w.GetModelVersionsResponse, "model_versions", params=query_items(params), scoped=True,
    )  # fmt: skip
    return _finish(query, source, _join(rest), client_order)


def _plan_users(query: Query) -> Plan:
    pusher = _SimpleParams(exact={"admin": "admin", "active": "active"})
    residual: list[Condition] = []
    for cond in conjuncts(query._where):
        leaf = _column_leaf(cond, "username", ("exact", "contains"))
        if leaf is not None and "name" not in pusher.params:
            # name= is ILIKE '%v%' on the display name OR the username: the client keeps the
            # username matches.
            if leaf.value:
                pusher.params["name"] = like_escape(leaf.value)
            residual.append(cond)
        else:
            pusher.push_all(cond)
    sort_table = {
        "id": w.UserSortBy.UNSPECIFIED, "display_name": w.UserSortBy.DISPLAY_NAME,
        "username": w.UserSortBy.USER_NAME, "admin": w.UserSortBy.ADMIN,
        "active": w.UserSortBy.ACTIVE, "modified_at": w.UserSortBy.MODIFIED_TIME,
        "last_auth_at": w.UserSortBy.LAST_AUTH_TIME, "remote": w.UserSortBy.REMOTE,
    }  # fmt: skip
    client_order = _simple_sort(query, sort_table, pusher.params)
    source = Source(
        "User", "GetUsers", "GET", "/api/v1/users", "memory", w.UsersResponse, "users",
        params=query_items(pusher.params),
    )  # fmt: skip
    return _finish(query, source, _join(residual + pusher.residual), client_order)


# Commands, shells, notebooks, TensorBoards, templates -----------------------------------------
_GENERIC_TASK_SOURCES: Final[dict[str, tuple[str, str, type[w.WireModel], str]]] = {
    "Command": ("GetCommands", "/api/v1/commands", w.CommandsResponse, "commands"),
    "Shell": ("GetShells", "/api/v1/shells", w.ShellsResponse, "shells"),
    "Notebook": ("GetNotebooks", "/api/v1/notebooks", w.NotebooksResponse, "notebooks"),
    "Tensorboard": (
        "GetTensorboards", "/api/v1/tensorboards", w.TensorboardsResponse, "tensorboards"
    ),
}  # fmt: skip
# SORT_BY_WORKSPACE_ID names a field (5) none of the four messages has: the master's api.Sort
# fails on it (a nil dereference, 500) once two tasks are listed, so it is sorted here.
_GENERIC_TASK_SORT: Final = {
    "id": w.TaskSortBy.ID, "description": w.TaskSortBy.DESCRIPTION,
    "start_time": w.TaskSortBy.START_TIME,
}  # fmt: skip


def _plan_generic_tasks(query: Query) -> Plan:
    # The command service lists a type's tasks (running, and ended within 24 hours), keeps
    # those of `users` OR `userIds` (either list alone filters; both make a union), and those of
    # `workspaceId` (0: every workspace).
    pusher = _SimpleParams(exact={"workspace_id": "workspaceId"})
    for cond in conjuncts(query._where):
        if not _push_task_user(cond, pusher.params):
            pusher.push_all(cond)
    client_order = _simple_sort(query, _GENERIC_TASK_SORT, pusher.params)
    operation, list_path, response, rows = _GENERIC_TASK_SOURCES[query.resource.__name__]
    source = Source(
        query.resource.__name__, operation, "GET", list_path, "memory", response, rows,
        params=query_items(pusher.params), scoped="workspaceId" in pusher.params,
    )  # fmt: skip
    return _finish(query, source, _join(pusher.residual), client_order)


def _push_task_user(cond: Condition, params: dict[str, Any]) -> bool:
    """Push one user filter, as ``users`` or ``userIds``: never both (a union)."""
    if "users" in params or "userIds" in params:
        return False
    for column, param in (("username", "users"), ("user_id", "userIds")):
        leaf = _column_leaf(cond, column, ("exact", "in"))
        if leaf is not None:
            values = list(leaf.value) if leaf.lookup == "in" else [leaf.value]
            if values and _listable(*values):
                params[param] = values
                return True
    return False


def _plan_templates(query: Query) -> Plan:
    # name= is ILIKE '%v%' (the client checks the exact match and the case); the master sorts
    # by name only (its default order).
    pusher = _SimpleParams(many={"workspace_id": "workspaceIds"})
    residual: list[Condition] = []
    for cond in conjuncts(query._where):
        leaf = _column_leaf(cond, "name", ("exact", "contains"))
        if leaf is not None and "name" not in pusher.params:
            if leaf.value:
                pusher.params["name"] = like_escape(leaf.value)
            residual.append(cond)
        else:
            pusher.push_all(cond)
    client_order = _simple_sort(query, {"name": w.TemplateSortBy.NAME}, pusher.params)
    source = Source(
        "Template", "GetTemplates", "GET", "/api/v1/templates", "sql", w.TemplatesResponse,
        "templates", params=query_items(pusher.params),
    )  # fmt: skip
    return _finish(query, source, _join(residual + pusher.residual), client_order)


def _plan_jobs(query: Query) -> Plan:
    # GetJobsV2 lists one pool's queue (the default pool without resourcePool), in queue order
    # (orderBy reverses it), keeps `states`, and pages in memory (limit 0 means 100).
    params: dict[str, Any] = {}
    residual: list[Condition] = []
    for cond in conjuncts(query._where):
        pool = _column_leaf(cond, "resource_pool")
        states = _column_leaf(cond, "state", ("exact", "in"))
        if pool is not None and "resourcePool" not in params and pool.value:
            params["resourcePool"] = pool.value
        elif states is not None and "states" not in params:
            values = list(states.value) if states.lookup == "in" else [states.value]
            if not values:
                residual.append(cond)
                continue
            params["states"] = values
        else:
            residual.append(cond)
    client_order: tuple[Ordering, ...] = query._order
    if len(query._order) == 1 and query._order[0].field.name == "jobs_ahead":
        params["orderBy"] = w.OrderBy.DESC if query._order[0].descending else w.OrderBy.ASC
        client_order = ()
    # An unknown pool is a 500 naming it (rm.GetJobQ): no job is in it.
    missing = "cannot find resource pool" if "resourcePool" in params else ""
    source = Source(
        "Job", "GetJobsV2", "GET", "/api/v1/job-queues-v2", "memory", w.GetJobsV2Response,
        "jobs", params=query_items(params), missing_parent=missing,
    )  # fmt: skip
    return _finish(query, source, _join(residual), client_order)


def _plan_tasks(query: Query) -> Plan:
    # GetTasks takes no parameter and answers every allocation the resource manager holds now
    # (queued or running), unpaged; a task's own fields come from GetTask. A filter on ids
    # reads those tasks directly, ended ones included.
    ids: list[str] | None = None
    residual: list[Condition] = []
    for cond in conjuncts(query._where):
        leaf = _column_leaf(cond, "id", ("exact", "in"))
        if leaf is not None and ids is None:
            ids = [leaf.value] if leaf.lookup == "exact" else list(leaf.value)
        else:
            residual.append(cond)
    if ids is not None:
        # No task id is empty or holds a "/" (one path segment each): those match nothing.
        keys = tuple(dict.fromkeys(i for i in ids if i and "/" not in i))
        source = Source(
            "Task", "GetTask", "GET", "/api/v1/tasks/{key}", "keys", w.GetTaskResponse, "task",
            keys=keys,
        )  # fmt: skip
        note = f"one GetTask per id ({len(keys)}), sent concurrently"
    else:
        source = Source(
            "Task", "GetTasks", "GET", "/api/v1/tasks", "none", w.GetTasksResponse, "allocations"
        )
        note = (
            "GetTasks lists only the tasks with an allocation queued or running now; each is "
            "then read with GetTask (one request per task, sent concurrently)"
        )
    return _finish(query, source, _join(residual), query._order, (note,))


def _plan_resource_pools(query: Query) -> Plan:
    # GetResourcePools filters on nothing but `unbound` (no field of a pool) and does not sort.
    source = Source(
        "ResourcePool", "GetResourcePools", "GET", "/api/v1/resource-pools", "memory",
        w.ResourcePoolsResponse, "resource_pools",
    )  # fmt: skip
    return _finish(query, source, query._where, query._order)


_AGENT_SORT: Final = {"id": w.AgentSortBy.ID, "registered_time": w.AgentSortBy.TIME}


def _plan_agents(query: Query) -> Plan:
    # GetAgents sorts by id or registration time (api.Sort) and filters on nothing.
    params: dict[str, Any] = {}
    client_order = _simple_sort(query, _AGENT_SORT, params)
    source = Source(
        "Agent", "GetAgents", "GET", "/api/v1/agents", "memory", w.AgentsResponse, "agents",
        params=query_items(params),
    )  # fmt: skip
    return _finish(query, source, query._where, client_order)


def _plan_webhooks(query: Query) -> Plan:
    # GetWebhooks answers every webhook the user may see at once: no filter, no sort, no paging.
    source = Source(
        "Webhook", "GetWebhooks", "GET", "/api/v1/webhooks", "none", w.WebhooksResponse,
        "webhooks",
    )  # fmt: skip
    return _finish(query, source, query._where, query._order)


_PLANNERS: Final[dict[str, Callable[[Query], Plan]]] = {
    "Experiment": _plan_experiments,
    "Trial": _plan_trials,
    "Checkpoint": _plan_checkpoints,
    "Workspace": _plan_workspaces,
    "Project": _plan_projects,
    "Model": _plan_models,
    "ModelVersion": _plan_model_versions,
    "User": _plan_users,
    "Command": _plan_generic_tasks,
    "Shell": _plan_generic_tasks,
    "Notebook": _plan_generic_tasks,
    "Tensorboard": _plan_generic_tasks,
    "Template": _plan_templates,
    "Job": _plan_jobs,
    "Task": _plan_tasks,
    "ResourcePool": _plan_resource_pools,
    "Webhook": _plan_webhooks,
    "Agent": _plan_agents,
}


def runs_source(column: Literal["id", "experiment_id"], values: Sequence[int]) -> Source:
    """The runs search for the trials whose ``column`` is one of ``values`` (any page size)."""
    compiler = TreeCompiler("Trial", RUN_TREE, "LOCATION_TYPE_RUN_HYPERPARAMETERS")
    pushed = compiler.tree(Leaf(FieldRef("column", column), "in", list(values)))
    assert pushed is not None
    return runs_filter_source(encode_filter(pushed.node, show_archived=True))


def runs_filter_source(filter_text: str) -> Source:
    """The runs search for the trials an encoded filter tree matches, by id."""
    body = {"filter": filter_text, "sort": "id=asc"}
    return Source(
        "Trial", "SearchRuns", "POST", "/api/v1/runs", "sql", w.SearchRunsResponse, "runs",
        body=body, partial=True,
    )  # fmt: skip


def exact_runs_filter(condition: Condition | None) -> str | None:
    """The encoded filter tree (archived runs included) matching exactly the trials that
    ``condition`` selects, or None when part of it is left to the client."""
    if condition is None:
        return encode_filter(None, show_archived=True)
    compiler = TreeCompiler("Trial", RUN_TREE, "LOCATION_TYPE_RUN_HYPERPARAMETERS")
    node, residual = compiler.compile(condition)
    return None if residual is not None else encode_filter(node, show_archived=True)
