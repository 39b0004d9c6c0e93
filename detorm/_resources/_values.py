"""Small immutable value types carried by resources (summary metrics, validations, notes)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from typing_extensions import TypeAliasType, TypedDict

from .._wire import Timestamp
from .._wire import _experiments as wx

__all__ = [
    "CheckpointSummary",
    "ExperimentConfig",
    "JSONValue",
    "MetricSummary",
    "Note",
    "Validation",
    "group_name",
    "nan_equal",
    "summary_from_wire",
]

JSONValue = TypeAliasType(
    "JSONValue", "str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]"
)
"""Any JSON value: hyperparameters, metadata and configs are nested mappings of these."""


class ExperimentConfig(TypedDict, total=False):
    """An experiment's configuration (expconf) as the master stores it, defaults filled in.

    The keys users read most are typed; the master sends many more, all kept.
    """

    name: str
    description: str
    labels: list[str]
    project: str
    workspace: str
    entrypoint: str | list[str]
    hyperparameters: dict[str, JSONValue]
    searcher: dict[str, JSONValue]
    resources: dict[str, JSONValue]
    checkpoint_storage: dict[str, JSONValue]
    environment: dict[str, JSONValue]
    max_restarts: int
    records_per_epoch: int
    min_validation_period: dict[str, JSONValue]
    min_checkpoint_period: dict[str, JSONValue]
    checkpoint_policy: str
    scheduling_unit: int
    debug: bool


_SPECIAL: Final = {"NaN": math.nan, "Nan": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# The master keys training and validation summaries by their legacy JSON paths.
_GROUP_NAMES: Final = {"avg_metrics": "training", "validation_metrics": "validation"}


_T = TypeVar("_T")


def _canonical(value: Any) -> Any:
    """The value with every NaN replaced by the one ``math.nan`` object, inside lists and dicts
    too: tuple, list and dict comparisons take identical objects as equal, on every Python."""
    if isinstance(value, float):
        return math.nan if value != value else value
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


def nan_equal(cls: type[_T]) -> type[_T]:
    """A frozen dataclass's ``==`` (and hash) in which a NaN equals a NaN: a summary holding a
    NaN is the same summary when read again (from the master or the disk cache).

    Python up to 3.12 compared dataclasses as tuples of their fields, and a tuple comparison
    takes identical objects as equal: two values holding the ``math.nan`` object compared equal,
    two holding different NaN objects did not. Python 3.13 compares the fields one by one
    (``a.min == b.min``), so even the same ``math.nan`` made a summary differ from itself read
    back from the cache. This makes the rule explicit and the same on every Python.
    """
    names = tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]

    def key(obj: object) -> tuple[Any, ...]:
        return tuple(_canonical(getattr(obj, name)) for name in names)

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return key(self) == key(other)

    def __hash__(self: object) -> int:
        return hash(key(self))

    cls.__eq__ = __eq__  # type: ignore[method-assign]
    if cls.__hash__ is not None:  # frozen dataclasses of hashable fields stay hashable
        cls.__hash__ = __hash__  # type: ignore[method-assign]
    return cls


def group_name(wire_key: str) -> str:
    """``avg_metrics`` -> ``training``, ``validation_metrics`` -> ``validation``, else as is."""
    return _GROUP_NAMES.get(wire_key, wire_key)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _SPECIAL.get(value)
    return None


@nan_equal
@dataclass(frozen=True, slots=True)
class MetricSummary:
    """One metric's summary over a trial's reports, kept by the master on every report.

    ``min``/``max``/``mean``/``sum``/``count`` exist for numeric metrics only; ``last`` is the
    value in the newest report (any JSON type; NaN and infinities as floats).
    """

    type: str
    count: int | None
    sum: float | None
    min: float | None
    max: float | None
    mean: float | None
    last: Any

    @classmethod
    def from_wire(cls, entry: dict[str, Any]) -> MetricSummary:
        """The summary from the master's JSON (NaN and infinities as the master writes them)."""
        last = entry.get("last")
        number = _number(last) if isinstance(last, str) else None
        count = entry.get("count")
        return cls(
            type=str(entry.get("type", "")),
            count=int(count) if isinstance(count, (int, float)) else None,
            sum=_number(entry.get("sum")),
            min=_number(entry.get("min")),
            max=_number(entry.get("max")),
            mean=_number(entry.get("mean")),
            last=number if number is not None else last,
        )


def summary_from_wire(raw: dict[str, Any] | None) -> dict[str, dict[str, MetricSummary]]:
    """``{"avg_metrics": {"loss": {...}}}`` -> ``{"training": {"loss": MetricSummary}}``."""
    out: dict[str, dict[str, MetricSummary]] = {}
    for key, metrics in (raw or {}).items():
        if isinstance(metrics, dict):
            out[group_name(key)] = {
                name: MetricSummary.from_wire(entry)
                for name, entry in metrics.items()
                if isinstance(entry, dict)
            }
    return out


def _metric_values(raw: dict[str, Any] | None) -> dict[str, Any]:
    return {
        k: (_number(v) if isinstance(v, str) and v in _SPECIAL else v)
        for k, v in (raw or {}).items()
    }


@nan_equal
@dataclass(frozen=True, slots=True)
class Validation:
    """A validation of a trial (its best or its latest): when, after how many batches, values."""

    total_batches: int
    end_time: Timestamp | None
    metrics: dict[str, Any]

    @classmethod
    def from_wire(cls, wire: wx.MetricsWorkload | None) -> Validation | None:
        """The validation from the master's JSON (None when there is none)."""
        if wire is None:
            return None
        values = wire.metrics.avg_metrics if wire.metrics is not None else None
        return cls(
            total_batches=wire.total_batches, end_time=wire.end_time, metrics=_metric_values(values)
        )


@dataclass(frozen=True, slots=True)
class CheckpointSummary:
    """The checkpoint a trial lists as its best (``Trial.best_checkpoint``)."""

    uuid: str
    state: str
    total_batches: int
    end_time: Timestamp | None
    resources: dict[str, int]
    metadata: dict[str, Any]

    @classmethod
    def from_wire(cls, wire: wx.CheckpointWorkload | None) -> CheckpointSummary | None:
        """The checkpoint from the master's JSON (None when there is none)."""
        if wire is None or not wire.uuid:
            return None
        return cls(
            uuid=wire.uuid,
            state=wire.state.short,
            total_batches=wire.total_batches,
            end_time=wire.end_time,
            resources=dict(wire.resources),
            metadata=dict(wire.metadata or {}),
        )


@dataclass(frozen=True, slots=True)
class Note:
    """A project note: a name and its markdown contents."""

    name: str
    contents: str
