"""Commands, shells, notebooks, TensorBoards, task information, templates, the job queue,
resource pools and agents through both APIs, against detorm.local's simulated scheduler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detorm import TaskState, TaskType
from detorm.errors import (
    CommitError,
    ContextError,
    InvalidAttribute,
    InvalidType,
    InvalidValue,
    NotFound,
    WaitTimeout,
)
from detorm.local import LocalMaster, _scheduler
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster


@pytest.fixture(autouse=True)
def quick_tasks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Commands run for a simulated time; tests need little of it."""
    for name in ("PULLING_SECONDS", "STARTING_SECONDS", "KILL_SECONDS"):
        monkeypatch.setattr(_scheduler, name, 0.05)
    monkeypatch.setattr(_scheduler, "COMMAND_SECONDS", 0.3)
    yield


def test_launch_returns_the_complete_command(writer_api: Api) -> None:
    api = writer_api
    api(api.session.whoami())  # the async session logs in before its first request
    sent = api.session.requests_sent
    command = api(api.Command.launch(["echo", "hello"], session=api.session))
    assert api.session.requests_sent == sent + 1
    assert isinstance(command, api.Command)
    # The master runs it through its wrapper script, and says so in the config it answers with.
    assert command.config["entrypoint"][-2:] == ["echo", "hello"]
    assert command.state in set(TaskState) and command.job_id and command.username
    assert command.priority is None or isinstance(command.priority, int)
    again = api(api.session.get(api.Command, command.id))
    assert again is command  # the identity map


def test_wait_returns_the_terminal_state_and_the_logs_hold_the_output(writer_api: Api) -> None:
    api = writer_api
    command = api(api.Command.launch("echo hello", session=api.session))
    assert api(command.wait(timeout=30)) == TaskState.TERMINATED
    assert command.state == TaskState.TERMINATED and command.exit_status
    lines = [entry.message for entry in api.list(command.logs())]
    assert lines and all(entry.task_id == command.id for entry in api.list(command.logs()))
    assert api.list(command.logs(limit=1)) and len(api.list(command.logs(limit=1))) == 1
    task = api(api.session.get(api.Task, command.id))
    assert task.type == TaskType.COMMAND and task.allocations
    assert api.list(task.logs()) == api.list(command.logs())


def test_wait_times_out_on_a_task_that_runs_until_killed(writer_api: Api) -> None:
    api = writer_api
    notebook = api(api.Notebook.launch(session=api.session))
    with pytest.raises(WaitTimeout):
        api(notebook.wait(timeout=0.5, interval=0.1))
    assert notebook.url.startswith(api.session.master) and notebook.service_address in notebook.url
    api(notebook.kill())
    assert api(notebook.wait(timeout=30, interval=0.1)) == TaskState.TERMINATED


def test_query_kill_kills_each_match_once(writer_api: Api) -> None:
    api = writer_api
    shells = [
        api(api.Shell.launch(config={"description": f"debug {i}"}, session=api.session))
        for i in range(3)
    ]
    other = api(api.Shell.launch(config={"description": "keep"}, session=api.session))
    query = api.Shell.query(api.session).filter(description__contains="debug")
    assert sorted(s.id for s in api.list(query)) == sorted(s.id for s in shells)
    result = api(query.kill())
    assert sorted(result.succeeded) == sorted(s.id for s in shells) and not result.failed
    for shell in shells:
        assert api(shell.wait(timeout=30, interval=0.1)) == TaskState.TERMINATED
    assert api(api(api.session.get(api.Shell, other.id)).refresh()).state != TaskState.TERMINATED
    api(other.kill())


def test_priority_is_an_edit_of_the_unit_of_work(writer_api: Api) -> None:
    api = writer_api
    notebook = api(api.Notebook.launch(session=api.session))
    notebook.priority = 7
    (planned,) = list(api.session.pending())
    assert planned.call.method == "POST"
    assert planned.call.path == f"/api/v1/notebooks/{notebook.id}/set_priority"
    assert planned.call.body == {"priority": 7}
    api(api.session.commit())
    assert api.session.dirty == [] and list(api.session.pending()) == []
    assert api(notebook.refresh()).priority == 7
    with pytest.raises(InvalidValue):
        notebook.priority = 0
    api(notebook.kill())


