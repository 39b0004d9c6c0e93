"""An experiment's TensorBoard files, downloaded and deleted, in both APIs."""

from pathlib import Path
from typing import assert_type

import detorm
import detorm.aio as det


def sync(exp: detorm.Experiment, trial: detorm.Trial) -> None:
    assert_type(exp.download_tensorboard("tb"), Path)
    where = exp.download_tensorboard(Path("tb"), trials=[trial, 7], progress=True, max_size=1 << 30)
    assert_type(where, Path)
    exp.download_tensorboard("tb", trials=(t for t in exp.trials))
    assert_type(exp.delete_tensorboard_files(), None)


async def asynchronous(exp: det.Experiment, trial: det.Trial) -> None:
    assert_type(await exp.download_tensorboard("tb", trials=[trial.id]), Path)
    await exp.delete_tensorboard_files()
