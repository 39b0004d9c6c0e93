"""The demo cluster: deterministic from its seed, and shaped like a real team's cluster."""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from determined.common.api import bindings

from detorm.local import Database, LocalMaster, Seeder
from detorm.local._demo import seed_demo
from tests.conftest import copy_database, login
from tests.local.test_seed import dump


@pytest.fixture(scope="module")
def demo_db(demo_database: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the test process's demo database (``seed_demo`` on a new database)."""
    return copy_database(demo_database, tmp_path_factory.mktemp("demo"))


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def test_the_demo_is_a_function_of_its_seed(demo_db: Path, tmp_path: Path) -> None:
    again, other = Database(tmp_path / "again.sqlite"), Database(tmp_path / "other.sqlite")
    seed_demo(again, seed=0)
    seed_demo(other, seed=1)
    again.dispose()
    other.dispose()
    assert dump(tmp_path / "again.sqlite") == dump(demo_db)
    assert dump(tmp_path / "other.sqlite")["experiments"] != dump(demo_db)["experiments"]


def test_the_demo_seeds_only_an_empty_cluster(tmp_path: Path) -> None:
    database = Database(tmp_path / "busy.sqlite")
    with Seeder(database) as seed:
        seed.experiment(name="mine")
    seed_demo(database)
    assert query(tmp_path / "busy.sqlite", "SELECT name FROM experiments") == [("mine",)]
    database.dispose()


def test_experiments_are_varied(demo_db: Path) -> None:
    (count,) = query(demo_db, "SELECT count(*) FROM experiments")[0]
    assert 200 <= count <= 400
    states = dict(query(demo_db, "SELECT state, count(*) FROM experiments GROUP BY state"))
    assert set(states) == {"ACTIVE", "PAUSED", "COMPLETED", "CANCELED", "ERROR"}
    (archived,) = query(demo_db, "SELECT count(*) FROM experiments WHERE archived")[0]
    assert 1 <= archived <= 25
    assert query(
        demo_db,
        "SELECT count(*) FROM experiments WHERE archived AND state NOT IN ('COMPLETED', 'CANCELED', 'ERROR')",
    ) == [(0,)]
    searchers = {row[0] for row in query(demo_db, "SELECT searcher_type FROM experiments")}
    assert searchers == {"single", "random", "grid", "adaptive_asha"}
    labels = Counter(
        label
        for (text,) in query(demo_db, "SELECT labels FROM experiments")
        for label in json.loads(text)
    )
    assert len(labels) >= 5
    assert query(demo_db, "SELECT count(*) FROM experiments WHERE notes != ''")[0][0] > 10
    assert query(demo_db, "SELECT count(*) FROM experiments WHERE description != ''")[0][0] > 10
    assert query(demo_db, "SELECT count(*) FROM experiments WHERE parent_id IS NOT NULL")[0][0] > 0
    owners = {
        row[0]
        for row in query(
            demo_db,
            "SELECT DISTINCT u.username FROM experiments e JOIN users u ON u.id = e.owner_id",
        )
    }
    assert owners == {"alice", "bob", "carol", "dana"}
    workspaces = {row[0] for row in query(demo_db, "SELECT name FROM workspaces")}
    assert {"Computer Vision", "Language", "Research"} <= workspaces
    assert query(demo_db, "SELECT count(*) FROM projects WHERE archived")[0][0] == 1


def test_search_spaces_and_sampled_hparams(demo_db: Path) -> None:
    kinds: Counter[str] = Counter()
    nested = 0
    for config_text, hparams_text in query(
        demo_db,
        "SELECT e.config, t.hparams FROM trials t JOIN experiments e ON e.id = t.experiment_id",
    ):
        space, hparams = json.loads(config_text)["hyperparameters"], json.loads(hparams_text)
        nested += "type" not in space["model"]
        for name, spec in space.items():
            check_sample(spec, hparams[name], kinds)
    assert set(kinds) == {"const", "categorical", "int", "double", "log"}
    assert nested > 0


def check_sample(spec: dict[str, Any], value: Any, kinds: Counter[str]) -> None:
    kind = spec.get("type")
    if kind is None:  # a nested space
        for name, inner in spec.items():
            check_sample(inner, value[name], kinds)
        return
    kinds[kind] += 1
    if kind == "const":
        assert value == spec["val"]
    elif kind == "categorical":
        assert value in spec["vals"]
    elif kind in ("int", "double"):
        assert spec["minval"] <= value <= spec["maxval"]
    else:
        assert (
            spec["base"] ** spec["minval"] * 0.999
            <= value
            <= spec["base"] ** spec["maxval"] * 1.001
        )


def test_metrics_checkpoints_and_logs(demo_db: Path) -> None:
    assert query(
        demo_db,
        "SELECT count(*) FROM trials WHERE id NOT IN (SELECT trial_id FROM metrics WHERE metric_group = 'validation')",
    ) == [(0,)]
    losses = [
        json.loads(text)["avg_metrics"]["loss"]
        for (text,) in query(demo_db, "SELECT metrics FROM metrics WHERE metric_group = 'training'")
    ]
    assert "NaN" in losses  # some runs diverge
    numbers = [v for v in losses if v != "NaN"]
    assert all(0 < v < 5 for v in numbers) and len(numbers) > 0.9 * len(losses)
    assert query(demo_db, "SELECT count(*) FROM checkpoints WHERE state = 'DELETED'")[0][0] > 0
    assert query(demo_db, "SELECT count(*) FROM trials WHERE checkpoint_count = 0")[0][0] == 0
    levels = {row[0] for row in query(demo_db, "SELECT DISTINCT level FROM trial_logs")}
    assert {
        "LOG_LEVEL_INFO",
        "LOG_LEVEL_WARNING",
        "LOG_LEVEL_ERROR",
        "LOG_LEVEL_DEBUG",
        "LOG_LEVEL_UNSPECIFIED",
    } <= levels
    assert {row[0] for row in query(demo_db, "SELECT DISTINCT rank_id FROM trial_logs")} == {
        None,
        0,
        1,
    }
    assert {row[0] for row in query(demo_db, "SELECT DISTINCT source FROM trial_logs")} == {
        "master",
        "agent",
    }


def test_learning_curves_decrease(demo_db: Path) -> None:
    improved = total = 0
    rows = query(
        demo_db,
        "SELECT m.trial_id, m.metrics FROM metrics m JOIN trials t ON t.id = m.trial_id"
        " WHERE t.state = 'COMPLETED' AND m.metric_group = 'training' ORDER BY m.trial_id, m.total_batches",
    )
    by_trial: dict[int, list[Any]] = {}
    for trial, text in rows:
        by_trial.setdefault(trial, []).append(json.loads(text)["avg_metrics"]["loss"])
    for values in by_trial.values():
        if "NaN" not in values:
            total += 1
            improved += values[-1] < values[0]
    assert total > 100 and improved / total > 0.95


def test_models_are_registered_from_checkpoints(demo_db: Path) -> None:
    assert query(demo_db, "SELECT count(*) FROM models")[0][0] >= 5
    versions = query(
        demo_db,
        "SELECT v.checkpoint_uuid, c.state FROM model_versions v JOIN checkpoints c ON c.uuid = v.checkpoint_uuid",
    )
    assert len(versions) >= 5 and {state for _, state in versions} == {"COMPLETED"}
    assert query(
        demo_db,
        "SELECT count(*) FROM model_versions WHERE checkpoint_uuid NOT IN (SELECT uuid FROM checkpoints)",
    ) == [(0,)]


@pytest.fixture(scope="module")
def demo_master(
    demo_database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMaster]:
    # demo=True over a copy of the demo database: what it would seed on a new database
    db_path = copy_database(demo_database, tmp_path_factory.mktemp("demo-master"))
    with LocalMaster(db_path=db_path, demo=True, process=False) as master:
        yield master


def test_users_log_in_with_their_passwords(demo_master: LocalMaster) -> None:
    for username, password in (("alice", "alice-pw"), ("dana", "dana-pw"), ("carol", "")):
        client = login(demo_master.url, username, password)
        try:
            me = client.get("/api/v1/auth/user").json()["user"]
            assert (me["username"], me["admin"]) == (username, username == "dana")
        finally:
            client.close()
    wrong = httpx.post(
        f"{demo_master.url}/api/v1/auth/login", json={"username": "alice", "password": ""}
    )
    assert wrong.status_code == 401


def test_the_demo_streams(demo_master: LocalMaster) -> None:
    client = login(demo_master.url)
    try:
        metrics = client.get(
            "/api/v1/trials/metrics/trial_metrics",
            params={"trialIds": [1, 2, 3], "group": "validation"},
        )
        assert metrics.status_code == 200
        parsed = [
            bindings.v1GetMetricsResponse.from_json(json.loads(line)["result"])
            for line in metrics.text.splitlines()
        ]
        assert [m.trialId for p in parsed for m in p.metrics][0] == 1
        assert all(not math.isnan(float(m.totalBatches)) for p in parsed for m in p.metrics)
        logs = client.get("/api/v1/trials/1/logs", params={"limit": 5})
        lines = [
            bindings.v1TrialLogsResponse.from_json(json.loads(line)["result"])
            for line in logs.text.splitlines()
        ]
        assert len(lines) == 5 and "Scheduling Trial 1" in lines[0].message
    finally:
        client.close()
