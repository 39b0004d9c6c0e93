"""Every lookup and ordering of every field of every resource, end to end against detorm.local.

The cases are generated from the catalog the typed lookups are generated from
(``detorm/_plan/_columns.py``): each filter runs through the SDK against a seeded detorm.local and the
ids it returns are compared with a brute-force evaluation of the same condition over the full
list of objects, read without a filter; each ordering with a brute-force sort under the rules of
the endpoint the planner chose. The evaluator here is written from the master's semantics, not
from the SDK's: SQL NULL logic (a comparison with a missing value is not true), ``contains`` as
``ILIKE '%v%'`` on text and as membership on tag sets, ``isnull`` as the master's ``isEmpty``
(NULL, ``''`` or ``'[]'``; an empty tag set), text compared with the master's database collation
(``detorm/_plan/_collation.py``), NaN above every number. A sample of combinations (``|``, ``~``) and
of hyperparameter and metric expressions is checked the same way.

Commands, shells, notebooks, TensorBoards, templates and queue edits are made through the SDK by
several users, on detorm.local's simulated cluster with its durations at 0: every task has
settled (running, queued for slots that never free up, or terminated) before anything is read,
and the fixture checks at the end that nothing changed while the cases ran.

The cases take the API they run with from a ``mode`` fixture: ``test_lookups_e2e_sync.py`` runs
them with the sync API, ``test_lookups_e2e_async.py`` with the async one, each file on a seeded
cluster of its own. Two files because pytest-xdist hands out whole files (``--dist loadfile``):
in one, these cases were the longest unit of the suite by far, run by one worker while the other
idled at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from typing import Any

import pytest
from sqlmodel import select

import detorm
from detorm import (
    Agent,
    Checkpoint,
    Command,
    Experiment,
    Job,
    Model,
    ModelVersion,
    Notebook,
    Project,
    Q,
    ResourcePool,
    Shell,
    Task,
    Template,
    Tensorboard,
    Trial,
    Trigger,
    User,
    Webhook,
    Workspace,
    hp,
    metrics,
)
from detorm._plan._collation import collation_key
from detorm._plan._columns import COLUMNS, Column
from detorm._plan._conditions import And, Condition, FieldRef, Leaf, Not, Or, parse_ordering
from detorm._resources._base import Resource, TagSet
from detorm._wire import (
    STORED_EXPERIMENT_STATES,
    STORED_TRIAL_STATES,
    ExperimentState,
    JobState,
    JobType,
    TaskState,
    TrialState,
    WireEnum,
)
from detorm.errors import QueryError
from detorm.local import LocalMaster, Seeder
from detorm.local import _scheduler as sim
from detorm.local import _tables as t
from detorm.local._db import utcnow
from detorm.local._routes import commands as command_routes
from tests.conftest import NO_HOME
from tests.sdk.apis import Api, Mode

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
RESOURCES: dict[str, Any] = {  # the resource classes, by name
    "Experiment": Experiment, "Trial": Trial, "Checkpoint": Checkpoint, "Workspace": Workspace,
    "Project": Project, "Model": Model, "ModelVersion": ModelVersion, "User": User,
    "Command": Command, "Shell": Shell, "Notebook": Notebook, "Tensorboard": Tensorboard,
    "Template": Template, "Job": Job, "Task": Task, "ResourcePool": ResourcePool,
    "Agent": Agent, "Webhook": Webhook,
}  # fmt: skip
GENERIC_TASKS = ("Command", "Shell", "Notebook", "Tensorboard")


# --- the dataset ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """One experiment of the dataset, its trials (one per loss curve) and their checkpoints."""

    name: str
    project: str
    state: str = "COMPLETED"
    labels: tuple[str, ...] = ()
    description: str = ""
    owner: str = "determined"
    progress: float | None = None
    archived: bool = False
    parent: int | None = None  # index of an earlier spec
    pool: str = "default"
    searcher: str = "random"
    smaller_is_better: bool = True
    external: str | None = None
    losses: tuple[tuple[float, ...], ...] = ((0.5, 0.4),)
    restarts: int = 0
    nan: bool = False  # training losses are NaN

    @property
    def running(self) -> bool:
        return self.state in ("ACTIVE", "PAUSED", "STOPPING_COMPLETED")


SPECS: tuple[Spec, ...] = (
    Spec("resnet", "vision", labels=("prod", "cv"), description="ResNet sweep", progress=1.0,
         losses=((0.9, 0.5, 0.31), (0.8, 0.6))),
    Spec("resnet", "nlp", labels=("cv",), owner="alice", progress=0.504, external="ext-1",
         losses=((-0.25, -1.5),), restarts=2),
    Spec("BERT-base", "vision", labels=("Prod",), description="bert, cased", owner="Émile",
         state="ACTIVE", progress=0.25, pool="gpu-pool", losses=((1.2, 0.9), ())),
    Spec("bert_tiny", "nlp", labels=("nlp", "ü"), state="ERROR", external="", searcher="single",
         losses=((),)),
    Spec("100% done", "Uncategorized", description="100%", state="CANCELED", owner="alice",
         smaller_is_better=False, losses=((0.7, 0.75), (0.2,)), nan=True),
    Spec("ünïcode ✓", "vision", labels=("prod",), description="naïve café", state="PAUSED",
         progress=0.0, parent=0, pool="gpu-pool", external="[]", losses=((2.0, 1.5),)),
    Spec("vit", "nlp", labels=("cv", "gen"), archived=True, parent=1, owner="zed_ops",
         searcher="single", losses=((0.3,),)),
    Spec("Vit-large", "vision", labels=("gen",), state="STOPPING_COMPLETED", progress=0.999,
         owner="Émile", losses=((0.45,), (0.45,))),
    Spec("gpt_mini", "nlp", labels=("nlp",), description="GPT mini", parent=0,
         smaller_is_better=False, external="ext-2", losses=((), (0.1, 0.2))),
    # Its trial holds one slot of the default pool: an experiment job in the queue.
    Spec("sweep 50%", "nlp", labels=("gen",), state="ACTIVE", owner="alice", progress=0.5,
         losses=((0.6, 0.55),)),
)  # fmt: skip


# Search spaces besides constants (the others have lr 0.1 / (i + 1) and arch "net<i % 3>"): a
# range matches a comparison when either bound does.
HYPERPARAMETERS: dict[int, dict[str, Any]] = {
    2: {"lr": {"type": "double", "minval": 0.01, "maxval": 0.2}, "arch": "net2"},
    5: {"lr": 0.02, "arch": {"type": "categorical", "vals": ["net1", "net2"]}},
    7: {"lr": {"type": "int", "minval": -3, "maxval": -1}, "arch": "net1"},
}


def hyperparameters(index: int) -> dict[str, Any]:
    return HYPERPARAMETERS.get(index, {"lr": 0.1 / (index + 1), "arch": f"net{index % 3}"})


def seed(master: LocalMaster) -> None:
    with Seeder(master.database, now=T0) as s:
        s.user("alice", display_name="Alice")
        s.user("Émile", display_name="émile")
        s.user("zed_ops", admin=True, active=False)
        s.user("Bob", remote=True)
        research = s.workspace("research", owner="alice")
        lab = s.workspace("Research Lab")
        s.workspace("_TestWS", archived=True, owner="Émile")
        s.workspace("ops ñ", owner="zed_ops")  # the last: one id above it names no workspace
        projects = {
            "Uncategorized": 1,
            "vision": s.project("vision", workspace=research, description="computer vision"),
            "nlp": s.project("nlp", workspace=research, owner="alice"),
        }
        s.project("Vision", workspace=lab, description="Vision, again")
        s.project("ñandú", workspace=lab, archived=True, owner="Émile", description="ünï")
        experiments: list[int] = []
        for index, spec in enumerate(SPECS):
            experiments.append(_experiment(s, spec, index, projects, experiments))
        _registry(s, research)


def _experiment(
    s: Seeder, spec: Spec, index: int, projects: dict[str, int], earlier: list[int]
) -> int:
    start = T0 + timedelta(hours=3 * index, seconds=7 * index)
    end = None if spec.running else start + timedelta(minutes=17 * index + 1, seconds=index)
    exp = s.experiment(
        project=projects[spec.project], name=spec.name, state=spec.state, labels=spec.labels,
        description=spec.description, owner=spec.owner, progress=spec.progress,
        archived=spec.archived, start_time=start, end_time=end,
        parent_id=None if spec.parent is None else earlier[spec.parent], resource_pool=spec.pool,
        searcher=spec.searcher, smaller_is_better=spec.smaller_is_better,
        hyperparameters=hyperparameters(index),
    )  # fmt: skip
    row = s.db.get(t.ExperimentRow, exp)
    assert row is not None
    row.external_experiment_id = spec.external
    s.db.add(row)
    for number, losses in enumerate(spec.losses):
        trial = s.trial(
            exp, hparams={"lr": 0.1 / (index + 1) * (number + 1)},
            restarts=spec.restarts + number, start_time=start + timedelta(seconds=5 + number),
            end_time=None if end is None else start + timedelta(minutes=11 + number),
        )  # fmt: skip
        reports = [
            (100 * (step + 1), {"validation_loss": loss}, start + timedelta(minutes=step + 1))
            for step, loss in enumerate(losses)
        ]
        if reports:
            s.metrics(trial, "validation", reports)
            # NaN, which the wire carries as "NaN": as in Postgres, above every number
            training = [(b, {"loss": math.nan if spec.nan else v["validation_loss"] * 2}, e)
                        for b, v, e in reports]  # fmt: skip
            s.metrics(trial, "training", training)
        for step in range(len(losses)):
            s.checkpoint(
                trial, total_batches=100 * (step + 1),
                state="DELETED" if (index + step) % 4 == 3 else "COMPLETED",
                report_time=start + timedelta(minutes=step + 1, seconds=30),
                metadata={"steps_completed": None} if index % 4 == number == step == 0 else None,
            )  # fmt: skip
    return exp


def _registry(s: Seeder, workspace: int) -> None:
    catalog = s.model("resnet-prod", description="The ResNet in production", labels=["prod"])
    s.model("Resnet-staging", labels=["staging", "cv"], owner="alice", workspace=workspace)
    s.model("ünï-model", description="naïve", archived=True, owner="Émile")
    s.model("empty")
    uuids = s.db.exec(select(t.CheckpointRow.uuid).order_by(t.CheckpointRow.report_time)).all()
    for number, uuid in enumerate(uuids[:3]):
        s.model_version(
            catalog, uuid, name="" if number == 1 else f"v{number}",
            labels=["prod"] if number else [], owner="alice" if number == 2 else "determined",
        )  # fmt: skip


# --- commands, shells, notebooks, TensorBoards, templates and the job queue ---------------------
@dataclass(frozen=True)
class TaskSpec:
    """A task launched through the SDK by ``user`` in ``workspace``, in this order."""

    kind: str  # Command, Shell, Notebook, Tensorboard
    user: str
    workspace: str
    description: str = ""  # "": the master's "<Kind> (<petname>)" (always, for TensorBoards)
    slots: int = 1
    end: str = ""  # "exit" (status 0), "crash" (status 3), "kill" once running; "": runs on
    waits: bool = False  # more slots than are left: QUEUED for good
    priority: int | None = None  # queue edits, sent once everything is launched
    weight: float | None = None
    experiments: tuple[int, ...] = (0,)  # a TensorBoard's, by index in SPECS

    @property
    def state(self) -> TaskState:
        if self.end:
            return TaskState.TERMINATED
        return TaskState.QUEUED if self.waits else TaskState.RUNNING


# The default pool has 8 slots: the active experiment's trial holds 1, the tasks that run on 4
# (TensorBoards and zero-slot shells take aux containers); the last three want more than the 3
# left, and nothing ever ends to free them.
TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("Command", "determined", "Uncategorized", "100% done_ÜNÏ", end="exit"),
    TaskSpec("Command", "alice", "research", "train_resnet", slots=2, end="exit"),
    TaskSpec("Command", "Émile", "research", "Crash: naïve café", end="crash"),
    TaskSpec("Command", "determined", "Research Lab", end="kill"),
    TaskSpec("Notebook", "determined", "Uncategorized", priority=10),
    TaskSpec("Notebook", "alice", "research", "Notebook ü_1", slots=2, weight=0.5),
    TaskSpec("Notebook", "Émile", "ops ñ", "nb 50%", end="kill"),
    TaskSpec("Shell", "Émile", "research", "ssh_Émile"),
    TaskSpec("Shell", "determined", "Uncategorized", slots=0, priority=99),
    TaskSpec("Shell", "alice", "ops ñ", "Shell killed", end="kill"),
    TaskSpec("Tensorboard", "determined", "Uncategorized", experiments=(0, 1)),
    TaskSpec("Tensorboard", "alice", "research", weight=2.5, experiments=(2,)),
    TaskSpec("Tensorboard", "Émile", "ops ñ", end="kill", experiments=(5,)),
    TaskSpec("Command", "alice", "research", "Queued_4 slots", slots=4, waits=True),
    TaskSpec("Command", "Émile", "ops ñ", "queued 8 SLOTS", slots=8, waits=True,
             priority=5),
    TaskSpec("Shell", "alice", "research", "big shell 6%", slots=6, waits=True, weight=4.0),
)  # fmt: skip
# The experiment's job: its queue edits (the experiment's config takes them).
EXPERIMENT_JOB = {"priority": 30, "weight": 2.0}
# Names the master gives tasks launched without a description (petname.Generate), made
# predictable.
PETNAMES = ("gladly-eager-ünï", "Mostly_100%-Zed", "quietly-brave-otter", "ÉCLAIR_fast-9",
            "wildly-calm-yak", "truly-odd-émile")  # fmt: skip
# (name, workspace): names that differ only in case, hold LIKE's wildcards, are not ASCII.
TEMPLATES = (
    ("base", "Uncategorized"), ("Base", "research"), ("gpu_8%", "research"),
    ("gpu-8", "Research Lab"), ("ünï Tpl", "Uncategorized"), ("Zeta", "ops ñ"),
)  # fmt: skip
USERS = ("determined", "alice", "Émile")  # who launches (zed_ops is inactive, Bob remote)


def launch_tasks(master: LocalMaster, environ: dict[str, str]) -> None:
    """Templates, tasks and queue edits through the SDK, with the simulated cluster's durations
    at 0 (a task takes them when launched): everything settles at once, and then nothing
    changes (no task ends or starts while the cases run)."""
    sessions = {u: detorm.Session(master.url, user=u, password="", environ=environ) for u in USERS}
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("PULLING_SECONDS", "STARTING_SECONDS", "COMMAND_SECONDS", "KILL_SECONDS"):
                mp.setattr(sim, name, 0.0)
            names = iter(PETNAMES)
            mp.setattr(command_routes, "petname", lambda: next(names))
            _launch_all(master, sessions, mp)
    finally:
        for session in sessions.values():
            session.close()


WEBHOOKS = (  # name, url, type, mode, workspace (None: global)
    ("deploy", "https://hooks.example.com/a", "DEFAULT", "WORKSPACE", None),
    ("Deploy ñ", "https://hooks.example.com/B", "SLACK", "SPECIFIC", "research"),
    ("gpu_8%", "http://127.0.0.1:9/x", "DEFAULT", "SPECIFIC", "Research Lab"),
    ("", "https://hooks.example.com/empty", "SLACK", "WORKSPACE", "research"),
)  # fmt: skip


def _create_webhooks(master: LocalMaster, workspaces: dict[str, int]) -> None:
    """Global webhooks need an admin; the cases' user sees the global ones and its own."""
    with detorm.Session(
        master.url, user="admin", password="", environ=NO_HOME
    ) as admin:
        for name, url, kind, mode, workspace in WEBHOOKS:
            Webhook.create(
                url, triggers=[Trigger("EXPERIMENT_STATE_CHANGE", {"state": "COMPLETED"})],
                webhook_type=kind, name=name, mode=mode,
                workspace=None if workspace is None else workspaces[workspace], session=admin,
            )  # fmt: skip


