"""LogEntry values read from the wire: built straight into their slots, yet the same values
(equal, hashable, frozen) as the constructor's, with the absent/null/zero rules."""

from __future__ import annotations

import dataclasses

import pytest

from detorm import LogLevel
from detorm._ops._logs import LogEntry
from detorm._wire import Timestamp


def test_entries_from_the_wire_equal_the_constructors() -> None:
    raws = [
        b'{"id":"7","timestamp":"2025-01-01T00:00:04.500Z","message":"[x] || INFO: hi",'
        b'"level":"LOG_LEVEL_INFO","trialId":3,"agentId":"a","containerId":"c","rankId":1,'
        b'"log":"hi\\n","source":"agent","stdtype":"stdout"}',
        b'{"id":"x","level":2,"message":"legacy only","taskId":"t","allocationId":"t.1"}',
        b'{"level":"bogus"}',
    ]
    first, second, third = LogEntry.many_from_wire(raws)
    assert first == LogEntry(
        7, 3, Timestamp.parse("2025-01-01T00:00:04.5Z"), LogLevel.INFO, "hi\n", "a", "c", 1,
        "agent", "stdout",
    )  # fmt: skip
    assert second == LogEntry(
        0, 0, None, LogLevel.DEBUG, "legacy only", None, None, None, None, None, "t", "t.1"
    )
    assert third.level == LogLevel.lookup("bogus") and third.message == "" and third.id == 0
    assert hash(first) == hash(dataclasses.replace(first))
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.message = "changed"  # type: ignore[misc]


def test_a_message_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        LogEntry.many_from_wire([b'{"id":"1"}', b"[1]"])
