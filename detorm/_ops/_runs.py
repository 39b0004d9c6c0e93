"""Trial actions through the runs API: ``trial.kill()`` and the bulk actions of a trial query.

The master's run actions (``KillRuns``, ``PauseRuns``, ``ResumeRuns``, ``ArchiveRuns``,
``UnarchiveRuns``, ``DeleteRuns``, ``MoveRuns`` in ``api_runs.go``) take either run ids or a
filter tree, but each request acts only on the runs of one project (``r.project_id = ?``; they
have no global project as the experiment actions have). So a bulk action first reads which
projects hold the matches (one runs search, which also gives their experiments), then sends one
request per project: with the query's own filter when the tree expresses it exactly, else with
the ids read. Afterwards the session's objects reflect what the master did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from .. import _wire as w
from .._plan._call import Call, path
from .._plan._edits import BulkResult, RunAction, RunPlan, plan_runs
from .._plan._planner import Source, runs_filter_source, runs_source, scope_leaf
from .._resources._base import Resource
from .._resources._inputs import check_id, require
from .._resources._models import Trial
from ..errors import APIError
from ._actions import reflect_experiments
from ._effects import Op, gather_outcomes, send
from ._executor import Pager, rows_of

if TYPE_CHECKING:
    from .._plan._query import QueryBase as Query
    from ._protocols import OpsSession as Session

__all__ = ["kill_trial", "run_action", "run_calls"]


def kill_trial(session: Session, trial: Resource) -> Op[None]:
    """``KillTrial``; the trial is read again (the master moves it to STOPPING_KILLED, then
    CANCELED). A trial that already ended is refused by the master (see ``Trial.kill``)."""
    yield from send(Call("POST", path("/api/v1/trials/{id}/kill", id=trial.pk)))
    yield from session._refresh(trial)


def run_action(
    query: Query[Any], action: RunAction, destination: int | None = None, *,
    skip_multitrial: bool = False,
) -> Op[BulkResult[int]]:  # fmt: skip
    """Run ``action`` on every trial the query matches; per-id results."""
    # A query knows its session as a QuerySession; every session is an OpsSession (see
    # _actions.bulk_action).
    session = cast("Session", query.session)
    scope = scope_leaf(query._where, "experiment_id")
    plan, runs, projects = yield from _planned(query, action, destination, skip_multitrial)
    if not projects:
        return BulkResult(action, {})
    answers = yield from gather_outcomes([send(plan.call(p, ids)) for p, ids in projects])
    failures = [answer for answer in answers if isinstance(answer, Exception)]
    unknown = [failure for failure in failures if not isinstance(failure, APIError)]
    if unknown:
        raise unknown[0]  # no answer: what the master did is unknown (running it again is safe)
    if len(failures) == len(answers):
        raise failures[0]  # refused as a whole (an unknown destination...): nothing was done
    outcome = BulkResult(action, _outcomes(answers, [ids for _, ids in projects]))
    if scope is not None:
        experiments = dict.fromkeys(outcome.outcomes, int(scope.value))
    else:
        experiments = {r.id: r.experiment.id for r in runs if r.experiment is not None}
    yield from _reflect(session, action, outcome, experiments, destination)
    return outcome


def run_calls(
    query: Query[Any], action: RunAction, destination: int | None = None, *,
    skip_multitrial: bool = False,
) -> Op[list[Call]]:  # fmt: skip
    """The requests of a bulk run action, one per project holding matches; sends only the
    runs search that finds those projects (``detorm archive --dry-run`` prints them)."""
    plan, _, projects = yield from _planned(query, action, destination, skip_multitrial)
    return [plan.call(project, ids) for project, ids in projects]


def _planned(
    query: Query[Any], action: RunAction, destination: int | None, skip_multitrial: bool
) -> Op[tuple[RunPlan, list[w.FlatRun], list[tuple[int, list[int]]]]]:
    """The plan, the matching runs and their ids by project (sorted)."""
    if action == "move":
        check_id("move_to(project)", destination, what="a Project or its id (an int)")
        require("skip_multitrial", skip_multitrial, bool, "True or False")
    sliced = bool(query._order) or query._limit is not None or query._offset != 0
    plan = plan_runs(
        query._where, action, ordered_or_sliced=sliced, destination=destination,
        skip_multitrial=skip_multitrial,
    )  # fmt: skip
    scope = scope_leaf(query._where, "experiment_id")
    runs = yield from _matching_runs(query, plan, one_experiment=scope is not None)
    by_project: dict[int, list[int]] = defaultdict(list)
    for run in runs:
        by_project[run.project_id].append(run.id)
    return plan, runs, sorted(by_project.items())


def _matching_runs(
    query: Query[Any], plan: RunPlan, *, one_experiment: bool
) -> Op[list[w.FlatRun]]:
    """The runs the action is about, with their project and experiment (one runs search).

    With a filter, only the projects matter: the matches of one experiment are all in its
    project, so one row of them tells it (and that something matches)."""
    source: Source
    if plan.filter is not None:
        source = runs_filter_source(plan.filter)
    else:
        ids = [trial.pk for trial in (yield from rows_of(query))]
        if not ids:
            return []
        source = runs_source("id", ids)
    limit = 1 if plan.filter is not None and one_experiment else None
    pager = Pager(source, offset=0, limit=limit, page_size=2000)
    runs: list[w.FlatRun] = []
    while (page := (yield from pager.next())) is not None:
        runs.extend(page)
    return runs


def _outcomes(answers: list[Any], ids: list[list[int]]) -> dict[int, str]:
    """Per-id errors of every answer; an id reported twice keeps its error, if any. A request
    the master refused as a whole (one project's) fails each run read for it with its message.

    Pause and resume act on the runs' experiments: when the master cannot map an experiment
    back to a run it reports the run id 0 (or -1), which is kept as the master sent it.
    """
    outcomes: dict[int, str] = {}
    for answer, run_ids in zip(answers, ids, strict=True):
        if isinstance(answer, APIError):
            outcomes.update(dict.fromkeys(run_ids, answer.message))
            continue
        for result in w.BulkActionResponse.model_validate_json(answer.content).results:
            if not outcomes.get(result.id):
                outcomes[result.id] = result.error
    return outcomes


def _reflect(
    session: Session, action: RunAction, outcome: BulkResult[int], experiments: dict[int, int],
    destination: int | None,
) -> Op[None]:  # fmt: skip
    """Bring the trials (and experiments) this session holds in line with an applied action."""
    done = outcome.succeeded
    loaded = [t for t in (session.identity.get(Trial, i) for i in done) if t is not None]
    touched = sorted({experiments[i] for i in done if i in experiments})
    if action == "delete":
        for trial in loaded:
            session._forget(trial)  # DeleteRuns deletes at once: there is nothing left to read
    elif action == "move":
        # MoveRuns moves the runs' experiments (with all their runs).
        yield from reflect_experiments(session, "move", touched, destination)
    elif action in ("pause", "resume"):
        # PauseRuns and ResumeRuns pause or activate the runs' experiments.
        yield from reflect_experiments(session, "pause", touched, None)
        yield from _read_again(session, loaded)
    elif action == "kill":
        yield from _read_again(session, loaded)
    # archive/unarchive: a run's archived flag is not a Trial field (GetTrial has none).


def _read_again(session: Session, trials: Sequence[Resource]) -> Op[None]:
    if trials:
        yield from rows_of(session._query(Trial)._filter((), {"id__in": [t.pk for t in trials]}))
