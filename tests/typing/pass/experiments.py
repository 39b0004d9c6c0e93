"""Submitting, forking, continuing and waiting for experiments, as a script uses them."""

import warnings
from pathlib import Path
from typing import assert_type

import detorm
import detorm.aio as det
from detorm.errors import InvalidConfig, LaunchWarning


def script(session: detorm.Session, project: detorm.Project) -> None:
    config: detorm.ExperimentConfig = {
        "name": "mnist",
        "entrypoint": "python3 train.py",
        "searcher": {"name": "single", "metric": "loss", "max_length": 100},
    }
    exp = detorm.Experiment.create(config, "model/", project=project, session=session)
    assert_type(exp, detorm.Experiment)
    exp = detorm.Experiment.create(Path("const.yaml"), Path("model"), includes=["../lib"])
    exp = detorm.Experiment.create({"name": "x"}, template="gpus", project=3, activate=False)
    assert_type(detorm.Experiment.validate_config("const.yaml", session=session), list[str])
    try:
        detorm.Experiment.create(config)
    except InvalidConfig as err:
        assert_type(err.errors, list[str])
    warnings.simplefilter("error", LaunchWarning)
    trial = exp.await_first_trial(timeout=600)
    assert_type(trial, detorm.Trial)
    assert_type(exp.wait(), detorm.ExperimentState)
    assert_type(trial.wait(timeout=60, interval=5), detorm.TrialState)
    assert_type(trial.continue_training(max_length={"batches": 2000}), None)
    assert_type(exp.continue_training({"hyperparameters": {"lr": 0.01}}, max_length=3), None)
    child = exp.fork({"hyperparameters": {"lr": 0.1}}, project=project)
    assert_type(child, detorm.Experiment)


async def notebook(session: det.AsyncSession) -> None:
    exp = await det.Experiment.create({"name": "x"}, "model", session=session)
    assert_type(exp, det.Experiment)
    assert_type(await det.Experiment.validate_config({"name": "x"}), list[str])
    trial = await exp.await_first_trial()
    assert_type(trial, det.Trial)
    assert_type(await trial.wait(), detorm.TrialState)
    assert_type(await exp.wait(timeout=10), detorm.ExperimentState)
    await trial.continue_training()
    assert_type(await exp.fork(), det.Experiment)
