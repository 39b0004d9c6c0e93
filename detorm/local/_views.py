"""Small conversions shared by the handlers that build wire messages from rows."""

from __future__ import annotations

from datetime import datetime

from detorm._wire import Timestamp

__all__ = ["ts"]


def ts(value: datetime | None) -> Timestamp | None:
    """A stored datetime (UTC) as a wire timestamp."""
    return None if value is None else Timestamp.from_datetime(value)