def _launch_all(
    master: LocalMaster, sessions: dict[str, detorm.Session], mp: pytest.MonkeyPatch
) -> None:
    s = sessions["determined"]
    workspaces = {w.name: w.id for w in Workspace.query(s).all()}
    experiments = sorted(e.id for e in Experiment.query(s).all())
    for name, workspace in TEMPLATES:
        config = {"description": f"from {name}", "resources": {"slots": 1}}
        Template.create(name, config, workspace=workspaces[workspace], session=s)
    _create_webhooks(master, workspaces)
    launched: list[tuple[TaskSpec, Any]] = []
    for spec in TASKS:
        # a command to crash or kill runs for an hour first (it takes the duration at launch)
        mp.setattr(sim, "COMMAND_SECONDS", 3600.0 if spec.end in ("crash", "kill") else 0.0)
        task = _launch(spec, sessions[spec.user], workspaces[spec.workspace], experiments)
        if spec.end in ("crash", "kill"):
            _wait_for(task, TaskState.RUNNING)
            if spec.end == "kill":
                task.kill()
            else:
                _crash(master, task.id, 3)
        launched.append((spec, task))
    jobs = {job.id: job for job in Job.query(s).all()}
    for spec, task in launched:
        for name in ("priority", "weight"):
            if getattr(spec, name) is not None:
                setattr(jobs[task.job_id], name, getattr(spec, name))
    (experiment_job,) = [job for job in jobs.values() if job.type is JobType.EXPERIMENT]
    for name, value in EXPERIMENT_JOB.items():
        setattr(experiment_job, name, value)
    s.commit()
    for spec, task in launched:
        _wait_for(task, spec.state)
    _check_settled(s)


