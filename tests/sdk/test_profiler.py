"""A trial's profiler (system) metrics through the master's profiler routes, in both APIs
against detorm.local: the series, the samples (lazily, as rows or a DataFrame), bad input."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy
import pytest

import detorm
from detorm import ProfilerSample, ProfilerSeries, Timestamp
from detorm._ops._effects import Attempt
from detorm.errors import InvalidType, InvalidValue, NotFound, TransportError
from detorm.local import LocalMaster, Seeder
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.test_metrics import _DropsAfter

T0 = datetime(2025, 1, 1, tzinfo=UTC)
AGENT = "agent-1"


@dataclass
class Profiled:
    master: LocalMaster
    api: Api
    trial: int
    quiet: int  # a trial without profiler metrics


def reports(seed: Seeder, trial: int, count: int) -> None:
    """What the harness's profiler reports: one report per group and period, by agent."""
    for i in range(count):
        when = T0 + timedelta(seconds=10 * i)
        gpus = {
            "GPU-0": {"gpu_util": 50.0 + i, "gpu_free_memory": 1024.0},
            "GPU-1": {"gpu_util": 10.0, "gpu_free_memory": 2048.0},
        }
        seed.metrics(trial, "gpu", [(None, {AGENT: gpus}, when)])
        seed.metrics(trial, "cpu", [(None, {AGENT: {"cpu_util_simple": 12.5 * (i + 1)}}, when)])
        disk = {"disk_iops": 3.0, "disk_throughput_read": 0.5, "/": {"disk_util": 40.0}}
        seed.metrics(trial, "disk", [(None, {AGENT: disk}, when)])


@pytest.fixture(params=MODES)
def profiled(request: pytest.FixtureRequest, environ: dict[str, str]) -> Iterator[Profiled]:
    mode: Mode = request.param
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            experiment = seed.experiment(name="profiled", state="COMPLETED")
            trial, quiet = seed.trial(experiment), seed.trial(experiment)
            reports(seed, trial, 3)
        with Api(mode, master.url, environ, cache=None) as api:
            yield Profiled(master, api, trial, quiet)


def trial_of(profiled: Profiled, trial_id: int | None = None) -> Any:
    api = profiled.api
    return api(api.session.get(api.Trial, trial_id or profiled.trial))


def test_series(profiled: Profiled) -> None:
    series = profiled.api(trial_of(profiled).profiler_series())
    assert all(isinstance(s, ProfilerSeries) for s in series)
    keys = sorted((s.group, s.name, s.gpu_uuid) for s in series)
    assert keys == [
        ("cpu", "cpu_util_simple", ""), ("disk", "disk_iops", ""),
        ("disk", "disk_throughput_read", ""),  # disk usage per mount point is not served
        ("gpu", "gpu_free_memory", "GPU-0"), ("gpu", "gpu_free_memory", "GPU-1"),
        ("gpu", "gpu_util", "GPU-0"), ("gpu", "gpu_util", "GPU-1"),
    ]  # fmt: skip
    assert {(s.trial_id, s.agent_id, s.metric_type) for s in series} == {
        (profiled.trial, AGENT, "PROFILER_METRIC_TYPE_SYSTEM")
    }
    assert profiled.api(trial_of(profiled, profiled.quiet).profiler_series()) == []


def test_samples_of_the_series_asked(profiled: Profiled) -> None:
    api = profiled.api
    trial = trial_of(profiled)
    before = api.session.requests_sent
    samples = api.list(trial.profiler_metrics("gpu_util"))
    assert api.session.requests_sent - before == 3  # the series, then one stream per GPU
    assert all(isinstance(s, ProfilerSample) for s in samples)
    by_gpu: dict[str, list[tuple[datetime, float]]] = {}
    for sample in samples:
        assert (sample.trial_id, sample.group, sample.name, sample.agent_id, sample.batch) == (
            profiled.trial, "gpu", "gpu_util", AGENT, None,
        )  # fmt: skip
        assert isinstance(sample.time, Timestamp)
        by_gpu.setdefault(sample.gpu_uuid, []).append((sample.time, sample.value))
    times = [T0 + timedelta(seconds=10 * i) for i in range(3)]
    assert by_gpu == {
        "GPU-0": list(zip(times, [50.0, 51.0, 52.0], strict=True)),
        "GPU-1": list(zip(times, [10.0] * 3, strict=True)),
    }
    cpu = api.list(trial.profiler_metrics(groups="cpu"))
    assert [(s.name, s.value) for s in cpu] == [("cpu_util_simple", v) for v in (12.5, 25.0, 37.5)]
    both = api.list(trial.profiler_metrics(["disk_iops", "cpu_util_simple"], groups=["disk"]))
    assert {s.name for s in both} == {"disk_iops"}
    assert len(api.list(trial.profiler_metrics())) == 7 * 3


