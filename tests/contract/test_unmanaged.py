"""An unmanaged trial: a ``determined.experimental.core_v2`` script (the official client, in its own
process) reports to ``detorm serve``; detorm reads back what it reported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import detorm
from detorm import Experiment
from detorm.local import LocalMaster

SCRIPT = textwrap.dedent(
    """
    import sys

    from determined import core
    from determined.experimental import Determined, core_v2

    master, storage = sys.argv[1], sys.argv[2]
    client = Determined(master, user="determined", password="")
    config = core_v2.Config(
        name="unmanaged-contract",
        hparams={"lr": 0.01},
        checkpoint_storage=storage,
        searcher={"name": "single", "metric": "validation_loss"},
    )
    # no TensorFlow or PyTorch in the test venv: no automatic TensorBoard writer
    core_v2.init(config=config, client=client, tensorboard_mode=core.TensorboardMode.MANUAL)
    for step in (1, 2, 3):
        core_v2.train.report_training_metrics(steps_completed=step, metrics={"loss": 1.0 / step})
    core_v2.train.report_validation_metrics(steps_completed=3, metrics={"validation_loss": 0.25})
    core_v2.train.report_metrics("inference", steps_completed=3, metrics={"latency": 12.5})
    with core_v2.checkpoint.store_path({"steps_completed": 3}) as (path, uuid):
        (path / "weights.txt").write_text("weights")
    core_v2.train.report_metrics(
        "gpu", steps_completed=3, metrics={"agent-1": {"GPU-0": {"gpu_util": 0.5}}}
    )
    core_v2.train.set_status("saving")
    assert core_v2.train.set_metadata({"dataset": {"rows": 10}}) == {"dataset": {"rows": 10}}
    assert core_v2.train.get_metadata() == {"dataset": {"rows": 10}}
    trial_id = core_v2.info.trial.trial_id
    print("training done")  # shipped to the trial's logs
    core_v2.close()  # the metrics shipper is drained
    # the official client reads a custom group back, and no profiling report (the master
    # streams none: total_batches NULL)
    trial = client.get_trial(trial_id)
    inference = [(m.group, m.steps_completed, m.metrics) for m in trial.iter_metrics("inference")]
    assert inference == [("inference", 3, {"latency": 12.5})], inference
    assert list(trial.iter_metrics("gpu")) == []
    print("trained", trial_id, uuid)
    """
)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[LocalMaster]:
    with LocalMaster(db_path=tmp_path / "db" / "local.sqlite", process=True) as served:
        yield served


def test_a_core_v2_script_reports_and_detorm_reads_it_back(
    master: LocalMaster, tmp_path: Path, det_config: Path
) -> None:
    storage = tmp_path / "storage"
    env = {**os.environ, "DET_DEBUG_CONFIG_PATH": str(det_config)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, master.url, str(storage)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _, trial_id, checkpoint_uuid = done.stdout.strip().splitlines()[-1].split()

    session = detorm.connect(master.url, user="determined", password="")
    experiment = session.get(Experiment, session.get(detorm.Trial, int(trial_id)).experiment_id)
    assert experiment.unmanaged and experiment.name == "unmanaged-contract"
    assert experiment.state.name == "COMPLETED"
    (trial,) = list(experiment.trials)
    assert trial.id == int(trial_id) and trial.hparams == {"lr": 0.01}
    assert trial.state.name == "COMPLETED"
    assert [(r.step, r.values) for r in trial.metrics("training")] == [
        (1, {"loss": 1.0}), (2, {"loss": 0.5}), (3, {"loss": 1.0 / 3}),
    ]  # fmt: skip
    assert [(r.step, r.values) for r in trial.metrics("validation")] == [
        (3, {"validation_loss": 0.25})
    ]
    assert [(r.step, r.values) for r in trial.metrics("inference")] == [(3, {"latency": 12.5})]
    # a profiler group, which GetMetrics never returns, read back through the profiler routes
    assert [(r.step, r.values) for r in trial.metrics("gpu")] == [
        (None, {"agent-1": {"GPU-0": {"gpu_util": 0.5}}})
    ]
    (checkpoint,) = list(trial.checkpoints)
    assert checkpoint.uuid == checkpoint_uuid
    assert (storage / checkpoint_uuid / "weights.txt").read_text() == "weights"
    assert trial.runner_state == "saving"
    # what the script printed while core_v2 ran is its trial's log
    assert any("training done" in line.message for line in trial.logs())


GROUPED_SCRIPT = textwrap.dedent(
    """
    import sys

    from determined import core
    from determined.experimental import Determined, core_v2

    master, storage, experiment, trial_key, lr, step = sys.argv[1:7]
    client = Determined(master, user="determined", password="")
    config = core_v2.Config(
        name=f"grouped-{lr}-{step}",
        hparams={"lr": float(lr)},
        checkpoint_storage=storage,
        searcher={"name": "single", "metric": "loss"},
        external_experiment_id=experiment,
        external_trial_id=None if trial_key == "-" else trial_key,
    )
    core_v2.init(config=config, client=client, tensorboard_mode=core.TensorboardMode.MANUAL)
    resumed_from = core_v2.info.latest_checkpoint
    core_v2.train.report_training_metrics(steps_completed=int(step), metrics={"loss": float(lr)})
    with core_v2.checkpoint.store_path({"steps_completed": int(step)}) as (path, uuid):
        (path / "step.txt").write_text(step)
    experiment_id, trial_id = core_v2.info.trial.experiment_id, core_v2.info.trial.trial_id
    core_v2.close()
    print("trained", experiment_id, trial_id, uuid, resumed_from)
    """
)


def test_core_v2_scripts_with_an_external_experiment_id_share_one_experiment(
    master: LocalMaster, tmp_path: Path, det_config: Path
) -> None:
    """``external_experiment_id`` groups runs into one experiment (PutExperiment); an
    ``external_trial_id`` as well resumes its trial from the latest checkpoint (PutTrial)."""
    storage = tmp_path / "storage"
    env = {**os.environ, "DET_DEBUG_CONFIG_PATH": str(det_config)}

    def run(trial_key: str, lr: str, step: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", GROUPED_SCRIPT, master.url, str(storage), "search-1",
             trial_key, lr, step],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1].split()[1:]

    exp_a, plain_trial, _, fresh = run("-", "0.1", "1")
    exp_b, resumed_trial, first_uuid, none_yet = run("resume-me", "0.2", "1")
    exp_c, again_trial, second_uuid, resumed_from = run("resume-me", "0.2", "2")
    assert exp_a == exp_b == exp_c and fresh == none_yet == "None"
    assert again_trial == resumed_trial != plain_trial
    assert resumed_from == first_uuid != second_uuid

    session = detorm.connect(master.url, user="determined", password="")
    experiment = session.get(Experiment, int(exp_a))
    # each PUT replaced the config: the name is the last run's
    assert experiment.unmanaged and experiment.name == "grouped-0.2-2"
    [listed] = [e for e in session.query(Experiment) if e.id == int(exp_a)]
    assert listed.external_experiment_id == "search-1"
    by_id = {trial.id: trial for trial in experiment.trials}
    assert sorted(by_id) == sorted([int(plain_trial), int(resumed_trial)])
    assert by_id[int(plain_trial)].hparams == {"lr": 0.1}
    resumed = by_id[int(resumed_trial)]
    assert resumed.hparams == {"lr": 0.2}
    assert [(r.step, r.values) for r in resumed.metrics("training")] == [
        (1, {"loss": 0.2}), (2, {"loss": 0.2}),
    ]  # fmt: skip
    assert sorted(c.uuid for c in resumed.checkpoints) == sorted([first_uuid, second_uuid])
