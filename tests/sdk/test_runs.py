"""Trial actions through the runs API: ``trial.kill()`` and a trial query's bulk actions, in
both APIs, against detorm.local (see tests/sdk/conftest.py for the seeded cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from detorm import TrialState
from detorm._ops import _runs
from detorm._ops._effects import send
from detorm._plan._call import Call
from detorm.errors import InvalidValue, NotFound, ServerError
from detorm.local import Seeder
from detorm.local._tables import ProjectRow
from tests.sdk.apis import Api
from tests.sdk.conftest import Cluster


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Call]]:
    """The calls the run actions send (their reads go through other modules)."""
    calls: list[Call] = []
    real = _runs.send

    def recording(call: Call, **options: Any) -> Any:
        calls.append(call)
        return real(call, **options)

    monkeypatch.setattr(_runs, "send", recording)
    yield calls


def flat_runs(api: Api, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The runs as the runs search reports them (archived and project are not Trial fields)."""
    text = '{"filterGroup":{"kind":"group","conjunction":"or","children":[%s]},"showArchived":true}'
    leaves = ",".join(
        '{"kind":"field","columnName":"id","location":"LOCATION_TYPE_RUN","type":'
        f'"COLUMN_TYPE_NUMBER","operator":"=","value":{i}}}'
        for i in ids
    )
    call = Call("POST", "/api/v1/runs", body={"filter": text % leaves, "limit": 100})
    response = api(api.session.transport.run(send(call)))
    return {run["id"]: run for run in response.json()["runs"]}


def action_calls(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.path.startswith("/api/v1/runs/")]


def test_kill_sends_the_query_filter_and_the_loaded_trials_follow(
    writer_api: Api, fresh_cluster: Cluster, sent: list[Call]
) -> None:
    api = writer_api
    experiment = fresh_cluster.experiments["vit-small"]  # ACTIVE: its trials run
    query = api.Trial.query(api.session).filter(experiment_id=experiment)
    trials = api.list(query)
    assert {t.state for t in trials} == {TrialState.RUNNING}
    result = api(query.kill())
    assert result.succeeded == sorted(fresh_cluster.trials["vit-small"])
    assert result.failed == {}
    (call,) = action_calls(sent)
    assert call.path == "/api/v1/runs/kill"
    assert call.body is not None and "runIds" not in call.body
    assert call.body["projectId"] == fresh_cluster.projects["vision"]
    assert '"experimentId"' in call.body["filter"]
    # the objects this session holds were read again
    assert {t.state for t in trials} == {TrialState.CANCELED}


