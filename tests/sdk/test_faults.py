"""The fault suite: every public read and edit scenario through a flaky network.

Each scenario runs twice: through a clean connection, then through :class:`FaultyTransport`,
which hands 20% of the requests a fault (502/503/504 before or after the master handled them,
429 with Retry-After, connections refused or dropped after sending, responses past the timeout,
bodies and streams cut midway). Reads must give identical results; edits must leave the master
in the same state (nothing lost, nothing applied twice), committing again after a CommitError as
a user would. Typed errors appear only once retries are exhausted, and the retries are counted.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import detorm
from detorm import (
    Checkpoint,
    Experiment,
    Model,
    ModelVersion,
    Note,
    Project,
    Q,
    RetryPolicy,
    Trial,
    Workspace,
)
from detorm._resources._base import Resource
from detorm.errors import (
    APIError,
    CommitError,
    RateLimited,
    ServerError,
    StreamInterrupted,
    TransportError,
)
from detorm.local import LocalMaster, Seeder
from tests.conftest import NO_HOME
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster, seed_cluster
from tests.sdk.faults import KINDS, AsyncFaultyTransport, FaultyTransport

# Quick retries: the suite injects hundreds of faults and must not sleep through them.
FAST = RetryPolicy(retries=8, backoff=0.001, max_backoff=0.01)


def _seed_extras(cluster: Cluster) -> dict[str, Any]:
    """Logs, a model with a version, and a spare project: what the scenarios read and edit."""
    trial = cluster.trials["resnet-base"][0]
    with Seeder(cluster.master.database) as seed:
        seed.logs(trial, [f"step {i} loss {1 / (i + 1):.3f}" for i in range(300)])
        seed.logs(trial, ["disk almost full"], level="LOG_LEVEL_WARNING")
        uuid = seed.checkpoint(trial, total_batches=250, metadata={"owner": "a"})
        model = seed.model("classifier", labels=["a", "b"], metadata={"k": 1})
        seed.model_version(model, uuid, labels=["x"], metadata={"m": 1})
        workspace = seed.workspace("sandbox", owner="determined")
        project = seed.project("scratch", workspace=workspace, owner="determined")
    return {
        "trial": trial,
        "uuid": uuid,
        "model": model,
        "workspace": workspace,
        "project": project,
    }


@pytest.fixture(scope="module")
def read_cluster() -> Iterator[tuple[Cluster, dict[str, Any]]]:
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        yield cluster, _seed_extras(cluster)


def _session(cluster: Cluster, mode: Mode = "sync") -> Api:
    api = Api(mode, cluster.url, NO_HOME, cache=False, retry=FAST)
    if mode == "async":
        api(api.session.whoami())  # logged in, as a sync session is once made
    return api


def _install(api: Api, *, rate: float, seed: int, **kinds: Any) -> Any:
    """Put the faults where httpx sends bytes, in either driver."""
    client = api.session.transport._client
    faults = FaultyTransport if api.mode == "sync" else AsyncFaultyTransport
    faulty = faults(client._transport, rate=rate, seed=seed, **kinds)
    client._transport = faulty
    return faulty


# Fields that change by themselves between two reads: an active experiment's duration grows,
# and each new session's login moves its user's last_auth_at.
_MOVING: frozenset[str] = frozenset({"duration", "last_auth_at"})


def _fields(obj: object) -> dict[str, str]:
    """What a user sees of an object: every loaded field, rendered."""
    assert isinstance(obj, Resource)
    return {name: repr(obj.__dict__[name]) for name in sorted(obj.loaded_fields - _MOVING)}


def _rows(objects: Any) -> list[dict[str, str]]:
    return [_fields(o) for o in objects]


def _files(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _downloads(a: Api, cluster: Cluster, extras: dict[str, Any]) -> Any:
    with tempfile.TemporaryDirectory() as out:
        checkpoint = a(a.session.get(a.Checkpoint, extras["uuid"]))
        files = _files(a(checkpoint.download(Path(out, "c"), mode="master", cache=False)))
        experiment = a(a.session.get(a.Experiment, cluster.experiments["resnet-base"]))
        return files, _files(a(experiment.download_code(Path(out, "code"), cache=False)))


def _trial_logs(a: Api, trial_id: int, **options: Any) -> list[str]:
    return [e.message for e in a.list(a(a.session.get(a.Trial, trial_id)).logs(**options))]


Read = Callable[[Api, Cluster, dict[str, Any]], Any]

# Each read, written once in the calling convention of ``Api``: it runs through either API.
READS: dict[str, Read] = {
    "experiments, paged": lambda a, c, x: _rows(
        a.list(a.Experiment.query(a.session).order_by("id").page_size(2))
    ),
    "experiments search": lambda a, c, x: _rows(a.list(
        a.Experiment.query(a.session).filter(Q(state="COMPLETED") | Q(tags__contains="prod"))
        .order_by("id")
    )),
    "count": lambda a, c, x: a(a.Experiment.query(a.session).filter(tags__contains="nlp").count()),
    "first": lambda a, c, x: _fields(a(a.Experiment.query(a.session).order_by("-start_time").first())),
    "get and refresh": lambda a, c, x: _fields(
        a(a(a.session.get(a.Experiment, c.experiments["bert-base"])).refresh())
    ),
    "trials of an experiment": lambda a, c, x: _rows(
        a.list(a(a.session.get(a.Experiment, c.experiments["resnet-base"])).trials.order_by("id"))
    ),
    "runs search": lambda a, c, x: _rows(
        a.list(a.Trial.query(a.session).filter(hp__lr__gte=0.01).order_by("id"))
    ),
    "prefetched trials": lambda a, c, x: [
        _rows(a.list(e.trials))
        for e in a.list(a.Experiment.query(a.session).order_by("id").prefetch("trials"))
    ],
    "best trial": lambda a, c, x: _fields(
        a(a(a.session.get(a.Experiment, c.experiments["vit-small"])).best_trial())
    ),
    "checkpoints": lambda a, c, x: _rows(a.list(
        a.Checkpoint.query(a.session).filter(experiment_id=c.experiments["resnet-base"])
        .order_by("uuid")
    )),
    "workspaces, projects": lambda a, c, x: [
        _rows(a.list(a.Workspace.query(a.session).order_by("id"))),
        _rows(a.list(a.Project.query(a.session).order_by("id"))),
    ],
    "models, versions, users": lambda a, c, x: [
        _rows(a.list(a.Model.query(a.session))),
        _rows(a.list(a.ModelVersion.query(a.session).filter(model_id=x["model"]))),
        _rows(a.list(a.User.query(a.session).order_by("id"))),
    ],
    "metrics of many trials": lambda a, c, x: [
        (r.trial_id, r.step, r.values)
        for r in a.list(a.session.metrics(
            [t for ts in c.trials.values() for t in ts], "validation", cache=False
        ))
    ],
    "summaries": lambda a, c, x: {
        k: repr(v) for k, v in a(a.session.summaries(c.trials["bert-base"], cache=False)).items()
    },
    "logs": lambda a, c, x: _trial_logs(a, x["trial"]),
    "logs searched, limited, tailed": lambda a, c, x: [
        _trial_logs(a, x["trial"], search="loss 0.0", limit=50),
        _trial_logs(a, x["trial"], tail=30),
        _trial_logs(a, x["trial"], levels=["WARNING"]),
    ],
    "logs of many trials": lambda a, c, x: {
        k: [e.message for e in v]
        for k, v in a(a.session.logs([x["trial"], *c.trials["bert-base"]], tail=40)).items()
    },
    "checkpoint and code downloads": _downloads,
}  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(READS))
def test_reads_through_faults_give_the_fault_free_result(
    read_cluster: tuple[Cluster, dict[str, Any]], name: str, mode: Mode
) -> None:
    cluster, extras = read_cluster
    with _session(cluster, mode) as clean:
        expected = READS[name](clean, cluster, extras)
    outcomes = []
    for seed in range(3):
        with _session(cluster, mode) as flaky:
            faulty = _install(flaky, rate=0.2, seed=seed)
            assert READS[name](flaky, cluster, extras) == expected
            outcomes.append((faulty, flaky.session.retries))
    injected = sum(sum(f.injected.values()) for f, _ in outcomes)
    assert injected > 0, "no fault was injected: the scenario proves nothing"
    # Every fault a read meets costs one retry (a cut stream: one resume).
    assert sum(retries for _, retries in outcomes) == injected


STREAMS = (
    "metrics of many trials", "logs", "logs searched, limited, tailed", "logs of many trials",
    "checkpoint and code downloads",
)  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", STREAMS)
def test_cut_streams_resume_to_the_fault_free_result(
    read_cluster: tuple[Cluster, dict[str, Any]], name: str, mode: Mode
) -> None:
    """Half of the streams break off midway: reading resumes, with no duplicate and no gap."""
    cluster, extras = read_cluster
    with _session(cluster, mode) as clean:
        expected = READS[name](clean, cluster, extras)
    for seed in range(4):
        with _session(cluster, mode) as flaky:
            faulty = _install(flaky, rate=0.5, seed=seed, kinds=("cut",))
            assert READS[name](flaky, cluster, extras) == expected
            assert flaky.session.retries == faulty.injected["cut"]


# --- edits -----------------------------------------------------------------------------------
def _edit(a: Api, cluster: Cluster, extras: dict[str, Any]) -> None:
    """One user's edits of everything editable, committed until the commit goes through."""
    scratch = a(a.session.get(a.Project, extras["project"]))
    for exp in a.list(a.Experiment.query(a.session).filter(project_id=cluster.projects["vision"])):
        exp.tags.add("reviewed")
        exp.tags.discard("cv")
        exp.description = f"{exp.name}: reviewed"
        if exp.state.is_terminal:
            exp.archived = True
        else:
            exp.priority = 7
            exp.weight = 2.0
    for exp in a.list(a.Experiment.query(a.session).filter(project_id=cluster.projects["nlp"])):
        exp.project = scratch
        exp.tags.add("team/nlp")  # sent in the whole list: not a label route
    scratch.description = "moved in"
    scratch.notes = (Note("plan", "ship it"),)
    model = a(a.session.get(a.Model, extras["model"]))
    model.labels.add("c")
    model.labels.discard("a")
    model.metadata["owner"] = "alice"
    version = a(a.ModelVersion.query(a.session).filter(model_id=model.id).one())
    version.comment = "the good one"
    version.labels.add("y")
    checkpoint = a(a.session.get(a.Checkpoint, extras["uuid"]))
    checkpoint.metadata["reviewed"] = True
    workspace = a(a.session.get(a.Workspace, extras["workspace"]))
    workspace.name = "sandbox-2"
    _commit_until_done(a)


