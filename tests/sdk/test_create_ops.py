"""Experiment.create / validate_config / fork / continue_training / wait / await_first_trial and
trial.wait / continue_training in both APIs, against canned replies (a mock master) on a fake
clock: what each sends, how it reads the answer, and the master's refusals as typed errors.
The same operations against detorm.local are in test_create.py."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from detorm import ExperimentState, TrialState
from detorm._ops._experiments import config_errors, yaml_json
from detorm.errors import (
    APIError,
    BadRequest,
    ContextError,
    InvalidConfig,
    InvalidState,
    InvalidType,
    InvalidValue,
    LaunchWarning,
    NotFound,
    ServerError,
    WaitTimeout,
)
from tests.sdk.apis import MODES, Api

MASTER = "http://master.test"
CONFIG = {
    "name": "mnist",
    "entrypoint": "python3 train.py",
    "searcher": {"name": "single", "metric": "loss", "max_length": {"batches": 100}},
    "hyperparameters": {"lr": 0.001},
}


def experiment_json(
    exp_id: int, state: str = "STATE_ACTIVE", *, trial_ids: tuple[int, ...] = (),
    config: dict[str, Any] | None = None, project_id: int = 7,
) -> dict[str, Any]:  # fmt: skip
    return {
        "id": exp_id, "name": "mnist", "state": state, "trialIds": list(trial_ids),
        "numTrials": len(trial_ids), "config": config if config is not None else CONFIG,
        "projectId": project_id, "workspaceId": 3, "username": "determined",
        "searcherType": (config or CONFIG)["searcher"]["name"], "jobId": "job-1",
        "originalConfig": "name: mnist\n", "startTime": "2026-01-01T00:00:00Z",
    }  # fmt: skip


def trial_json(trial_id: int, exp_id: int, state: str = "STATE_ACTIVE") -> dict[str, Any]:
    return {"id": trial_id, "experimentId": exp_id, "state": state, "hparams": {"lr": 0.001},
            "taskId": f"{exp_id}.{trial_id}", "taskIds": [f"{exp_id}.{trial_id}"]}  # fmt: skip


def error(status: int, reason: str, message: str) -> httpx.Response:
    code = {400: 3, 404: 5, 500: 2}[status]
    return httpx.Response(status, json={"code": code, "message": message, "details": []})


class FakeMaster:
    """Answers from per-route callables; records every request (method, path, JSON body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.routes: dict[tuple[str, str], Callable[[Any], httpx.Response]] = {}

    def on(self, method: str, path: str, reply: Callable[[Any], httpx.Response]) -> None:
        self.routes[(method, path)] = reply

    def reply(self, method: str, path: str, body: dict[str, Any]) -> None:
        self.on(method, path, lambda _: httpx.Response(200, json=body))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return error(404, "NotFound", f"no route {request.method} {request.url.path}")
        return handler(body)

    def sent(self, method: str, path: str) -> list[Any]:
        return [b for m, p, b in self.requests if (m, p) == (method, path)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def master() -> FakeMaster:
    return FakeMaster()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=MODES)
def api(
    request: pytest.FixtureRequest, master: FakeMaster, clock: Clock, environ: dict[str, str]
) -> Iterator[Api]:
    both = Api(request.param, MASTER, environ, user=None, password=None, token="t0ken",
               cache=False)  # fmt: skip
    transport = both.session.transport
    transport._client._transport = httpx.MockTransport(master)
    transport._clock = lambda: clock.now
    if request.param == "sync":
        transport._sleep = clock.sleep
    else:

        async def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            await asyncio.sleep(0)

        transport._sleep = sleep
    yield both
    both.close()


# --- create ---------------------------------------------------------------------------------
def test_create_sends_the_config_and_the_model_directory(
    api: Api, master: FakeMaster, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    (model / "data").mkdir(parents=True)
    (model / "train.py").write_text("print('hi')\n")
    (model / "data" / "big.bin").write_bytes(b"x" * 10)
    (model / "notes.txt").write_text("local notes\n")
    (model / ".detignore").write_text("data/\n*.txt\n")
    extra = tmp_path / "util.py"
    extra.write_text("X = 1\n")
    master.reply("POST", "/api/v1/experiments", {
        "experiment": experiment_json(12), "config": CONFIG, "warnings": [],
    })  # fmt: skip
    exp = api(api.Experiment.create(CONFIG, model, project=7, template="gpus",
                                    includes=[extra], session=api.session))  # fmt: skip
    (body,) = master.sent("POST", "/api/v1/experiments")
    assert json.loads(body["config"]) == CONFIG  # JSON text: YAML the master parses
    assert body["activate"] is True and body["projectId"] == 7 and body["template"] == "gpus"
    assert "parentId" not in body and "validateOnly" not in body
    paths = [f["path"] for f in body["modelDefinition"]]
    assert sorted(paths) == ["train.py", "util.py"]  # .detignore'd, and the include by name
    assert isinstance(exp, api.Experiment) and exp.id == 12 and exp.state == ExperimentState.ACTIVE
    assert exp.config == CONFIG and exp.original_config == "name: mnist\n"
    assert api(api.session.get(api.Experiment, 12)) is exp  # complete: no GET was needed
    assert len(master.requests) == 1


def test_a_config_file_is_sent_as_its_text(api: Api, master: FakeMaster, tmp_path: Path) -> None:
    text = "# my experiment\nname: mnist  # kept\nentrypoint: python3 train.py\n"
    path = tmp_path / "const.yaml"
    path.write_text(text)
    master.reply("POST", "/api/v1/experiments", {"experiment": experiment_json(3), "config": {}})
    api(api.Experiment.create(path, session=api.session))
    api(api.Experiment.create(str(path), activate=False, session=api.session))
    first, second = master.sent("POST", "/api/v1/experiments")
    assert first["config"] == second["config"] == text and "modelDefinition" not in first
    assert second["activate"] is False


def test_bad_input_is_refused_before_anything_is_sent(
    api: Api, master: FakeMaster, tmp_path: Path
) -> None:
    with pytest.raises(InvalidValue, match=r"config file .*missing.yaml.* does not exist"):
        api(api.Experiment.create(tmp_path / "missing.yaml", session=api.session))
    with pytest.raises(InvalidValue, match="is a directory"):
        api(api.Experiment.create(tmp_path, session=api.session))
    with pytest.raises(ContextError, match="does not exist"):
        api(api.Experiment.create(CONFIG, tmp_path / "nowhere", session=api.session))
    with pytest.raises(InvalidType, match=r"config\) must be a dict"):
        api(api.Experiment.create(42, session=api.session))
    with pytest.raises(InvalidValue, match="finite"):
        api(api.Experiment.create({"x": float("nan")}, session=api.session))
    with pytest.raises(InvalidType, match="one path"):
        api(api.Experiment.create(CONFIG, tmp_path, includes="a.py", session=api.session))
    with pytest.raises(InvalidType, match=r"project\) must be a Project or its id"):
        api(api.Experiment.create(CONFIG, project="vision", session=api.session))
    with pytest.raises(InvalidValue, match=r"template\) cannot be empty"):
        api(api.Experiment.create(CONFIG, template="", session=api.session))
    assert master.requests == []


def test_an_oversized_model_directory_is_refused_unsent(
    api: Api, master: FakeMaster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detorm._io import _context

    # The limit is the det CLI's 95 MiB; a smaller one keeps the test's files small.
    monkeypatch.setattr(_context.read_context, "__kwdefaults__", {"limit": 1000})
    (tmp_path / "weights.bin").write_bytes(b"\0" * 2000)
    with pytest.raises(ContextError, match="larger than the limit"):
        api(api.Experiment.create(CONFIG, tmp_path, session=api.session))
    assert master.requests == []


def test_the_masters_refusal_of_a_config_is_invalid_config(api: Api, master: FakeMaster) -> None:
    message = (
        "invalid experiment configuration: config is invalid or incomplete: "
        "<config>.entrypoint: entrypoint is required\n<config>.searcher.metric: metric is"
        " required"
    )
    master.on("POST", "/api/v1/experiments", lambda _: error(500, "Unknown", message))
    with pytest.raises(InvalidConfig) as caught:
        api(api.Experiment.create({"name": "x"}, session=api.session))
    assert caught.value.errors == [
        "<config>.entrypoint: entrypoint is required", "<config>.searcher.metric: metric is required"
    ]  # fmt: skip
    assert caught.value.status == 500 and isinstance(caught.value, (APIError, ValueError))
    assert api(api.Experiment.validate_config({"name": "x"}, session=api.session)) == (
        caught.value.errors
    )
    assert master.sent("POST", "/api/v1/experiments")[-1]["validateOnly"] is True


def test_validate_config_of_a_valid_config_is_empty(api: Api, master: FakeMaster) -> None:
    master.reply("POST", "/api/v1/experiments", {"experiment": {}, "config": None})
    assert api(api.Experiment.validate_config(CONFIG, template="t", session=api.session)) == []
    (body,) = master.sent("POST", "/api/v1/experiments")
    assert body["validateOnly"] is True and body["template"] == "t"


def test_other_errors_keep_their_type(api: Api, master: FakeMaster) -> None:
    master.on("POST", "/api/v1/experiments", lambda _: error(404, "NotFound", "template not found"))
    with pytest.raises(NotFound):
        api(api.Experiment.validate_config(CONFIG, template="nope", session=api.session))
    master.on("POST", "/api/v1/experiments",
              lambda _: error(500, "Unknown", "failed to create experiment: boom"))  # fmt: skip
    with pytest.raises(ServerError) as caught:
        api(api.Experiment.create(CONFIG, session=api.session))
    assert not isinstance(caught.value, InvalidConfig)


def test_launch_warnings_are_warnings(api: Api, master: FakeMaster) -> None:
    master.reply("POST", "/api/v1/experiments", {
        "experiment": experiment_json(5), "config": CONFIG,
        "warnings": ["LAUNCH_WARNING_CURRENT_SLOTS_EXCEEDED"],
    })  # fmt: skip
    with pytest.warns(LaunchWarning, match="experiment 5: it requires more slots"):
        api(api.Experiment.create(CONFIG, session=api.session))


# --- fork -----------------------------------------------------------------------------------
def test_fork_sends_the_parents_config_with_the_overrides(api: Api, master: FakeMaster) -> None:
    parent_config = dict(CONFIG, workspace="old-ws", project="old-project")
    master.reply("GET", "/api/v1/experiments/4", {
        "experiment": experiment_json(4, "STATE_COMPLETED", trial_ids=(9,), config=parent_config,
                                      project_id=11),
    })  # fmt: skip
    master.reply("POST", "/api/v1/experiments", {"experiment": experiment_json(20), "config": {}})
    parent = api(api.session.get(api.Experiment, 4))
    child = api(parent.fork({"hyperparameters": {"momentum": 0.9}, "name": "again"}))
    (body,) = master.sent("POST", "/api/v1/experiments")
    sent = json.loads(body["config"])
    assert sent["hyperparameters"] == {"lr": 0.001, "momentum": 0.9} and sent["name"] == "again"
    assert "workspace" not in sent and "project" not in sent  # where the parent is now:
    assert body["projectId"] == 11 and body["parentId"] == 4 and "modelDefinition" not in body
    assert child.id == 20 and parent.config == parent_config  # the parent's is not changed
    assert len(master.sent("GET", "/api/v1/experiments/4")) == 2  # read again before forking


# --- continue -------------------------------------------------------------------------------
def test_continue_of_an_active_experiment_is_refused(api: Api, master: FakeMaster) -> None:
    master.reply("GET", "/api/v1/experiments/4", {"experiment": experiment_json(4)})
    exp = api(api.session.get(api.Experiment, 4))
    with pytest.raises(InvalidState, match="experiment 4 is ACTIVE"):
        api(exp.continue_training())
    assert master.sent("POST", "/api/v1/experiments/continue") == []


def test_continue_of_a_trial_of_a_search_is_refused(api: Api, master: FakeMaster) -> None:
    search = dict(CONFIG, searcher={"name": "random", "metric": "loss", "max_trials": 4})
    master.reply("GET", "/api/v1/experiments/4", {
        "experiment": experiment_json(4, "STATE_COMPLETED", trial_ids=(8, 9), config=search)
    })  # fmt: skip
    master.reply("GET", "/api/v1/trials/9", {"trial": trial_json(9, 4, "STATE_COMPLETED")})
    trial = api(api.session.get(api.Trial, 9))
    with pytest.raises(InvalidState, match="trial 9 is one of the trials of experiment 4"):
        api(trial.continue_training(max_length=200))
    exp = api(api.session.get(api.Experiment, 4))
    with pytest.raises(InvalidState, match="random search.*overrides"):
        api(exp.continue_training({"hyperparameters": {"lr": 1}}))
    assert master.sent("POST", "/api/v1/experiments/continue") == []


def test_continue_of_a_single_trial_experiment(api: Api, master: FakeMaster) -> None:
    state = {"now": "STATE_COMPLETED"}
    master.on("GET", "/api/v1/experiments/4", lambda _: httpx.Response(200, json={
        "experiment": experiment_json(4, state["now"], trial_ids=(9,))}))  # fmt: skip
    master.reply("GET", "/api/v1/trials/9", {"trial": trial_json(9, 4, "STATE_COMPLETED")})

    def continued(body: Any) -> httpx.Response:
        state["now"] = "STATE_ACTIVE"
        return httpx.Response(200, json={
            "experiment": experiment_json(4, "STATE_ACTIVE", trial_ids=(9,)), "warnings": [],
        })  # fmt: skip

    master.on("POST", "/api/v1/experiments/continue", continued)
    trial = api(api.session.get(api.Trial, 9))
    api(trial.continue_training({"hyperparameters": {"lr": 0.01}}, max_length={"batches": 500}))
    (body,) = master.sent("POST", "/api/v1/experiments/continue")
    assert body["id"] == 4 and json.loads(body["overrideConfig"]) == {
        "hyperparameters": {"lr": 0.01}, "searcher": {"max_length": {"batches": 500}}
    }  # fmt: skip
    exp = api(api.session.get(api.Experiment, 4))
    assert exp.state == ExperimentState.ACTIVE  # the master's answer, merged
    assert len(master.sent("GET", "/api/v1/trials/9")) == 2  # the trial read again
    api(exp.refresh())
    with pytest.raises(InvalidState):
        api(exp.continue_training())


def test_continue_sends_an_empty_override_as_the_cli_does(api: Api, master: FakeMaster) -> None:
    master.reply("GET", "/api/v1/experiments/4", {
        "experiment": experiment_json(4, "STATE_ERROR", trial_ids=(9,))})  # fmt: skip
    master.on("POST", "/api/v1/experiments/continue", lambda _: error(
        400, "FailedPrecondition", "experiment in non terminal state 'STATE_ACTIVE'"))  # fmt: skip
    exp = api(api.session.get(api.Experiment, 4))
    with pytest.raises(BadRequest) as caught:  # the master's own refusal: its message
        api(exp.continue_training())
    assert not isinstance(caught.value, InvalidConfig)
    assert master.sent("POST", "/api/v1/experiments/continue") == [
        {"id": 4, "overrideConfig": "{}"}
    ]


def test_continue_arguments_are_checked(api: Api, master: FakeMaster) -> None:
    master.reply("GET", "/api/v1/experiments/4", {
        "experiment": experiment_json(4, "STATE_ERROR", trial_ids=(9,))})  # fmt: skip
    exp = api(api.session.get(api.Experiment, 4))
    with pytest.raises(InvalidValue, match="cannot set 'project'"):
        api(exp.continue_training({"project": "other"}))
    with pytest.raises(InvalidValue, match="batches, records, epochs"):
        api(exp.continue_training(max_length={"steps": 3}))
    with pytest.raises(InvalidValue):
        api(exp.continue_training(max_length={"epochs": 0}))
    with pytest.raises(InvalidType):
        api(exp.continue_training(max_length="10"))
    assert master.sent("POST", "/api/v1/experiments/continue") == []


# --- wait -----------------------------------------------------------------------------------
def test_wait_polls_with_backoff_until_terminal(api: Api, master: FakeMaster, clock: Clock) -> None:
    states = iter(["STATE_ACTIVE"] * 6 + ["STATE_STOPPING_COMPLETED", "STATE_COMPLETED"])
    master.on("GET", "/api/v1/experiments/4", lambda _: httpx.Response(200, json={
        "experiment": experiment_json(4, next(states))}))  # fmt: skip
    exp = api(api.session.get(api.Experiment, 4))
    assert api(exp.wait()) == ExperimentState.COMPLETED
    assert exp.state == ExperimentState.COMPLETED
    # One GET above, then seven polls: six sleeps, each 1.5 times the last.
    assert clock.sleeps == [0.25, 0.375, 0.5625, 0.84375, 1.265625, 1.8984375]


def test_wait_times_out_and_refuses_a_paused_experiment(
    api: Api, master: FakeMaster, clock: Clock
) -> None:
    state = {"now": "STATE_RUNNING"}
    master.on("GET", "/api/v1/experiments/4", lambda _: httpx.Response(200, json={
        "experiment": experiment_json(4, state["now"])}))  # fmt: skip
    exp = api(api.session.get(api.Experiment, 4))
    with pytest.raises(WaitTimeout, match="experiment 4 is still RUNNING after 10 s"):
        api(exp.wait(10, interval=1))
    assert clock.sleeps == [1.0] * 10
    state["now"] = "STATE_PAUSED"
    with pytest.raises(InvalidState, match="PAUSED"):
        api(exp.wait())
    with pytest.raises(InvalidValue, match=r"wait\(timeout\)"):
        api(exp.wait(-1))


def test_trial_wait(api: Api, master: FakeMaster, clock: Clock) -> None:
    states = iter(["STATE_PAUSED", "STATE_RUNNING", "STATE_ERROR"])
    master.reply("GET", "/api/v1/experiments/4", {"experiment": experiment_json(4)})
    master.on("GET", "/api/v1/trials/9", lambda _: httpx.Response(200, json={
        "trial": trial_json(9, 4, next(states))}))  # fmt: skip
    trial = api(api.session.get(api.Trial, 9))
    assert api(trial.wait(interval=0.5)) == TrialState.ERROR and clock.sleeps == [0.5]


def test_await_first_trial(api: Api, master: FakeMaster, clock: Clock) -> None:
    trials = iter([(), (), (11, 10)])
    master.on("GET", "/api/v1/experiments/4", lambda _: httpx.Response(200, json={
        "experiment": experiment_json(4, trial_ids=next(trials))}))  # fmt: skip
    master.reply("GET", "/api/v1/trials/10", {"trial": trial_json(10, 4)})
    exp = api(api.session.get(api.Experiment, 4))
    trial = api(exp.await_first_trial())
    assert isinstance(trial, api.Trial) and trial.id == 10 and trial.experiment_id == 4
    assert clock.sleeps == [0.25]


def test_await_first_trial_gives_up(api: Api, master: FakeMaster) -> None:
    state = {"now": "STATE_QUEUED"}
    master.on("GET", "/api/v1/experiments/4", lambda _: httpx.Response(200, json={
        "experiment": experiment_json(4, state["now"])}))  # fmt: skip
    exp = api(api.session.get(api.Experiment, 4))
    with pytest.raises(WaitTimeout, match="experiment 4 has no trial yet"):
        api(exp.await_first_trial(timeout=1))
    state["now"] = "STATE_ERROR"
    with pytest.raises(InvalidState, match="ended ERROR without a trial"):
        api(exp.await_first_trial())


# --- the config as YAML text ----------------------------------------------------------------
def test_config_text_is_json_that_yaml_parsers_read_alike() -> None:
    config = {"lr": 1e-05, "big": 1e20, "n": 3, "t": "a\u2028b\x85c\u00e9\U0001f600", "ok": True}
    text = yaml_json("config", config)
    assert json.loads(text) == config
    assert "1.0e-05" in text and "1.0e+20" in text
    assert "\\u2028" in text and "\\u0085" in text and "\u00e9\U0001f600" in text


def test_config_errors_recognise_the_masters_config_messages() -> None:
    def err(status: int, message: str, path: str = "/api/v1/experiments") -> APIError:
        return APIError(method="POST", path=path, status=status, message=message)

    assert config_errors(err(500, "managed experiments require entrypoint")) == [
        "managed experiments require entrypoint"
    ]
    assert config_errors(err(500, "failed to start experiment 3")) is None
    assert config_errors(err(400, "expected exactly one workspace")) == [
        "expected exactly one workspace"
    ]
    continue_path = "/api/v1/experiments/continue"
    assert config_errors(err(400, "experiment in non terminal state", continue_path)) is None
    assert config_errors(err(400, "parsing override config: bad", continue_path)) == [
        "parsing override config: bad"
    ]


def test_no_warning_without_warnings(api: Api, master: FakeMaster) -> None:
    master.reply("POST", "/api/v1/experiments", {"experiment": experiment_json(5), "config": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        api(api.Experiment.create(CONFIG, session=api.session))
