"""``detorm show``, ``detorm metrics`` and ``detorm logs``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import detorm
from detorm._plan._query import record
from detorm._terminal._output import jsonable
from detorm.local import Seeder
from tests.cli.conftest import Run
from tests.sdk.conftest import Cluster


@pytest.fixture
def session(cluster: Cluster, tmp_path: Path) -> detorm.Session:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return detorm.Session(cluster.url, user="determined", password="", environ=env, cache=False)


def test_show_prints_every_loaded_field(
    run: Run, cluster: Cluster, session: detorm.Session
) -> None:
    trial_id = cluster.trials["resnet-wide"][1]
    expected = jsonable(record(session.get(detorm.Trial, trial_id)))
    as_json = run("show", "trial", str(trial_id), "--json")
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out) == expected
    table = run("show", "trial", str(trial_id))
    lines = dict(
        line.split(None, 1) if " " in line else (line, "") for line in table.out.splitlines()
    )
    assert list(lines) == list(expected)
    assert lines["id"] == str(trial_id) and lines["state"] == "COMPLETED"
    assert lines["hparams"] == '{"lr":0.02,"optimizer":{"momentum":0.9}}'


def test_show_takes_each_resource_s_key(
    run: Run, cluster: Cluster, session: detorm.Session
) -> None:
    experiment = run("show", "experiment", str(cluster.experiments["bert-base"]), "--json")
    shown = json.loads(experiment.out)
    assert shown["name"] == "bert-base" and shown["config"]["name"] == "bert-base"
    uuid = session.query(detorm.Checkpoint).filter(experiment_id=1).first()
    assert uuid is not None
    checkpoint = run("show", "checkpoints", uuid.uuid, "--json")
    assert json.loads(checkpoint.out)["uuid"] == uuid.uuid
    user = run("show", "user", "3")
    assert user.out.splitlines()[:2] == ["id            3", "username      alice"]


def test_show_refuses_a_bad_key_and_reports_a_missing_object(run: Run) -> None:
    bad = run("show", "trial", "twelve")
    assert (bad.code, bad.out) == (2, "")
    assert bad.err == "detorm show: Trial id must be an int, not 'twelve'\n"
    missing = run("show", "trial", "99999")
    assert missing.code == 1 and missing.out == ""
    assert missing.err.startswith("detorm show: NotFound: ") and missing.err.count("\n") == 1


def test_metrics_of_several_trials(run: Run, cluster: Cluster, session: detorm.Session) -> None:
    trials = cluster.trials["resnet-base"]
    expected = session.metrics(trials, "validation").to_records()
    assert len(expected) == 6
    as_csv = run("metrics", *map(str, trials), "--group", "validation", "--csv")
    assert as_csv.code == 0, as_csv.err
    rows = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert list(rows[0]) == ["trial_id", "trial_run_id", "step", "time", "validation_loss"]
    assert [(int(r["trial_id"]), int(r["step"]), float(r["validation_loss"])) for r in rows] == [
        (r["trial_id"], r["step"], r["validation_loss"]) for r in expected
    ]
    as_json = run("metrics", str(trials[0]), "-g", "training", "--json")
    assert [row["loss"] for row in as_json.json_lines()] == pytest.approx([0.99, 0.55, 0.341])
    table = run("metrics", str(trials[0]))
    assert table.out.splitlines()[0].split() == [
        "TRIAL_ID", "TRIAL_RUN_ID", "STEP", "TIME", "VALIDATION_LOSS",
    ]  # fmt: skip
    assert len(table.out.splitlines()) == 4


def test_metrics_of_a_group_without_reports(run: Run, cluster: Cluster) -> None:
    result = run("metrics", str(cluster.trials["bert-tiny"][0]))
    assert result.code == 0 and result.out == ""
    assert result.err == "no validation reports\n"


@pytest.fixture
def logged(fresh_cluster: Cluster) -> int:
    trial = fresh_cluster.trials["resnet-base"][0]
    with Seeder(fresh_cluster.master.database) as s:
        s.logs(trial, ["epoch 1 loss=0.9\n", "saving checkpoint\n", "epoch 2 loss=0.5\n"])
        s.logs(trial, ["disk almost full\n"], level="LOG_LEVEL_WARNING")
    return trial


def test_logs_search_follow_and_json(run_fresh: Run, logged: int) -> None:
    every = run_fresh("logs", str(logged))
    assert every.code == 0, every.err
    assert every.out.splitlines() == [
        "epoch 1 loss=0.9", "saving checkpoint", "epoch 2 loss=0.5", "disk almost full",
    ]  # fmt: skip
    # The trial has ended: --follow returns once everything was read.
    searched = run_fresh("logs", str(logged), "--follow", "--search", "loss")
    assert searched.out.splitlines() == ["epoch 1 loss=0.9", "epoch 2 loss=0.5"]
    warnings = run_fresh("logs", str(logged), "--level", "WARNING", "--json")
    [entry] = warnings.json_lines()
    assert entry["message"] == "disk almost full\n" and entry["level"] == "WARNING"
    assert entry["trial_id"] == logged
    assert run_fresh("logs", str(logged), "--tail", "1").out == "disk almost full\n"


def test_logs_of_an_unknown_trial_or_task(run_fresh: Run) -> None:
    for target in ("4242", "no-such-task"):
        result = run_fresh("logs", target)
        assert result.code == 1 and result.err.startswith("detorm logs: NotFound: ")
        assert result.err.count("\n") == 1
