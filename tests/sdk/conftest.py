"""SDK fixtures: a seeded detorm.local and sessions whose token cache lives in tmp_path."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import detorm
from detorm.local import LocalMaster, Seeder
from tests.conftest import copy_database
from tests.sdk.apis import MODES, Api

# The lookup cases live outside a test file (two test files run them): their asserts still
# explain themselves when they fail.
pytest.register_assert_rewrite("tests.sdk.lookups_e2e")


@dataclass
class Cluster:
    """A detorm.local with a small known dataset; ids of what was seeded."""

    master: LocalMaster
    workspaces: dict[str, int] = field(default_factory=dict)
    projects: dict[str, int] = field(default_factory=dict)
    experiments: dict[str, int] = field(default_factory=dict)
    trials: dict[str, list[int]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.master.url

    def served_by(self, master: LocalMaster) -> Cluster:
        """The same ids on another master (serving a copy of this one's database)."""
        trials = {name: list(ids) for name, ids in self.trials.items()}
        return Cluster(
            master, dict(self.workspaces), dict(self.projects), dict(self.experiments), trials
        )


def seed_cluster(master: LocalMaster) -> Cluster:
    cluster = Cluster(master)
    with Seeder(master.database) as s:
        s.user("alice", password="secret")
        research = s.workspace("research")
        cluster.workspaces["research"] = research
        cluster.projects["vision"] = vision = s.project("vision", workspace=research)
        cluster.projects["nlp"] = nlp = s.project("nlp", workspace=research)
        specs = [
            (
                "resnet-base",
                vision,
                "COMPLETED",
                ["prod", "cv"],
                0.1,
                "determined",
                [0.9, 0.5, 0.31],
            ),
            ("resnet-wide", vision, "COMPLETED", ["cv"], 0.01, "alice", [0.8, 0.4, 0.2]),
            ("vit-small", vision, "ACTIVE", ["prod"], 0.001, "alice", [1.2, 0.9]),
            ("vit-large", vision, "PAUSED", [], 0.003, "determined", [1.1]),
            ("bert-base", nlp, "COMPLETED", ["prod", "nlp"], 0.05, "determined", [0.7, 0.6]),
            ("bert-tiny", nlp, "ERROR", ["nlp"], 0.5, "alice", []),
            ("gpt-mini", nlp, "CANCELED", ["nlp", "gen"], 0.02, "determined", [2.0, 1.5]),
        ]
        for name, project, state, labels, lr, owner, losses in specs:
            exp = s.experiment(
                project=project, name=name, state=state, labels=labels, owner=owner,
                description=f"{name} sweep", hyperparameters={"lr": lr, "optimizer": {"momentum": 0.9}},
                searcher="random" if len(losses) > 1 else "single",
            )  # fmt: skip
            cluster.experiments[name] = exp
            trial_ids = []
            for index in range(2):
                trial = s.trial(
                    exp, hparams={"lr": lr * (index + 1), "optimizer": {"momentum": 0.9}}
                )
                trial_ids.append(trial)
                reports = [
                    (100 * (i + 1), {"validation_loss": loss * (index + 1)})
                    for i, loss in enumerate(losses)
                ]
                s.metrics(trial, "validation", reports)
                s.metrics(
                    trial,
                    "training",
                    [
                        (b, {"loss": v * 1.1})
                        for b, v in [(r[0], r[1]["validation_loss"]) for r in reports]
                    ],
                )
                if losses:
                    s.checkpoint(trial, total_batches=100 * len(losses))
            cluster.trials[name] = trial_ids
    return cluster


def seeded_template(seed: Callable[[LocalMaster], Cluster], directory: Path) -> Cluster:
    """A cluster seeded by ``seed`` into ``directory``, then stopped: the template that
    :func:`served_copy` serves copies of (a copy costs a fraction of seeding)."""
    with LocalMaster(db_path=directory / "local.sqlite", process=False) as master:
        return seed(master)


@contextmanager
def served_copy(template: Cluster, directory: Path) -> Iterator[Cluster]:
    """A detorm.local of its own over a copy of the template's database: the same rows and ids."""
    db_path = copy_database(template.master.db_path, directory)
    with LocalMaster(db_path=db_path, process=False) as master:
        yield template.served_by(master)


@pytest.fixture(scope="session")
def cluster_template(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return seeded_template(seed_cluster, tmp_path_factory.mktemp("cluster-template"))


@pytest.fixture(scope="session")
def cluster(
    cluster_template: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One seeded detorm.local for read-only tests."""
    with served_copy(cluster_template, tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def fresh_cluster(cluster_template: Cluster, tmp_path: Path) -> Iterator[Cluster]:
    """A seeded detorm.local of its own, for tests that write."""
    with served_copy(cluster_template, tmp_path / "fresh-cluster") as cluster:
        yield cluster


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """An environment whose det CLI config (auth.json) is in tmp_path."""
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.fixture
def session(cluster: Cluster, environ: dict[str, str]) -> Iterator[detorm.Session]:
    with detorm.Session(cluster.url, user="determined", password="", environ=environ) as s:
        yield s


@pytest.fixture
def writer(fresh_cluster: Cluster, environ: dict[str, str]) -> Iterator[detorm.Session]:
    with detorm.Session(fresh_cluster.url, user="determined", password="", environ=environ) as s:
        yield s


@pytest.fixture(params=MODES)
def api(request: pytest.FixtureRequest, cluster: Cluster, environ: dict[str, str]) -> Iterator[Api]:
    """The read-only cluster through the sync API and through the async one."""
    both = Api(request.param, cluster.url, environ)
    yield both
    both.close()


@pytest.fixture(params=MODES)
def writer_api(
    request: pytest.FixtureRequest, fresh_cluster: Cluster, environ: dict[str, str]
) -> Iterator[Api]:
    """A cluster of its own, to write to, through either API."""
    both = Api(request.param, fresh_cluster.url, environ)
    yield both
    both.close()


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """Objects must be freed by reference counting alone. (No collection first: garbage from
    before the test cannot keep the test's objects alive, and a worker's full collection takes
    seconds.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
