"""The official client (``determined==0.38.1``) against ``detorm serve --demo``: reads.

Every call goes through the client's public API exactly as a user writes it, against a real
``detorm serve`` child process, and its result is compared with the rows of the master's database
(or with the documented demo data). Writes are in ``test_official_client_writes.py``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from determined import errors as det_errors
from determined.common.api import errors
from determined.common.experimental.trial import LogLevel
from determined.experimental import Determined, client

from detorm._plan._collation import collation_key
from tests.contract.conftest import Demo, connect

# --- authentication -------------------------------------------------------------------------


def test_the_default_user_logs_in_without_a_password(demo: Demo, det_config: Path) -> None:
    det = Determined(demo.url)  # no user: the fallback "determined" with an empty password
    me = det.whoami()
    assert (me.user_id, me.username, me.admin, me.active) == (
        demo.value("SELECT id FROM users WHERE username = 'determined'"),
        "determined",
        False,
        True,
    )
    cache = json.loads((det_config / "auth.json").read_text())
    (entry,) = cache["masters"].values()
    assert set(entry["tokens"]) == {"determined"}
    token = entry["tokens"]["determined"]
    owner = demo.value(
        "SELECT u.username FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.token = ?",
        token,
    )
    assert owner == "determined"


def test_a_password_user_logs_in_and_the_token_is_reused(demo: Demo, det_config: Path) -> None:
    alice = connect(demo, "alice", "alice-pw")
    me = alice.whoami()
    assert (me.username, me.display_name, me.admin) == ("alice", "Alice Ng", False)
    assert alice.get_session_username() == "alice"
    sessions = demo.value(
        "SELECT count(*) FROM user_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE u.username = 'alice'"
    )
    again = Determined(demo.url, user="alice")  # no password: the cached token (GET /api/v1/me)
    assert again.whoami().username == "alice"
    assert sessions == demo.value(
        "SELECT count(*) FROM user_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE u.username = 'alice'"
    )


def test_a_wrong_password_is_refused(demo: Demo) -> None:
    with pytest.raises(errors.UnauthenticatedException):
        Determined(demo.url, user="bob", password="not-bobs")
    with pytest.raises(errors.UnauthenticatedException):
        Determined(demo.url, user="nobody", password="x")


def test_the_module_level_client_logs_in(demo: Demo) -> None:
    client.login(master=demo.url, user="dana", password="dana-pw")
    assert client.get_session_username() == "dana"
    me = client.whoami()
    assert (me.username, me.admin, me.display_name) == ("dana", True, "Dana Kim")
    assert client.get_user_by_id(me.user_id).username == "dana"
    assert [e.id for e in client.list_experiments(users=["dana"])] == demo.column(
        "SELECT e.id FROM experiments e JOIN users u ON u.id = e.owner_id"
        " WHERE u.username = 'dana' ORDER BY e.id"
    )
    client.logout()
    assert demo.value("SELECT last_auth_at IS NOT NULL FROM users WHERE username = 'dana'") == 1


# --- users ----------------------------------------------------------------------------------


def test_list_users(demo: Demo, det: Determined) -> None:
    users = det.list_users()
    rows = demo.rows("SELECT id, username, admin, display_name FROM users ORDER BY id")
    assert [(u.user_id, u.username, u.admin, u.display_name) for u in users] == [
        (i, name, bool(admin), display) for i, name, admin, display in rows
    ]
    assert [u.username for u in det.list_users(active=True)] == [row[1] for row in rows]
    assert det.list_users(active=False) == []


def test_get_user_by_name_and_id(demo: Demo, det: Determined) -> None:
    bob = det.get_user_by_name("bob")
    assert (bob.user_id, bob.display_name, bob.admin, bob.remote) == (
        demo.value("SELECT id FROM users WHERE username = 'bob'"),
        "Bob Okafor",
        False,
        False,
    )
    bob.reload()
    assert det.get_user_by_id(bob.user_id).username == "bob"
    with pytest.raises(errors.NotFoundException):
        det.get_user_by_name("nobody")


# --- experiments ----------------------------------------------------------------------------


def _experiment_rows(demo: Demo, where: str = "1", *params: Any) -> list[tuple[Any, ...]]:
    return demo.rows(
        "SELECT e.id, e.name, e.labels, e.state, u.username, e.project_id FROM experiments e"
        f" JOIN users u ON u.id = e.owner_id WHERE {where} ORDER BY e.id",
        *params,
    )


def test_list_experiments_returns_every_experiment_in_id_order(demo: Demo, det: Determined) -> None:
    experiments = det.list_experiments()  # pages of 100: read_paginated follows endIndex
    assert [e.id for e in experiments] == [row[0] for row in _experiment_rows(demo)]
    assert len(experiments) > 100
    first = experiments[0]
    (name, state, archived, progress) = demo.rows(
        "SELECT name, state, archived, progress FROM experiments WHERE id = ?", first.id
    )[0]
    assert (first.name, first.state, first.archived, first.progress) == (
        name,
        client.ExperimentState("STATE_" + state),
        bool(archived),
        progress,
    )


@pytest.mark.parametrize(
    ("sort_by", "key"),
    [
        # text in the database's en_US collation ("x-cifar100" before "x-cifar10-")
        (client.ExperimentSortBy.NAME, lambda row: collation_key(row[1])),
        (client.ExperimentSortBy.ID, lambda row: row[0]),
        (client.ExperimentSortBy.USER, lambda row: collation_key(row[6])),
        (client.ExperimentSortBy.PROJECT_ID, lambda row: row[5]),
    ],
    ids=["name", "id", "user", "project"],
)
@pytest.mark.parametrize("order_by", [client.OrderBy.ASC, client.OrderBy.DESC], ids=["asc", "desc"])
def test_list_experiments_sorted(
    demo: Demo, det: Determined, sort_by: Any, key: Any, order_by: client.OrderBy
) -> None:
    rows = demo.rows(
        "SELECT e.id, e.name, e.labels, e.state, u.username, e.project_id,"
        " CASE WHEN u.display_name != '' THEN u.display_name ELSE u.username END"
        " FROM experiments e JOIN users u ON u.id = e.owner_id"
    )
    descending = order_by == client.OrderBy.DESC
    # ORDER BY <col> <dir>, id <dir> (api_experiment.go: the tie-break follows the direction)
    expected = sorted(rows, key=lambda row: (key(row), row[0]), reverse=descending)
    got = det.list_experiments(sort_by=sort_by, order_by=order_by)
    assert [e.id for e in got] == [row[0] for row in expected]


def test_list_experiments_filters(demo: Demo, det: Determined) -> None:
    rows = _experiment_rows(demo)

    def ids(predicate: Any) -> list[int]:
        return [row[0] for row in rows if predicate(row)]

    # labels: every listed label must be present
    assert [e.id for e in det.list_experiments(labels=["baseline", "fp16"])] == ids(
        lambda r: {"baseline", "fp16"} <= set(json.loads(r[2]))
    )
    states = [client.ExperimentState.PAUSED, client.ExperimentState.ERROR]
    assert [e.id for e in det.list_experiments(states=states)] == ids(
        lambda r: r[3] in ("PAUSED", "ERROR")
    )
    # name: a case-insensitive substring
    assert [e.id for e in det.list_experiments(name="ResNet18")] == ids(
        lambda r: "resnet18" in r[1]
    )
    assert [e.id for e in det.list_experiments(users=["alice", "carol"])] == ids(
        lambda r: r[4] in ("alice", "carol")
    )
    assert [e.id for e in det.list_experiments(project_id=5)] == ids(lambda r: r[5] == 5)
    assert [e.id for e in det.list_experiments(experiment_ids=[3, 1, 4, 99999])] == [1, 3, 4]
    combined = det.list_experiments(
        labels=["sweep"], users=["bob"], states=[client.ExperimentState.COMPLETED], project_id=2
    )
    assert [e.id for e in combined] == ids(
        lambda r: (
            "sweep" in json.loads(r[2]) and r[4] == "bob" and r[3] == "COMPLETED" and r[5] == 2
        )
    )
    with pytest.raises(errors.NotFoundException, match="project '999' not found"):
        det.list_experiments(project_id=999)


def test_get_experiment_attributes_and_reload(demo: Demo, det: Determined) -> None:
    experiment_id = demo.value(
        "SELECT min(id) FROM experiments WHERE notes != '' AND description != ''"
        " AND json_array_length(labels) >= 2"
    )
    exp = det.get_experiment(experiment_id)
    name, description, notes, labels, state, archived, progress, project, config = demo.rows(
        "SELECT name, description, notes, labels, state, archived, progress, project_id, config"
        " FROM experiments WHERE id = ?",
        experiment_id,
    )[0]
    workspace = demo.value("SELECT workspace_id FROM projects WHERE id = ?", project)
    assert exp.id == experiment_id
    assert (exp.name, exp.description, exp.notes) == (name, description, notes)
    assert exp.labels == set(json.loads(labels))
    assert exp.state == client.ExperimentState("STATE_" + state)
    assert (exp.archived, exp.progress) == (bool(archived), progress)
    assert (exp.project_id, exp.workspace_id) == (project, workspace)
    assert exp.config == json.loads(config)
    assert exp.config is not None and exp.config["name"] == name
    exp.name = "stale"
    exp.reload()
    assert exp.name == name
    with pytest.raises(errors.NotFoundException, match="experiment '424242' not found"):
        det.get_experiment(424242)


def test_list_notes_are_omitted_in_lists_but_not_in_get(demo: Demo, det: Determined) -> None:
    experiment_id = demo.value("SELECT min(id) FROM experiments WHERE notes != ''")
    (listed,) = det.list_experiments(experiment_ids=[experiment_id])
    assert listed.notes == "omitted"  # getExperimentColumns
    assert det.get_experiment(experiment_id).notes == demo.value(
        "SELECT notes FROM experiments WHERE id = ?", experiment_id
    )


def test_experiment_labels_across_the_cluster(demo: Demo) -> None:
    # GetExperimentLabels counts a label once per DISTINCT label list (api_experiment.go)
    counts: dict[str, int] = {}
    for (text,) in demo.rows("SELECT DISTINCT labels FROM experiments"):
        for label in json.loads(text):
            counts[label] = counts.get(label, 0) + 1
    session = connect(demo)._session
    from determined.common.api import bindings

    labels = bindings.get_GetExperimentLabels(session).labels
    assert set(labels) == set(counts)
    assert [counts[label] for label in labels] == sorted(counts.values(), reverse=True)


# --- trials ---------------------------------------------------------------------------------


def _multi_trial_experiment(demo: Demo) -> int:
    return int(
        demo.value(
            "SELECT min(experiment_id) FROM (SELECT experiment_id, count(*) n FROM trials"
            " GROUP BY experiment_id) WHERE n >= 4"
        )
    )


def test_list_and_iter_trials(demo: Demo, det: Determined) -> None:
    experiment_id = _multi_trial_experiment(demo)
    exp = det.get_experiment(experiment_id)
    rows = demo.rows(
        "SELECT id, state, hparams, total_batches_processed, searcher_metric_value"
        " FROM trials WHERE experiment_id = ? ORDER BY id",
        experiment_id,
    )
    trials = exp.list_trials()
    assert [t.id for t in trials] == [row[0] for row in rows]
    assert [t.experiment_id for t in trials] == [experiment_id] * len(rows)
    assert [t.hparams for t in trials] == [json.loads(row[2]) for row in rows]
    assert [t.state for t in trials] == [client.TrialState("STATE_" + row[1]) for row in rows]
    descending = exp.list_trials(order_by=client.OrderBy.DESC)
    assert [t.id for t in descending] == [row[0] for row in reversed(rows)]
    # small pages: read_paginated follows endIndex to the end
    assert [t.id for t in exp.iter_trials(limit=1)] == [row[0] for row in rows]
    by_batches = exp.list_trials(sort_by=client.TrialSortBy.BATCHES_PROCESSED)
    assert [t.id for t in by_batches] == [
        row[0] for row in sorted(rows, key=lambda row: (row[3], row[0]))
    ]


def test_get_trial_hparams_summary_metrics_and_experiment(demo: Demo, det: Determined) -> None:
    trial_id = demo.value("SELECT min(id) FROM trials WHERE state = 'COMPLETED'")
    trial = det.get_trial(trial_id)
    experiment_id, hparams, summary = demo.rows(
        "SELECT experiment_id, hparams, summary_metrics FROM trials WHERE id = ?", trial_id
    )[0]
    assert (trial.id, trial.experiment_id) == (trial_id, experiment_id)
    assert trial.hparams == json.loads(hparams)
    assert trial.summary_metrics == json.loads(summary)
    assert trial.state == client.TrialState.COMPLETED
    assert trial.get_experiment().id == experiment_id
    trial.hparams = None
    trial.reload()
    assert trial.hparams == json.loads(hparams)
    with pytest.raises(errors.NotFoundException):
        det.get_trial(987654)


def _metric_rows(demo: Demo, trial_id: int, group: str) -> list[tuple[int, dict[str, Any]]]:
    key = "avg_metrics" if group == "training" else "validation_metrics"
    return [
        (batches, json.loads(text)[key])
        for batches, text in demo.rows(
            "SELECT total_batches, metrics FROM metrics WHERE trial_id = ? AND metric_group = ?"
            " ORDER BY trial_run_id, total_batches",
            trial_id,
            group,
        )
    ]


def _same_metrics(got: dict[str, Any], want: dict[str, Any]) -> bool:
    # The demo's diverged runs report NaN: NaN == NaN here.
    if set(got) != set(want):
        return False
    for name, value in want.items():
        if isinstance(value, str) and value == "NaN":
            value = math.nan
        other = got[name]
        if isinstance(value, float) and math.isnan(value):
            if not (isinstance(other, float) and math.isnan(other)):
                return False
        elif other != value:
            return False
    return True


def test_iter_metrics_of_each_group(demo: Demo, det: Determined) -> None:
    trial_id = demo.value("SELECT min(id) FROM trials WHERE state = 'COMPLETED'")
    trial = det.get_trial(trial_id)
    for group in ("training", "validation"):
        want = _metric_rows(demo, trial_id, group)
        got = list(trial.iter_metrics(group))
        assert [(m.trial_id, m.group, m.steps_completed) for m in got] == [
            (trial_id, group, batches) for batches, _ in want
        ]
        assert all(_same_metrics(m.metrics, w) for m, (_, w) in zip(got, want, strict=True))
        assert all(m.end_time is not None for m in got)
    training = list(trial.stream_training_metrics())
    assert [m.total_batches for m in training] == [
        b for b, _ in _metric_rows(demo, trial_id, "training")
    ]
    validation = list(trial.stream_validation_metrics())
    assert [m.steps_completed for m in validation] == [
        b for b, _ in _metric_rows(demo, trial_id, "validation")
    ]


def test_iter_trials_metrics_walks_trials_in_id_order(demo: Demo, det: Determined) -> None:
    trial_ids = demo.column(
        "SELECT id FROM trials WHERE experiment_id = ? ORDER BY id", _multi_trial_experiment(demo)
    )
    got = list(det.iter_trials_metrics(list(reversed(trial_ids)), "validation"))
    want = [
        (trial_id, batches)
        for trial_id in trial_ids
        for batches, _ in _metric_rows(demo, trial_id, "validation")
    ]
    assert [(m.trial_id, m.steps_completed) for m in got] == want
    training = list(det.stream_trials_training_metrics(trial_ids[:2]))
    assert [(m.trial_id, m.total_batches) for m in training] == [
        (trial_id, batches)
        for trial_id in trial_ids[:2]
        for batches, _ in _metric_rows(demo, trial_id, "training")
    ]


# --- logs -----------------------------------------------------------------------------------


def _log_rows(demo: Demo, trial_id: int, where: str = "1", *params: Any) -> list[tuple[Any, ...]]:
    return demo.rows(
        "SELECT log, level, rank_id, container_id, source, stdtype FROM trial_logs"
        f" WHERE trial_id = ? AND {where} ORDER BY id",
        trial_id,
        *params,
    )


def _finished_multi_rank_trial(demo: Demo) -> int:
    return int(
        demo.value(
            "SELECT min(trial_id) FROM trial_logs WHERE rank_id = 1 AND trial_id IN"
            " (SELECT id FROM trials WHERE state = 'COMPLETED')"
        )
    )


def test_iter_logs_whole_head_tail_and_follow(demo: Demo, det: Determined) -> None:
    trial_id = _finished_multi_rank_trial(demo)
    trial = det.get_trial(trial_id)
    rows = _log_rows(demo, trial_id)
    lines = list(trial.iter_logs())
    assert len(lines) == len(rows) > 6
    for line, (log, level, rank, container, _, _) in zip(lines, rows, strict=True):
        # the legacy formatted line: "[ts] <container8> [rank=N] || LEVEL: log"
        assert line.endswith(log)
        short_level = level.removeprefix("LOG_LEVEL_")
        if short_level != "UNSPECIFIED":
            assert f"|| {short_level}: " in line
        if rank is not None:
            assert f"[rank={rank}] " in line
        if container is not None:
            assert f"] {container[:8]} " in line
    assert list(trial.iter_logs(head=4)) == lines[:4]
    assert list(trial.iter_logs(tail=3)) == lines[-3:]  # limit + ORDER_BY_DESC, reversed
    # head=0 is sent as limit=0, which the master reads as "no limit"
    assert list(trial.iter_logs(head=0)) == lines
    # follow on a finished trial: everything, then the stream ends (the task ended long ago)
    assert list(trial.iter_logs(follow=True)) == lines
    assert list(trial.logs(head=2)) == lines[:2]


def test_iter_logs_filters(demo: Demo, det: Determined) -> None:
    trial_id = _finished_multi_rank_trial(demo)
    trial = det.get_trial(trial_id)
    lines = list(trial.iter_logs())

    def pick(predicate: Any) -> list[str]:
        return [
            line
            for line, row in zip(lines, _log_rows(demo, trial_id), strict=True)
            if predicate(row)
        ]

    # min_level sends every level at or above it; UNSPECIFIED lines are left out
    assert list(trial.iter_logs(min_level=LogLevel.WARNING)) == pick(
        lambda r: r[1] in ("LOG_LEVEL_WARNING", "LOG_LEVEL_ERROR", "LOG_LEVEL_CRITICAL")
    )
    assert list(trial.iter_logs(min_level=LogLevel.DEBUG)) == pick(
        lambda r: r[1] != "LOG_LEVEL_UNSPECIFIED" and r[1] != "LOG_LEVEL_TRACE"
    )
    assert list(trial.iter_logs(search_text="STEP 1")) == pick(lambda r: "step 1" in r[0].lower())
    assert list(trial.iter_logs(rank_ids=[1])) == pick(lambda r: r[2] == 1)
    assert list(trial.iter_logs(rank_ids=[0, 1], head=3)) == pick(lambda r: r[2] in (0, 1))[:3]
    assert list(trial.iter_logs(sources=["master"])) == pick(lambda r: r[4] == "master")
    assert list(trial.iter_logs(stdtypes=["stderr"])) == pick(lambda r: r[5] == "stderr")
    container = demo.value("SELECT min(container_id) FROM trial_logs WHERE trial_id = ?", trial_id)
    assert list(trial.iter_logs(container_ids=[container])) == pick(lambda r: r[3] == container)


def test_iter_logs_time_window(demo: Demo, det: Determined) -> None:
    trial_id = _finished_multi_rank_trial(demo)
    stamps = demo.column(
        "SELECT timestamp FROM trial_logs WHERE trial_id = ? ORDER BY id", trial_id
    )
    middle = datetime.fromisoformat(stamps[len(stamps) // 2]).replace(tzinfo=UTC)
    text = middle.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    trial = det.get_trial(trial_id)
    before = list(trial.iter_logs(timestamp_before=text))
    after = list(trial.iter_logs(timestamp_after=text))
    # timestamp <= before, timestamp > after: the two windows split the lines
    assert len(before) == len(stamps) // 2 + 1
    assert before + after == list(trial.iter_logs())


# --- checkpoints ----------------------------------------------------------------------------


def _checkpoint_rows(demo: Demo, where: str, *params: Any) -> list[tuple[Any, ...]]:
    return demo.rows(
        "SELECT c.uuid, c.trial_id, c.report_time, c.state, c.total_batches, c.resources"
        f" FROM checkpoints c JOIN trials t ON t.id = c.trial_id WHERE {where}",
        *params,
    )


def _searcher_metrics(demo: Demo, experiment_id: int) -> dict[str, float | None]:
    """Each checkpoint's searcher metric: the validation reported at its step (checkpoints_view)."""
    metric = demo.value("SELECT searcher_metric FROM experiments WHERE id = ?", experiment_id)
    values: dict[str, float | None] = {}
    for uuid, text in demo.rows(
        "SELECT c.uuid, m.metrics FROM checkpoints c JOIN trials t ON t.id = c.trial_id"
        " LEFT JOIN metrics m ON m.trial_id = c.trial_id AND m.metric_group = 'validation'"
        " AND m.total_batches = c.total_batches WHERE t.experiment_id = ?",
        experiment_id,
    ):
        value = None if text is None else json.loads(text)["validation_metrics"].get(metric)
        values[uuid] = None if value is None else float(value)
    return values


