"""The identity map: one object per (type, key) per session.

Objects are held weakly, like SQLAlchemy's, so a session does not keep every row it ever read
alive; objects with pending edits are also held strongly until they are flushed or rolled back.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any, TypeVar

from .._resources._base import Resource

__all__ = ["IdentityMap"]

R = TypeVar("R", bound=Resource)

Key = tuple[str, Any]


class IdentityMap:
    def __init__(self) -> None:
        self._objects: weakref.WeakValueDictionary[Key, Resource] = weakref.WeakValueDictionary()
        self._pinned: dict[Key, Resource] = {}

    @staticmethod
    def key_of(obj: Resource) -> Key:
        return (type(obj).__name__, obj.pk)

    def get(self, cls: type[R], key: Any) -> R | None:
        obj = self._objects.get((cls.__name__, key))
        return obj if isinstance(obj, cls) else None

    def add(self, obj: Resource) -> None:
        self._objects[self.key_of(obj)] = obj

    def discard(self, obj: Resource) -> None:
        key = self.key_of(obj)
        self._objects.pop(key, None)
        self._pinned.pop(key, None)

    def pin(self, obj: Resource) -> None:
        """Hold an object strongly (it has pending edits)."""
        self._pinned[self.key_of(obj)] = obj

    def unpin(self, obj: Resource) -> None:
        self._pinned.pop(self.key_of(obj), None)

    def __iter__(self) -> Iterator[Resource]:
        return iter(list(self._objects.values()))

    def __len__(self) -> int:
        return len(self._objects)
