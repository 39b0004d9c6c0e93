"""Queries against detorm.local: results, request counts, identity, relationships."""

from __future__ import annotations

import pytest

import detorm
from detorm import Checkpoint, Experiment, Model, Project, Q, Trial, User, Workspace, hp, metrics
from detorm.errors import NotFound, NotLoaded, QueryError
from tests.sdk.conftest import Cluster


def names(rows: list[Experiment]) -> list[str]:
    return [e.name for e in rows]


def test_all_experiments_in_one_request(session: detorm.Session, cluster: Cluster) -> None:
    before = session.requests_sent
    rows = Experiment.query(session).order_by("id").all()
    assert [e.id for e in rows] == sorted(cluster.experiments.values())
    assert session.requests_sent - before == 1


def test_paging_walks_every_page(session: detorm.Session, cluster: Cluster) -> None:
    before = session.requests_sent
    rows = Experiment.query(session).order_by("id").page_size(3).all()
    assert len(rows) == len(cluster.experiments)
    assert session.requests_sent - before == 3  # 3 + 3 + 1


def test_filters_and_order(session: detorm.Session) -> None:
    q = Experiment.query(session)
    assert sorted(names(q.filter(state="COMPLETED").all())) == [
        "bert-base",
        "resnet-base",
        "resnet-wide",
    ]
    assert names(q.filter(tags__contains="prod").order_by("name").all()) == [
        "bert-base",
        "resnet-base",
        "vit-small",
    ]
    assert names(q.filter(tags__contains="prod").filter(tags__contains="cv").all()) == [
        "resnet-base"
    ]
    assert names(q.filter(name__contains="RESNET").order_by("-name").all()) == [
        "resnet-wide",
        "resnet-base",
    ]
    assert names(q.filter(name="bert-base").all()) == ["bert-base"]
    assert names(q.filter(username="alice").order_by("name").all()) == [
        "bert-tiny",
        "resnet-wide",
        "vit-small",
    ]
    assert names(q.filter(state__in=["ACTIVE", "PAUSED"]).order_by("start_time").all()) == [
        "vit-small",
        "vit-large",
    ]


def test_state_of_running_experiments_matches_reported_state(session: detorm.Session) -> None:
    active = Experiment.query(session).filter(name="vit-small").one()
    by_reported = Experiment.query(session).filter(state=active.state).all()
    assert names(by_reported) == ["vit-small"]


def test_or_not_and_expressions(session: detorm.Session) -> None:
    q = Experiment.query(session)
    either = q.filter(Q(name__contains="bert") | Q(tags__contains="cv")).order_by("name")
    assert names(either.all()) == ["bert-base", "bert-tiny", "resnet-base", "resnet-wide"]
    assert "experiments-search" in str(either.explain())
    not_nlp = q.exclude(tags__contains="nlp").order_by("name")
    assert names(not_nlp.all()) == ["resnet-base", "resnet-wide", "vit-large", "vit-small"]
    assert names(q.filter(hp.lr >= 0.05).order_by("name").all()) == [
        "bert-base",
        "bert-tiny",
        "resnet-base",
    ]
    best = q.filter(metrics.validation.validation_loss.min < 0.35).order_by("name")
    assert names(best.all()) == ["resnet-base", "resnet-wide"]
    assert names(q.filter(Q(hp__lr__lt=0.005) & ~Q(state="PAUSED")).all()) == ["vit-small"]


def test_client_side_residual_is_explained_and_correct(session: detorm.Session) -> None:
    q = Experiment.query(session).filter(Q(tags={"cv"}) | Q(name="gpt-mini")).order_by("name")
    assert q.explain().client_side is not None
    assert names(q.all()) == ["gpt-mini", "resnet-wide"]


def test_count_is_one_request_from_the_total(session: detorm.Session) -> None:
    q = Experiment.query(session).filter(state__in=["ACTIVE", "PAUSED"], tags__contains="prod")
    before = session.requests_sent
    assert q.count() == 1
    assert session.requests_sent - before == 1
    search = Experiment.query(session).filter(hp.lr > 0.001)
    before = session.requests_sent
    assert search.count() == 6
    assert session.requests_sent - before == 1


def test_first_one_exists_slices(session: detorm.Session, cluster: Cluster) -> None:
    q = Experiment.query(session).order_by("id")
    assert q.first() is not None and q.first().id == min(cluster.experiments.values())  # type: ignore[union-attr]
    assert [e.id for e in q[2:4]] == sorted(cluster.experiments.values())[2:4]
    assert q[1].id == sorted(cluster.experiments.values())[1]
    assert [e.id for e in q[-2:]] == sorted(cluster.experiments.values())[-2:]
    assert q.filter(name="nope").first() is None
    assert not q.filter(name="nope").exists()
    assert q.filter(name="gpt-mini").one().name == "gpt-mini"
    with pytest.raises(QueryError, match="more than one"):
        q.one()
    with pytest.raises(NotFound):
        q.filter(name="nope").one()
    with pytest.raises(IndexError):
        q[100]
    assert q.get(cluster.experiments["bert-tiny"]).name == "bert-tiny"


def test_identity_map_one_object_per_id(session: detorm.Session, cluster: Cluster) -> None:
    a = Experiment.query(session).filter(name="bert-base").one()
    b = session.get(Experiment, cluster.experiments["bert-base"])
    c = Experiment.query(session).filter(tags__contains="nlp").order_by("name").first()
    assert a is b is c


