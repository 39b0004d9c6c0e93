"""The planner: turns a query into the REST calls that answer it, pushing down what it can.

For each resource it knows the list endpoints of the real master and what each can filter and
sort on. It pushes every condition and ordering the chosen endpoint supports into the request
(query parameters, or the filter tree of experiments-search / runs) and leaves the rest to be
evaluated on the client, which :meth:`Query.explain` shows. Executing a plan (paging, parsing,
hydrating) is the thin loop in ``_query.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from . import _wire as w
from ._conditions import And, Condition, FieldRef, Leaf, Not, Or, Ordering
from ._transport import Call, path, query_items
from .errors import QueryError

if TYPE_CHECKING:
    from ._query import Query

__all__ = ["Plan", "Source", "plan_query"]

Paging = Literal["sql", "memory"]
DEFAULT_PAGE_SIZE: Final = 2000


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

    def call(self, offset: int, limit: int) -> Call:
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
    empty: bool = False

    @property
    def server_paging(self) -> bool:
        """True when offset and limit are sent to the master (nothing left to the client)."""
        return self.residual is None and not self.client_order

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


def scope_value(condition: Condition | None, name: str) -> Any:
    """The value of a top-level ``name == value`` conjunct (a relationship scope), if any."""
    for cond in conjuncts(condition):
        leaf = _column_leaf(cond, name)
        if leaf is not None:
            return leaf.value
    return None


def _without(condition: Condition | None, names: set[str]) -> list[Condition]:
    return [c for c in conjuncts(condition) if not any(_column_leaf(c, n) for n in names)]


# --- filter-tree compilation (experiments-search and runs) ----------------------------------
@dataclass(frozen=True)
class TreeColumn:
    """How a resource column appears in the filter tree and in the sort string."""

    column: str
    location: str
    type: str
    convert: Callable[[Any], Any] = lambda v: v
    sortable: bool = True


def _state_name(value: Any) -> str:
    return str(value.short) if isinstance(value, w.WireEnum) else str(value)


def _rfc3339(value: Any) -> str:
    return value.rfc3339() if isinstance(value, w.Timestamp) else str(value)


def _percent(value: Any) -> Any:
    # The filter tree's progress column is ROUND(progress * 100)::INTEGER.
    return round(value * 100)


EXP, RUN = "LOCATION_TYPE_EXPERIMENT", "LOCATION_TYPE_RUN"
NUM, TXT, DATE = "COLUMN_TYPE_NUMBER", "COLUMN_TYPE_TEXT", "COLUMN_TYPE_DATE"

# experiment_filter.go expColumnNameToSQL and sortExperiments.
EXPERIMENT_TREE: Final = {
    "id": TreeColumn("id", EXP, NUM),
    "name": TreeColumn("name", EXP, TXT),
    "description": TreeColumn("description", EXP, TXT),
    "tags": TreeColumn("tags", EXP, TXT, sortable=False),
    "state": TreeColumn("state", EXP, TXT, _state_name),
    "start_time": TreeColumn("startTime", EXP, DATE, _rfc3339),
    "end_time": TreeColumn("endTime", EXP, DATE, _rfc3339),
    "duration": TreeColumn("duration", EXP, NUM),
    "progress": TreeColumn("progress", EXP, NUM, _percent),
    "num_trials": TreeColumn("numTrials", EXP, NUM),
    "user_id": TreeColumn("user", EXP, NUM),
    "project_id": TreeColumn("projectId", EXP, NUM),
    "resource_pool": TreeColumn("resourcePool", EXP, TXT),
    "searcher_type": TreeColumn("searcherType", EXP, TXT),
    "searcher_metric": TreeColumn("searcherMetric", EXP, TXT),
    "forked_from": TreeColumn("forkedFrom", EXP, NUM),
    "checkpoint_size": TreeColumn("checkpointSize", EXP, NUM),
    "checkpoint_count": TreeColumn("checkpointCount", EXP, NUM),
    "best_trial_searcher_metric": TreeColumn("searcherMetricsVal", EXP, NUM),
    "external_experiment_id": TreeColumn("externalExperimentId", EXP, TXT),
}

# experiment_filter.go runColumnNameToSQL and sortRuns.
RUN_TREE: Final = {
    "id": TreeColumn("id", RUN, NUM),
    "experiment_id": TreeColumn("experimentId", RUN, NUM),
    "state": TreeColumn("state", RUN, TXT, _state_name),
    "start_time": TreeColumn("startTime", RUN, DATE, _rfc3339),
    "end_time": TreeColumn("endTime", RUN, DATE, _rfc3339),
    "total_checkpoint_size": TreeColumn("checkpointSize", RUN, NUM),
    "checkpoint_count": TreeColumn("checkpointCount", RUN, NUM),
    "searcher_metric_value": TreeColumn("searcherMetricsVal", RUN, NUM),
}

_COMPARISONS: Final = {"exact": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_NEGATED: Final = {
    "=": "!=", "!=": "=", ">": "<=", ">=": "<", "<": ">=", "<=": ">",
    "contains": "notContains", "notContains": "contains", "isEmpty": "notEmpty",
    "notEmpty": "isEmpty",
}  # fmt: skip
_METRIC_LOCATIONS: Final = {
    "validation": "LOCATION_TYPE_VALIDATIONS",
    "training": "LOCATION_TYPE_TRAINING",
}


class TreeCompiler:
    """Compiles a condition into the filter tree of experiments-search or runs.

    ``compile`` returns ``(node, residual)``: the part the master evaluates and the part left
    to the client. Inside an OR nothing can be left out, so an OR with a part the tree cannot
    express stays on the client as a whole. The tree has no NOT: negations are pushed to the
    leaves (De Morgan; ``<`` becomes ``>=``...).
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
        node = self.exact(condition)
        return (node, None) if node is not None else (None, condition)

    def exact(self, condition: Condition, negate: bool = False) -> w.FilterNode | None:
        """The whole condition as a tree, or None when any part cannot be expressed."""
        if isinstance(condition, Not):
            return self.exact(condition.child, not negate)
        if isinstance(condition, (And, Or)):
            conj = "and" if isinstance(condition, And) else "or"
            if negate:
                conj = "or" if conj == "and" else "and"
            nodes = [self.exact(c, negate) for c in condition.children]
            if any(n is None for n in nodes):
                return None
            return w.FilterNode.group(conj, [n for n in nodes if n is not None])  # type: ignore[arg-type]
        assert isinstance(condition, Leaf)
        return self._leaf(condition, negate)

    def _leaf(self, leaf: Leaf, negate: bool) -> w.FilterNode | None:
        target = self._target(leaf.field)
        if target is None:
            return None
        column, location, ctype, convert = target
        if leaf.lookup == "in":
            op = "!=" if negate else "="
            children = [
                w.FilterNode.field(column, op, convert(v), location=location, type=ctype)
                for v in leaf.value
            ]
            return w.FilterNode.group("and" if negate else "or", children)
        if leaf.lookup == "isnull":
            op = "isEmpty" if leaf.value else "notEmpty"
            value: Any = None
        elif leaf.lookup == "contains":
            if leaf.field.kind == "column" and leaf.field.name == "tags":
                # tags is the labels' JSON text: match the quoted label (case-insensitively).
                op, value = "contains", json.dumps(leaf.value)
            else:
                op, value = "contains", convert(leaf.value)
        elif leaf.lookup in _COMPARISONS:
            if leaf.field.kind == "column" and leaf.field.name == "tags":
                return None  # set equality cannot be expressed
            op, value = _COMPARISONS[leaf.lookup], convert(leaf.value)
        else:
            return None
        if negate:
            op = _NEGATED[op]
        if value is None and op not in ("isEmpty", "notEmpty"):
            return None  # a null value would make the master ignore the field
        return w.FilterNode.field(column, op, value, location=location, type=ctype)

    def _target(self, ref: FieldRef) -> tuple[str, str, str, Callable[[Any], Any]] | None:
        if ref.kind == "column":
            tree = self.columns.get(ref.name)
            if tree is None:
                return None
            return tree.column, tree.location, tree.type, tree.convert
        if ref.kind == "hp":
            return f"hp.{ref.name}", self.hp_location, NUM, _identity
        if ref.kind == "metadata":
            return f"metadata.{ref.name}", "LOCATION_TYPE_RUN_METADATA", NUM, _identity
        location = _METRIC_LOCATIONS.get(ref.group, "LOCATION_TYPE_CUSTOM_METRIC")
        return f"{ref.group}.{ref.name}.{ref.aggregate}", location, NUM, _identity

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


