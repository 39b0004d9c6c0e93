"""Summary metrics kept up to date on each report, as the master does.

A port of ``calculateNewSummaryMetrics`` (``master/internal/db/postgres_trial.go``): per metric
group a trial's ``summary_metrics`` holds ``{name: {"type", "count", "sum", "min", "max", "mean",
"last"}}``; only numbers (NaN and infinities included, as strings) get the aggregates; a metric
whose type changes becomes a ``"string"``; ``last`` is set for every known metric from the newest
report (``null`` when that report lacks it).
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from detorm._wire import dump_double

__all__ = ["metrics_json_key", "summary_key", "update_summary"]

_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_SPECIAL: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def summary_key(group: str) -> str:
    """``TrialSummaryMetricsJSONPath``: training and validation keep their legacy names."""
    return {"validation": "validation_metrics", "training": "avg_metrics"}.get(group, group)


def metrics_json_key(group: str) -> str:
    """``TrialMetricsJSONPath``: where a report's values sit inside its ``metrics`` object."""
    return "validation_metrics" if group == "validation" else "avg_metrics"


def _as_float(value: Any) -> float:
    if isinstance(value, str):
        return _SPECIAL[value]
    return float(value)


def _go_min(a: float, b: float) -> float:
    # Go's math.Min/Max: NaN wins (Python's min/max would depend on argument order).
    return math.nan if math.isnan(a) or math.isnan(b) else min(a, b)


def _go_max(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else max(a, b)


def _metric_type(value: Any) -> tuple[str, float]:
    if isinstance(value, bool):
        return "boolean", 0.0
    if isinstance(value, (int, float)):
        return "number", float(value)
    if isinstance(value, str):
        if value in _SPECIAL:
            return "number", _SPECIAL[value]
        return ("date" if _ISO_DATE.match(value) else "string"), 0.0
    if isinstance(value, dict):
        return "object", 0.0
    if isinstance(value, list):
        return "array", 0.0
    if value is None:
        return "null", 0.0
    return "string", 0.0


def update_summary(summary: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Fold one report's ``values`` into a group's summary (in place; also returned)."""
    for name, value in values.items():
        kind, number = _metric_type(value)
        entry = summary.get(name)
        if not isinstance(entry, dict):
            entry = {"type": kind}
        elif entry.get("type") != kind:
            kind = "string"
            entry = {"type": kind}
        summary[name] = entry
        if kind != "number":
            continue
        if "count" not in entry:
            entry.update(
                max=dump_double(number), min=dump_double(number), mean=dump_double(number),
                sum=dump_double(number), count=1,
            )  # fmt: skip
        else:
            count = int(_as_float(entry["count"])) + 1
            total = _as_float(entry["sum"]) + number
            entry["min"] = dump_double(_go_min(_as_float(entry["min"]), number))
            entry["max"] = dump_double(_go_max(_as_float(entry["max"]), number))
            entry["sum"] = dump_double(total)
            entry["count"] = count
            entry["mean"] = dump_double(total / count)
    for name, entry in summary.items():
        if isinstance(entry, dict):
            last = values.get(name)
            entry["last"] = dump_double(last) if isinstance(last, float) else last
    return summary
