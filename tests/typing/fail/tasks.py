"""Mistakes with commands and templates are type errors."""

import detorm


def mistakes(session: detorm.Session) -> None:
    detorm.Command.query(session).filter(state="RUNING")  # E: Argument "state" to "filter" of "CommandFilters" has incompatible type
    detorm.Command.query(session).filter(experiment_id=3)  # E: Unexpected keyword argument "experiment_id"
    detorm.Shell.launch(["bash"], session=session)  # E: Too many positional arguments
    detorm.Template.query(session).order_by("start_time")  # E: Argument 1 to "order_by" of "TemplateFilters" has incompatible type
    ids: list[int] = detorm.Command.query(session).kill().succeeded  # E: Incompatible types in assignment
    print(ids)
    detorm.Job.query(session).filter(state="RUNNING")  # E: Argument "state" to "filter" of "JobFilters" has incompatible type
    detorm.Job.query(session).first().move(ahead_of=3)  # E: Argument "ahead_of" to "move" of "Job" has incompatible type "int"
    detorm.Task.query(session).filter(type="TRAINING")  # E: Argument "type" to "filter" of "TaskFilters" has incompatible type
    detorm.Task.query(session).filter(state="RUNNING")  # E: Unexpected keyword argument "state"
    detorm.ResourcePool.query(session).order_by("slots")  # E: Argument 1 to "order_by" of "ResourcePoolFilters" has incompatible type
    detorm.Agent.query(session).filter(num_slots="8")  # E: Argument "num_slots" to "filter" of "AgentFilters" has incompatible type