def _identity(value: Any) -> Any:
    return value


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
def plan_query(query: Query[Any]) -> Plan:
    """The plan of a query (no request is sent)."""
    planner = _PLANNERS[query.resource.__name__]
    return planner(query)


def _ordering_notes(plan_order: Sequence[Ordering]) -> tuple[str, ...]:
    if not plan_order:
        return ()
    return (
        f"sorted on the client by {', '.join(str(o) for o in plan_order)} (all matches are read)",
    )


def _finish(query: Query[Any], source: Source, residual: Condition | None,
            client_order: Sequence[Ordering], notes: Sequence[str] = ()) -> Plan:  # fmt: skip
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
# The master reports ACTIVE experiments as QUEUED/PULLING/STARTING/RUNNING but filters on the
# stored state, where those (but RUNNING) do not exist: ask for ACTIVE and check the rest here.
_REPORTED_ONLY: Final = {
    w.ExperimentState.QUEUED, w.ExperimentState.PULLING, w.ExperimentState.STARTING,
    w.ExperimentState.RUNNING,
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
        if leaf.lookup not in ("exact", "in"):
            return False
        wanted = set(leaf.value if leaf.lookup == "in" else [leaf.value])
        stored = {w.ExperimentState.ACTIVE if s in _REPORTED_ONLY else s for s in wanted}
        if w.ExperimentState.RUNNING in wanted:
            stored.add(w.ExperimentState.RUNNING)
        if "states" in self.params:
            stored &= set(self.params["states"])
        self.params["states"] = sorted(stored, key=lambda s: s.number)
        if wanted & _REPORTED_ONLY:
            self.residual.append(leaf)
        return True

    def _tags(self, leaf: Leaf) -> bool:
        if leaf.lookup != "contains":
            return False
        self.params.setdefault("labels", [])
        if leaf.value not in self.params["labels"]:
            self.params["labels"].append(leaf.value)
        return True

    def _substring(self, param: str, leaf: Leaf) -> bool:
        # name/description filter with ILIKE '%v%' (case-insensitive substring; % and _ are
        # wildcards on the master): exact and contains both narrow the rows, checked here too.
        if leaf.lookup not in ("contains", "exact") or param in self.params:
            return False
        self.params[param] = leaf.value
        if leaf.lookup == "exact" or any(ch in leaf.value for ch in "%_"):
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


def _plan_experiments(query: Query[Any]) -> Plan:
    get_plan = _experiments_via_get(query)
    if get_plan is not None:
        return get_plan
    return _experiments_via_search(query)


def _experiments_via_get(query: Query[Any]) -> Plan | None:
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
    )  # fmt: skip
    return _finish(query, source, _join(pusher.residual), ())


