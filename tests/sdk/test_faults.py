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
    User,
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
from tests.sdk.conftest import Cluster, seed_cluster
from tests.sdk.faults import KINDS, FaultyTransport

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


def _session(cluster: Cluster) -> detorm.Session:
    return detorm.Session(
        cluster.url, user="determined", password="", environ={"HOME": "/nonexistent"},
        cache=False, retry=FAST,
    )  # fmt: skip


def _install(session: detorm.Session, *, rate: float, seed: int, **kinds: Any) -> FaultyTransport:
    client = session.transport._client
    faulty = FaultyTransport(client._transport, rate=rate, seed=seed, **kinds)
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


def _downloads(session: detorm.Session, cluster: Cluster, extras: dict[str, Any]) -> Any:
    with tempfile.TemporaryDirectory() as out:
        checkpoint = session.get(Checkpoint, extras["uuid"])
        files = _files(checkpoint.download(Path(out, "c"), mode="master", cache=False))
        experiment = session.get(Experiment, cluster.experiments["resnet-base"])
        return files, _files(experiment.download_code(Path(out, "code"), cache=False))


Read = Callable[[detorm.Session, Cluster, dict[str, Any]], Any]

READS: dict[str, Read] = {
    "experiments, paged": lambda s, c, x: _rows(Experiment.query(s).order_by("id").page_size(2)),
    "experiments search": lambda s, c, x: _rows(
        Experiment.query(s).filter(Q(state="COMPLETED") | Q(tags__contains="prod")).order_by("id")
    ),
    "count": lambda s, c, x: Experiment.query(s).filter(tags__contains="nlp").count(),
    "first": lambda s, c, x: _fields(Experiment.query(s).order_by("-start_time").first()),
    "get and refresh": lambda s, c, x: _fields(
        s.get(Experiment, c.experiments["bert-base"]).refresh()
    ),
    "trials of an experiment": lambda s, c, x: _rows(
        s.get(Experiment, c.experiments["resnet-base"]).trials.order_by("id")
    ),
    "runs search": lambda s, c, x: _rows(Trial.query(s).filter(hp__lr__gte=0.01).order_by("id")),
    "prefetched trials": lambda s, c, x: [
        _rows(e.trials) for e in Experiment.query(s).order_by("id").prefetch("trials")
    ],
    "best trial": lambda s, c, x: _fields(s.get(Experiment, c.experiments["vit-small"]).best_trial()),
    "checkpoints": lambda s, c, x: _rows(
        Checkpoint.query(s).filter(experiment_id=c.experiments["resnet-base"]).order_by("uuid")
    ),
    "workspaces, projects": lambda s, c, x: [
        _rows(Workspace.query(s).order_by("id")), _rows(Project.query(s).order_by("id"))
    ],
    "models, versions, users": lambda s, c, x: [
        _rows(Model.query(s)), _rows(ModelVersion.query(s).filter(model_id=x["model"])),
        _rows(User.query(s).order_by("id")),
    ],
    "metrics of many trials": lambda s, c, x: [
        (r.trial_id, r.step, r.values)
        for r in s.metrics([t for ts in c.trials.values() for t in ts], "validation", cache=False)
    ],
    "summaries": lambda s, c, x: {
        k: repr(v) for k, v in s.summaries(c.trials["bert-base"], cache=False).items()
    },
    "logs": lambda s, c, x: [e.message for e in s.get(Trial, x["trial"]).logs()],
    "logs searched, limited, tailed": lambda s, c, x: [
        [e.message for e in s.get(Trial, x["trial"]).logs(search="loss 0.0", limit=50)],
        [e.message for e in s.get(Trial, x["trial"]).logs(tail=30)],
        [e.message for e in s.get(Trial, x["trial"]).logs(levels=["WARNING"])],
    ],
    "checkpoint and code downloads": _downloads,
}  # fmt: skip


@pytest.mark.parametrize("name", list(READS))
def test_reads_through_faults_give_the_fault_free_result(
    read_cluster: tuple[Cluster, dict[str, Any]], name: str
) -> None:
    cluster, extras = read_cluster
    with _session(cluster) as clean:
        expected = READS[name](clean, cluster, extras)
    outcomes = []
    for seed in range(3):
        with _session(cluster) as flaky:
            faulty = _install(flaky, rate=0.2, seed=seed)
            assert READS[name](flaky, cluster, extras) == expected
            outcomes.append((faulty, flaky.retries))
    injected = sum(sum(f.injected.values()) for f, _ in outcomes)
    assert injected > 0, "no fault was injected: the scenario proves nothing"
    # Every fault a read meets costs one retry (a cut stream: one resume).
    assert sum(retries for _, retries in outcomes) == injected


