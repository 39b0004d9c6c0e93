"""What the ops need of the session they run for (``SessionBase`` in ``_state``, above): a
Protocol, so that ops import nothing from the layers that run them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._plan._query import QuerySession
from .._resources._base import Resource

if TYPE_CHECKING:
    from .._io._cache import DiskCache
    from .._plan._edits import Change
    from ._effects import Op
    from ._http import _Http

__all__ = ["OpsSession"]

R = TypeVar("R", bound=Resource)


class MoveHook(Protocol):
    """The unit of work's hook that keeps a moved object's denormalised fields consistent."""

    def after_move(self, change: Change) -> None: ...


class OpsSession(QuerySession, Protocol):
    """The session as the ops read it: its transport and cache, its collections of children,
    and the reads and confirmations it runs."""

    _collections: dict[tuple[str, Any, str], list[Resource]]

    @property
    def transport(self) -> _Http: ...
    @property
    def progress(self) -> bool | None: ...
    @property
    def cache(self) -> DiskCache: ...
    @property
    def _cache_enabled(self) -> bool: ...
    @property
    def _uow(self) -> MoveHook: ...
    def _resolve(self, resource: type[R], key: Any) -> Op[R]: ...
    def _fetch(self, resource: type[R], key: Any) -> Op[R]: ...
    def _refresh(self, obj: R) -> Op[R]: ...
    def _trial_states(self, trial_ids: list[int]) -> Op[dict[int, bool]]: ...
    def _confirmed_value(self, obj: Resource, name: str, value: Any) -> None: ...
    def _forget(self, obj: Resource) -> None: ...
    def _rekey(self, obj: Resource, value: Any) -> None: ...
    @property
    def dirty(self) -> list[Resource]: ...
