"""PutExperiment on detorm.local: an unmanaged experiment created or found by its external id, as
master 0.38.1 answers it (``PutExperiment`` in ``api_experiment.go``, ``AddExperimentTx`` with
``upsert`` in ``db/postgres_experiments.go``)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import yaml

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._ntsc_config import MAX_RECV_MESSAGE_BYTES
from tests.conftest import error_of
from tests.local.test_create import refused, stored

PARSE = "failed to parse exp config: "


def unmanaged_config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "core-v2", "searcher": {"name": "single", "metric": "loss"}}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def put(
    api: httpx.Client, external_id: str, cfg: dict[str, Any] | str, **fields: Any
) -> httpx.Response:
    text = cfg if isinstance(cfg, str) else yaml.safe_dump(cfg)
    body = {"config": text, "unmanaged": True, **fields}
    return api.put(f"/api/v1/experiments/by-external-id/{external_id}", json=body)


def put_ok(api: httpx.Client, external_id: str, cfg: dict[str, Any], **fields: Any) -> Any:
    response = put(api, external_id, cfg, **fields)
    assert response.status_code == 200, response.text
    return response.json()


def listed(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/api/v1/experiments")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["experiments"]
    return found


def test_a_new_external_id_creates_a_paused_unmanaged_experiment(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    body = put_ok(api, "run-7", unmanaged_config(description="first"))
    assert set(body) == {"experiment", "config"}  # PutExperimentResponse: no warnings
    exp = body["experiment"]
    assert exp["unmanaged"] is True and exp["state"] == "STATE_PAUSED"
    assert exp["name"] == "core-v2" and exp["description"] == "first" and exp["numTrials"] == 0
    assert body["config"] == exp["config"] and body["config"]["resources"]["resource_pool"] == ""
    # getExperimentTx does not read the external id; the experiment lists carry it
    assert "externalExperimentId" not in exp
    [row] = listed(api)
    assert row["id"] == exp["id"] and row["externalExperimentId"] == "run-7"
    assert stored(local_master, t.SimulatedExperimentRow) == []


def test_the_same_external_id_gets_the_experiment_with_the_new_config(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    first = put_ok(api, "run-7", unmanaged_config(description="first", labels=["a"]))["experiment"]
    trial = api.post(
        "/api/v1/trials", json={"experimentId": first["id"], "hparams": {}, "unmanaged": True}
    )
    assert trial.status_code == 200, trial.text
    second = put_ok(api, "run-7", unmanaged_config(name="renamed", description="second",
                                                   searcher={"name": "single", "metric": "acc"}))  # fmt: skip
    exp = second["experiment"]
    assert exp["id"] == first["id"] and exp["numTrials"] == 1
    # ON CONFLICT ... DO UPDATE sets the config only: what is read from it changes
    assert (exp["name"], exp["description"], exp["labels"]) == ("renamed", "second", [])
    assert exp["config"]["searcher"]["metric"] == "acc"
    # and everything else is kept: the original config, the start time, the state
    assert exp["originalConfig"] == first["originalConfig"]
    assert exp["startTime"] == first["startTime"] and exp["state"] == first["state"]
    [row] = [r for r in stored(local_master, t.ExperimentRow) if r.id == exp["id"]]
    assert (row.name, row.searcher_metric, row.labels) == ("renamed", "acc", [])
    other = put_ok(api, "run-8", unmanaged_config())["experiment"]
    assert other["id"] != exp["id"]
    assert sorted(e["externalExperimentId"] for e in listed(api)) == ["run-7", "run-8"]


def test_an_existing_experiment_stays_in_its_project(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    with Seeder(local_master.database) as seed:
        workspace = seed.workspace("research")
        project = seed.project("vision", workspace=workspace)
    first = put_ok(api, "x", unmanaged_config(), projectId=project)["experiment"]
    assert first["projectId"] == project
    again = put_ok(api, "x", unmanaged_config())["experiment"]
    assert again["id"] == first["id"] and again["projectId"] == project


def test_validate_only_and_activate_are_not_read(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    exp = put_ok(api, "v", unmanaged_config(), validateOnly=True, activate=True)["experiment"]
    assert exp["id"] > 0 and exp["state"] == "STATE_PAUSED"
    assert [row.external_experiment_id for row in stored(local_master, t.ExperimentRow)] == ["v"]


def test_managed_and_forked_puts_are_refused(api: httpx.Client, local_master: LocalMaster) -> None:
    config_text = yaml.safe_dump(unmanaged_config())
    url = "/api/v1/experiments/by-external-id/e"
    for body in ({"config": config_text}, {"config": config_text, "unmanaged": False}, {}):
        refused(api.put(url, json=body), 500, "only unmanaged experiments are supported")
    refused(put(api, "e", unmanaged_config(), parentId=3), 500,
            "can't fork into an unmanaged experiment")  # fmt: skip
    assert stored(local_master, t.ExperimentRow) == []


def test_parse_errors_are_wrapped(api: httpx.Client, local_master: LocalMaster) -> None:
    # a plain error keeps the 500 and gains the prefix
    refused(put(api, "e", unmanaged_config(workspace="research")), 500,
            PARSE + "workspace and project must both be included in config if one is provided")  # fmt: skip
    response = put(api, "e", "name: [unclosed\n")
    assert response.status_code == 500
    assert error_of(response)["error"].startswith(
        PARSE + "invalid experiment configuration: unable to convert yaml to json: "
    )
    # a status keeps its code, and its text is the status printed
    refused(put(api, "e", unmanaged_config(), projectId=777), 404,
            PARSE + "rpc error: code = NotFound desc = project '777' not found")  # fmt: skip
    refused(put(api, "e", unmanaged_config(), template="missing"), 404,
            PARSE + "rpc error: code = NotFound desc = template 'missing' not found")  # fmt: skip
    assert stored(local_master, t.ExperimentRow) == []


def test_a_request_over_the_grpc_limit_is_refused(api: httpx.Client) -> None:
    big = base64.b64encode(b"\0" * (MAX_RECV_MESSAGE_BYTES - 100)).decode()
    response = put(
        api, "e" * 200, unmanaged_config(), modelDefinition=[{"path": "b", "content": big}]
    )
    assert response.status_code == 429
    message = error_of(response)["error"]
    assert message.startswith("grpc: received message larger than max (")
    assert message.endswith(f" vs. {MAX_RECV_MESSAGE_BYTES})")


def test_its_trials_are_found_by_both_external_ids(api: httpx.Client) -> None:
    experiment = put_ok(api, "run-7", unmanaged_config())["experiment"]["id"]
    create = {"experimentId": experiment, "unmanaged": True}
    put_trial = api.put(
        "/api/v1/trials", json={"createTrialRequest": create, "externalTrialId": "t"}
    )
    assert put_trial.status_code == 200, put_trial.text
    found = api.get("/api/v1/trials/by-external-id/run-7/t")
    assert found.status_code == 200, found.text
    assert found.json()["trial"]["id"] == put_trial.json()["trial"]["id"]
    assert api.get("/api/v1/trials/by-external-id/run-8/t").status_code == 500
