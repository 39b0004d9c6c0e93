"""Every metric group stored and served as master 0.38.1 does, read with the official client.

``db/postgres_trial_metrics.go`` (``metricsBody.ToJSONObj``, ``GetMetrics``) and
``db/postgres_trial.go`` (``_addTrialMetricsTx``, ``_addTrialProfilingMetricsTx``): training and
custom groups are wrapped ``{"avg_metrics", "batch_metrics"}``, validation ``{"validation_metrics"}``,
profiling groups stored bare with ``total_batches`` NULL (and so never streamed).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from determined.common.api._session import Session
from determined.experimental import Determined

from detorm.local import LocalMaster, Seeder

with warnings.catch_warnings():  # the module warns that it moved; its classes did not
    warnings.simplefilter("ignore", FutureWarning)
    from determined.common.experimental.trial import Trial

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def official(local_master: LocalMaster, api: httpx.Client) -> Iterator[Session]:
    token = api.headers["Authorization"].removeprefix("Bearer ")
    yield Session(local_master.url, "determined", token, None)


@pytest.fixture
def trial(local_master: LocalMaster) -> int:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="groups")
        trial_id = seed.trial(experiment)
        seed.metrics(trial_id, "training", [(10, {"loss": 0.5}, T0)])
        seed.metrics(trial_id, "validation", [(10, {"validation_loss": 0.25}, T0)])
        seed.metrics(trial_id, "mygroup", [(5, {"score": 1.0}, T0), (10, {"score": 2.0}, T0)])
        seed.metrics(trial_id, "gpu", [(10, {"agent-1": {"GPU-0": {"gpu_util": 0.5}}}, T0)])
    return trial_id


def test_official_client_reads_a_custom_group(official: Session, trial: int) -> None:
    got = list(Trial(trial, official).iter_metrics("mygroup"))
    assert [(m.group, m.steps_completed, m.metrics, m.batch_metrics) for m in got] == [
        ("mygroup", 5, {"score": 1.0}, None),
        ("mygroup", 10, {"score": 2.0}, None),
    ]
    streamed = list(Determined._from_session(official).iter_trials_metrics([trial], "mygroup"))
    assert [m.metrics for m in streamed] == [{"score": 1.0}, {"score": 2.0}]


def test_official_client_reads_no_profiling_reports(official: Session, trial: int) -> None:
    # the master streams no profiling row (total_batches NULL): the official client gets none
    assert list(Trial(trial, official).iter_metrics("gpu")) == []


def test_the_other_groups_read_back(official: Session, trial: int) -> None:
    one = Trial(trial, official)
    assert [m.metrics for m in one.iter_metrics("training")] == [{"loss": 0.5}]
    assert [m.metrics for m in one.iter_metrics("validation")] == [{"validation_loss": 0.25}]


def test_custom_groups_are_in_the_summary_and_the_metric_names(
    api: httpx.Client, trial: int
) -> None:
    summary = api.get(f"/api/v1/trials/{trial}").json()["trial"]["summaryMetrics"]
    assert set(summary) == {"avg_metrics", "validation_metrics", "mygroup"}
    assert summary["mygroup"]["score"]["count"] == 2
    experiment = api.get(f"/api/v1/trials/{trial}").json()["trial"]["experimentId"]
    response = api.get(
        "/api/v1/experiments/metrics-stream/metric-names", params={"ids": experiment}
    )
    assert response.status_code == 200, response.text
    (line,) = response.text.splitlines()
    assert {
        (m["group"], m["name"])
        for m in httpx.Response(200, content=line).json()["result"]["metricNames"]
    } == {("training", "loss"), ("validation", "validation_loss"), ("mygroup", "score")}


# --- ExpMetricNames -----------------------------------------------------------------------------
NAMES = "/api/v1/experiments/metrics-stream/metric-names"


def _messages(response: httpx.Response) -> list[dict[str, object]]:
    assert response.status_code == 200, response.text
    return [
        httpx.Response(200, content=line).json()["result"] for line in response.text.splitlines()
    ]


def test_metric_names_of_finished_experiments_are_one_message(
    api: httpx.Client, local_master: LocalMaster, trial: int
) -> None:
    with Seeder(local_master.database) as seed:
        other = seed.experiment(name="other", metric="accuracy")
        seed.metrics(seed.trial(other), "training", [(1, {"loss": 1.0, "acc": 0.5})])
    experiment = api.get(f"/api/v1/trials/{trial}").json()["trial"]["experimentId"]
    (message,) = _messages(api.get(NAMES, params={"ids": [other, experiment, other]}))
    assert message == {
        "searcherMetrics": ["validation_loss", "accuracy"],
        "trainingMetrics": ["acc", "loss"],
        "validationMetrics": ["validation_loss"],
        "metricNames": [
            {"group": "training", "name": "acc"}, {"group": "training", "name": "loss"},
            {"group": "mygroup", "name": "score"},
            {"group": "validation", "name": "validation_loss"},
        ],
    }  # fmt: skip


def test_metric_names_of_a_running_experiment_send_only_new_names(
    api: httpx.Client, local_master: LocalMaster, monkeypatch: pytest.MonkeyPatch
) -> None:

    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="running", state="ACTIVE")
        running = seed.trial(experiment, state="RUNNING")
        seed.metrics(running, "training", [(1, {"loss": 1.0})])
    ticks: list[float] = []

    def report_then_finish(seconds: float) -> bool:
        ticks.append(seconds)
        with Seeder(local_master.database) as seed:
            seed.metrics(running, "training", [(2, {"loss": 0.5, "lr": 0.1})])
        with local_master.database.transaction(write=True) as db:
            db.connection().exec_driver_sql(
                "UPDATE experiments SET state = 'COMPLETED' WHERE id = ?", (experiment,)
            )
        return True  # waited: the stream goes on

    monkeypatch.setattr(local_master.database, "follow_wait", report_then_finish)
    first, second = _messages(api.get(NAMES, params={"ids": experiment, "periodSeconds": 7}))
    assert first["trainingMetrics"] == ["loss"] and first["searcherMetrics"] == ["validation_loss"]
    assert second == {
        "searcherMetrics": [], "trainingMetrics": ["lr"], "validationMetrics": [],
        "metricNames": [{"group": "training", "name": "lr"}],
    }  # fmt: skip
    assert ticks == [7]


def test_metric_names_errors(api: httpx.Client, trial: int) -> None:
    missing = api.get(NAMES)
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "must specify at least one experiment id"
    unknown = api.get(NAMES, params={"ids": 999})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "experiment '999' not found"