def _experiments_via_search(query: Query[Any]) -> Plan:
    compiler = TreeCompiler("Experiment", EXPERIMENT_TREE, "LOCATION_TYPE_HYPERPARAMETERS")
    project = scope_value(query._where, "project_id")
    rest = _without(query._where, {"project_id"}) if project else conjuncts(query._where)
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
        w.SearchExperimentsResponse, "experiments", body=body,
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


def _plan_trials(query: Query[Any]) -> Plan:
    experiment = scope_value(query._where, "experiment_id")
    if experiment is not None:
        return _trials_of_experiment(query, experiment)
    return _trials_via_runs(query)


def _trials_of_experiment(query: Query[Any], experiment: int) -> Plan:
    """GetExperimentTrials: full trial objects; states and one ordering are pushed down."""
    params: dict[str, Any] = {}
    residual: list[Condition] = []
    for cond in _without(query._where, {"experiment_id"}):
        leaf = _column_leaf(cond, "state", ("exact", "in"))
        if leaf is not None and "states" not in params:
            # The trials endpoint types its states filter with experimentv1.State names.
            values = leaf.value if leaf.lookup == "in" else [leaf.value]
            params["states"] = ["STATE_" + v.short for v in values]
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
        path("/api/v1/experiments/{id}/trials", id=experiment), "sql", w.TrialsResponse,
        "trials", params=query_items(params),
    )  # fmt: skip
    return _finish(query, source, _join(residual), client_order)


def _trials_via_runs(query: Query[Any]) -> Plan:
    compiler = TreeCompiler("Trial", RUN_TREE, "LOCATION_TYPE_RUN_HYPERPARAMETERS")
    node, left = compiler.compile(query._where) if query._where is not None else (None, None)
    sort, client_order = _tree_sort(compiler, query._order)
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


def _plan_checkpoints(query: Query[Any]) -> Plan:
    trial = scope_value(query._where, "trial_id")
    experiment = scope_value(query._where, "experiment_id")
    if trial is not None:
        where = path("/api/v1/trials/{id}/checkpoints", id=trial)
        rest = _without(query._where, {"trial_id"})
    elif experiment is not None:
        where = path("/api/v1/experiments/{id}/checkpoints", id=experiment)
        rest = _without(query._where, {"experiment_id"})
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
        params=query_items(params),
    )  # fmt: skip
    return _finish(query, source, _join(residual), client_order)


