"""Mistakes with TensorBoard downloads are type errors."""

import detorm
import detorm.aio as det


async def mistakes(exp: detorm.Experiment, aexp: det.Experiment, trial: detorm.Trial) -> None:
    exp.download_tensorboard()  # E: Missing positional argument "path"
    exp.download_tensorboard("tb", [trial])  # E: Too many positional arguments
    exp.download_tensorboard("tb", trials=["3"])  # E: List item 0 has incompatible type "str"
    exp.download_tensorboard("tb", max_size="1GB")  # E: Argument "max_size" to "download_tensorboard" of "Experiment" has incompatible type "str"
    exp.download_tensorboard(3)  # E: Argument 1 to "download_tensorboard" of "Experiment" has incompatible type "int"
    aexp.download_tensorboard("tb").name  # E: "Coroutine[Any, Any, Path]" has no attribute "name"
    where: str = exp.download_tensorboard("tb")  # E: Incompatible types in assignment
    print(where)
