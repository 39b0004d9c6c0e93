"""The Seeder's metric bookkeeping (``_metric_reports``): the bulk path writes exactly what
reporting one by one does, and both follow the master's ``addTrialMetrics``."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from detorm.local import Database, Seeder
from detorm.local import _metric_reports as reports_module
from detorm.local import _tables as t
from detorm.local._demo import seed_benchmark
from detorm.local._errors import ApiError
from detorm.local._seed import MetricReport, refresh_checkpoint_sizes
from detorm.local._summary import update_summary


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database(tmp_path / "seed.sqlite")


def trial_state(database: Database, trial: int) -> dict[str, Any]:
    """What a trial's reports left behind, with metric row ids replaced by their steps."""
    with database.transaction(write=False) as db:
        row = db.get(t.TrialRow, trial)
        assert row is not None
        rows = db.exec(
            select(t.MetricRow).where(t.MetricRow.trial_id == trial).order_by(t.MetricRow.id)
        ).all()  # type: ignore[arg-type]
        steps = {r.id: (r.metric_group, r.total_batches) for r in rows}
        exp = db.get(t.ExperimentRow, row.experiment_id)
        assert exp is not None
        return {
            "summary": row.summary_metrics,
            "total_batches": row.total_batches_processed,
            "best": steps.get(row.best_validation_id),
            "latest": steps.get(row.latest_validation_id),
            "searcher_metric_value": row.searcher_metric_value,
            "rows": [
                (r.metric_group, r.trial_run_id, r.total_batches, r.end_time, r.metrics, r.archived)
                for r in rows
            ],
            "best_trial_is_this_one": exp.best_trial_id == trial,
        }


TRAINING: list[MetricReport] = [
    (10, {"loss": 2.0, "lr": 1, "epoch": 0.1}),
    (20, {"loss": 1.5, "lr": 1}),
    (30, {"loss": float("nan"), "lr": 0.5, "grad_norm": 3.0}),
    (40, {"loss": 0.75, "lr": 0.5, "grad_norm": float("inf")}),
    (50, {"loss": "Infinity", "lr": 0.25}),
    (60, {"loss": 0.5}),
]
VALIDATION: list[MetricReport] = [
    (20, {"validation_loss": 0.9, "accuracy": 0.5}),
    (40, {"accuracy": 0.6}),  # no searcher metric: not the latest validation
    (60, {"validation_loss": float("nan")}),
    (80, {"validation_loss": 0.4, "accuracy": 0.8}),
    (100, {"validation_loss": 0.6}),
]
MIXED: list[MetricReport] = [(1, {"status": "ok", "value": 1.0}), (2, {"status": 3, "value": True})]


def seed_two_ways(
    database: Database, group_reports: list[tuple[str, list[MetricReport]]]
) -> tuple[int, int]:
    """The same reports, all at once in one trial and one at a time in another (each trial in
    its own experiment, so that best-trial bookkeeping is comparable)."""
    with Seeder(database) as seed:
        bulk = seed.trial(seed.experiment(name="bulk", searcher="random"))
        single = seed.trial(seed.experiment(name="single", searcher="random"))
        for group, items in group_reports:
            timed = [(s, v, _time(i)) for i, (s, v, *_) in enumerate(items)]
            seed.metrics(bulk, group, timed)
            for item in timed:
                seed.metrics(single, group, [item])
    return bulk, single


def _time(index: int) -> datetime:
    return datetime(2025, 1, 1, 0, 0, index, tzinfo=UTC)


