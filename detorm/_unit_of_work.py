"""The unit of work: pending edits, the flush plan, commit and rollback (issue 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Change"]


@dataclass(frozen=True)
class Change:
    """One pending change of one object."""

    resource: str
    key: Any
    field: str
    value: Any

    def __str__(self) -> str:
        return f"{self.resource} {self.key}: {self.field} -> {self.value!r}"