def test_records_and_dataframes(profiled: Profiled) -> None:
    api = profiled.api
    stream = trial_of(profiled).profiler_metrics(groups="gpu")
    records = api(stream.to_records())
    assert len(records) == 12
    assert set(records[0]) == {
        "trial_id", "group", "name", "agent_id", "gpu_uuid", "time", "value", "batch",
    }  # fmt: skip
    frame = api(stream.to_pandas())
    utilisation = frame[frame["name"] == "gpu_util"].groupby("gpu_uuid")["value"].mean()
    assert utilisation.to_dict() == {"GPU-0": 51.0, "GPU-1": 10.0}
    assert api(stream.to_polars()).height == 12


def test_bad_input_is_refused_before_sending(profiled: Profiled) -> None:
    api = profiled.api
    trial = trial_of(profiled)
    before = api.session.requests_sent
    with pytest.raises(InvalidValue, match="'gpus' is not a profiler group"):
        trial.profiler_metrics(groups="gpus")
    with pytest.raises(InvalidType, match="names"):
        trial.profiler_metrics(names=3)
    with pytest.raises(InvalidType, match="each name"):
        trial.profiler_metrics(names=["gpu_util", 3])
    assert api.session.requests_sent == before


def test_a_trial_that_is_gone(profiled: Profiled) -> None:
    api = profiled.api
    trial = trial_of(profiled)
    api(api.Trial.query(api.session).filter(id=trial.id).delete())  # DeleteRuns
    with pytest.raises(NotFound, match=f"trial '{trial.id}' not found"):
        api(trial.profiler_series())


