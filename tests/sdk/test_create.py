"""Submitting, validating, forking, continuing and waiting for experiments through both APIs,
against detorm.local (its CreateExperiment and ContinueExperiment, and trials trained by
simulation). What each operation sends, on canned replies, is in test_create_ops.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detorm import ExperimentState, TrialState
from detorm.errors import ContextError, InvalidConfig, InvalidState, NotFound, WaitTimeout
from tests.sdk.apis import Api


@pytest.fixture(autouse=True)
def quick_scheduling(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Allocations are pulled and started in simulated time; tests need little of it."""
    from detorm.local import _scheduler

    for name in ("PULLING_SECONDS", "STARTING_SECONDS", "KILL_SECONDS"):
        monkeypatch.setattr(_scheduler, name, 0.05)
    yield


def config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "mnist",
        "entrypoint": "python3 train.py",
        "searcher": {"name": "single", "metric": "validation_loss", "max_length": 100},
        "hyperparameters": {"lr": 0.001},
    }
    return base | changes


def model_dir(root: Path) -> Path:
    model = root / "model"
    (model / "data").mkdir(parents=True)
    (model / "train.py").write_text("print('training')\n")
    (model / "lib.py").write_text("X = 1\n")
    (model / "data" / "images.bin").write_bytes(b"\x01" * 64)
    (model / "notes.txt").write_text("not for the cluster\n")
    (model / ".detignore").write_text("data/\n*.txt\n")
    return model


