"""SearchExperiments, SearchRuns, run actions and project columns on detorm.local.

The filter-tree cases of ``TestExperimentSearchApiFilterParsing``
(``master/internal/api_experiment_intg_test.go``) are ported as a conformance table: the master's
test checks the SQL each filter becomes; here each filter runs against the seeded experiments
below and the test checks which ones the SQL selects when Postgres runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from determined.common.api import bindings

from detorm._wire import SearchExperimentsResponse, SearchRunsResponse
from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of, login

UTC = UTC


@dataclass
class World:
    api: httpx.Client
    project: int
    other: int  # a second project
    runs: dict[str, int]  # trial ids by name


def _seed(seed: Seeder) -> tuple[int, int, dict[str, int]]:
    """Five experiments (ids 1-5) whose hyperparameters, metrics, times and labels make each
    ported filter select a distinct set."""
    project = seed.project("search")
    other = seed.project("elsewhere")
    e1 = seed.experiment(
        project=project, name="alpha", description="has a tset inside", labels=["val", "x"],
        metric="validation_error", start_time=datetime(2021, 4, 14, 12, tzinfo=UTC),
        hyperparameters={
            "global_batch_size": 32, "model": "efficientdet_d0",
            "clip_grad": {"type": "categorical", "vals": ["8", "16"]},
            "global_batch_start": "2021-05-01T00:00:00Z",
        },
    )  # fmt: skip
    e2 = seed.experiment(
        project=project, name="beta", resource_pool="gpu", searcher="random", metric="validation_error",
        start_time=datetime(2021, 4, 15, tzinfo=UTC), parent_id=e1,
        hyperparameters={
            "global_batch_size": {"type": "int", "minval": 16, "maxval": 64},
            "model": {"type": "categorical", "vals": ["efficientdet_d0", "resnet"]},
            "clip_grad": {"clip": {"grad": {"type": "categorical", "vals": ["some_string"]}}},
            "global_batch_start": "2021-01-01",
        },
    )  # fmt: skip
    e3 = seed.experiment(
        project=project, name="gamma", description="other", labels=["other"], state="ACTIVE",
        progress=0.3, metric="validation_error", start_time=datetime(2021, 4, 13, tzinfo=UTC),
        hyperparameters={
            "global_batch_size": 64, "model": {"type": "const", "val": None},
            "clip_grad": {"type": "int", "minval": 4, "maxval": 10},
        },
    )  # fmt: skip
    e4 = seed.experiment(
        project=project, name="delta", description="delta desc", labels=["val"], archived=True,
        parent_id=e2, metric="validation_error", start_time=datetime(2021, 4, 16, tzinfo=UTC),
        hyperparameters={"global_batch_size": 32, "clip_grad": {"type": "categorical", "vals": [8, 16]}},
    )  # fmt: skip
    e5 = seed.experiment(
        project=project, name="epsilon", state="CANCELED", resource_pool="cpu-default",
        metric="validation_error", start_time=datetime(2021, 4, 10, tzinfo=UTC),
        hyperparameters={
            "global_batch_size": {"type": "const", "val": None}, "model": "other",
            "clip_grad": {"clip": {"grad": {"type": "const", "val": "another"}}},
        },
    )  # fmt: skip
    assert [e1, e2, e3, e4, e5] == [1, 2, 3, 4, 5]
    t1 = seed.trial(
        e1, hparams={"lr": 0.1, "opt": "adam"}, metadata={"nested": {"number_key": 1}, "team": "a"}
    )
    seed.metrics(t1, "validation", [(100, {"validation_accuracy": 0.5, "validation_error": 0.2, "loss": 0.004,
                                           "validation_string": "string"})])  # fmt: skip
    for batches in (100, 200, 300, 400):
        seed.checkpoint(t1, total_batches=batches)
    t2a = seed.trial(e2, hparams={"lr": 0.5, "opt": "sgd"}, metadata={"nested": {"number_key": 5}})
    seed.metrics(
        t2a,
        "validation",
        [(100, {"validation_accuracy": 0.9, "validation_error": 5.0, "loss": 0.5})],
    )
    t2b = seed.trial(e2, hparams={"lr": 0.9, "opt": "sgd"})
    seed.metrics(
        t2b,
        "validation",
        [(100, {"validation_accuracy": 0.95, "validation_error": 7.0, "loss": 0.1})],
    )
    t4 = seed.trial(e4, hparams={"lr": 0.2, "opt": "adam"})
    seed.metrics(
        t4,
        "validation",
        [(100, {"validation_accuracy": -5.0, "validation_error": 1.0, "loss": 0.004})],
    )
    moved = seed.experiment(project=other, name="zeta", state="COMPLETED")
    t6 = seed.trial(moved, hparams={"lr": 0.3})
    return project, other, {"t1": t1, "t2a": t2a, "t2b": t2b, "t4": t4, "t6": t6}


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    """A freshly seeded master, for tests that change data."""
    with Seeder(local_master.database) as seed:
        project, other, runs = _seed(seed)
    yield World(api, project, other, runs)


@pytest.fixture(scope="module")
def frozen() -> Iterator[World]:
    """One seeded master shared by the tests that only read."""
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            project, other, runs = _seed(seed)
        client = login(master.url)
        try:
            yield World(client, project, other, runs)
        finally:
            client.close()


def group(*children: dict[str, Any], conjunction: str = "and") -> dict[str, Any]:
    return {"children": list(children), "conjunction": conjunction, "kind": "group"}


def field(column: str, operator: str, value: Any = None, **extra: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "columnName": column,
        "kind": "field",
        "operator": operator,
        "value": value,
    }
    node.update(extra)
    return node


def root(tree: dict[str, Any], *, show_archived: bool = False) -> str:
    return json.dumps({"filterGroup": tree, "showArchived": show_archived})


def search_ids(world: World, filter_text: str, **body: Any) -> list[int]:
    """Ids of the experiments of the search project (unless ``projectId`` says otherwise)."""
    body.setdefault("projectId", world.project)
    response = world.api.post("/api/v1/experiments-search", json={"filter": filter_text, **body})
    assert response.status_code == 200, response.text
    return [row["experiment"]["id"] for row in response.json()["experiments"]]


# --- TestExperimentSearchApiFilterParsing, ported -----------------------------------------------
# (filter exactly as the master's test writes it, experiments it selects)
CONFORMANCE: list[tuple[str, list[int]]] = [
    ('{"filterGroup":{"children":[{"columnName":"id","kind":"field","operator":"=","value":1}],"conjunction":"and","kind":"group"},"showArchived":false}', [1]),
    ('{"filterGroup":{"children":[{"children":[{"columnName":"id","kind":"field","operator":"=","value":1},{"columnName":"id","kind":"field","operator":"=","value":2}],"conjunction":"and","kind":"group"},{"children":[{"columnName":"id","kind":"field","operator":"=","value":3},{"columnName":"id","kind":"field","operator":"=","value":4}],"conjunction":"and","kind":"group"},{"children":[{"columnName":"id","kind":"field","operator":"=","value":5},{"columnName":"id","kind":"field","operator":"=","value":6}],"conjunction":"and","kind":"group"}],"conjunction":"or","kind":"group"},"showArchived":false}', []),
    ('{"filterGroup":{"children":[{"columnName":"id","kind":"field","operator":"=","value":1},{"columnName":"id","kind":"field","operator":"=","value":2}],"conjunction":"and","kind":"group"},"showArchived":false}', []),
    ('{"filterGroup":{"children":[{"columnName":"id","kind":"field","operator":"=","value":1},{"columnName":"id","kind":"field","operator":"=","value":2}],"conjunction":"or","kind":"group"},"showArchived":false}', [1, 2]),
    ('{"filterGroup":{"children":[{"columnName":"id","kind":"field","operator":"=","value":1},{"columnName":"id","kind":"field","operator":"=","value":2},{"children":[{"columnName":"id","kind":"field","operator":"=","value":3},{"columnName":"id","kind":"field","operator":"=","value":4}],"conjunction":"and","kind":"group"},{"children":[{"columnName":"id","kind":"field","operator":"=","value":5},{"children":[{"columnName":"id","kind":"field","operator":"=","value":6},{"columnName":"id","kind":"field","operator":"=","value":7}],"conjunction":"and","kind":"group"}],"conjunction":"or","kind":"group"}],"conjunction":"or","kind":"group"},"showArchived":false}', [1, 2, 5]),
    ('{"filterGroup":{"children":[{"children":[],"conjunction":"and","kind":"group"},{"children":[],"conjunction":"and","kind":"group"},{"children":[],"conjunction":"and","kind":"group"}],"conjunction":"or","kind":"group"},"showArchived":false}', [1, 2, 3, 5]),
    ('{"filterGroup":{"children":[{"children":[],"conjunction":"and","kind":"group"},{"children":[],"conjunction":"and","kind":"group"},{"children":[{"columnName":"description","kind":"field","operator":"notEmpty","value":null}],"conjunction":"and","kind":"group"}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 3, 4]),
    ('{"filterGroup":{"children":[{"columnName":"numTrials","kind":"field","operator":">","value":0},{"columnName":"id","kind":"field","operator":"!=","value":0},{"columnName":"forkedFrom","kind":"field","operator":"!=","value":1}],"conjunction":"and","kind":"group"},"showArchived":true}', [4]),
    ('{"filterGroup":{"children":[{"columnName":"description","kind":"field","operator":"contains","value":"t\\\\set"}],"conjunction":"and","kind":"group"},"showArchived":false}', [1]),
    ('{"filterGroup":{"children":[{"columnName":"resourcePool","kind":"field","operator":"contains","value":"default"}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 3, 4, 5]),
    ('{"filterGroup":{"children":[{"columnName":"id","kind":"field","operator":"=","value":1}],"conjunction":"and","kind":"group"},"showArchived":true}', [1]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_DATE","location":"LOCATION_TYPE_EXPERIMENT", "columnName":"startTime","kind":"field","operator":">", "value":"2021-04-14T14:14:18.915483952Z"}],"conjunction":"and","kind":"group"},"showArchived":false}', [2]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_DATE","location":"LOCATION_TYPE_EXPERIMENT", "columnName":"endTime","kind":"field","operator":"<=", "value":"2021-04-14T14:14:18.915483952Z"}],"conjunction":"and","kind":"group"},"showArchived":false}', [1, 5]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_EXPERIMENT", "columnName":"tags","kind":"field","operator":"contains", "value":"val"}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 4]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_EXPERIMENT", "columnName":"tags","kind":"field","operator":"notContains", "value":"val"}],"conjunction":"and","kind":"group"},"showArchived":true}', [2, 3, 5]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_EXPERIMENT", "columnName":"duration","kind":"field","operator":">", "value":0}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 2, 3, 4, 5]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_accuracy.mean","kind":"field","operator":">=","value":0}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 2]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_string.min","kind":"field","operator":"=","value":"string"}],"conjunction":"and","kind":"group"},"showArchived":true}', []),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_string.max","kind":"field","operator":"!=","value":"string"}],"conjunction":"and","kind":"group"},"showArchived":true}', []),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_string.mean","kind":"field","operator":"contains","value":"string"}],"conjunction":"and","kind":"group"},"showArchived":true}', []),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_string.min","kind":"field","operator":"notContains","value":"string"}],"conjunction":"and","kind":"group"},"showArchived":true}', []),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_error.min","kind":"field","operator":">=","value":0}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 2, 4]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_error.max","kind":"field","operator":"notEmpty","value":0}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 2, 4]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_error.max","kind":"field","operator":"isEmpty","value":0}],"conjunction":"and","kind":"group"},"showArchived":true}', [3, 5]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.x.max","kind":"field","operator":"=","value": 0}],"conjunction":"and","kind":"group"},"showArchived":true}', []),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.loss.last","kind":"field","operator":"!=","value":0.004}],"conjunction":"and","kind":"group"},"showArchived":true}', [2]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_accuracy.max","kind":"field","operator":"<","value":-3}],"conjunction":"and","kind":"group"},"showArchived":true}', [4]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_VALIDATIONS", "columnName":"validation.validation_accuracy.min","kind":"field","operator":"<=","value":10}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 2, 4]),
    ('{"filterGroup":{"children":[{"columnName":"projectId","kind":"field","operator":">=","value":null}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 2, 3, 4, 5]),
    ('{"filterGroup":{"children":[{"columnName":"id","kind":"field","operator":"=","value":1},{"children":[{"columnName":"id","kind":"field","operator":"=","value":2},{"columnName":"id","kind":"field","operator":"=","value":3}],"conjunction":"and","kind":"group"},{"columnName":"id","kind":"field","operator":"=","value":4},{"children":[{"columnName":"id","kind":"field","operator":"=","value":5}],"conjunction":"and","kind":"group"}],"conjunction":"and","kind":"group"},"showArchived":true}', []),
    ('{"filterGroup":{"children":[{"children":[{"columnName":"checkpointCount","kind":"field","operator":"=","value":4},{"columnName":"numTrials","kind":"field","operator":"=","value":1},{"columnName":"progress","kind":"field","operator":"=","value":100}],"conjunction":"and","kind":"group"}],"conjunction":"and","kind":"group"},"showArchived":true}', [1]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.global_batch_size","kind":"field","operator":"=","value":32}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 4]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.global_batch_size","kind":"field","operator":">=","value":32}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 2, 3, 4]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_DATE","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.global_batch_start","kind":"field","operator":">=","value":"2021-04-14T14:14:18.915483952Z"}],"conjunction":"and","kind":"group"},"showArchived":true}', [1]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.global_batch_size","kind":"field","operator":"!=","value":32}],"conjunction":"and","kind":"group"},"showArchived":true}', [2, 3]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.global_batch_size","kind":"field","operator":"isEmpty"}],"conjunction":"and","kind":"group"},"showArchived":true}', [5]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.global_batch_size","kind":"field","operator":"notEmpty"}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 2, 3, 4]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.model","kind":"field","operator":"=","value":"efficientdet_d0"}],"conjunction":"and","kind":"group"},"showArchived":true}', [1]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.model","kind":"field","operator":"=","value":"efficientdet_d0"}],"conjunction":"and","kind":"group"},"showArchived":false}', [1]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.model","kind":"field","operator":"isEmpty"}],"conjunction":"and","kind":"group"},"showArchived":true}', [3]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.clip_grad","kind":"field","operator":"contains", "value":8}],"conjunction":"and","kind":"group"},"showArchived":true}', [1, 3]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.clip_grad.clip.grad","kind":"field","operator":"contains", "value":"some_string"}],"conjunction":"and","kind":"group"},"showArchived":true}', [2]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.clip_grad.clip.grad","kind":"field","operator":"isEmpty", "value":"some_string"}],"conjunction":"and","kind":"group"},"showArchived":true}', []),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_TEXT","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.clip_grad.clip.grad","kind":"field","operator":"notContains", "value":"some_string"}],"conjunction":"and","kind":"group"},"showArchived":true}', [5]),
    ('{"filterGroup":{"children":[{"type":"COLUMN_TYPE_NUMBER","location":"LOCATION_TYPE_HYPERPARAMETERS", "columnName":"hp.clip_grad","kind":"field","operator":"notContains", "value":8}],"conjunction":"and","kind":"group"},"showArchived":true}', [4]),
]  # fmt: skip


@pytest.mark.parametrize(("filter_text", "expected"), CONFORMANCE)
def test_filter_parsing_conformance(frozen: World, filter_text: str, expected: list[int]) -> None:
    assert search_ids(frozen, filter_text) == expected


def test_filter_on_an_ambiguous_column_fails_like_postgres(frozen: World) -> None:
    # `project_id >= -1` (the master's own test case): experiments and the joined runs both have it
    text = '{"filterGroup":{"children":[{"columnName":"projectId","location":"LOCATION_TYPE_EXPERIMENT", "kind":"field","operator":">=","value":-1}],"conjunction":"and","kind":"group"},"showArchived":true}'
    response = frozen.api.post("/api/v1/experiments-search", json={"filter": text})
    assert response.status_code == 500
    assert (
        error_of(response)["error"]
        == 'ERROR: column reference "project_id" is ambiguous (SQLSTATE 42702)'
    )


INVALID: list[tuple[str, str]] = [
    ('{"filterGroup":{"children":[{"columnName":"resourcePool","kind":"field","value":"default"}],"conjunction":"and","kind":"group"},"showArchived":false}',
     "field specified with value but no operator"),
    ('{"filterGroup":{"children":[{"columnName":"resourcePool","kind":"field","operator":"=","value":"default"}],"kind":"group"},"showArchived":false}',
     "group specified with no conjunction"),
    ('{"filterGroup":{"children":[{"columnName":"resourcePool","kind":"field","operator":"=","value":"default"}],"conjunction":"invalid","kind":"group"},"showArchived":false}',
     "invalid conjunction value invalid"),
    ('{"filterGroup":{"children":[{"columnName":"resourcePool","kind":"field","operator":"invalid","value":"default"}],"conjunction":"and","kind":"group"},"showArchived":false}',
     "invalid operator invalid"),
    ('{"filterGroup":{"children":[{"location":"LOCATION_TYPE_EXPERIMENT","columnName":"notValid","kind":"field","value":"default"}],"conjunction":"and","kind":"group"},"showArchived":false}',
     "field specified with value but no operator"),
]  # fmt: skip


@pytest.mark.parametrize(("filter_text", "message"), INVALID)
def test_invalid_filters_are_plain_errors(frozen: World, filter_text: str, message: str) -> None:
    response = frozen.api.post("/api/v1/experiments-search", json={"filter": filter_text})
    assert response.status_code == 500
    assert error_of(response) == {"code": 13, "reason": "Internal", "error": message}


# --- more of the filter grammar -------------------------------------------------------------------
def test_groups_nest_exactly(frozen: World) -> None:
    tree = group(
        group(field("id", "=", 1), field("name", "=", "alpha")),
        field("id", "=", 3),
        conjunction="or",
    )
    assert search_ids(frozen, root(tree)) == [1, 3]
    tree = group(
        group(field("id", "=", 1), field("name", "=", "beta")),
        field("id", "=", 3),
        conjunction="or",
    )
    assert search_ids(frozen, root(tree)) == [3]


def test_a_child_of_another_kind_adds_no_condition(frozen: World) -> None:
    # dropped, not TRUE: inside an OR it must not select everything
    tree = group({"kind": "nothing", "columnName": "id"}, field("id", "=", 2), conjunction="or")
    assert search_ids(frozen, root(tree)) == [2]
    assert search_ids(
        frozen, root(group(field("id", "=", 2, location="LOCATION_TYPE_UNKNOWN")))
    ) == [1, 2, 3, 5]


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored(frozen: World) -> None:
    text = json.dumps({"FILTERGROUP": {"Kind": "group", "CONJUNCTION": "and", "id": "x",
                                       "children": [{"kind": "field", "COLUMNNAME": "name", "operator": "=", "value": "gamma"}]},
                       "showarchived": True})  # fmt: skip
    assert search_ids(frozen, text) == [3]


def test_null_value_matches_everything_and_empty_filter_hides_archived(frozen: World) -> None:
    assert search_ids(frozen, root(group(field("name", "=", None)))) == [1, 2, 3, 5]
    assert search_ids(frozen, "{}") == [1, 2, 3, 5]
    assert search_ids(frozen, "{}", projectId=frozen.other) == [6]
    # without a filter nothing is hidden
    response = frozen.api.post("/api/v1/experiments-search", json={"projectId": frozen.project})
    assert [row["experiment"]["id"] for row in response.json()["experiments"]] == [1, 2, 3, 4, 5]


def test_experiment_column_values_are_typed_like_postgres(frozen: World) -> None:
    assert search_ids(frozen, root(group(field("id", "=", "2")))) == [2]  # '2' coerced to integer
    assert search_ids(frozen, root(group(field("user", "=", "2")))) == [
        1,
        2,
        3,
        5,
    ]  # owner id as text
    assert search_ids(frozen, root(group(field("state", "=", "ACTIVE")))) == [3]
    assert search_ids(frozen, root(group(field("state", "<", "CANCELED")))) == [3]  # enum order
    assert search_ids(frozen, root(group(field("name", "<", "B")))) == [
        1
    ]  # collation is case-insensitive
    assert search_ids(frozen, root(group(field("progress", "=", 30)))) == [3]
    assert search_ids(frozen, root(group(field("searcherMetricsVal", "<", 1)))) == [1]
    assert search_ids(frozen, root(group(field("searcherType", "!=", "single")))) == [2]


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (
            field("id", "=", "abc"),
            'ERROR: invalid input syntax for type integer: "abc" (SQLSTATE 22P02)',
        ),
        (field("name", "=", 5), "ERROR: operator does not exist: text = integer (SQLSTATE 42883)"),
        (
            field("name", "!=", 0.5),
            "ERROR: operator does not exist: text <> numeric (SQLSTATE 42883)",
        ),
        (
            field("id", "=", True),
            "ERROR: operator does not exist: integer = boolean (SQLSTATE 42883)",
        ),
        (
            field("state", "=", "QUEUED"),
            'ERROR: invalid input value for enum experiment_state: "QUEUED" (SQLSTATE 22P02)',
        ),
        (
            field("startTime", ">", "yesterday-ish"),
            'ERROR: invalid input syntax for type timestamp with time zone: "yesterday-ish" (SQLSTATE 22007)',
        ),
        (
            field("id", "contains", "1"),
            "ERROR: operator does not exist: integer ~~* unknown (SQLSTATE 42883)",
        ),
        (
            field("forkedFrom", "isEmpty"),
            'ERROR: invalid input syntax for type integer: "" (SQLSTATE 22P02)',
        ),
        (field("checkpointSize", "=", 1e30), None),
        (
            field("validation.loss", "=", 1, location="LOCATION_TYPE_VALIDATIONS"),
            "validation.loss is not a valid metrics id",
        ),
        (field("nope", "=", 1), "invalid experiment column nope"),
        (field("nope", "=", 1, location="LOCATION_TYPE_RUN"), "invalid run column nope"),
        (
            field("isExpMultitrial", "=", True, location="LOCATION_TYPE_RUN"),
            'ERROR: syntax error at or near "=" (SQLSTATE 42601)',
        ),
        (
            field(
                "hp.lr",
                "contains",
                5,
                location="LOCATION_TYPE_RUN_HYPERPARAMETERS",
                type="COLUMN_TYPE_TEXT",
            ),
            "interface conversion: interface {} is float64, not string",
        ),
        (
            field(
                "hp.clip_grad",
                "contains",
                "x",
                location="LOCATION_TYPE_HYPERPARAMETERS",
                type="COLUMN_TYPE_NUMBER",
            ),
            'ERROR: syntax error at or near "x" (SQLSTATE 42601)',
        ),
        (
            field(
                "metadata.team",
                "contains",
                "a",
                location="LOCATION_TYPE_RUN_METADATA",
                type="COLUMN_TYPE_NUMBER",
            ),
            'ERROR: column "number_value" does not exist (SQLSTATE 42703)',
        ),
    ],
)
def test_filter_errors_are_500s(frozen: World, node: dict[str, Any], message: str | None) -> None:
    response = frozen.api.post(
        "/api/v1/experiments-search", json={"filter": root(group(node), show_archived=True)}
    )
    if message is None:  # a numeric literal compares with a bigint column
        assert response.status_code == 200
        return
    assert response.status_code == 500
    assert error_of(response) == {"code": 13, "reason": "Internal", "error": message}


def test_row_level_cast_errors_fail_the_request(frozen: World) -> None:
    # `(val)::float8` of the string const "efficientdet_d0" fails once that row is tested
    node = field(
        "hp.model", "=", 1, location="LOCATION_TYPE_HYPERPARAMETERS", type="COLUMN_TYPE_NUMBER"
    )
    response = frozen.api.post("/api/v1/experiments-search", json={"filter": root(group(node))})
    assert response.status_code == 500
    assert (
        error_of(response)["error"]
        == 'ERROR: invalid input syntax for type double precision: "efficientdet_d0" (SQLSTATE 22P02)'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "unexpected end of JSON input"),
        ("{", "unexpected end of JSON input"),
        ("nope", "invalid character 'o' in literal null (expecting 'u')"),
        ("[]", "json: cannot unmarshal array into Go value of type internal.experimentFilterRoot"),
        (
            '{"showArchived": "yes"}',
            "json: cannot unmarshal string into Go struct field experimentFilterRoot.ShowArchived of type bool",
        ),
        (
            '{"filterGroup": {"children": [{"operator": 1}]}}',
            "json: cannot unmarshal number into Go struct field experimentFilter.FilterGroup.Children.Operator of type internal.operator",
        ),
        (
            '{"filterGroup": {"kind": "group", "conjunction": "and", "children": [null]}}',
            "runtime error: invalid memory address or nil pointer dereference",
        ),
    ],
)
def test_malformed_filter_documents(frozen: World, text: str, message: str) -> None:
    response = frozen.api.post("/api/v1/experiments-search", json={"filter": text})
    assert response.status_code == 500
    assert error_of(response)["error"] == message


# --- SearchExperiments ---------------------------------------------------------------------------
def test_search_experiments_rows_carry_the_best_trial(frozen: World) -> None:
    response = frozen.api.post("/api/v1/experiments-search", json={"projectId": frozen.project})
    body = response.json()
    parsed = bindings.v1SearchExperimentsResponse.from_json(body)
    assert parsed.pagination is not None and parsed.pagination.total == 5
    assert SearchExperimentsResponse.model_validate(body).experiments[0].experiment is not None
    rows = {row["experiment"]["id"]: row for row in body["experiments"]}
    assert rows[1]["experiment"]["bestTrialId"] == frozen.runs["t1"]
    assert rows[2]["bestTrial"]["id"] == frozen.runs["t2a"]  # the lower validation_error
    assert rows[3]["bestTrial"] is None and "bestTrialId" not in rows[3]["experiment"]
    best = rows[2]["bestTrial"]
    assert best["bestValidation"]["metrics"]["avgMetrics"]["validation_error"] == 5.0
    assert best["bestCheckpoint"] is None and best["wallClockTime"] == 0
    assert best["searcherMetricValue"] == 5.0 and best["state"] == "STATE_COMPLETED"
    assert rows[3]["experiment"]["state"] == "STATE_QUEUED"  # active, no trial
    assert (
        rows[1]["experiment"]["trialIds"] == []
        and "bestTrialSearcherMetric" not in rows[1]["experiment"]
    )


def test_search_experiments_drops_deleting_and_checks_the_project(
    world: World, local_master: LocalMaster
) -> None:
    with Seeder(local_master.database) as seed:
        seed.experiment(project=world.project, name="going", state="DELETING")
    response = world.api.post("/api/v1/experiments-search", json={"projectId": world.project})
    assert [row["experiment"]["id"] for row in response.json()["experiments"]] == [1, 2, 3, 4, 5]
    missing = world.api.post("/api/v1/experiments-search", json={"projectId": 77})
    assert missing.status_code == 404 and error_of(missing)["error"] == "project '77' not found"


def test_search_experiments_pagination(frozen: World) -> None:
    def page(**body: Any) -> tuple[list[int], dict[str, int]]:
        data = frozen.api.post(
            "/api/v1/experiments-search", json={"projectId": frozen.project, **body}
        ).json()
        return [row["experiment"]["id"] for row in data["experiments"]], data["pagination"]

    assert page(offset=1, limit=2) == (
        [2, 3],
        {"offset": 1, "limit": 2, "startIndex": 1, "endIndex": 3, "total": 5},
    )
    assert page(limit=-2) == (
        [],
        {"offset": 0, "limit": -2, "startIndex": 0, "endIndex": 0, "total": 5},
    )
    assert page(offset=-2, limit=-1)[0] == [4, 5]
    assert page(offset=9)[0] == []
    bad = frozen.api.post("/api/v1/experiments-search", json={"limit": -3})
    assert bad.status_code == 500 and "LIMIT must not be negative" in error_of(bad)["error"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("id=desc", [5, 4, 3, 2, 1]),
        ("name=asc", [1, 2, 4, 5, 3]),
        ("numTrials=desc,name=asc", [2, 1, 4, 5, 3]),
        (
            "validation.validation_error.min=asc",
            [1, 4, 2, 3, 5],
        ),  # as text: '0.2' < '1' < '5'; NULLs last
        ("forkedFrom=desc", [4, 2, 1, 3, 5]),
        # jsonb order of the definitions: fewer pairs first, then "val" (null < 32 < 64) before "type"
        ("hp.global_batch_size=asc", [5, 1, 4, 3, 2]),
        ("state=asc", [3, 5, 1, 2, 4]),
        ("startTime=asc", [5, 3, 1, 2, 4]),
    ],
)
def test_search_experiments_sort(frozen: World, sort: str, expected: list[int]) -> None:
    assert search_ids(frozen, root(group(), show_archived=True), sort=sort) == expected


@pytest.mark.parametrize(
    ("sort", "status", "message"),
    [
        ("id", 400, "invalid sort parameter: id"),
        ("", 400, "invalid sort parameter: "),
        ("id=up", 400, "invalid sort direction: up"),
        ("id=ASC", 400, "invalid sort direction: ASC"),
        ("size=asc", 400, "invalid sort col: size"),
        ("a.b=asc", 500, "a.b is not a valid metrics id"),
    ],
)
def test_sort_errors(frozen: World, sort: str, status: int, message: str) -> None:
    for path in ("/api/v1/experiments-search", "/api/v1/runs"):
        response = frozen.api.post(path, json={"sort": sort})
        assert response.status_code == status
        assert error_of(response)["error"] == message


def test_postgres_errors_surface_after_the_sort_is_checked(frozen: World) -> None:
    body = {"filter": root(group(field("id", "=", "abc"))), "sort": "id=sideways"}
    response = frozen.api.post("/api/v1/experiments-search", json=body)
    assert (
        response.status_code == 400
        and error_of(response)["error"] == "invalid sort direction: sideways"
    )


# --- SearchRuns ------------------------------------------------------------------------------------
def run_ids(world: World, filter_text: str | None = None, **body: Any) -> list[int]:
    if filter_text is not None:
        body["filter"] = filter_text
    response = world.api.post("/api/v1/runs", json=body)
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["runs"]]


def test_search_runs_flat_rows(frozen: World) -> None:
    body = frozen.api.post("/api/v1/runs", json={"projectId": frozen.project}).json()
    parsed = bindings.v1SearchRunsResponse.from_json(body)
    assert parsed.pagination is not None and parsed.pagination.total == 4
    assert SearchRunsResponse.model_validate(body).runs[0].id == frozen.runs["t1"]
    run = body["runs"][0]
    assert run["localId"].endswith("-1") and run["labels"] == ["val", "x"]
    assert run["hyperparameters"] == {"lr": 0.1, "opt": "adam"}
    assert run["metadata"] == {"nested": {"number_key": 1}, "team": "a"}
    assert run["experiment"]["isMultitrial"] is False and run["experiment"]["name"] == "alpha"
    assert run["searcherMetricValue"] == 0.2 and run["state"] == "STATE_COMPLETED"
    second = body["runs"][1]
    assert second["experiment"]["forkedFrom"] == 1 and second["experiment"]["isMultitrial"] is True
    assert "externalRunId" not in run and "forkedFrom" not in run["experiment"]
    assert run_ids(frozen) == [1, 2, 3, 4, 5]  # no filter: archived runs stay


def test_search_runs_filters(frozen: World) -> None:
    runs = frozen.runs
    hp = {"location": "LOCATION_TYPE_RUN_HYPERPARAMETERS"}
    meta = {"location": "LOCATION_TYPE_RUN_METADATA"}
    cases = [
        (root(group()), [runs["t1"], runs["t2a"], runs["t2b"], runs["t6"]]),  # the archived experiment's run hidden
        (root(group(field("experimentId", "=", 2, location="LOCATION_TYPE_RUN", type="COLUMN_TYPE_NUMBER"))), [runs["t2a"], runs["t2b"]]),
        (root(group(field("lr", ">=", 0.5, type="COLUMN_TYPE_NUMBER", **hp))), [runs["t2a"], runs["t2b"]]),
        (root(group(field("hp.opt", "=", "adam", type="COLUMN_TYPE_TEXT", **hp)), show_archived=True), [runs["t1"], runs["t4"]]),
        (root(group(field("hp.opt", "contains", "g", type="COLUMN_TYPE_TEXT", **hp))), [runs["t2a"], runs["t2b"]]),
        (root(group(field("hp.opt", "isEmpty", **hp))), [runs["t6"]]),
        (root(group(field("metadata.nested.number_key", "<=", 1, type="COLUMN_TYPE_NUMBER", **meta))), [runs["t1"]]),
        (root(group(field("metadata.team", "notEmpty", **meta))), [runs["t1"]]),
        (root(group(field("metadata.team", "isEmpty", **meta))), [runs["t2a"], runs["t2b"], runs["t6"]]),
        (root(group(field("validation.loss.last", "<", "0.2", location="LOCATION_TYPE_VALIDATIONS"))), [runs["t1"], runs["t2b"]]),
        (root(group(field("parentArchived", "=", False, location="LOCATION_TYPE_RUN"))), [runs["t1"], runs["t2a"], runs["t2b"], runs["t6"]]),
        (root(group(field("hp.global_batch_size", "=", 32, location="LOCATION_TYPE_HYPERPARAMETERS", type="COLUMN_TYPE_NUMBER"))), [runs["t1"]]),
    ]  # fmt: skip
    for text, expected in cases:
        assert run_ids(frozen, text) == expected, text


def test_search_runs_sort(frozen: World) -> None:
    runs = frozen.runs
    order = run_ids(frozen, sort="hp.lr=desc")
    assert order == [runs["t2b"], runs["t2a"], runs["t6"], runs["t4"], runs["t1"]]
    assert run_ids(frozen, sort="experimentName=asc,id=desc") == [
        runs["t1"],
        runs["t2b"],
        runs["t2a"],
        runs["t4"],
        runs["t6"],
    ]
    assert run_ids(frozen, sort="metadata.nested.number_key=desc")[:2] == [runs["t2a"], runs["t1"]]
    assert run_ids(frozen, sort="searcherMetricsVal=asc")[-1] == runs["t6"]  # NULLs last


# --- run actions ------------------------------------------------------------------------------
def results(response: httpx.Response) -> list[tuple[int, str]]:
    assert response.status_code == 200, response.text
    parsed = bindings.v1KillRunsResponse.from_json(response.json())
    return [(r.id, r.error) for r in parsed.results]


def test_archive_and_unarchive_runs(world: World) -> None:
    runs = world.runs
    body = {"runIds": [runs["t1"], runs["t4"], 99], "projectId": world.project}
    assert results(world.api.post("/api/v1/runs/archive", json=body)) == [
        (runs["t4"], "Run is part of archived Search (id: '4')."),
        (99, f"Run with id '99' not found in project with id '{world.project}'"),
        (runs["t1"], ""),
    ]
    assert results(
        world.api.post("/api/v1/runs/archive", json=body)
    ) == [  # already archived: success
        (runs["t1"], ""),
        (runs["t4"], "Run is part of archived Search (id: '4')."),
        (99, f"Run with id '99' not found in project with id '{world.project}'"),
    ]
    assert run_ids(world, root(group())) == [runs["t2a"], runs["t2b"], runs["t6"]]
    unarchived = results(
        world.api.post(
            "/api/v1/runs/unarchive",
            json={"runIds": [runs["t1"], runs["t2a"]], "projectId": world.project},
        )
    )
    assert unarchived == [(runs["t2a"], ""), (runs["t1"], "")]  # not archived: reported first
    both = world.api.post(
        "/api/v1/runs/archive", json={"runIds": [1], "filter": "{}", "projectId": world.project}
    )
    assert (
        both.status_code == 500
        and error_of(both)["error"] == "if filter is provided run id list must be empty"
    )


def test_archive_runs_by_filter(world: World, local_master: LocalMaster) -> None:
    with Seeder(local_master.database) as seed:
        live = seed.trial(3, state="ACTIVE")
    text = root(group(field("experimentId", ">=", 2, location="LOCATION_TYPE_RUN")))
    outcome = results(
        world.api.post("/api/v1/runs/archive", json={"filter": text, "projectId": world.project})
    )
    assert outcome == [
        (live, "Run is not in terminal state."),
        (world.runs["t2a"], ""),
        (world.runs["t2b"], ""),
    ]


def test_kill_runs(world: World, local_master: LocalMaster) -> None:
    with Seeder(local_master.database) as seed:
        live = seed.trial(3, state="ACTIVE")
    body = {"runIds": [world.runs["t1"], live, 42], "projectId": world.project}
    assert results(world.api.post("/api/v1/runs/kill", json=body)) == [
        (world.runs["t1"], ""), (42, "Run with id '42' not found"), (live, ""),
    ]  # fmt: skip
    trial = world.api.get(f"/api/v1/trials/{live}").json()["trial"]
    assert trial["state"] == "STATE_CANCELED" and trial["endTime"] is not None
    with Seeder(local_master.database) as seed:
        stale = seed.trial(1, state="ACTIVE")  # a live trial of a completed experiment
    assert results(
        world.api.post("/api/v1/runs/kill", json={"runIds": [stale], "projectId": world.project})
    ) == [(stale, "Failed to kill run: rpc error: code = NotFound desc = experiment '1' not found")]


def test_delete_runs(world: World, local_master: LocalMaster) -> None:
    with Seeder(local_master.database) as seed:
        live = seed.trial(3, state="ACTIVE")
    body = {"runIds": [world.runs["t2b"], live], "projectId": world.project}
    assert results(world.api.post("/api/v1/runs/delete", json=body)) == [
        (live, "Run is not in a terminal state."),
        (world.runs["t2b"], ""),
    ]
    assert world.api.get(f"/api/v1/trials/{world.runs['t2b']}").status_code == 404
    experiment = world.api.get("/api/v1/experiments/2").json()["experiment"]
    assert experiment["trialIds"] == [world.runs["t2a"]]


def test_pause_and_resume_runs(world: World, local_master: LocalMaster) -> None:
    with Seeder(local_master.database) as seed:
        single = seed.experiment(project=world.project, name="solo", state="ACTIVE")
        run = seed.trial(single)
    body = {"runIds": [run, world.runs["t2a"], world.runs["t4"]], "projectId": world.project}
    assert results(world.api.post("/api/v1/runs/pause", json=body)) == [
        (
            world.runs["t2a"],
            f"Cannot pause/unpause run '{world.runs['t2a']}' (part of multi-trial).",
        ),
        (world.runs["t4"], "Run is archived."),
        (run, ""),
    ]
    assert (
        world.api.get(f"/api/v1/experiments/{single}").json()["experiment"]["state"]
        == "STATE_PAUSED"
    )
    assert results(
        world.api.post("/api/v1/runs/pause", json={"runIds": [run], "projectId": world.project})
    ) == [(run, "")]
    assert results(
        world.api.post(
            "/api/v1/runs/resume",
            json={"runIds": [run, world.runs["t1"]], "projectId": world.project},
        )
    ) == [
        (
            world.runs["t1"],
            "Failed to resume associated experiment: rpc error: code = FailedPrecondition desc = experiment in terminal state",
        ),
        (run, ""),
    ]
    neither = world.api.post("/api/v1/runs/pause", json={"projectId": world.project})
    assert neither.status_code == 500
    assert (
        error_of(neither)["error"]
        == "runtime error: invalid memory address or nil pointer dereference"
    )


def test_move_runs_moves_their_experiments(world: World) -> None:
    body = {"runIds": [world.runs["t2a"], world.runs["t4"], 77], "sourceProjectId": world.project,
            "destinationProjectId": world.other}  # fmt: skip
    assert results(world.api.post("/api/v1/runs/move", json=body)) == [
        (world.runs["t4"], "Run is archived."),
        (77, f"Run with id '77' not found in project with id '{world.project}'"),
        (world.runs["t2a"], ""),
        (world.runs["t2b"], ""),  # every run of the moved experiment
    ]
    moved = world.api.post("/api/v1/runs", json={"projectId": world.other}).json()["runs"]
    assert [(run["id"], run["localId"].rsplit("-", 1)[1]) for run in moved] == [
        (world.runs["t2a"], "2"), (world.runs["t2b"], "3"), (world.runs["t6"], "1"),
    ]  # fmt: skip
    same = world.api.post("/api/v1/runs/move", json={**body, "destinationProjectId": world.project})
    assert same.json() == {"results": []}


# --- GetProjectColumns -------------------------------------------------------------------------
def test_project_columns_for_experiments(frozen: World) -> None:
    response = frozen.api.get(f"/api/v1/projects/{frozen.project}/columns")
    body = response.json()
    assert bindings.v1GetProjectColumnsResponse.from_json(body).columns[0].column == "id"
    columns = [(c["column"], c["location"].removeprefix("LOCATION_TYPE_"), c["type"].removeprefix("COLUMN_TYPE_"))
               for c in body["columns"]]  # fmt: skip
    assert columns[0] == ("id", "EXPERIMENT", "NUMBER") and columns[19] == (
        "archived",
        "EXPERIMENT",
        "UNSPECIFIED",
    )
    assert body["columns"][0]["displayName"] == "ID"
    dynamic = columns[20:]
    assert ("validation.validation_accuracy.mean", "VALIDATIONS", "NUMBER") in dynamic
    assert ("validation.validation_string.last", "VALIDATIONS", "TEXT") in dynamic
    assert ("validation.validation_string.min", "VALIDATIONS", "TEXT") not in dynamic
    hps = [c for c in dynamic if c[1] == "HYPERPARAMETERS"]
    assert hps == [
        ("hp.clip_grad", "HYPERPARAMETERS", "UNSPECIFIED"), ("hp.global_batch_size", "HYPERPARAMETERS", "NUMBER"),
        ("hp.global_batch_start", "HYPERPARAMETERS", "TEXT"), ("hp.model", "HYPERPARAMETERS", "TEXT"),
        ("hp.clip_grad.clip.grad", "HYPERPARAMETERS", "UNSPECIFIED"),
    ]  # fmt: skip
    assert frozen.api.get("/api/v1/projects/404/columns").status_code == 404


def test_project_columns_for_runs(frozen: World) -> None:
    body = frozen.api.get(
        f"/api/v1/projects/{frozen.project}/columns", params={"tableType": "TABLE_TYPE_RUN"}
    ).json()
    columns = [(c["column"], c["location"].removeprefix("LOCATION_TYPE_"), c["type"].removeprefix("COLUMN_TYPE_"))
               for c in body["columns"]]  # fmt: skip
    assert (
        columns[0] == ("id", "RUN", "NUMBER")
        and body["columns"][0]["displayName"] == "Global Run ID"
    )
    assert ("hp.lr", "RUN_HYPERPARAMETERS", "NUMBER") in columns and (
        "hp.opt",
        "RUN_HYPERPARAMETERS",
        "TEXT",
    ) in columns
    assert ("metadata.nested.number_key", "RUN_METADATA", "NUMBER") in columns
    assert ("metadata.team", "RUN_METADATA", "TEXT") in columns
    assert ("validation.loss.min", "VALIDATIONS", "NUMBER") in columns
    bad = frozen.api.get(
        f"/api/v1/projects/{frozen.project}/columns", params={"tableType": "TABLE_TYPE_NOPE"}
    )
    assert bad.status_code == 400


def test_a_time_bound_past_python_years_compares_as_the_last_instant(api: httpx.Client) -> None:
    """Postgres rounds 9999-12-31T23:59:59.9999999Z into year 10000 and compares; Python's
    datetime ends at 9999: the bound must not fail where the master answers."""
    tree = {
        "filterGroup": {"kind": "group", "conjunction": "and", "children": [{
            "kind": "field", "columnName": "startTime", "location": "LOCATION_TYPE_EXPERIMENT",
            "type": "COLUMN_TYPE_DATE", "operator": "<", "value": "9999-12-31T23:59:59.999999999Z",
        }]},
        "showArchived": True,
    }  # fmt: skip
    response = api.post("/api/v1/experiments-search", json={"filter": json.dumps(tree)})
    assert response.status_code == 200, response.text
