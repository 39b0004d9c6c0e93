"""Forgetting an await in the async API is a type error, not a silent coroutine."""

import detorm.aio as det


async def forgot(session: det.AsyncSession) -> None:
    rows: list[det.Experiment] = det.Experiment.query(session).all()  # E: Incompatible types in assignment (expression has type "Coroutine[Any, Any, list[Experiment]]"
    for exp in det.Experiment.query(session):  # E: "AsyncExperimentQuery" has no attribute "__iter__"
        print(exp)
    det.Experiment.query(session).filter(stat="ACTIVE")  # E: Unexpected keyword argument "stat"
    count: int = det.Trial.query(session).count()  # E: Incompatible types in assignment
    print(rows, count)
