"""Metric reports of many trials in one streamed request, in bounded memory, cached when final.

``GET /api/v1/trials/metrics/trial_metrics?trialIds=..&group=..`` streams the reports of several
trials in one response: trial after trial in ascending id, batches of up to 1000 reports per
line. Reports are parsed and handed out line by line, so memory does not grow with the total.
Reports of trials in a terminal state can no longer change: they are kept in the disk cache
and read from there next time (also by another process).

The profiler groups (``gpu``, ``cpu``, ``memory``, ``disk``, ``network``) are the exception:
master 0.38.1 stores them without a step (``total_batches`` NULL) and GetMetrics selects
``total_batches > -1``, so it never returns them. Their reports are rebuilt, trial by trial,
from the samples of the profiler routes (``_profiler.py``): the samples of one stored report
share its time. They are read again every time (not cached): rebuilt from one stream per series,
they have no GetMetrics lines to keep, and a second cached format is not worth it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic_core import from_json

from .. import _wire as w
from .._plan._call import Call
from .._plan._planner import runs_source
from .._plan._query import QueryBase
from .._progress import check_progress, choose, progress_bar
from .._resources._inputs import check_id, check_iterable, require
from .._resources._models import Trial
from .._resources._values import MetricSummary, nan_equal, summary_from_wire
from ..errors import ConfigurationError, InvalidValue
from ._effects import Effect, Emit, Op, RecordReader, Rows, blocking, collect, emit, observed
from ._executor import Pager, no_gc_pauses, rows_of
from ._profiler import PROFILER_GROUPS, ProfilerSample, group_samples

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

__all__ = [
    "MetricReport", "MetricsReader", "TrialSummary", "chosen_trials", "metric_groups",
    "metric_names", "read_summaries", "to_pandas", "to_polars",
]  # fmt: skip

MAX_URL: Final = 6000  # stay well below common proxy limits on the query string
_SPECIAL: Final = {"NaN": math.nan, "Nan": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_CACHE_KIND: Final = "metrics"
_CACHE_MAX_LINES: Final = 200  # a trial with more than 200k reports is streamed, not cached


def _values(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    for key, value in raw.items():
        if type(value) is str and value in _SPECIAL:
            raw[key] = _SPECIAL[value]
    return raw


class MetricReport:
    """One report of one metric group by one trial: when, after how many batches, what values.

    A report of a profiler group (``gpu``, ``cpu``, ``memory``, ``disk``, ``network``) has the
    harness's shape, ``{agent id: {name: value}}`` (``gpu``: ``{agent id: {GPU uuid: {name:
    value}}}``), and neither ``step`` nor ``trial_run_id`` (None: the master serves none).
    """

    __slots__ = ("_end", "batch_metrics", "group", "step", "trial_id", "trial_run_id", "values")

    def __init__(
        self,
        trial_id: int,
        trial_run_id: int | None,
        step: int | None,
        group: str,
        values: dict[str, Any],
        batch_metrics: list[dict[str, Any]] | None,
        end_time: str | None,
    ) -> None:
        self.trial_id = trial_id
        self.trial_run_id = trial_run_id
        self.step = step  # total batches trained when reported (None: a profiler group)
        self.group = group
        self.values = values
        self.batch_metrics = batch_metrics
        self._end = end_time

    @property
    def time(self) -> w.Timestamp | None:
        """When the report was made (parsed on first use)."""
        return None if not self._end else w.Timestamp.parse(self._end)

    @property
    def epoch(self) -> float | None:
        """The epoch, when the trial reported one among its values."""
        value = self.values.get("epoch", self.values.get("epochs"))
        return float(value) if isinstance(value, (int, float)) else None

    def __repr__(self) -> str:
        return (
            f"MetricReport(trial={self.trial_id}, step={self.step}, {self.group}={self.values!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetricReport):
            return NotImplemented
        return (self.trial_id, self.trial_run_id, self.step, self.group, self.values, self._end) == (
            other.trial_id, other.trial_run_id, other.step, other.group, other.values, other._end
        )  # fmt: skip

    __hash__ = None  # type: ignore[assignment]


def _reports(line: bytes) -> list[MetricReport]:
    """The reports of one stream message (``GetMetricsResponse``)."""
    with no_gc_pauses():
        return _parse_reports(line)


def _parse_reports(line: bytes) -> list[MetricReport]:
    # The hot loop of every metrics read (a million rows is a few seconds): pydantic-core's
    # parser is faster than json's, and NaN/Infinity strings are only looked for when present.
    specials = b'"Na' in line or b'Infinity"' in line  # "NaN", "Nan", "Infinity", "-Infinity"
    out: list[MetricReport] = []
    append = out.append
    for row in from_json(line).get("metrics") or ():
        metrics = row.get("metrics") or {}
        values = metrics.get("avg_metrics")
        if values is None:
            values = metrics.get("validation_metrics")
        if specials or not isinstance(values, dict):
            values = _values(values)
        append(
            MetricReport(
                row.get("trialId", 0),
                row.get("trialRunId", 0),
                row.get("totalBatches", 0),
                row.get("group", ""),
                values,
                metrics.get("batch_metrics"),
                row.get("endTime"),
            )
        )
    return out


class MetricsReader(RecordReader[MetricReport]):
    """The reports of a metric group for some trials, as an iterating op (each API's
    ``MetricsStream`` iterates it). Reading again reads again (from the disk cache for
    finished trials)."""

    def __init__(
        self, session: Session, trials: Iterable[Trial | int] | QueryBase[Any], group: str, *,
        cache: bool, progress: bool | None = None,
    ) -> None:  # fmt: skip
        require("group", group, str, "the name of a metric group (a str)")
        self._progress = check_progress("metrics(progress)", progress)
        if not group:
            raise InvalidValue("name the metric group: 'training', 'validation', or another")
        self._session = session
        self._trials = chosen_trials(trials)
        self._group = group
        self._profiler = group in PROFILER_GROUPS
        self._cache = cache and not self._profiler  # see the module's docstring

    def _rows(self) -> Rows[MetricReport]:
        return Rows(self._reports)

    def _facts(self) -> list[tuple[str, Any]]:
        return [("trials", _trials_shown(self._trials)), ("group", self._group),
                ("cache", self._cache)]  # fmt: skip

    def _first_calls(self) -> list[Call]:
        if isinstance(self._trials, QueryBase) or self._profiler:
            return []  # the trial query runs first; profiler groups read series first
        ids = sorted({t if isinstance(t, int) else t.id for t in self._trials})
        return [self._call(chunk) for chunk in _chunks(ids, self._group)][:1]

    def _reports(self) -> Op[None]:
        chosen = yield from trials_of(self._trials)
        ids = sorted({t if isinstance(t, int) else t.id for t in chosen})
        choice = choose(self._progress, self._session.progress)
        label = f"{self._group} metrics"
        with progress_bar(len(ids), label, unit="trial", choice=choice) as bar:
            reached: set[int] = set()

            def seen(effect: Effect, result: Any) -> None:
                # A trial counts once its first reports were handed out (trials in id order).
                if isinstance(effect, Emit):
                    reached.update(report.trial_id for report in effect.items)
                    bar.advance_to(len(reached))

            yield from observed(self._read(chosen, ids), seen)

    def _read(self, chosen: list[Trial | int], ids: list[int]) -> Op[None]:
        if self._profiler:
            for trial_id in ids:
                samples = yield from group_samples(self._session, trial_id, self._group)
                yield from emit(profiler_reports(trial_id, self._group, samples))
            return
        finished = {t.id: t.state.is_terminal for t in chosen if not isinstance(t, int)}
        cached = (yield from blocking(self._cached_lines, ids)) if self._cache else {}
        missing = [t for t in ids if t not in cached]
        terminal = (yield from self._terminal_states(missing, finished)) if self._cache else {}
        pending: list[int] = sorted(cached)

        def cached_before(trial_id: int | None) -> list[MetricReport]:
            # Keep ascending trial order: cached trials come before later fetched ones.
            replayed: list[MetricReport] = []
            while pending and (trial_id is None or pending[0] < trial_id):
                for line in cached.pop(pending.pop(0)):
                    replayed += _reports(line)
            return replayed

        for chunk in _chunks(missing, self._group):
            yield from self._fetch_chunk(chunk, terminal, cached_before)
        yield from emit(cached_before(None))

    def _records(self) -> Op[list[dict[str, Any]]]:
        """One dict per report: trial_id, trial_run_id, step, time, then the metric values.
        A profiler group's report gives one dict per agent (and GPU): ..., time, agent_id,
        gpu_uuid ("" when not per GPU), then that agent's (GPU's) values."""
        reports: list[MetricReport] = yield from collect(self._reports())
        if self._profiler:
            return [record for r in reports for record in _profiler_records(r)]
        return [
            {
                "trial_id": r.trial_id,
                "trial_run_id": r.trial_run_id,
                "step": r.step,
                "time": r.time,
                **r.values,
            }
            for r in reports
        ]

    def _cached_lines(self, ids: list[int]) -> dict[int, list[bytes]]:
        disk = self._session.cache
        found: dict[int, list[bytes]] = {}
        for trial_id in ids:
            payload = disk.get(_CACHE_KIND, trial_id, self._group)
            if payload is not None:
                found[trial_id] = _split(payload)
        return found

    def _terminal_states(
        self, trial_ids: list[int], finished: dict[int, bool]
    ) -> Op[dict[int, bool]]:
        states = {t: finished[t] for t in trial_ids if t in finished}
        unknown = [t for t in trial_ids if t not in states]
        if unknown:
            states.update((yield from self._session._trial_states(unknown)))
        return states

    def _call(self, trial_ids: list[int]) -> Call:
        return Call(
            "GET", "/api/v1/trials/metrics/trial_metrics",
            (*(("trialIds", str(t)) for t in trial_ids), ("group", self._group)), stream=True,
        )  # fmt: skip

    def _fetch_chunk(
        self,
        chunk: list[int],
        terminal: dict[int, bool],
        cached_before: Callable[[int | None], list[MetricReport]],
    ) -> Op[None]:
        buffers: dict[int, list[bytes]] = {}
        trial: int | None = None  # the trial being streamed
        handed = 0  # its reports handed out
        skip = 0  # after a resume: its reports to drop, handed out before the cut

        def resume() -> Call:
            # The master streams trial after trial in ascending id, each trial's reports in one
            # order: ask again from the trial that was cut and drop what was handed out. That
            # trial is not cached this time (its lines would not be whole).
            nonlocal skip
            if trial is None:
                return self._call(chunk)
            terminal[trial] = False
            buffers.pop(trial, None)
            skip = handed
            return self._call([t for t in chunk if t >= trial])

        reader = self._session.transport.results(self._call(chunk), resume)
        while (lines := (yield from reader.batch())) is not None:
            for line in lines:
                reports = _reports(line)
                if reports and reports[0].trial_id != trial:
                    trial, handed, skip = reports[0].trial_id, 0, 0
                if skip:
                    reports, skip = reports[skip:], max(0, skip - len(reports))
                handed += len(reports)
                if self._cache and reports:
                    self._buffer(line, reports, terminal, buffers)
                if reports:
                    yield from emit(cached_before(reports[0].trial_id) + reports)
        for trial_id, lines in buffers.items():
            yield from blocking(self._keep, trial_id, _join(lines))

    def _keep(self, trial_id: int, payload: bytes) -> None:
        self._session.cache.set(_CACHE_KIND, trial_id, self._group, value=payload)

    def _buffer(
        self, line: bytes, reports: list[MetricReport], terminal: dict[int, bool],
        buffers: dict[int, list[bytes]],
    ) -> None:  # fmt: skip
        trial_id = reports[0].trial_id
        if not terminal.get(trial_id) or any(r.trial_id != trial_id for r in reports):
            return
        lines = buffers.setdefault(trial_id, [])
        if len(lines) < _CACHE_MAX_LINES:
            lines.append(line)
        else:
            terminal[trial_id] = False
            del buffers[trial_id]


def profiler_reports(
    trial_id: int, group: str, samples: list[ProfilerSample]
) -> list[MetricReport]:
    """One trial's reports of a profiler group, rebuilt from its series' samples.

    Each sample is one value of one stored report, at the report's time: the values at one time
    are one report, nested as the harness sent them (``{agent: {name: value}}``, ``{agent: {GPU
    uuid: {name: value}}}``). A series holding two samples at one time (two reports of one
    agent in the same microsecond) gives two reports, in stored order. Two agents' reports at
    one time become one report, as the wire does not tell them apart. Values are what the
    master serves: float32 readings of the reported numbers; disk usage per mount point is not
    served, and the names listed are those of each agent's latest report.
    """
    moments: dict[str, w.Timestamp] = {}
    rebuilt: dict[tuple[str, int], dict[str, Any]] = {}
    seen: dict[tuple[str, str, str, str], int] = {}  # (agent, GPU, name, time): samples so far
    for sample in samples:
        when = sample.time.rfc3339()
        moments.setdefault(when, sample.time)
        series_key = (sample.agent_id, sample.gpu_uuid, sample.name, when)
        repeat = seen.get(series_key, 0)
        seen[series_key] = repeat + 1
        holder = rebuilt.setdefault((when, repeat), {}).setdefault(sample.agent_id, {})
        if sample.gpu_uuid:
            holder = holder.setdefault(sample.gpu_uuid, {})
        holder[sample.name] = sample.value

    def by_time(key: tuple[str, int]) -> tuple[w.Timestamp, int, int]:
        moment = moments[key[0]]
        return (moment, moment.nanosecond, key[1])

    return [
        MetricReport(trial_id, None, None, group, rebuilt[key], None, key[0])
        for key in sorted(rebuilt, key=by_time)
    ]


def _profiler_records(report: MetricReport) -> list[dict[str, Any]]:
    """A profiler report as rows: one per agent and GPU (a DataFrame groups by them)."""
    base = {
        "trial_id": report.trial_id, "trial_run_id": report.trial_run_id, "step": report.step,
        "time": report.time,
    }  # fmt: skip
    records: list[dict[str, Any]] = []
    for agent_id, metrics in report.values.items():
        flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        if flat:
            records.append({**base, "agent_id": agent_id, "gpu_uuid": "", **flat})
        for gpu_uuid, values in metrics.items():
            if isinstance(values, dict):
                records.append({**base, "agent_id": agent_id, "gpu_uuid": gpu_uuid, **values})
    return records


def to_pandas(records: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of records (needs pandas)."""
    return optional_module("pandas", "to_pandas()").DataFrame.from_records(records)


