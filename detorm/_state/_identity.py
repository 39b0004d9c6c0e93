"""The identity map: one object per (type, key) per session.

Objects are held weakly, like SQLAlchemy's, so a session does not keep every row it ever read
alive; objects with pending edits are also held strongly until they are flushed or rolled back.
"""

from __future__ import annotations

import weakref
from _weakref import _remove_dead_weakref  # type: ignore[attr-defined]  # (see forget below)
from collections.abc import Iterator
from typing import Any, TypeVar

from .._resources._base import Resource

__all__ = ["IdentityMap"]

R = TypeVar("R", bound=Resource)

Key = tuple[str, Any]


class IdentityMap:
    def __init__(self) -> None:
        # Weak references by key; each one's callback drops its entry when its object dies.
        # (A WeakValueDictionary does the same in Python code per entry: slower by half for a
        # page of thousands of objects.)
        self._refs: dict[Key, weakref.ReferenceType[Resource]] = {}
        self._pinned: dict[Key, Resource] = {}

    @staticmethod
    def key_of(obj: Resource) -> Key:
        return (type(obj).__name__, obj.pk)

    def get(self, cls: type[R], key: Any) -> R | None:
        ref = self._refs.get((cls.__name__, key))
        obj = None if ref is None else ref()
        return obj if isinstance(obj, cls) else None

    def add(self, obj: Resource) -> None:
        key = self.key_of(obj)
        refs = self._refs

        def forget(ref: weakref.ReferenceType[Resource]) -> None:
            # Called when the object dies, in whatever thread drops it: the entry goes only if
            # it still holds a dead reference (a new object of that key may be there), in one
            # step, with the CPython helper WeakValueDictionary uses (weakref.py).
            _remove_dead_weakref(refs, key)

        refs[key] = weakref.ref(obj, forget)

    def discard(self, obj: Resource) -> None:
        key = self.key_of(obj)
        self._refs.pop(key, None)
        self._pinned.pop(key, None)

    def pin(self, obj: Resource) -> None:
        """Hold an object strongly (it has pending edits)."""
        self._pinned[self.key_of(obj)] = obj

    def unpin(self, obj: Resource) -> None:
        self._pinned.pop(self.key_of(obj), None)

    def __iter__(self) -> Iterator[Resource]:
        alive = (ref() for ref in list(self._refs.values()))
        return iter([obj for obj in alive if obj is not None])

    def __len__(self) -> int:
        return sum(1 for ref in list(self._refs.values()) if ref() is not None)
