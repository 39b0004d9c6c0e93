"""The base of user-facing resources: typed data, a link to the session, nothing else.

A resource is a pydantic model with snake_case typed fields. It holds data only: its session
(held by a private attribute) keeps identity, snapshots and pending edits. Some list endpoints
return fewer fields than a single GET; fields a resource was not loaded with are absent and
raise :class:`~detorm.errors.NotLoaded` instead of fetching behind the caller's back.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterable, Iterator, MutableSet
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from pydantic_core import core_schema

from .. import _display
from ..errors import ConfigurationError, InvalidAttribute, InvalidType, InvalidValue, NotLoaded
from ._inputs import check_id, check_iterable, check_json_object, check_text, require, shown
from ._relations import ToMany, ToOne
from ._unsaved import is_server_field

__all__ = ["Resource", "SessionLike", "TagSet", "TrackedDict", "construct", "init_new"]

R = TypeVar("R", bound="Resource")


class IdentityLike(Protocol):
    """The identity map as resources and loaders read it (``IdentityMap`` in ``_state``)."""

    def get(self, cls: type[R], key: Any) -> R | None: ...


class SessionLike(Protocol):
    """What the layers below the session need of it (``SessionBase`` in ``_state``, which imports
    this module): its identity map, merging values into it, and hearing of edits."""

    @property
    def identity(self) -> IdentityLike: ...
    def merge(self, resource: type[R], values: dict[str, Any]) -> R: ...
    def _record_edit(self, obj: Resource, name: str, old: Any) -> None: ...
    def _refer_to_new(self, obj: Resource, key_field: str, parent: Resource) -> None: ...


class TagSet(MutableSet[str]):
    """A set of strings that tells its owner when it changes (experiment tags, model labels).

    Assign a new set or mutate in place (``add``, ``discard``, ``remove``, ``update``, ``|=``);
    either way the session records the change.
    """

    __slots__ = ("_items", "_on_change")

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._items: dict[str, None] = dict.fromkeys(check_iterable("tags", items, "str tags"))
        if not all(type(item) is str for item in self._items):  # (the master's are)
            for item in self._items:
                require("a tag", item, str, "a str")
        self._on_change: Any = None

    @classmethod
    def of_wire(cls, items: list[str]) -> TagSet:
        """The tags a wire model holds (validated there as a list of str): no checks again,
        as a page of thousands of rows would pay them per row."""
        tags = cls.__new__(cls)
        tags._items = dict.fromkeys(items)
        tags._on_change = None
        return tags

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and item in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, value: str) -> None:
        _check_tag(value)
        if value not in self._items:
            before = frozenset(self._items)
            self._items[value] = None
            self._changed(before)

    def discard(self, value: str) -> None:
        require("a tag", value, str, "a str")
        if value in self._items:
            before = frozenset(self._items)
            del self._items[value]
            self._changed(before)

    # The in-place operators check every tag first, so that a bad one changes nothing.
    def __ior__(self, other: AbstractSet[str]) -> Self:  # type: ignore[override, misc]
        return super().__ior__(_checked_tags(other))

    def __iand__(self, other: AbstractSet[Any]) -> Self:
        return super().__iand__(_checked_tags(other))

    def __isub__(self, other: AbstractSet[Any]) -> Self:
        return super().__isub__(_checked_tags(other))

    def __ixor__(self, other: AbstractSet[str]) -> Self:  # type: ignore[override, misc]
        return super().__ixor__(_checked_tags(other))

    def update(self, *others: Iterable[str]) -> None:
        """Add every tag of ``others`` (``|=`` for several iterables)."""
        for other in others:
            self |= _checked_tags(other)

    def _changed(self, before: frozenset[str]) -> None:
        if self._on_change is not None:
            self._on_change(self, before)

    def __repr__(self) -> str:
        return "{" + ", ".join(repr(v) for v in self._items) + "}" if self._items else "set()"

    def __reduce__(self) -> Any:
        return (TagSet, (list(self._items),))  # the tags only, not the link to the session

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (set, frozenset, TagSet)):
            return set(self._items) == set(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _checked_tags,
            serialization=core_schema.plain_serializer_function_ser_schema(sorted),
        )


class TrackedDict(dict[str, Any]):
    """A metadata dict that tells its owner about top-level changes (``d[k] = v``, ``del``,
    ``update``...). Changes nested deeper are not seen: reassign the key, or the whole dict."""

    __slots__ = ("_on_change",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_change: Any = None

    def _edit(self, apply: Any) -> Any:
        before = dict(self)
        try:
            result = apply()
        except TypeError as err:  # an unhashable key (update() may have taken the items before)
            super().clear()
            super().update(before)
            raise InvalidType(f"metadata keys must be str: {err}") from None
        try:
            check_json_object("metadata", dict(self))
        except InvalidValue:
            super().clear()  # back to what it was: the refused edit is not kept
            super().update(before)
            raise
        if self._on_change is not None and dict(self) != before:
            self._on_change(self, before)
        return result

    def __setitem__(self, key: str, value: Any) -> None:
        self._edit(lambda: super(TrackedDict, self).__setitem__(key, value))

    def __delitem__(self, key: str) -> None:
        self._edit(lambda: super(TrackedDict, self).__delitem__(key))

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._edit(lambda: super(TrackedDict, self).update(*args, **kwargs))

    def pop(self, key: str, *default: Any) -> Any:
        return self._edit(lambda: super(TrackedDict, self).pop(key, *default))

    def popitem(self) -> tuple[str, Any]:
        item: tuple[str, Any] = self._edit(lambda: super(TrackedDict, self).popitem())
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        return self._edit(lambda: super(TrackedDict, self).setdefault(key, default))

    def clear(self) -> None:
        self._edit(lambda: super(TrackedDict, self).clear())

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


def _check_tag(value: object) -> None:
    # A tag travels in a URL path (PUT .../labels/{label}) and in jsonb: it cannot be empty.
    require("a tag", value, str, "a non-empty str")
    assert isinstance(value, str)
    if not value:
        raise InvalidValue("a tag must be a non-empty str, not ''")
    check_text("a tag", value)


def _checked_tags(value: object) -> TagSet:
    items = check_iterable("tags", value, "a set of non-empty str")
    for item in items:
        _check_tag(item)
    return TagSet(items)


class Resource(BaseModel):
    """Base of Workspace, Project, Experiment, Trial, Checkpoint, Model, ModelVersion, User."""

    model_config = ConfigDict(
        validate_assignment=True,
        arbitrary_types_allowed=True,
        extra="forbid",
        protected_namespaces=(),
        revalidate_instances="never",
        ignored_types=(ToOne, ToMany),  # relationships are descriptors, not fields
        # Schemas are built on a class's first use, not at import: `import detorm` stays cheap.
        defer_build=True,
    )

    _session: SessionLike | None = PrivateAttr(default=None)
    # True once a single-object GET filled the object (list rows may lack some fields).
    _fetched: bool = PrivateAttr(default=False)
    # Objects this one needs while it lives, held strongly (the identity map holds weakly): an
    # experiment read by a search holds its best trial, whose metrics are the experiment's.
    _held: tuple[Resource, ...] = PrivateAttr(default=())
    # A new object (made by its constructor, not yet created on the master): the new objects
    # it needs created first, by field (a project's new workspace); None for others.
    _creating: dict[str, Resource] | None = PrivateAttr(default=None)

    # The field that identifies an object on the master ("id" for most, "uuid" for checkpoints).
    _key_field: ClassVar[str] = "id"
    # Fields the unit of work can change; anything else is read-only.
    _editable: ClassVar[frozenset[str]] = frozenset()
    # Why a read-only field is, and what changes it instead, where that is not obvious.
    _read_only_hints: ClassVar[dict[str, str]] = {}
    # Fields that only some of the master's routes send (refresh() does not load them): which.
    _not_loaded_hints: ClassVar[dict[str, str]] = {}

    @property
    def pk(self) -> Any:
        """The identity of this object on its master (``id``, or ``uuid`` for checkpoints)."""
        try:
            return self.__dict__[self._key_field]
        except KeyError:
            raise NotLoaded(_not_created(self, self._key_field)) from None

    @property
    def is_new(self) -> bool:
        """Whether this object was made by its constructor and is not created on the master yet
        (``session.add(obj)`` then ``session.commit()`` creates it and fills its server fields)."""
        return self._key_field not in self.__dict__

    @property
    def session(self) -> SessionLike:
        """The session this object belongs to."""
        if self._session is None:
            raise ConfigurationError(f"this {type(self).__name__} is not attached to a session")
        return self._session

    def __getstate__(self) -> dict[Any, Any]:
        # A pickle holds the data only: the session (its connection and credentials) stays in
        # this process, and the unpickled object is not attached to any session.
        state = super().__getstate__()
        private = {**state["__pydantic_private__"], "_session": None, "_held": ()}
        state["__pydantic_private__"] = private
        return state

    @property
    def loaded_fields(self) -> frozenset[str]:
        """Names of the fields this object holds (others raise NotLoaded)."""
        return frozenset(name for name in type(self).model_fields if name in self.__dict__)

    def _getattr_fallback(self, name: str) -> Any:
        # Only reached when normal lookup fails: a declared field missing from __dict__ was not
        # loaded by the endpoint this object came from.
        fields = type(self).model_fields
        if name in fields:
            if self.is_new:
                if is_server_field(fields[name].metadata):
                    return None  # typed ``T | None`` on a new object (_unsaved.py)
                raise NotLoaded(_not_created(self, name))
            hint = type(self)._not_loaded_hints.get(name)
            remedy = hint or "call .refresh() to load every field"
            raise NotLoaded(
                f"{type(self).__name__}.{name} was not loaded by the request that returned this "
                f"object; {remedy}"
            )
        return super().__getattr__(name)  # type: ignore[misc]

    def _parent(self, relation: str, target: type[R], key: Any) -> R:
        """The object a to-one relationship names (its API's resource class decides how)."""
        raise NotImplementedError

    def _hold(self, other: Resource) -> None:
        """Keep ``other`` alive as long as this object (a parent it has loaded)."""
        if all(held is not other for held in self._held):
            self._held = (*self._held, other)

    def _setattr_checked(self, name: str, value: Any) -> None:
        cls = type(self)
        if name.startswith("_"):
            super().__setattr__(name, value)  # private attributes (the session link)
            return
        if name not in cls.model_fields:
            attribute = inspect.getattr_static(cls, name, None)
            if isinstance(attribute, ToOne):
                object.__setattr__(self, name, value)  # a move (exp.project = p), or refused
                return
            if isinstance(attribute, ToMany | property):
                raise InvalidAttribute(f"{cls.__name__}.{name} is read-only; {_editable(cls)}")
            raise InvalidAttribute(f"{cls.__name__} has no attribute {name!r}; {_editable(cls)}")
        if name not in cls._editable:
            hint = cls._read_only_hints.get(name)
            why = f" ({hint})" if hint else ""
            raise InvalidAttribute(f"{cls.__name__}.{name} is read-only{why}; {_editable(cls)}")
        had, old = name in self.__dict__, self.__dict__.get(name)
        try:
            # Strict: pydantic's lax mode would turn "yes" into True, and "3" or 3.0 into 3.
            self.__pydantic_validator__.validate_assignment(self, name, value, strict=True)
        except ValidationError as err:
            raise _refusal(cls, name, value, err) from None
        try:
            _check_common(f"{cls.__name__}.{name}", name, self.__dict__[name])
            self._check(name, self.__dict__[name])
        except InvalidValue:
            if had:
                self.__dict__[name] = old
            else:
                del self.__dict__[name]  # still not loaded
            raise
        if self._session is not None:
            self._session._record_edit(self, name, old)

    if not TYPE_CHECKING:
        # Hidden from type checkers, which would otherwise accept any attribute name (exp.nmae)
        # on a class that defines these hooks (as pydantic does for BaseModel, pydantic#8643).
        __getattr__ = _getattr_fallback
        __setattr__ = _setattr_checked

    def _check(self, name: str, value: Any) -> None:
        """Refuse values the master would refuse (subclasses add their rules)."""
        if name == "name" and (not isinstance(value, str) or not value.strip()):
            raise InvalidValue(f"{type(self).__name__}.name cannot be empty or blank")

    # What a repr shows, in order (``Experiment(id=155, name='mnist', state=COMPLETED)``): each
    # class declares it; detorm._display renders it (fields not loaded are left out).
    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "name")
    # Fields holding a secret (a webhook's URL): displays show no more than their URL's host.
    _hidden_fields: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        return _display.resource_repr(self)

    __str__ = __repr__

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # pydantic's rich/devtools pretty-printers read this: the same fields as the repr.
        return _display.resource_repr_pairs(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: a table of the loaded fields (no request is sent)."""
        return _display.resource_html(self)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Resource)
        if self.is_new or other.is_new:
            return self is other
        return self.pk == other.pk and self._session is other._session

    def __hash__(self) -> int:
        # A new object hashes by identity until it is created (keep it out of sets until then).
        return id(self) if self.is_new else hash((type(self).__name__, self.pk))


def _editable(cls: type[Resource]) -> str:
    fields = ", ".join(sorted(cls._editable))
    return f"editable fields: {fields}" if fields else "it has no editable fields"


def _refusal(cls: type[Resource], name: str, value: Any, err: ValidationError) -> InvalidValue:
    """The error of a value the field's type refused."""
    first = err.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, InvalidValue):  # our own validators (tags) say what is valid
        return type(cause)(f"{cls.__name__}.{name}: {cause}")
    return InvalidType(
        f"{cls.__name__}.{name} must be {_describe(cls.model_fields[name].annotation)}, not "
        f"{type(value).__name__} ({shown(value)}): {first['msg']}"
    )


