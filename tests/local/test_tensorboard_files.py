"""``DeleteTensorboardFiles`` on detorm.local: the experiment's TensorBoard directory removed from
its checkpoint storage, as the master's GC task does (``api_experiment.go``,
``determined/exec/gc_checkpoints.py``)."""

from __future__ import annotations

import httpx

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._routes.master import CLUSTER_ID
from detorm.local._storage import CheckpointStorage
from tests.conftest import error_of


def test_deletes_only_the_experiments_tensorboard_files(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    with Seeder(local_master.database) as seed:
        first, second = seed.experiment(name="a"), seed.experiment(name="b")
        row = seed.db.get(t.ExperimentRow, first)
        assert row is not None
        config = row.config
    storage = CheckpointStorage.of(local_master.db_path)
    root = storage.root / CLUSTER_ID / "tensorboard" / "experiment"
    for experiment in (first, second):
        events = root / str(experiment) / "trial" / "1" / "events.out.tfevents"
        events.parent.mkdir(parents=True)
        events.write_bytes(b"x")
    assert config["checkpoint_storage"]["type"] == "shared_fs"
    response = api.delete(f"/api/v1/experiments/{first}/tensorboard-files")
    assert response.status_code == 200 and response.json() == {}
    assert not (root / str(first)).exists()
    assert (root / str(second) / "trial" / "1" / "events.out.tfevents").read_bytes() == b"x"
    # nothing left to delete: still {}
    assert api.delete(f"/api/v1/experiments/{first}/tensorboard-files").json() == {}


def test_unknown_experiment_is_a_plain_not_found(api: httpx.Client) -> None:
    response = api.delete("/api/v1/experiments/999/tensorboard-files")
    assert response.status_code == 500
    assert error_of(response) == {"code": 13, "reason": "Internal", "error": "not found"}