def _finite_multi_trial_experiment(demo: Demo) -> int:
    """A multi-trial experiment whose checkpoints all have a finite searcher metric (NaN makes
    the master's sort.Slice order undefined)."""
    for experiment_id in demo.column(
        "SELECT experiment_id FROM trials GROUP BY experiment_id HAVING count(*) >= 3"
        " ORDER BY experiment_id"
    ):
        values = _searcher_metrics(demo, experiment_id)
        finite = values and all(v is not None and math.isfinite(v) for v in values.values())
        if finite and len(set(values.values())) == len(values):
            return int(experiment_id)
    raise AssertionError("the demo has no such experiment")


def test_experiment_list_checkpoints(demo: Demo, det: Determined) -> None:
    experiment_id = _finite_multi_trial_experiment(demo)
    rows = _checkpoint_rows(demo, "t.experiment_id = ?", experiment_id)
    completed = [row for row in rows if row[3] == "COMPLETED"]
    metric = _searcher_metrics(demo, experiment_id)
    smaller = demo.value("SELECT smaller_is_better FROM experiments WHERE id = ?", experiment_id)
    exp = det.get_experiment(experiment_id)
    # default: COMPLETED only, by searcher metric, better first
    assert [c.uuid for c in exp.list_checkpoints()] == sorted(
        (row[0] for row in completed), key=lambda u: metric[u] or 0.0, reverse=not smaller
    )
    assert {c.state for c in exp.list_checkpoints()} == {client.CheckpointState.COMPLETED}
    by_uuid = exp.list_checkpoints(
        sort_by=client.CheckpointSortBy.UUID, order_by=client.OrderBy.DESC
    )
    assert [c.uuid for c in by_uuid] == sorted((row[0] for row in completed), reverse=True)
    by_batches = exp.list_checkpoints(
        sort_by=client.CheckpointSortBy.BATCH_NUMBER, order_by=client.OrderBy.ASC, max_results=2
    )
    assert [c.training.experiment_id for c in by_batches if c.training] == [experiment_id] * 2
    batches = [next(row[4] for row in rows if row[0] == c.uuid) for c in by_batches]
    assert batches == sorted(row[4] for row in completed)[:2]
    by_name = exp.list_checkpoints(sort_by="accuracy", order_by=client.OrderBy.DESC)
    accuracy = {
        uuid: json.loads(text)["validation_metrics"]["accuracy"]
        for uuid, text in demo.rows(
            "SELECT c.uuid, m.metrics FROM checkpoints c JOIN metrics m ON m.trial_id = c.trial_id"
            " AND m.metric_group = 'validation' AND m.total_batches = c.total_batches"
            " JOIN trials t ON t.id = c.trial_id WHERE t.experiment_id = ? AND c.state = 'COMPLETED'",
            experiment_id,
        )
    }
    assert [c.uuid for c in by_name] == sorted(accuracy, key=lambda u: accuracy[u], reverse=True)
    best = exp.top_checkpoint()
    assert best.uuid == exp.list_checkpoints()[0].uuid
    top_two = exp.top_n_checkpoints(2)
    assert len(top_two) == 2 and top_two[0].uuid == best.uuid


