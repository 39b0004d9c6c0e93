"""Queries: every field and lookup of the typed lookups, Q objects, hp / metrics expressions,
orderings, slices, indexes, limits and page sizes, with malformed values of every kind.

The property: building and running the query gives rows, or an input error raised before any
request (InvalidType when the value has the wrong type for the field's kind)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from detorm import Checkpoint, ModelVersion, Q, hp, metrics
from detorm._plan._columns import COLUMNS, Column
from detorm._plan._conditions import Condition, Ordering
from detorm._plan._query import QueryBase
from detorm._wire import WireEnum
from detorm.errors import NotFound
from tests.sdk.apis import MODES

from .conftest import GENERATED, RESOURCES, World, refused_as_type, refused_or_done
from .strategies import ANY_VALUE, EDGE_INTS, NUMBERS, ODD_TEXT, mostly, values_for

BY_NAME = {mode: {cls.__name__: cls for cls in RESOURCES[mode]} for mode in MODES}
"""Each API's resource classes by name."""
FILTERS = [
    (resource, column, lookup)
    for resource, columns in COLUMNS.items()
    for column in columns.values()
    for lookup in sorted(column.lookups)
]


def base_query(world: World, resource: str) -> QueryBase[Any]:
    """A query of ``resource`` (in the world's API) the master can answer (some lists need a
    parent)."""
    query: QueryBase[Any] = BY_NAME[world.mode][resource].query(world.session)
    if resource == "Checkpoint":
        return query._filter((), {"trial_id": world[Checkpoint].trial_id})
    if resource == "ModelVersion":
        return query._filter((), {"model_id": world[ModelVersion].model_id})
    return query


def run(world: World, query: QueryBase[Any]) -> list[Any]:
    try:
        return world.api.list(query.limit(3))
    except NotFound:
        return []  # a well-formed id of a parent that does not exist (experiment_id=0)


# Valid filters the planner answers wrongly today: bugs of the planner (reported to its owner),
# not of input checks. ``__isnull`` in the filter tree of experiments-search and runs (500),
# project_id of experiments anywhere but the scope (500: the master's own SQL is ambiguous),
# trial fields that runs rows lack (NotLoaded). These are built and planned here, not run.
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _of_kind(col: Column, value: object) -> bool:
    """Whether ``value`` has a type the column's kind takes (the lookups' documented types)."""
    return {
        "int": _is_int(value),
        "float": _is_int(value) or isinstance(value, float),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "time": isinstance(value, datetime | str),
        "enum": isinstance(value, str | WireEnum),
        "set": isinstance(value, str),
    }[col.kind]


def _a_collection(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)


def wrong_type(col: Column, lookup: str, value: object) -> bool:
    """True when the value's type alone is wrong for ``<column>__<lookup>``."""
    if lookup == "isnull":
        return not isinstance(value, bool)
    if lookup == "in" or (col.kind == "set" and lookup == "exact"):
        return not _a_collection(value)
    if lookup == "contains":
        return not isinstance(value, str)
    return not _of_kind(col, value)


@GENERATED
@given(
    spec=st.sampled_from(FILTERS),
    method=st.sampled_from(["_filter", "_exclude"]),
    data=st.data(),
)
def test_every_field_and_lookup(
    world: World, spec: tuple[str, Column, str], method: str, data: st.DataObject
) -> None:
    resource, col, lookup = spec
    value = data.draw(values_for(col.kind, lookup), label="value")
    key = col.name if lookup == "exact" else f"{col.name}__{lookup}"
    query = base_query(world, resource)
    # Read the type before the call: an iterator given as a value is used up by it.
    expect_type_error = wrong_type(col, lookup, value)

    def build_and_run() -> Any:
        built = getattr(query, method)((), {key: value})
        return run(world, built)

    if expect_type_error:
        refused_as_type(world.session, build_and_run)
    else:
        refused_or_done(world.session, build_and_run)


NAMES = mostly(st.one_of(ODD_TEXT, st.text(alphabet="ab._", max_size=5), st.just("lr")))
COMPARE = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in_", "contains", "isnull"])


