"""CreateExperiment and ContinueExperiment on detorm.local, as master 0.38.1 answers them
(``api_experiment.go``, ``core_experiment.go``, the expconf schema and ``master/pkg/searcher``)."""

from __future__ import annotations

import base64
import io
import tarfile
from typing import Any

import httpx
import pytest
import yaml
from sqlmodel import select

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._db import utcnow
from detorm.local._ntsc_config import MAX_RECV_MESSAGE_BYTES
from detorm.local._searchers import next_trial, planned_trials
from tests.conftest import error_of

INVALID = (
    "invalid experiment configuration: version 0 experiment config is invalid: config is invalid: "
)
INCOMPLETE = "invalid experiment configuration: config is invalid or incomplete: "
LONG = 10**9  # batches: the simulation never finishes such a trial during a test


def config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "mnist",
        "entrypoint": "model_def:Trial",
        "searcher": {"name": "single", "metric": "loss", "max_length": LONG},
        "hyperparameters": {"lr": 0.1},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def files(contents: dict[str, bytes]) -> list[dict[str, Any]]:
    """``utilv1.File`` entries as the det CLI sends them: each directory before its files."""
    entries: list[dict[str, Any]] = []
    directories: set[str] = set()
    for path, data in contents.items():
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in directories:
                directories.add(directory)
                entries.append({"path": directory, "type": 53, "content": "", "mode": 0o40755,
                                "mtime": 1_700_000_000, "uid": 0, "gid": 0})  # fmt: skip
        entries.append({"path": path, "type": 48, "content": base64.b64encode(data).decode(),
                        "mode": 0o100644, "mtime": 1_700_000_000, "uid": 0, "gid": 0})  # fmt: skip
    return entries


def create(api: httpx.Client, cfg: dict[str, Any] | str, **fields: Any) -> httpx.Response:
    text = cfg if isinstance(cfg, str) else yaml.safe_dump(cfg)
    return api.post("/api/v1/experiments", json={"config": text, **fields})