def test_trial_list_checkpoints_and_top_checkpoint(demo: Demo, det: Determined) -> None:
    experiment_id = _finite_multi_trial_experiment(demo)
    metric = _searcher_metrics(demo, experiment_id)
    trial_id = demo.value(
        "SELECT min(t.id) FROM trials t WHERE t.experiment_id = ?"
        " AND (SELECT count(*) FROM checkpoints c WHERE c.trial_id = t.id) >= 2",
        experiment_id,
    )
    rows = _checkpoint_rows(demo, "c.trial_id = ?", trial_id)
    trial = det.get_trial(trial_id)
    # default: every state, by searcher metric, ascending (only the experiment list flips it)
    listed = trial.list_checkpoints()
    assert [c.uuid for c in listed] == sorted(
        (row[0] for row in rows), key=lambda u: metric[u] or 0.0
    )
    assert [c.state for c in listed] == [
        client.CheckpointState("STATE_" + next(row[3] for row in rows if row[0] == c.uuid))
        for c in listed
    ]
    newest = trial.list_checkpoints(
        sort_by=client.CheckpointSortBy.END_TIME, order_by=client.OrderBy.DESC, max_results=1
    )
    assert [c.uuid for c in newest] == [max(rows, key=lambda row: row[2])[0]]
    smaller = bool(
        demo.value("SELECT smaller_is_better FROM experiments WHERE id = ?", experiment_id)
    )
    name = demo.value("SELECT searcher_metric FROM experiments WHERE id = ?", experiment_id)
    best = trial.top_checkpoint(sort_by=name, smaller_is_better=smaller)
    values = {row[0]: metric[row[0]] or 0.0 for row in rows}
    assert best.uuid == (min if smaller else max)(values, key=lambda u: values[u])
    selected = trial.select_checkpoint(latest=True)
    assert selected.uuid == max(rows, key=lambda row: row[4])[0]