def to_polars(records: list[dict[str, Any]]) -> Any:
    """A polars DataFrame of records (needs polars)."""
    polars = optional_module("polars", "to_polars()")
    return polars.from_dicts(records, infer_schema_length=None)


def trials_of(trials: list[Trial | int] | QueryBase[Any]) -> Op[list[Trial | int]]:
    """The chosen trials; a trial query is run."""
    if isinstance(trials, QueryBase):
        return list((yield from rows_of(trials)))
    return trials


def chosen_trials(
    trials: Iterable[Trial | int] | QueryBase[Any],
) -> list[Trial | int] | QueryBase[Any]:
    """The trials of a metrics, summaries or logs read: Trial objects or trial ids, refused
    before anything is sent when one is neither, or a trial query (run by :func:`trials_of`)."""
    if isinstance(trials, QueryBase):
        return trials
    chosen = check_iterable("trials", trials, "Trial objects or trial ids, or a trial query")
    for trial in chosen:
        if not isinstance(trial, Trial):
            check_id("each trial", trial, what="a Trial or a trial id (an int)")
    return chosen


def _trials_shown(trials: list[Trial | int] | QueryBase[Any]) -> Any:
    """The trials of a read as its displays show them: ids, or the query that picks them."""
    if isinstance(trials, QueryBase):
        return trials  # shown by its repr
    return [t if isinstance(t, int) else t.__dict__.get("id") for t in trials]