def _commit_until_done(a: Api) -> int:
    """Commit as a user would after a CommitError: again, until nothing is pending."""
    for attempt in range(30):
        try:
            a(a.session.commit())
            return attempt
        except CommitError as err:
            for _, error in [*err.failed, *err.unknown]:
                assert isinstance(error, (TransportError, ServerError, RateLimited)), error
    raise AssertionError(f"still pending after 30 commits: {a.session.pending()}")


def _state(cluster: Cluster, extras: dict[str, Any]) -> dict[str, Any]:
    """What the master holds of everything the edits touch (the fields the edits change)."""
    with detorm.Session(
        cluster.url, user="determined", password="", environ=NO_HOME, cache=False
    ) as s:
        experiments = {
            e.id: (sorted(e.tags), e.description, e.archived, e.priority, e.weight, e.project_id)
            for e in Experiment.query(s)
        }
        model = s.get(Model, extras["model"])
        version = ModelVersion.query(s).filter(model_id=model.id).one()
        project = s.get(Project, extras["project"])
        return {
            "experiments": experiments,
            "project": (project.description, project.notes),
            "model": (sorted(model.labels), model.metadata),
            "version": (version.comment, sorted(version.labels)),
            "checkpoint": s.get(Checkpoint, extras["uuid"]).metadata,
            "workspace": s.get(Workspace, extras["workspace"]).name,
        }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(8))