def test_get_is_complete_and_list_rows_defer_what_lists_omit(
    session: detorm.Session, cluster: Cluster
) -> None:
    listed = Experiment.query(session).filter(name="resnet-base").one()
    with pytest.raises(NotLoaded, match="refresh"):
        listed.original_config
    assert listed.refresh() is listed
    assert listed.trial_ids == tuple(sorted(cluster.trials["resnet-base"]))
    assert "hyperparameters" in listed.original_config
    before = session.requests_sent
    assert session.get(Experiment, listed.id) is listed
    assert session.requests_sent == before  # complete objects are not fetched again


def test_relationships(session: detorm.Session, cluster: Cluster) -> None:
    exp = session.get(Experiment, cluster.experiments["resnet-base"])
    before = session.requests_sent
    project = exp.project
    assert project.name == "vision" and project.workspace.name == "research"
    assert session.requests_sent - before == 2  # each fetched once
    assert exp.project is project
    assert session.requests_sent - before == 2
    assert sorted(p.name for p in project.workspace.projects) == ["nlp", "vision"]
    trials = exp.trials.order_by("id").all()
    assert [t.id for t in trials] == cluster.trials["resnet-base"]
    assert trials[0].experiment is exp
    assert trials[0].hparams == {"lr": 0.1, "optimizer": {"momentum": 0.9}}
    checkpoints = trials[0].checkpoints.all()
    assert len(checkpoints) == 1 and checkpoints[0].trial is trials[0]
    assert [c.uuid for c in exp.checkpoints] == sorted(
        c.uuid for t in trials for c in t.checkpoints
    )  # type: ignore[union-attr]


def test_summary_metrics_and_best_validation(session: detorm.Session, cluster: Cluster) -> None:
    exp = session.get(Experiment, cluster.experiments["resnet-wide"])
    trial = session.get(Trial, cluster.trials["resnet-wide"][0])
    loss = trial.summary_metrics["validation"]["validation_loss"]
    assert (loss.min, loss.max, loss.last, loss.count) == (0.2, 0.8, 0.2, 3)
    assert loss.mean == pytest.approx((0.8 + 0.4 + 0.2) / 3)
    assert trial.summary_metrics["training"]["loss"].count == 3
    assert trial.best_validation is not None and trial.best_validation.metrics == {
        "validation_loss": 0.2
    }
    assert trial.searcher_metric_value == 0.2  # derived from the best validation
    best = exp.best_trial()
    assert best is not None and best.id == cluster.trials["resnet-wide"][0]
    assert best is trial


def test_prefetch_trials_one_request_per_page(session: detorm.Session, cluster: Cluster) -> None:
    before = session.requests_sent
    experiments = (
        Experiment.query(session)
        .filter(project_id=cluster.projects["vision"])
        .prefetch("trials")
        .all()
    )
    for exp in experiments:
        trials = exp.trials.all()
        assert sorted(t.id for t in trials) == cluster.trials[exp.name]
        for trial in trials:
            assert trial.hparams["lr"] > 0
            assert "validation" in trial.summary_metrics or exp.name == "bert-tiny"
    assert session.requests_sent - before == 2


def test_trials_across_experiments_by_hyperparameter(
    session: detorm.Session, cluster: Cluster
) -> None:
    trials = Trial.query(session).filter(hp.lr > 0.3).order_by("id").all()
    assert [t.id for t in trials] == [
        cluster.trials["bert-tiny"][0],
        cluster.trials["bert-tiny"][1],
    ]
    with pytest.raises(NotLoaded):
        trials[0].restarts  # the runs search does not return it
    assert trials[0].refresh().restarts == 0


def test_checkpoint_queries_need_a_scope(session: detorm.Session, cluster: Cluster) -> None:
    with pytest.raises(QueryError, match="per experiment or per trial"):
        Checkpoint.query(session).all()
    done = Checkpoint.query(session).filter(
        experiment_id=cluster.experiments["resnet-base"], state="COMPLETED"
    )
    assert done.count() == 2


def test_registry_queries(session: detorm.Session, cluster: Cluster) -> None:
    assert [w.name for w in Workspace.query(session).order_by("id")] == [
        "Uncategorized",
        "research",
    ]
    assert (
        Workspace.query(session).filter(name="research").one().id == cluster.workspaces["research"]
    )
    assert [
        p.name
        for p in Project.query(session)
        .filter(workspace_id=cluster.workspaces["research"])
        .order_by("name")
    ] == ["nlp", "vision"]
    assert [u.username for u in User.query(session).filter(admin=True)] == ["admin"]
    assert Model.query(session).count() == 0


def test_query_results_into_dataframes(session: detorm.Session, cluster: Cluster) -> None:
    query = Experiment.query(session).filter(project_id=cluster.projects["vision"]).order_by("id")
    frame = query.to_pandas()
    assert list(frame["name"]) == ["resnet-base", "resnet-wide", "vit-small", "vit-large"]
    assert list(frame["state"])[:2] == ["COMPLETED", "COMPLETED"]
    assert frame["tags"][0] == ["cv", "prod"]
    polars_frame = query.to_polars()
    assert polars_frame.height == 4 and "start_time" in polars_frame.columns
