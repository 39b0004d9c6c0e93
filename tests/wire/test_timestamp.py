"""``Timestamp`` keeps the master's nanoseconds through parsing, writing, pickling and copying."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime

import pytest

from detorm import Timestamp


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-01T00:00:04Z",
        "2025-01-01T00:00:04.500Z",
        "2025-01-01T00:00:04.123456Z",
        "2025-01-01T00:00:04.123456789Z",
        "2025-01-01T00:00:04.000000001Z",
    ],
)
def test_round_trips_keep_the_nanoseconds(text: str) -> None:
    parsed = Timestamp.parse(text)
    assert parsed.rfc3339() == text
    for again in (pickle.loads(pickle.dumps(parsed)), copy.copy(parsed), copy.deepcopy(parsed)):
        assert type(again) is Timestamp
        assert again.rfc3339() == text and again.nanosecond == parsed.nanosecond


def test_the_fast_path_and_the_general_one_agree() -> None:
    fast = Timestamp.parse("2025-06-07T08:09:10.250Z")  # datetime.fromisoformat
    general = Timestamp.parse("2025-06-07T10:09:10.250+02:00")  # the regex, an offset
    assert fast == general == datetime(2025, 6, 7, 8, 9, 10, 250000, tzinfo=UTC)
    assert fast.tzinfo is UTC and general.tzinfo is UTC
    assert fast.nanosecond == general.nanosecond == 0


def test_a_bad_nanosecond_is_refused() -> None:
    with pytest.raises(ValueError, match="nanosecond"):
        Timestamp(2025, 1, 1, tzinfo=UTC, nanosecond=1000)
