"""The filter tree of SearchExperiments and SearchRuns (``master/internal/experiment_filter.go``).

The request's ``filter`` field is this document *encoded as a JSON string*. The master decodes it
with Go's ``encoding/json`` into structs without tags, so keys match case-insensitively and
unknown keys are ignored; :func:`parse_filter` does the same. ``location``, ``type`` and
``operator`` are free strings on the master (an unknown location adds no condition), so they are
plain strings here too; :data:`OPERATORS` lists the operators the master knows.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from pydantic import Field

from ._base import WireModel

__all__ = [
    "CONJUNCTIONS",
    "FilterNode",
    "FilterRoot",
    "OPERATORS",
    "Operator",
    "parse_filter",
]

Operator = Literal[
    "=", "!=", "<", "<=", ">", ">=", "contains", "notContains", "isEmpty", "notEmpty"
]
OPERATORS: Final[frozenset[str]] = frozenset(
    {"=", "!=", "<", "<=", ">", ">=", "contains", "notContains", "isEmpty", "notEmpty"}
)
CONJUNCTIONS: Final[frozenset[str]] = frozenset({"and", "or"})


class FilterNode(WireModel):
    """A group (``kind="group"``: conjunction + children) or a field comparison."""

    kind: str = ""
    conjunction: str | None = Field(default=None, exclude_if=lambda v: v is None)
    children: list[FilterNode] | None = Field(default=None, exclude_if=lambda v: v is None)
    column_name: str | None = Field(default=None, exclude_if=lambda v: v is None)
    location: str | None = Field(default=None, exclude_if=lambda v: v is None)
    type: str | None = Field(default=None, exclude_if=lambda v: v is None)
    operator: str | None = Field(default=None, exclude_if=lambda v: v is None)
    # Left out when None: groups have no value, and a field's null would mean "match all".
    value: Any = Field(default=None, exclude_if=lambda v: v is None)

    @classmethod
    def group(cls, conjunction: Literal["and", "or"], children: list[FilterNode]) -> FilterNode:
        return cls(kind="group", conjunction=conjunction, children=children)

    @classmethod
    def field(
        cls,
        column: str,
        operator: str,
        value: Any,
        *,
        location: str = "LOCATION_TYPE_EXPERIMENT",
        type: str = "COLUMN_TYPE_UNSPECIFIED",  # shadows the builtin: the wire name
    ) -> FilterNode:
        return cls(
            kind="field",
            column_name=column,
            location=location,
            type=type,
            operator=operator,
            value=value,
        )


class FilterRoot(WireModel):
    """``{"filterGroup": <group>, "showArchived": bool}``."""

    filter_group: FilterNode = Field(default_factory=lambda: FilterNode(kind="group"))
    show_archived: bool = False

    def encode(self) -> str:
        """The string to put in a request's ``filter`` field."""
        return json.dumps(self.model_dump_wire(), separators=(",", ":"))


def _fold_keys(value: Any) -> Any:
    # Go's encoding/json matches struct fields case-insensitively; fold to our aliases.
    if isinstance(value, list):
        return [_fold_keys(v) for v in value]
    if not isinstance(value, dict):
        return value
    folded: dict[str, Any] = {}
    for key, item in value.items():
        canonical = _CANONICAL_KEYS.get(key.lower(), key) if isinstance(key, str) else key
        # "value" is user data: keep it verbatim.
        folded[canonical] = item if canonical == "value" else _fold_keys(item)
    return folded


_CANONICAL_KEYS: Final = {
    "filtergroup": "filterGroup",
    "showarchived": "showArchived",
    "kind": "kind",
    "conjunction": "conjunction",
    "children": "children",
    "columnname": "columnName",
    "location": "location",
    "type": "type",
    "operator": "operator",
    "value": "value",
}


def parse_filter(text: str) -> FilterRoot:
    """Decode a ``filter`` string as the master does (raises ``ValueError`` when malformed)."""
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("filter must be a JSON object")
    return FilterRoot.model_validate(_fold_keys(document))