def optional_module(module: str, feature: str) -> Any:
    # Optional dependencies are imported by name, only when asked for.
    try:
        return importlib.import_module(module)
    except ImportError:
        # The extras are named after the libraries (pyproject.toml: pandas, polars).
        raise ConfigurationError(
            f"{feature} needs {module}: pip install 'detorm[{module}]'"
        ) from None


def _chunks(trial_ids: list[int], group: str) -> Iterable[list[int]]:
    """Split ids so that no request URL gets too long (the master takes any number)."""
    chunk: list[int] = []
    length = len(group) + 64
    for trial_id in trial_ids:
        cost = len("trialIds=&") + len(str(trial_id))
        if chunk and length + cost > MAX_URL:
            yield chunk
            chunk, length = [], len(group) + 64
        chunk.append(trial_id)
        length += cost
    if chunk:
        yield chunk


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines)


def _split(payload: bytes) -> list[bytes]:
    return [line for line in payload.split(b"\n") if line]


@nan_equal
@dataclass(frozen=True, slots=True)
class TrialSummary:
    """What a trial was trained with and what it reached: immutable once it has finished."""

    trial_id: int
    experiment_id: int
    state: w.TrialState
    hparams: dict[str, Any]
    summary_metrics: dict[str, dict[str, MetricSummary]]
    searcher_metric_value: float | None


