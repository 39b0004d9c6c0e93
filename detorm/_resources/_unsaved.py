"""Types of new objects: a resource made by its constructor is not on the master yet, so the
fields the master fills when it creates it (ids, owners, counts, times) are unset until the
commit. Constructible resources (Workspace, Project, Model) take a type parameter saying which
they are: ``Workspace(name="x")`` is a ``Workspace[New]``, whose server fields are typed
``T | None`` (and read None); a ``Workspace`` read from the master is a ``Workspace[Saved]``
(the default: plain ``Workspace``), whose ``id`` is an ``int``. A parameter that takes both
(``Project(workspace=...)``) says ``Workspace[Any]``: a function typed ``Workspace`` takes only
saved ones, whose ids it may use.

Only the type checker sees the difference: at run time ``Server[int]`` is ``int`` annotated
with :data:`SERVER_FIELD` (how the base class knows which fields read None on a new object),
and the classes are not parametrised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Generic, Protocol, overload

from typing_extensions import TypeVar

__all__ = ["SERVER_FIELD", "New", "S", "Saved", "Server", "is_server_field", "saved"]


class Saved:
    """The state of an object read from (or created on) the master."""


class New:
    """The state of an object made by its constructor, not created on the master yet."""


S = TypeVar("S", default=Saved, covariant=True)
T = TypeVar("T")
SERVER_FIELD: Final = "detorm: filled by the master at creation"


def is_server_field(metadata: list[Any]) -> bool:
    return SERVER_FIELD in metadata


def saved(cls: type[Any]) -> type[Any]:
    """``cls`` as the class of saved objects, for the classmethods of a constructible resource
    (inside its class, ``cls`` carries the unbound state parameter)."""
    return cls


if TYPE_CHECKING:

    class _SavedObject(Protocol):
        @property
        def _state(self) -> Saved: ...

    class Server(Generic[T]):
        """A field the master fills at creation: unset (None) on a new object."""

        @overload
        def __get__(self, obj: None, owner: Any) -> Server[T]: ...
        @overload
        def __get__(self, obj: _SavedObject, owner: Any) -> T: ...
        @overload
        def __get__(self, obj: object, owner: Any) -> T | None: ...  # New, or either
        def __get__(self, obj: Any, owner: Any) -> Any: ...

else:

    class Server:
        def __class_getitem__(cls, item: Any) -> Any:
            return Annotated[item, SERVER_FIELD]
