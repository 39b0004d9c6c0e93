"""``DeleteTensorboardFiles`` (``api_experiment.go``; ``checkpoint_gc.go:runCheckpointGCTask``).

The master looks the experiment up (a missing one is the plain ``db.ErrNotFound``: a 500 ``not
found``; no permission check follows), then runs a checkpoint-GC task with
``--delete-tensorboards`` and waits for it. The task (``determined.exec.gc_checkpoints``) builds
the experiment's TensorBoard manager on its checkpoint storage and removes
``<storage>/<cluster id>/tensorboard/experiment/<id>`` (it creates the directory first, so nothing
to delete is no error); the answer is ``{}``.

detorm.local is its own agent: it removes that directory from the ``shared_fs`` (or
``directory``) storage of the experiment's config, where the master's task would, and answers at
once. It records no GC task. Cloud storages (s3, gcs, azure) are out of its reach; for them the
answer is ``{}`` and nothing is touched (detorm.local never wrote there).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .. import _tables as t
from .._app import Ctx, rpc
from .._errors import internal
from .._storage import CheckpointStorage, StorageUnavailable, UnsupportedStorage
from .master import CLUSTER_ID

__all__ = ["tensorboard_directory"]


def tensorboard_directory(storage_prefix: str, experiment_id: int) -> Path:
    """``tensorboard.get_experiment_sync_path`` under the storage: the experiment's TensorBoard
    files (one ``trial/<id>`` directory per trial)."""
    return Path(storage_prefix, CLUSTER_ID, "tensorboard", "experiment", str(int(experiment_id)))


@rpc("DeleteTensorboardFiles", experiment_id=int)
def delete_tensorboard_files(ctx: Ctx) -> dict[str, Any]:
    experiment = ctx.db.get(t.ExperimentRow, ctx.path["experiment_id"])
    if experiment is None:
        raise internal("not found")  # db.ExperimentByID: MatchSentinelError(sql.ErrNoRows)
    config = experiment.config if isinstance(experiment.config, dict) else {}
    try:
        prefix = CheckpointStorage.of(ctx.app.db.path).prefix(config.get("checkpoint_storage"))
    except (StorageUnavailable, UnsupportedStorage, ValueError):
        return {}
    _remove(tensorboard_directory(prefix, experiment.id or 0))
    return {}


def _remove(directory: Path) -> None:
    # rmtree never follows links inside the tree; a link in place of the directory itself is
    # unlinked (the directory it points to is not the experiment's)
    if directory.is_symlink():
        directory.unlink()
    elif directory.is_dir():
        shutil.rmtree(directory)
    elif os.path.lexists(directory):
        directory.unlink()