def _launch(spec: TaskSpec, s: detorm.Session, workspace: int, experiments: list[int]) -> Any:
    config: dict[str, Any] = {"resources": {"slots": spec.slots}}
    if spec.description:
        config["description"] = spec.description
    if spec.kind == "Command":
        return Command.launch("sleep 3600", config=config, workspace=workspace, session=s)
    if spec.kind == "Tensorboard":
        ids = [experiments[index] for index in spec.experiments]
        return Tensorboard.launch(experiments=ids, workspace=workspace, session=s)
    cls = Shell if spec.kind == "Shell" else Notebook
    return cls.launch(config=config, workspace=workspace, session=s)


def _wait_for(task: Any, state: TaskState, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while task.refresh().state is not state:
        assert time.monotonic() < deadline, (task, state)
        time.sleep(0.02)


def _crash(master: LocalMaster, task_id: str, code: int) -> None:
    """The command's container exits with ``code``, as the runner of ``--execute-commands``
    reports a process's exit (the simulation's commands always exit with 0)."""
    with master.database.transaction(write=True) as db:
        allocation = db.get(t.AllocationRow, f"{task_id}.1")
        assert allocation is not None and allocation.state == "RUNNING"
        sim.exit_allocation(db, allocation, utcnow(), "exited", code=code)


def snapshot(s: detorm.Session) -> dict[str, Any]:
    """What could still change: the tasks' states and exits, the queue."""
    found: dict[str, Any] = {
        kind: sorted((o.id, o.state, o.exit_status) for o in RESOURCES[kind].query(s).all())
        for kind in GENERIC_TASKS
    }
    found["Job"] = sorted(
        (j.id, j.state, j.jobs_ahead, j.priority, j.weight, j.allocated_slots)
        for j in Job.query(s).all()
    )  # fmt: skip
    return found


def _check_settled(s: detorm.Session) -> None:
    for kind in GENERIC_TASKS:
        states = sorted(o.state.number for o in RESOURCES[kind].query(s).all())
        assert states == sorted(x.state.number for x in TASKS if x.kind == kind), kind
    jobs = Job.query(s).all()
    assert len(jobs) == 1 + sum(1 for x in TASKS if not x.end), jobs


# --- the cluster and the truth ----------------------------------------------------------------
Scope = dict[str, Any]  # the filter a resource is listed under (the master lists some per parent)


@dataclass
class World:
    """The seeded cluster, and a session holding every object read without a filter."""

    url: str
    environ: dict[str, str]
    truth: detorm.Session  # holds every object, read without a filter
    read: dict[tuple[str, str], list[Resource]] = field(default_factory=dict)
    scopes: dict[str, list[Scope]] = field(default_factory=dict)

    def session(self, mode: Mode) -> Api:
        """A fresh session per case, of either API: objects loaded by earlier cases cannot help
        this one. It uses the cached token: a login would change the user's last_auth_at under
        the test."""
        return Api(mode, self.url, self.environ, password=None, cache=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("lookups")
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    with LocalMaster(process=False) as master:
        seed(master)
        launch_tasks(master, environ)
        with detorm.Session(master.url, user="determined", password="", environ=environ) as s:
            before = snapshot(s)
            yield World(master.url, environ, s)
            assert snapshot(s) == before, "the cluster changed while the cases ran"


def everything(world: World, resource: str, scope: Scope) -> list[Resource]:
    """Every object of a scope, with every field loaded, read without a filter (once)."""
    key = (resource, repr(sorted(scope.items())))
    if key not in world.read:
        world.read[key] = _read_all(world.truth, resource, scope)
    return world.read[key]


def _read_all(s: detorm.Session, resource: str, scope: Scope) -> list[Resource]:
    if resource == "Experiment":
        rows = Experiment.query(s).all()
        for exp in rows:  # the search reports the best trial of each
            exp.best_trial()
        return list(rows)
    if resource == "Trial":
        experiments = Experiment.query(s).all()
        trials = [trial for e in experiments for trial in e.trials.all()]
        Trial.query(s).all()  # the runs search carries each trial's searcher metric
        return [x for x in trials if all(x.__dict__.get(k) == v for k, v in scope.items())]
    cls = RESOURCES[resource]
    return list(cls.query(s).filter(**scope).all())


def scopes(world: World, resource: str) -> list[Scope]:
    """The scopes each resource is queried in (the master lists some only under a parent)."""
    if resource not in world.scopes:
        world.scopes[resource] = _scopes(world.truth, resource)
    return world.scopes[resource]


def _scopes(s: detorm.Session, resource: str) -> list[Scope]:
    experiments = sorted(e.id for e in Experiment.query(s).all())
    if resource == "Trial":
        return [{}, {"experiment_id": experiments[0]}]
    if resource == "Checkpoint":
        trial = Trial.query(s).filter(experiment_id=experiments[0]).order_by("id")[0]
        return [{"experiment_id": experiments[0]}, {"experiment_id": experiments[4]},
                {"trial_id": trial.id}]  # fmt: skip
    if resource == "ModelVersion":
        return [{"model_id": Model.query(s).filter(name="resnet-prod").one().id}]
    if resource == "Template":  # workspaceIds, with the name's pattern
        return [{}, {"workspace_id": Workspace.query(s).filter(name="research").one().id}]
    return [{}]


# --- the master's semantics, by brute force -----------------------------------------------------
def empty(value: Any) -> bool:
    # isEmpty: `col IS NULL OR col = '' OR col = '[]'` (experiment_filter.go expRunOperatorQuery)
    return value is None or value in ("", "[]") or (isinstance(value, TagSet) and not value)


def order_key(value: Any) -> Any:
    if isinstance(value, str):
        return collation_key(value)
    if isinstance(value, WireEnum):
        return value.number
    if isinstance(value, float):
        return (1, 0.0) if math.isnan(value) else (0, value)  # float8: NaN above every number
    if isinstance(value, int) and not isinstance(value, bool):
        return (0, value)
    return value


# isActiveExperimentState (api_experiment.go): an active experiment is reported in one of these.
ACTIVE = {ExperimentState.ACTIVE, ExperimentState.QUEUED, ExperimentState.PULLING,
          ExperimentState.STARTING, ExperimentState.RUNNING}  # fmt: skip


def same(actual: Any, value: Any) -> bool:
    if isinstance(actual, TagSet):
        return set(actual) == set(value)
    if value is ExperimentState.ACTIVE:
        return actual in ACTIVE
    return bool(actual == value)


def holds(actual: Any, lookup: str, value: Any, *, case_sensitive: bool = False) -> bool:
    if lookup == "isnull":
        return empty(actual) == value
    if actual is None:
        return False  # NULL compared with anything is not true
    if lookup == "exact":
        return same(actual, value)
    if lookup == "ne":
        return not same(actual, value)
    if lookup == "in":
        return any(same(actual, v) for v in value)
    if lookup == "contains":  # ILIKE on fields, LIKE on hyperparameters, metrics, metadata
        if isinstance(actual, TagSet):
            return value in actual
        if case_sensitive:
            return str(value) in str(actual)
        return str(value).lower() in str(actual).lower()
    left, right = order_key(actual), order_key(value)
    return {
        "gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right,
    }[lookup]  # fmt: skip


# --- values to try ------------------------------------------------------------------------------
def present(objects: Sequence[Resource], name: str, most: int = 6) -> list[Any]:
    """Distinct values the objects hold: the lowest, the highest and a few between (``most``
    in all)."""
    values: list[Any] = []
    for obj in objects:
        if name == "duration" and getattr(obj, "end_time", None) is None:
            continue  # it grows every second: the master computes it when asked
        value = getattr(obj, name)
        if value is not None and not any(same(value, v) and type(value) is type(v) for v in values):
            values.append(value)
    if len(values) <= most or isinstance(values[0], TagSet):
        return values
    ordered = sorted(values, key=order_key)
    return [ordered[i * (len(ordered) - 1) // (most - 1)] for i in range(most)]


def absent(column: Column, values: Sequence[Any]) -> list[Any]:
    """Values that no object holds, around and between the present ones."""
    if column.kind == "int":
        return [max(values, default=0) + 1, min(values, default=0) - 1]
    if column.kind == "float":
        return [max(values, default=0.0) + 0.5, -1e9, 0.123456]
    if column.kind == "time":
        low, high = min(values, default=T0), max(values, default=T0)
        return [low - timedelta(seconds=1), high + timedelta(microseconds=1),
                low + (high - low) / 3]  # fmt: skip
    if column.kind == "enum":
        assert column.enum is not None
        return [member for member in column.enum if member not in values]
    if column.kind == "bool":
        return [flag for flag in (True, False) if flag not in values]
    if column.kind == "set":
        return [frozenset({"absent"}), frozenset()]
    return ["zz-absent", "", "%", "_", "Ü"]


def variants(column: Column, values: Sequence[Any], near: int = 2) -> list[Any]:
    """Near misses of the first ``near`` present values: another case, a substring, a tag of
    another case."""
    out: list[Any] = []
    for value in values[:near]:
        if column.kind == "str" and value:
            out += [value.swapcase(), value[1:].upper(), value[: max(1, len(value) // 2)]]
        if column.kind == "set":
            out += [tag.swapcase() for tag in value][:1]
    return out


@dataclass(frozen=True)
class Sample:
    """How many values a case tries: present ones, and near misses of the first ones."""

    present: int = 6
    near: int = 2


# Fewer where a request costs more: each request of these lists brings the simulated cluster
# forward first (a write transaction), some four times a plain list's time, and the filters
# they are tried with are nearly all evaluated by the client.
SAMPLES = {name: Sample(present=4, near=1) for name in (*GENERIC_TASKS, "Job")}


def cases_for(
    column: Column, lookup: str, objects: Sequence[Resource], sample: Sample = Sample()
) -> list[Any]:
    values, near = present(objects, column.name, sample.present), sample.near
    if lookup == "isnull":
        return [True, False]
    if column.kind == "set":
        tags = sorted({tag for tagset in values for tag in tagset})
        if lookup == "contains":
            return tags + ["absent", *variants(column, values, near)]
        return [frozenset(v) for v in values] + absent(column, values)
    tried = values + absent(column, values) + variants(column, values, near)
    if lookup == "in":  # pairs of present and absent values
        return [[v, w] for v, w in zip(tried[::3], tried[len(tried) // 2 :: 3], strict=False)]
    if lookup == "contains":
        return [v for v in tried if isinstance(v, str)]
    return tried


# --- the generated cases --------------------------------------------------------------------------
FILTER_CASES = [
    pytest.param(resource, name, lookup, id=f"{resource}.{name}__{lookup}")
    for resource, columns in COLUMNS.items()
    for name, column in columns.items()
    for lookup in sorted(column.lookups)
]


def ids(rows: Sequence[Resource]) -> list[Any]:
    return sorted(row.pk for row in rows)


# Trials across experiments come from the runs search, whose rows lack these fields: the
# planner refuses such a filter or ordering before sending anything, naming the way that works.
NOT_IN_RUNS = {"restarts", "total_batches_processed"}


def refused(resource: str, name: str, scope: Scope) -> bool:
    return resource == "Trial" and "experiment_id" not in scope and name in NOT_IN_RUNS


@pytest.mark.parametrize(("resource", "name", "lookup"), FILTER_CASES)
def test_every_lookup_matches_brute_force(
    world: World, resource: str, name: str, lookup: str, mode: Mode
) -> None:
    column = COLUMNS[resource][name]
    with world.session(mode) as api:
        cls, s = getattr(api, resource), api.session
        for scope in scopes(world, resource):
            objects = everything(world, resource, scope)
            sample = SAMPLES.get(resource, Sample())
            for value in cases_for(column, lookup, objects, sample):
                key = name if lookup == "exact" else f"{name}__{lookup}"
                query = cls.query(s).filter(**scope).filter(**{key: value})
                if refused(resource, name, scope):
                    sent = s.requests_sent
                    with pytest.raises(QueryError, match=r"filter\(experiment_id=\.\.\.\)"):
                        api(query.all())
                    assert s.requests_sent == sent
                    continue
                expected = ids([o for o in objects if holds(getattr(o, name), lookup, value)])
                assert ids(api(query.all())) == expected, (scope, key, value, str(query.explain()))


# --- orderings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rules:
    """How an endpoint orders rows (the reference's rules, from the master's code)."""

    nulls_first_asc: bool = False
    nulls_first_desc: bool = False
    # Ties: by this key, in the ordering's direction or ascending; None: an unstable sort.
    tie: Callable[[Any], Any] | None = lambda o: o.pk
    tie_follows_direction: bool = False


def checkpoint_rules(plan: Any, name: str) -> Rules:
    # In memory, sort.Slice (api_experiment.go GetExperimentCheckpoints, protoless/less.go): a
    # missing value is "less", ties fall back to the report time, states have no fallback.
    def report_time(o: Any) -> Any:
        return o.report_time

    if name == "state":
        return Rules(tie=None)
    if name == "searcher_metric" and plan.source.operation == "GetExperimentCheckpoints":
        return Rules(tie=report_time, tie_follows_direction=True)  # NULLs always last
    return Rules(nulls_first_asc=True, tie=report_time, tie_follows_direction=True)


def rules(plan: Any, name: str) -> Rules:
    operation = plan.source.operation
    if plan.client_order:  # the SDK sorts like the searches
        return Rules()
    if operation in ("SearchExperiments", "SearchRuns"):  # ASC / DESC NULLS LAST, id ASC
        return Rules()
    if operation == "GetExperiments":  # ASC / DESC NULLS LAST, id <dir>
        return Rules(tie_follows_direction=True)
    if operation in ("GetExperimentTrials", "GetWorkspaceProjects"):  # <col> <dir>, id <dir>
        return Rules(nulls_first_desc=True, tie_follows_direction=True)
    if operation == "GetModels":
        return Rules(tie_follows_direction=True)
    if operation == "GetUsers":  # <col> <dir>, id asc
        return Rules(nulls_first_desc=True)
    if operation == "GetModelVersions":  # api.Sort, the version breaks ties
        return Rules(tie=lambda o: o.version, tie_follows_direction=True)
    if operation == "GetWorkspaces":  # names and ids are unique
        return Rules(tie=None)
    if operation in TASK_LISTS:  # api.Sort: sort.Slice, ties in any order
        return Rules(tie=None)
    if operation in ("GetTemplates", "GetJobsV2"):  # names, queue places are unique
        return Rules(tie=None)
    return checkpoint_rules(plan, name)


TASK_LISTS = ("GetCommands", "GetShells", "GetNotebooks", "GetTensorboards")


def sort_value(plan: Any, name: str, value: Any) -> Any:
    """The key of a value as the endpoint compares it."""
    operation = "client" if plan.client_order else plan.source.operation
    if isinstance(value, WireEnum):
        if operation in ("GetExperiments", "SearchExperiments"):  # the stored state's enum order
            stored = "ACTIVE" if value in ACTIVE else value.short
            return STORED_EXPERIMENT_STATES.index(stored)
        if operation == "SearchRuns":
            return STORED_TRIAL_STATES.index(value.short)
        if operation == "GetExperimentTrials":  # 'STATE_' || t.state, a text
            return collation_key("STATE_" + value.short)
        return value.number
    if name == "progress" and operation in ("GetExperiments", "SearchExperiments"):
        return 0.0 if value is None else value  # COALESCE(progress, 0)
    if isinstance(value, str) and ("Checkpoints" in operation or operation in TASK_LISTS):
        return value  # Go compares strings bytewise (the code points' order, in UTF-8)
    return order_key(value)


def brute_sorted(
    objects: Sequence[Resource], how: Rules, key: Callable[[Resource], Any], descending: bool
) -> list[Resource]:
    def compare(a: Resource, b: Resource) -> int:
        left, right = key(a), key(b)
        if (left is None) != (right is None):
            first = how.nulls_first_desc if descending else how.nulls_first_asc
            return (-1 if left is None else 1) * (1 if first else -1)
        if left is not None and left != right:
            return (-1 if left < right else 1) * (-1 if descending else 1)
        if how.tie is None:
            return 0
        ta, tb = how.tie(a), how.tie(b)
        return ((ta > tb) - (ta < tb)) * (-1 if descending and how.tie_follows_direction else 1)

    return sorted(objects, key=cmp_to_key(compare))


ORDER_CASES = [
    pytest.param(resource, name, id=f"{resource}.{name}")
    for resource, columns in COLUMNS.items()
    for name, column in columns.items()
    if column.sortable
]


@pytest.mark.parametrize(("resource", "name"), ORDER_CASES)
def test_every_ordering_matches_brute_force(
    world: World, resource: str, name: str, mode: Mode
) -> None:
    with world.session(mode) as api:
        cls, s = getattr(api, resource), api.session
        for scope in scopes(world, resource):
            objects = everything(world, resource, scope)
            for key in (name, f"-{name}"):
                query = cls.query(s).filter(**scope).order_by(key)
                if refused(resource, name, scope):
                    with pytest.raises(QueryError, match=r"filter\(experiment_id=\.\.\.\)"):
                        api(query.all())
                    continue
                plan = query.plan()

                def value(obj: Resource, plan: Any = plan) -> Any:
                    return sort_value(plan, name, getattr(obj, name))

                how = rules(plan, name)
                rows = api(query.all())
                expected = brute_sorted(objects, how, value, key.startswith("-"))
                assert ids(rows) == ids(objects), (scope, key)
                if how.tie is None:  # ties in any order: compare the values
                    assert [value(o) for o in rows] == [value(o) for o in expected], (scope, key)
                else:
                    assert [o.pk for o in rows] == [o.pk for o in expected], (
                        scope, key, str(query.explain()), [getattr(o, name) for o in expected],
                    )  # fmt: skip


# --- combinations, hyperparameters and metrics (a sample) -------------------------------------
def field_value(obj: Any, ref: FieldRef) -> Any:
    """A field, hyperparameter, metric summary or metadata value as the master compares it."""
    if ref.kind == "column":
        return getattr(obj, ref.name)
    path = ref.name.split(".")
    if ref.kind == "hp" and isinstance(obj, Experiment):  # a constant's value
        spec = dig(obj.hyperparameters, path)
        return spec.get("val") if isinstance(spec, dict) and spec.get("type") == "const" else None
    if ref.kind in ("hp", "metadata"):
        return dig(obj.hparams if ref.kind == "hp" else obj.metadata, path)
    if isinstance(obj, Checkpoint):  # the validation at the checkpoint (sortByMetric)
        return obj.validation_metrics.get(ref.name)
    trial = obj.best_trial() if isinstance(obj, Experiment) else obj  # the best trial's summary
    summaries = {} if trial is None else trial.summary_metrics
    summary = summaries.get(ref.group, {}).get(ref.name)
    return None if summary is None else getattr(summary, ref.aggregate)


def dig(source: Any, path: Sequence[str]) -> Any:
    for part in path:
        source = source.get(part) if isinstance(source, dict) else None
    return source


def hp_holds(spec: Any, lookup: str, value: Any) -> bool | None:
    """hpToSQL (experiment_filter.go) on an experiment's search space: CASE on the type, ELSE
    false. A string is compared as text, anything else as a number."""
    if lookup in ("in", "notin"):
        results = [hp_holds(spec, "exact" if lookup == "in" else "ne", v) for v in value]
        return any_of(results) if lookup == "in" else all_of(results)
    kind = spec.get("type") if isinstance(spec, dict) else None
    text = isinstance(value, str)
    if kind == "const":
        constant = spec["val"]
        if lookup in ("contains", "notcontains"):
            return text and (value in constant) == (lookup == "contains")  # LIKE
        return holds(constant, lookup, value) if isinstance(constant, str) == text else None
    if kind == "categorical" and lookup in ("contains", "notcontains"):
        return text and (value in spec["vals"]) == (lookup == "contains")  # `vals ? v`
    if kind in ("int", "double", "log") and not text:
        low, high = spec["minval"], spec["maxval"]
        if lookup == "contains":
            return low <= value or high >= value
        if lookup == "notcontains":
            return low >= value or high <= value
        return holds(low, lookup, value) or holds(high, lookup, value)
    return False


NEGATION = {"exact": "ne", "ne": "exact", "gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt",
            "in": "notin", "contains": "notcontains", "isnull": "isnull"}  # fmt: skip


def any_of(results: Sequence[bool | None]) -> bool | None:
    return True if True in results else None if None in results else False


def all_of(results: Sequence[bool | None]) -> bool | None:
    return False if False in results else None if None in results else True


def truth(condition: Condition, obj: Resource, negate: bool = False) -> bool | None:
    """SQL's three-valued logic (None: unknown, the row is not returned), with negations on the
    leaves as the master's tree, which has no NOT, receives them."""
    if isinstance(condition, Q):
        return truth(condition.condition, obj, negate)
    if isinstance(condition, Not):
        return truth(condition.child, obj, not negate)
    if isinstance(condition, (And, Or)):
        results = [truth(c, obj, negate) for c in condition.children]
        return any_of(results) if isinstance(condition, Or) != negate else all_of(results)
    assert isinstance(condition, Leaf)
    ref, lookup, value = condition.field, condition.lookup, condition.value
    if negate:
        lookup, value = NEGATION[lookup], not value if lookup == "isnull" else value
    if ref.kind == "hp" and isinstance(obj, Experiment) and lookup != "isnull":
        return hp_holds(dig(obj.hyperparameters, ref.name.split(".")), lookup, value)
    actual = field_value(obj, ref)
    if actual is None and lookup != "isnull":
        return None
    if lookup in ("notin", "notcontains"):
        return not holds(actual, lookup[3:], value, case_sensitive=ref.kind != "column")
    return holds(actual, lookup, value, case_sensitive=ref.kind != "column")


COMPLETED, ERROR = ExperimentState.COMPLETED, ExperimentState.ERROR
COMBINATIONS: dict[str, tuple[str, Scope | None, Condition]] = {
    "or_with_tag": ("Experiment", {}, Q(state=COMPLETED) | Q(tags__contains="prod")),
    "not_isnull_and_underscore": (
        "Experiment", {}, ~Q(end_time__isnull=True) & Q(name__contains="_"),
    ),
    "hp_or_metric": (
        "Experiment", {}, (hp.lr > 0.02) | (metrics.validation.validation_loss.min < 0.4),
    ),
    "not_or_progress": ("Experiment", {}, ~(Q(progress__gt=0.5) | Q(num_trials__lt=2))),
    "best_metric_known_and_low": (
        "Experiment", {},
        Q(best_trial_searcher_metric__isnull=False) & Q(best_trial_searcher_metric__lt=0.5),
    ),
    "not_active": ("Experiment", {}, ~Q(state=ExperimentState.ACTIVE)),
    "queued_or_forked": (
        "Experiment", {},
        Q(state__in=[ExperimentState.QUEUED, COMPLETED]) | Q(forked_from__isnull=False),
    ),
    "not_tag": ("Experiment", {}, ~Q(tags__contains="prod")),
    "duration_and_not_done": ("Experiment", {}, Q(duration__gt=1000) & ~Q(progress=1.0)),
    "hp_text_or_user": ("Experiment", {}, hp.arch.contains("net1") | Q(username="alice")),
    "not_hp_range": ("Experiment", {}, ~(hp.lr > 0.05)),
    "hp_in_or_set": ("Experiment", {}, hp.lr.in_([0.02, -2, 0.1]) | Q(tags={"gen"})),
    "hp_range_contains_or_set": ("Experiment", {}, hp.lr.contains(-2) | Q(tags={"nlp", "ü"})),
    "not_hp_text_or_set": ("Experiment", {}, ~(hp.arch == "net1") | Q(tags=set())),
    "hp_isnull": ("Experiment", {}, hp.lr.isnull()),
    "metric_and_not_error": (
        "Experiment", {}, (metrics.training.loss.last >= 1) & ~Q(state=ERROR),
    ),
    "set_or_name": ("Experiment", {}, Q(tags={"prod"}) | Q(name__contains="vit")),
    "metric_isnull": ("Experiment", {}, metrics.validation.validation_loss.max.isnull()),
    "trial_hp_metric_or_running": (
        "Trial", {},
        ((hp.lr >= 0.05) & (metrics.validation.validation_loss.last < 1))
        | Q(end_time__isnull=True),
    ),
    "trial_not_completed_metric": (
        "Trial", {}, ~Q(state=TrialState.COMPLETED) & (metrics.training.loss.max > 1),
    ),
    "trial_negative_or_hp_in": (
        "Trial", {}, Q(searcher_metric_value__lt=0) | Q(hp__lr__in=[0.1, 0.05]),
    ),
    "trials_of_experiment": (
        "Trial", None, Q(searcher_metric_value__gt=0.3) | Q(restarts=3) | ~(hp.lr < 0.1),
    ),
    # users (pushed) and the rest (the client's), one user filter sent at most
    "commands_of_users_not_queued": (
        "Command", {}, Q(username__in=["alice", "zed_ops"]) & ~Q(state=TaskState.QUEUED),
    ),
    "commands_user_twice": ("Command", {}, Q(username="Émile") & Q(username__in=["Émile", "x"])),
    "commands_user_or_exit": ("Command", {}, Q(username="alice") | Q(exit_status__contains="3")),
    "shells_user_and_not_terminated": (
        "Shell", {}, Q(display_name="Alice") & ~Q(state=TaskState.TERMINATED),
    ),
    "notebooks_exited_or_determined": (
        "Notebook", {}, ~Q(exit_status__isnull=True) | Q(username="determined"),
    ),
    "tensorboards_not_user": ("Tensorboard", {}, ~Q(username="alice") & Q(id__ne="")),
    "templates_case_or_wildcard": ("Template", {}, Q(name="Base") | Q(name__contains="_")),
    "templates_pattern_not_exact": ("Template", None, Q(name__contains="bAs") & ~Q(name="base")),
    "jobs_queued_not_shell": ("Job", {}, Q(state=JobState.QUEUED) & ~Q(type=JobType.SHELL)),
    "jobs_pool_and_priority_or_weight": (
        "Job", {}, Q(resource_pool="default") & (Q(priority__lt=42) | Q(weight__gt=1)),
    ),
    "jobs_scheduled_or_name": (
        "Job", {}, Q(state__in=[JobState.SCHEDULED]) | Q(name__contains="%"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_combinations_match_brute_force(world: World, name: str, mode: Mode) -> None:
    resource, scope, condition = COMBINATIONS[name]
    scope = scope if scope is not None else scopes(world, resource)[1]
    objects = everything(world, resource, scope)
    with world.session(mode) as api:
        query = getattr(api, resource).query(api.session).filter(**scope).filter(condition)
        expected = ids([o for o in objects if truth(condition, o)])
        assert ids(api(query.all())) == expected, str(query.explain())


ORDERINGS: dict[str, tuple[str, Scope | None, tuple[Any, ...]]] = {
    "experiment_by_metric": ("Experiment", {}, ("-validation.validation_loss.min",)),
    "experiment_by_hp": ("Experiment", {}, (hp.lr.asc(),)),
    "experiment_state_then_name": ("Experiment", {}, ("state", "-name")),
    "trials_by_hp": ("Trial", {}, ("hp.lr",)),
    "trials_by_training_metric": ("Trial", {}, ("-training.loss.last",)),
    "trials_of_experiment_by_metric": ("Trial", None, ("validation.validation_loss.min", "id")),
    "checkpoints_by_metric": ("Checkpoint", None, ("-validation.validation_loss.last",)),
    "checkpoints_by_state_then_metric": (
        "Checkpoint", None, ("state", metrics.validation.validation_loss.last.desc()),
    ),
    "commands_by_state_then_start": ("Command", {}, ("state", "-start_time")),
    "jobs_by_type_then_priority": ("Job", {}, ("type", "-priority")),
    "templates_by_workspace_then_name": ("Template", {}, ("-workspace_id", "name")),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ORDERINGS))
def test_hp_and_metric_orderings_run_and_match_brute_force(
    world: World, name: str, mode: Mode
) -> None:
    resource, scope, keys = ORDERINGS[name]
    scope = scope if scope is not None else scopes(world, resource)[1]
    objects = everything(world, resource, scope)
    with world.session(mode) as api:
        query = getattr(api, resource).query(api.session).filter(**scope).order_by(*keys)
        plan = query.plan()
        rows = api(query.all())
    expected = list(objects)
    orderings = [parse_ordering(resource, key) for key in keys]
    for index, ordering in enumerate(reversed(orderings)):  # stable sorts, the last key first
        how = rules(plan, ordering.field.name)
        if index:  # ties keep the order of the less significant keys
            how = Rules(how.nulls_first_asc, how.nulls_first_desc, tie=None)

        def value(obj: Resource, ref: FieldRef = ordering.field) -> Any:
            found = field_value(obj, ref)
            return None if found is None else sort_value(plan, ref.name, found)

        expected = brute_sorted(expected, how, value, ordering.descending)
    assert [o.pk for o in rows] == [o.pk for o in expected], str(query.explain())


@pytest.mark.parametrize(
    ("resource", "key", "valid"),
    [
        ("Checkpoint", "-validation.validation_loss.min", "validation.<metric>.last"),
        ("Checkpoint", "training.loss.last", "validation.<metric>.last"),
        ("Experiment", "metadata.team", "run metadata orders trials"),
    ],
)
def test_orderings_the_master_cannot_run_are_refused_by_order_by(
    resource: str, key: str, valid: str
) -> None:
    with pytest.raises(QueryError, match=valid.replace(".", r"\.")):
        RESOURCES[resource].query(None).order_by(key)
