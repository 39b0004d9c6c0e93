"""Misspelt fields and wrong value types are caught by mypy."""

from detorm import Experiment, Trial

Experiment.query().filter(stat="ACTIVE")  # E: Unexpected keyword argument "stat"
Experiment.query().filter(state="ACTIVATED")  # E: Argument "state" to "filter" of "ExperimentFilters" has incompatible type
Experiment.query().filter(num_trials="3")  # E: Argument "num_trials" to "filter" of "ExperimentFilters" has incompatible type "str"
Experiment.query().filter(tags__in=["a"])  # E: Unexpected keyword argument "tags__in"
Experiment.query().order_by("start_tim")  # E: Argument 1 to "order_by" of "ExperimentFilters" has incompatible type
Trial.query().filter(name="x")  # E: Unexpected keyword argument "name"
