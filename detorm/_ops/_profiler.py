"""A trial's profiler (system) metrics: the series the master serves, sample by sample.

Master 0.38.1 keeps system metrics (the harness's profiler reports groups ``gpu``, ``cpu``,
``memory``, ``disk`` and ``network``, each as ``{agent id: {[GPU uuid:] {name: value}}}``) in the
PROFILING partition of the metrics table, with no step (``total_batches`` is NULL). GetMetrics
selects ``total_batches > -1`` and so never returns them; the two profiler routes read them:

- ``GetTrialProfilerAvailableSeries`` (a stream; without ``follow`` exactly one message): the
  labels of every series (name, agent, GPU uuid). Disk usage per mount point is left out by the
  master ("the Web UI needs to be aware");
- ``GetTrialProfilerMetrics`` (a stream; without ``follow`` it ends after the last sample): one
  ``TrialProfilerMetricsBatch`` per stored report of the series' group, each with one value and
  one timestamp (``batches`` stays empty: there is no step to report).

So reading samples is one request for the series, then one stream per series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic_core import from_json

from .. import _wire as w
from .._plan._call import Call, path
from .._resources._inputs import check_id, check_iterable, require
from ..errors import InvalidValue
from ._effects import Op, RecordReader, Rows, collect, emit, gather

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

__all__ = [
    "PROFILER_GROUPS", "ProfilerReader", "ProfilerSample", "ProfilerSeries", "group_samples",
    "series_of",
]  # fmt: skip

# db.groupFromLabelName: a series' group from its name's prefix (model.ProfilingMetricGroups).
_PREFIXES: Final = (
    ("cpu_", "cpu"), ("gpu_", "gpu"), ("disk_", "disk"), ("net_", "network"), ("memory_", "memory"),
)  # fmt: skip
PROFILER_GROUPS: Final = ("cpu", "disk", "gpu", "memory", "network")
_SPECIAL: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def group_of(name: str) -> str:
    """The profiling group of a series name ("" when the master knows none)."""
    for prefix, group in _PREFIXES:
        if name.startswith(prefix):
            return group
    return ""


@dataclass(frozen=True, slots=True)
class ProfilerSeries:
    """One series of a trial's profiler metrics (``TrialProfilerMetricLabels``)."""

    trial_id: int
    name: str
    agent_id: str
    gpu_uuid: str  # "" for a series that is not per GPU
    metric_type: str  # the wire name, e.g. "PROFILER_METRIC_TYPE_SYSTEM"

    @property
    def group(self) -> str:
        """``gpu``, ``cpu``, ``memory``, ``disk`` or ``network`` (from the name, as the master
        tells them apart)."""
        return group_of(self.name)

    @classmethod
    def from_wire(cls, labels: dict[str, Any]) -> ProfilerSeries:
        """The series from the labels of GetTrialMetricsSeries' JSON."""
        return cls(
            trial_id=int(labels.get("trialId", 0)), name=str(labels.get("name", "")),
            agent_id=str(labels.get("agentId", "")), gpu_uuid=str(labels.get("gpuUuid", "")),
            metric_type=str(labels.get("metricType", "PROFILER_METRIC_TYPE_UNSPECIFIED")),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProfilerSample:
    """One reading of one profiler series: when, and its value."""

    trial_id: int
    group: str
    name: str
    agent_id: str
    gpu_uuid: str
    time: w.Timestamp
    value: float
    # The master 0.38.1 stores no step with system metrics: None unless it sends one.
    batch: int | None = None

    def to_record(self) -> dict[str, Any]:
        """The sample as a flat dict (a row of to_records() and the DataFrames)."""
        return {
            "trial_id": self.trial_id, "group": self.group, "name": self.name,
            "agent_id": self.agent_id, "gpu_uuid": self.gpu_uuid, "time": self.time,
            "value": self.value, "batch": self.batch,
        }  # fmt: skip


def _number(value: Any) -> float:
    return _SPECIAL[value] if isinstance(value, str) else float(value)


def _samples(line: bytes, series: ProfilerSeries) -> list[ProfilerSample]:
    """The readings of one ``GetTrialProfilerMetricsResponse``."""
    batch = from_json(line).get("batch") or {}
    labels = ProfilerSeries.from_wire(batch.get("labels") or {}) if batch.get("labels") else series
    values = batch.get("values") or []
    times = batch.get("timestamps") or []
    steps = batch.get("batches") or []
    return [
        ProfilerSample(
            trial_id=labels.trial_id,
            group=labels.group,
            name=labels.name,
            agent_id=labels.agent_id,
            gpu_uuid=labels.gpu_uuid,
            time=w.Timestamp.parse(times[i]),
            value=_number(values[i]),
            batch=int(steps[i]) if i < len(steps) else None,
        )
        for i in range(min(len(values), len(times)))
    ]


def series_of(session: Session, trial_id: int) -> Op[list[ProfilerSeries]]:
    """``GetTrialProfilerAvailableSeries`` without ``follow``: its one message, each series
    once (the master lists a series once per agent of the report it reads it from)."""
    call = Call(
        "GET", path("/api/v1/trials/{id}/profiler/available_series", id=trial_id),
        (("follow", "false"),), stream=True,
    )  # fmt: skip
    reader = session.transport.results(call)
    found: list[ProfilerSeries] = []
    while (lines := (yield from reader.batch())) is not None:
        for line in lines:
            found = [ProfilerSeries.from_wire(x) for x in from_json(line).get("labels") or ()]
    return list(dict.fromkeys(found))


def _names(names: Iterable[str] | str | None) -> frozenset[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        return frozenset({names})
    chosen = check_iterable("names", names, "series names (str), e.g. 'gpu_util'")
    for name in chosen:
        require("each name", name, str, "a series name (a str), e.g. 'gpu_util'")
    return frozenset(chosen)


def _groups(groups: Iterable[str] | str | None) -> frozenset[str] | None:
    if groups is None:
        return None
    chosen = [groups] if isinstance(groups, str) else check_iterable(
        "groups", groups, f"profiler groups, among {', '.join(PROFILER_GROUPS)}"
    )  # fmt: skip
    for group in chosen:
        require("each group", group, str, f"a profiler group, among {', '.join(PROFILER_GROUPS)}")
        if group not in PROFILER_GROUPS:
            raise InvalidValue(
                f"{group!r} is not a profiler group: the master serves {', '.join(PROFILER_GROUPS)}"
            )
    return frozenset(chosen)


class ProfilerReader(RecordReader[ProfilerSample]):
    """A trial's profiler samples as an iterating op (each API's ``ProfilerStream`` iterates
    it): series after series (in the master's order), each in report order."""

    def __init__(
        self, session: Session, trial_id: int, *, names: Iterable[str] | str | None,
        groups: Iterable[str] | str | None,
    ) -> None:  # fmt: skip
        self._session = session
        self._trial_id = check_id("trial", trial_id)
        self._names = _names(names)
        self._groups = _groups(groups)

    def _rows(self) -> Rows[ProfilerSample]:
        return Rows(self._all_samples)

    def _facts(self) -> list[tuple[str, Any]]:
        names = None if self._names is None else sorted(self._names)
        groups = None if self._groups is None else sorted(self._groups)
        return [("trial", self._trial_id), ("names", names), ("groups", groups)]

    def _chosen(self, series: ProfilerSeries) -> bool:
        named = self._names is None or series.name in self._names
        return named and (self._groups is None or series.group in self._groups)

    def _all_samples(self) -> Op[None]:
        for series in (yield from series_of(self._session, self._trial_id)):
            if self._chosen(series):
                yield from self._series_samples(series)

    def _call(self, series: ProfilerSeries) -> Call:
        params = [("labels.name", series.name), ("labels.agentId", series.agent_id)]
        if series.gpu_uuid:
            params.append(("labels.gpuUuid", series.gpu_uuid))
        params += [("labels.metricType", series.metric_type), ("follow", "false")]
        where = path("/api/v1/trials/{id}/profiler/metrics", id=series.trial_id)
        return Call("GET", where, tuple(params), stream=True)

    def _series_samples(self, series: ProfilerSeries) -> Op[None]:
        handed = 0  # samples handed out: a resumed stream starts again, these are dropped
        skip = 0

        def resume() -> Call:
            nonlocal skip
            skip = handed
            return self._call(series)

        reader = self._session.transport.results(self._call(series), resume)
        while (lines := (yield from reader.batch())) is not None:
            samples = [s for line in lines for s in _samples(line, series)]
            if skip:
                samples, skip = samples[skip:], max(0, skip - len(samples))
            handed += len(samples)
            yield from emit(samples)

    def _chosen_samples(self) -> Op[list[ProfilerSample]]:
        """Every chosen sample, the series streamed concurrently (``concurrency`` at a time),
        in series order."""
        series = [
            s for s in (yield from series_of(self._session, self._trial_id)) if self._chosen(s)
        ]
        streams: list[Op[list[ProfilerSample]]] = [collect(self._series_samples(s)) for s in series]
        return [sample for part in (yield from gather(streams)) for sample in part]

    def _records(self) -> Op[list[dict[str, Any]]]:
        """One dict per sample: trial_id, group, name, agent_id, gpu_uuid, time, value, batch."""
        samples: list[ProfilerSample] = yield from collect(self._all_samples())
        return [s.to_record() for s in samples]


def group_samples(session: Session, trial_id: int, group: str) -> Op[list[ProfilerSample]]:
    """Every sample of one profiler group of one trial (what ``session.metrics`` rebuilds the
    group's reports from): the series, then their streams read concurrently."""
    reader = ProfilerReader(session, trial_id, names=None, groups=group)
    return (yield from reader._chosen_samples())