def _describe(annotation: Any) -> str:
    """A field's type as written in its declaration (``int | None``, ``tuple[Note, ...]``)."""
    if annotation is type(None):
        return "None"
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_describe(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else _describe(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    return str(getattr(annotation, "__name__", annotation))


def _check_common(where: str, name: str, value: Any) -> None:
    """Rules of every resource: text the master can store, and ids of real objects (an edited
    ``*_id`` field is a move to that project or workspace: a positive int32)."""
    if isinstance(value, str):
        check_text(where, value)
    if name.endswith("_id"):
        check_id(where, value)


def _not_created(obj: Resource, name: str) -> str:
    return (
        f"this new {type(obj).__name__} has no {name} until it is created: session.add() it, "
        "then session.commit()"
    )


def init_new(obj: Resource, values: dict[str, Any], creating: dict[str, Resource]) -> None:
    """Make ``obj`` a new object holding ``values`` (what its creation will send), checked as
    an assignment would check them; ``creating``: the new objects it needs created first."""
    cls = type(obj)
    object.__setattr__(obj, "__dict__", {})
    object.__setattr__(obj, "__pydantic_fields_set__", set())
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(
        obj, "__pydantic_private__",
        {"_session": None, "_fetched": False, "_held": (), "_creating": creating},
    )  # fmt: skip
    for name, value in values.items():
        try:
            obj.__pydantic_validator__.validate_assignment(obj, name, value, strict=True)
        except ValidationError as err:
            raise _refusal(cls, name, value, err) from None
        _check_common(f"{cls.__name__}({name})", name, obj.__dict__[name])
        obj._check(name, obj.__dict__[name])


def construct(cls: type[R], values: dict[str, Any], session: SessionLike | None) -> R:
    """Build a resource from already-typed values without validating them again (fast path).

    Fields absent from ``values`` are "not loaded".
    """
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(
        obj,
        "__pydantic_private__",
        {"_session": session, "_fetched": False, "_held": (), "_creating": None},
    )
    return obj
