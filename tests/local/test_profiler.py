"""Profiling metric groups and the legacy profiler routes on detorm.local, as master 0.38.1
stores and serves them (``db/postgres_trial.go:_addTrialProfilingMetricsTx``,
``db/postgres_trial_profiler_metrics.go``, ``api_trials.go``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from detorm.local import LocalMaster, Seeder
from detorm.local._routes import profiler
from tests.conftest import error_of

T0 = datetime(2025, 1, 1, tzinfo=UTC)
METRICS = "/api/v1/trials/metrics/trial_metrics"


def _lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def _report(
    api: httpx.Client, trial: int, group: str, values: dict[str, Any], **extra: Any
) -> httpx.Response:
    body = {"trialId": trial, "trialRunId": 0, "metrics": {"avgMetrics": values}, **extra}
    return api.post(f"/api/v1/trials/{trial}/metrics", json={"metrics": body, "group": group})


@pytest.fixture
def trial(local_master: LocalMaster) -> int:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="profiled", state="ACTIVE")
        trial_id = seed.trial(experiment, state="RUNNING")
    return trial_id


GPU_REPORT = {
    "agent-1": {
        "GPU-b": {"gpu_util": 0.5, "gpu_free_memory": 10.0},
        "GPU-a": {"gpu_util": 0.25, "gpu_free_memory": 20.0},
    }
}


# --- storage ----------------------------------------------------------------------------------
def test_profiling_reports_are_stored_bare_without_steps_and_never_streamed(
    api: httpx.Client, local_master: LocalMaster, trial: int
) -> None:
    assert _report(api, trial, "gpu", GPU_REPORT, stepsCompleted=7).json() == {}
    assert _report(api, trial, "training", {"loss": 1.0}, stepsCompleted=7).status_code == 200
    with local_master.database.transaction(write=False) as db:
        rows = (
            db.connection()
            .exec_driver_sql("SELECT id, total_batches, metric_group, metrics FROM system_metrics")
            .fetchall()
        )
        training_id = db.connection().exec_driver_sql("SELECT id FROM metrics").scalar()
    assert [(r[1], r[2], json.loads(r[3])) for r in rows] == [(None, "gpu", GPU_REPORT)]
    # one id sequence for every partition: the training row comes after the gpu row
    assert training_id == rows[0][0] + 1
    # GetMetrics' `total_batches > -1` never matches a NULL: a profiling group streams nothing
    for group in ("gpu", "cpu"):
        response = api.get(METRICS, params={"trialIds": trial, "group": group})
        assert response.status_code == 200 and response.text == ""
    # and the trial's bookkeeping is untouched (no summary, no total batches from the gpu row)
    got = api.get(f"/api/v1/trials/{trial}").json()["trial"]
    assert "gpu" not in (got["summaryMetrics"] or {})
    assert got["totalBatchesProcessed"] == 7


def test_profiling_reports_check_the_run_id(api: httpx.Client, trial: int) -> None:
    response = _report(api, trial, "cpu", {"agent-1": {"cpu_util_simple": 3.0}}, trialRunId=4)
    assert response.status_code == 500
    assert error_of(response)["error"] == (
        "failed to exec transaction (add trial metrics cpu): invalid run id, 4 (reported) != 0"
        " (expected): invalid arguments"
    )


# --- GetTrialProfilerAvailableSeries ------------------------------------------------------------
def test_available_series_lists_the_latest_report_of_each_group_and_agent(
    api: httpx.Client, trial: int
) -> None:
    _report(
        api, trial, "cpu", {"agent-1": {"cpu_util_simple": 1.0}}, reportTime="2025-01-01T00:00:00Z"
    )
    _report(
        api,
        trial,
        "cpu",
        {"agent-1": {"cpu_util_simple": 2.0, "cpu_other": 1.0}},
        reportTime="2025-01-01T00:00:05Z",
    )
    _report(api, trial, "gpu", GPU_REPORT)
    _report(api, trial, "disk", {"agent-1": {"disk_iops": 1.0, "/": {"disk_util": 0.5}}})
    (line,) = _lines(api.get(f"/api/v1/trials/{trial}/profiler/available_series"))

    def label(name: str, gpu: str = "") -> dict[str, Any]:
        return {"trialId": trial, "name": name, "agentId": "agent-1", "gpuUuid": gpu,
                "metricType": "PROFILER_METRIC_TYPE_SYSTEM"}  # fmt: skip

    assert line == {
        "result": {
            "labels": [
                label("cpu_other"), label("cpu_util_simple"),
                label("disk_iops"),  # the per-path disk metrics are left out
                label("gpu_free_memory", "GPU-a"), label("gpu_util", "GPU-a"),
                label("gpu_free_memory", "GPU-b"), label("gpu_util", "GPU-b"),
            ]
        }
    }  # fmt: skip


def test_available_series_of_a_trial_without_reports_and_of_an_unknown_trial(
    api: httpx.Client, trial: int
) -> None:
    assert _lines(api.get(f"/api/v1/trials/{trial}/profiler/available_series")) == [
        {"result": {"labels": []}}
    ]
    missing = api.get("/api/v1/trials/999/profiler/available_series")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == (
        "1 error occurred:\n\t* failed to fetch batch: trial '999' not found\n\n"
    )


def test_followed_available_series_repeat_until_the_trial_ends(
    api: httpx.Client, local_master: LocalMaster, trial: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _report(api, trial, "memory", {"agent-1": {"memory_free": 5.0}})
    waits: list[float] = []

    def end_trial_on_wait(seconds: float) -> bool:
        waits.append(seconds)
        with local_master.database.transaction(write=True) as db:
            db.connection().exec_driver_sql(
                "UPDATE trials SET state = 'COMPLETED', end_time = ? WHERE id = ?",
                ("2025-01-01 00:00:00.000000", trial),
            )
        return True  # waited: the stream goes on

    monkeypatch.setattr(local_master.database, "follow_wait", end_trial_on_wait)
    lines = _lines(
        api.get(f"/api/v1/trials/{trial}/profiler/available_series", params={"follow": "true"})
    )
    assert len(lines) == 2 and lines[0] == lines[1]
    assert waits == [profiler.AVAILABLE_SERIES_WAIT_SECONDS]


# --- GetTrialProfilerMetrics --------------------------------------------------------------------
def _metrics(api: httpx.Client, trial: int, **labels: str) -> list[dict[str, Any]]:
    params = {f"labels.{k}": v for k, v in labels.items()}
    response = api.get(f"/api/v1/trials/{trial}/profiler/metrics", params=params)
    return [line["result"]["batch"] for line in _lines(response)]


def test_profiler_metrics_read_one_value_per_report(api: httpx.Client, trial: int) -> None:
    for second, value in ((1, 0.1), (2, 0.2)):
        _report(api, trial, "cpu", {"agent-1": {"cpu_util_simple": value}},
                reportTime=f"2025-01-01T00:00:0{second}.5Z")  # fmt: skip
    _report(api, trial, "cpu", {"agent-2": {"cpu_util_simple": 9.0}})
    batches = _metrics(api, trial, name="cpu_util_simple", agentId="agent-1")
    assert batches == [
        {
            "values": [value], "batches": [], "timestamps": [f"2025-01-01T00:00:0{second}.500Z"],
            "labels": {"trialId": trial, "name": "cpu_util_simple", "agentId": "agent-1",
                       "gpuUuid": "", "metricType": "PROFILER_METRIC_TYPE_UNSPECIFIED"},
        }
        for second, value in ((1, 0.1), (2, 0.2))
    ]  # fmt: skip
    # no agent: the top-level keys are agents, so no metric matches; an unknown prefix neither
    assert _metrics(api, trial, name="cpu_util_simple") == []
    assert _metrics(api, trial, name="util", agentId="agent-1") == []


def test_gpu_metrics_without_a_uuid_list_every_gpu(api: httpx.Client, trial: int) -> None:
    _report(api, trial, "gpu", GPU_REPORT)
    batches = _metrics(
        api, trial, name="gpu_util", agentId="agent-1", metricType="PROFILER_METRIC_TYPE_TIMING"
    )
    assert [(b["labels"]["gpuUuid"], b["values"], b["labels"]["metricType"]) for b in batches] == [
        ("GPU-a", [0.25], "PROFILER_METRIC_TYPE_SYSTEM"),
        ("GPU-b", [0.5], "PROFILER_METRIC_TYPE_SYSTEM"),
    ]
    one = _metrics(api, trial, name="gpu_util", agentId="agent-1", gpuUuid="GPU-b")
    assert [(b["labels"]["gpuUuid"], b["values"]) for b in one] == [("GPU-b", [0.5])]


def test_profiler_metrics_are_fetched_in_batches_of_100(api: httpx.Client, trial: int) -> None:
    for index in range(230):
        _report(api, trial, "network", {"agent-1": {"net_throughput_sent": float(index)}})
    batches = _metrics(api, trial, name="net_throughput_sent", agentId="agent-1")
    assert [b["values"][0] for b in batches] == [float(i) for i in range(230)]


def test_profiler_metric_values_that_are_not_numbers(api: httpx.Client, trial: int) -> None:
    _report(api, trial, "memory", {"agent-1": {"memory_free": "NaN"}})
    assert [b["values"] for b in _metrics(api, trial, name="memory_free", agentId="agent-1")] == [
        ["NaN"]
    ]
    _report(api, trial, "memory", {"agent-1": {"memory_free": "lots"}})
    response = api.get(
        f"/api/v1/trials/{trial}/profiler/metrics",
        params={"labels.name": "memory_free", "labels.agentId": "agent-1"},
    )
    # the fetch of the batch holding it fails, before any message
    assert response.status_code == 500
    assert response.json()["error"]["message"] == (
        "1 error occurred:\n\t* failed to fetch batch: querying profiler metric batch: sql: Scan"
        ' error on column index 0, name "values": converting driver.Value type string ("lots")'
        " to a float32: invalid syntax\n\n"
    )


def test_profiler_metrics_of_an_unknown_trial(api: httpx.Client) -> None:
    response = api.get("/api/v1/trials/999/profiler/metrics", params={"labels.name": "cpu_x"})
    assert response.status_code == 404
    assert response.json()["error"]["grpcCode"] == 5


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1, "0.1"), (1.0, "1"), (3.4028234663852886e38, "3.4028235e+38"), (1e-7, "1e-7"),
     (123456.789, "123456.79"), (-2.5, "-2.5"), (1e20, "100000000000000000000")],
)  # fmt: skip
def test_float32_values_as_jsonpb_writes_them(value: float, text: str) -> None:
    assert profiler.float32_json(value) == text


# --- PostTrialProfilerMetricsBatch --------------------------------------------------------------
def test_post_profiler_metrics_batch_checks_each_batch(
    api: httpx.Client, local_master: LocalMaster, trial: int
) -> None:
    labels = {"trialId": trial, "name": "x", "agentId": "a"}
    good = {
        "values": [1.5],
        "batches": [3],
        "timestamps": ["2025-01-01T00:00:00Z"],
        "labels": labels,
    }
    assert api.post("/api/v1/trials/profiler/metrics", json={"batches": [good]}).json() == {}
    with local_master.database.transaction(write=False) as db:
        stored = (
            db.connection().exec_driver_sql("SELECT labels FROM trial_profiler_metrics").scalar()
        )
    assert json.loads(stored) == labels
    bad = {**good, "batches": []}
    response = api.post("/api/v1/trials/profiler/metrics", json={"batches": [bad]})
    assert response.status_code == 400
    assert error_of(response)["error"] == (
        "1 error occurred:\n\t* values, batches and timestamps should be equal sized arrays\n\n"
    )
    unknown = {**good, "labels": {**labels, "trialId": 999}}
    response = api.post("/api/v1/trials/profiler/metrics", json={"batches": [unknown]})
    assert response.status_code == 404


def test_deleting_the_experiment_deletes_its_profiling_rows(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="done", state="COMPLETED")
        trial_id = seed.trial(experiment)
        seed.metrics(trial_id, "cpu", [(0, {"agent-1": {"cpu_util_simple": 1.0}})])
    assert api.delete(f"/api/v1/experiments/{experiment}").status_code == 200
    with local_master.database.transaction(write=False) as db:
        left = db.connection().exec_driver_sql("SELECT count(*) FROM system_metrics").scalar()
    assert left == 0