STREAMS = (
    "metrics of many trials", "logs", "logs searched, limited, tailed",
    "checkpoint and code downloads",
)  # fmt: skip


@pytest.mark.parametrize("name", STREAMS)
def test_cut_streams_resume_to_the_fault_free_result(
    read_cluster: tuple[Cluster, dict[str, Any]], name: str
) -> None:
    """Half of the streams break off midway: reading resumes, with no duplicate and no gap."""
    cluster, extras = read_cluster
    with _session(cluster) as clean:
        expected = READS[name](clean, cluster, extras)
    for seed in range(4):
        with _session(cluster) as flaky:
            faulty = _install(flaky, rate=0.5, seed=seed, kinds=("cut",))
            assert READS[name](flaky, cluster, extras) == expected
            assert flaky.retries == faulty.injected["cut"]


# --- edits -----------------------------------------------------------------------------------
def _edit(session: detorm.Session, cluster: Cluster, extras: dict[str, Any]) -> None:
    """One user's edits of everything editable, committed until the commit goes through."""
    scratch = session.get(Project, extras["project"])
    for exp in Experiment.query(session).filter(project_id=cluster.projects["vision"]):
        exp.tags.add("reviewed")
        exp.tags.discard("cv")
        exp.description = f"{exp.name}: reviewed"
        if exp.state.is_terminal:
            exp.archived = True
        else:
            exp.priority = 7
            exp.weight = 2.0
    for exp in Experiment.query(session).filter(project_id=cluster.projects["nlp"]):
        exp.project = scratch
        exp.tags.add("team/nlp")  # sent in the whole list: not a label route
    scratch.description = "moved in"
    scratch.notes = (Note("plan", "ship it"),)
    model = session.get(Model, extras["model"])
    model.labels.add("c")
    model.labels.discard("a")
    model.metadata["owner"] = "alice"
    version = ModelVersion.query(session).filter(model_id=model.id).one()
    version.comment = "the good one"
    version.labels.add("y")
    checkpoint = session.get(Checkpoint, extras["uuid"])
    checkpoint.metadata["reviewed"] = True
    workspace = session.get(Workspace, extras["workspace"])
    workspace.name = "sandbox-2"
    _commit_until_done(session)


def _commit_until_done(session: detorm.Session) -> int:
    """Commit as a user would after a CommitError: again, until nothing is pending."""
    for attempt in range(30):
        try:
            session.commit()
            return attempt
        except CommitError as err:
            for _, error in [*err.failed, *err.unknown]:
                assert isinstance(error, (TransportError, ServerError, RateLimited)), error
    raise AssertionError(f"still pending after 30 commits: {session.pending()}")


def _state(cluster: Cluster, extras: dict[str, Any]) -> dict[str, Any]:
    """What the master holds of everything the edits touch (the fields the edits change)."""
    with _session(cluster) as s:
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


@pytest.mark.parametrize("seed", range(8))
def test_edits_through_faults_end_as_the_fault_free_run(seed: int) -> None:
    with LocalMaster(process=False) as clean_master:
        clean = seed_cluster(clean_master)
        clean_extras = _seed_extras(clean)
        with _session(clean) as session:
            _edit(session, clean, clean_extras)
        expected = _state(clean, clean_extras)
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        extras = _seed_extras(cluster)
        with _session(cluster) as session:
            faulty = _install(session, rate=0.2, seed=seed)
            _edit(session, cluster, extras)
            assert session.dirty == []
            assert sum(faulty.injected.values()) > 0
        assert _state(cluster, extras) == expected


def test_bulk_actions_through_faults_are_applied_once() -> None:
    """A bulk action is sent at once; after a lost answer, sending it again is harmless."""
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        with _session(cluster) as session:
            faulty = _install(session, rate=0.5, seed=1, kinds=("dropped", "504-after", "refused"))
            done = Experiment.query(session).filter(state="COMPLETED")
            for _ in range(20):
                try:
                    done.archive()
                    break
                except (TransportError, ServerError):
                    continue
            assert sum(faulty.injected.values()) > 0
        with _session(cluster) as check:
            rows = Experiment.query(check).all()
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
        assert session.retries == FAST.retries  # every retry was spent first


def test_a_stream_cut_every_time_gives_up_typed(
    read_cluster: tuple[Cluster, dict[str, Any]],
) -> None:
    cluster, extras = read_cluster
    with _session(cluster) as session:
        trial = session.get(Trial, extras["trial"])
        _install(session, rate=1.0, seed=0, kinds=("cut",))
        with pytest.raises(StreamInterrupted):
            list(trial.logs())
