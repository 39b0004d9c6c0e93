"""Metrics of any group a trial reports (custom groups next to training and validation), the
groups and names a trial or an experiment has, in both APIs against detorm.local."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from detorm.local import LocalMaster, Seeder
from detorm.local._routes import metrics as local_metrics
from tests.sdk.apis import MODES, Api, Mode


@dataclass
class Groups:
    master: LocalMaster
    api: Api
    experiment: int
    trials: list[int]
    running: int  # a trial of a running experiment, whose names may still grow


@pytest.fixture(params=MODES)
def groups(request: pytest.FixtureRequest, environ: dict[str, str]) -> Iterator[Groups]:
    mode: Mode = request.param
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            workspace = seed.workspace("w")
            project = seed.project("p", workspace=workspace)
            experiment = seed.experiment(project=project, name="custom", searcher="random")
            trials = [seed.trial(experiment), seed.trial(experiment)]
            for index, trial in enumerate(trials):
                seed.metrics(trial, "training", [(10, {"loss": 1.0 + index})])
                seed.metrics(trial, "validation", [(10, {"validation_loss": 0.5})])
                seed.metrics(
                    trial, "inference",
                    [(10, {"accuracy": 0.5 + index}), (20, {"accuracy": math.nan, "f1": 0.25})],
                )  # fmt: skip
            seed.metrics(trials[1], "profiling", [(5, {"step_time": 0.125})])
            live = seed.experiment(project=project, name="live", state="ACTIVE")
            running = seed.trial(live)
            seed.metrics(running, "test", [(1, {"score": 2.0})])
        with Api(mode, master.url, environ, cache=None) as api:
            yield Groups(master, api, experiment, trials, running)


def test_a_custom_group_reads_back(groups: Groups) -> None:
    api = groups.api
    first, second = (api(api.session.get(api.Trial, t)) for t in groups.trials)
    reports = api.list(first.metrics("inference"))
    assert [(r.step, r.group, r.values["accuracy"]) for r in reports[:1]] == [
        (10, "inference", 0.5)
    ]
    assert math.isnan(reports[1].values["accuracy"]) and reports[1].values["f1"] == 0.25
    # many trials in one stream, trial after trial
    both = api.list(api.session.metrics([first, second], "inference"))
    assert [(r.trial_id, r.step) for r in both] == [
        (first.id, 10), (first.id, 20), (second.id, 10), (second.id, 20),
    ]  # fmt: skip
    # a group named "profiling" is a custom group like any other
    assert [r.values for r in api.list(second.metrics("profiling"))] == [{"step_time": 0.125}]
    assert api.list(first.metrics("profiling")) == []


def test_trial_metric_groups_are_its_own(groups: Groups) -> None:
    api = groups.api
    first, second = (api(api.session.get(api.Trial, t)) for t in groups.trials)
    expected = {
        "inference": ["accuracy", "f1"], "training": ["loss"], "validation": ["validation_loss"],
    }  # fmt: skip
    assert api(first.metric_groups()) == expected
    assert api(second.metric_groups()) == {**expected, "profiling": ["step_time"]}


def test_trial_metric_groups_are_read_again(groups: Groups) -> None:
    api = groups.api
    trial = api(api.session.get(api.Trial, groups.running))
    assert api(trial.metric_groups()) == {"test": ["score"]}
    with Seeder(groups.master.database) as seed:
        seed.metrics(groups.running, "test", [(2, {"recall": 1.0})])
    assert api(trial.metric_groups()) == {"test": ["recall", "score"]}


def test_experiment_metric_names(groups: Groups, monkeypatch: pytest.MonkeyPatch) -> None:
    # the master's stream waits 30 s between messages while an experiment runs: detorm.local's
    # wait is shortened so that the server stops soon after the client has closed the stream
    monkeypatch.setattr(local_metrics, "DEFAULT_METRICS_STREAM_PERIOD", 0.05)
    api = groups.api
    experiment = api(api.session.get(api.Experiment, groups.experiment))
    assert api(experiment.metric_names()) == {
        "inference": ["accuracy", "f1"], "profiling": ["step_time"], "training": ["loss"],
        "validation": ["validation_loss"],
    }  # fmt: skip
    # a running experiment: the stream goes on, one message is read and the stream closed
    live = api(api.session.get(api.Trial, groups.running))
    experiment = api(api.session.get(api.Experiment, live.experiment_id))
    assert api(experiment.metric_names()) == {"test": ["score"]}