def test_get_checkpoint_attributes(demo: Demo, det: Determined) -> None:
    uuid, trial_id, _, _, batches, resources = _checkpoint_rows(
        demo, "c.state = 'COMPLETED' ORDER BY c.uuid LIMIT 1"
    )[0]
    checkpoint = det.get_checkpoint(uuid)
    assert checkpoint.uuid == uuid
    assert checkpoint.state == client.CheckpointState.COMPLETED
    # int64 map values are JSON strings, and the client keeps them as sent
    assert checkpoint.resources == {k: str(v) for k, v in json.loads(resources).items()}
    assert checkpoint.training is not None
    assert checkpoint.training.trial_id == trial_id
    assert checkpoint.training.experiment_id == demo.value(
        "SELECT experiment_id FROM trials WHERE id = ?", trial_id
    )
    assert checkpoint.metadata is not None
    assert checkpoint.metadata["steps_completed"] == batches
    assert checkpoint.training.hparams == json.loads(
        demo.value("SELECT hparams FROM trials WHERE id = ?", trial_id)
    )
    with pytest.raises(errors.NotFoundException):
        det.get_checkpoint("00000000-0000-0000-0000-000000000000")


def test_checkpoint_download_through_the_master(
    demo: Demo, det: Determined, tmp_path: Path
) -> None:
    uuid, _, _, _, _, resources = _checkpoint_rows(
        demo, "c.state = 'COMPLETED' ORDER BY c.uuid LIMIT 1"
    )[0]
    checkpoint = det.get_checkpoint(uuid)
    target = tmp_path / "ckpt"
    path = checkpoint.download(str(target), mode=client.DownloadMode.MASTER)
    sizes = {
        str(file.relative_to(path)): file.stat().st_size
        for file in Path(path).rglob("*")
        if file.is_file()
    }
    assert sizes == json.loads(resources)
    metadata = json.loads((Path(path) / "metadata.json").read_text())
    assert metadata["steps_completed"] == checkpoint.metadata["steps_completed"]  # type: ignore[index]


