"""The planner's compiled requests, snapshotted (``snapshots/sdk/test_planner/``).

Each case is a query a user might write; the snapshot is exactly what ``explain()`` says will be
sent. Review snapshot changes like code: they change what reaches the master.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from detorm import (
    Agent,
    Checkpoint,
    Command,
    Experiment,
    ExperimentState,
    Model,
    ModelVersion,
    Notebook,
    Project,
    Q,
    Query,
    ResourcePool,
    Shell,
    Task,
    Template,
    Tensorboard,
    Trial,
    User,
    Workspace,
    hp,
    metrics,
)
from detorm.errors import QueryError

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

CASES: dict[str, Callable[[], Query[Any]]] = {
    "all_experiments": lambda: Experiment.query(None),
    "state_exact": lambda: Experiment.query(None).filter(state="ACTIVE"),
    "state_enum": lambda: Experiment.query(None).filter(state=ExperimentState.PAUSED),
    "state_in_ordered": lambda: (
        Experiment.query(None).filter(state__in=["ACTIVE", "PAUSED"]).order_by("start_time")
    ),
    "reported_state_queued": lambda: Experiment.query(None).filter(state="QUEUED"),
    "running_state": lambda: Experiment.query(None).filter(state="RUNNING"),
    "tag_and_state_first_50": lambda: (
        Experiment.query(None)
        .filter(state__in=["ACTIVE", "PAUSED"], tags__contains="prod")
        .order_by("start_time")[:50]
    ),
    "two_tags": lambda: (
        Experiment.query(None).filter(tags__contains="a").filter(tags__contains="b")
    ),
    "name_contains": lambda: Experiment.query(None).filter(name__contains="bert"),
    "name_exact": lambda: Experiment.query(None).filter(name="bert-base"),
    "description_contains": lambda: Experiment.query(None).filter(description__contains="sweep"),
    "archived_true": lambda: Experiment.query(None).filter(archived=True),
    "archived_false_cluster": lambda: Experiment.query(None).filter(archived=False),
    "archived_false_in_project": lambda: Experiment.query(None).filter(
        project_id=3, archived=False
    ),
    "by_users": lambda: Experiment.query(None).filter(username__in=["alice", "bob"]),
    "by_user_ids": lambda: Experiment.query(None).filter(user_id=7),
    "project_scope": lambda: Experiment.query(None).filter(project_id=12).order_by("-end_time"),
    "id_range": lambda: Experiment.query(None).filter(id__gte=10, id__lt=20),
    "id_in_and_not": lambda: Experiment.query(None).filter(id__in=[1, 2, 3]).exclude(id=2),
    "id_ne": lambda: Experiment.query(None).filter(id__ne=5),
    "order_desc_searcher": lambda: Experiment.query(None).order_by("-best_trial_searcher_metric"),
    "slice_offset": lambda: Experiment.query(None).order_by("id")[100:150],
    "negative_slice": lambda: Experiment.query(None)[-10:],
    "page_size": lambda: Experiment.query(None).page_size(250),
    "or_states": lambda: Experiment.query(None).filter(
        Q(state="ACTIVE") | Q(state="PAUSED", tags__contains="x")
    ),
    "hp_gt": lambda: Experiment.query(None).filter(hp__lr__gt=0.01),
    "hp_expression_nested": lambda: Experiment.query(None).filter(hp.optimizer.lr <= 0.1),
    "hp_categorical_contains": lambda: Experiment.query(None).filter(hp.arch.contains("resnet")),
    "metric_min_lt": lambda: Experiment.query(None).filter(validation__loss__min__lt=0.3),
    "metric_expression": lambda: Experiment.query(None).filter(metrics.training.loss.last < 1.0),
    "custom_metric_group": lambda: Experiment.query(None).filter(
        metrics["inference"]["latency"].mean <= 12.5
    ),
    "hp_or_metric": lambda: Experiment.query(None).filter(
        (hp.lr > 0.01) | (metrics.validation.loss.min < 0.3)
    ),
    "not_state": lambda: Experiment.query(None).filter(~Q(state="ERROR")),
    "not_or": lambda: Experiment.query(None).filter(~(Q(progress__gt=0.5) | Q(num_trials__lt=2))),
    "isnull_end_time": lambda: Experiment.query(None).filter(end_time__isnull=True),
    "time_range": lambda: Experiment.query(None).filter(
        start_time__gte=T0, start_time__lt="2024-06-01T00:00:00Z"
    ),
    "multi_sort": lambda: Experiment.query(None).order_by("-start_time", "name"),
    "hp_sort_experiments": lambda: Experiment.query(None).order_by(hp.lr.desc()),
    "or_with_client_side": lambda: Experiment.query(None).filter(
        Q(tags={"a"}) | Q(name__contains="x")
    ),
    "prefetch_trials": lambda: Experiment.query(None).filter(project_id=4).prefetch("trials"),
    "trials_of_experiment": lambda: Trial.query(None).filter(experiment_id=9),
    "trials_of_experiment_states_sorted": lambda: (
        Trial.query(None)
        .filter(experiment_id=9, state__in=["COMPLETED", "ERROR"])
        .order_by("-total_batches_processed")
    ),
    "trials_of_experiment_hp_client": lambda: Trial.query(None).filter(
        experiment_id=9, hp__lr__gt=0.1
    ),
    "trials_cluster_hp": lambda: Trial.query(None).filter(hp.lr > 0.1).order_by("hp.lr"),
    "trials_cluster_metric": lambda: Trial.query(None).filter(
        validation__accuracy__max__gte=0.9, state="COMPLETED"
    ),
    "trials_metadata": lambda: Trial.query(None).filter(metadata__team="nlp"),
    "checkpoints_of_experiment": lambda: (
        Checkpoint.query(None)
        .filter(experiment_id=3, state="COMPLETED")
        .order_by("-searcher_metric")
    ),
    "checkpoints_of_trial_by_metric": lambda: (
        Checkpoint.query(None).filter(trial_id=8).order_by(metrics.validation.accuracy.last.desc())
    ),
    "workspaces_by_name": lambda: Workspace.query(None).filter(name="research").order_by("name"),
    "workspaces_archived_pinned": lambda: Workspace.query(None).filter(archived=False, pinned=True),
    "projects_of_workspace": lambda: (
        Project.query(None)
        .filter(workspace_id=2, archived=False)
        .order_by("-last_experiment_started_at")
    ),
    "projects_by_key_client": lambda: Project.query(None).filter(key="VIS1"),
    "models_labels_and_name": lambda: (
        Model.query(None)
        .filter(labels__contains="prod", name__contains="bert")
        .order_by("-last_updated_time")
    ),
    "models_two_labels": lambda: (
        Model.query(None).filter(labels__contains="a").filter(labels__contains="b")
    ),
    "model_versions": lambda: ModelVersion.query(None).filter(model_id=4).order_by("-version"),
    "users_active_admins": lambda: (
        User.query(None).filter(active=True, admin=True).order_by("username")
    ),
    "users_by_name": lambda: User.query(None).filter(username__contains="ali"),
    "commands_of_user_in_workspace": lambda: (
        Command.query(None).filter(username="alice", workspace_id=2).order_by("-start_time")
    ),
    "commands_running_client": lambda: Command.query(None).filter(state="RUNNING"),
    "commands_user_ids_and_names_one_pushed": lambda: (
        Command.query(None).filter(user_id__in=[1, 2]).filter(username="bob")
    ),
    "shells_by_description_client": lambda: (
        Shell.query(None).filter(description__contains="debug").order_by("description")
    ),
    "notebooks_order_client": lambda: Notebook.query(None).order_by("username"),
    "tensorboards_of_workspace": lambda: Tensorboard.query(None).filter(workspace_id=3)[:10],
    "templates_by_name": lambda: (
        Template.query(None).filter(name__contains="gpu_%").order_by("-name")
    ),
    "templates_of_workspaces": lambda: Template.query(None).filter(workspace_id__in=[1, 2]),
    "tasks_held_now_by_type": lambda: (
        Task.query(None).filter(type="NOTEBOOK").order_by("-start_time")
    ),
    "tasks_by_id_read_one_each": lambda: Task.query(None).filter(
        id__in=["1.abc", "cmd-1", "1.abc", "a/b", ""], end_time__isnull=True
    ),
    "resource_pools_client": lambda: ResourcePool.query(None).filter(slots_used__gt=0)[:5],
    "agents_by_registration": lambda: Agent.query(None).order_by("-registered_time"),
    "agents_two_keys_client": lambda: Agent.query(None).order_by("enabled", "id"),
}


def _readable(explained: dict[str, Any]) -> dict[str, Any]:
    for call in explained["calls"]:
        body = call.get("body")
        if isinstance(body, dict) and isinstance(body.get("filter"), str):
            call["filter_decoded"] = json.loads(body["filter"])
    return explained


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_requests(name: str, snapshot: SnapshotAssertion) -> None:
    explained = CASES[name]().explain()
    assert _readable(explained.to_dict()) == snapshot


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Experiment.query(None).filter(nme="x"), "has no field 'nme'"),
        (lambda: Experiment.query(None).filter(state="ACTIVATED"), "is not a ExperimentState"),
        (
            lambda: Experiment.query(None).filter(id__contains="3"),
            "does not support the lookup 'contains'",
        ),
        (
            lambda: Experiment.query(None).filter(start_time__gt="yesterday"),
            "not an RFC 3339 timestamp",
        ),
        (lambda: Experiment.query(None).filter(id__in=[]), "at least one value"),
        (lambda: Experiment.query(None).filter(validation__loss__lt=1), "which summary"),
        (
            lambda: Experiment.query(None).filter(name__startswith="x"),
            "unknown lookup 'startswith'",
        ),
        (lambda: Experiment.query(None).order_by("tags"), "cannot be ordered by 'tags'"),
        (
            lambda: Experiment.query(None).prefetch("checkpoints"),
            "no request that lists the checkpoints",
        ),
        (lambda: Workspace.query(None).filter(hp__lr=1), "cannot be filtered on hp"),
        (
            lambda: Checkpoint.query(None).filter(state="COMPLETED").explain(),
            "per experiment or per trial",
        ),
        (lambda: ModelVersion.query(None).explain(), "per model"),
        (lambda: Experiment.query(None).limit(-1), "limit must be an int in 0"),
        (lambda: Experiment.query(None)[::2], "no step"),
    ],
)
def test_bad_queries_fail_before_sending(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        build()


def test_query_error_names_the_valid_fields() -> None:
    with pytest.raises(QueryError) as info:
        Experiment.query(None).filter(nme="x")
    assert "start_time" in str(info.value) and "tags" in str(info.value)


def test_queries_are_immutable() -> None:
    base = Experiment.query(None)
    narrowed = base.filter(state="ACTIVE")
    assert base.explain().calls[0].params != narrowed.explain().calls[0].params
    assert narrowed.order_by("name").explain() != narrowed.explain()


@pytest.mark.parametrize(
    ("states", "sent"),
    [
        (["ACTIVE"], ["STATE_ACTIVE", "STATE_RUNNING"]),  # the stored states ACTIVE stands for
        (["PAUSED", "COMPLETED"], ["STATE_PAUSED", "STATE_COMPLETED"]),
        (["QUEUED"], None),  # reported, never stored: the ids are read first
    ],
)
def test_bulk_actions_filter_on_the_stored_states(
    states: list[str], sent: list[str] | None
) -> None:
    from detorm._plan._edits import plan_bulk

    query = Experiment.query(None).filter(state__in=states)
    plan = plan_bulk(query._where, "pause", ordered_or_sliced=False)
    assert (plan.filters or {}).get("states") == sent
    assert (plan.filters is None) == (sent is None)