# Workspaces, projects, models, users ---------------------------------------------------------
@dataclass
class _SimpleParams:
    """Pushes conjuncts into a GET list endpoint described by a small table."""

    exact: dict[str, str] = field(default_factory=dict)  # column -> param (one value)
    many: dict[str, str] = field(default_factory=dict)  # column -> repeated param (exact/in)
    contains: dict[str, str] = field(default_factory=dict)  # column -> substring param
    params: dict[str, Any] = field(default_factory=dict)
    residual: list[Condition] = field(default_factory=list)

    def push_all(self, condition: Condition | None) -> None:
        for cond in conjuncts(condition):
            if not self._push(cond):
                self.residual.append(cond)

    def _push(self, cond: Condition) -> bool:
        if not isinstance(cond, Leaf) or cond.field.kind != "column":
            return False
        name = cond.field.name
        if cond.lookup == "exact" and name in self.exact:
            return self._set(self.exact[name], cond.value)
        if cond.lookup in ("exact", "in") and name in self.many:
            return self._set(
                self.many[name], list(cond.value) if cond.lookup == "in" else [cond.value]
            )
        if cond.lookup in ("contains", "exact") and name in self.contains:
            pushed = self._set(self.contains[name], cond.value)
            if pushed and cond.lookup == "exact":
                self.residual.append(cond)  # a substring match narrows; the client checks
            return pushed
        return False

    def _set(self, param: str, value: Any) -> bool:
        if param in self.params:
            return False
        self.params[param] = value
        return True


def _simple_sort(
    query: Query[Any], table: Mapping[str, w.WireEnum], params: dict[str, Any]
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


def _plan_workspaces(query: Query[Any]) -> Plan:
    pusher = _SimpleParams(
        exact={"name": "nameCaseSensitive", "archived": "archived", "pinned": "pinned"},
        many={"username": "users", "user_id": "userIds"},
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


def _plan_projects(query: Query[Any]) -> Plan:
    workspace = scope_value(query._where, "workspace_id") or 0
    pusher = _SimpleParams(many={"username": "users", "user_id": "userIds"})
    residual: list[Condition] = []
    for cond in _without(query._where, {"workspace_id"}) if workspace else conjuncts(query._where):
        name = _column_leaf(cond, "name")
        archived = _column_leaf(cond, "archived")
        if name is not None and "name" not in pusher.params:
            # name= is a case-insensitive match on the master; the client checks the case.
            pusher.params["name"] = name.value
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
        "projects", params=query_items(pusher.params),
    )  # fmt: skip
    return _finish(query, source, _join(residual + pusher.residual), client_order)


def _plan_models(query: Query[Any]) -> Plan:
    pusher = _SimpleParams(
        exact={"archived": "archived", "id": "id"},
        many={"username": "users", "user_id": "userIds", "workspace_id": "workspaceIds"},
        contains={"name": "name", "description": "description"},
    )
    residual: list[Condition] = []
    for cond in conjuncts(query._where):
        label = _column_leaf(cond, "labels", ("contains",))
        if label is not None and "labels" not in pusher.params:
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


def _plan_model_versions(query: Query[Any]) -> Plan:
    model = scope_value(query._where, "model_id") or scope_value(query._where, "model_name")
    if model is None:
        raise QueryError(
            "the master lists model versions per model: use model.versions or "
            "filter(model_id=...) / filter(model_name=...)"
        )
    rest = _without(query._where, {"model_id", "model_name"})
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
        path("/api/v1/models/{name}/versions", name=model), "memory",
        w.GetModelVersionsResponse, "model_versions", params=query_items(params),
    )  # fmt: skip
    return _finish(query, source, _join(rest), client_order)


def _plan_users(query: Query[Any]) -> Plan:
    pusher = _SimpleParams(exact={"admin": "admin", "active": "active"})
    residual: list[Condition] = []
    for cond in conjuncts(query._where):
        leaf = _column_leaf(cond, "username", ("exact", "contains"))
        if leaf is not None and "name" not in pusher.params:
            # name= matches display name OR username: the client keeps the username matches.
            pusher.params["name"] = leaf.value
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


_PLANNERS: Final[dict[str, Callable[[Query[Any]], Plan]]] = {
    "Experiment": _plan_experiments,
    "Trial": _plan_trials,
    "Checkpoint": _plan_checkpoints,
    "Workspace": _plan_workspaces,
    "Project": _plan_projects,
    "Model": _plan_models,
    "ModelVersion": _plan_model_versions,
    "User": _plan_users,
}


def runs_source(column: Literal["id", "experiment_id"], values: Sequence[int]) -> Source:
    """The runs search for the trials whose ``column`` is one of ``values`` (any page size)."""
    compiler = TreeCompiler("Trial", RUN_TREE, "LOCATION_TYPE_RUN_HYPERPARAMETERS")
    node = compiler.exact(Leaf(FieldRef("column", column), "in", list(values)))
    body = {"filter": encode_filter(node, show_archived=True), "sort": "id=asc"}
    return Source(
        "Trial", "SearchRuns", "POST", "/api/v1/runs", "sql", w.SearchRunsResponse, "runs",
        body=body, partial=True,
    )  # fmt: skip
