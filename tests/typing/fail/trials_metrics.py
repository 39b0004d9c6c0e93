"""Trial actions and profiler metrics: wrong uses are caught by mypy."""

import detorm.aio
from detorm import Trial

trial = Trial.query().first()
assert trial is not None
trial.kill(force=True)  # E: Unexpected keyword argument "force" for "kill" of "Trial"
Trial.query().move_to("nlp")  # E: Argument 1 to "move_to" of "TrialQuery" has incompatible type "str"
count: int = Trial.query().archive()  # E: Incompatible types in assignment (expression has type "BulkResult[int]", variable has type "int")
for sample in trial.profiler_metrics():
    name: int = sample.name  # E: Incompatible types in assignment (expression has type "str", variable has type "int")
trial.profiler_metrics(groups=3)  # E: Argument "groups" to "profiler_metrics" of "Trial" has incompatible type "int"


async def forgot_await(trial: detorm.aio.Trial) -> None:
    groups: dict[str, list[str]] = trial.metric_groups()  # E: Incompatible types in assignment (expression has type "Coroutine[Any, Any, dict[str, list[str]]]"