# --- workspaces and projects ----------------------------------------------------------------


def test_list_and_get_workspaces(demo: Demo, det: Determined) -> None:
    rows = demo.rows("SELECT id, name FROM workspaces ORDER BY id")
    assert [(w.id, w.name) for w in det.list_workspaces()] == rows
    language = det.get_workspace("Language")
    assert language.id == demo.value("SELECT id FROM workspaces WHERE name = 'Language'")
    with pytest.raises(errors.NotFoundException):
        det.get_workspace("No Such Workspace")


def test_workspace_projects(demo: Demo, det: Determined) -> None:
    research = det.get_workspace("Research")
    rows = demo.rows(
        "SELECT id, name, description, archived, key FROM projects WHERE workspace_id = ?"
        " ORDER BY id",
        research.id,
    )
    projects = research.list_projects()
    assert [(p.id, p.name, p.description, p.archived, p.key) for p in projects] == [
        (i, name, description, bool(archived), key) for i, name, description, archived, key in rows
    ]
    optimizers = research.get_project("optimizers")
    counts = demo.rows(
        "SELECT count(*), sum(state = 'ACTIVE') FROM experiments WHERE project_id = ?",
        optimizers.id,
    )[0]
    assert (optimizers.n_experiments, optimizers.n_active_experiments) == counts
    assert optimizers.username == "carol"
    assert optimizers.workspace_id == research.id
    assert optimizers.notes == [
        {"name": "README", "contents": "# optimizers\n\nComparing optimizers and schedules\n"}
    ]
    assert [e.id for e in optimizers.list_experiments()] == demo.column(
        "SELECT id FROM experiments WHERE project_id = ? ORDER BY id", optimizers.id
    )
    with pytest.raises(errors.NotFoundException):
        research.get_project("no-such-project")


