"""Every public class, method and property has a docstring.

The public surface is what ``detorm.__all__``, ``detorm.aio.__all__``, ``detorm.testing.__all__``
and the classes of ``detorm.errors`` reach: those objects, and the methods, class methods,
static methods, properties and relationships of those classes defined by detorm (pydantic's
own methods are pydantic's API, documented there). An override without a docstring of its own
counts when it inherits one from a detorm class (``inspect.getdoc``): overrides here do what
the method they override does (the async twins get the sync docstrings at import). Data fields
(pydantic fields, dataclass slots) are described by their class, not checked here.
"""

from __future__ import annotations

import enum
import inspect
import types
from collections.abc import Iterator

import detorm
import detorm.aio
import detorm.errors
import detorm.testing


def _public(module: types.ModuleType) -> Iterator[tuple[str, object]]:
    names = getattr(module, "__all__", None)
    if names is None:  # detorm.errors: its classes
        names = [n for n, o in vars(module).items() if inspect.isclass(o)
                 and o.__module__ == module.__name__ and not n.startswith("_")]  # fmt: skip
    for name in names:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            yield f"{module.__name__}.{name}", obj


def _documented(obj: object) -> bool:
    return bool((inspect.getdoc(obj) or "").strip())


def _members(cls: type) -> Iterator[tuple[str, object]]:
    """The public callables and properties detorm defines on ``cls`` and its detorm bases."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("detorm"):
            continue
        for name in vars(klass):
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            static = inspect.getattr_static(cls, name)
            if isinstance(static, (enum.Enum, types.MemberDescriptorType)):
                continue  # enum members and data fields
            if isinstance(static, property):
                # A property's docstring, or the one it overrides in a detorm base.
                docs = [vars(k)[name].__doc__ for k in cls.__mro__
                        if isinstance(vars(k).get(name), property)]  # fmt: skip
                yield name, next((d for d in docs if d), None)
            elif isinstance(static, (classmethod, staticmethod)) or inspect.isfunction(static):
                yield name, getattr(cls, name)
            elif hasattr(type(static), "__get__") and not isinstance(
                static, (type, types.GenericAlias)
            ):
                yield name, static  # relationships (ToOne, ToMany) and other descriptors


def undocumented(modules: list[types.ModuleType]) -> list[str]:
    missing: list[str] = []
    seen: set[int] = set()
    for module in modules:
        for qualname, obj in _public(module):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if not _documented(obj):
                missing.append(qualname)
            if inspect.isclass(obj):
                for name, member in _members(obj):
                    if member is None or (not isinstance(member, str) and not _documented(member)):
                        missing.append(f"{qualname}.{name}")
    return missing


def test_every_public_class_method_and_property_has_a_docstring() -> None:
    modules = [detorm, detorm.aio, detorm.errors, detorm.testing]
    assert undocumented(modules) == []


class _Thing:
    """Documented."""

    def documented(self) -> None:
        """Yes."""

    def bare(self) -> None: ...

    @property
    def size(self) -> int:
        return 1


class _Child(_Thing):
    def documented(self) -> None: ...  # inherits "Yes."


class _Bare:
    pass


def test_the_check_finds_what_is_undocumented() -> None:
    module = types.ModuleType("detorm.fake")
    for cls in (_Thing, _Child, _Bare):
        setattr(module, cls.__name__, cls)
    module.__all__ = ["_Thing", "_Child", "_Bare"]  # type: ignore[attr-defined]
    original = {cls: cls.__module__ for cls in (_Thing, _Child, _Bare)}
    try:
        for cls in original:
            cls.__module__ = "detorm.fake"  # as if detorm defined them
        found = undocumented([module])
    finally:
        for cls, name in original.items():
            cls.__module__ = name
    assert found == [
        "detorm.fake._Thing.bare", "detorm.fake._Thing.size", "detorm.fake._Child.bare",
        "detorm.fake._Child.size", "detorm.fake._Bare",
    ]  # fmt: skip
