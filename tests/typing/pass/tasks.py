"""Commands, their siblings, task information and templates, as a script uses them."""

from typing import Any, assert_type

import detorm
import detorm.aio as det


def script(session: detorm.Session) -> None:
    command = detorm.Command.launch(["python", "train.py"], template="gpu", session=session)
    assert_type(command, detorm.Command)
    assert_type(command.wait(timeout=60), detorm.TaskState)
    assert_type(command.id, str)
    assert_type(command.priority, int | None)
    command.priority = 10
    for entry in command.logs(search="loss", limit=10):
        assert_type(entry, detorm.LogEntry)
    running = detorm.Command.query(session).filter(username="alice", state="RUNNING")
    assert_type(running.kill(), detorm.BulkResult[str])
    assert_type(running.order_by("-start_time").first(), detorm.Command | None)
    assert_type(session.get(detorm.Task, command.id).allocations, tuple[detorm.AllocationInfo, ...])
    assert_type(command.task, detorm.Task)
    assert_type(command.workspace, detorm.Workspace[Any])  # a parent: new or saved
    board = detorm.Tensorboard.launch(query=detorm.Experiment.query(session).filter(state="ACTIVE"))
    assert_type(board.url, str)
    assert_type(board.experiments, detorm.ExperimentQuery)
    assert_type(detorm.Workspace.query(session).first(), detorm.Workspace | None)
    template = detorm.Template.create("gpu", {"resources": {"slots": 2}}, session=session)
    assert_type(template, detorm.Template)
    template.config = {"resources": {"slots": 4}}
    assert_type(
        session.query(detorm.Template).filter(name__contains="gpu").all(), list[detorm.Template]
    )
    assert_type(session.query(detorm.Shell), detorm.ShellQuery)
    jobs = detorm.Job.query(session).filter(state="QUEUED", resource_pool="default")
    first, second = jobs.order_by("jobs_ahead").all()[:2]
    second.move(ahead_of=first)
    first.weight = 2.0
    assert_type(command.job, detorm.Job)
    assert_type(session.queue_stats()["default"].queued, int)
    session.commit()
    for task in detorm.Task.query(session).filter(type="NOTEBOOK").order_by("-start_time"):
        assert_type(task.allocations[0].resources, tuple[detorm.AllocationResources, ...] | None)
    trial = session.get(detorm.Trial, 1)
    assert_type(trial.tasks, detorm.TaskQuery)
    assert_type(trial.tasks.all(), list[detorm.Task])
    pool = session.get(detorm.ResourcePool, "default")
    assert_type(pool.slots_available - pool.slots_used, int)
    assert_type(detorm.ResourcePool.query(session).filter(slots_used__gt=0).first(), detorm.ResourcePool | None)
    agent = detorm.Agent.query(session).order_by("-registered_time").one()
    assert_type(agent.slots[0], detorm.SlotInfo)
    assert_type(session.query(detorm.Agent), detorm.AgentQuery)


async def notebook(session: det.AsyncSession) -> None:
    command = await det.Command.launch("echo hi", session=session)
    assert_type(await command.wait(), detorm.TaskState)
    async for entry in command.logs(follow=True):
        assert_type(entry, detorm.LogEntry)
    assert_type(await det.Notebook.query(session).kill(), detorm.BulkResult[str])
    assert_type(await det.Template.query(session).all(), list[det.Template])
    assert_type(await det.Task.query(session).count(), int)
    trial = await session.get(det.Trial, 1)
    assert_type(await trial.tasks.all(), list[det.Task])
    assert_type(await det.ResourcePool.query(session).all(), list[det.ResourcePool])
    assert_type(session.query(det.Agent), det.AsyncAgentQuery)
