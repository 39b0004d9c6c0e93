"""Declared relationships between resources (the sync and async APIs declare them on their
resource classes, and say how a missing parent is loaded: ``_load``).

``ToOne`` resolves a parent through the session's identity map (the sync API fetches it once
when missing; the async API cannot fetch inside an attribute read and raises NotLoaded);
assigning a parent (or its id) to a ``SettableToOne`` edits the key field, which the unit of work
sends as a move. ``ToMany`` returns a query of the children: nothing is sent until it is
iterated, and children a prefetch loaded answer it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Never, Protocol, Self, TypeVar, overload

from ..errors import InvalidAttribute, QueryError
from ._inputs import require

if TYPE_CHECKING:
    from ._base import Resource, SessionLike

__all__ = ["SettableToOne", "ToMany", "ToOne"]


class QueryLike(Protocol):
    """What ``ToMany`` needs of the query it makes (``QueryBase`` in ``_plan``, above)."""

    def _filter(self, conditions: Sequence[Never], lookups: dict[str, Any]) -> Self: ...
    def _as_children(self, parent: Resource, relation: str) -> Self: ...


P = TypeVar("P", bound="Resource")
Q = TypeVar("Q", bound="QueryLike")


class ToOne(Generic[P]):
    """``child.parent``: the object whose key is in ``key_field``."""

    def __init__(self, target: Callable[[], type[P]], key_field: str) -> None:
        self._target = target
        self._key_field = key_field
        self._name = ""

    def __set_name__(self, owner: type[Resource], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type[Resource]) -> ToOne[P]: ...
    @overload
    def __get__(self, obj: Resource, owner: type[Resource]) -> P: ...

    def __get__(self, obj: Resource | None, owner: type[Resource]) -> ToOne[P] | P:
        if obj is None:
            return self
        key = getattr(obj, self._key_field)
        if key is None:
            raise QueryError(f"this {type(obj).__name__} has no {self._name}")
        # The API's resource class says how: fetch once (sync) or refuse (async).
        return obj._parent(self._name, self._target(), key)

    def __set__(self, obj: Resource, value: Never) -> None:
        # Declared so that type checkers refuse ``trial.experiment = ...`` as well.
        raise InvalidAttribute(f"{type(obj).__name__}.{self._name} is read-only")


class SettableToOne(ToOne[P]):
    """A ``ToOne`` that can be assigned: ``exp.project = other`` is a move, sent on commit."""

    def __set__(self, obj: Resource, value: P | int) -> None:
        target = self._target()
        if isinstance(value, target) and value.is_new and not obj.is_new:
            # a new project or workspace: the move is made once the commit created it
            obj.session._refer_to_new(obj, self._key_field, value)
            return
        if isinstance(value, target):
            value = value.pk
        else:
            where = f"{type(obj).__name__}.{self._name}"
            require(where, value, int, f"a {target.__name__} or its id (an int)")
        setattr(obj, self._key_field, value)


class ToMany(Generic[Q]):
    """``parent.children``: a query of the objects whose ``key_field`` is the parent's id."""

    def __init__(self, query: Callable[[SessionLike | None], Q], key_field: str) -> None:
        self._query = query
        self._key_field = key_field
        self._name = ""

    def __set_name__(self, owner: type[Resource], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type[Resource]) -> ToMany[Q]: ...
    @overload
    def __get__(self, obj: Resource, owner: type[Resource]) -> Q: ...

    def __get__(self, obj: Resource | None, owner: type[Resource]) -> ToMany[Q] | Q:
        if obj is None:
            return self
        query = self._query(obj._session)._filter((), {self._key_field: obj.pk})
        return query._as_children(obj, self._name)
