"""Merging rows into the identity map: a route never erases what another route loaded.

Every resource comes back from several routes (a single GET, a list, a search, embedded in
another resource's row), each carrying a different set of fields. For every resource and every
ordered pair of those routes: load the object through the first, then through the second; every
field the first loaded must still be loaded, never turned to None, and every value the second
brought must be the master's (a fresh single GET is the truth).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import detorm
from detorm import (
    Checkpoint,
    Experiment,
    Model,
    ModelVersion,
    Project,
    Q,
    Trial,
    User,
    Workspace,
)
from detorm._resources._base import Resource
from detorm._state._identity import IdentityMap
from detorm.local import LocalMaster, Seeder
from tests.conftest import NO_HOME
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster, seed_cluster

Load = Callable[[Api], object]


@dataclass(frozen=True)
class Target:
    """One object of the seeded cluster, and the routes that return it."""

    resource: type[Resource]
    key: Any
    routes: dict[str, Load]


@pytest.fixture(scope="module")
def registry_cluster() -> Iterator[tuple[Cluster, int, int]]:
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        trial = cluster.trials["resnet-base"][0]
        with Seeder(master.database) as seed:
            uuid = seed.checkpoint(trial, total_batches=250, metadata={"framework": "torch"})
            model = seed.model("classifier", labels=["a"], metadata={"k": 1}, notes="n")
            seed.model_version(model, uuid, name="v1", labels=["x"], metadata={"m": 2})
        yield cluster, model, trial


def _single(resource: type[Resource], key: Any) -> Load:
    return lambda a: a(a(a.session.get(a.of(resource), key)).refresh())


def targets(cluster: Cluster, model: int, trial: int) -> list[Target]:
    experiment = cluster.experiments["resnet-base"]
    with detorm.Session(cluster.url, user="determined", password="", cache=False) as s:
        best = s.get(Experiment, experiment).best_trial()
        assert best is not None
        uuid = next(iter(Checkpoint.query(s).filter(trial_id=trial))).uuid
        version = ModelVersion.query(s).filter(model_id=model).first()
        assert version is not None
        workspace = cluster.workspaces["research"]
        project = cluster.projects["vision"]
        user = s.whoami().id
    search = Q(id=experiment) | Q(id=-1)  # an OR: only the experiments search can answer it
    return [
        Target(Experiment, experiment, {
            "GetExperiment": _single(Experiment, experiment),
            "GetExperiments": lambda a: a(a.of(Experiment).query(a.session).filter(id=experiment).all()),
            "SearchExperiments": lambda a: a(a.of(Experiment).query(a.session).filter(search).all()),
        }),
        Target(Trial, best.id, {
            "GetTrial": _single(Trial, best.id),
            "GetExperimentTrials": lambda a: a(a.of(Trial).query(a.session).filter(experiment_id=experiment).all()),
            "SearchRuns": lambda a: a(a.of(Trial).query(a.session).filter(id=best.id).all()),
            "SearchExperiments.bestTrial": lambda a: a(a.of(Experiment).query(a.session).filter(search).all()),
        }),
        Target(Checkpoint, uuid, {
            "GetCheckpoint": _single(Checkpoint, uuid),
            "GetTrialCheckpoints": lambda a: a(a.of(Checkpoint).query(a.session).filter(trial_id=trial).all()),
            "GetExperimentCheckpoints": lambda a: a(a.of(Checkpoint).query(a.session)
            .filter(experiment_id=experiment)
            .all()),
            "GetModelVersions.checkpoint": lambda a: a(a.of(ModelVersion).query(a.session)
            .filter(model_id=model)
            .all()),
        }),
        Target(Workspace, workspace, {
            "GetWorkspace": _single(Workspace, workspace),
            "GetWorkspaces": lambda a: a(a.of(Workspace).query(a.session).all()),
        }),
        Target(Project, project, {
            "GetProject": _single(Project, project),
            "GetWorkspaceProjects": lambda a: a(a.of(Project).query(a.session).all()),
        }),
        Target(Model, model, {
            "GetModel": _single(Model, model),
            "GetModels": lambda a: a(a.of(Model).query(a.session).all()),
            "GetModelVersions.model": lambda a: a(a.of(ModelVersion).query(a.session).filter(model_id=model).all()),
        }),
        Target(ModelVersion, (model, version.version), {
            "GetModelVersion": _single(ModelVersion, (model, version.version)),
            "GetModelVersions": lambda a: a(a.of(ModelVersion).query(a.session).filter(model_id=model).all()),
        }),
        Target(User, user, {
            "GetUser": _single(User, user),
            "GetUsers": lambda a: a(a.of(User).query(a.session).all()),
            "GetMe": lambda a: a(a.session.whoami()),
        }),
    ]  # fmt: skip


def _pairs(cluster: Cluster, model: int, trial: int) -> Iterator[tuple[Target, str, str]]:
    for target in targets(cluster, model, trial):
        for first, second in itertools.permutations(target.routes, 2):
            yield target, first, second


def _held(api: Api, target: Target) -> Resource:
    key, session = target.key, api.session
    if target.resource is ModelVersion:
        found = [
            v
            for v in session.identity
            if isinstance(v, api.of(ModelVersion)) and v.model_id == key[0]
        ]
        assert found, "the route did not return the model version"
        return found[0]
    obj = session.identity.get(api.of(target.resource), key)
    assert obj is not None, "the route did not return the object"
    return obj


def _hold_everything(api: Api) -> None:
    """Pin every object the session merges: the identity map holds objects weakly, and a row a
    route merged without returning it (a search's best trial) would be gone before we look."""
    identity = api.session.identity

    def add_and_pin(obj: Resource) -> None:
        IdentityMap.add(identity, obj)
        identity.pin(obj)

    identity.add = add_and_pin  # type: ignore[method-assign]


def _loaded(obj: Resource) -> dict[str, Any]:
    return {name: obj.__dict__[name] for name in obj.loaded_fields}


def test_every_resource_has_several_routes(
    registry_cluster: tuple[Cluster, int, int],
) -> None:
    found = targets(*registry_cluster)
    assert {t.resource for t in found} == {
        Experiment, Trial, Checkpoint, Workspace, Project, Model, ModelVersion, User
    }  # fmt: skip
    assert all(len(t.routes) >= 2 for t in found)


@pytest.mark.parametrize("mode", MODES)
def test_a_second_route_never_erases_what_the_first_loaded(
    registry_cluster: tuple[Cluster, int, int], mode: Mode
) -> None:
    cluster = registry_cluster[0]
    problems: list[str] = []

    def session() -> Api:
        return Api(mode, cluster.url, NO_HOME, cache=False)

    for target, first, second in _pairs(*registry_cluster):
        with session() as truth_s:
            _hold_everything(truth_s)
            target.routes[next(iter(target.routes))](truth_s)  # the single GET
            truth = _loaded(_held(truth_s, target))
        with session() as s:
            _hold_everything(s)
            target.routes[first](s)
            before = _loaded(_held(s, target))
            target.routes[second](s)
            after = _loaded(_held(s, target))
        where = f"{target.resource.__name__} {first} then {second}"
        for name, value in before.items():
            if name not in after:
                problems.append(f"{where}: {name} is no longer loaded")
            elif value is not None and after[name] is None:
                problems.append(f"{where}: {name} turned from {value!r} to None")
        for name, value in after.items():
            if name in truth and value != truth[name] and value != before.get(name):
                problems.append(f"{where}: {name} = {value!r}, the master holds {truth[name]!r}")
    assert problems == [], "\n".join(problems)