def created(api: httpx.Client, cfg: dict[str, Any] | str, **fields: Any) -> dict[str, Any]:
    response = create(api, cfg, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert error_of(response)["error"] == message


def trials(api: httpx.Client, experiment_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/experiments/{experiment_id}/trials")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["trials"]
    return sorted(found, key=lambda trial: trial["id"])


def stored(master: LocalMaster, cls: Any) -> list[Any]:
    with master.database.transaction(write=False) as db:
        return list(db.exec(select(cls)).all())


# --- creating -------------------------------------------------------------------------------------
def test_a_single_experiment_is_created_active_with_one_trial(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    body = created(api, config(labels=["a", "b"], description="digits"), activate=True,
                   modelDefinition=files({"model_def.py": b"print('hi')\n"}))  # fmt: skip
    exp = body["experiment"]
    assert exp["name"] == "mnist" and exp["labels"] == ["a", "b"]
    assert exp["description"] == "digits" and exp["searcherType"] == "single"
    assert exp["projectId"] == 1 and exp["workspaceName"] == "Uncategorized"
    assert exp["state"] in ("STATE_RUNNING", "STATE_QUEUED") and exp["numTrials"] == 1
    assert body["warnings"] == [] and body["config"] == exp["config"]
    assert exp["progress"] == 0 and exp["forkedFrom"] is None  # AddExperimentTx: progress 0
    assert body["config"]["resources"]["resource_pool"] == "default"
    assert body["config"]["resources"]["priority"] == 42
    assert isinstance(body["config"]["reproducibility"]["experiment_seed"], int)
    assert body["config"]["searcher"]["smaller_is_better"] is True
    assert exp["originalConfig"] == yaml.safe_dump(config(labels=["a", "b"], description="digits"))
    [trial] = trials(api, exp["id"])
    assert trial["hparams"] == {"lr": 0.1}
    row = next(r for r in stored(local_master, t.ExperimentRow) if r.id == exp["id"])
    assert (row.searcher_type, row.searcher_metric, row.resource_pool) == (
        "single",
        "loss",
        "default",
    )
    assert row.state == "ACTIVE" and row.best_trial_id == trial["id"]
    assert [s.experiment_id for s in stored(local_master, t.SimulatedExperimentRow)] == [exp["id"]]
    trial_row = next(r for r in stored(local_master, t.TrialRow) if r.id == trial["id"])
    assert trial_row.state == "ACTIVE" and trial_row.local_id == 1
    assert trial_row.task_id.startswith(f"{exp['id']}.")
    assert [(h.hparam, h.number_val) for h in stored(local_master, t.RunHparamRow)] == [("lr", 0.1)]


def test_the_model_definition_round_trips(api: httpx.Client) -> None:
    code = {"model_def.py": b"import torch\n", "data/labels.txt": b"0\n1\n"}
    exp = created(api, config(), modelDefinition=files(code))["experiment"]
    assert exp["modelDefinitionSize"] > 0
    b64 = api.get(f"/api/v1/experiments/{exp['id']}/model_def").json()["b64Tgz"]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(b64)), mode="r:gz") as archive:
        contents = {
            m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()
        }  # type: ignore[union-attr]
    assert contents == code
    response = api.post(f"/api/v1/experiments/{exp['id']}/file", json={"path": "data/labels.txt"})
    assert base64.b64decode(response.json()["file"]) == b"0\n1\n"


def test_a_default_name_is_given(api: httpx.Client) -> None:
    exp = created(api, config(name=None))["experiment"]
    assert exp["name"].startswith("Experiment (") and exp["name"].count("-") == 2


def test_one_image_and_one_variable_list_are_stored_per_device(api: httpx.Client) -> None:
    environment = {"image": "my/image:1", "environment_variables": ["A=1"]}
    stored_env = created(api, config(environment=environment))["config"]["environment"]
    assert stored_env["image"] == {"cpu": "my/image:1", "cuda": "my/image:1", "rocm": "my/image:1"}
    assert stored_env["environment_variables"] == {"cpu": ["A=1"], "cuda": ["A=1"], "rocm": ["A=1"]}
    assert stored_env["force_pull_image"] is False


def test_activate_false_leaves_experiment_and_trials_paused(api: httpx.Client) -> None:
    exp = created(api, config(), activate=False)["experiment"]
    assert exp["state"] == "STATE_PAUSED"
    assert [trial["state"] for trial in trials(api, exp["id"])] == ["STATE_PAUSED"]


def test_validate_only_stores_nothing(api: httpx.Client, local_master: LocalMaster) -> None:
    body = created(api, config(), validateOnly=True, activate=True)
    assert body["config"] is None and body["warnings"] == []
    assert body["experiment"]["id"] == 0 and body["experiment"]["state"] == "STATE_UNSPECIFIED"
    assert body["experiment"]["startTime"] is None and body["experiment"]["checkpointSize"] == "0"
    assert stored(local_master, t.ExperimentRow) == []
    refused(create(api, config(entrypoint=None), validateOnly=True), 500,
            "managed experiments require entrypoint")  # fmt: skip


def test_a_fork_takes_its_parents_model_definition(api: httpx.Client) -> None:
    parent = created(api, config(), modelDefinition=files({"a.py": b"parent\n"}))["experiment"]
    child = created(
        api, config(name="child"), parentId=parent["id"], modelDefinition=files({"b.py": b"x"})
    )["experiment"]
    assert child["forkedFrom"] == parent["id"]
    tree = api.get(f"/api/v1/experiments/{child['id']}/file_tree").json()["files"]
    assert [entry["path"] for entry in tree] == ["a.py"]
    refused(create(api, config(), parentId=9999), 404, "experiment '9999' not found")


def test_projects_from_the_request_or_the_config(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    with Seeder(local_master.database) as seed:
        workspace = seed.workspace("research")
        project = seed.project("vision", workspace=workspace)
    assert created(api, config(), projectId=project)["experiment"]["projectId"] == project
    by_name = created(api, config(workspace="research", project="vision"))["experiment"]
    assert by_name["projectId"] == project and by_name["workspaceName"] == "research"
    refused(create(api, config(), projectId=777), 404, "project '777' not found")
    refused(create(api, config(workspace="research", project="nope")), 404,
            "workspace/project 'research/nope' not found")  # fmt: skip
    refused(create(api, config(workspace="research")), 500,
            "workspace and project must both be included in config if one is provided")  # fmt: skip


def test_a_template_is_merged_under_the_config(api: httpx.Client) -> None:
    template = {"description": "from template", "labels": ["t"], "resources": {"weight": 3}}
    response = api.post("/api/v1/templates/base",
                        json={"name": "base", "config": template, "workspaceId": 1})  # fmt: skip
    assert response.status_code == 200, response.text
    body = created(api, config(labels=["c"]), template="base")
    assert body["config"]["description"] == "from template"
    assert body["config"]["labels"] == ["c", "t"] and body["config"]["resources"]["weight"] == 3
    refused(create(api, config(), template="missing"), 404, "template 'missing' not found")


def test_an_unmanaged_experiment_has_no_trials_and_no_simulation(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    cfg = {"name": "core-v2", "searcher": {"name": "single", "metric": "x"}}
    exp = created(api, cfg, unmanaged=True, activate=True)["experiment"]
    assert exp["unmanaged"] is True and exp["state"] == "STATE_PAUSED"
    assert exp["numTrials"] == 0 and exp["config"]["resources"]["resource_pool"] == ""
    assert stored(local_master, t.SimulatedExperimentRow) == []
    assert api.get(f"/api/v1/experiments/{exp['id']}/model_def").json()["b64Tgz"] == ""


# --- searchers ------------------------------------------------------------------------------------
def test_grid_is_the_cartesian_product_taken_from_the_end(api: httpx.Client) -> None:
    hparams = {
        "lr": {"type": "double", "minval": 0.1, "maxval": 0.3, "count": 3},
        "layers": {"type": "int", "minval": 1, "maxval": 2, "count": 5},
        "act": {"type": "categorical", "vals": ["relu", "tanh"]},
        "opt": {"name": "adam", "beta": {"type": "log", "minval": -2, "maxval": -1, "base": 10, "count": 2}},
    }  # fmt: skip
    cfg = config(
        searcher={"name": "grid", "metric": "loss", "max_length": LONG}, hyperparameters=hparams
    )
    exp = created(api, cfg, activate=True)["experiment"]
    found = [trial["hparams"] for trial in trials(api, exp["id"])]
    assert len(found) == 16  # 3 * 2 (count capped by the range) * 2 * 2 = 24, max_concurrent 16
    assert found[0] == {"act": "tanh", "layers": 2, "lr": 0.3, "opt": {"beta": 0.1, "name": "adam"}}
    assert found[1]["opt"]["beta"] == pytest.approx(0.01)
    assert {trial["lr"] for trial in found} == {0.1, 0.2, 0.3}
    stored_config = api.get(f"/api/v1/experiments/{exp['id']}").json()["config"]
    assert planned_trials(stored_config) == 24 and next_trial(stored_config, 24) is None


def test_random_samples_within_bounds_and_honours_max_concurrent_trials(api: httpx.Client) -> None:
    hparams = {
        "lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
        "units": {"type": "int", "minval": 8, "maxval": 16},
        "act": {"type": "categorical", "vals": ["relu", "gelu"]},
        "drop": {"type": "double", "minval": 0.0, "maxval": 0.5},
    }
    searcher = {"name": "random", "metric": "loss", "max_trials": 5, "max_concurrent_trials": 3,
                "max_length": LONG}  # fmt: skip
    cfg = config(searcher=searcher, hyperparameters=hparams, reproducibility={"experiment_seed": 7})
    exp = created(api, cfg, activate=True)["experiment"]
    found = [trial["hparams"] for trial in trials(api, exp["id"])]
    assert len(found) == 3
    for sample in found:
        assert 1e-4 <= sample["lr"] <= 0.1 and isinstance(sample["units"], int)
        assert 8 <= sample["units"] <= 16 and sample["act"] in ("relu", "gelu")
        assert 0.0 <= sample["drop"] <= 0.5
    again = created(api, cfg, activate=True)["experiment"]
    assert [trial["hparams"] for trial in trials(api, again["id"])] == found  # same seed


def test_adaptive_asha_creates_max_trials_in_one_bracket(api: httpx.Client) -> None:
    searcher = {"name": "adaptive_asha", "metric": "loss", "max_trials": 4, "max_time": LONG,
                "time_metric": "batches"}  # fmt: skip
    exp = created(
        api,
        config(
            searcher=searcher, hyperparameters={"lr": {"type": "double", "minval": 0, "maxval": 1}}
        ),
    )
    assert exp["experiment"]["numTrials"] == 4
    refused(create(api, config(searcher={"name": "adaptive_asha", "metric": "loss", "max_trials": 4})), 500,
            "invalid experiment configuration: the `adaptive_asha` searcher requires `max_time`"
            " and `time_metric` to be set")  # fmt: skip


# --- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cfg", "status", "message"),
    [
        (config(entrypoint=None), 500, "managed experiments require entrypoint"),
        (config(searcher=None), 500, INCOMPLETE + "<config>: searcher is a required property"),
        (config(searcher={"name": "single"}), 500,
         INCOMPLETE + "<config>.searcher: metric is a required property\n"
         "<config>.searcher: metric is a required property"),
        (config(searcher={"name": "random", "metric": "m"}), 500,
         INCOMPLETE + "<config>.searcher: max_trials is a required property"),
        (config(searcher={"name": "bogus", "metric": "m"}), 500,
         INVALID + "<config>.searcher: is not an object where object[\"name\"] is one of 'single',"
         " 'random', 'grid', 'custom', or 'adaptive_asha'"),
        (config(searcher={"name": "custom", "metric": "m"}), 500,
         "invalid experiment configuration: the 'custom' searcher has been removed and is not"
         " valid for new experiments"),
        (config(searcher={"name": "random", "metric": "m", "max_trials": 0}), 500,
         INVALID + "<config>.searcher.max_trials: must be >= 1 but found 0"),
        (config(searcher={"name": "single", "metric": "m", "max_length": -1}), 500,
         INVALID + "<config>.searcher.max_length: must be >= 0 but found -1"),
        (config(searcher={"name": "single", "metric": "m", "max_trials": 2}), 500,
         INVALID + '<config>.searcher: additionalProperties "max_trials" not allowed'),
        (config(hyperparameters={"lr": {"type": "int", "minval": 5, "maxval": 1}}), 500,
         INVALID + "<config>.hyperparameters.lr: minval must be less than maxval"),
        (config(hyperparameters={"lr": {"type": "int", "minval": 0.5, "maxval": 1}}), 500,
         INVALID + "<config>.hyperparameters.lr.minval: expected integer, but got number"),
        (config(hyperparameters={"lr": {"type": "double", "minval": 0}}), 500,
         INVALID + '<config>.hyperparameters.lr: missing properties: "maxval"'),
        (config(hyperparameters={"lr": {"type": "float", "minval": 0, "maxval": 1}}), 500,
         INVALID + "<config>.hyperparameters.lr: if a hyperparameter object's [\"type\"] is set,"
         ' it must be one of "int", "double", "log", const", or "categorical"'),
        (config(hyperparameters={"n": {"lr": {"type": "log", "minval": 0, "maxval": 1, "base": 0}}}), 500,
         INVALID + "<config>.hyperparameters.n.lr.base: must be > 0 but found 0"),
        (config(searcher={"name": "grid", "metric": "m"},
                hyperparameters={"lr": {"type": "double", "minval": 0, "maxval": 1}}), 500,
         INVALID + "<config>.hyperparameters.lr: grid search is in use but count was not provided"),
        (config(resources={"slots_per_trial": -1}), 500,
         INVALID + "<config>.resources.slots_per_trial: must be >= 0 but found -1"),
        (config(resources={"priority": 100}), 500,
         INVALID + "<config>.resources.priority: must be <= 99 but found 100"),
        (config(resources={"slots": 2}), 500, '<config>.resources: additionalProperties "slots" not allowed'),
        (config(resources={"resource_pool": "gpu"}), 400,
         "invalid resource configuration: resource pool gpu does not exist or is not available to"
         " workspace id 1"),
        (config(resources={"slots_per_trial": 1000}), 500,
         "invalid resource configuration: slots requested exceeds cluster capacity"),
        (config(labels=["ok", 3]), 500, INVALID + "<config>.labels[1]: expected string, but got number"),
        (config(max_restarts="x", foo=1), 500,
         INVALID + "<config>.max_restarts: expected integer or null, but got string\n"
         '<config>: additionalProperties "foo" not allowed'),
        (config(checkpoint_policy="some"), 500,
         INVALID + '<config>.checkpoint_policy: value must be one of <nil>, "best", "all", "none"'),
        ("version: 1\n", 500, "invalid experiment configuration: invalid version: 1"),
        ({**config(), "version": 0}, 500, INVALID + '<config>: additionalProperties "version" not allowed'),
        ("", 500, INVALID + "<config>: expected object, but got null"),
        ("[1, 2]\n", 500, INVALID + "<config>: expected object, but got array"),
    ],
)  # fmt: skip
def test_invalid_configs_are_refused_with_the_masters_messages(
    api: httpx.Client, local_master: LocalMaster, cfg: Any, status: int, message: str
) -> None:
    refused(create(api, cfg), status, message)
    assert stored(local_master, t.ExperimentRow) == []


def test_yaml_that_does_not_parse_is_a_plain_error(api: httpx.Client) -> None:
    response = create(api, "name: [unclosed\n")
    assert response.status_code == 500
    assert error_of(response)["error"].startswith(
        "invalid experiment configuration: unable to convert yaml to json: not valid yaml: yaml: "
    )


def test_a_request_over_the_grpc_limit_is_refused(api: httpx.Client) -> None:
    big = base64.b64encode(b"\0" * (MAX_RECV_MESSAGE_BYTES + 10)).decode()
    response = create(api, config(), modelDefinition=[{"path": "big.bin", "content": big}])
    assert response.status_code == 429
    message = error_of(response)["error"]
    assert message.startswith("grpc: received message larger than max (")
    assert message.endswith(f" vs. {MAX_RECV_MESSAGE_BYTES})")


# --- continuing -----------------------------------------------------------------------------------
def end(master: LocalMaster, experiment_id: int, state: str = "CANCELED") -> None:
    """The experiment and its trials ended (as a kill ends them once its trials have stopped),
    written directly so that the test does not depend on the simulation's timing."""
    with master.database.transaction(write=True) as db:
        exp = db.get(t.ExperimentRow, experiment_id)
        assert exp is not None
        exp.state, exp.end_time = state, utcnow()
        for trial in db.exec(select(t.TrialRow).where(t.TrialRow.experiment_id == experiment_id)):
            trial.state, trial.end_time, trial.restarts = state, utcnow(), 2
            db.add(trial)
        db.add(exp)


def continue_(api: httpx.Client, experiment_id: int, override: str = "") -> httpx.Response:
    return api.post("/api/v1/experiments/continue",
                    json={"id": experiment_id, "overrideConfig": override})  # fmt: skip


def test_only_terminal_experiments_continue(api: httpx.Client) -> None:
    exp = created(api, config(), activate=True)["experiment"]
    refused(continue_(api, exp["id"]), 400, "experiment continue database updates: experiment in"
            " non terminal state 'ACTIVE', try again later")  # fmt: skip
    refused(continue_(api, 4242), 404, "experiment '4242' not found")


def test_a_canceled_single_experiment_continues_with_a_new_length(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    exp = created(api, config(), activate=True)["experiment"]
    end(local_master, exp["id"])
    response = continue_(api, exp["id"], "searcher:\n  max_length: 500\n")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"experiment", "warnings"} and body["warnings"] == []
    assert body["experiment"]["state"] in ("STATE_RUNNING", "STATE_QUEUED")
    assert body["experiment"]["config"]["searcher"]["max_length"] == 500
    assert body["experiment"]["progress"] == 0 and body["experiment"]["endTime"] is None
    [trial] = trials(api, exp["id"])
    assert trial["state"] in ("STATE_ACTIVE", "STATE_RUNNING") and trial["endTime"] is None
    assert trial["restarts"] == 0


def test_continuing_a_grid_reruns_unfinished_trials_and_creates_the_rest(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    searcher = {"name": "grid", "metric": "m", "max_length": LONG, "max_concurrent_trials": 2}
    hparams = {"x": {"type": "categorical", "vals": [1, 2, 3, 4]}}
    exp = created(api, config(searcher=searcher, hyperparameters=hparams))["experiment"]
    first, second = (trial["id"] for trial in trials(api, exp["id"]))
    end(local_master, exp["id"], "COMPLETED")
    with local_master.database.transaction(write=True) as db:
        unfinished = db.get(t.TrialRow, second)
        assert unfinished is not None
        unfinished.state = "ERROR"
        db.add(unfinished)
    assert continue_(api, exp["id"]).status_code == 200
    found = trials(api, exp["id"])
    assert [trial["id"] for trial in found[:2]] == [first, second]
    assert found[0]["state"] == "STATE_COMPLETED" and found[0]["endTime"] is None
    assert found[1]["state"] in ("STATE_ACTIVE", "STATE_RUNNING")
    assert [trial["hparams"]["x"] for trial in found] == [4, 3, 2]  # one new trial: 2 live


def test_continue_rules_of_the_override(api: httpx.Client, local_master: LocalMaster) -> None:
    single = created(api, config(), activate=True)["experiment"]["id"]
    grid = created(api, config(searcher={"name": "grid", "metric": "m", "max_length": LONG}),
                   activate=True)["experiment"]["id"]  # fmt: skip
    for experiment_id in (single, grid):
        end(local_master, experiment_id)
    refused(continue_(api, grid, "searcher: {max_length: 5}"), 400,
            "override config is provided and experiment is not single searcher, got 'grid' instead")  # fmt: skip
    refused(continue_(api, single, "searcher: {name: grid, metric: m}"), 400,
            "override config must have single searcher type got 'grid' instead")  # fmt: skip
    refused(continue_(api, single, "project: other"), 400,
            "'project' in override config cannot be specified, use `det experiment move` first if"
            " you want to change the project")  # fmt: skip
    refused(continue_(api, single, "workspace: other"), 400,
            "'workspace' in override config cannot be specified, use `det experiment move` first if"
            " you want to change the workspace")  # fmt: skip
    assert continue_(api, grid, "{}\n").status_code == 200


def test_searchers_that_cannot_continue(api: httpx.Client, local_master: LocalMaster) -> None:
    searcher = {"name": "adaptive_asha", "metric": "loss", "max_trials": 2, "max_time": LONG,
                "time_metric": "batches"}  # fmt: skip
    asha = created(api, config(searcher=searcher))["experiment"]["id"]
    end(local_master, asha)
    refused(continue_(api, asha), 400, "Unsupported searcher type provided: 'adaptive_asha'")
    with Seeder(local_master.database) as seed:
        done = seed.experiment(searcher="grid", state="COMPLETED")
        seed.trial(done, state="COMPLETED")
    refused(continue_(api, done), 400, "experiment continue database updates: experiment has been"
            " completed, cannot continue this experiment")  # fmt: skip
