"""The searchers of detorm.local: which trials an experiment creates, with which hparams.

As the master's ``master/pkg/searcher`` (``random.go``, ``grid.go``, ``hyperparameters.go``):

* ``single`` is a random search of one trial (``newSingleSearch``): its hparams are *sampled*
  like random's, so a range gives a value inside it, a const its value.
* ``random`` creates ``max_trials`` trials, each sampled (int: ``minval + Intn(maxval-minval+1)``;
  double: uniform; log: ``base ** uniform``; categorical: one of ``vals``); names in string order.
* ``grid`` is the cartesian product of the axes (int/double/log ``count`` points, categorical all
  values, const one; nested dicts flattened in name order); the master takes points from the
  *end* of the list, so the first trial gets the last point.
* ``adaptive_asha``, simplified: one bracket of ``max_trials`` randomly sampled trials that all
  run to the full length (no rung promotions, no early stopping).

All create ``min(total, max_concurrent_trials)`` trials at first when ``max_concurrent_trials``
is positive (default 16), and one more each time a trial exits (``trialExited``), as the master
does: :func:`next_trial` gives the hparams of the next one, for the simulation to create it.

Values are sampled with Python's ``random`` seeded from ``reproducibility.experiment_seed`` and
the trial's index (the master's numbers come from its own generator and differ; bounds and
types are the same).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from typing import Any, Final

from sqlmodel import Session, select

from . import _tables as t
from ._db import utcnow
from ._seed import add_trial, trials_in_project

__all__ = [
    "create_trials",
    "initial_trial_count",
    "next_trial",
    "planned_trials",
    "sample_trial",
]

_DEFAULT_MAX_CONCURRENT: Final = 16


def planned_trials(config: Mapping[str, Any]) -> int:
    """How many trials the searcher creates in all."""
    searcher = config.get("searcher") or {}
    name = searcher.get("name")
    if name == "grid":
        return len(_grid(config.get("hyperparameters") or {}))
    if name in ("random", "adaptive_asha"):
        return int(searcher.get("max_trials") or 0)
    return 1


def initial_trial_count(config: Mapping[str, Any]) -> int:
    """``initialTrials``: all of them, at most ``max_concurrent_trials`` when it is positive
    (single: one)."""
    searcher = config.get("searcher") or {}
    total = planned_trials(config)
    if searcher.get("name") == "single":
        return total
    limit = searcher.get("max_concurrent_trials", _DEFAULT_MAX_CONCURRENT)
    return min(total, limit) if isinstance(limit, int) and limit > 0 else total


def next_trial(config: Mapping[str, Any], created: int) -> dict[str, Any] | None:
    """The hparams of the trial created after ``created`` others, or None when the searcher
    has created them all."""
    if created >= planned_trials(config):
        return None
    return sample_trial(config, created)


def sample_trial(config: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The hparams of the experiment's ``index``-th trial (from 0)."""
    hparams = config.get("hyperparameters") or {}
    if (config.get("searcher") or {}).get("name") == "grid":
        points = _grid(hparams)
        return points[len(points) - 1 - index]  # the master pops from the end
    seed = ((config.get("reproducibility") or {}).get("experiment_seed")) or 0
    rng = random.Random(f"{seed}/{index}")
    return {name: _sample(hparams[name], rng) for name in sorted(hparams)}


def create_trials(db: Session, exp: t.ExperimentRow, count: int, state: str) -> list[int]:
    """Create the searcher's next ``count`` trials of ``exp`` (after those it has), in
    ``state``: CreateExperiment's first trials, ContinueExperiment's missing ones, and the one
    the master creates when a trial exits (``trialExited``; the simulation's to call). Fewer
    when the searcher has created them all."""
    assert exp.id is not None
    created = len(db.exec(select(t.TrialRow.id).where(t.TrialRow.experiment_id == exp.id)).all())
    trial_ids = []
    for index in range(created, created + count):
        hparams = next_trial(exp.config, index)
        if hparams is None:
            break
        local_id = trials_in_project(db, exp.project_id) + 1
        trial_ids.append(
            add_trial(db, exp, hparams=hparams, state=state, start_time=utcnow(), local_id=local_id)
        )
    return trial_ids


# --- random sampling ----------------------------------------------------------------------------
def _sample(spec: Any, rng: random.Random) -> Any:
    if not isinstance(spec, Mapping):
        return spec  # a plain value is a const
    kind = spec.get("type")
    if kind is None:
        return {name: _sample(spec[name], rng) for name in sorted(spec)}
    if kind == "const":
        return spec.get("val")
    if kind == "int":
        return int(spec["minval"]) + rng.randrange(int(spec["maxval"]) - int(spec["minval"]) + 1)
    if kind == "double":
        return rng.uniform(float(spec["minval"]), float(spec["maxval"]))
    if kind == "log":
        exponent = rng.uniform(float(spec["minval"]), float(spec["maxval"]))
        return math.pow(float(spec["base"]), exponent)
    values = spec.get("vals") or [None]
    return values[rng.randrange(len(values))]


# --- the grid -----------------------------------------------------------------------------------
_Axis = list[tuple[tuple[str, ...], Any]]


def _grid(hparams: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``newHyperparameterGrid``: one sample per point of the cartesian product."""
    axes: list[_Axis] = []
    for name in sorted(hparams):
        axes.extend(_axes((name,), hparams[name]))
    if not axes:
        return []  # cartesianProduct of no axes is empty: a grid of no hparams has no trials
    samples = []
    for point in _product(axes):
        sample: dict[str, Any] = {}
        for route, value in point:
            _apply(sample, route, value)
        samples.append(sample)
    return samples


def _product(axes: list[_Axis]) -> Iterator[list[tuple[tuple[str, ...], Any]]]:
    if len(axes) == 1:
        for value in axes[0]:
            yield [value]
        return
    right = list(_product(axes[1:]))
    for left in axes[0]:
        for rest in right:
            yield [left, *rest]


def _apply(sample: dict[str, Any], route: tuple[str, ...], value: Any) -> None:
    for key in route[:-1]:
        sample = sample.setdefault(key, {})
    sample[route[-1]] = value


def _axes(route: tuple[str, ...], spec: Any) -> list[_Axis]:
    """``getGridAxes``."""
    if not isinstance(spec, Mapping):
        return [[(route, spec)]]
    kind = spec.get("type")
    if kind is None:
        if not spec:  # an empty dict stays in the sample
            return [[(route, {})]]
        axes: list[_Axis] = []
        for name in sorted(spec):
            axes.extend(_axes((*route, name), spec[name]))
        return axes
    if kind == "const":
        return [[(route, spec.get("val"))]]
    if kind == "categorical":
        return [[(route, value) for value in spec.get("vals") or []]]
    return [[(route, value) for value in _range_points(kind, spec)]]


def _range_points(kind: str, spec: Mapping[str, Any]) -> list[Any]:
    count = int(spec["count"])
    low, high = spec["minval"], spec["maxval"]
    if kind == "int":
        count = min(count, int(high) - int(low) + 1)
        if count == 1:
            return [_go_round((low + high) / 2.0)]
        return [_go_round(low + i * (high - low) / (count - 1)) for i in range(count)]
    if count == 1:
        points = [(low + high) / 2.0]
    else:
        points = [low + i * (high - low) / (count - 1) for i in range(count)]
    if kind == "log":
        return [math.pow(float(spec["base"]), point) for point in points]
    return [float(point) for point in points]


def _go_round(value: float) -> int:
    """``math.Round``: halves away from zero."""
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)
