"""Assignments on every resource: every field (editable ones with wrong types and values out of
the master's ranges, read-only ones), unknown names, relationships, and in-place edits of tag
sets and metadata dicts.

The property: the edit is recorded exactly as given (no silent conversion, and the next commit
can send it as JSON), or it is refused with a typed error and nothing changes."""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from detorm import Checkpoint, Experiment, Model, ModelVersion, Note, TagSet
from detorm._resources._relations import SettableToOne, ToMany, ToOne
from detorm.errors import InvalidAttribute, InvalidType
from tests.sdk.apis import MODES

from .conftest import GENERATED, RESOURCES, World, refused_or_done
from .strategies import ANY_VALUE, EDGE_INTS, NUMBERS, ODD_TEXT, SCALARS, TAGS, mostly


def attributes(cls: type[Any]) -> list[str]:
    """Every name a caller might assign: fields, relationships, properties, misspellings."""
    declared = [
        name
        for name, value in inspect.getmembers(cls)
        if isinstance(value, ToOne | ToMany | property) and not name.startswith("_")
    ]
    return sorted({*cls.model_fields, *declared, "nmae", "Name", "tag"})


TYPED: dict[Any, st.SearchStrategy[Any]] = {
    str: st.one_of(ODD_TEXT, st.text(max_size=8)),
    str | None: st.one_of(ODD_TEXT, st.text(max_size=8), st.none()),  # a user's agent user
    bool: st.booleans(),
    int: st.one_of(EDGE_INTS, st.integers()),
    int | None: st.one_of(EDGE_INTS, st.integers(), st.none()),
    float | None: st.one_of(NUMBERS, st.none()),
    float: NUMBERS,  # a job's weight
    dict[str, Any]: st.dictionaries(st.text(max_size=4), SCALARS, max_size=3),
    dict[str, Any] | None: st.one_of(  # a workspace's checkpoint storage (None clears it)
        st.dictionaries(st.text(max_size=4), SCALARS, max_size=3), st.none()
    ),
    TagSet: TAGS,
    tuple[Note, ...]: st.lists(
        st.builds(Note, st.text(max_size=4), st.text(max_size=4)), max_size=2
    ).map(tuple),
}


def value_for(cls: type[Any], name: str) -> st.SearchStrategy[Any]:
    """Values of the field's declared type (often past the master's ranges), or anything."""
    info = cls.model_fields.get(name)
    if info is None:  # a relationship: a project or workspace id
        return mostly(st.one_of(EDGE_INTS, st.just(1)))
    return mostly(TYPED[info.annotation])


def editable(cls: type[Any], name: str) -> bool:
    return name in cls._editable or isinstance(getattr(cls, name, None), SettableToOne)


# Each API's own: its classes and their names (the async API's relationships are its own).
EDITABLE = {
    mode: [
        (cls, name) for cls in RESOURCES[mode] for name in attributes(cls) if editable(cls, name)
    ]
    for mode in MODES
}
READ_ONLY = {
    mode: [
        (cls, name)
        for cls in RESOURCES[mode]
        for name in attributes(cls)
        if not editable(cls, name)
    ]
    for mode in MODES
}


def no_conversion(given: Any, stored: Any) -> bool:
    """The stored value is the given one: same value, and a type that cannot change it."""
    if isinstance(stored, TagSet):
        return sorted(stored) == sorted(set(given))  # tags are a set: duplicates are one tag
    if type(given) is int and type(stored) is float:
        return stored == given  # an int weight is a float weight
    return isinstance(stored, type(given)) and stored == given


@GENERATED
@given(data=st.data(), value=ANY_VALUE)
def test_read_only_and_unknown_attributes(world: World, data: st.DataObject, value: Any) -> None:
    cls, name = data.draw(st.sampled_from(READ_ONLY[world.mode]), label="spec")
    obj = world.objects[cls]
    before = dict(obj.__dict__)
    outcome = refused_or_done(world.session, lambda: setattr(obj, name, value))
    assert isinstance(outcome, InvalidAttribute), f"{cls.__name__}.{name} = {value!r}"
    assert "editable fields" in str(outcome) or "read-only" in str(outcome)
    assert obj.__dict__ == before and world.session.dirty == []


@GENERATED
@given(data=st.data())
def test_editable_attributes(world: World, data: st.DataObject) -> None:
    cls, name = data.draw(st.sampled_from(EDITABLE[world.mode]), label="spec")
    obj = world.objects[cls]
    value = data.draw(value_for(cls, name), label="value")
    given_value = copy.copy(value)
    before = dict(obj.__dict__)
    try:
        outcome = refused_or_done(world.session, lambda: setattr(obj, name, value))
        if outcome is None:
            key = name if name in cls.model_fields else getattr(cls, name)._key_field
            stored = obj.__dict__[key]
            if name in cls.model_fields:
                assert no_conversion(given_value, stored), stored
            if isinstance(stored, int):
                assert -(2**31) <= stored < 2**31  # every editable int travels as an int32
            for planned in world.session.pending():
                json.dumps(planned.call.body, allow_nan=False)  # sendable as is
        else:
            assert obj.__dict__ == before, "a refused edit changed the object"
    finally:
        world.rollback()


TAG_OWNERS = [(Experiment, "tags"), (Model, "labels"), (ModelVersion, "labels")]


@GENERATED
@given(
    owner=st.sampled_from(TAG_OWNERS),
    operation=st.sampled_from(["add", "discard", "|=", "-="]),
    value=mostly(st.one_of(ODD_TEXT, TAGS)),
)
def test_tag_sets_edited_in_place(
    world: World, owner: tuple[type[Any], str], operation: str, value: Any
) -> None:
    cls, name = owner
    tags: TagSet = getattr(world[cls], name)
    before = set(tags)

    def edit() -> None:
        if operation == "|=":
            tags.__ior__(value)
        elif operation == "-=":
            tags.__isub__(value)
        else:
            getattr(tags, operation)(value)

    try:
        outcome = refused_or_done(world.session, edit)
        if operation == "add" and not isinstance(value, str):
            assert isinstance(outcome, InvalidType)
        if outcome is not None:
            assert set(tags) == before, "a refused tag edit changed the set"
        assert all(isinstance(t, str) and t and "\x00" not in t for t in tags - before)
    finally:
        world.rollback()


METADATA_OWNERS = [Model, ModelVersion, Checkpoint]


@GENERATED
@given(
    cls=st.sampled_from(METADATA_OWNERS),
    operation=st.sampled_from(["set", "update", "setdefault"]),
    key=mostly(st.one_of(ODD_TEXT, st.text(max_size=4))),
    value=mostly(st.one_of(NUMBERS, ODD_TEXT, st.lists(NUMBERS, max_size=2))),
)
def test_metadata_edited_in_place(
    world: World, cls: type[Any], operation: str, key: Any, value: Any
) -> None:
    metadata = world[cls].metadata
    before = dict(metadata)

    def edit() -> None:
        if operation == "set":
            metadata[key] = value
        elif operation == "update":
            metadata.update({key: value})
        else:
            metadata.setdefault(key, value)

    try:
        outcome = refused_or_done(world.session, edit)
        if outcome is None:
            json.dumps(dict(metadata), allow_nan=False)  # a Struct the master can store
        else:
            assert dict(metadata) == before, "a refused metadata edit changed the dict"
    finally:
        world.rollback()
