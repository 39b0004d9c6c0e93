"""Fixtures of the bad-input tests: one seeded detorm.local for the package, a world on it for
each API (sync and async: every test runs in both), and the property every test checks: a call
returns a result or refuses its input with a typed error, before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings

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
)
from detorm._api import _aio, _sync
from detorm._state._session import SessionBase
from detorm.errors import (
    ConfigurationError,
    DetormError,
    InvalidAttribute,
    InvalidType,
    InvalidValue,
    QueryError,
)
from detorm.local import LocalMaster, Seeder
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster, seed_cluster

# Deterministic and quick: the same examples on every run, no example database.
GENERATED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

INPUT_ERRORS = (ConfigurationError, QueryError, InvalidValue, InvalidAttribute)

RESOURCES: dict[Mode, tuple[type[Any], ...]] = {"sync": _sync.RESOURCES, "async": _aio.RESOURCES}
"""Each API's resource classes."""


@dataclass
class Seeded:
    """The package's seeded master: the cluster of ``tests.sdk``, a model with a version, and
    a trial with logs and a checkpoint."""

    cluster: Cluster
    model: int
    trial: int


@dataclass
class World:
    """One API (sync or async) on the seeded master, and one loaded object of every resource,
    of that API's classes."""

    cluster: Cluster
    api: Api
    objects: dict[type[Any], Any]

    @property
    def mode(self) -> Mode:
        return self.api.mode

    @property
    def session(self) -> Any:
        """The API's session: a detorm.Session or a detorm.aio.AsyncSession."""
        return self.api.session

    @property
    def resources(self) -> tuple[type[Any], ...]:
        return RESOURCES[self.mode]

    def __getitem__(self, resource: type[Any]) -> Any:
        """The loaded object of ``resource`` (given by either API's class)."""
        return self.objects[self.api.of(resource)]

    def rollback(self) -> None:
        self.api(self.session.rollback())


@pytest.fixture(scope="package", params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    """The API under test: every test of the package runs through both."""
    mode: Mode = request.param
    return mode


@pytest.fixture(scope="package")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded detorm.local shared by both APIs' worlds (no test changes it)."""
    home = tmp_path_factory.mktemp("bad-input-seed")
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        with Seeder(master.database) as seed:
            model = seed.model("classifier", labels=["prod"], metadata={"team": "cv"})
            # webhooks: a workspace's owner may create them there (authz_basic_impl.go)
            cluster.workspaces["hooks"] = seed.workspace("hooks", owner="determined")
            trial = cluster.trials["resnet-base"][0]
            seed.logs(trial, ["loading data", "epoch 1 done", "epoch 2 done"])
        with detorm.Session(master.url, user="determined", password="", environ=environ) as s:
            checkpoint = s.get(Trial, trial).checkpoints.first()
            assert checkpoint is not None
        with Seeder(master.database) as seed:
            seed.model_version(model, checkpoint.uuid, name="v1")
        yield Seeded(cluster, model, trial)


@pytest.fixture(scope="package")
def world(mode: Mode, seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"bad-input-{mode}")
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    # Names unique to this world (its home's name: bad-input-sync0...): a run that splits the
    # package (pytest-xdist) may build a mode's world twice on the same seeded master.
    unique = home.name
    cluster = seeded.cluster
    with Api(mode, cluster.url, environ) as api:
        s = api.session
        experiment = api(s.get(api.of(Experiment), cluster.experiments["resnet-base"]))
        trial = api(s.get(api.of(Trial), seeded.trial))
        checkpoint = api(trial.checkpoints.first())
        assert checkpoint is not None
        loaded = {
            Experiment: experiment,
            Trial: trial,
            Checkpoint: checkpoint,
            Project: api(s.get(api.of(Project), experiment.project_id)),
            Workspace: api(s.get(api.of(Workspace), cluster.workspaces["research"])),
            Model: api(s.get(api.of(Model), seeded.model)),
            ModelVersion: api(s.get(api.of(ModelVersion), (seeded.model, 1))),
            User: api(s.whoami()),
            Template: api(api.of(Template).create(unique, {}, session=s)),
            Command: api(api.of(Command).launch("true", session=s)),
            Shell: api(api.of(Shell).launch(session=s)),
            Notebook: api(api.of(Notebook).launch(session=s)),
            Tensorboard: api(api.of(Tensorboard).launch(experiments=[experiment], session=s)),
        }
        loaded[Task] = api(s.get(api.of(Task), loaded[Command].id))
        loaded[Job] = api(s.load(loaded[Command], "job"))
        loaded[ResourcePool] = api(s.get(api.of(ResourcePool), "default"))
        loaded[Agent] = api(api.of(Agent).query(s).first())
        loaded[Webhook] = api(api.of(Webhook).create(
            f"https://bad-input.example.com/{mode}", triggers=[Trigger("CUSTOM")],
            mode="SPECIFIC", workspace=cluster.workspaces["hooks"], name=unique,
            session=s,
        ))  # fmt: skip
        objects = {api.of(cls): obj for cls, obj in loaded.items()}
        assert all(isinstance(obj, cls) for cls, obj in objects.items())
        yield World(cluster, api, objects)


def refused_or_done(session: SessionBase, action: Callable[[], Any]) -> Any:
    """Run ``action``: its result, or the input error it raised before sending anything.

    Anything else fails the test: an untyped exception, an API error (the bad input reached the
    master), or an input error raised after a request was sent. Through the async API the
    action awaits (``api(...)``): an error raised when the call is made and one raised when it
    is awaited both count, if nothing was sent.
    """
    before = session.requests_sent
    try:
        result = action()
    except DetormError as err:
        assert isinstance(err, INPUT_ERRORS), f"not refused before sending: {err!r}"
        assert session.requests_sent == before, f"refused only after sending: {err!r}"
        assert isinstance(err, AttributeError if isinstance(err, InvalidAttribute) else ValueError)
        event(f"refused: {type(err).__name__}")
        return err
    event("done")
    return result


def refused_as_type(session: SessionBase, action: Callable[[], Any]) -> InvalidType:
    """``action`` must refuse a value of the wrong type: InvalidType, also a TypeError."""
    outcome = refused_or_done(session, action)
    assert isinstance(outcome, InvalidType), f"a value of the wrong type gave {outcome!r}"
    assert isinstance(outcome, TypeError)
    return outcome