def test_templates(writer_api: Api) -> None:
    api = writer_api
    config = {"resources": {"slots": 2, "priority": 11}}
    template = api(api.Template.create("two-gpus", config, session=api.session))
    assert template.name == "two-gpus" and template.config == config
    listed = api.list(api.Template.query(api.session).filter(name__contains="GPU"))
    assert [t.name for t in listed] == ["two-gpus"]  # ILIKE on the master
    assert api.list(api.Template.query(api.session).filter(name="two-GPUS")) == []
    template.config["description"] = "from the template"
    api(api.session.commit())
    assert api(api.session.get(api.Template, "two-gpus")).config["description"] == (
        "from the template"
    )
    command = api(api.Command.launch("true", template=template, session=api.session))
    assert command.description == "from the template" and command.priority == 11
    # The master takes the slots from the request's own config only (ParseJustResources).
    assert command.config["resources"]["slots"] == 1
    with pytest.raises(InvalidAttribute, match=r"template.s key: template.rename\(new_name\)"):
        template.name = "gpus-2"  # the identity of a pending object cannot change
    assert template.name == "two-gpus" and api.session.dirty == []
    api(template.rename("gpus-2"))
    assert template.name == "gpus-2"
    assert api(api.session.get(api.Template, "gpus-2")) is template
    with pytest.raises(NotFound):
        api(api.session.get(api.Template, "two-gpus"))
    api(template.delete())
    with pytest.raises(NotFound):
        api(api.session.get(api.Template, "gpus-2"))


def test_an_unknown_template_is_the_masters_not_found(writer_api: Api) -> None:
    api = writer_api
    with pytest.raises(NotFound):
        api(api.Command.launch("true", template="no-such-template", session=api.session))


