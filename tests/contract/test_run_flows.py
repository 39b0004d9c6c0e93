"""The official client's and the ``det`` CLI's flows on created experiments whose trials
detorm.local runs by simulation (``_simulation.py``): create, wait, kill, continue, follow the
first trial's logs, list trials, read metrics and checkpoints, download a checkpoint, start a
TensorBoard.

Trials train ``BATCHES_PER_SECOND * SCALE`` batches a second (``detorm serve --time-scale``), so
a 1,000-batch trial ends within a fraction of a second and a ``LONG`` one never during a test.
Waiting is done by the clients themselves (``Experiment.wait``, followed log streams), never by
sleeping. Flows that follow a log stream run against a master in a thread of the test process
whose streams end as soon as the trial does (``quick_logs``; ``detorm serve`` keeps the
master's 5 s termination grace); the others run against ``detorm serve``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from determined.experimental import Determined
from determined.experimental.client import (
    CheckpointState,
    DownloadMode,
    ExperimentState,
    Trial,
    TrialState,
)

from detorm.local import LocalMaster
from detorm.local._simulation import tensorboard_directory, training_metrics, validation_metrics
from detorm.local._storage import CheckpointStorage
from tests.contract.test_det_cli import csv_rows, det, ok, table_rows
from tests.local.simulation import durations, quick_logs

SCALE = 20.0  # 10,000 batches a second
LONG = 10**9  # batches: never reached during a test
BATCHES = 1000
PERIOD = 500  # validation and checkpoint period, in batches
UNIT = 100  # scheduling_unit: a training report every 100 batches
POLL = 0.05  # the official client's polling interval (its default is 5 s)


def config(max_length: int, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "run-flows",
        "entrypoint": "model_def:Trial",
        "searcher": {"name": "single", "metric": "validation_loss", "max_length": max_length},
        "hyperparameters": {"lr": 0.1},
        "scheduling_unit": UNIT,
        "min_validation_period": {"batches": PERIOD},
        "min_checkpoint_period": {"batches": PERIOD},
    }
    base.update(changes)
    return base


def grid(max_length: int) -> dict[str, Any]:
    return config(
        max_length,
        searcher={"name": "grid", "metric": "validation_loss", "max_length": max_length},
        hyperparameters={"lr": {"type": "categorical", "vals": [0.1, 0.2]}},
    )


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "model_def.py").write_text("class Trial:\n    pass\n")
    return directory


@pytest.fixture
def served(tmp_path: Path) -> Iterator[LocalMaster]:
    """``detorm serve --time-scale 20`` as a child process."""
    db_path = tmp_path / "served" / "local.sqlite"
    with LocalMaster(db_path=db_path, process=True, time_scale=SCALE) as master:
        yield master


@pytest.fixture
def threaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalMaster]:
    """The same master in a thread, its followed log streams ending with their trial and its
    TensorBoards starting at once."""
    durations(monkeypatch, pulling=0.0, starting=0.0)
    quick_logs(monkeypatch)
    db_path = tmp_path / "threaded" / "local.sqlite"
    with LocalMaster(db_path=db_path, process=False, time_scale=SCALE) as master:
        yield master


def official(master: LocalMaster) -> Determined:
    return Determined(master.url, user="determined", password="")


def cli(master: LocalMaster, config_dir: Path, *args: str) -> str:
    return ok(det(master, config_dir, *args))  # type: ignore[arg-type]


def login(master: LocalMaster, config_dir: Path) -> None:
    ok(det(master, config_dir, "user", "login", "determined", stdin="\n"))  # type: ignore[arg-type]


def metric_rows(trial: Trial, group: str) -> list[tuple[int, dict[str, Any]]]:
    return [(m.steps_completed, m.metrics) for m in trial.iter_metrics(group)]


# --- the official client -------------------------------------------------------------------------
def test_create_wait_and_read_the_metrics_and_checkpoints(
    served: LocalMaster, model_dir: Path, tmp_path: Path
) -> None:
    client = official(served)
    exp = client.create_experiment(config(BATCHES), model_dir)
    first = exp.await_first_trial(interval=POLL)
    assert exp.wait(interval=POLL) == ExperimentState.COMPLETED
    assert exp.progress == 1.0
    first.reload()
    assert first.state == TrialState.COMPLETED and first.hparams == {"lr": 0.1}
    assert metric_rows(first, "training") == [
        (batches, training_metrics(first.hparams, first.id, batches))
        for batches in range(UNIT, BATCHES + 1, UNIT)
    ]
    validations = {b: validation_metrics(first.hparams, first.id, b) for b in (PERIOD, BATCHES)}
    assert metric_rows(first, "validation") == list(validations.items())

    checkpoints = first.list_checkpoints()
    assert sorted(c.metadata["steps_completed"] for c in checkpoints) == [PERIOD, BATCHES]
    assert {c.state for c in checkpoints} == {CheckpointState.COMPLETED}
    (best,) = exp.list_checkpoints(max_results=1)  # by the searcher's metric, smaller is better
    best_batches = min(validations, key=lambda b: validations[b]["validation_loss"])
    assert best.metadata["steps_completed"] == best_batches
    assert best.training is not None and best.training.trial_id == first.id

    stored = CheckpointStorage.of(served.db_path).root / best.uuid
    expected = {p.name: p.read_bytes() for p in stored.iterdir()}
    assert set(expected) == set(best.resources or {}) and expected
    for mode in (DownloadMode.MASTER, DownloadMode.DIRECT):
        target = tmp_path / f"download-{mode}"
        best.download(str(target), mode=mode)
        assert {p.name: p.read_bytes() for p in target.iterdir()} == expected


def test_kill_cancels_a_running_experiment(served: LocalMaster, model_dir: Path) -> None:
    client = official(served)
    exp = client.create_experiment(config(LONG), model_dir)
    trial = exp.await_first_trial(interval=POLL)
    exp.kill()
    assert exp.wait(interval=POLL) == ExperimentState.CANCELED
    trial.reload()
    assert trial.state == TrialState.CANCELED


def test_trial_kill_ends_one_trial_of_a_search(threaded: LocalMaster, model_dir: Path) -> None:
    client = official(threaded)
    exp = client.create_experiment(grid(LONG), model_dir)
    exp.await_first_trial(interval=POLL)
    killed, other = sorted(exp.list_trials(), key=lambda t: t.id)
    killed.kill()
    # a followed log stream ends when its trial has ended
    assert list(killed.iter_logs(follow=True))
    killed.reload()
    assert killed.state == TrialState.CANCELED
    other.reload()
    exp.reload()
    assert other.state in (TrialState.ACTIVE, TrialState.RUNNING)
    assert exp.state in (ExperimentState.ACTIVE, ExperimentState.RUNNING)
    exp.kill()
    assert exp.wait(interval=POLL) == ExperimentState.CANCELED
    other.reload()
    assert other.state == TrialState.CANCELED


# --- the det CLI ----------------------------------------------------------------------------------
def test_det_create_follows_the_first_trial_until_it_ends(
    threaded: LocalMaster, det_config: Path, model_dir: Path, tmp_path: Path
) -> None:
    login(threaded, det_config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(BATCHES)))
    out = cli(threaded, det_config, "experiment", "create", str(path), str(model_dir),
              "--follow-first-trial")  # fmt: skip
    created = re.search(r"^Created experiment (\d+)$", out, re.MULTILINE)
    following = re.search(r"^Following first trial with ID (\d+)\n", out, re.MULTILINE)
    assert created is not None and following is not None, out
    trial_id = int(following.group(1))
    ended = f"Trial log stream ended. To reopen log stream, run: det trial logs -f {trial_id}\n"
    assert out.endswith(ended)
    # the stream ended because the trial did; what it printed is the trial's whole log
    trial = official(threaded).get_trial(trial_id)
    assert trial.state == TrialState.COMPLETED
    printed = out[following.end() : -len(ended)]
    assert printed == "".join(trial.iter_logs()) and printed

    rows = csv_rows(cli(threaded, det_config, "experiment", "list-trials", created.group(1),
                        "--csv"))  # fmt: skip
    assert [(row["Trial ID"], row["State"], row["# of Batches"]) for row in rows] == [
        (str(trial_id), "COMPLETED", str(BATCHES))
    ]
    assert json.loads(rows[0]["H-Params"]) == {"lr": 0.1}


def test_det_continue_trains_a_completed_trial_further(
    threaded: LocalMaster, det_config: Path, model_dir: Path
) -> None:
    login(threaded, det_config)
    client = official(threaded)
    exp = client.create_experiment(config(BATCHES), model_dir)
    trial = exp.await_first_trial(interval=POLL)
    assert exp.wait(interval=POLL) == ExperimentState.COMPLETED
    out = cli(threaded, det_config, "experiment", "continue", str(exp.id),
              "--config", f"searcher.max_length={2 * BATCHES}", "--follow-first-trial")  # fmt: skip
    # the CLI waits for a trial, then follows the first one's logs until it has ended again
    assert out.startswith(f"Continued experiment {exp.id}\n"), out
    assert f"\nFollowing first trial with ID {trial.id}\n" in out
    assert out.endswith(f"det trial logs -f {trial.id}\n")
    assert exp.wait(interval=POLL) == ExperimentState.COMPLETED
    trial.reload()
    assert trial.state == TrialState.COMPLETED
    # the trial resumed from its checkpoint at 1,000 batches and reported on from there
    assert [step for step, _ in metric_rows(trial, "training")] == list(
        range(UNIT, 2 * BATCHES + 1, UNIT)
    )
    assert sorted(c.metadata["steps_completed"] for c in trial.list_checkpoints()) == [
        PERIOD, BATCHES, BATCHES + PERIOD, 2 * BATCHES,
    ]  # fmt: skip


def test_det_tensorboard_on_a_created_experiment(
    threaded: LocalMaster, det_config: Path, model_dir: Path
) -> None:
    login(threaded, det_config)
    client = official(threaded)
    exp = client.create_experiment(config(BATCHES), model_dir)
    trial = exp.await_first_trial(interval=POLL)
    assert exp.wait(interval=POLL) == ExperimentState.COMPLETED
    out = cli(threaded, det_config, "tensorboard", "start", str(exp.id), "--no-browser")
    launched = re.match(r"Launched tensorboard \(id: (\S+),", out)
    assert launched is not None, out
    board_id = launched.group(1)
    assert out.splitlines()[-1].startswith(
        f"Tensorboard is running at: {threaded.url}/det/interactive/{board_id}/"
    )
    (row,) = table_rows(cli(threaded, det_config, "tensorboard", "list"))
    assert (row["id"], row["state"], row["experimentIds"]) == (board_id, "RUNNING", f"[{exp.id}]")
    # what it would show: the trial's event files; the client deletes them
    events = tensorboard_directory(CheckpointStorage.of(threaded.db_path).root, exp.id, trial.id)
    assert [p.name.startswith("events.out.tfevents.") for p in events.iterdir()] == [True]
    exp.delete_tensorboard_files()
    assert not events.exists() or not any(events.iterdir())