def test_kill_of_finished_trials_counts_as_done(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    query = api.Trial.query(api.session).filter(
        experiment_id=fresh_cluster.experiments["bert-base"]
    )
    api(api.session.whoami())  # the async session logs in on its first request
    before = api.session.requests_sent
    result = api(query.kill())  # KillRuns: a terminal run is reported without an error
    assert result.succeeded == sorted(fresh_cluster.trials["bert-base"])
    # one row of the runs search tells the experiment's project, then one KillRuns
    assert api.session.requests_sent - before == 2


def test_one_request_per_project_holding_matches(
    writer_api: Api, fresh_cluster: Cluster, sent: list[Call]
) -> None:
    api = writer_api
    query = api.Trial.query(api.session).filter(state="COMPLETED")
    expected = sorted(t.id for t in api.list(query))
    result = api(query.archive())
    assert result.succeeded == expected and not result.failed
    calls = action_calls(sent)
    projects = sorted(c.body["projectId"] for c in calls if c.body is not None)
    assert projects == sorted(fresh_cluster.projects.values())
    assert all(c.body is not None and "filter" in c.body for c in calls)
    runs = flat_runs(api, expected)
    assert all(runs[i]["archived"] for i in expected)
    again = api(query.unarchive())
    assert again.succeeded == expected
    assert not any(run["archived"] for run in flat_runs(api, expected).values())


def test_archive_reports_the_master_refusals(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    running = fresh_cluster.trials["vit-small"]
    result = api(api.Trial.query(api.session).filter(id__in=running).archive())
    assert result.failed == {i: "Run is not in terminal state." for i in running}
    assert result.succeeded == []


def test_a_sliced_query_acts_on_the_ids_it_reads(
    writer_api: Api, fresh_cluster: Cluster, sent: list[Call]
) -> None:
    api = writer_api
    completed = api.Trial.query(api.session).filter(state="COMPLETED")
    before = api(completed.count())
    query = completed.order_by("-id").limit(2)
    chosen = [t.id for t in api.list(query)]
    result = api(query.delete())
    assert result.succeeded == sorted(chosen)
    (call,) = action_calls(sent)
    assert call.body is not None and call.body["runIds"] == sorted(chosen)
    assert "filter" not in call.body
    assert flat_runs(api, chosen) == {}
    assert api(completed.count()) == before - 2


def test_delete_forgets_deleted_trials_and_refuses_running_ones(
    writer_api: Api, fresh_cluster: Cluster
) -> None:
    api = writer_api
    finished = fresh_cluster.trials["gpt-mini"]
    running = fresh_cluster.trials["vit-small"]
    held = api(api.session.get(api.Trial, finished[0]))
    result = api(api.Trial.query(api.session).filter(id__in=finished + running).delete())
    assert result.succeeded == sorted(finished)
    assert result.failed == {i: "Run is not in a terminal state." for i in running}
    assert api.session.identity.get(api.Trial, held.id) is None
    with pytest.raises(NotFound):
        api(api.session.get(api.Trial, finished[0]))


def test_move_moves_the_experiment_which_follows(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    experiment = api(api.session.get(api.Experiment, fresh_cluster.experiments["gpt-mini"]))
    nlp, vision = fresh_cluster.projects["nlp"], fresh_cluster.projects["vision"]
    assert experiment.project_id == nlp
    first = fresh_cluster.trials["gpt-mini"][0]
    result = api(api.Trial.query(api.session).filter(id=first).move_to(vision))
    # MoveRuns moves the run's experiment, with all its runs: every one is reported
    assert result.succeeded == sorted(fresh_cluster.trials["gpt-mini"])
    assert experiment.project_id == vision
    assert {r["projectId"] for r in flat_runs(api, result.succeeded).values()} == {vision}


def test_move_can_skip_multi_trial_experiments(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    trials = fresh_cluster.trials["gpt-mini"]  # a random search: multi-trial
    query = api.Trial.query(api.session).filter(id__in=trials)
    result = api(query.move_to(fresh_cluster.projects["vision"], skip_multitrial=True))
    assert result.failed == {i: f"Skipping run '{i}' (part of multi-trial)." for i in trials}


def test_move_to_an_unknown_project_is_the_master_404(
    writer_api: Api, fresh_cluster: Cluster
) -> None:
    api = writer_api
    query = api.Trial.query(api.session).filter(id__in=fresh_cluster.trials["gpt-mini"])
    with pytest.raises(NotFound, match="999"):
        api(query.move_to(999))
    before = api.session.requests_sent
    with pytest.raises(InvalidValue, match="move_to"):
        api(query.move_to("vision"))
    with pytest.raises(InvalidValue, match="skip_multitrial"):
        api(query.move_to(2, skip_multitrial="yes"))
    assert api.session.requests_sent == before  # refused before anything is sent


def test_pause_and_resume_act_on_single_trial_experiments(
    writer_api: Api, fresh_cluster: Cluster
) -> None:
    api = writer_api
    with Seeder(fresh_cluster.master.database) as seed:
        single = seed.experiment(project=fresh_cluster.projects["vision"], state="ACTIVE")
        trial = seed.trial(single)
    experiment = api(api.session.get(api.Experiment, single))
    query = api.Trial.query(api.session).filter(experiment_id=single)
    assert api(query.pause()).succeeded == [trial]
    assert experiment.state.short == "PAUSED"
    assert api(query.resume()).succeeded == [trial]
    assert experiment.state.short in ("ACTIVE", "QUEUED", "RUNNING")
    multi = fresh_cluster.trials["vit-small"]
    refused = api(api.Trial.query(api.session).filter(id__in=multi).pause())
    assert refused.failed == {
        i: f"Cannot pause/unpause run '{i}' (part of multi-trial)." for i in multi
    }


def test_no_match_sends_no_action(writer_api: Api, sent: list[Call]) -> None:
    api = writer_api
    result = api(api.Trial.query(api.session).filter(id=10_000).kill())
    assert len(result) == 0 and action_calls(sent) == []


def test_trial_kill(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    trial = api(api.session.get(api.Trial, fresh_cluster.trials["vit-small"][0]))
    assert trial.state is TrialState.RUNNING
    api(trial.kill())
    assert trial.state is TrialState.CANCELED  # read again
    # a trial that ended, in an experiment that runs on: the master's plain error
    with pytest.raises(ServerError, match="trial not found"):
        api(trial.kill())
    # a trial of an experiment that ended: no experiment actor answers
    done = api(api.session.get(api.Trial, fresh_cluster.trials["bert-base"][0]))
    with pytest.raises(NotFound, match=f"experiment '{fresh_cluster.experiments['bert-base']}'"):
        api(done.kill())


def test_a_project_refusing_fails_its_trials_only(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    with Seeder(fresh_cluster.master.database) as seed:
        frozen = seed.project("frozen", workspace=fresh_cluster.workspaces["research"])
        old = seed.experiment(project=frozen, name="old", state="COMPLETED")
        stuck = seed.trial(old)
        seed.db.get(ProjectRow, frozen).archived = True  # type: ignore[union-attr]
        target = seed.project("target", workspace=fresh_cluster.workspaces["research"])
    moving = fresh_cluster.trials["bert-base"]
    query = api.Trial.query(api.session).filter(id__in=[*moving, stuck])
    result = api(query.move_to(target))
    # MoveRuns from an archived project is refused as a whole; the other project's runs move
    assert result.failed == {
        stuck: f"project ({frozen}) is archived and cannot have runs moved from it"
    }
    assert result.succeeded == sorted(moving)
    # every request refused: the master's error itself
    with pytest.raises(ServerError, match="is archived and cannot have runs moved from it"):
        api(api.Trial.query(api.session).filter(id=stuck).move_to(target))
