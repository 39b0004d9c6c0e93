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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from typing import Any

import pytest
from sqlmodel import select

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
    TrialState,
    WireEnum,
)
from detorm.errors import QueryError
from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from tests.sdk.apis import MODES, Api, Mode

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
RESOURCES: dict[str, Any] = {  # the resource classes, by name
    "Experiment": Experiment, "Trial": Trial, "Checkpoint": Checkpoint, "Workspace": Workspace,
    "Project": Project, "Model": Model, "ModelVersion": ModelVersion, "User": User,
}  # fmt: skip


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
        the test. (Plain HTTP: no certificates to load, which would take most of a case's time.)"""
        return Api(mode, self.url, self.environ, password=None, verify=False, cache=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("lookups")
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    with LocalMaster(process=False) as master:
        seed(master)
        with detorm.Session(master.url, user="determined", password="", environ=environ) as s:
            yield World(master.url, environ, s)


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
def present(objects: Sequence[Resource], name: str) -> list[Any]:
    """Distinct values the objects hold: the lowest, the highest and a few between."""
    values: list[Any] = []
    for obj in objects:
        if name == "duration" and getattr(obj, "end_time", None) is None:
            continue  # it grows every second: the master computes it when asked
        value = getattr(obj, name)
        if value is not None and not any(same(value, v) and type(value) is type(v) for v in values):
            values.append(value)
    if len(values) <= 6 or isinstance(values[0], TagSet):
        return values
    ordered = sorted(values, key=order_key)
    return [ordered[i * (len(ordered) - 1) // 5] for i in range(6)]


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


def variants(column: Column, values: Sequence[Any]) -> list[Any]:
    """Near misses of present values: another case, a substring, a tag of another case."""
    out: list[Any] = []
    for value in values[:2]:
        if column.kind == "str" and value:
            out += [value.swapcase(), value[1:].upper(), value[: max(1, len(value) // 2)]]
        if column.kind == "set":
            out += [tag.swapcase() for tag in value][:1]
    return out


def cases_for(column: Column, lookup: str, objects: Sequence[Resource]) -> list[Any]:
    values = present(objects, column.name)
    if lookup == "isnull":
        return [True, False]
    if column.kind == "set":
        tags = sorted({tag for tagset in values for tag in tagset})
        if lookup == "contains":
            return tags + ["absent", *variants(column, values)]
        return [frozenset(v) for v in values] + absent(column, values)
    tried = values + absent(column, values) + variants(column, values)
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


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("resource", "name", "lookup"), FILTER_CASES)
def test_every_lookup_matches_brute_force(
    world: World, resource: str, name: str, lookup: str, mode: Mode
) -> None:
    column = COLUMNS[resource][name]
    with world.session(mode) as api:
        cls, s = getattr(api, resource), api.session
        for scope in scopes(world, resource):
            objects = everything(world, resource, scope)
            for value in cases_for(column, lookup, objects):
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
    return checkpoint_rules(plan, name)


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
    if isinstance(value, str) and "Checkpoints" in operation:  # Go compares uuids bytewise
        return value
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


@pytest.mark.parametrize("mode", MODES)
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
}  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
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
}  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
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