# --- models ---------------------------------------------------------------------------------


def test_list_models_sorted_and_filtered(demo: Demo, det: Determined) -> None:
    rows = demo.rows("SELECT id, name, description, workspace_id, archived FROM models")
    assert [m.name for m in det.list_models()] == sorted(row[1] for row in rows)  # NAME ASC
    newest_first = det.list_models(
        sort_by=client.ModelSortBy.CREATION_TIME, order_by=client.OrderBy.DESC
    )
    created = dict(demo.rows("SELECT name, creation_time FROM models"))
    assert [m.name for m in newest_first] == sorted(created, key=lambda n: created[n], reverse=True)
    assert [m.name for m in det.list_models(name="GPT")] == ["tiny-gpt"]
    language = demo.value("SELECT id FROM workspaces WHERE name = 'Language'")
    assert [m.name for m in det.list_models(workspace_names=["Language"])] == sorted(
        row[1] for row in rows if row[3] == language
    )
    assert [m.name for m in det.list_models(workspace_ids=[language])] == sorted(
        row[1] for row in rows if row[3] == language
    )
    (capsnet,) = det.list_models(model_id=6)
    assert (capsnet.name, capsnet.archived) == ("legacy-capsnet", True)


def test_get_model_by_name_and_id(demo: Demo, det: Determined) -> None:
    model_id, description, metadata, labels, workspace = demo.rows(
        "SELECT id, description, metadata, labels, workspace_id FROM models WHERE name = 'tiny-gpt'"
    )[0]
    by_name = det.get_model("tiny-gpt")
    by_id = det.get_model(model_id)
    by_id_call = det.get_model_by_id(model_id)
    for model in (by_name, by_id, by_id_call):
        assert (model.model_id, model.name, model.description) == (
            model_id,
            "tiny-gpt",
            description,
        )
        assert model.metadata == json.loads(metadata)
        assert model.labels == json.loads(labels)
        assert model.workspace_id == workspace
        assert model.archived is False
    with pytest.raises(errors.NotFoundException):
        det.get_model("no-such-model")


