"""Creating and continuing experiments with the official client and the ``det`` CLI of
``determined==0.38.1`` against ``detorm serve --demo`` (only creation, trials, the model
definition and continue: running the trials is the simulation's, tested apart)."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from determined.common.api import bindings, errors
from determined.experimental import Determined

from tests.contract.conftest import Demo, connect
from tests.contract.test_det_cli import csv_rows, det, ok

LONG = 10**9  # batches: the simulation never finishes such a trial during a test
CONFIG = {
    "name": "contract-create",
    "entrypoint": "model_def:Trial",
    "searcher": {"name": "grid", "metric": "loss", "max_length": LONG},
    "hyperparameters": {
        "lr": {"type": "double", "minval": 0.1, "maxval": 0.2, "count": 2},
        "act": {"type": "categorical", "vals": ["relu", "tanh"]},
    },
}


def created_id(out: str) -> int:
    """The id in ``Created experiment N``, the last line (after the upload's progress lines)."""
    last = out.strip().splitlines()[-1]
    assert last.startswith("Created experiment "), out
    return int(last.rsplit(" ", 1)[-1])


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    (directory / "lib").mkdir(parents=True)
    (directory / "model_def.py").write_text("class Trial:\n    pass\n")
    (directory / "lib" / "util.py").write_text("X = 1\n")
    return directory


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "const.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture
def client(fresh_demo: Demo) -> Determined:
    return connect(fresh_demo)


def test_the_official_client_creates_a_grid_experiment(
    client: Determined, fresh_demo: Demo, model_dir: Path
) -> None:
    exp = client.create_experiment(CONFIG, model_dir)
    exp.reload()
    assert exp.name == "contract-create" and exp.config is not None
    trials = exp.list_trials()
    assert sorted((t.hparams["act"], t.hparams["lr"]) for t in trials) == [
        ("relu", 0.1), ("relu", 0.2), ("tanh", 0.1), ("tanh", 0.2),
    ]  # fmt: skip
    assert fresh_demo.value("SELECT state FROM experiments WHERE id = ?", exp.id) == "ACTIVE"
    assert fresh_demo.column("SELECT experiment_id FROM simulated_experiments") == [exp.id]
    resp = bindings.get_GetModelDef(client._session, experimentId=exp.id)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(resp.b64Tgz)), mode="r:gz") as archive:
        names = sorted(archive.getnames())
    assert names == ["lib", "lib/util.py", "model_def.py"]


def test_the_official_client_sees_the_masters_refusal(
    client: Determined, fresh_demo: Demo, model_dir: Path
) -> None:
    bad = {**CONFIG, "searcher": {"name": "grid", "metric": "loss"}, "hyperparameters": {
        "lr": {"type": "double", "minval": 0.1, "maxval": 0.2}}}  # fmt: skip
    with pytest.raises(errors.APIException) as caught:
        client.create_experiment(bad, model_dir)
    assert "grid search is in use but count was not provided" in str(caught.value)
    assert fresh_demo.value("SELECT COUNT(*) FROM experiments WHERE name = 'contract-create'") == 0


def test_det_creates_a_paused_experiment_lists_its_trials_and_downloads_its_code(
    fresh_demo: Demo, det_config: Path, config_file: Path, model_dir: Path, tmp_path: Path
) -> None:
    ok(det(fresh_demo, det_config, "user", "login", "alice", stdin="alice-pw\n"))
    out = ok(det(fresh_demo, det_config, "experiment", "create", "--paused", str(config_file),
                 str(model_dir)))  # fmt: skip
    experiment_id = created_id(out)
    assert fresh_demo.value("SELECT state FROM experiments WHERE id = ?", experiment_id) == "PAUSED"
    rows = csv_rows(ok(det(fresh_demo, det_config, "experiment", "list-trials", str(experiment_id),
                           "--csv")))  # fmt: skip
    assert len(rows) == 4 and {row["State"] for row in rows} == {"PAUSED"}
    assert {json.loads(row["H-Params"])["act"] for row in rows} == {"relu", "tanh"}
    ok(det(fresh_demo, det_config, "experiment", "download-model-def", str(experiment_id),
           "--output-dir", str(tmp_path)))  # fmt: skip
    archive_path = tmp_path / f"experiment_{experiment_id}_model_def.tgz"
    with tarfile.open(archive_path, mode="r:gz") as archive:
        member = archive.extractfile("model_def.py")
        assert member is not None and member.read() == b"class Trial:\n    pass\n"


def test_det_refuses_a_config_without_entrypoint(
    fresh_demo: Demo, det_config: Path, tmp_path: Path
) -> None:
    ok(det(fresh_demo, det_config, "user", "login", "alice", stdin="alice-pw\n"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in CONFIG.items() if k != "entrypoint"}))
    result = det(fresh_demo, det_config, "experiment", "create", str(path))
    assert result.returncode != 0
    assert "managed experiments require entrypoint" in result.stderr + result.stdout


def test_det_continues_a_killed_single_experiment(
    fresh_demo: Demo, det_config: Path, tmp_path: Path, model_dir: Path
) -> None:
    ok(det(fresh_demo, det_config, "user", "login", "alice", stdin="alice-pw\n"))
    path = tmp_path / "single.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "searcher": {"name": "single", "metric": "loss",
                                                           "max_length": LONG}}))  # fmt: skip
    out = ok(det(fresh_demo, det_config, "experiment", "create", str(path), str(model_dir)))
    experiment_id = created_id(out)
    refused = det(fresh_demo, det_config, "experiment", "continue", str(experiment_id))
    assert refused.returncode != 0
    assert "experiment in non terminal state 'ACTIVE', try again later" in refused.stderr
    ok(det(fresh_demo, det_config, "experiment", "kill", str(experiment_id)))
    # the kill ends the experiment once its trial has stopped: `det e wait` polls until then
    # (and exits 1, the experiment not being COMPLETED)
    waited = det(fresh_demo, det_config, "experiment", "wait", str(experiment_id),
                 "--polling-interval", "1")  # fmt: skip
    assert waited.returncode == 1, waited.stderr
    assert (
        fresh_demo.value("SELECT state FROM experiments WHERE id = ?", experiment_id) == "CANCELED"
    )
    out = ok(det(fresh_demo, det_config, "experiment", "continue", str(experiment_id),
                 "--config", "searcher.max_length=50"))  # fmt: skip
    assert out.strip() == f"Continued experiment {experiment_id}"
    config = json.loads(
        fresh_demo.value("SELECT config FROM experiments WHERE id = ?", experiment_id)
    )
    assert config["searcher"]["max_length"] == 50
    assert fresh_demo.value("SELECT state FROM experiments WHERE id = ?", experiment_id) == "ACTIVE"
    assert fresh_demo.column("SELECT state FROM trials WHERE experiment_id = ?", experiment_id) == [
        "ACTIVE"
    ]
