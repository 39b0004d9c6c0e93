"""Summaries read back from the disk cache equal the ones read from the master, on every Python.

Python 3.13 compares dataclass fields one by one (3.12 compared tuples, which take identical
objects as equal), so a summary holding a NaN stopped being equal to itself read again: the
values keep a NaN equal to a NaN explicitly (``nan_equal``), and the cache's JSON round trip
keeps every float bit for bit.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest

from detorm import MetricSummary, TrialSummary, Validation
from detorm._ops._metrics import _summary_of
from detorm._wire import _experiments as wx

_NAN_A = float("nan")
_NAN_B = float("nan")  # another NaN object: identity never makes the two equal


def _summary(**overrides: Any) -> MetricSummary:
    fields: dict[str, Any] = dict(
        type="number", count=3, sum=_NAN_A, min=0.5, max=_NAN_A, mean=_NAN_A, last=_NAN_A
    )
    fields.update(overrides)
    return MetricSummary(**fields)


def test_summaries_holding_nan_objects_of_their_own_are_equal_and_hash_alike() -> None:
    first = _summary()
    second = _summary(sum=_NAN_B, max=_NAN_B, mean=_NAN_B, last=_NAN_B)
    assert _NAN_A is not _NAN_B and first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


@pytest.mark.parametrize(
    "change",
    [{"min": 0.25}, {"max": 1.0}, {"last": 2}, {"count": 4}, {"type": "string"}, {"sum": math.inf}],
)
def test_summaries_differing_in_any_field_differ(change: dict[str, Any]) -> None:
    assert _summary() != _summary(**change)


def test_nan_inside_a_validations_metrics_equals_another_nan() -> None:
    first = Validation(total_batches=10, end_time=None, metrics={"loss": _NAN_A, "acc": [_NAN_A]})
    second = Validation(total_batches=10, end_time=None, metrics={"loss": _NAN_B, "acc": [_NAN_B]})
    assert first == second
    assert first != Validation(total_batches=10, end_time=None, metrics={"loss": 1.0, "acc": []})
    assert first != Validation(total_batches=11, end_time=None, metrics=first.metrics)


def _trial_summary(searcher_value: float, loss_min: float) -> TrialSummary:
    metric = _summary(min=loss_min)
    return TrialSummary(
        trial_id=1,
        experiment_id=2,
        state=wx.TrialState.COMPLETED,
        hparams={"lr": 0.1},
        summary_metrics={"validation": {"loss": metric}},
        searcher_metric_value=searcher_value,
    )


def test_trial_summaries_compare_nan_as_equal_and_other_values_as_they_are() -> None:
    assert _trial_summary(_NAN_A, 0.5) == _trial_summary(_NAN_B, 0.5)
    assert _trial_summary(_NAN_A, 0.5) != _trial_summary(_NAN_A, 0.25)
    assert _trial_summary(0.1, 0.5) != _trial_summary(_NAN_A, 0.5)


def _bits(value: object) -> object:
    """A float as its IEEE bits (0.0 and -0.0 differ; every NaN is one value), else as it is."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else struct.pack(">d", value)
    return value


_EXTREMES = [0.1, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 2.0**53 + 2, 1 / 3]


def test_the_cache_round_trip_keeps_every_float_bit_for_bit() -> None:
    # What read_summaries keeps in the disk cache is the run's wire JSON; read back, it must give
    # the very summary the master's answer gave.
    metrics = {
        f"m{i}": {"type": "number", "count": 2, "sum": v, "min": v, "max": v, "mean": v, "last": v}
        for i, v in enumerate(_EXTREMES)
    }
    metrics["special"] = {
        "type": "number", "count": 3, "sum": "NaN", "min": "-Infinity", "max": "Infinity",
        "mean": "NaN", "last": "NaN",
    }  # fmt: skip
    metrics["text"] = {"type": "string", "count": 1, "last": "NaN is a string here"}
    answer = json.dumps(
        {
            "id": 7,
            "state": "STATE_COMPLETED",
            "searcherMetricValue": 1 / 3,
            "hyperparameters": {"lr": 0.1, "layers": [1, 2], "opt": {"beta": 1e-300}},
            "summaryMetrics": {"validation_metrics": metrics},
            "experiment": {"id": 3},
        }
    )
    fresh = _summary_of(wx.FlatRun.model_validate_json(answer))
    cached = _summary_of(
        wx.FlatRun.model_validate_json(
            wx.FlatRun.model_validate_json(answer).model_dump_wire_json()
        )
    )
    assert cached == fresh
    for name, summary in fresh.summary_metrics["validation"].items():
        again = cached.summary_metrics["validation"][name]
        for field in ("type", "count", "sum", "min", "max", "mean", "last"):
            assert _bits(getattr(again, field)) == _bits(getattr(summary, field)), (name, field)
    assert _bits(cached.searcher_metric_value) == _bits(1 / 3)
    assert cached.hparams == {"lr": 0.1, "layers": [1, 2], "opt": {"beta": 1e-300}}
    special = cached.summary_metrics["validation"]["special"]
    assert (special.min, special.max) == (-math.inf, math.inf) and math.isnan(special.last)
    assert cached.summary_metrics["validation"]["text"].last == "NaN is a string here"
