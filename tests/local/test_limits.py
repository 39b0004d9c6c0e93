"""Requests the master serves at any size are served here too, whatever SQLite's and Python's
limits: id lists longer than SQLite's 32,766 parameters per statement (the master's bun writes
``IN (...)`` into the query text), filters and bodies nested as deep as Go's ``encoding/json``
reads (10,000 levels; Python's recursion stops near 1,000, SQLite's parser near 90
parentheses), and ORs of tens of thousands of conditions (SQLite: 1,000). Deeper than Go reads,
the answer is the master's error."""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of

MANY: int = 33_000  # above SQLITE_MAX_VARIABLE_NUMBER (32,766)
UNKNOWN_START: int = 10_000_000


@dataclass
class World:
    api: httpx.Client
    master: LocalMaster
    project: int
    target: int
    experiment: int  # a completed experiment with one trial


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        project = seed.project("work")
        target = seed.project("target")
        experiment = seed.experiment(project=project, name="done", state="COMPLETED")
        seed.trial(experiment, state="COMPLETED")
    api.timeout = httpx.Timeout(600)
    yield World(api, local_master, project, target, experiment)


def clone(master: LocalMaster, table: str, row_id: int, count: int) -> list[int]:
    """``count`` copies of a row (new ids), written straight into the database."""
    with sqlite3.connect(master.db_path) as connection:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        copied = ", ".join(c for c in columns if c != "id")
        (first,) = connection.execute(f"SELECT MAX(id) + 1 FROM {table}").fetchone()
        connection.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            f" INSERT INTO {table} ({copied}) SELECT {copied} FROM n, {table} WHERE id = ?",
            (count, row_id),
        )
    return list(range(first, first + count))


def unknown(count: int) -> list[int]:
    return list(range(UNKNOWN_START, UNKNOWN_START + count))


def result_pairs(response: httpx.Response) -> list[tuple[int, str]]:
    """(id, error) of each result, read without building a million dicts."""
    assert response.status_code == 200, response.text[:500]
    # the string's loop unrolled (runs of plain characters, then one escape): a third of the
    # time of an alternation tried at every character, on the million-result answer
    found = re.findall(rb'\{"error":"([^"\\]*(?:\\.[^"\\]*)*)","id":(\d+)\}', response.content)
    return [(int(number), error.decode()) for error, number in found]


def not_found(experiment_id: int) -> str:
    return f"rpc error: code = NotFound desc = experiment '{experiment_id}' not found"


def test_a_million_ids_in_a_bulk_action_answer_per_id_like_the_master(world: World) -> None:
    missing = unknown(1_000_000)
    body = {"experimentIds": [world.experiment, *missing], "projectId": world.project}
    response = world.api.post(f"/api/v1/projects/{world.project}/experiments/archive", json=body)
    pairs = result_pairs(response)
    # refusals, then the ids not found, then the accepted ids (ArchiveExperiments)
    assert len(pairs) == 1_000_001
    assert [i for i, _ in pairs[:-1]] == missing
    assert pairs[-1] == (world.experiment, "")
    assert all(error == not_found(i) for i, error in pairs[:-1])


def test_tens_of_thousands_of_experiments_in_each_bulk_action(world: World) -> None:
    experiments = clone(world.master, "experiments", world.experiment, MANY)
    path = f"/api/v1/projects/{world.project}/experiments"
    body = {"experimentIds": experiments, "projectId": world.project}
    assert result_pairs(world.api.post(f"{path}/archive", json=body)) == [
        (i, "") for i in experiments
    ]
    assert result_pairs(world.api.post(f"{path}/unarchive", json=body)) == [
        (i, "") for i in experiments
    ]
    # completed experiments: kill succeeds, pause is refused (no live actor)
    assert result_pairs(world.api.post(f"{path}/kill", json=body)) == [(i, "") for i in experiments]
    paused = result_pairs(world.api.post(f"{path}/pause", json=body))
    assert {error for _, error in paused} == {
        "rpc error: code = FailedPrecondition desc = experiment in terminal state"
    }
    moved = world.api.post(f"{path}/move", json={**body, "destinationProjectId": world.target})
    assert result_pairs(moved) == [(i, "") for i in experiments]
    listed = world.api.get(
        "/api/v1/experiments", params={"projectId": world.target, "limit": -2}
    ).json()
    assert listed["pagination"]["total"] == MANY
    target_path = f"/api/v1/projects/{world.target}/experiments/delete"
    deleted = world.api.request(
        "DELETE", target_path, json={"experimentIds": experiments, "projectId": world.target}
    )
    assert result_pairs(deleted) == [(i, "") for i in experiments]
    remaining = world.api.get("/api/v1/experiments", params={"limit": -2}).json()
    assert remaining["pagination"]["total"] == 1


