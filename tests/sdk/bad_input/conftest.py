"""Fixtures of the bad-input tests: one seeded detorm.local for the package, and the property
every test checks: a call returns a result or refuses its input with a typed error, before
anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings

import detorm
from detorm import Checkpoint, Experiment, Model, ModelVersion, Project, Trial, User, Workspace
from detorm.errors import (
    ConfigurationError,
    DetormError,
    InvalidAttribute,
    InvalidType,
    InvalidValue,
    QueryError,
)
from detorm.local import LocalMaster, Seeder
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


@dataclass
class World:
    """A session on the seeded master and one loaded object of every resource."""

    cluster: Cluster
    session: detorm.Session
    objects: dict[type[Any], Any]


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("bad-input")
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        with Seeder(master.database) as seed:
            model = seed.model("classifier", labels=["prod"], metadata={"team": "cv"})
            trial = cluster.trials["resnet-base"][0]
            seed.logs(trial, ["loading data", "epoch 1 done", "epoch 2 done"])
        with detorm.Session(master.url, user="determined", password="", environ=environ) as s:
            experiment = s.get(Experiment, cluster.experiments["resnet-base"])
            checkpoint = s.get(Trial, trial).checkpoints.first()
            assert checkpoint is not None
            with Seeder(master.database) as seed:
                seed.model_version(model, checkpoint.uuid, name="v1")
            objects = {
                Experiment: experiment,
                Trial: s.get(Trial, trial),
                Checkpoint: checkpoint,
                Project: s.get(Project, experiment.project_id),
                Workspace: s.get(Workspace, cluster.workspaces["research"]),
                Model: s.get(Model, model),
                ModelVersion: s.get(ModelVersion, (model, 1)),
                User: s.whoami(),
            }
            yield World(cluster, s, objects)


def refused_or_done(session: detorm.Session, action: Callable[[], Any]) -> Any:
    """Run ``action``: its result, or the input error it raised before sending anything.

    Anything else fails the test: an untyped exception, an API error (the bad input reached the
    master), or an input error raised after a request was sent.
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


def refused_as_type(session: detorm.Session, action: Callable[[], Any]) -> InvalidType:
    """``action`` must refuse a value of the wrong type: InvalidType, also a TypeError."""
    outcome = refused_or_done(session, action)
    assert isinstance(outcome, InvalidType), f"a value of the wrong type gave {outcome!r}"
    assert isinstance(outcome, TypeError)
    return outcome