def _summary_of(run: w.FlatRun) -> TrialSummary:
    return TrialSummary(
        trial_id=run.id,
        experiment_id=run.experiment.id if run.experiment is not None else 0,
        state=run.state,
        hparams=dict(run.hyperparameters or {}),
        summary_metrics=summary_from_wire(run.summary_metrics),
        searcher_metric_value=run.searcher_metric_value,
    )


def read_summaries(
    session: Session, trials: list[Trial | int] | QueryBase[Any], *, cache: bool
) -> Op[dict[int, TrialSummary]]:
    ids = sorted({t if isinstance(t, int) else t.id for t in (yield from trials_of(trials))})
    found: dict[int, TrialSummary] = {}
    if cache:
        for trial_id, payload in (yield from blocking(_cached_summaries, session, ids)).items():
            found[trial_id] = _summary_of(w.FlatRun.model_validate_json(payload))
    missing = [t for t in ids if t not in found]
    if missing:
        pager = Pager(runs_source("id", missing), offset=0, limit=None, page_size=2000)
        final: dict[int, bytes] = {}
        while (rows := (yield from pager.next())) is not None:
            for run in rows:
                found[run.id] = _summary_of(run)
                if cache and run.state.is_terminal:
                    final[run.id] = run.model_dump_wire_json()
        if final:
            yield from blocking(_keep_summaries, session, final)
    return {t: found[t] for t in ids if t in found}