def files_of(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def count(api: Api) -> int:
    return int(api(api.Experiment.query(api.session).count()))


def test_create_from_a_directory_then_wait(writer_api: Api, tmp_path: Path) -> None:
    api = writer_api
    model = model_dir(tmp_path)
    exp = api(api.Experiment.create(config(), model, session=api.session))
    assert isinstance(exp, api.Experiment) and exp.name == "mnist"
    assert exp.config["searcher"]["name"] == "single" and exp.project_id == 1
    code = api(exp.download_code(tmp_path / "code"))
    assert files_of(code) == {"lib.py": b"X = 1\n", "train.py": b"print('training')\n"}
    trial = api(exp.await_first_trial(timeout=30))
    assert isinstance(trial, api.Trial) and trial.experiment_id == exp.id
    assert api(exp.wait(timeout=60, interval=0.05)) == ExperimentState.COMPLETED
    assert exp.state == ExperimentState.COMPLETED and exp.progress == 1.0
    assert api(trial.wait(timeout=5)) == TrialState.COMPLETED
    assert trial.total_batches_processed == 100


def test_a_config_file_goes_as_its_text(writer_api: Api, tmp_path: Path) -> None:
    api = writer_api
    text = (
        "# submitted from a file\nname: from-yaml\nentrypoint: python3 train.py\n"
        "searcher:\n  name: single\n  metric: loss\n  max_length: 50\n"
    )
    path = tmp_path / "const.yaml"
    path.write_text(text)
    project = api(api.session.get(api.Project, 2))
    exp = api(api.Experiment.create(path, activate=False, project=project, session=api.session))
    assert exp.original_config == text and exp.name == "from-yaml"
    assert exp.project_id == project.id and exp.state == ExperimentState.PAUSED
    with pytest.raises(InvalidState, match="PAUSED"):  # it would never end
        api(exp.wait(timeout=5))
    api(exp.kill())


def test_bad_input(writer_api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = writer_api
    before = count(api)
    with pytest.raises(InvalidConfig) as caught:
        api(api.Experiment.create(
            config(searcher={"name": "random", "metric": "loss", "max_trials": 0}, labels=[3]),
            session=api.session,
        ))  # fmt: skip
    assert caught.value.errors == [
        "<config>.labels[0]: expected string, but got number",
        "<config>.searcher.max_trials: must be >= 1 but found 0",
    ]
    with pytest.raises(InvalidConfig, match="managed experiments require entrypoint"):
        api(api.Experiment.create({"name": "no entrypoint"}, session=api.session))
    with pytest.raises(ContextError, match="does not exist"):
        api(api.Experiment.create(config(), tmp_path / "missing", session=api.session))
    from detorm._io import _context

    # The limit is the det CLI's 95 MiB; a smaller one keeps the test's files small.
    monkeypatch.setattr(_context.read_context, "__kwdefaults__", {"limit": 20})
    with pytest.raises(ContextError, match="larger than the limit of 20 bytes"):
        api(api.Experiment.create(config(), model_dir(tmp_path), session=api.session))
    with pytest.raises(NotFound):
        api(api.Experiment.create(config(), template="no-such-template", session=api.session))
    assert count(api) == before  # nothing was created


def test_validate_config(writer_api: Api) -> None:
    api = writer_api
    before = count(api)
    assert api(api.Experiment.validate_config(config(), session=api.session)) == []
    messages = api(api.Experiment.validate_config(
        config(resources={"priority": 100}, max_restarts="x"), session=api.session
    ))  # fmt: skip
    assert messages == [
        "<config>.max_restarts: expected integer or null, but got string",
        "<config>.resources.priority: must be <= 99 but found 100",
    ]
    template = api(api.Template.create("needs-entrypoint", {"entrypoint": "python3 train.py"},
                                       session=api.session))  # fmt: skip
    partial = {k: v for k, v in config().items() if k != "entrypoint"}
    assert api(api.Experiment.validate_config(partial, session=api.session)) == [
        "managed experiments require entrypoint"
    ]
    assert (
        api(api.Experiment.validate_config(partial, template=template, session=api.session)) == []
    )
    assert count(api) == before


def test_fork(writer_api: Api, tmp_path: Path) -> None:
    api = writer_api
    parent = api(api.Experiment.create(config(), model_dir(tmp_path), project=2,
                                       session=api.session))  # fmt: skip
    child = api(parent.fork({"hyperparameters": {"lr": 0.1}, "description": "faster"}))
    assert child.id != parent.id and child.forked_from == parent.id
    assert child.config["hyperparameters"] == {"lr": 0.1} and child.description == "faster"
    assert child.project_id == parent.project_id == 2
    assert parent.config["hyperparameters"] == {"lr": 0.001}
    # The master copies the parent's code.
    parent_code = api(parent.download_code(tmp_path / "parent"))
    assert files_of(api(child.download_code(tmp_path / "child"))) == files_of(parent_code)
    elsewhere = api(parent.fork(project=3, activate=False))
    assert elsewhere.project_id == 3 and elsewhere.state == ExperimentState.PAUSED
    for exp in (parent, child, elsewhere):
        api(exp.kill())


def test_continue_a_single_trial_experiment(writer_api: Api) -> None:
    api = writer_api
    exp = api(api.Experiment.create(config(), session=api.session))
    trial = api(exp.await_first_trial(timeout=30))
    assert api(trial.wait(timeout=60, interval=0.05)) == TrialState.COMPLETED
    assert api(exp.wait(timeout=60, interval=0.05)) == ExperimentState.COMPLETED
    api(trial.continue_training(max_length=300))
    assert not exp.state.is_terminal and exp.config["searcher"]["max_length"] == 300
    assert not trial.state.is_terminal and trial.end_time is None
    assert api(trial.wait(timeout=60, interval=0.05)) == TrialState.COMPLETED
    assert trial.total_batches_processed == 300
    assert api(exp.wait(timeout=60, interval=0.05)) == ExperimentState.COMPLETED


def test_continue_rules_of_a_search(writer_api: Api) -> None:
    api = writer_api
    search = {"name": "random", "metric": "validation_loss", "max_trials": 2,
              "max_length": 1_000_000}  # fmt: skip
    exp = api(api.Experiment.create(
        config(searcher=search, hyperparameters={"lr": {"type": "double", "minval": 0.001,
                                                        "maxval": 0.1}}),
        session=api.session,
    ))  # fmt: skip
    trial = api(exp.await_first_trial(timeout=30))
    with pytest.raises(InvalidState, match=f"experiment {exp.id} is"):
        api(exp.continue_training())  # still active
    api(exp.kill())
    assert api(exp.wait(timeout=60, interval=0.05)) == ExperimentState.CANCELED
    with pytest.raises(InvalidState, match=f"trial {trial.id} is one of the trials"):
        api(trial.continue_training())
    with pytest.raises(InvalidState, match="random search"):
        api(exp.continue_training(max_length=10))
    api(exp.continue_training())  # a search resumes its unfinished trials
    assert not exp.state.is_terminal
    api(exp.kill())


def test_waits_time_out(writer_api: Api) -> None:
    api = writer_api
    exp = api(api.Experiment.create(
        config(searcher={"name": "single", "metric": "loss", "max_length": 10_000_000}),
        session=api.session,
    ))  # fmt: skip
    trial = api(exp.await_first_trial(timeout=30, interval=0.05))
    with pytest.raises(WaitTimeout, match=f"experiment {exp.id} is still"):
        api(exp.wait(timeout=0.3, interval=0.1))
    with pytest.raises(WaitTimeout, match=f"trial {trial.id} is still"):
        api(trial.wait(timeout=0.2, interval=0.1))
    api(exp.kill())
    assert api(trial.wait(timeout=30, interval=0.05)) == TrialState.CANCELED


def test_a_dict_config_reaches_the_master_as_it_was(writer_api: Api) -> None:
    api = writer_api
    description = 'line\u2028separator, NEL\x85, accents \u00e9, emoji \U0001f600, tab\t, quote "'
    exp = api(api.Experiment.create(
        config(description=description, hyperparameters={"lr": 1e-05, "decay": 1e20, "n": 3}),
        activate=False, session=api.session,
    ))  # fmt: skip
    assert exp.description == description
    assert exp.config["hyperparameters"] == {"lr": 1e-05, "decay": 1e20, "n": 3}
    assert isinstance(exp.config["hyperparameters"]["lr"], float)
    api(exp.kill())
