"""Client-side evaluation of what the master cannot filter or sort, with the master's semantics.

The same condition must select the same rows whether the planner pushes it to the master or
leaves it here, so this module follows what the master's SQL does (``experiment_filter.go``):
comparisons follow SQL three-valued logic (a comparison with a missing value is unknown, and an
unknown row is not returned); ``contains`` is a case-insensitive substring match on fields, like
the master's ``ILIKE``, and a case-sensitive one on hyperparameters, metrics and metadata, like
its ``LIKE``; ``isnull`` is the master's ``isEmpty`` (missing, ``''`` or ``'[]'``, or an empty tag
set); text compares with the master's database collation; NaN equals itself and sorts above
every number, as in Postgres.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from .._resources._base import Resource, TagSet
from .._resources._models import Checkpoint, Experiment, Trial
from .._wire import ExperimentState, WireEnum
from ..errors import QueryError
from ._collation import collation_key
from ._conditions import And, Condition, FieldRef, Leaf, Not, Or, Ordering
from ._planner import NEGATED

__all__ = ["matches", "sort_key", "value_of"]

Truth = bool | None

# An active experiment is reported in one of these states, never as ACTIVE; the master's own
# isActiveExperimentState (api_experiment.go) counts them all as active.
_ACTIVE_STATES: Final = frozenset({
    ExperimentState.ACTIVE, ExperimentState.QUEUED, ExperimentState.PULLING,
    ExperimentState.STARTING, ExperimentState.RUNNING,
})  # fmt: skip


def value_of(obj: Resource, ref: FieldRef) -> Any:
    """The value a condition on ``ref`` compares, read from a loaded object."""
    if ref.kind == "column":
        return getattr(obj, ref.name)
    if ref.kind == "hp":
        source = getattr(obj, "hparams", None)
        if source is None:
            source = _const_values(getattr(obj, "hyperparameters", {}))
        return _dig(source, ref.name.split("."))
    if ref.kind == "metadata":
        return _dig(getattr(obj, "metadata", {}), ref.name.split("."))
    if isinstance(obj, Checkpoint):
        # A checkpoint's metrics are those of the validation at its step (sortByMetric).
        return obj.validation_metrics.get(ref.name)
    summary = _summaries(obj).get(ref.group, {}).get(ref.name)
    return None if summary is None else getattr(summary, ref.aggregate)


def _summaries(obj: Resource) -> Mapping[str, Any]:
    if isinstance(obj, Experiment):
        # An experiment's metrics are its best trial's, as in the master's filter and sort:
        # the search that read the experiment loaded it (and the experiment holds it).
        best = obj.__dict__.get("best_trial_id")
        trial = (
            None if best is None or obj._session is None else obj._session.identity.get(Trial, best)
        )
        return {} if trial is None else trial.summary_metrics
    summaries = getattr(obj, "summary_metrics", None)
    if summaries is None:
        raise QueryError(f"{type(obj).__name__} has no metric summaries")
    return summaries  # type: ignore[no-any-return]


def _dig(source: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(source, Mapping) or part not in source:
            return None
        source = source[part]
    return source


def _const_values(space: Mapping[str, Any]) -> dict[str, Any]:
    # An experiment's hyperparameters are a search space: only constants have one value.
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, Mapping) and spec.get("type") == "const":
            out[name] = spec.get("val")
        elif isinstance(spec, Mapping) and "type" not in spec:
            out[name] = _const_values(spec)
    return out


def _comparable(value: Any) -> Any:
    """A key that orders values as the master does (None is handled by the callers)."""
    if isinstance(value, WireEnum):
        return value.number
    if isinstance(value, str):
        return collation_key(value)
    if isinstance(value, float) and math.isnan(value):
        return (1, 0.0)  # float8: NaN above every number
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return value


def _compare(op: str, left: Any, right: Any) -> Truth:
    left, right = _comparable(left), _comparable(right)
    try:
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return None


def _is_empty(value: Any) -> bool:
    # isEmpty: `col IS NULL OR col = '' OR col = '[]'` (expRunOperatorQuery).
    if isinstance(value, (TagSet, set, frozenset)):
        return not value
    return value is None or (isinstance(value, str) and value in ("", "[]"))


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(value, TagSet):
        return set(value) == set(wanted)
    if wanted is ExperimentState.ACTIVE:
        return value in _ACTIVE_STATES
    return bool(value == wanted)


def _contains(ref: FieldRef, value: Any, wanted: Any) -> bool:
    if isinstance(value, TagSet):
        return wanted in value
    if ref.kind == "column":
        return str(wanted).lower() in str(value).lower()
    return str(wanted) in str(value)


def _leaf(ref: FieldRef, lookup: str, wanted: Any, obj: Resource) -> Truth:
    if ref.kind == "hp" and isinstance(obj, Experiment) and lookup != "isnull":
        return _hp_definition(_dig(obj.hyperparameters, ref.name.split(".")), lookup, wanted)
    value = value_of(obj, ref)
    if lookup == "isnull":
        return bool(_is_empty(value) == wanted)
    if value is None:
        return None
    if lookup in ("in", "notin"):
        return any(_same(value, w) for w in wanted) == (lookup == "in")
    if lookup in ("exact", "ne"):
        return _same(value, wanted) == (lookup == "exact")
    if lookup in ("contains", "notcontains"):
        return _contains(ref, value, wanted) == (lookup == "contains")
    return _compare(lookup, value, wanted)


def _hp_definition(spec: Any, lookup: str, wanted: Any) -> Truth:
    """A condition on an experiment's hyperparameter, evaluated on its search space definition
    as the master's hpToSQL does: a constant compares its value; a range (int, double, log)
    matches when either bound does, and contains a number between its bounds; a categorical
    contains one of its choices; anything else is false."""
    if lookup in ("in", "notin"):
        parts = [_hp_definition(spec, "exact" if lookup == "in" else "ne", w) for w in wanted]
        return _any_of(parts) if lookup == "in" else _all_of(parts)
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    text = isinstance(wanted, str)  # the planner sends strings as text, the rest as numbers
    if kind == "const":
        return _hp_constant(spec.get("val"), lookup, wanted, text)
    if kind == "categorical" and lookup in ("contains", "notcontains"):
        choices = spec.get("vals")
        found = None if choices is None else text and wanted in choices
        return found if lookup == "contains" else found is not True
    if kind in ("int", "double", "log") and not text:
        low, high = spec.get("minval"), spec.get("maxval")
        if lookup in ("contains", "notcontains"):
            inside = lookup == "contains"
            return _any_of([_hp_number(low, "lte" if inside else "gte", wanted),
                            _hp_number(high, "gte" if inside else "lte", wanted)])  # fmt: skip
        return _any_of([_hp_number(low, lookup, wanted), _hp_number(high, lookup, wanted)])
    return False


def _hp_constant(value: Any, lookup: str, wanted: Any, text: bool) -> Truth:
    if lookup in ("contains", "notcontains"):
        if not text:
            return False
        if not isinstance(value, str):
            return None
        return (wanted in value) == (lookup == "contains")  # LIKE: case-sensitive
    if text:
        return _hp_value(value, lookup, wanted) if isinstance(value, str) else None
    return _hp_number(value, lookup, wanted)


def _hp_number(value: Any, lookup: str, wanted: Any) -> Truth:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # missing, or a text the master's ::float8 cast rejects
    return _hp_value(value, lookup, wanted)


def _hp_value(value: Any, lookup: str, wanted: Any) -> Truth:
    if lookup in ("exact", "ne"):
        return bool(value == wanted) == (lookup == "exact")
    return _compare(lookup, value, wanted)


def _any_of(results: Sequence[Truth]) -> Truth:
    if True in results:
        return True
    return None if None in results else False


def _all_of(results: Sequence[Truth]) -> Truth:
    if False in results:
        return False
    return None if None in results else True


def _truth(condition: Condition, obj: Resource, negate: bool = False) -> Truth:
    """Negations are pushed to the leaves as the planner pushes them into the master's filter
    tree, so that both evaluate a negated condition the same way."""
    if isinstance(condition, Leaf):
        lookup, wanted = condition.lookup, condition.value
        if negate:
            lookup = NEGATED[lookup]
            wanted = not wanted if lookup == "isnull" else wanted
        return _leaf(condition.field, lookup, wanted, obj)
    if isinstance(condition, Not):
        return _truth(condition.child, obj, not negate)
    if isinstance(condition, (And, Or)):
        results = [_truth(c, obj, negate) for c in condition.children]
        return _any_of(results) if isinstance(condition, Or) != negate else _all_of(results)
    raise QueryError(f"cannot evaluate {condition!r}")


def matches(condition: Condition, obj: Resource) -> bool:
    """True when the row satisfies the condition (unknown counts as not satisfied)."""
    return _truth(condition, obj) is True


def sort_key(order: Sequence[Ordering]) -> Callable[[Resource], Any]:
    """A key for ``sorted``: the given orderings, missing values last, then the id ascending
    (the experiments and runs searches' ``ASC`` / ``DESC NULLS LAST``, ``id ASC``)."""

    def compare(a: Resource, b: Resource) -> int:
        for ordering in order:
            left = _comparable(value_of(a, ordering.field))
            right = _comparable(value_of(b, ordering.field))
            if left == right:
                continue
            if left is None:
                return 1
            if right is None:
                return -1
            try:
                result = -1 if left < right else 1
            except TypeError:
                result = -1 if str(left) < str(right) else 1
            return -result if ordering.descending else result
        return -1 if a.pk < b.pk else (1 if a.pk > b.pk else 0)

    return functools.cmp_to_key(compare)
