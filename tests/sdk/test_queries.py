"""Queries against detorm.local: results, request counts, identity, relationships; each test
runs through the sync API and through its async twin (``api``, see ``apis.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from detorm import Q, hp, metrics
from detorm.errors import InvalidValue, NotFound, NotLoaded, QueryError
from tests.sdk.apis import Api
from tests.sdk.conftest import Cluster


def names(rows: list[Any]) -> list[str]:
    return [e.name for e in rows]


def test_all_experiments_in_one_request(api: Api, cluster: Cluster) -> None:
    before = api.session.requests_sent
    rows = api(api.Experiment.query(api.session).order_by("id").all())
    assert [e.id for e in rows] == sorted(cluster.experiments.values())
    assert api.session.requests_sent - before == (1 if api.mode == "sync" else 2)  # + login


def test_paging_walks_every_page(api: Api, cluster: Cluster) -> None:
    api(api.session.whoami())
    before = api.session.requests_sent
    rows = api.list(api.Experiment.query(api.session).order_by("id").page_size(3))
    assert len(rows) == len(cluster.experiments)
    assert api.session.requests_sent - before == 3  # 3 + 3 + 1


def test_filters_and_order(api: Api) -> None:
    q = api.Experiment.query(api.session)
    assert sorted(names(api(q.filter(state="COMPLETED").all()))) == [
        "bert-base", "resnet-base", "resnet-wide",
    ]  # fmt: skip
    assert names(api(q.filter(tags__contains="prod").order_by("name").all())) == [
        "bert-base", "resnet-base", "vit-small",
    ]  # fmt: skip
    both = q.filter(tags__contains="prod").filter(tags__contains="cv")
    assert names(api(both.all())) == ["resnet-base"]
    assert names(api(q.filter(name__contains="RESNET").order_by("-name").all())) == [
        "resnet-wide", "resnet-base",
    ]  # fmt: skip
    assert names(api(q.filter(name="bert-base").all())) == ["bert-base"]
    assert names(api(q.filter(username="alice").order_by("name").all())) == [
        "bert-tiny", "resnet-wide", "vit-small",
    ]  # fmt: skip
    running = q.filter(state__in=["ACTIVE", "PAUSED"]).order_by("start_time")
    assert names(api(running.all())) == ["vit-small", "vit-large"]


def test_state_of_running_experiments_matches_reported_state(api: Api) -> None:
    active = api(api.Experiment.query(api.session).filter(name="vit-small").one())
    by_reported = api(api.Experiment.query(api.session).filter(state=active.state).all())
    assert names(by_reported) == ["vit-small"]


def test_or_not_and_expressions(api: Api) -> None:
    q = api.Experiment.query(api.session)
    either = q.filter(Q(name__contains="bert") | Q(tags__contains="cv")).order_by("name")
    assert names(api(either.all())) == ["bert-base", "bert-tiny", "resnet-base", "resnet-wide"]
    assert "experiments-search" in str(either.explain())
    not_nlp = q.exclude(tags__contains="nlp").order_by("name")
    assert names(api(not_nlp.all())) == ["resnet-base", "resnet-wide", "vit-large", "vit-small"]
    assert names(api(q.filter(hp.lr >= 0.05).order_by("name").all())) == [
        "bert-base", "bert-tiny", "resnet-base",
    ]  # fmt: skip
    best = q.filter(metrics.validation.validation_loss.min < 0.35).order_by("name")
    assert names(api(best.all())) == ["resnet-base", "resnet-wide"]
    assert names(api(q.filter(Q(hp__lr__lt=0.005) & ~Q(state="PAUSED")).all())) == ["vit-small"]


def test_client_side_residual_is_explained_and_correct(api: Api) -> None:
    q = api.Experiment.query(api.session).filter(Q(tags={"cv"}) | Q(name="gpt-mini"))
    q = q.order_by("name")
    assert q.explain().client_side is not None
    assert names(api(q.all())) == ["gpt-mini", "resnet-wide"]


def test_count_is_one_request_from_the_total(api: Api) -> None:
    api(api.session.whoami())
    q = api.Experiment.query(api.session).filter(
        state__in=["ACTIVE", "PAUSED"], tags__contains="prod"
    )
    before = api.session.requests_sent
    assert api(q.count()) == 1
    assert api.session.requests_sent - before == 1
    search = api.Experiment.query(api.session).filter(hp.lr > 0.001)
    before = api.session.requests_sent
    assert api(search.count()) == 6
    assert api.session.requests_sent - before == 1


def test_first_one_exists_slices(api: Api, cluster: Cluster) -> None:
    q = api.Experiment.query(api.session).order_by("id")
    ids = sorted(cluster.experiments.values())
    assert api(q.first()).id == ids[0]
    assert [e.id for e in api.list(q[2:4])] == ids[2:4]
    assert api(q[1]).id == ids[1]
    assert api(q[-1]).id == ids[-1]
    assert [e.id for e in api(q[-2:].all())] == ids[-2:]
    assert api(q.filter(name="nope").first()) is None
    assert not api(q.filter(name="nope").exists())
    assert api(q.exists())
    assert api(q.filter(name="gpt-mini").one()).name == "gpt-mini"
    assert api(q.filter(name="nope").one_or_none()) is None
    with pytest.raises(QueryError, match="more than one"):
        api(q.one())
    with pytest.raises(NotFound):
        api(q.filter(name="nope").one())
    with pytest.raises(IndexError):
        api(q[100])
    assert api(q.get(cluster.experiments["bert-tiny"])).name == "bert-tiny"
    with pytest.raises(NotFound, match="matches the query"):
        api(q.filter(name="gpt-mini").get(cluster.experiments["bert-tiny"]))


def test_identity_map_one_object_per_id(api: Api, cluster: Cluster) -> None:
    a = api(api.Experiment.query(api.session).filter(name="bert-base").one())
    b = api(api.session.get(api.Experiment, cluster.experiments["bert-base"]))
    c = api(api.Experiment.query(api.session).filter(tags__contains="nlp").order_by("name").first())
    assert a is b is c
    assert type(a) is api.Experiment


def test_get_is_complete_and_list_rows_defer_what_lists_omit(api: Api, cluster: Cluster) -> None:
    listed = api(api.Experiment.query(api.session).filter(name="resnet-base").one())
    with pytest.raises(NotLoaded, match="refresh"):
        listed.original_config
    assert api(listed.refresh()) is listed
    assert listed.trial_ids == tuple(sorted(cluster.trials["resnet-base"]))
    assert "hyperparameters" in listed.original_config
    before = api.session.requests_sent
    assert api(api.session.get(api.Experiment, listed.id)) is listed
    assert api.session.requests_sent == before  # complete objects are not fetched again


def test_relationships(api: Api, cluster: Cluster) -> None:
    exp = api(api.session.get(api.Experiment, cluster.experiments["resnet-base"]))
    before = api.session.requests_sent
    if api.mode == "async":
        # An attribute read cannot await: a parent that is not loaded says how to load it.
        with pytest.raises(NotLoaded, match=r'await session.load\(experiment, "project"\)'):
            exp.project
        project = api(api.session.load(exp, "project"))
        api(api.session.load(project, "workspace"))
    project = exp.project
    assert project.name == "vision" and project.workspace.name == "research"
    assert api.session.requests_sent - before == 2  # each fetched once
    assert exp.project is project
    assert api.session.requests_sent - before == 2
    assert sorted(names(api.list(project.workspace.projects))) == ["nlp", "vision"]
    trials = api(exp.trials.order_by("id").all())
    assert [t.id for t in trials] == cluster.trials["resnet-base"]
    assert trials[0].experiment is exp  # in the identity map: no request, in either API
    assert trials[0].hparams == {"lr": 0.1, "optimizer": {"momentum": 0.9}}
    checkpoints = api(trials[0].checkpoints.all())
    assert len(checkpoints) == 1 and checkpoints[0].trial is trials[0]
    per_trial = [c.uuid for t in trials for c in api.list(t.checkpoints)]
    assert [c.uuid for c in api.list(exp.checkpoints)] == sorted(per_trial)


def test_load_reads_children_once(api: Api, cluster: Cluster) -> None:
    exp = api(api.session.get(api.Experiment, cluster.experiments["resnet-wide"]))
    loaded = api(api.session.load(exp, "trials"))
    assert sorted(t.id for t in loaded) == cluster.trials["resnet-wide"]
    before = api.session.requests_sent
    assert api.list(exp.trials) == loaded
    assert api.session.requests_sent == before
    with pytest.raises(InvalidValue, match="no relationship named 'nope'"):
        api(api.session.load(exp, "nope"))


def test_summary_metrics_and_best_validation(api: Api, cluster: Cluster) -> None:
    exp = api(api.session.get(api.Experiment, cluster.experiments["resnet-wide"]))
    trial = api(api.session.get(api.Trial, cluster.trials["resnet-wide"][0]))
    loss = trial.summary_metrics["validation"]["validation_loss"]
    assert (loss.min, loss.max, loss.last, loss.count) == (0.2, 0.8, 0.2, 3)
    assert loss.mean == pytest.approx((0.8 + 0.4 + 0.2) / 3)
    assert trial.summary_metrics["training"]["loss"].count == 3
    assert trial.best_validation is not None
    assert trial.best_validation.metrics == {"validation_loss": 0.2}
    assert trial.searcher_metric_value == 0.2  # derived from the best validation
    best = api(exp.best_trial())
    assert best is trial


def test_prefetch_trials_one_request_per_page(api: Api, cluster: Cluster) -> None:
    api(api.session.whoami())
    before = api.session.requests_sent
    query = api.Experiment.query(api.session).filter(project_id=cluster.projects["vision"])
    experiments = api(query.prefetch("trials").all())
    for exp in experiments:
        trials = api(exp.trials.all())
        assert sorted(t.id for t in trials) == cluster.trials[exp.name]
        for trial in trials:
            assert trial.hparams["lr"] > 0
            assert "validation" in trial.summary_metrics or exp.name == "bert-tiny"
    assert api.session.requests_sent - before == 2


def test_trials_across_experiments_by_hyperparameter(api: Api, cluster: Cluster) -> None:
    trials = api(api.Trial.query(api.session).filter(hp.lr > 0.3).order_by("id").all())
    assert [t.id for t in trials] == cluster.trials["bert-tiny"]
    with pytest.raises(NotLoaded):
        trials[0].restarts  # the runs search does not return it
    assert api(trials[0].refresh()).restarts == 0


def test_checkpoint_queries_need_a_scope(api: Api, cluster: Cluster) -> None:
    with pytest.raises(QueryError, match="per experiment or per trial"):
        api(api.Checkpoint.query(api.session).all())
    done = api.Checkpoint.query(api.session).filter(
        experiment_id=cluster.experiments["resnet-base"], state="COMPLETED"
    )
    assert api(done.count()) == 2


def test_registry_queries(api: Api, cluster: Cluster) -> None:
    workspaces = api.Workspace.query(api.session)
    assert names(api.list(workspaces.order_by("id"))) == ["Uncategorized", "research"]
    assert api(workspaces.filter(name="research").one()).id == cluster.workspaces["research"]
    projects = api.Project.query(api.session).filter(workspace_id=cluster.workspaces["research"])
    assert names(api.list(projects.order_by("name"))) == ["nlp", "vision"]
    admins = api.list(api.User.query(api.session).filter(admin=True))
    assert [u.username for u in admins] == ["admin"]
    assert api(api.Model.query(api.session).count()) == 0
    assert api(api.session.query(api.Model).count()) == 0


def test_query_results_into_dataframes(api: Api, cluster: Cluster) -> None:
    query = api.Experiment.query(api.session).filter(project_id=cluster.projects["vision"])
    query = query.order_by("id")
    frame = api(query.to_pandas())
    assert list(frame["name"]) == ["resnet-base", "resnet-wide", "vit-small", "vit-large"]
    assert list(frame["state"])[:2] == ["COMPLETED", "COMPLETED"]
    assert frame["tags"][0] == ["cv", "prod"]
    polars_frame = api(query.to_polars())
    assert polars_frame.height == 4 and "start_time" in polars_frame.columns
    records = api(query.to_records())
    assert [r["name"] for r in records] == list(frame["name"])
