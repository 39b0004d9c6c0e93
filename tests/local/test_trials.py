"""Trials on detorm.local: GetExperimentTrials, GetTrial and KillTrial (``api_trials.go`` and
``proto_get_trials_plus.sql``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from determined.common.api import bindings

from detorm._wire import TrialResponse, TrialsResponse
from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of, login


@dataclass
class World:
    api: httpx.Client
    smaller: int  # an experiment where a smaller validation_loss is better
    larger: int  # an experiment where a larger accuracy is better
    empty: int  # an experiment without trials
    trials: dict[str, int]


def _seed(seed: Seeder) -> tuple[int, int, int, dict[str, int]]:
    smaller = seed.experiment(name="smaller", searcher="random", state="ACTIVE")
    larger = seed.experiment(
        name="larger", searcher="random", metric="accuracy", smaller_is_better=False
    )
    empty = seed.experiment(name="empty")
    trials = {
        "t1": seed.trial(smaller, state="COMPLETED", restarts=10),
        "t2": seed.trial(smaller, state="ACTIVE"),
        "t3": seed.trial(smaller, state="ERROR"),
        "t4": seed.trial(smaller, state="COMPLETED"),
        "l1": seed.trial(larger),
        "l2": seed.trial(larger),
    }
    seed.metrics(
        trials["t1"], "validation", [(10, {"validation_loss": 0.5}), (20, {"validation_loss": 0.7})]
    )
    seed.metrics(trials["t1"], "training", [(10, {"loss": 1.5})])
    seed.checkpoint(trials["t1"], total_batches=10)
    seed.checkpoint(trials["t1"], total_batches=20)
    seed.metrics(trials["t2"], "validation", [(10, {"validation_loss": 0.3})])
    seed.metrics(trials["t4"], "validation", [(10, {"accuracy": 0.9})])  # no searcher metric
    seed.metrics(trials["l1"], "validation", [(10, {"accuracy": 0.6}), (20, {"accuracy": 0.8})])
    seed.metrics(trials["l2"], "validation", [(10, {"accuracy": 0.7})])
    return smaller, larger, empty, trials


@pytest.fixture(scope="module")
def frozen() -> Iterator[World]:
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            smaller, larger, empty, trials = _seed(seed)
        client = login(master.url)
        try:
            yield World(client, smaller, larger, empty, trials)
        finally:
            client.close()


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        smaller, larger, empty, trials = _seed(seed)
    yield World(api, smaller, larger, empty, trials)


def trial_ids(world: World, experiment: int, **params: Any) -> list[int]:
    response = world.api.get(f"/api/v1/experiments/{experiment}/trials", params=params)
    assert response.status_code == 200, response.text
    return [trial["id"] for trial in response.json()["trials"]]


def names(world: World, *keys: str) -> list[int]:
    return [world.trials[key] for key in keys]


# --- the trial view ------------------------------------------------------------------------------
def test_trial_view(frozen: World) -> None:
    body = frozen.api.get(f"/api/v1/trials/{frozen.trials['t1']}").json()
    assert bindings.v1GetTrialResponse.from_json(body).trial.id == frozen.trials["t1"]
    trial = TrialResponse.model_validate(body).trial
    assert trial is not None and trial.best_validation is not None
    view = body["trial"]
    assert view["bestValidation"]["totalBatches"] == 10  # the smaller loss
    assert view["bestValidation"]["metrics"] == {
        "avgMetrics": {"validation_loss": 0.5},
        "batchMetrics": [],
    }
    assert (
        view["latestValidation"]["totalBatches"] == 20
        and view["latestValidation"]["numInputs"] == 0
    )
    checkpoint = view["bestCheckpoint"]  # taken at the best validation's step
    assert checkpoint["totalBatches"] == 10 and checkpoint["state"] == "STATE_COMPLETED"
    assert checkpoint["metadata"] is None and all(
        isinstance(size, str) for size in checkpoint["resources"].values()
    )
    assert view["restarts"] == 5  # capped at max_restarts
    assert view["searcherMetricValue"] == 0 and view["taskIds"] == [view["taskId"]]
    assert view["totalCheckpointSize"] == str(
        sum(int(s) for s in checkpoint["resources"].values()) * 2 + 10
    )
    assert view["checkpointCount"] == 2 and view["state"] == "STATE_COMPLETED"
    assert set(view["summaryMetrics"]) == {"validation_metrics", "avg_metrics"}
    assert "logRetentionDays" not in view and "metadata" not in view


def test_trial_view_without_validations(frozen: World) -> None:
    view = frozen.api.get(f"/api/v1/trials/{frozen.trials['t3']}").json()["trial"]
    assert (
        view["bestValidation"] is None
        and view["latestValidation"] is None
        and view["bestCheckpoint"] is None
    )
    other = frozen.api.get(f"/api/v1/trials/{frozen.trials['t4']}").json()["trial"]
    assert other["bestValidation"] is None  # no searcher metric in it
    assert (
        other["latestValidation"] is None
    )  # latest_validation_id moves only with the searcher metric


def test_active_trials_read_running(frozen: World) -> None:
    assert (
        frozen.api.get(f"/api/v1/trials/{frozen.trials['t2']}").json()["trial"]["state"]
        == "STATE_RUNNING"
    )


def test_get_trial_not_found(frozen: World) -> None:
    response = frozen.api.get("/api/v1/trials/999")
    assert response.status_code == 404
    assert error_of(response) == {"code": 5, "reason": "NotFound", "error": "trial '999' not found"}


# --- GetExperimentTrials -------------------------------------------------------------------------
def test_experiment_trials_response(frozen: World) -> None:
    body = frozen.api.get(f"/api/v1/experiments/{frozen.smaller}/trials").json()
    parsed = bindings.v1GetExperimentTrialsResponse.from_json(body)
    assert [t.id for t in parsed.trials] == names(frozen, "t1", "t2", "t3", "t4")
    assert TrialsResponse.model_validate(body).pagination is not None
    assert body["pagination"] == {
        "offset": 0,
        "limit": 0,
        "startIndex": 0,
        "endIndex": 4,
        "total": 4,
    }


@pytest.mark.parametrize(
    ("experiment", "params", "expected"),
    [
        ("smaller", {}, ["t1", "t2", "t3", "t4"]),
        ("smaller", {"orderBy": "ORDER_BY_DESC"}, ["t4", "t3", "t2", "t1"]),
        ("smaller", {"sortBy": "SORT_BY_BEST_VALIDATION_METRIC"}, ["t2", "t1", "t3", "t4"]),
        # DESC without NULLS LAST: trials without a metric come first
        (
            "smaller",
            {"sortBy": "SORT_BY_BEST_VALIDATION_METRIC", "orderBy": "ORDER_BY_DESC"},
            ["t4", "t3", "t1", "t2"],
        ),
        ("smaller", {"sortBy": "SORT_BY_LATEST_VALIDATION_METRIC"}, ["t2", "t1", "t3", "t4"]),
        (
            "smaller",
            {"sortBy": "SORT_BY_STATE"},
            ["t2", "t1", "t4", "t3"],
        ),  # 'STATE_ACTIVE' < 'STATE_COMPLETED' < 'STATE_ERROR'
        (
            "smaller",
            {"sortBy": "SORT_BY_RESTARTS", "orderBy": "ORDER_BY_DESC"},
            ["t1", "t4", "t3", "t2"],
        ),  # raw restarts
        ("smaller", {"sortBy": "SORT_BY_BATCHES_PROCESSED"}, ["t3", "t2", "t4", "t1"]),
        (
            "smaller",
            {"sortBy": "SORT_BY_CHECKPOINT_SIZE", "orderBy": "ORDER_BY_DESC"},
            ["t1", "t4", "t3", "t2"],
        ),
        (
            "smaller",
            {"sortBy": "SORT_BY_END_TIME"},
            ["t1", "t3", "t4", "t2"],
        ),  # the active trial has none: last
        ("smaller", {"states": "STATE_COMPLETED"}, ["t1", "t4"]),
        ("smaller", {"states": ["STATE_ERROR", "STATE_ACTIVE"]}, ["t2", "t3"]),
        # signed metric: the larger accuracy sorts first
        ("larger", {"sortBy": "SORT_BY_BEST_VALIDATION_METRIC"}, ["l1", "l2"]),
        (
            "larger",
            {"sortBy": "SORT_BY_LATEST_VALIDATION_METRIC", "orderBy": "ORDER_BY_DESC"},
            ["l2", "l1"],
        ),
    ],
)
def test_experiment_trials_sort_and_states(
    frozen: World, experiment: str, params: dict[str, Any], expected: list[str]
) -> None:
    target = frozen.smaller if experiment == "smaller" else frozen.larger
    assert trial_ids(frozen, target, **params) == names(frozen, *expected)


def test_experiment_trials_pagination(frozen: World) -> None:
    def page(**params: Any) -> tuple[list[int], dict[str, int]]:
        body = frozen.api.get(f"/api/v1/experiments/{frozen.smaller}/trials", params=params).json()
        return [trial["id"] for trial in body["trials"]], body["pagination"]

    assert page(offset=1, limit=2) == (
        names(frozen, "t2", "t3"),
        {"offset": 1, "limit": 2, "startIndex": 1, "endIndex": 3, "total": 4},
    )
    assert page(offset=-1)[0] == names(frozen, "t4")
    assert page(limit=-2) == (
        [],
        {"offset": 0, "limit": -2, "startIndex": 0, "endIndex": 0, "total": 4},
    )
    assert page(offset=10)[1] == {
        "offset": 10,
        "limit": 0,
        "startIndex": 4,
        "endIndex": 4,
        "total": 4,
    }


def test_experiment_trials_errors(frozen: World) -> None:
    missing = frozen.api.get("/api/v1/experiments/404/trials")
    assert missing.status_code == 404 and error_of(missing)["error"] == "experiment '404' not found"
    prefix = f"failed to get trial ids for experiment {frozen.smaller}: error running query: proto_get_trial_ids_for_experiment: "
    bad_state = frozen.api.get(
        f"/api/v1/experiments/{frozen.smaller}/trials", params={"states": "STATE_QUEUED"}
    )
    assert bad_state.status_code == 500
    assert (
        error_of(bad_state)["error"]
        == prefix + 'ERROR: invalid input value for enum trial_state: "QUEUED" (SQLSTATE 22P02)'
    )
    # no trial row, so the state list is never cast
    assert trial_ids(frozen, frozen.empty, states="STATE_QUEUED") == []
    retention = frozen.api.get(
        f"/api/v1/experiments/{frozen.smaller}/trials",
        params={"sortBy": "SORT_BY_LOG_RETENTION_DAYS"},
    )
    assert retention.status_code == 500
    assert (
        error_of(retention)["error"]
        == prefix + 'ERROR: column "log_retention_days" does not exist (SQLSTATE 42703)'
    )
    negative = frozen.api.get(f"/api/v1/experiments/{frozen.smaller}/trials", params={"limit": -5})
    assert negative.status_code == 500 and error_of(negative)["error"].startswith(
        prefix + "ERROR: LIMIT must not be negative"
    )
    enum = frozen.api.get(
        f"/api/v1/experiments/{frozen.smaller}/trials", params={"sortBy": "SORT_BY_NOPE"}
    )
    assert enum.status_code == 400


# --- KillTrial -----------------------------------------------------------------------------------
def test_kill_trial(world: World) -> None:
    live = world.trials["t2"]
    assert world.api.post(f"/api/v1/trials/{live}/kill").json() == {}
    trial = world.api.get(f"/api/v1/trials/{live}").json()["trial"]
    assert trial["state"] == "STATE_CANCELED" and trial["endTime"] is not None
    again = world.api.post(f"/api/v1/trials/{live}/kill")
    assert again.status_code == 500 and error_of(again)["error"] == "trial not found: not found"
    finished = world.api.post(f"/api/v1/trials/{world.trials['l1']}/kill")
    assert (
        finished.status_code == 404
        and error_of(finished)["error"] == f"experiment '{world.larger}' not found"
    )
    unknown = world.api.post("/api/v1/trials/999/kill")
    assert unknown.status_code == 404 and error_of(unknown)["error"] == "trial '999' not found"
