"""Typed attributes and results."""

from detorm import Experiment

exp = Experiment.query().first()
assert exp is not None
name: int = exp.name  # E: Incompatible types in assignment (expression has type "str", variable has type "int")
count: str = Experiment.query().count()  # E: Incompatible types in assignment (expression has type "int", variable has type "str")
exp.trials.filter(state="ACTIVE").order_by("-nope")  # E: Argument 1 to "order_by" of "TrialFilters" has incompatible type
exp.priority = "high"  # E: Incompatible types in assignment (expression has type "str", variable has type "int | None")
exp.state = "ACTIVE"  # E: Incompatible types in assignment
exp.project = exp.project.workspace  # E: Incompatible types in assignment (expression has type "Workspace[Any]", variable has type "Project[Any] | int")
trial = exp.trials.first()
assert trial is not None
trial.experiment = exp  # E: Incompatible types in assignment (expression has type "Experiment", variable has type "Never")
exp.nmae = "typo"  # E: "Experiment" has no attribute "nmae"
print(exp.descripton)  # E: "Experiment" has no attribute "descripton"
