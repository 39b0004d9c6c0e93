"""Checkpoints on detorm.local, as ``api_checkpoint.go``, the list handlers and
``checkpoints_view`` behave."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from determined.common.api import bindings

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._routes.checkpoints import go_uuid, pg_uuid
from tests.conftest import error_of


@dataclass
class World:
    api: httpx.Client
    master: LocalMaster
    experiment: int  # smaller is better, searcher metric validation_loss
    first: int  # its first trial
    second: int  # its second trial
    c: dict[str, str]  # checkpoints by name
    larger: int  # an experiment where larger is better (metric accuracy)


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    c: dict[str, str] = {}
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="e", hyperparameters={"lr": 0.1})
        first = seed.trial(experiment, hparams={"lr": 0.1})
        second = seed.trial(experiment, hparams={"lr": 0.2})
        seed.metrics(
            first, "training", [(100, {"loss": 1.0}), (200, {"loss": 0.8})], batch_metrics=True
        )
        seed.metrics(
            first, "validation", [(100, {"validation_loss": 0.5}), (200, {"validation_loss": 0.3})]
        )
        seed.metrics(second, "validation", [(100, {"validation_loss": 0.4})])
        c["a100"] = seed.checkpoint(first, total_batches=100)
        c["b100"] = seed.checkpoint(second, total_batches=100)
        c["a200"] = seed.checkpoint(first, total_batches=200)
        c["a300"] = seed.checkpoint(first, total_batches=300)  # no report at 300
        c["b150"] = seed.checkpoint(second, total_batches=150, state="ERROR")
        larger = seed.experiment(name="l", metric="accuracy", smaller_is_better=False)
        trial = seed.trial(larger)
        seed.metrics(trial, "validation", [(1, {"accuracy": 0.7}), (2, {"accuracy": 0.9})])
        c["l1"] = seed.checkpoint(trial, total_batches=1)
        c["l2"] = seed.checkpoint(trial, total_batches=2)
        c["l3"] = seed.checkpoint(trial, total_batches=3)
        registered = seed.model("m")
        seed.model_version(registered, c["l1"])
    yield World(api, local_master, experiment, first, second, c, larger)


def uuids(world: World, response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    names = {v: k for k, v in world.c.items()}
    return [names[c["uuid"]] for c in response.json()["checkpoints"]]


def experiment_list(world: World, experiment: int | None = None, **params: Any) -> list[str]:
    path = f"/api/v1/experiments/{experiment or world.experiment}/checkpoints"
    return uuids(world, world.api.get(path, params=params))


def trial_list(world: World, trial: int, **params: Any) -> list[str]:
    return uuids(world, world.api.get(f"/api/v1/trials/{trial}/checkpoints", params=params))


# --- the view ---------------------------------------------------------------------------------------


def test_get_checkpoint_joins_the_reports_at_its_step(world: World) -> None:
    response = world.api.get(f"/api/v1/checkpoints/{world.c['a200']}")
    assert response.status_code == 200, response.text
    checkpoint = response.json()["checkpoint"]
    assert checkpoint["state"] == "STATE_COMPLETED" and checkpoint["uuid"] == world.c["a200"]
    assert checkpoint["resources"] == {
        "metadata.json": "120",
        "state_dict.pth": "1048776",
    }  # int64 strings
    assert checkpoint["metadata"]["steps_completed"] == 200
    training = checkpoint["training"]
    assert training["trialId"] == world.first and training["experimentId"] == world.experiment
    assert training["hparams"] == {"lr": 0.1} and training["experimentConfig"]["name"] == "e"
    assert training["trainingMetrics"] == {
        "avgMetrics": {"loss": 0.8},
        "batchMetrics": [{"loss": 0.8}],
    }
    assert training["validationMetrics"] == {
        "avgMetrics": {"validation_loss": 0.3},
        "batchMetrics": [],
    }
    assert training["searcherMetric"] == 0.3


def test_a_checkpoint_without_reports_has_empty_metrics(world: World) -> None:
    training = world.api.get(f"/api/v1/checkpoints/{world.c['a300']}").json()["checkpoint"][
        "training"
    ]
    assert training["trainingMetrics"] == {"avgMetrics": None, "batchMetrics": []}
    assert training["validationMetrics"] == {"avgMetrics": None, "batchMetrics": []}
    assert "searcherMetric" not in training  # an unset optional double


def test_get_checkpoint_errors(world: World) -> None:
    short = world.api.get("/api/v1/checkpoints/abc")
    assert short.status_code == 500 and error_of(short)["error"] == "invalid UUID length: 3"
    unknown = "7f1b1f0e-2a7c-4a55-9d2a-7a7f0b3c1d11"
    missing = world.api.get(f"/api/v1/checkpoints/{unknown}")
    assert missing.status_code == 404
    assert error_of(missing) == {
        "code": 5,
        "reason": "NotFound",
        "error": f"checkpoint '{unknown}' not found",
    }
    # google/uuid also reads 32 hex digits
    assert (
        world.api.get(f"/api/v1/checkpoints/{world.c['a100'].replace('-', '').upper()}").status_code
        == 200
    )


def test_uuid_parsers() -> None:
    assert (
        go_uuid("{" + "A" * 8 + "-aaaa-aaaa-aaaa-" + "a" * 12 + "}")
        == "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
    )
    with pytest.raises(ValueError, match="invalid UUID format"):
        go_uuid("g" * 32)
    assert pg_uuid("aaaa-aaaaaaaa-aaaa-aaaa-aaaaaaaaaaaa") == "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
    assert pg_uuid("abc") is None


def test_post_checkpoint_metadata(world: World) -> None:
    path = f"/api/v1/checkpoints/{world.c['a100']}/metadata"
    response = world.api.post(
        path, json={"checkpoint": {"metadata": {"steps_completed": 200, "note": "x"}}}
    )
    assert response.status_code == 200, response.text
    answered = response.json()["checkpoint"]
    assert answered["metadata"] == {"steps_completed": 200, "note": "x"}
    # the answer was read before the update: still joined at step 100
    assert answered["training"]["searcherMetric"] == 0.5
    assert (
        world.api.get(f"/api/v1/checkpoints/{world.c['a100']}").json()["checkpoint"]["training"][
            "searcherMetric"
        ]
        == 0.3
    )
    cleared = world.api.post(path, json={"checkpoint": {}}).json()["checkpoint"]
    assert cleared["metadata"] is None
    assert (
        world.api.get(f"/api/v1/checkpoints/{world.c['a100']}").json()["checkpoint"]["metadata"]
        == {}
    )


# --- delete and patch -------------------------------------------------------------------------------


def sizes(world: World, trial: int) -> tuple[int, int, int, int]:
    with world.master.database.transaction(write=False) as db:
        row = db.get(t.TrialRow, trial)
        exp = db.get(t.ExperimentRow, world.experiment)
        assert row is not None and exp is not None
        return row.checkpoint_count, row.checkpoint_size, exp.checkpoint_count, exp.checkpoint_size


def test_delete_checkpoints_marks_them_deleted_and_updates_sizes(world: World) -> None:
    count, size, exp_count, exp_size = sizes(world, world.first)
    response = world.api.request(
        "DELETE", "/api/v1/checkpoints", json={"checkpointUuids": [world.c["a100"]]}
    )
    assert response.status_code == 200 and response.json() == {}
    assert (
        world.api.get(f"/api/v1/checkpoints/{world.c['a100']}").json()["checkpoint"]["state"]
        == "STATE_DELETED"
    )
    after = sizes(world, world.first)
    assert after[0] == count - 1 and after[2] == exp_count - 1
    assert after[1] == size - 1_048_796 and after[3] == exp_size - 1_048_796  # 120 + 1 MiB + 100


def test_delete_checkpoints_refusals(world: World) -> None:
    def delete(*ids: str) -> httpx.Response:
        return world.api.request(
            "DELETE", "/api/v1/checkpoints", json={"checkpointUuids": list(ids)}
        )

    bad = delete("nope")
    assert bad.status_code == 400
    assert error_of(bad)["error"] == "converting checkpoint: string nope is not a valid uuid"
    unknown = ["ffffffff-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000001"]
    missing = delete(world.c["a100"], *unknown)
    assert missing.status_code == 404
    assert error_of(missing)["error"] == f"checkpoints '{unknown[1]}, {unknown[0]}' not found"
    registered = delete(world.c["l1"], world.c["l2"])
    assert registered.status_code == 400
    assert error_of(registered)["error"] == (
        "this subset of checkpoints provided are in the model registry and cannot be deleted: "
        f"{world.c['l1']}, registered to m (model #1), version 1."
    )
    # nothing was deleted by the refused requests
    assert (
        world.api.get(f"/api/v1/checkpoints/{world.c['l2']}").json()["checkpoint"]["state"]
        == "STATE_COMPLETED"
    )


def test_patch_checkpoints(world: World) -> None:
    body = {
        "checkpoints": [
            {"uuid": world.c["a100"], "resources": {"resources": {"metadata.json": "120"}}},
            {"uuid": world.c["a200"], "resources": {"resources": {}}},
            {"uuid": world.c["a300"]},
            {
                "uuid": world.c["b100"],
                "resources": {"resources": {"metadata.json": 120, "state_dict.pth": 1048676}},
            },
        ]
    }
    response = world.api.patch("/api/v1/checkpoints", json=body)
    assert response.status_code == 200 and response.json() == {}

    def state(name: str) -> tuple[str, dict[str, str]]:
        checkpoint = world.api.get(f"/api/v1/checkpoints/{world.c[name]}").json()["checkpoint"]
        return checkpoint["state"], checkpoint["resources"]

    assert state("a100") == ("STATE_PARTIALLY_DELETED", {"metadata.json": "120"})
    assert state("a200")[0] == "STATE_DELETED"
    assert state("a300")[0] == "STATE_COMPLETED"
    assert state("b100")[0] == "STATE_COMPLETED"  # the same files
    assert sizes(world, world.first)[:2] == (2, 120 + 120 + 1_048_876)  # a100 shrunk, a300 kept
    refused = world.api.patch(
        "/api/v1/checkpoints", json={"checkpoints": [{"uuid": world.c["l1"]}]}
    )
    assert refused.status_code == 400 and "cannot be patched" in error_of(refused)["error"]


# --- lists ------------------------------------------------------------------------------------------


def test_default_order_is_trial_then_report_time(world: World) -> None:
    assert experiment_list(world) == ["a100", "a200", "a300", "b100", "b150"]
    assert experiment_list(world, orderBy="ORDER_BY_DESC") == [
        "b150",
        "b100",
        "a300",
        "a200",
        "a100",
    ]
    assert trial_list(world, world.first) == ["a100", "a200", "a300"]


def test_searcher_metric_defaults_to_better_first_with_missing_last(world: World) -> None:
    assert experiment_list(world, sortByAttr="SORT_BY_SEARCHER_METRIC") == [
        "a200",
        "b100",
        "a100",
        "b150",
        "a300",
    ]
    descending = experiment_list(
        world, sortByAttr="SORT_BY_SEARCHER_METRIC", orderBy="ORDER_BY_DESC"
    )
    assert descending == ["a100", "b100", "a200", "b150", "a300"]
    assert experiment_list(world, world.larger, sortByAttr="SORT_BY_SEARCHER_METRIC") == [
        "l2",
        "l1",
        "l3",
    ]
    # the trial list has no such default: missing values are "less"
    assert trial_list(world, world.first, sortByAttr="SORT_BY_SEARCHER_METRIC") == [
        "a300",
        "a200",
        "a100",
    ]


def test_other_sorts(world: World) -> None:
    assert experiment_list(world, sortByAttr="SORT_BY_BATCH_NUMBER", orderBy="ORDER_BY_DESC") == [
        "a300", "a200", "b150", "b100", "a100",
    ]  # fmt: skip
    assert experiment_list(world, sortByAttr="SORT_BY_STATE", orderBy="ORDER_BY_DESC")[0] == "b150"
    assert experiment_list(world, sortByAttr="SORT_BY_END_TIME") == [
        "a100",
        "b100",
        "a200",
        "a300",
        "b150",
    ]
    by_uuid = experiment_list(world, sortByAttr="SORT_BY_UUID")
    assert [world.c[n] for n in by_uuid] == sorted(world.c[n] for n in by_uuid)
    assert experiment_list(world, sortByMetric="validation_loss") == [
        "a300",
        "b150",
        "a200",
        "b100",
        "a100",
    ]


def test_states_filter_and_pagination(world: World) -> None:
    assert experiment_list(world, states="STATE_ERROR") == ["b150"]
    assert experiment_list(world, states=["STATE_ERROR", "STATE_COMPLETED"], limit=2, offset=1) == [
        "a200",
        "a300",
    ]
    response = world.api.get(
        f"/api/v1/experiments/{world.experiment}/checkpoints", params={"offset": -2}
    )
    assert response.json()["pagination"] == {
        "offset": -2,
        "limit": 0,
        "startIndex": 3,
        "endIndex": 5,
        "total": 5,
    }
    beyond = world.api.get(f"/api/v1/trials/{world.first}/checkpoints", params={"offset": 4})
    assert beyond.status_code == 400 and error_of(beyond)["error"] == "offset out of bounds"


def test_list_errors(world: World) -> None:
    both = world.api.get(
        f"/api/v1/experiments/{world.experiment}/checkpoints",
        params={"sortByAttr": "SORT_BY_UUID", "sortByMetric": "loss"},
    )
    assert (
        both.status_code == 400 and error_of(both)["error"] == "field already set for sort_by oneof"
    )
    bad_state = world.api.get(
        f"/api/v1/trials/{world.first}/checkpoints", params={"states": "STATE_GONE"}
    )
    assert bad_state.status_code == 400
    missing = world.api.get("/api/v1/experiments/99/checkpoints")
    assert missing.status_code == 404 and error_of(missing)["error"] == "experiment '99' not found"
    no_trial = world.api.get("/api/v1/trials/99/checkpoints")
    assert no_trial.status_code == 404 and error_of(no_trial)["error"] == "trial '99' not found"


# --- the official client can read it all ---------------------------------------------------------------


def test_official_bindings_parse_checkpoint_responses(world: World) -> None:
    one = bindings.v1GetCheckpointResponse.from_json(
        world.api.get(f"/api/v1/checkpoints/{world.c['a200']}").json()
    )
    assert (
        one.checkpoint.training.searcherMetric == 0.3
        and one.checkpoint.state == bindings.checkpointv1State.COMPLETED
    )
    assert one.checkpoint.resources == {"metadata.json": "120", "state_dict.pth": "1048776"}
    listed = world.api.get(f"/api/v1/experiments/{world.experiment}/checkpoints").json()
    assert len(bindings.v1GetExperimentCheckpointsResponse.from_json(listed).checkpoints) == 5
    trial = world.api.get(f"/api/v1/trials/{world.first}/checkpoints").json()
    assert bindings.v1GetTrialCheckpointsResponse.from_json(trial).pagination.total == 3
    posted = world.api.post(
        f"/api/v1/checkpoints/{world.c['a300']}/metadata",
        json={"checkpoint": {"metadata": {"k": "v"}}},
    ).json()
    answered = bindings.v1PostCheckpointMetadataResponse.from_json(posted).checkpoint
    assert answered is not None and answered.metadata == {"k": "v"}


def test_uuid_forms_the_database_refuses(world: World) -> None:
    urn = "urn:uuid:" + world.c["a100"]
    # As the final path segment, "urn:uuid:<x>" is read as a ":verb" by runtime.ServeMux, and no
    # route has a verb: an unknown URI (pattern.go Match, assumeColonVerb).
    last = world.api.get(f"/api/v1/checkpoints/{urn}")
    assert last.status_code == 501 and error_of(last)["error"] == "Not Implemented"
    response = world.api.post(f"/api/v1/checkpoints/{urn}/metadata", json={})
    assert response.status_code == 500
    assert error_of(response)["error"] == (
        f"error fetching checkpoint {urn} from database: error running query: get_checkpoint:"
        f' ERROR: invalid input syntax for type uuid: "{urn}" (SQLSTATE 22P02)'
    )


def test_deleting_a_checkpoint_without_a_trial_fails(world: World) -> None:
    with world.master.database.transaction(write=True) as db:
        row = db.get(t.CheckpointRow, world.c["a300"])
        assert row is not None
        row.trial_id = None
        db.add(row)
    response = world.api.request(
        "DELETE", "/api/v1/checkpoints", json={"checkpointUuids": [world.c["a300"]]}
    )
    assert response.status_code == 500 and error_of(response)["error"] == "not found"
    detached = world.api.get(f"/api/v1/checkpoints/{world.c['a300']}").json()["checkpoint"][
        "training"
    ]
    assert detached == {
        "experimentConfig": None,
        "hparams": None,
        "trainingMetrics": {"avgMetrics": None, "batchMetrics": []},
        "validationMetrics": {"avgMetrics": None, "batchMetrics": []},
    }
