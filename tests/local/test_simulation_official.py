"""The official client (``determined==0.38.1``) against a simulated experiment: it creates the
experiment, waits for it, and reads its trials' checkpoints, metrics and logs as it would on a
real master."""

from __future__ import annotations

from pathlib import Path

from determined.experimental import Determined
from determined.experimental.client import ExperimentState, TrialState

from detorm.local import LocalMaster


def test_the_official_client_sees_an_experiment_through(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_def.py").write_text("class Trial:\n    pass\n")
    config = {
        "name": "official",
        "entrypoint": "model_def:Trial",
        "searcher": {
            "name": "random", "metric": "validation_loss", "max_trials": 2, "max_length": 300,
        },
        "hyperparameters": {"lr": {"type": "double", "minval": 0.001, "maxval": 0.1}},
    }  # fmt: skip
    # a million times the default speed: the trials end as soon as they are scheduled
    with LocalMaster(process=False, time_scale=1e6) as master:
        client = Determined(master=master.url, user="determined", password="")
        experiment = client.create_experiment(config, str(model))
        assert experiment.wait(interval=0.05) == ExperimentState.COMPLETED
        trials = experiment.list_trials()
        assert len(trials) == 2
        for trial in trials:
            assert trial.state == TrialState.COMPLETED
            training = list(trial.iter_metrics("training"))
            assert [report.steps_completed for report in training] == [100, 200, 300]
            (checkpoint,) = trial.list_checkpoints()
            assert checkpoint.metadata["steps_completed"] == 300
            path = Path(checkpoint.download(str(tmp_path / checkpoint.uuid)))
            assert sorted(p.name for p in path.iterdir()) == ["metadata.json", "state_dict.pth"]
            lines = list(trial.iter_logs())  # formatted lines
            assert any("was terminated: allocation stopped early" in line for line in lines)
