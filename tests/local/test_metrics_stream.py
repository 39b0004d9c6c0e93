"""Metric streams and reports on detorm.local, as ``api_trials.go:streamMetrics``,
``db.GetMetrics`` and ``ReportTrialMetrics`` behave."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from determined.common.api import bindings
from determined.common.api._session import Session
from sqlalchemy import text

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._routes import metrics as metrics_routes
from tests.conftest import error_of

with warnings.catch_warnings():  # the module warns that it moved; its functions did not
    warnings.simplefilter("ignore", FutureWarning)
    from determined.common.experimental import trial as official_trial

TRAINING = "/api/v1/trials/metrics/trial_metrics"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class World:
    api: httpx.Client
    master: LocalMaster
    big: int  # 2500 training rows, 3 validations
    small: int  # 10 training rows


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="e", searcher="random")
        big = seed.trial(experiment)
        small = seed.trial(experiment)
        seed.metrics(
            big,
            "training",
            [(i, {"loss": 1 / i}, T0.replace(second=i % 60)) for i in range(1, 2501)],
        )
        seed.metrics(big, "validation", [(1000 * i, {"validation_loss": 1 / i}) for i in (1, 2, 3)])
        seed.metrics(small, "training", [(i, {"loss": float(i)}) for i in range(1, 11)])
    yield World(api, local_master, big, small)


def lines_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return [json.loads(line) for line in response.text.splitlines()]


def reports(response: httpx.Response) -> list[list[dict[str, Any]]]:
    return [line["result"]["metrics"] for line in lines_of(response)]


def official_session(world: World) -> Session:
    token = world.api.headers["Authorization"].removeprefix("Bearer ")
    return Session(world.master.url, "determined", token, None)


# --- batching and order ---------------------------------------------------------------------
def test_trials_stream_in_ascending_id_order_in_batches_of_1000(world: World) -> None:
    batches = reports(
        world.api.get(TRAINING, params={"trialIds": [world.small, world.big], "group": "training"})
    )
    assert [len(b) for b in batches] == [1000, 1000, 500, 10]
    rows = [r for b in batches for r in b]
    assert [r["trialId"] for r in rows] == [world.big] * 2500 + [world.small] * 10
    assert [r["totalBatches"] for r in rows[:2500]] == list(range(1, 2501))


def test_a_trial_without_rows_sends_no_message(world: World, local_master: LocalMaster) -> None:
    with Seeder(local_master.database) as seed:
        empty = seed.trial(seed.experiment(name="x"))
    batches = reports(
        world.api.get(TRAINING, params={"trialIds": [empty, world.small], "group": "training"})
    )
    assert [len(b) for b in batches] == [10]


def test_duplicate_trial_ids_are_streamed_twice(world: World) -> None:
    # streamMetrics' duplicate check never fires: its map is never filled
    batches = reports(
        world.api.get(
            TRAINING, params={"trialIds": [world.small, world.small], "group": "training"}
        )
    )
    assert [len(b) for b in batches] == [10, 10]


def test_report_shape(world: World, local_master: LocalMaster) -> None:
    with Seeder(local_master.database) as seed:
        trial = seed.trial(seed.experiment(name="shape"))
        seed.metrics(
            trial, "training",
            [(5, {"b": 2, "a": 0.5}, datetime(2025, 2, 3, 4, 5, 6, 123456, tzinfo=UTC)),
             (6, {"a": 1.0}, datetime(2025, 2, 3, 4, 5, 7, tzinfo=UTC)),
             (7, {"a": 1.0}, datetime(2025, 2, 3, 4, 5, 8, 999, tzinfo=UTC))],
        )  # fmt: skip
    (batch,) = reports(world.api.get(TRAINING, params={"trialIds": trial, "group": "training"}))
    first = batch[0]
    assert list(first) == [
        "trialId",
        "endTime",
        "metrics",
        "totalBatches",
        "archived",
        "id",
        "trialRunId",
        "group",
    ]
    assert first == {
        "trialId": trial, "endTime": "2025-02-03T04:05:06.123Z",
        "metrics": {"avg_metrics": {"a": 0.5, "b": 2}, "batch_metrics": None}, "totalBatches": 5,
        "archived": False, "id": first["id"], "trialRunId": 0, "group": "training",
    }  # fmt: skip
    assert list(first["metrics"]["avg_metrics"]) == ["a", "b"]  # a Struct: keys in order
    # truncated (not rounded) to milliseconds; a whole second has no fraction
    assert [r["endTime"] for r in batch[1:]] == ["2025-02-03T04:05:07Z", "2025-02-03T04:05:08Z"]
    assert isinstance(first["id"], int) and first["id"] > 0


def test_validation_and_training_endpoints(world: World) -> None:
    validation = reports(
        world.api.get("/api/v1/trials/metrics/validation_metrics", params={"trialIds": world.big})
    )
    assert [r["metrics"] for r in validation[0]] == [
        {"validation_metrics": {"validation_loss": v}} for v in (1.0, 0.5, 1 / 3)
    ]
    assert {r["group"] for r in validation[0]} == {"validation"}
    same = world.api.get(TRAINING, params={"trialIds": world.small, "group": "training"}).text
    assert (
        world.api.get(
            "/api/v1/trials/metrics/training_metrics", params={"trialIds": world.small}
        ).text
        == same
    )


def test_groups(world: World, local_master: LocalMaster) -> None:
    with Seeder(local_master.database) as seed:
        seed.metrics(world.small, "inference", [(3, {"latency": 12.5})])
        seed.metrics(world.small, "gpu", [(0, {"util": 0.9})])
        seed.metrics(world.small, "cpu", [(0, {"util": 0.2})])
    (batch,) = reports(
        world.api.get(TRAINING, params={"trialIds": world.small, "group": "inference"})
    )
    assert batch[0]["metrics"] == {"avg_metrics": {"latency": 12.5}, "batch_metrics": None}
    # profiling rows keep total_batches NULL (system_metrics), which GetMetrics' `total_batches >
    # -1` never matches: a profiling group streams nothing (tests/local/test_profiler.py)
    gpu = world.api.get(TRAINING, params={"trialIds": world.small, "group": "gpu"})
    assert gpu.status_code == 200 and gpu.text == ""
    # no group: nothing matches, an empty 200 stream
    empty = world.api.get(TRAINING, params={"trialIds": world.small})
    assert empty.status_code == 200 and empty.text == ""


def test_archived_rows_are_left_out(world: World, local_master: LocalMaster) -> None:
    with local_master.database.transaction(write=True) as db:
        db.execute(
            text("UPDATE metrics SET archived = 1 WHERE trial_id = :t AND total_batches > 5"),
            {"t": world.small},
        )
    (batch,) = reports(
        world.api.get(TRAINING, params={"trialIds": world.small, "group": "training"})
    )
    assert [r["totalBatches"] for r in batch] == [1, 2, 3, 4, 5]


def test_a_later_run_rolls_back_and_streams_after_the_earlier_one(
    world: World, local_master: LocalMaster
) -> None:
    # Reporting step 600 from run 1 archives run 0's rows from step 600 on (rollbackMetrics);
    # the stream then holds run 0's steps 1..599 and run 1's 600.
    with Seeder(local_master.database) as seed:
        trial = seed.trial(seed.experiment(name="runs"))
        seed.metrics(
            trial, "training", [(i, {"loss": 1.0}) for i in range(1, 1001)], trial_run_id=0
        )
        seed.metrics(trial, "training", [(600, {"loss": 0.5})], trial_run_id=1)
    (batch,) = reports(world.api.get(TRAINING, params={"trialIds": trial, "group": "training"}))
    assert [(r["trialRunId"], r["totalBatches"]) for r in batch] == [
        (0, i) for i in range(1, 600)
    ] + [(1, 600)]


# --- errors ---------------------------------------------------------------------------------
def stream_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and not response.text.endswith("\n"), response.text
    error: dict[str, Any] = body["error"]
    return error


def test_errors(world: World) -> None:
    missing = world.api.get(TRAINING, params={"group": "training"})
    assert missing.status_code == 400
    assert stream_error(missing) == {
        "grpcCode": 3, "httpCode": 400, "message": "must specify at least one trialId",
        "httpStatus": "Bad Request", "details": [],
    }  # fmt: skip
    unknown = world.api.get(TRAINING, params={"trialIds": [world.big, 999], "group": "training"})
    assert unknown.status_code == 404
    assert stream_error(unknown)["message"] == "trial '999' not found"
    # a query parameter that does not parse fails in the gateway: the unary shape
    bad = world.api.get(TRAINING, params={"trialIds": "x"})
    assert bad.status_code == 400
    assert error_of(bad) == {
        "code": 3,
        "reason": "InvalidArgument",
        "error": 'strconv.ParseInt: parsing "x": invalid syntax',
    }
    assert (
        world.api.get(
            TRAINING, params={"trialIds": world.big}, headers={"Authorization": ""}
        ).status_code
        == 401
    )


def test_a_failure_mid_stream_ends_with_the_error_line(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = metrics_routes.fetch_batch
    calls = []

    def failing(*args: Any) -> list[tuple[Any, ...]]:
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("database is gone")
        return real(*args)

    monkeypatch.setattr(metrics_routes, "fetch_batch", failing)
    response = world.api.get(TRAINING, params={"trialIds": world.big, "group": "training"})
    assert response.status_code == 200
    lines = response.text.split("\n")
    assert len(json.loads(lines[0])["result"]["metrics"]) == 1000
    assert json.loads(lines[1]) == {
        "error": {"grpcCode": 2, "httpCode": 500, "message": "database is gone",
                  "httpStatus": "Internal Server Error", "details": []}
    }  # fmt: skip
    assert len(lines) == 2  # no newline after the error object


# --- the official client --------------------------------------------------------------------
def test_official_bindings_parse_every_message(world: World) -> None:
    response = world.api.get(
        TRAINING, params={"trialIds": [world.big, world.small], "group": "training"}
    )
    for line in lines_of(response):
        parsed = bindings.v1GetMetricsResponse.from_json(line["result"])
        assert all(isinstance(m.metrics["avg_metrics"]["loss"], float) for m in parsed.metrics)


def test_official_client_reads_the_streams(world: World) -> None:
    session = official_session(world)
    got = list(official_trial._stream_trials_metrics(session, [world.small], "training"))
    assert [(m.trial_id, m.steps_completed, m.metrics, m.batch_metrics) for m in got] == [
        (world.small, i, {"loss": float(i)}, None) for i in range(1, 11)
    ]
    validations = list(official_trial._stream_validation_metrics(session, [world.big]))
    assert [v.metrics["validation_loss"] for v in validations] == [1.0, 0.5, 1 / 3]
    assert all(v.end_time.tzinfo is not None for v in validations)
    streamed = list(bindings.get_GetTrainingMetrics(session, trialIds=[world.big]))
    assert sum(len(s.metrics) for s in streamed) == 2500


# --- ReportTrialMetrics ---------------------------------------------------------------------
def summary_of(master: LocalMaster, trial: int) -> Any:
    with master.database.transaction(write=False) as db:
        row = db.get(t.TrialRow, trial)
        assert row is not None
        return row.summary_metrics, row.total_batches_processed, row.latest_validation_id


def report(
    world: World, trial: int, group: str, steps: int, values: dict[str, Any], run: int = 0
) -> httpx.Response:
    body = {"metrics": {"trialId": trial, "trialRunId": run, "stepsCompleted": steps,
                        "metrics": {"avgMetrics": values}}, "group": group}  # fmt: skip
    return world.api.post(f"/api/v1/trials/{trial}/metrics", json=body)


def test_reported_metrics_are_streamed_and_summarised_like_seeded_ones(
    world: World, local_master: LocalMaster
) -> None:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="r")
        over_rest, seeded = seed.trial(experiment), seed.trial(experiment)
    values: list[tuple[int, dict[str, Any]]] = [
        (10, {"loss": 0.5, "acc": 1}), (20, {"loss": 0.25}), (30, {"loss": "NaN", "note": "x"}),
    ]  # fmt: skip
    for steps, metrics in values:
        response = report(world, over_rest, "training", steps, metrics)
        assert response.status_code == 200 and response.json() == {}
    with Seeder(local_master.database) as seed:
        seed.metrics(seeded, "training", values)
    assert summary_of(local_master, over_rest)[:2] == summary_of(local_master, seeded)[:2]
    (batch,) = reports(world.api.get(TRAINING, params={"trialIds": over_rest, "group": "training"}))
    assert [r["metrics"]["avg_metrics"] for r in batch] == [v for _, v in values]


def test_report_validation_updates_latest_validation_only_with_the_searcher_metric(
    world: World, local_master: LocalMaster
) -> None:
    assert (
        report(world, world.small, "validation", 100, {"validation_loss": 0.3}).status_code == 200
    )
    latest = summary_of(local_master, world.small)[2]
    assert latest is not None
    assert report(world, world.small, "validation", 200, {"accuracy": 0.9}).status_code == 200
    assert summary_of(local_master, world.small)[2] == latest


def test_report_errors(world: World) -> None:
    empty = report(world, world.small, "", 1, {"loss": 1.0})
    assert empty.status_code == 400
    assert error_of(empty) == {
        "code": 3,
        "reason": "InvalidArgument",
        "error": "metric group cannot be empty",
    }
    assert (
        error_of(report(world, world.small, "a.b", 1, {}))["error"]
        == "metric group cannot contain '.'"
    )
    unknown = report(world, 999, "training", 1, {"loss": 1.0})
    assert unknown.status_code == 404 and error_of(unknown)["error"] == "trial '999' not found"
    run = report(world, world.small, "training", 50, {"loss": 1.0}, run=3)
    assert run.status_code == 500
    assert error_of(run)["error"] == (
        "failed to exec transaction (add trial metrics training): invalid run id, 3 (reported)"
        " != 0 (expected): invalid arguments"
    )
    epoch = report(world, world.small, "training", 50, {"epoch": "one"})
    assert error_of(epoch) == {
        "code": 13,
        "reason": "Internal",
        "error": "cannot add metric with non numeric 'epoch' value got one",
    }
    conflict = report(world, world.small, "training", 10, {"loss": 2.0})  # step 10 holds loss 10.0
    assert error_of(conflict)["error"].endswith(
        "overwriting existing metric keys is not supported, conflicting key: loss"
    )


def test_reports_at_an_existing_step_are_merged(world: World) -> None:
    assert report(world, world.small, "training", 10, {"accuracy": 0.5}).status_code == 200
    (batch,) = reports(
        world.api.get(TRAINING, params={"trialIds": world.small, "group": "training"})
    )
    assert len(batch) == 10
    assert batch[9]["metrics"]["avg_metrics"] == {"accuracy": 0.5, "loss": 10.0}


def test_training_and_validation_report_routes(world: World) -> None:
    session = official_session(world)
    bindings.post_ReportTrialValidationMetrics(
        session,
        body=bindings.v1TrialMetrics(
            trialId=world.small, trialRunId=0, stepsCompleted=500,
            metrics=bindings.v1Metrics(avgMetrics={"validation_loss": 0.125}),
        ),
        validationMetrics_trialId=world.small,
    )  # fmt: skip
    bindings.post_ReportTrialMetrics(
        session,
        body=bindings.v1ReportTrialMetricsRequest(
            group="inference",
            metrics=bindings.v1TrialMetrics(
                trialId=world.small, trialRunId=0, stepsCompleted=7,
                metrics=bindings.v1Metrics(avgMetrics={"latency": 3.0}, batchMetrics=[{"latency": 3.0}]),
            ),
        ),
        metrics_trialId=world.small,
    )  # fmt: skip
    (validation,) = reports(
        world.api.get("/api/v1/trials/metrics/validation_metrics", params={"trialIds": world.small})
    )
    assert validation[0]["metrics"] == {"validation_metrics": {"validation_loss": 0.125}}
    (inference,) = reports(
        world.api.get(TRAINING, params={"trialIds": world.small, "group": "inference"})
    )
    assert inference[0]["metrics"] == {
        "avg_metrics": {"latency": 3.0},
        "batch_metrics": [{"latency": 3.0}],
    }