def test_model_versions(demo: Demo, det: Determined) -> None:
    model = det.get_model("cifar-classifier")
    rows = demo.rows(
        "SELECT version, checkpoint_uuid, name, comment, labels, metadata FROM model_versions"
        " WHERE model_id = ? ORDER BY version",
        model.model_id,
    )
    versions = model.list_versions()  # version DESC by default
    assert [v.model_version for v in versions] == [row[0] for row in reversed(rows)]
    assert [v.model_version for v in model.list_versions(client.OrderBy.ASC)] == [
        row[0] for row in rows
    ]
    latest = model.get_version()
    assert latest is not None and latest.model_version == rows[-1][0]
    first = model.get_version(1)
    assert first is not None
    assert (first.name, first.comment, first.metadata, first.model_name) == (
        rows[0][2],
        rows[0][3],
        json.loads(rows[0][5]),
        "cifar-classifier",
    )
    assert first.checkpoint is not None and first.checkpoint.uuid == rows[0][1]
    # metrics of inference tasks that used the checkpoint: none on this cluster
    assert list(first.iter_metrics("validation")) == []
    with pytest.raises(errors.NotFoundException):
        model.get_version(99)


def test_model_labels_most_used_first(demo: Demo, det: Determined) -> None:
    counts: dict[str, int] = {}
    for (text,) in demo.rows("SELECT labels FROM models"):
        for label in json.loads(text):
            counts[label] = counts.get(label, 0) + 1
    # ORDER BY COUNT(DISTINCT id) DESC, label ASC (api_model.go)
    assert det.get_model_labels() == sorted(counts, key=lambda label: (-counts[label], label))


