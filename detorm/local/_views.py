"""Small conversions shared by the handlers that build wire messages from rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from detorm._wire import Timestamp

__all__ = ["string_labels", "ts"]


def ts(value: datetime | None) -> Timestamp | None:
    """A stored datetime (UTC) as a wire timestamp."""
    return None if value is None else Timestamp.from_datetime(value)


def string_labels(values: Iterable[Any]) -> list[str]:
    """A ``ListValue`` of labels as the master keeps them: strings only, each once. The master
    de-duplicates through a Go map, so its order is random; this keeps first occurrences (one of
    the orders it can produce)."""
    labels: list[str] = []
    for value in values:
        if isinstance(value, str) and value not in labels:
            labels.append(value)
    return labels