def test_bulk_equals_one_by_one(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    one_by_one = reports_module._record_one
    slow_calls: list[object] = []

    def spy(*args: Any) -> None:
        slow_calls.append(args)
        one_by_one(*args)

    monkeypatch.setattr(reports_module, "_record_one", spy)
    bulk, single = seed_two_ways(
        database, [("training", TRAINING), ("validation", VALIDATION), ("inference", MIXED)]
    )
    assert slow_calls == []  # both took the append path: bulk as one batch, single report by report
    assert trial_state(database, bulk) == trial_state(database, single)


def test_bulk_summaries_match_the_masters_fold(database: Database) -> None:
    bulk, _ = seed_two_ways(
        database, [("training", TRAINING), ("validation", VALIDATION), ("inference", MIXED)]
    )
    expected: dict[str, Any] = {}
    for key, items in (
        ("avg_metrics", TRAINING),
        ("validation_metrics", VALIDATION),
        ("inference", MIXED),
    ):
        summary: dict[str, Any] = {}
        for _, values, *_ in items:
            update_summary(summary, {k: v for k, v in values.items()})
        expected[key] = summary
    assert json.dumps(trial_state(database, bulk)["summary"], sort_keys=True) == json.dumps(
        expected, sort_keys=True
    )
    loss = trial_state(database, bulk)["summary"]["avg_metrics"]["loss"]
    assert loss == {
        "type": "number",
        "count": 6,
        "sum": "NaN",
        "min": "NaN",
        "max": "NaN",
        "mean": "NaN",
        "last": 0.5,
    }
    assert trial_state(database, bulk)["summary"]["inference"]["status"] == {
        "type": "string",
        "last": 3,
    }


def test_validation_bookkeeping(database: Database) -> None:
    bulk, _ = seed_two_ways(database, [("validation", VALIDATION)])
    state = trial_state(database, bulk)
    assert state["best"] == ("validation", 80)  # smallest validation_loss; NaN ranks after numbers
    assert state["latest"] == ("validation", 100)
    assert state["searcher_metric_value"] == 0.4
    assert state["best_trial_is_this_one"]
    assert state["total_batches"] == 100
    assert json.loads(state["rows"][0][4]) == {
        "validation_metrics": {"accuracy": 0.5, "validation_loss": 0.9}
    }


def test_the_best_trial_of_a_search(database: Database) -> None:
    with Seeder(database) as seed:
        exp = seed.experiment(
            name="search", searcher="random", metric="accuracy", smaller_is_better=False
        )
        first, second, third = seed.trial(exp), seed.trial(exp), seed.trial(exp)

    def best() -> int | None:
        with database.transaction(write=False) as db:
            row = db.get(t.ExperimentRow, exp)
            assert row is not None
            return row.best_trial_id

    assert best() is None  # not a single-trial experiment: no best trial before a validation
    with Seeder(database) as seed:
        seed.metrics(third, "validation", [(1, {"loss": 1.0})])  # no searcher metric
    assert best() == first  # all NULL: the trigger still picks one (the lowest id here)
    with Seeder(database) as seed:
        seed.metrics(second, "validation", [(1, {"accuracy": 0.5})])
        seed.metrics(first, "validation", [(1, {"accuracy": 0.25})])
    assert best() == second  # larger is better


def test_reports_at_a_known_step_merge(database: Database) -> None:
    with Seeder(database) as seed:
        trial = seed.trial(seed.experiment(name="m"))
        seed.metrics(trial, "training", [(10, {"loss": 1.0})])
        seed.metrics(trial, "training", [(10, {"accuracy": 0.5}), (10, {"loss": 1.0})])
    state = trial_state(database, trial)
    assert [json.loads(r[4]) for r in state["rows"]] == [
        {"avg_metrics": {"accuracy": 0.5, "loss": 1.0}, "batch_metrics": None}
    ]
    # the summary counts every report, as the master's does
    assert state["summary"]["avg_metrics"]["loss"]["count"] == 2
    with pytest.raises(ApiError, match="conflicting key: loss"):
        with Seeder(database) as seed:
            seed.metrics(trial, "training", [(10, {"loss": 2.0})])


def test_a_new_run_rolls_back_later_steps(database: Database) -> None:
    with Seeder(database) as seed:
        trial = seed.trial(seed.experiment(name="r"))
        seed.metrics(
            trial, "training", [(10, {"loss": 3.0}), (20, {"loss": 2.0}), (30, {"loss": 1.0})]
        )
        seed.metrics(
            trial, "validation", [(20, {"validation_loss": 2.0}), (30, {"validation_loss": 1.0})]
        )
        seed.metrics(trial, "training", [(20, {"loss": 1.5})], trial_run_id=1)
    state = trial_state(database, trial)
    live = [
        (group, run, steps) for group, run, steps, _, _, archived in state["rows"] if not archived
    ]
    # same group: steps >= 20 of earlier runs archived; other groups: steps > 20
    assert live == [("training", 0, 10), ("validation", 0, 20), ("training", 1, 20)]
    assert state["total_batches"] == 20
    assert state["latest"] == ("validation", 20)
    assert state["summary"]["avg_metrics"]["loss"] == {
        "type": "number",
        "count": 2,
        "sum": 4.5,
        "min": 1.5,
        "max": 3.0,
        "mean": 2.25,
        "last": 1.5,
    }
    assert state["summary"]["validation_metrics"]["validation_loss"]["count"] == 1


def test_checkpoint_sizes_add_up_like_a_recompute(database: Database) -> None:
    with Seeder(database) as seed:
        exp = seed.experiment(name="c")
        trial = seed.trial(exp)
        seed.checkpoint(trial, total_batches=1, resources={"a": 10})
        seed.checkpoint(trial, total_batches=2, resources={"a": 20}, state="DELETED")
        seed.checkpoint(seed.trial(exp), total_batches=1, resources={"a": 5, "b": 1})

    def sizes() -> tuple[int, int, int, int]:
        with database.transaction(write=False) as db:
            trial_row, exp_row = db.get(t.TrialRow, trial), db.get(t.ExperimentRow, exp)
            assert trial_row is not None and exp_row is not None
            return (
                trial_row.checkpoint_size,
                trial_row.checkpoint_count,
                exp_row.checkpoint_size,
                exp_row.checkpoint_count,
            )

    incremental = sizes()
    assert incremental == (10, 1, 16, 2)
    with database.transaction(write=True) as db:
        refresh_checkpoint_sizes(db, trial)
    assert sizes() == incremental


def test_seeded_objects_stay_fresh_in_the_session(database: Database) -> None:
    with Seeder(database) as seed:
        trial = seed.trial(seed.experiment(name="fresh"))
        row = seed.db.get(t.TrialRow, trial)
        assert row is not None
        seed.metrics(trial, "validation", [(5, {"validation_loss": 0.5})])
        seed.checkpoint(trial, total_batches=5, resources={"x": 7})
        assert row.total_batches_processed == 5 and row.best_validation_id is not None
        assert row.checkpoint_size == 7
        assert row.summary_metrics["validation_metrics"]["validation_loss"]["last"] == 0.5


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the seeded tables (first-start rows and password hashes aside)."""
    with sqlite3.connect(path) as connection:
        tables = ["workspaces", "projects", "experiments", "trials", "run_hparams", "metrics", "checkpoints",
                  "trial_logs", "models", "model_versions"]  # fmt: skip
        found = {
            table: connection.execute(
                f"SELECT * FROM {table} WHERE rowid > 1 OR '{table}' NOT IN ('workspaces', 'projects') ORDER BY 1, 2"
            ).fetchall()
            for table in tables
        }
        found["users"] = connection.execute(
            "SELECT id, username, admin, active, display_name FROM users ORDER BY id"
        ).fetchall()
        return found


def test_seed_benchmark_is_small_configurable_and_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        database = Database(tmp_path / f"{name}.sqlite")
        seed_benchmark(
            database,
            workspaces=1,
            projects=2,
            experiments=3,
            trials=2,
            checkpoints=2,
            metric_rows=50,
            seed=7,
        )
        database.dispose()
    first, second = dump(tmp_path / "a.sqlite"), dump(tmp_path / "b.sqlite")
    assert first == second
    assert len(first["experiments"]) == 6 and len(first["trials"]) == 12
    assert len(first["metrics"]) == 12 * 50 and len(first["checkpoints"]) == 12 * 2
    with sqlite3.connect(tmp_path / "a.sqlite") as connection:
        groups = dict(
            connection.execute("SELECT metric_group, count(*) FROM metrics GROUP BY 1").fetchall()
        )
        assert groups == {"training": 12 * 40, "validation": 12 * 10}
        (bad,) = connection.execute(
            "SELECT count(*) FROM trials WHERE summary_metrics IS NULL OR best_validation_id IS NULL"
        ).fetchone()
        assert bad == 0
    other = Database(tmp_path / "c.sqlite")
    seed_benchmark(
        other,
        workspaces=1,
        projects=2,
        experiments=3,
        trials=2,
        checkpoints=2,
        metric_rows=50,
        seed=8,
    )
    other.dispose()
    assert dump(tmp_path / "c.sqlite")["metrics"] != first["metrics"]


def test_nan_metric_values_are_stored_as_strings(database: Database) -> None:
    with Seeder(database) as seed:
        trial = seed.trial(seed.experiment(name="n"))
        seed.metrics(trial, "training", [(1, {"loss": math.nan, "nested": {"x": -math.inf}})])
    (row,) = trial_state(database, trial)["rows"]
    assert json.loads(row[4]) == {
        "avg_metrics": {"loss": "NaN", "nested": {"x": "-Infinity"}},
        "batch_metrics": None,
    }
