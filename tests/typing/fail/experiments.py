"""Mistakes with experiment creation, continuation and waits are type errors."""

import detorm
import detorm.aio as det


async def mistakes(session: detorm.Session, aio: det.AsyncSession, trial: detorm.Trial) -> None:
    detorm.Experiment.create(["name: x"])  # E: Argument 1 to "create" of "Experiment" has incompatible type
    detorm.Experiment.create({"name": "x"}, "model", "project")  # E: Too many positional arguments
    detorm.Experiment.create({"name": "x"}, project="vision")  # E: Argument "project" to "create" of "Experiment" has incompatible type "str"
    detorm.Experiment.create({"name": "x"}, session=aio)  # E: Argument "session" to "create" of "Experiment" has incompatible type "AsyncSession"
    state: detorm.TrialState = trial.experiment.wait()  # E: Incompatible types in assignment
    print(state)
    trial.continue_training(max_length="10")  # E: Argument "max_length" to "continue_training" of "Trial" has incompatible type "str"
    exp = await det.Experiment.create({"name": "x"}, session=aio)
    exp.wait().name  # E: "Coroutine[Any, Any, ExperimentState]" has no attribute "name"
    bad: detorm.Experiment = await exp.fork()  # E: Incompatible types in assignment
    print(bad)