def test_tensorboards(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    experiment_id = fresh_cluster.experiments["resnet-base"]
    board = api(api.Tensorboard.launch(experiments=[experiment_id], session=api.session))
    assert board.experiment_ids == (experiment_id,)
    assert [e.id for e in api.list(board.experiments)] == [experiment_id]
    query = api.Experiment.query(api.session).filter(name__contains="resnet")
    sent = api.session.requests_sent
    by_query = api(api.Tensorboard.launch(query=query, session=api.session))
    assert api.session.requests_sent == sent + 1  # the filter itself: nothing read first
    # The master keeps the ids it was given (LaunchTensorboard: Metadata.ExperimentIDs =
    # req.ExperimentIds): a TensorBoard of a filter lists none.
    assert by_query.experiment_ids == ()
    assert by_query.url.endswith(by_query.service_address)
    result = api(api.Tensorboard.query(api.session).kill())
    assert sorted(result.succeeded) == sorted([board.id, by_query.id])


def test_workspace_and_user_relationships(writer_api: Api) -> None:
    api = writer_api
    command = api(api.Command.launch("true", session=api.session))
    workspace = api(api.session.load(command, "workspace"))
    assert workspace.id == command.workspace_id
    assert command.id in [c.id for c in api.list(workspace.commands)]
    user = api(api.session.load(command, "user"))
    assert user.username == command.username


def test_bad_input_is_refused_before_sending(writer_api: Api) -> None:
    api = writer_api
    command = api(api.Command.launch("true", session=api.session))
    sent = api.session.requests_sent
    with pytest.raises(InvalidValue):
        api(api.Tensorboard.launch(session=api.session))  # nothing to show
    with pytest.raises(InvalidValue):
        api(api.Command.launch([], session=api.session))
    with pytest.raises(InvalidType):
        api(api.Command.launch("true", config="slots: 2", session=api.session))
    with pytest.raises(InvalidValue):
        api(command.wait(timeout=-1))
    with pytest.raises(InvalidType):
        api(api.Template.create("t", ["not", "a", "dict"], session=api.session))
    with pytest.raises(InvalidValue):
        api(api.session.get(api.Command, ""))
    assert api.session.requests_sent == sent


def test_killing_a_terminated_task_changes_nothing(writer_api: Api) -> None:
    # KillNTSC signals the allocation only while the task is not completed; otherwise it
    # answers with the command as it is (no error).
    api = writer_api
    command = api(api.Command.launch("true", session=api.session))
    api(command.wait(timeout=30, interval=0.1))
    api(command.kill())
    assert command.state == TaskState.TERMINATED
    with pytest.raises(NotFound):
        api(api.session.get(api.Command, "00000000-0000-0000-0000-000000000000"))


def test_the_job_queue_is_reordered_in_one_commit(
    writer_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = writer_api
    # Eight slots (some held by the cluster's active trials): the last commands wait, and keep
    # waiting while the test runs (with quick_tasks' 0.3 s a slow run saw a command end and the
    # moved job start before the queue was read again).
    monkeypatch.setattr(_scheduler, "COMMAND_SECONDS", 3600.0)
    launched = [
        api(
            api.Command.launch("sleep 600", config={"resources": {"slots": 4}}, session=api.session)
        )
        for _ in range(4)
    ]
    commands = api.Job.query(api.session).filter(type="COMMAND")
    assert {j.id for j in api.list(commands)} == {c.job_id for c in launched}
    queued = api.list(commands.filter(state="QUEUED").order_by("jobs_ahead"))
    assert len(queued) >= 2
    order = [c.job_id for c in launched]
    assert [j.id for j in queued] == [i for i in order if i in {j.id for j in queued}]
    first, second = queued[-2:]
    second.move(ahead_of=first)
    first.weight = 2.0
    (planned,) = list(api.session.pending())
    assert planned.call.path == "/api/v1/job-queues"
    assert planned.call.body == {
        "updates": [
            {"jobId": second.id, "priority": first.priority - 1},
            {"jobId": first.id, "weight": 2.0},
        ]
    }
    api(api.session.commit())
    assert api.session.dirty == []
    again = [j.id for j in api.list(commands.filter(state="QUEUED").order_by("jobs_ahead"))]
    assert again.index(second.id) < again.index(first.id)
    assert second.priority == first.priority - 1 and first.weight == 2.0
    everything = api.list(api.Job.query(api.session))
    stats = api(api.session.queue_stats())
    assert stats["default"].queued == sum(j.state.short == "QUEUED" for j in everything)
    assert api(api.session.load(launched[0], "job")).id == launched[0].job_id
    with pytest.raises(InvalidValue):
        first.move(ahead_of=first, behind_of=second)
    with pytest.raises(InvalidValue):
        first.priority = 100
    api(api.Command.query(api.session).kill())


def test_a_refused_queue_edit_stays_pending(writer_api: Api) -> None:
    api = writer_api
    command = api(api.Command.launch("sleep 600", session=api.session))
    job = api(api.session.load(command, "job"))
    job.resource_pool = "elsewhere"
    (planned,) = list(api.session.pending())
    assert planned.call.body == {"updates": [{"jobId": job.id, "resourcePool": "elsewhere"}]}
    with pytest.raises(CommitError) as caught:
        api(api.session.commit())
    assert "setting resource pool for job type COMMAND is not supported" in str(caught.value)
    assert api.session.dirty == [job] and job.resource_pool == "elsewhere"
    api(api.session.rollback())
    assert job.resource_pool == "default" and api.session.dirty == []
    api(command.kill())


@pytest.fixture
def executing(environ: dict[str, str]) -> Iterator[str]:
    """A detorm.local that really runs commands (``--execute-commands``)."""
    with LocalMaster(process=False, execute_commands=True) as master:
        yield master.url


@pytest.mark.parametrize("mode", MODES)
def test_the_context_is_uploaded_as_the_det_cli_does(
    mode: Mode, executing: str, environ: dict[str, str], tmp_path: Path
) -> None:
    context = tmp_path / "context"
    (context / "data").mkdir(parents=True)
    (context / "hello.txt").write_text("hello from the context\n")
    (context / "data" / "big.bin").write_bytes(b"x" * 10)
    (context / ".detignore").write_text("data/\n")
    extra = tmp_path / "extra.txt"
    extra.write_text("included\n")
    with Api(mode, executing, environ) as api:
        command = api(
            api.Command.launch(
                "cat hello.txt extra.txt; ls data 2>&1 || echo no-data",
                context=context, includes=[extra], session=api.session,
            )
        )  # fmt: skip
        assert api(command.wait(timeout=60, interval=0.1)) == TaskState.TERMINATED
        printed = [entry.message.rstrip("\n") for entry in api.list(command.logs())]
        assert "hello from the context" in printed and "included" in printed
        assert "no-data" in printed  # .detignore kept data/ out
        outside = tmp_path / "secret"
        outside.write_text("not yours")
        (context / "link").symlink_to(outside)
        sent = api.session.requests_sent
        with pytest.raises(ContextError):  # a link out of the context is not followed
            api(api.Command.launch("true", context=context, session=api.session))
        with pytest.raises(ContextError):
            api(api.Command.launch("true", context=tmp_path / "missing", session=api.session))
        assert api.session.requests_sent == sent


# --- task information, resource pools and agents --------------------------------------------------
def _until_running(api: Api, task: Any) -> None:
    deadline = time.monotonic() + 10
    while api(task.refresh()).state != TaskState.RUNNING:
        assert time.monotonic() < deadline, task.state
        time.sleep(0.05)


def test_task_query_reads_what_the_scheduler_holds(writer_api: Api) -> None:
    api = writer_api
    notebook = api(api.Notebook.launch(session=api.session))
    _until_running(api, notebook)
    sent = api.session.requests_sent
    held = {task.id: task for task in api.list(api.Task.query(api.session))}
    assert api.session.requests_sent == sent + 1 + len(held)  # GetTasks, then GetTask each
    task = held[notebook.id]
    assert task.type == TaskType.NOTEBOOK and task.end_time is None
    (allocation,) = task.allocations
    assert allocation.state == TaskState.RUNNING and allocation.resource_pool == "default"
    assert allocation.resources and all(r.devices for r in allocation.resources)
    assert api(api.session.get(api.Task, notebook.id)) is task  # the identity map
    notebooks = api.list(api.Task.query(api.session).filter(type="NOTEBOOK"))
    assert [t.id for t in notebooks] == [notebook.id]
    assert api(api.Task.query(api.session).count()) == len(held)

    api(notebook.kill())
    api(notebook.wait(timeout=30))
    assert notebook.id not in {t.id for t in api.list(api.Task.query(api.session))}
    # By id, an ended task is still read (GetTask); its allocation is no longer held.
    (ended,) = api.list(api.Task.query(api.session).filter(id=notebook.id))
    assert ended is task and ended.end_time is not None
    assert ended.allocations[0].resource_pool is None and ended.allocations[0].resources is None


def test_trial_tasks_are_read_one_by_one(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    trial = api(api.session.get(api.Trial, fresh_cluster.trials["resnet-base"][0]))
    assert trial.task_ids
    sent = api.session.requests_sent
    tasks = api.list(trial.tasks)
    assert [t.id for t in tasks] == list(trial.task_ids)
    assert api.session.requests_sent == sent + len(trial.task_ids)
    assert all(t.type == TaskType.TRIAL for t in tasks)
    assert api(trial.tasks.first()) is api(api.session.load(trial, "task"))
    # Ids that name no task (none can be empty or hold a "/") match nothing.
    sent = api.session.requests_sent
    assert api.list(api.Task.query(api.session).filter(id__in=["no-such-task", "a/b", ""])) == []
    assert api.session.requests_sent == sent + 1


def test_resource_pools_and_agents(api: Api) -> None:
    (pool,) = api.list(api.ResourcePool.query(api.session))
    assert (pool.name, pool.type, pool.scheduler_type) == ("default", "STATIC", "PRIORITY")
    assert pool.default_compute_pool and pool.slots_available == 8
    assert api(api.session.get(api.ResourcePool, "default")) is pool
    (agent,) = api.list(api.Agent.query(api.session).order_by("-registered_time"))
    assert agent.enabled and "default" in agent.resource_pools
    assert agent.num_slots == len(agent.slots) == pool.slots_available
    assert [slot.id for slot in agent.slots] == [str(n) for n in range(agent.num_slots)]
    assert api(api.session.get(api.Agent, agent.id)) is agent
    assert api.list(api.Agent.query(api.session).filter(enabled=False)) == []
    with pytest.raises(NotFound, match="resource pool 'gpu' does not exist"):
        api(api.session.get(api.ResourcePool, "gpu"))
    with pytest.raises(NotFound):
        api(api.session.get(api.Agent, "no-such-agent"))
    sent = api.session.requests_sent
    with pytest.raises(InvalidValue):  # not one path segment: refused before sending
        api(api.session.get(api.Agent, "../agents"))
    with pytest.raises(InvalidType):
        api(api.session.get(api.ResourcePool, 1))
    assert api.session.requests_sent == sent