def compare(field: Any, operator: str, value: Any) -> Any:
    if operator in ("in_", "contains", "isnull"):
        return getattr(field, operator)(value)
    return {
        "==": lambda: field == value,
        "!=": lambda: field != value,
        "<": lambda: field < value,
        "<=": lambda: field <= value,
        ">": lambda: field > value,
        ">=": lambda: field >= value,
    }[operator]()


@GENERATED
@given(
    resource=st.sampled_from(["Experiment", "Trial"]),
    kind=st.sampled_from(["hp", "metric", "custom metric", "lookup"]),
    name=NAMES,
    operator=COMPARE,
    value=mostly(st.one_of(NUMBERS, ODD_TEXT)),
)
def test_hp_and_metric_expressions(
    world: World, resource: str, kind: str, name: Any, operator: str, value: Any
) -> None:
    def build_and_run() -> list[Any]:
        if kind == "hp":
            condition = compare(hp[name], operator, value)
        elif kind == "metric":
            condition = compare(metrics.validation[name].min, operator, value)
        elif kind == "custom metric":
            condition = compare(metrics[name].loss.last, operator, value)
        else:
            condition = Q(**{f"hp__{name}__gt": value}) if isinstance(name, str) else Q(name)
        return run(world, base_query(world, resource).filter(condition))

    refused_or_done(world.session, build_and_run)


CONDITIONS = mostly(
    st.sampled_from([Q(id=1), hp.lr > 0, Q(name__contains="res"), metrics.validation.loss.min < 1])
)


@GENERATED
@given(parts=st.lists(CONDITIONS, max_size=3))
def test_q_objects_and_combinations(world: World, parts: list[Any]) -> None:
    def build_and_run() -> list[Any]:
        combined = Q(*parts)
        for part in parts:
            combined = (combined | part) & ~combined
        return run(world, base_query(world, "Experiment").filter(combined))

    if all(isinstance(p, Condition) for p in parts):
        refused_or_done(world.session, build_and_run)
    else:
        refused_as_type(world.session, build_and_run)


ORDER_KEYS = st.one_of(
    ANY_VALUE,
    st.text(alphabet="-+.abdehilmnoprstv_", max_size=12),
    st.sampled_from(["hp.", "-hp.lr", "metadata.x", "validation..min", "training.loss.max"]),
)


@GENERATED
@given(resource=st.sampled_from(sorted(COLUMNS)), keys=st.lists(ORDER_KEYS, max_size=2))
def test_order_by(world: World, resource: str, keys: list[Any]) -> None:
    query = base_query(world, resource)
    if keys and not isinstance(keys[0], str | Ordering):  # keys are read in order
        refused_as_type(world.session, lambda: run(world, query._order_by(keys)))
    else:
        refused_or_done(world.session, lambda: run(world, query._order_by(keys)))


BOUNDS = mostly(st.one_of(st.none(), EDGE_INTS, st.integers()))


@GENERATED
@given(
    resource=st.sampled_from(sorted(COLUMNS)),
    index=st.one_of(BOUNDS, st.builds(slice, BOUNDS, BOUNDS, st.sampled_from([None, 1, 2]))),
)
def test_indexes_and_slices(world: World, resource: str, index: Any) -> None:
    query = base_query(world, resource)

    def read() -> Any:
        try:
            found = query[index]  # a query for a slice; a row, or in the async API its awaitable
            return world.api.list(found) if isinstance(found, QueryBase) else world.api(found)
        except IndexError:
            return None  # past the last row, as for a list

    if not isinstance(index, slice) and not _is_int(index):
        refused_as_type(world.session, read)
    else:
        refused_or_done(world.session, read)


@GENERATED
@given(
    resource=st.sampled_from(sorted(COLUMNS)),
    method=st.sampled_from(["limit", "offset", "page_size", "prefetch"]),
    value=BOUNDS,
)
def test_limits_offsets_page_sizes(world: World, resource: str, method: str, value: Any) -> None:
    query = base_query(world, resource)
    takes_none = method == "limit"
    action = lambda: run(world, getattr(query, method)(value))  # noqa: E731
    if not (_is_int(value) or (takes_none and value is None) or method == "prefetch"):
        refused_as_type(world.session, action)
    else:
        refused_or_done(world.session, action)