def _cached_summaries(session: Session, ids: list[int]) -> dict[int, bytes]:
    found = ((t, session.cache.get(_SUMMARY_KIND, t)) for t in ids)
    return {t: payload for t, payload in found if payload is not None}


def _keep_summaries(session: Session, payloads: dict[int, bytes]) -> None:
    for trial_id, payload in payloads.items():
        session.cache.set(_SUMMARY_KIND, trial_id, value=payload)


_SUMMARY_KIND: Final = "summary"


# --- metric names -------------------------------------------------------------------------------
def metric_names(session: Session, experiment_id: int) -> Op[dict[str, list[str]]]:
    """``ExpMetricNames`` for one experiment: its first message, by group.

    The route is a stream that the master repeats every ``periodSeconds`` while the experiment
    is not terminal; its first message already holds every name known, so it is closed then.
    The names come from the summary metrics of the experiment's trials: every group reported
    through ReportTrialMetrics, but not the profiler groups (they have no summary).
    """
    call = Call(
        "GET", "/api/v1/experiments/metrics-stream/metric-names",
        (("ids", str(check_id("experiment", experiment_id))),), stream=True,
    )  # fmt: skip
    reader = session.transport.results(call)
    lines = yield from reader.batch()
    yield from reader.close()
    names: dict[str, set[str]] = {}
    for identifier in (from_json(lines[0]).get("metricNames") or ()) if lines else ():
        names.setdefault(str(identifier.get("group", "")), set()).add(str(identifier["name"]))
    # Go ranges over a map: the groups come in random order.
    return {group: sorted(names[group]) for group in sorted(names)}


def metric_groups(session: Session, trial: Trial) -> Op[dict[str, list[str]]]:
    """A trial's metric groups and the names each holds, from its summary metrics (read again).

    Master 0.38.1 has no per-trial metric-names route; ``ExpMetricNames`` reads the same summary
    metrics of every trial of an experiment, so one trial's own summary is its exact answer.
    """
    yield from session._refresh(trial)
    summary = trial.summary_metrics
    return {group: sorted(summary[group]) for group in sorted(summary)}
