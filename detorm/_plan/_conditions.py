"""Filter conditions: lookups, ``Q`` objects, and the ``hp`` / ``metrics`` expressions.

A condition is a tree of :class:`Leaf` comparisons combined with ``&``, ``|`` and ``~``. Leaves
compare a :class:`FieldRef`: a resource column, a hyperparameter, a metric summary
(``validation.loss.min``) or a run metadata key. Values are checked against the column's type
when a query is compiled, before anything is sent.

Spellings (all equivalent)::

    Experiment.query().filter(state__in=["ACTIVE", "PAUSED"], tags__contains="prod")
    Experiment.query().filter(Q(hp__lr__gt=0.01) | Q(validation__loss__min__lt=0.3))
    Experiment.query().filter((hp.lr > 0.01) | (metrics.validation.loss.min < 0.3))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from .._resources._inputs import (
    INT32_MAX,
    INT64_MAX,
    check_int,
    check_iterable,
    check_number,
    check_text,
    require,
)
from .._wire import Timestamp
from ..errors import QueryError
from ._columns import COLUMNS, LOOKUPS, SUPPORTS_HP_AND_METRICS, Column

__all__ = [
    "And",
    "Condition",
    "FieldRef",
    "Leaf",
    "MetricExpr",
    "Not",
    "Or",
    "Ordering",
    "Q",
    "hp",
    "metrics",
]

Aggregate = Literal["min", "max", "mean", "last"]
AGGREGATES: Final = ("min", "max", "mean", "last")
# Named metric groups; any other group is spelled ``metrics__<group>__<name>__<aggregate>``.
METRIC_GROUPS: Final = ("validation", "training")


@dataclass(frozen=True)
class FieldRef:
    """What a condition compares: a column, ``hp.<path>``, a metric summary or metadata."""

    kind: Literal["column", "hp", "metric", "metadata"]
    name: str
    group: str = ""
    aggregate: str = ""

    def __post_init__(self) -> None:
        # hp[5] or metrics[None]: names are strings (checked here, where every spelling meets).
        require(f"a {self.kind} name", self.name, str, "a str")
        require("a metric group", self.group, str, "a str")

    def __str__(self) -> str:
        if self.kind == "hp":
            return f"hp.{self.name}"
        if self.kind == "metric":
            return f"{self.group}.{self.name}.{self.aggregate}"
        if self.kind == "metadata":
            return f"metadata.{self.name}"
        return self.name


class Condition:
    """A boolean condition; combine with ``&``, ``|`` and ``~``."""

    def __and__(self, other: Condition) -> Condition:
        return And.of(self, _condition(other))

    def __or__(self, other: Condition) -> Condition:
        return Or.of(self, _condition(other))

    def __invert__(self) -> Condition:
        return Not(self)

    def leaves(self) -> Iterable[Leaf]:
        """Every field lookup of the condition, depth first."""
        raise NotImplementedError


def _condition(value: object) -> Condition:
    require("a condition", value, Condition, "Q(...) or an expression such as hp.lr > 0.01")
    assert isinstance(value, Condition)
    return value


@dataclass(frozen=True, eq=True)
class Leaf(Condition):
    """``field <lookup> value``."""

    field: FieldRef
    lookup: str
    value: Any

    def leaves(self) -> Iterable[Leaf]:
        """Every field lookup of the condition, depth first."""
        yield self

    def __str__(self) -> str:
        value = sorted(self.value) if isinstance(self.value, frozenset) else self.value
        return f"{self.field} {self.lookup} {value!r}"


@dataclass(frozen=True, eq=True)
class And(Condition):
    children: tuple[Condition, ...]

    @classmethod
    def of(cls, *conditions: Condition) -> Condition:
        flat: list[Condition] = []
        for c in conditions:
            flat.extend(c.children if isinstance(c, And) else (c,))
        return flat[0] if len(flat) == 1 else cls(tuple(flat))

    def leaves(self) -> Iterable[Leaf]:
        """Every field lookup of the condition, depth first."""
        for child in self.children:
            yield from child.leaves()

    def __str__(self) -> str:
        return "(" + " AND ".join(str(c) for c in self.children) + ")"


@dataclass(frozen=True, eq=True)
class Or(Condition):
    children: tuple[Condition, ...]

    @classmethod
    def of(cls, *conditions: Condition) -> Condition:
        flat: list[Condition] = []
        for c in conditions:
            flat.extend(c.children if isinstance(c, Or) else (c,))
        return flat[0] if len(flat) == 1 else cls(tuple(flat))

    def leaves(self) -> Iterable[Leaf]:
        """Every field lookup of the condition, depth first."""
        for child in self.children:
            yield from child.leaves()

    def __str__(self) -> str:
        return "(" + " OR ".join(str(c) for c in self.children) + ")"


@dataclass(frozen=True, eq=True)
class Not(Condition):
    child: Condition

    def leaves(self) -> Iterable[Leaf]:
        """Every field lookup of the condition, depth first."""
        yield from self.child.leaves()

    def __str__(self) -> str:
        return f"NOT {self.child}"


@dataclass(frozen=True)
class Ordering:
    """A sort key: a field and a direction."""

    field: FieldRef
    descending: bool = False

    def __str__(self) -> str:
        return ("-" if self.descending else "") + str(self.field)


# --- keyword lookups ------------------------------------------------------------------------
class Q(Condition):
    """Keyword lookups as a condition, combinable with ``&``, ``|`` and ``~``.

    ``Q(name__contains="bert", state="ACTIVE")`` is the AND of its lookups. Keys are
    ``<field>[__<lookup>]``; hyperparameters are ``hp__<name>[__<nested>...][__<lookup>]``;
    metric summaries ``validation__<metric>__<min|max|mean|last>[__<lookup>]`` (also
    ``training__...`` and ``metrics__<group>__<metric>__<aggregate>``).
    """

    def __init__(self, *conditions: Condition, **lookups: Any) -> None:
        parts = [_condition(c) for c in conditions]
        parts += [parse_lookup(key, value) for key, value in lookups.items()]
        if not parts:
            raise QueryError("Q() needs at least one lookup or condition")
        self.condition: Condition = And.of(*parts)

    def leaves(self) -> Iterable[Leaf]:
        """Every field lookup of the condition, depth first."""
        return self.condition.leaves()

    def __repr__(self) -> str:
        return f"Q({self.condition})"


def unwrap(condition: Condition) -> Condition:
    """Replace Q wrappers by what they hold (the planner works on And/Or/Not/Leaf only)."""
    if isinstance(condition, Q):
        return unwrap(condition.condition)
    if isinstance(condition, And):
        return And.of(*(unwrap(c) for c in condition.children))
    if isinstance(condition, Or):
        return Or.of(*(unwrap(c) for c in condition.children))
    if isinstance(condition, Not):
        return Not(unwrap(condition.child))
    return condition


def parse_lookup(key: str, value: Any) -> Leaf:
    """``"hp__lr__gt"`` -> ``Leaf(hp lr, "gt", value)`` (columns are checked at compile time)."""
    parts = key.split("__")
    lookup = "exact"
    if len(parts) > 1 and parts[-1] in LOOKUPS:
        lookup = parts.pop()
    head = parts[0]
    if head == "hp":
        if len(parts) < 2:
            raise QueryError(f"{key!r}: name the hyperparameter, e.g. hp__lr__gt=0.01")
        return Leaf(FieldRef("hp", ".".join(parts[1:])), lookup, value)
    if head == "metadata":
        if len(parts) < 2:
            raise QueryError(f"{key!r}: name the metadata key, e.g. metadata__team='nlp'")
        return Leaf(FieldRef("metadata", ".".join(parts[1:])), lookup, value)
    if head in METRIC_GROUPS or head == "metrics":
        return Leaf(_metric_ref(key, parts), lookup, value)
    if len(parts) > 1:
        raise QueryError(
            f"{key!r}: unknown lookup {parts[-1]!r}; lookups are: {', '.join(LOOKUPS)}"
        )
    return Leaf(FieldRef("column", head), lookup, value)


def _metric_ref(key: str, parts: list[str]) -> FieldRef:
    if parts[0] == "metrics":
        parts = parts[1:]
    if len(parts) < 3 or parts[-1] not in AGGREGATES:
        raise QueryError(
            f"{key!r}: a metric filter names the group, the metric and which summary "
            f"({', '.join(AGGREGATES)}), e.g. validation__loss__min__lt=0.3"
        )
    group, *name, aggregate = parts
    return FieldRef("metric", ".".join(name), group=group, aggregate=aggregate)


# --- expressions ----------------------------------------------------------------------------
class FieldExpr:
    """A field in an expression: compare it to get a condition (``hp.lr > 0.01``)."""

    __slots__ = ("_ref",)

    def __init__(self, ref: FieldRef) -> None:
        self._ref = ref

    def __eq__(self, value: object) -> Leaf:  # type: ignore[override]
        return Leaf(self._ref, "exact", value)

    def __ne__(self, value: object) -> Leaf:  # type: ignore[override]
        return Leaf(self._ref, "ne", value)

    def __lt__(self, value: object) -> Leaf:
        return Leaf(self._ref, "lt", value)

    def __le__(self, value: object) -> Leaf:
        return Leaf(self._ref, "lte", value)

    def __gt__(self, value: object) -> Leaf:
        return Leaf(self._ref, "gt", value)

    def __ge__(self, value: object) -> Leaf:
        return Leaf(self._ref, "gte", value)

    def in_(self, values: Iterable[Any]) -> Leaf:
        return Leaf(self._ref, "in", check_iterable(f"{self._ref}.in_()", values, "a list"))

    def contains(self, value: str | float) -> Leaf:
        """A substring of a text value; for an experiment's range hyperparameter, a number
        inside the range (the master's hpToSQL)."""
        return Leaf(self._ref, "contains", value)

    def isnull(self, flag: bool = True) -> Leaf:
        return Leaf(self._ref, "isnull", flag)

    def asc(self) -> Ordering:
        return Ordering(self._ref, descending=False)

    def desc(self) -> Ordering:
        return Ordering(self._ref, descending=True)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{self._ref}>"


class HpExpr(FieldExpr):
    """A hyperparameter; attribute access walks nested hyperparameters (``hp.optimizer.lr``)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> HpExpr:
        if name.startswith("__"):
            raise AttributeError(name)
        return HpExpr(FieldRef("hp", f"{self._ref.name}.{name}"))

    def __getitem__(self, name: str) -> HpExpr:
        return HpExpr(FieldRef("hp", f"{self._ref.name}.{name}"))


class _HpNamespace:
    """``hp.<name>`` or ``hp["dotted.name"]``: a hyperparameter in an expression."""

    def __getattr__(self, name: str) -> HpExpr:
        if name.startswith("__"):
            raise AttributeError(name)
        return HpExpr(FieldRef("hp", name))

    def __getitem__(self, name: str) -> HpExpr:
        return HpExpr(FieldRef("hp", name))

    def __repr__(self) -> str:
        return "hp"


class MetricExpr:
    """A metric of a group; pick the summary to compare: ``.min``, ``.max``, ``.mean``, ``.last``."""

    __slots__ = ("_group", "_name")

    def __init__(self, group: str, name: str) -> None:
        self._group, self._name = group, name

    def _summary(self, aggregate: str) -> FieldExpr:
        return FieldExpr(FieldRef("metric", self._name, group=self._group, aggregate=aggregate))

    @property
    def min(self) -> FieldExpr:
        return self._summary("min")

    @property
    def max(self) -> FieldExpr:
        return self._summary("max")

    @property
    def mean(self) -> FieldExpr:
        return self._summary("mean")

    @property
    def last(self) -> FieldExpr:
        return self._summary("last")


class MetricGroup:
    """The metrics of one group: ``metrics.validation.loss`` or ``metrics.validation["val.loss"]``."""

    __slots__ = ("_group",)

    def __init__(self, group: str) -> None:
        self._group = group

    def __getattr__(self, name: str) -> MetricExpr:
        if name.startswith("__"):
            raise AttributeError(name)
        return MetricExpr(self._group, name)

    def __getitem__(self, name: str) -> MetricExpr:
        return MetricExpr(self._group, name)


class _MetricsNamespace:
    """``metrics.validation``, ``metrics.training``, or ``metrics["custom_group"]``."""

    @property
    def validation(self) -> MetricGroup:
        return MetricGroup("validation")

    @property
    def training(self) -> MetricGroup:
        return MetricGroup("training")

    def __getitem__(self, group: str) -> MetricGroup:
        return MetricGroup(group)

    def __repr__(self) -> str:
        return "metrics"


hp: Final = _HpNamespace()
metrics: Final = _MetricsNamespace()


# --- checking and normalising values --------------------------------------------------------
# A wrong type raises InvalidType (also a TypeError); a value of the right type that the master
# cannot compare raises QueryError. Both are raised when the query is built: nothing is sent.
def check_leaf(resource: str, leaf: Leaf) -> Leaf:
    """Validate a leaf against the resource's catalog; returns it with normalised values."""
    ref = leaf.field
    if ref.kind != "column":
        if resource not in SUPPORTS_HP_AND_METRICS:
            raise QueryError(f"{resource} cannot be filtered on {ref.kind} ({ref})")
        if ref.kind == "metadata" and resource != "Trial":
            raise QueryError(f"{resource} cannot be filtered on run metadata ({ref})")
        if leaf.lookup not in LOOKUPS:
            raise QueryError(f"unknown lookup {leaf.lookup!r} on {ref}")
        _check_names(ref)
        return Leaf(ref, leaf.lookup, _free_value(ref, leaf.lookup, leaf.value))
    columns = COLUMNS[resource]
    col = columns.get(ref.name)
    if col is None:
        raise QueryError(
            f"{resource} has no field {ref.name!r}; fields you can filter on: "
            f"{', '.join(sorted(columns))}"
            + (
                ", and hp / metrics (see detorm.hp, detorm.metrics)"
                if resource in SUPPORTS_HP_AND_METRICS
                else ""
            )
        )
    if leaf.lookup not in col.lookups:
        raise QueryError(
            f"{resource}.{col.name} does not support the lookup {leaf.lookup!r}; "
            f"it supports: {', '.join(sorted(col.lookups))}"
        )
    return Leaf(ref, leaf.lookup, normalise_value(resource, col, leaf.lookup, leaf.value))


def _check_names(ref: FieldRef) -> None:
    """A hyperparameter, metric or metadata key names something: no empty part."""
    parts = [ref.group, *ref.name.split(".")] if ref.kind == "metric" else ref.name.split(".")
    if not all(parts):
        raise QueryError(f"{ref}: a name or one of its dotted parts is empty")
    # The master reads a metric column with `([[:print:]]+?)\.([[:print:]]+)\.(min|max|...)`,
    # searched anywhere in the text: any other character fails, or worse, moves the match.
    if ref.kind == "metric" and not all(" " <= c <= "~" for part in parts for c in part):
        raise QueryError(
            f"{ref}: the master's metric names are printable ASCII (space to '~') only"
        )


def _free_value(ref: FieldRef, lookup: str, value: Any) -> Any:
    """A value compared with a hyperparameter, metric or metadata key (no declared type)."""
    if lookup == "isnull":
        require(f"{ref}__isnull", value, bool, "True or False")
        return value
    if lookup == "in":
        return [_scalar(ref, v) for v in _as_list(ref, value)]
    if lookup in ("gt", "gte", "lt", "lte"):
        return check_number(f"{ref}__{lookup}", value, error=QueryError)
    if lookup == "contains":
        if ref.kind == "hp" and not isinstance(value, str):
            # A range hyperparameter contains a number between its bounds (hpToSQL).
            return check_number(f"{ref}__contains", value, error=QueryError)
        require(f"{ref}__contains", value, str, "a str")
    return _scalar(ref, value)


def _scalar(ref: FieldRef, value: Any) -> Any:
    # The master compares these as numbers (a float8 cast) or as text: a bool fails its SQL.
    require(str(ref), value, (int, float, str), "a number or a str")
    if isinstance(value, str):
        return check_text(str(ref), value, error=QueryError)
    if isinstance(value, float):
        return check_number(str(ref), value, error=QueryError)
    return value


def _as_list(ref: object, value: Any) -> list[Any]:
    values = check_iterable(f"{ref}__in", value, "a list of values")
    if not values:
        raise QueryError(f"{ref}__in needs at least one value")
    return values


def normalise_value(resource: str, col: Column, lookup: str, value: Any) -> Any:
    where = f"{resource}.{col.name}"
    if lookup == "isnull":
        require(f"{where}__isnull", value, bool, "True or False")
        return value
    if lookup == "in":
        return [_typed(where, col, v) for v in _as_list(where, value)]
    if col.kind == "set":
        if lookup == "contains":
            require(f"{where}__contains", value, str, "one tag (a non-empty str)")
            if not value:
                raise QueryError(f"{where}__contains takes one tag (a non-empty str), not ''")
            return check_text(where, value, error=QueryError)
        tags = check_iterable(where, value, "a set of tags (it compares the whole set)")
        return frozenset(_typed(where, col, v) for v in tags)
    if lookup == "contains":
        require(f"{where}__contains", value, str, "a str")
    return _typed(where, col, value)


def _typed(where: str, col: Column, value: Any) -> Any:
    kind = col.kind
    if kind == "enum":
        assert col.enum is not None
        if isinstance(value, col.enum):
            return value
        require(where, value, str, f"a {col.enum.__name__} or its name")
        try:
            return col.enum.parse(value)
        except ValueError as err:
            raise QueryError(f"{where}: {err}") from None
    if kind == "time":
        if isinstance(value, datetime):
            return Timestamp.from_datetime(value if value.tzinfo else value.replace(tzinfo=UTC))
        require(where, value, str, "a datetime or an RFC 3339 str")
        try:
            return Timestamp.parse(value)
        except ValueError as err:
            raise QueryError(f"{where}: {err}") from None
    if kind == "bool":
        require(where, value, bool, "True or False")
        return value
    if kind == "int":
        limit = _int_limit(col)
        return check_int(where, value, low=-limit - 1, high=limit, error=QueryError)
    if kind == "float":
        return float(check_number(where, value, error=QueryError))
    require(where, value, str, "a str")
    return check_text(where, value, error=QueryError)


def _int_limit(col: Column) -> int:
    # Ids are int32 in the master's protos, and their filters travel as int32 parameters
    # (experimentIdFilter, userIds...): larger values are refused with a 400. Other counts and
    # sizes are Postgres integers, int64 at most.
    return INT32_MAX if col.name == "id" or col.name.endswith("_id") else INT64_MAX


def parse_ordering(resource: str, key: str | Ordering) -> Ordering:
    """``"start_time"``, ``"-end_time"``, ``"hp.lr"``, ``"-validation.loss.min"`` or an Ordering."""
    require("order_by", key, (str, Ordering), "field names or hp / metrics orderings")
    if isinstance(key, Ordering):
        ordering = key
    else:
        assert isinstance(key, str)
        descending = key.startswith("-")
        ordering = Ordering(_ordering_ref(key.lstrip("-+")), descending)
    ref = ordering.field
    if ref.kind == "column":
        col = COLUMNS[resource].get(ref.name)
        if col is None or not col.sortable:
            sortable = sorted(n for n, c in COLUMNS[resource].items() if c.sortable)
            raise QueryError(
                f"{resource} cannot be ordered by {ref.name!r}; it can be ordered by: "
                f"{', '.join(sortable)}"
            )
        return ordering
    _check_names(ref)
    if resource == "Checkpoint":
        # sortByMetric: the metric of the validation at the checkpoint, one value ("last").
        if ref.kind != "metric" or ref.group != "validation" or ref.aggregate != "last":
            raise QueryError(
                f"Checkpoint cannot be ordered by {ref}; it can be ordered by its fields or by "
                f"a validation metric as validation.<metric>.last"
            )
    elif resource not in SUPPORTS_HP_AND_METRICS:
        raise QueryError(f"{resource} cannot be ordered by {ref}")
    elif ref.kind == "metadata" and resource != "Trial":
        raise QueryError(
            f"{resource} cannot be ordered by run metadata ({ref}): run metadata orders trials"
        )
    return ordering


def _ordering_ref(text: str) -> FieldRef:
    if text.startswith("hp."):
        return FieldRef("hp", text[3:])
    if text.startswith("metadata."):
        return FieldRef("metadata", text[len("metadata.") :])
    if "." in text:
        group, _, rest = text.partition(".")
        name, _, aggregate = rest.rpartition(".")
        if not name or aggregate not in AGGREGATES:
            raise QueryError(f"{text!r}: order by a metric as <group>.<metric>.<min|max|mean|last>")
        return FieldRef("metric", name, group=group, aggregate=aggregate)
    return FieldRef("column", text)
