"""GetTrialWorkloads (``proto_get_trial_workloads.sql``): the rows ``det trial describe`` prints."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from determined.common.api import bindings

from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of, login

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class World:
    api: httpx.Client
    trial: int
    kept: str
    deleted: str


@pytest.fixture
def world(local_master: LocalMaster) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="e")
        trial = seed.trial(experiment)
        seed.metrics(
            trial, "training",
            [(b, {"loss": 1.0 / b}, T0 + timedelta(minutes=b)) for b in (100, 200, 300)],
            batch_metrics=True,
        )  # fmt: skip
        seed.metrics(
            trial, "validation",
            [(200, {"acc": 0.5}, T0 + timedelta(minutes=201)),
             (300, {"acc": 0.9}, T0 + timedelta(minutes=301))],
        )  # fmt: skip
        deleted = seed.checkpoint(
            trial, total_batches=200, state="DELETED", report_time=T0 + timedelta(minutes=202)
        )
        kept = seed.checkpoint(trial, total_batches=300, report_time=T0 + timedelta(minutes=302))
    api = login(local_master.url)
    try:
        yield World(api, trial, kept, deleted)
    finally:
        api.close()


def kinds(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (kind, container[kind]["totalBatches"])
        for container in body["workloads"]
        for kind in container
    ]


def test_every_kind_in_batch_then_time_order(world: World) -> None:
    response = world.api.get(f"/api/v1/trials/{world.trial}/workloads")
    body = response.json()
    assert kinds(body) == [
        ("training", 100), ("training", 200), ("validation", 200), ("checkpoint", 200),
        ("training", 300), ("validation", 300), ("checkpoint", 300),
    ]  # fmt: skip
    # limit 0 is sent to page_info as -1 and echoed so
    assert body["pagination"] == {
        "offset": 0, "limit": -1, "startIndex": 0, "endIndex": 7, "total": 7,
    }  # fmt: skip
    # each container holds one oneof member; metrics are avgMetrics (+ batchMetrics on request)
    first = body["workloads"][0]
    assert first == {
        "training": {
            "endTime": "2025-01-01T01:40:00Z",
            "metrics": {"avgMetrics": {"loss": 0.01}, "batchMetrics": []},
            "numInputs": 0,
            "totalBatches": 100,
        }
    }
    checkpoint = body["workloads"][3]["checkpoint"]
    assert (checkpoint["uuid"], checkpoint["state"]) == (world.deleted, "STATE_DELETED")
    assert checkpoint["resources"] == {"metadata.json": "120", "state_dict.pth": "1048776"}
    parsed = bindings.v1GetTrialWorkloadsResponse.from_json(body)
    assert len(parsed.workloads) == 7


def test_batch_metrics_filters_and_deleted_checkpoints(world: World) -> None:
    url = f"/api/v1/trials/{world.trial}/workloads"
    batches = world.api.get(url, params={"includeBatchMetrics": "true", "limit": 1}).json()
    assert batches["workloads"][0]["training"]["metrics"]["batchMetrics"] == [{"loss": 0.01}]
    validation_only = world.api.get(url, params={"filter": "FILTER_OPTION_VALIDATION"}).json()
    assert kinds(validation_only) == [("validation", 200), ("validation", 300)]
    # validations are listed under every filter: FILTER_OPTION_CHECKPOINT too
    checkpoints = world.api.get(
        url, params={"filter": "FILTER_OPTION_CHECKPOINT", "removeDeletedCheckpoints": "true"}
    ).json()
    assert kinds(checkpoints) == [("validation", 200), ("validation", 300), ("checkpoint", 300)]


def test_sort_key_order_and_pages(world: World) -> None:
    url = f"/api/v1/trials/{world.trial}/workloads"
    by_acc = world.api.get(url, params={"sortKey": "acc", "orderBy": "ORDER_BY_DESC"}).json()
    # reports without the metric and checkpoints have no sort value: NULLS LAST, then batches DESC
    assert kinds(by_acc) == [
        ("validation", 300), ("validation", 200),
        ("checkpoint", 300), ("training", 300), ("checkpoint", 200), ("training", 200),
        ("training", 100),
    ]  # fmt: skip
    page = world.api.get(url, params={"offset": "-2", "limit": "5"}).json()
    assert kinds(page) == [("validation", 300), ("checkpoint", 300)]
    assert page["pagination"] == {
        "offset": -2, "limit": 5, "startIndex": 5, "endIndex": 7, "total": 7,
    }  # fmt: skip


def test_errors(world: World) -> None:
    missing = world.api.get("/api/v1/trials/424242/workloads")
    assert missing.status_code == 404 and error_of(missing)["error"] == "trial '424242' not found"
    negative = world.api.get(f"/api/v1/trials/{world.trial}/workloads", params={"limit": "-3"})
    assert negative.status_code == 500
    assert error_of(negative)["error"] == (
        f"failed to get trial {world.trial} workloads: error running query:"
        " proto_get_trial_workloads: ERROR: LIMIT must not be negative (SQLSTATE 2201W)"
    )
    bad = world.api.get(f"/api/v1/trials/{world.trial}/workloads", params={"filter": "X"})
    assert error_of(bad)["error"] == "X is not a valid apiv1.GetTrialWorkloadsRequest_FilterOption"
