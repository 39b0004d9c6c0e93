"""Unmanaged trials on detorm.local, over HTTP: the routes ``core_v2`` drives, with the master's
validation and answers (``api_experiment.go`` CreateTrial/PutTrial/PatchTrial,
``trials/api_trials.go`` StartTrial, ``api_runs.go`` RunPrepareForReporting, ``api_trials.go``
ReportCheckpoint, ``core.go`` postTaskLogs)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import yaml

from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of

CONFIG = {
    "name": "unmanaged",
    "searcher": {"name": "single", "metric": "validation_loss"},
    "checkpoint_storage": {"type": "shared_fs", "host_path": "/tmp", "storage_path": "um"},
}


def _experiment(api: httpx.Client, *, unmanaged: bool = True) -> int:
    config: dict[str, Any] = dict(CONFIG)
    if not unmanaged:
        config["entrypoint"] = "model_def:Trial"
        config["searcher"] = {"name": "single", "metric": "validation_loss", "max_length": 10}
    response = api.post(
        "/api/v1/experiments", json={"config": yaml.safe_dump(config), "unmanaged": unmanaged}
    )
    assert response.status_code == 200, response.text
    experiment_id: int = response.json()["experiment"]["id"]
    return experiment_id


def _trial(api: httpx.Client, experiment: int, **hparams: Any) -> dict[str, Any]:
    response = api.post(
        "/api/v1/trials",
        json={"experimentId": experiment, "hparams": hparams, "unmanaged": True},
    )
    assert response.status_code == 200, response.text
    trial: dict[str, Any] = response.json()["trial"]
    return trial


def _experiment_state(api: httpx.Client, experiment: int) -> dict[str, Any]:
    view: dict[str, Any] = api.get(f"/api/v1/experiments/{experiment}").json()["experiment"]
    return view


# --- CreateTrial, PutTrial --------------------------------------------------------------------
def test_create_trial_makes_a_paused_trial_of_its_own_task(api: httpx.Client) -> None:
    experiment = _experiment(api)
    trial = _trial(api, experiment, lr=0.5)
    assert trial["state"] == "STATE_PAUSED" and trial["hparams"] == {"lr": 0.5}
    prefix, _, suffix = trial["taskId"].partition(".")
    assert prefix == str(experiment) and uuid.UUID(suffix)
    assert trial["experimentId"] == experiment and trial["totalBatchesProcessed"] == 0
    # a second trial is another run of another task
    other = _trial(api, experiment)
    assert other["id"] != trial["id"] and other["taskId"] != trial["taskId"]
    assert _experiment_state(api, experiment)["state"] == "STATE_PAUSED"


def test_create_trial_errors(api: httpx.Client) -> None:
    managed = _experiment(api, unmanaged=False)
    unmanaged = _experiment(api)
    cases = [
        ({"experimentId": unmanaged}, 500, "only unmanaged trials are supported"),
        ({"experimentId": 999, "unmanaged": True}, 404, "experiment '999' not found"),
        (
            {"experimentId": managed, "unmanaged": True}, 500,
            "trials can only be created on unmanaged experiments",
        ),
    ]  # fmt: skip
    for body, status, message in cases:
        response = api.post("/api/v1/trials", json=body)
        assert response.status_code == status, body
        assert error_of(response)["error"] == message


def test_put_trial_upserts_by_external_id(api: httpx.Client) -> None:
    experiment = _experiment(api)

    def put(external: str, **hparams: Any) -> dict[str, Any]:
        create = {"experimentId": experiment, "hparams": hparams, "unmanaged": True}
        response = api.put(
            "/api/v1/trials", json={"createTrialRequest": create, "externalTrialId": external}
        )
        assert response.status_code == 200, response.text
        trial: dict[str, Any] = response.json()["trial"]
        return trial

    first = put("run-a", lr=1)
    again = put("run-a", lr=2)
    other = put("run-b")
    assert first["taskId"] == f"{experiment}.run-a"
    assert again["id"] == first["id"] and again["hparams"] == {"lr": 2}
    assert other["id"] != first["id"]
    response = api.put(
        "/api/v1/trials",
        json={"createTrialRequest": {"experimentId": experiment}, "externalTrialId": "x"},
    )
    assert error_of(response)["error"] == "only unmanaged trials are supported"


# --- StartTrial, PatchTrial, the experiment's state --------------------------------------------
def test_a_trials_life(api: httpx.Client) -> None:
    experiment = _experiment(api)
    trial = _trial(api, experiment)["id"]
    started = api.post(f"/api/v1/trials/{trial}/start", json={"trialId": trial, "resume": True})
    assert started.json() == {"trialRunId": 1, "stepsCompleted": 0}
    assert _experiment_state(api, experiment)["state"] == "STATE_RUNNING"
    again = api.post(f"/api/v1/trials/{trial}/start", json={"trialId": trial})
    assert again.status_code == 500
    assert error_of(again)["error"] == "failed to start trial: trial has already been started"
    # the heartbeat changes nothing visible; the trial's own state does
    beat = api.patch(f"/api/v1/trials/{trial}", json={"trialId": trial})
    assert beat.status_code == 200 and beat.json()["trial"]["state"] == "STATE_RUNNING"
    done = api.patch(f"/api/v1/trials/{trial}", json={"trialId": trial, "state": "STATE_COMPLETED"})
    assert done.json()["trial"]["state"] == "STATE_COMPLETED"
    assert done.json()["trial"]["endTime"]
    view = _experiment_state(api, experiment)
    assert view["state"] == "STATE_COMPLETED" and view["progress"] == 1 and view["endTime"]


def test_the_experiment_takes_its_most_progressed_trials_state(api: httpx.Client) -> None:
    experiment = _experiment(api)
    first, second = _trial(api, experiment)["id"], _trial(api, experiment)["id"]
    api.patch(f"/api/v1/trials/{first}", json={"trialId": first, "state": "STATE_ERROR"})
    assert _experiment_state(api, experiment)["state"] == "STATE_ERROR"
    api.patch(f"/api/v1/trials/{second}", json={"trialId": second, "state": "STATE_RUNNING"})
    assert _experiment_state(api, experiment)["state"] == "STATE_RUNNING"


def test_start_and_patch_need_an_unmanaged_trial(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    with Seeder(local_master.database) as seed:
        managed = seed.trial(seed.experiment(name="managed"))
    response = api.post(f"/api/v1/trials/{managed}/start", json={})
    assert error_of(response)["error"] == "only unmanaged trials are supported"
    response = api.patch(f"/api/v1/trials/{managed}", json={})
    assert error_of(response)["error"] == "only unmanaged trials are supported"
    missing = api.post("/api/v1/trials/999/start", json={})
    assert missing.status_code == 500
    assert error_of(missing)["error"] == "failed to find experiment by trial id: not found"
    assert error_of(api.patch("/api/v1/trials/999", json={}))["error"] == "not found"


def test_resuming_returns_the_latest_checkpoint_and_a_new_run(api: httpx.Client) -> None:
    experiment = _experiment(api)
    trial = _trial(api, experiment)
    api.post(f"/api/v1/trials/{trial['id']}/start", json={})
    for steps in (5, 10):
        report = _checkpoint(api, trial["taskId"], steps)
        assert report.status_code == 200, report.text
    resumed = api.post(f"/api/v1/trials/{trial['id']}/start", json={"resume": True}).json()
    assert resumed["trialRunId"] == 2 and resumed["stepsCompleted"] == 10
    assert resumed["latestCheckpoint"] == str(uuid.uuid5(uuid.NAMESPACE_OID, "10"))
    # reports of the first run are now refused
    stale = api.post(
        f"/api/v1/trials/{trial['id']}/metrics",
        json={"group": "training", "metrics": {"trialId": trial["id"], "trialRunId": 1,
              "stepsCompleted": 11, "metrics": {"avgMetrics": {"loss": 1}}}},
    )  # fmt: skip
    assert stale.status_code == 500


# --- RunPrepareForReporting ---------------------------------------------------------------------
def test_run_prepare_for_reporting_gives_one_id_per_storage(api: httpx.Client) -> None:
    trial = _trial(api, _experiment(api))["id"]
    storage = {"type": "shared_fs", "host_path": "/tmp", "storage_path": "a"}

    def prepare(body: dict[str, Any]) -> httpx.Response:
        return api.post("/api/v1/runs/start", json={"runId": trial, **body})

    first = prepare({"checkpointStorage": storage}).json()
    assert prepare({"checkpointStorage": storage}).json() == first
    other = prepare({"checkpointStorage": {**storage, "storage_path": "b"}}).json()
    assert first["storageId"] != other["storageId"]
    assert prepare({}).json() == {}
    assert prepare({"runId": 999}).status_code == 404


# --- ReportCheckpoint ---------------------------------------------------------------------------
def _checkpoint(api: httpx.Client, task_id: str, steps: int, **changes: Any) -> httpx.Response:
    body = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, str(steps))), "taskId": task_id,
        "resources": {"model.txt": "7"}, "metadata": {"steps_completed": steps},
        "state": "STATE_COMPLETED", "training": {}, **changes,
    }  # fmt: skip
    return api.post("/api/v1/checkpoints", json=body)


def test_report_checkpoint(api: httpx.Client) -> None:
    trial = _trial(api, _experiment(api))
    assert _checkpoint(api, trial["taskId"], 3).json() == {}
    listed = api.get(f"/api/v1/trials/{trial['id']}/checkpoints").json()["checkpoints"]
    assert [(c["resources"], c["metadata"]["steps_completed"], c["state"]) for c in listed] == [
        ({"model.txt": "7"}, 3, "STATE_COMPLETED")
    ]
    assert api.get(f"/api/v1/trials/{trial['id']}").json()["trial"]["checkpointCount"] == 1


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"taskId": "nope"}, 404, "task 'nope' not found"),
        ({"state": "STATE_DELETED"}, 400, "invalid state for reported checkpoint: STATE_DELETED"),
        ({"uuid": "abc"}, 400, "converting checkpoint: invalid UUID length: 3"),
    ],
)
def test_report_checkpoint_errors(
    api: httpx.Client, changes: dict[str, Any], status: int, message: str
) -> None:
    trial = _trial(api, _experiment(api))
    response = _checkpoint(api, trial["taskId"], 1, **changes)
    assert response.status_code == status
    assert error_of(response)["error"] == message


def test_a_checkpoint_is_reported_once(api: httpx.Client) -> None:
    trial = _trial(api, _experiment(api))
    assert _checkpoint(api, trial["taskId"], 1).status_code == 200
    assert _checkpoint(api, trial["taskId"], 1).status_code == 500


# --- POST /task-logs ----------------------------------------------------------------------------
def test_task_logs_of_an_unmanaged_trial_are_its_trial_logs(
    local_master: LocalMaster, api: httpx.Client
) -> None:
    trial = _trial(api, _experiment(api))
    lines = [
        {"task_id": trial["taskId"], "timestamp": "2025-01-01T00:00:00+00:00", "log": "hi\n",
         "rank": "0"},
        {"task_id": trial["taskId"], "timestamp": "2025-01-01T00:00:01+00:00", "log": "bye\n"},
    ]  # fmt: skip
    response = httpx.post(f"{local_master.url}/task-logs", json=lines)  # no credentials needed
    assert response.status_code == 200 and response.content == b'""\n'
    logs = api.get(f"/api/v1/trials/{trial['id']}/logs").text.splitlines()
    assert [httpx.Response(200, content=line).json()["result"]["log"] for line in logs] == [
        "hi\n",
        "bye\n",
    ]
    bad = httpx.post(f"{local_master.url}/task-logs", json={"task_id": "x"})
    assert bad.status_code == 500
    assert bad.json() == {
        "message": "decoding task logs: json: cannot unmarshal object into Go value of type"
        " []*model.TaskLog"
    }


# --- train.set_status, set_metadata -------------------------------------------------------------
def test_runner_state_and_run_metadata(api: httpx.Client) -> None:
    trial = _trial(api, _experiment(api))["id"]
    status = api.post(f"/api/v1/trials/{trial}/runner/metadata", json={"state": "warming up"})
    assert status.json() == {}
    assert api.get(f"/api/v1/trials/{trial}").json()["trial"]["runnerState"] == "warming up"
    assert api.get(f"/api/v1/runs/{trial}/metadata").json() == {"metadata": {}}
    metadata = {"data": {"rows": 10, "tags": ["a", "b"]}, "note": "first"}
    posted = api.post(f"/api/v1/runs/{trial}/metadata", json={"runId": trial, "metadata": metadata})
    assert posted.json() == {"metadata": metadata}
    replaced = {"note": "second"}
    api.post(f"/api/v1/runs/{trial}/metadata", json={"runId": trial, "metadata": replaced})
    assert api.get(f"/api/v1/runs/{trial}/metadata").json() == {"metadata": replaced}
    for missing in (
        api.get("/api/v1/runs/999/metadata"),
        api.post("/api/v1/runs/999/metadata", json={"metadata": {}}),
        api.post("/api/v1/trials/999/runner/metadata", json={"state": "x"}),
    ):
        assert missing.status_code == 404


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"a.b": 1}, "metadata keys can not contain the following character(s):  $ . [ ]"),
        ({"k" * 51: 1}, "metadata key exceeds maximum length of 50 characters"),
        ({"a": list(range(101))}, "metadata array exceeds maximum length of 101/100 elements"),
        ({"a": "x" * 5001}, "metadata value exceeds maximum length of 5000 characters"),
        ({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": 1}}}}}}}}}}},
         "metadata exceeds maximum nesting depth of 10"),
        ({f"k{i}": i for i in range(1001)}, "request exceeds run metadata key count limit ofs 1000"),
    ],
)  # fmt: skip
def test_run_metadata_limits(api: httpx.Client, metadata: dict[str, Any], message: str) -> None:
    trial = _trial(api, _experiment(api))["id"]
    response = api.post(f"/api/v1/runs/{trial}/metadata", json={"metadata": metadata})
    assert response.status_code == 400
    assert error_of(response)["error"] == f"error flattening metadata: {message}"


def test_get_trial_by_external_id(api: httpx.Client, local_master: LocalMaster) -> None:
    experiment = _experiment(api)
    create = {"experimentId": experiment, "unmanaged": True}
    put = api.put("/api/v1/trials", json={"createTrialRequest": create, "externalTrialId": "t-1"})
    trial = put.json()["trial"]
    path = "/api/v1/trials/by-external-id/exp-1/t-1"
    # the experiment has no external id yet (CreateExperiment, not PutExperiment)
    missing = api.get(path)
    assert missing.status_code == 500 and error_of(missing)["error"] == "not found"
    with local_master.database.transaction(write=True) as db:
        db.connection().exec_driver_sql(
            "UPDATE experiments SET external_experiment_id = 'exp-1' WHERE id = ?", (experiment,)
        )
    assert api.get(path).json() == {
        "trial": api.get(f"/api/v1/trials/{trial['id']}").json()["trial"]
    }


def test_put_trial_on_a_managed_experiment(api: httpx.Client) -> None:
    managed = _experiment(api, unmanaged=False)
    create = {"experimentId": managed, "unmanaged": True}
    response = api.put(
        "/api/v1/trials", json={"createTrialRequest": create, "externalTrialId": "x"}
    )
    assert response.status_code == 500
    assert error_of(response)["error"] == (
        "failed to run create trial tx: failed to create trial: trials can only be created on"
        " unmanaged experiments"
    )