# --- more of the public surface ---------------------------------------------------------------


def test_download_code_is_the_stored_model_definition(
    demo: Demo, det: Determined, tmp_path: Path
) -> None:
    import tarfile

    experiment_id = demo.value("SELECT min(id) FROM experiments WHERE model_definition IS NOT NULL")
    path = Path(det.get_experiment(experiment_id).download_code(str(tmp_path / "code")))
    assert path.name == f"exp-{experiment_id}_model_def.tar.gz"
    assert path.read_bytes() == demo.value(
        "SELECT model_definition FROM experiments WHERE id = ?", experiment_id
    )
    with tarfile.open(path) as archive:
        assert archive.getnames()  # a real gzipped tar


def test_download_auto_and_write_metadata_file(demo: Demo, det: Determined, tmp_path: Path) -> None:
    uuid = demo.value("SELECT min(uuid) FROM checkpoints WHERE state = 'COMPLETED'")
    checkpoint = det.get_checkpoint(uuid)
    # AUTO: the config's shared_fs path is not mounted here, so the client asks the master
    path = Path(checkpoint.download(str(tmp_path / "auto")))
    sizes = {f.name: f.stat().st_size for f in path.iterdir()}
    resources = json.loads(demo.value("SELECT resources FROM checkpoints WHERE uuid = ?", uuid))
    assert sizes == resources
    checkpoint.write_metadata_file(str(tmp_path / "meta.json"))
    assert json.loads((tmp_path / "meta.json").read_text()) == json.loads(
        demo.value("SELECT metadata FROM checkpoints WHERE uuid = ?", uuid)
    )
    deleted = det.get_checkpoint(
        demo.value("SELECT min(uuid) FROM checkpoints WHERE state = 'DELETED'")
    )
    with pytest.raises(det_errors.CheckpointStateException):
        deleted.download(str(tmp_path / "gone"))


def test_wait_returns_at_once_for_a_terminal_experiment(demo: Demo, det: Determined) -> None:
    experiment_id = demo.value("SELECT min(id) FROM experiments WHERE state = 'CANCELED'")
    assert det.get_experiment(experiment_id).wait(interval=0.01) == client.ExperimentState.CANCELED
    first = det.get_experiment(experiment_id).await_first_trial(interval=0.01)
    assert first.id == demo.value(
        "SELECT min(id) FROM trials WHERE experiment_id = ?", experiment_id
    )


def test_stream_metrics_helpers(demo: Demo, det: Determined) -> None:
    trial_ids = demo.column("SELECT id FROM trials WHERE state = 'COMPLETED' ORDER BY id LIMIT 2")
    validation = list(det.stream_trials_validation_metrics(trial_ids))
    assert [(m.trial_id, m.steps_completed) for m in validation] == [
        (trial_id, batches)
        for trial_id in trial_ids
        for batches, _ in _metric_rows(demo, trial_id, "validation")
    ]
    streamed = list(det.get_trial(trial_ids[0]).stream_metrics("training"))
    assert len(streamed) == len(_metric_rows(demo, trial_ids[0], "training"))
    checkpoint = det.get_checkpoint(
        demo.value("SELECT min(uuid) FROM checkpoints WHERE state = 'COMPLETED'")
    )
    assert list(checkpoint.get_metrics("validation")) == []  # no inference task used it


def test_reloads(demo: Demo, det: Determined) -> None:
    workspace = det.get_workspace("Research")
    workspace.name = "stale"
    workspace.reload()
    assert workspace.name == "Research"
    model = det.get_model("tiny-gpt")
    version = model.get_version(1)
    assert version is not None
    version.name = "stale"
    version.reload()
    assert version.name == demo.value(
        "SELECT name FROM model_versions WHERE model_id = ? AND version = 1", model.model_id
    )
    checkpoint = det.get_checkpoint(version.checkpoint.uuid)  # type: ignore[union-attr]
    checkpoint.metadata = None
    checkpoint.reload()
    assert checkpoint.metadata == json.loads(
        demo.value("SELECT metadata FROM checkpoints WHERE uuid = ?", checkpoint.uuid)
    )


def test_calls_detorm_local_does_not_serve_fail_cleanly(det: Determined) -> None:
    """RPCs without a handler answer 501 Unimplemented, which the client raises as an
    APIException (user groups, telemetry)."""
    from determined.common.api import bindings

    with pytest.raises(errors.APIException) as failure:
        bindings.post_CreateGroup(det._session, body=bindings.v1CreateGroupRequest(name="g"))
    assert failure.value.status_code == 501
    with pytest.raises(errors.APIException) as failure:
        bindings.get_GetTelemetry(det._session)
    assert failure.value.status_code == 501
