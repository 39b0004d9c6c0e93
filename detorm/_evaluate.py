"""Client-side evaluation of what the master cannot filter or sort, with the master's semantics.

Comparisons follow SQL three-valued logic (a comparison with a missing value is unknown, and an
unknown row is not returned), ``contains`` is a case-insensitive substring match like the
master's ``ILIKE``, and ``isnull`` also matches empty strings and empty tag sets (``isEmpty``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._conditions import And, Condition, FieldRef, Leaf, Not, Or, Ordering
from ._resources._base import Resource, TagSet
from ._wire import WireEnum
from .errors import QueryError

__all__ = ["matches", "sort_key", "value_of"]

Truth = bool | None


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
    summaries = getattr(obj, "summary_metrics", None)
    if summaries is None:
        raise QueryError(f"{type(obj).__name__} has no metric summaries to evaluate {ref}")
    summary = summaries.get(ref.group, {}).get(ref.name)
    return None if summary is None else getattr(summary, ref.aggregate)


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
    return value.number if isinstance(value, WireEnum) else value


def _compare(op: str, left: Any, right: Any) -> Truth:
    if left is None:
        return None
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
    return (
        value is None or value == "" or (isinstance(value, (TagSet, set, frozenset)) and not value)
    )


def _leaf(leaf: Leaf, obj: Resource) -> Truth:
    value = value_of(obj, leaf.field)
    lookup = leaf.lookup
    if lookup == "isnull":
        return bool(_is_empty(value) == leaf.value)
    if value is None:
        return None
    if lookup == "exact":
        if isinstance(value, TagSet):
            return set(value) == set(leaf.value)
        return bool(value == leaf.value)
    if lookup == "ne":
        return bool(value != leaf.value)
    if lookup == "in":
        return bool(value in leaf.value)
    if lookup == "contains":
        if isinstance(value, TagSet):
            return leaf.value in value
        return str(leaf.value).lower() in str(value).lower()
    return _compare(lookup, value, leaf.value)


def _truth(condition: Condition, obj: Resource) -> Truth:
    if isinstance(condition, Leaf):
        return _leaf(condition, obj)
    if isinstance(condition, Not):
        inner = _truth(condition.child, obj)
        return None if inner is None else not inner
    if isinstance(condition, And):
        results = [_truth(c, obj) for c in condition.children]
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    if isinstance(condition, Or):
        results = [_truth(c, obj) for c in condition.children]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    raise QueryError(f"cannot evaluate {condition!r}")


def matches(condition: Condition, obj: Resource) -> bool:
    """True when the row satisfies the condition (unknown counts as not satisfied)."""
    return _truth(condition, obj) is True


def sort_key(order: Sequence[Ordering]) -> Callable[[Resource], Any]:
    """A key for ``sorted``: the given orderings, missing values last, then the id ascending."""

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