def test_edits_through_faults_end_as_the_fault_free_run(seed: int, mode: Mode) -> None:
    with LocalMaster(process=False) as clean_master:
        clean = seed_cluster(clean_master)
        clean_extras = _seed_extras(clean)
        with _session(clean, mode) as session:
            _edit(session, clean, clean_extras)
        expected = _state(clean, clean_extras)
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        extras = _seed_extras(cluster)
        with _session(cluster, mode) as session:
            faulty = _install(session, rate=0.2, seed=seed)
            _edit(session, cluster, extras)
            assert session.session.dirty == []
            assert sum(faulty.injected.values()) > 0
        assert _state(cluster, extras) == expected


def test_bulk_actions_through_faults_are_applied_once() -> None:
    """A bulk action is sent at once; after a lost answer, sending it again is harmless."""
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        with _session(cluster) as api:
            faulty = _install(api, rate=0.5, seed=1, kinds=("dropped", "504-after", "refused"))
            done = Experiment.query(api.session).filter(state="COMPLETED")
            for _ in range(20):
                try:
                    done.archive()
                    break
                except (TransportError, ServerError):
                    continue
            assert sum(faulty.injected.values()) > 0
        with _session(cluster) as check:
            rows = Experiment.query(check.session).all()
            assert {e.id for e in rows if e.archived} == {
                e.id for e in rows if e.state == "STATE_COMPLETED"
            }


# --- exhausted retries -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_when_every_attempt_fails_the_error_is_typed(
    read_cluster: tuple[Cluster, dict[str, Any]], kind: str
) -> None:
    cluster, extras = read_cluster
    with _session(cluster) as session:
        _install(session, rate=1.0, seed=0, kinds=(kind,))
        with pytest.raises((TransportError, APIError)) as info:
            READS["experiments, paged"](session, cluster, extras)
        assert not isinstance(info.value, httpx.HTTPError)
        expected = {
            "502": ServerError, "503": ServerError, "504": ServerError, "504-after": ServerError,
            "429": RateLimited, "429-date": RateLimited, "refused": TransportError,
            "dropped": TransportError, "timeout": TransportError, "cut": TransportError,
        }[kind]  # fmt: skip
        assert isinstance(info.value, expected)
        assert session.session.retries == FAST.retries  # every retry was spent first


def test_a_stream_cut_every_time_gives_up_typed(
    read_cluster: tuple[Cluster, dict[str, Any]],
) -> None:
    cluster, extras = read_cluster
    with _session(cluster) as session:
        trial = session.session.get(Trial, extras["trial"])
        _install(session, rate=1.0, seed=0, kinds=("cut",))
        with pytest.raises(StreamInterrupted):
            list(trial.logs())
