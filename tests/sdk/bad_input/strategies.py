"""Malformed values of every kind, for the generated bad-input tests."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from detorm import Note

# Numbers at and past the edges the master knows: int32 and int64 bounds, floats that JSON
# cannot carry.
EDGE_INTS = st.sampled_from(
    [0, -1, 1, 99, 100, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63,
     -(2**63) - 1, 10**30]
)  # fmt: skip
ODD_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 0.5])
ODD_TEXT = st.sampled_from(["", " ", "\x00", "a\x00b", "yes", "1", "1.5", "None", "../x", "é" * 3])

SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    EDGE_INTS,
    st.integers(),
    ODD_FLOATS,
    st.floats(),
    ODD_TEXT,
    st.text(max_size=8),
    st.binary(max_size=4),
    st.datetimes(timezones=st.just(UTC)),
    st.just(datetime(2024, 1, 1)),  # naive
    st.builds(object),
    st.just(Note("plan", "contents")),
)
CONTAINERS: st.SearchStrategy[Any] = st.one_of(
    st.lists(SCALARS, max_size=3),
    st.tuples(SCALARS),
    st.frozensets(st.one_of(st.text(max_size=4), st.integers()), max_size=3),
    st.sets(ODD_TEXT, max_size=2),
    st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), SCALARS, max_size=3),
    st.builds(lambda: iter([1, 2])),
    st.just(range(3)),
)
ANY_VALUE: st.SearchStrategy[Any] = st.one_of(SCALARS, CONTAINERS)
"""Anything a caller might pass where a value is expected."""

TIMES = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),
    st.sampled_from(
        ["2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z", "0001-01-01T00:00:00Z",
         "9999-12-31T23:59:59.999999999Z", "2024-01-01", "yesterday"]
    ),
)  # fmt: skip
STATES = st.sampled_from(["ACTIVE", "STATE_ACTIVE", "active", "COMPLETED", "DELETED", "BOGUS", ""])
TAGS = st.one_of(st.lists(st.one_of(ODD_TEXT, st.text(max_size=4)), max_size=3), st.sets(ODD_TEXT))

_OF_KIND: dict[str, st.SearchStrategy[Any]] = {
    "int": st.one_of(EDGE_INTS, st.integers()),
    "float": st.one_of(ODD_FLOATS, st.floats(), EDGE_INTS),
    "str": st.one_of(ODD_TEXT, st.text(max_size=8)),
    "bool": st.booleans(),
    "time": TIMES,
    "enum": STATES,
    "set": st.one_of(ODD_TEXT, TAGS),
}


def values_for(kind: str, lookup: str) -> st.SearchStrategy[Any]:
    """Values near what ``<field of kind>__<lookup>`` takes (often just past its edges), and
    anything at all now and then."""
    typed = st.booleans() if lookup == "isnull" else _OF_KIND[kind]
    if lookup == "in":
        typed = st.one_of(st.lists(typed, max_size=3), st.tuples(typed), typed)
    return mostly(typed)


def mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values of ``strategy`` three times in four, anything at all otherwise."""
    return st.integers(0, 3).flatmap(lambda n: strategy if n else ANY_VALUE)


NUMBERS = st.one_of(EDGE_INTS, ODD_FLOATS, st.floats(), st.integers())
"""Numbers of every sort, including those JSON and the master cannot carry."""