def test_tens_of_thousands_of_runs_in_each_run_action(world: World) -> None:
    (trial,) = world.api.get(f"/api/v1/experiments/{world.experiment}/trials").json()["trials"]
    runs = clone(world.master, "trials", trial["id"], MANY)
    body = {"runIds": runs, "projectId": world.project}
    assert result_pairs(world.api.post("/api/v1/runs/archive", json=body)) == [
        (i, "") for i in runs
    ]
    assert result_pairs(world.api.post("/api/v1/runs/unarchive", json=body)) == [
        (i, "") for i in runs
    ]
    assert result_pairs(world.api.post("/api/v1/runs/kill", json=body)) == [(i, "") for i in runs]
    missing = unknown(MANY)
    message = f"Run with id '{{}}' not found in project with id '{world.project}'"
    refused = world.api.post("/api/v1/runs/delete", json={**body, "runIds": missing})
    assert result_pairs(refused) == [(i, message.format(i)) for i in missing]
    deleted = world.api.post("/api/v1/runs/delete", json=body)
    assert result_pairs(deleted) == [(i, "") for i in runs]
    searched = world.api.post("/api/v1/runs", json={"projectId": world.project, "limit": -2})
    assert searched.json()["pagination"]["total"] == 1


def test_checkpoint_deletes_name_every_unknown_uuid(world: World) -> None:
    uuids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(MANY)]
    response = world.api.request("DELETE", "/api/v1/checkpoints", json={"checkpointUuids": uuids})
    assert response.status_code == 404
    assert error_of(response)["error"] == f"checkpoints '{', '.join(uuids)}' not found"