def test_a_cut_stream_resumes_without_duplicates(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            trial = seed.trial(seed.experiment(name="long", state="COMPLETED"))
            reports(seed, trial, 250)  # more than one batch of 100 per stream
        with detorm.Session(master.url, user="determined", password="", environ=environ) as s:
            real = s.transport._attempt
            cuts = {"n": 0}

            def flaky(attempt: Attempt, opened: Any) -> httpx.Response | TransportError:
                # The first samples stream drops the connection after 150 messages.
                response = real(attempt, opened)
                path = attempt.call.path
                if not isinstance(response, httpx.Response) or not path.endswith("/metrics"):
                    return response
                cuts["n"] += 1
                if cuts["n"] > 1:
                    return response
                first = b"".join(response.read().splitlines(keepends=True)[:150])
                response.close()
                return httpx.Response(200, stream=_DropsAfter(first), request=response.request)

            monkeypatch.setattr(s.transport, "_attempt", flaky)
            samples = list(s.get(detorm.Trial, trial).profiler_metrics("cpu_util_simple"))
    assert [x.value for x in samples] == [12.5 * (i + 1) for i in range(250)]
    assert cuts["n"] == 2


# --- trial.metrics(group) / session.metrics(trials, group) of a profiler group -----------------
def reported(i: int) -> dict[str, dict[str, Any]]:
    """What :func:`reports` reported for the gpu group at its i-th period."""
    return {
        AGENT: {
            "GPU-0": {"gpu_util": 50.0 + i, "gpu_free_memory": 1024.0},
            "GPU-1": {"gpu_util": 10.0, "gpu_free_memory": 2048.0},
        }
    }


def test_a_profiler_group_reads_back_as_the_harness_reported_it(profiled: Profiled) -> None:
    api = profiled.api
    trial, quiet = trial_of(profiled), trial_of(profiled, profiled.quiet)
    gpu = api.list(trial.metrics("gpu"))
    times = [T0 + timedelta(seconds=10 * i) for i in range(3)]
    assert [(r.trial_id, r.trial_run_id, r.step, r.group, r.time) for r in gpu] == [
        (profiled.trial, None, None, "gpu", when) for when in times
    ]
    assert [r.values for r in gpu] == [reported(i) for i in range(3)]
    assert all(r.batch_metrics is None and r.epoch is None for r in gpu)
    cpu = api.list(trial.metrics("cpu"))
    assert [r.values for r in cpu] == [
        {AGENT: {"cpu_util_simple": 12.5 * (i + 1)}} for i in range(3)
    ]
    # disk usage per mount point ("/") is not served by the master's profiler routes
    disk = api.list(trial.metrics("disk"))
    assert [r.values for r in disk] == [
        {AGENT: {"disk_iops": 3.0, "disk_throughput_read": 0.5}}
    ] * 3
    # many trials: trial after trial; a trial without profiler reports has none
    both = api.list(api.session.metrics([quiet, trial], "cpu"))
    assert [(r.trial_id, r.time) for r in both] == [(profiled.trial, when) for when in times]
    assert api.list(quiet.metrics("memory")) == [] and api.list(trial.metrics("network")) == []


def test_a_profiler_group_as_records_and_dataframes(profiled: Profiled) -> None:
    api = profiled.api
    stream = trial_of(profiled).metrics("gpu")
    records = api(stream.to_records())
    assert len(records) == 3 * 2  # one per report and GPU
    assert records[0] == {
        "trial_id": profiled.trial, "trial_run_id": None, "step": None, "time": T0,
        "agent_id": AGENT, "gpu_uuid": "GPU-0", "gpu_util": 50.0, "gpu_free_memory": 1024.0,
    }  # fmt: skip
    frame = api(stream.to_pandas())
    assert frame.groupby("gpu_uuid")["gpu_util"].mean().to_dict() == {"GPU-0": 51.0, "GPU-1": 10.0}
    assert api(stream.to_polars()).height == 6
    cpu = api(trial_of(profiled).metrics("cpu").to_records())
    assert [(r["agent_id"], r["gpu_uuid"], r["cpu_util_simple"]) for r in cpu] == [
        (AGENT, "", 12.5), (AGENT, "", 25.0), (AGENT, "", 37.5),
    ]  # fmt: skip


def test_profiler_groups_are_not_cached(
    profiled: Profiled, environ: dict[str, str], tmp_path: Any
) -> None:
    with Api(profiled.api.mode, profiled.master.url, environ, cache=tmp_path / "c") as api:
        trial = api(api.session.get(api.Trial, profiled.trial))
        first = api.list(trial.metrics("cpu"))
        before = api.session.requests_sent
        assert api.list(trial.metrics("cpu")) == first
        assert api.session.requests_sent == before + 2  # the series, then its one stream
        assert len(api.session.cache) == 0


def report_over_http(master: LocalMaster, trial: int, group: str, values: Any, when: str) -> None:
    """ReportTrialMetrics as the harness's metrics shipper sends it."""
    body = {
        "trialId": trial, "trialRunId": 0, "stepsCompleted": 0,
        "metrics": {"avgMetrics": values}, "reportTime": when,
    }  # fmt: skip
    with httpx.Client(base_url=master.url) as client:
        token = client.post(
            "/api/v1/auth/login", json={"username": "determined", "password": ""}
        ).json()["token"]
        response = client.post(
            f"/api/v1/trials/{trial}/metrics", json={"metrics": body, "group": group},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("mode", MODES)
def test_reports_of_two_agents_over_http(mode: Mode, environ: dict[str, str]) -> None:
    free = 12_345_678_901  # more digits than a float32 holds: the master serves float32 values
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            trial = seed.trial(seed.experiment(name="two agents", state="ACTIVE"))
        first = {"agent-a": {"memory_free": free}, "agent-b": {"memory_free": 1.5}}
        report_over_http(master, trial, "memory", first, "2025-01-01T00:00:10.250Z")
        report_over_http(master, trial, "memory", {"agent-a": {"memory_free": 2.0}},
                         "2025-01-01T00:00:05Z")  # fmt: skip
        with Api(mode, master.url, environ, cache=None) as api:
            reports = api.list(api(api.session.get(api.Trial, trial)).metrics("memory"))
    # jsonpb writes a float32 as the shortest decimal that reads back as that float32
    float32 = float(str(numpy.float32(free)))
    assert float32 == 12_345_679_000 != free
    # ordered by time (not by when they were stored); values nested by agent as reported
    assert [(r.time.rfc3339(), r.values) for r in reports] == [
        ("2025-01-01T00:00:05Z", {"agent-a": {"memory_free": 2.0}}),
        ("2025-01-01T00:00:10.250Z", {"agent-a": {"memory_free": float32}, "agent-b": {"memory_free": 1.5}}),
    ]  # fmt: skip