def test_get_experiments_takes_tens_of_thousands_of_ids(world: World) -> None:
    # 33,000 ids keep the request line under Go's 1 MB header limit; httpx refuses URLs that
    # long, so the request goes through http.client
    ids = [world.experiment, *unknown(33_000)]

    def listed(key: str) -> list[int]:
        url = urlsplit(world.master.url)
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=600)
        query = urlencode([(key, i) for i in ids])
        headers = {"Authorization": world.api.headers["Authorization"]}
        connection.request("GET", f"/api/v1/experiments?{query}", headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
        assert response.status == 200, body
        return [e["id"] for e in body["experiments"]]

    assert listed("experimentIdFilter.incl") == [world.experiment]
    assert listed("experimentIdFilter.notIn") == []


# --- filters and bodies nested deep, filters wide ---------------------------------------------
def _leaf(column: str, operator: str, value: object) -> str:
    return json.dumps({"kind": "field", "columnName": column, "operator": operator, "value": value})


def _group(conjunction: str, *children: str) -> str:
    return f'{{"kind":"group","conjunction":"{conjunction}","children":[{",".join(children)}]}}'


def _root(group: str) -> str:
    return f'{{"filterGroup":{group},"showArchived":true}}'


def _nested(depth: int, inner: str) -> str:
    """``inner`` inside ``depth`` groups of one child (written as text: json.dumps recurses)."""
    opening = '{"kind":"group","conjunction":"and","children":['
    return opening * depth + inner + "]}" * depth


def _experiments(world: World, filter_text: str) -> list[int]:
    response = world.api.post("/api/v1/experiments-search", json={"filter": filter_text})
    assert response.status_code == 200, response.text[:500]
    return [row["experiment"]["id"] for row in response.json()["experiments"]]


def _run_filter(filter_text: str) -> str:
    """The same filter on runs: their experiment's id."""
    run_column = '"columnName": "experimentId", "location": "LOCATION_TYPE_RUN"'
    return filter_text.replace('"columnName": "id"', run_column)


def _run_experiments(world: World, filter_text: str) -> list[int]:
    """The experiments of the runs a filter selects (archived runs hidden)."""
    response = world.api.post("/api/v1/runs", json={"filter": _run_filter(filter_text)})
    assert response.status_code == 200, response.text[:500]
    return [row["experiment"]["id"] for row in response.json()["runs"]]


@pytest.fixture
def ten(world: World) -> list[int]:
    """Ten more experiments with a run each (ids in order)."""
    with Seeder(world.master.database) as seed:
        ids = [seed.experiment(project=world.project, name=f"e{i}") for i in range(10)]
        for experiment in ids:
            seed.trial(experiment)
    return ids


def test_a_filter_deeper_than_go_reads_fails_with_the_masters_error(world: World) -> None:
    # 50,000 groups: 100,002 levels of JSON; Go's scanner stops at 10,001 ('[' of a children)
    text = _root(_nested(50_000, _leaf("id", ">", 0)))
    for path in ("/api/v1/experiments-search", "/api/v1/runs"):
        response = world.api.post(path, json={"filter": text})
        assert response.status_code == 500
        assert error_of(response) == {
            "code": 13, "reason": "Internal", "error": "invalid character '[' exceeded max depth"
        }  # fmt: skip


def test_filters_as_deep_as_go_reads_select_what_postgres_would(
    world: World, ten: list[int]
) -> None:
    # 4,999 groups of one: 10,000 levels of JSON, the most Go reads
    deepest = _root(_nested(4_999, _leaf("id", ">=", ten[4])))
    assert _experiments(world, deepest) == ten[4:]
    assert _run_experiments(world, deepest) == ten[4:]
    # 1,000 levels alternating AND and OR, two conditions each: none of it can be flattened
    group = _leaf("id", ">", 0)
    for level in range(1_000):
        if level % 2:
            group = _group("or", _leaf("id", "=", ten[level % 10]), group)
        else:
            group = _group("and", _leaf("id", "!=", ten[level * 7 % 10]), group)

    def selected(experiment: int) -> bool:
        matched = experiment > 0
        for level in range(1_000):
            if level % 2:
                matched = experiment == ten[level % 10] or matched
            else:
                matched = experiment != ten[level * 7 % 10] and matched
        return matched

    expected = [i for i in [world.experiment, *ten] if selected(i)]
    assert 0 < len(expected) < 11
    assert _experiments(world, _root(group)) == expected
    assert _run_experiments(world, _root(group)) == expected


def test_an_or_of_tens_of_thousands_of_ids_selects_them(world: World, ten: list[int]) -> None:
    # the web UI's selection filter: an OR of "id = n" (getIdsFilter)
    wanted = [ten[2], ten[7]]
    text = _root(_group("or", *(_leaf("id", "=", i) for i in [*wanted, *unknown(MANY)])))
    assert _experiments(world, text) == wanted
    archived = world.api.post(
        "/api/v1/runs/archive", json={"filter": _run_filter(text), "projectId": world.project}
    )
    assert len(result_pairs(archived)) == 2
    unarchived = '{"filterGroup":' + _group("and") + ',"showArchived":false}'
    remaining = [world.experiment, *(i for i in ten if i not in wanted)]
    assert _run_experiments(world, unarchived) == remaining


@pytest.fixture(params=[None, 20_000], ids=["python-recursion-limit", "raised-recursion-limit"])
def recursion_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    """The server runs in this process: a raised recursion limit (mypy's API sets 16,384) lets
    Python's own JSON decoder read deeper than Go's scanner does; no answer may change."""
    before = sys.getrecursionlimit()
    if request.param is not None:
        sys.setrecursionlimit(request.param)
    yield
    sys.setrecursionlimit(before)


@pytest.mark.usefixtures("recursion_limit")
def test_bodies_as_deep_as_go_reads_are_decoded_as_the_gateway_does(world: World) -> None:
    deep = "[" * 9_999 + "]" * 9_999  # with the body's own object: 10,000 levels
    # an unknown field is skipped, however deep
    ignored = world.api.post(
        "/api/v1/experiments-search", content=f'{{"projectId":{world.project},"x":{deep}}}'
    )
    assert ignored.status_code == 200
    assert [row["experiment"]["id"] for row in ignored.json()["experiments"]] == [world.experiment]
    # a known field gets Go's type error
    typed = world.api.post("/api/v1/experiments-search", content=f'{{"limit":{deep}}}')
    assert typed.status_code == 400
    assert error_of(typed)["error"] == "json: cannot unmarshal array into Go value of type int32"
    # one level more is Go's syntax error
    deeper = world.api.post("/api/v1/experiments-search", content=f'{{"x":[{deep}]}}')
    assert deeper.status_code == 400
    assert error_of(deeper)["error"] == "invalid character '[' exceeded max depth"
