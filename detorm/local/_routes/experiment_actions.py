"""Experiment actions (``experiment/bulk_action.go``, ``api_experiment.go``).

Bulk forms (``/api/v1/projects/{project_id}/experiments/{action}``) answer 200 with one result per
experiment, ``{"error": "rpc error: code = ... desc = ...", "id": N}`` or ``""`` on success; the
path project is the source project (-1, as the single forms use, means every project). With
``filters`` the ids are ignored and not-found results are never reported. Result order follows the
master: activate/pause/cancel/kill list unknown ids, then experiments without a live actor, then the
actions on live ones (a Go map walk on the master, id order here); archive/unarchive/delete/move
list refusals, then unknown ids, then the accepted ids.

The single forms return the first result's error as a real HTTP error and ``{}`` on success.

Test-only faults (``_faults.py``, ``--enable-test-faults``): a fault row with ``ids`` makes the
actions report those ids as failed with its error, ``rpc error: code = Internal desc = <message>``
by default, and leave them untouched. The injected error takes the place of the id's own result,
whatever it would have been (success, refusal, or not found), in the same position. The single
forms answer it as their HTTP error, after the checks they make before the bulk code runs
(activate, delete and move first look the experiment up: an unknown id is still a 404 there).

State changes. The master hands pause/activate/cancel/kill to the experiment's actor, which moves
through STOPPING_* states while its trials' allocations stop, and deletes experiments in the
background (DELETING, then gone). detorm.local has no scheduler, so the end state is reached at
once: pause ACTIVE -> PAUSED (and its live trials), activate PAUSED -> ACTIVE, cancel or kill of a
live experiment -> CANCELED with its unfinished trials, delete -> the experiment, its trials,
metrics, logs and checkpoints are gone when the response is sent. A created (simulated)
experiment's trials train in the simulated cluster (``_simulation.py``): a pause or an activation
stops or starts their allocations there, and a cancel or kill leaves it in STOPPING_* until the
cluster's next step has ended its trials' allocations (at once: every request takes that step).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

from sqlmodel import Session

from detorm._wire import (
    BulkActionRequest,
    BulkExperimentFilters,
    ExperimentState,
    MoveExperimentRequest,
    MoveExperimentsRequest,
)

from .._app import Ctx, RawJSON, rpc
from .._db import utcnow
from .._errors import ApiError, Code, failed_precondition, internal, not_found, permission_denied
from .._faults import faulty_ids
from .._filter_sql import db_time, execute, fetch
from .._sql_lists import in_list
from .experiments import (
    NON_TERMINAL_STATES,
    TERMINAL_STATES,
    find_project,
    in_registry,
    labels_condition,
    like_pattern,
    project_archived,
    states_condition,
)
from .projects import delete_experiments
from .trials import finish_trials

__all__ = [
    "GLOBAL_PROJECT",
    "Outcome",
    "activate_experiments",
    "bulk_results",
    "pause_experiments",
]

GLOBAL_PROJECT: Final = -1

_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "ACTIVE": frozenset({"PAUSED", "STOPPING_KILLED", "STOPPING_CANCELED", "STOPPING_COMPLETED", "STOPPING_ERROR", "ERROR"}),
    "PAUSED": frozenset({"ACTIVE", "STOPPING_KILLED", "STOPPING_CANCELED", "STOPPING_COMPLETED", "STOPPING_ERROR", "ERROR"}),
    "STOPPING_CANCELED": frozenset({"CANCELED", "STOPPING_KILLED", "STOPPING_ERROR", "ERROR"}),
    "STOPPING_KILLED": frozenset({"CANCELED", "STOPPING_ERROR", "ERROR"}),
    "STOPPING_COMPLETED": frozenset({"COMPLETED", "STOPPING_ERROR", "ERROR"}),
    "STOPPING_ERROR": frozenset({"ACTIVE", "ERROR"}),
    "CANCELED": frozenset({"DELETING"}),
    "COMPLETED": frozenset({"DELETING"}),
    "ERROR": frozenset({"DELETING"}),
    "DELETING": frozenset({"DELETED", "DELETE_FAILED"}),
    "DELETE_FAILED": frozenset({"DELETING"}),
}  # fmt: skip
"""``model.ExperimentTransitions``."""


class Outcome(NamedTuple):
    """One experiment's result. An id the action did not find has ``missing`` set and its
    ``error`` is made when read: a request may name a million unknown ids."""

    id: int
    failure: ApiError | None = None
    missing: bool = False

    @property
    def error(self) -> ApiError | None:
        return _not_found(self.id) if self.missing else self.failure


Faults = Mapping[int, ApiError]
"""Injected per-id failures (test faults): id -> the error to report instead of its result."""

NO_FAULTS: Final[Faults] = {}


def bulk_results(outcomes: Sequence[Outcome]) -> RawJSON:
    """``ToAPIResults``: a status error prints as ``rpc error: code = X desc = Y``. Written as
    JSON text, one result at a time (a million results as dicts cost seconds)."""
    results = ",".join(
        f'{{"error":{json.dumps(_error_text(o.error))},"id":{o.id}}}' for o in outcomes
    )
    return RawJSON(f'{{"results":[{results}]}}'.encode())


def _error_text(error: ApiError | None) -> str:
    return "" if error is None else f"rpc error: code = {error.code.reason} desc = {error.message}"


def _not_found(experiment_id: int) -> ApiError:
    return not_found(f"experiment '{experiment_id}' not found")


# --- selecting experiments --------------------------------------------------------------------
def _filter_conditions(filters: BulkExperimentFilters) -> tuple[list[str], list[Any]]:
    """``queryBulkExperiments``."""
    where: list[str] = []
    params: list[Any] = []
    if filters.excluded_experiment_ids:
        excluded, excluded_params = in_list(filters.excluded_experiment_ids)
        where.append(f"e.id NOT IN {excluded}")
        params.extend(excluded_params)
    if filters.description:
        where.append("pg_like(e.config ->> '$.description', ?, 1)")
        params.append(like_pattern(filters.description))
    if filters.name:
        where.append("pg_like(e.config ->> '$.name', ?, 1)")
        params.append(like_pattern(filters.name))
    labels_sql, label_params = labels_condition(filters.labels)
    if labels_sql is not None:
        where.append(labels_sql)
        params.extend(label_params)
    if filters.archived is not None:
        where.append("e.archived = ?")
        params.append(int(filters.archived))
    if filters.states:
        state_sql, state_params = states_condition(filters.states)
        where.append(state_sql)
        params.extend(state_params)
    if filters.user_ids:
        owners, owner_params = in_list(filters.user_ids)
        where.append(f"e.owner_id IN {owners}")
        params.extend(owner_params)
    if filters.project_id:
        where.append("e.project_id = ?")
        params.append(filters.project_id)
    return where, params


def _selection(
    project_id: int, ids: Sequence[int], filters: BulkExperimentFilters | None, filter_extra: str
) -> tuple[list[str], list[Any]]:
    """The WHERE of an action's candidate query: the source project, then the ids or the filters
    (with the action's own extra condition in filter mode)."""
    where: list[str] = []
    params: list[Any] = []
    if project_id != GLOBAL_PROJECT:
        where.append("e.project_id = ?")
        params.append(project_id)
    if filters is None:
        listed, listed_params = in_list(ids)
        where.append(f"e.id IN {listed}")
        params.extend(listed_params)
    else:
        conditions, extra = _filter_conditions(filters)
        where.extend([*conditions, filter_extra])
        params.extend(extra)
    return where, params


def _editable(
    db: Session, project_id: int, ids: Sequence[int], filters: BulkExperimentFilters | None
) -> list[int]:
    """``getExperimentsEditableByUser``: unarchived experiments of the project among the ids (or
    the filters' matches)."""
    candidates: Sequence[int] = ids
    if filters is not None:
        conditions, params = _filter_conditions(filters)
        clause = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        candidates = [
            row[0]
            for row in fetch(db, f"SELECT e.id FROM experiments e {clause} ORDER BY e.id", params)
        ]
    listed, params = in_list(candidates)
    where = ["NOT e.archived", f"e.id IN {listed}"]
    if project_id != GLOBAL_PROJECT:
        where.insert(1, "e.project_id = ?")
        params.insert(0, project_id)
    sql = f"SELECT e.id, e.state FROM experiments e JOIN projects p ON e.project_id = p.id WHERE {' AND '.join(where)} ORDER BY e.id"
    return [row[0] for row in fetch(db, sql, params)]


def _states(db: Session, ids: Sequence[int]) -> dict[int, str]:
    listed, params = in_list(ids)
    rows = fetch(db, f"SELECT id, state FROM experiments WHERE id IN {listed}", params)
    return {row[0]: row[1] for row in rows}


def _missing(
    ids: Sequence[int],
    found: Sequence[int],
    filters: BulkExperimentFilters | None,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    if filters is not None:
        return []
    present = set(found)
    return [
        Outcome(i, faults[i]) if i in faults else Outcome(i, missing=True)
        for i in ids
        if i not in present
    ]


def _with_default_states(
    filters: BulkExperimentFilters | None, states: Sequence[str]
) -> BulkExperimentFilters | None:
    if filters is None or filters.states:
        return filters
    return filters.model_copy(update={"states": [ExperimentState.lookup(s) for s in states]})


# --- state changes ----------------------------------------------------------------------------
def _set_state(db: Session, experiment_id: int, state: str) -> None:
    end = ", end_time = COALESCE(end_time, ?)" if state in TERMINAL_STATES else ""
    params: list[Any] = [state, db_time(utcnow())] if end else [state]
    execute(db, f"UPDATE experiments SET state = ?{end} WHERE id = ?", [*params, experiment_id])


def _live_trials(db: Session, experiment_id: int, states: Sequence[str]) -> list[int]:
    listed, params = in_list(states)
    sql = f"SELECT id FROM trials WHERE experiment_id = ? AND state IN {listed} ORDER BY id"
    return [row[0] for row in fetch(db, sql, [experiment_id, *params])]


def _incompatible(state: str) -> ApiError:
    return failed_precondition(f"experiment in incompatible state {state}")


def _move_to(db: Session, experiment_id: int, current: str, target: str) -> ApiError | None:
    """``updateState``: same state is a no-op, an illegal transition an error."""
    if current == target:
        return None
    if target not in _TRANSITIONS.get(current, frozenset()):
        return _incompatible(current)
    _set_state(db, experiment_id, target)
    trial_from, trial_to = ("PAUSED", "ACTIVE") if target == "ACTIVE" else ("ACTIVE", "PAUSED")
    for trial_id in _live_trials(
        db, experiment_id, [trial_from, "RUNNING"] if target == "PAUSED" else [trial_from]
    ):
        execute(db, "UPDATE trials SET state = ? WHERE id = ?", [trial_to, trial_id])
    return None


def _stop(db: Session, experiment_id: int, current: str, *, kill: bool) -> ApiError | None:
    """``CancelExperiment``/``KillExperiment``: stopping or terminal experiments are left alone;
    the STOPPING_* state is resolved at once to CANCELED (with the unfinished trials)."""
    stopping = "STOPPING_KILLED" if kill else "STOPPING_CANCELED"
    if (
        current in TERMINAL_STATES
        or current == stopping
        or (not kill and current.startswith("STOPPING_"))
    ):
        return None
    if stopping not in _TRANSITIONS.get(current, frozenset()):
        return _incompatible(current)
    if fetch(db, "SELECT 1 FROM simulated_experiments WHERE experiment_id = ?", [experiment_id]):
        # a simulated experiment stops as the master's does: its trials' allocations end at the
        # cluster's next step (_simulation.settle), then trials and experiment are CANCELED
        _set_state(db, experiment_id, stopping)
        listed, params = in_list(_live_trials(db, experiment_id, ["ACTIVE", "PAUSED"]))
        execute(db, f"UPDATE trials SET state = ? WHERE id IN {listed}", [stopping, *params])
        return None
    _set_state(db, experiment_id, "CANCELED")
    live = _live_trials(db, experiment_id, ["ACTIVE", "PAUSED", "RUNNING", "STOPPING_CANCELED", "STOPPING_KILLED",
                                            "STOPPING_COMPLETED", "STOPPING_ERROR"])  # fmt: skip
    finish_trials(db, live, "CANCELED")
    return None


def _registry_action(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    action: Callable[[int, str], ApiError | None],
    *,
    terminal_is_success: bool,
    faults: Faults,
) -> list[Outcome]:
    editable = _editable(db, project_id, ids, filters)
    outcomes = _missing(ids, editable, filters, faults)
    states = _states(db, editable)
    live = [i for i in editable if in_registry(states[i])]
    for experiment_id in editable:
        if experiment_id not in live:
            error = (
                None if terminal_is_success else failed_precondition("experiment in terminal state")
            )
            outcomes.append(Outcome(experiment_id, faults.get(experiment_id, error)))
    outcomes.extend(
        Outcome(i, faults[i]) if i in faults else Outcome(i, action(i, states[i])) for i in live
    )
    return outcomes


def activate_experiments(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    *,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    filters = _with_default_states(filters, ["PAUSED"])
    return _registry_action(
        db,
        project_id,
        ids,
        filters,
        lambda i, s: _move_to(db, i, s, "ACTIVE"),
        terminal_is_success=False,
        faults=faults,
    )


def pause_experiments(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    *,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    filters = _with_default_states(filters, ["ACTIVE"])
    return _registry_action(
        db,
        project_id,
        ids,
        filters,
        lambda i, s: _move_to(db, i, s, "PAUSED"),
        terminal_is_success=False,
        faults=faults,
    )


def cancel_experiments(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    *,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    filters = _with_default_states(filters, NON_TERMINAL_STATES)
    return _registry_action(
        db,
        project_id,
        ids,
        filters,
        lambda i, s: _stop(db, i, s, kill=False),
        terminal_is_success=True,
        faults=faults,
    )


def kill_experiments(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    *,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    filters = _with_default_states(filters, NON_TERMINAL_STATES)
    return _registry_action(
        db,
        project_id,
        ids,
        filters,
        lambda i, s: _stop(db, i, s, kill=True),
        terminal_is_success=True,
        faults=faults,
    )


_TERMINAL_SQL: Final = "e.state IN ('CANCELED', 'COMPLETED', 'ERROR')"


def _archive(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    *,
    archive: bool,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    extra = f"{'NOT ' if archive else ''}e.archived AND {_TERMINAL_SQL}"
    where, params = _selection(project_id, ids, filters, extra)
    sql = (
        f"SELECT e.id, e.archived, {_TERMINAL_SQL} FROM experiments e JOIN projects p ON e.project_id = p.id"
        f" WHERE {' AND '.join(where)} ORDER BY e.id"
    )
    rows = fetch(db, sql, params)
    outcomes: list[Outcome] = []
    valid: list[int] = []
    for experiment_id, archived, terminal in rows:
        if experiment_id in faults:
            outcomes.append(Outcome(experiment_id, faults[experiment_id]))
        elif archive and archived:
            outcomes.append(
                Outcome(experiment_id, failed_precondition("Experiment is already archived."))
            )
        elif not archive and not archived:
            outcomes.append(
                Outcome(experiment_id, failed_precondition("Experiment is not archived."))
            )
        elif not terminal:
            outcomes.append(
                Outcome(experiment_id, failed_precondition("Experiment is not in terminal state."))
            )
        else:
            valid.append(experiment_id)
    outcomes.extend(_missing(ids, [row[0] for row in rows], filters, faults))
    if valid:
        listed, params = in_list(valid)
        sql = f"UPDATE experiments SET archived = ? WHERE id IN {listed}"
        execute(db, sql, [int(archive), *params])
    outcomes.extend(Outcome(i) for i in valid)
    return outcomes


def _delete(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    *,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    where, params = _selection(project_id, ids, filters, _TERMINAL_SQL)
    sql = f"""
    SELECT e.id, e.state,
      (SELECT COUNT(*) FROM checkpoints c JOIN trials t ON c.trial_id = t.id
         JOIN model_versions mv ON mv.checkpoint_uuid = c.uuid WHERE t.experiment_id = e.id)
    FROM experiments e JOIN projects p ON e.project_id = p.id
    WHERE {" AND ".join(where)} ORDER BY e.id"""
    rows = fetch(db, sql, params)
    outcomes: list[Outcome] = []
    valid: list[int] = []
    for experiment_id, state, versions in rows:
        if experiment_id in faults:
            outcomes.append(Outcome(experiment_id, faults[experiment_id]))
        elif versions > 0:
            outcomes.append(
                Outcome(
                    experiment_id,
                    ApiError(Code.INVALID_ARGUMENT, "checkpoints are registered as model versions"),
                )
            )
        elif "DELETING" not in _TRANSITIONS.get(state, frozenset()):
            outcomes.append(
                Outcome(
                    experiment_id,
                    failed_precondition(f"cannot delete experiment in STATE_{state} state"),
                )
            )
        else:
            valid.append(experiment_id)
    outcomes.extend(_missing(ids, [row[0] for row in rows], filters, faults))
    # DELETING, then deleted in the background on the master; gone right away here
    delete_experiments(db, valid)
    outcomes.extend(Outcome(i) for i in valid)
    return outcomes


def move_experiments(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    destination: int,
    *,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    archived = "(e.archived OR p.archived OR w.archived)"
    where, params = _selection(project_id, ids, filters, f"NOT {archived}")
    sql = (
        f"SELECT e.id, {archived} FROM experiments e JOIN projects p ON e.project_id = p.id"
        f" JOIN workspaces w ON p.workspace_id = w.id WHERE {' AND '.join(where)} ORDER BY e.id"
    )
    rows = fetch(db, sql, params)
    outcomes = [
        Outcome(row[0], faults.get(row[0]) or failed_precondition("Experiment is archived."))
        for row in rows
        if row[1] or row[0] in faults
    ]
    valid = [row[0] for row in rows if not row[1] and row[0] not in faults]
    outcomes.extend(_missing(ids, [row[0] for row in rows], filters, faults))
    if valid:
        _move(db, valid, destination)
    outcomes.extend(Outcome(i) for i in valid)
    return outcomes


def _move(db: Session, experiment_ids: Sequence[int], destination: int) -> None:
    """Move experiments (their runs follow) and give the runs new local ids in the destination,
    recording the new ids under the destination's key (``local_id_redirect``)."""
    experiments, experiment_params = in_list(experiment_ids)
    execute(
        db,
        f"UPDATE experiments SET project_id = ? WHERE id IN {experiments}",
        [destination, *experiment_params],
    )
    moved = [
        row[0]
        for row in fetch(
            db,
            f"SELECT id FROM trials WHERE experiment_id IN {experiments} ORDER BY id",
            experiment_params,
        )
    ]
    if not moved:
        return
    runs, run_params = in_list(moved)
    top = fetch(
        db,
        f"SELECT COALESCE(MAX(t.local_id), 0) FROM trials t JOIN experiments e ON e.id = t.experiment_id"
        f" WHERE e.project_id = ? AND t.id NOT IN {runs}",
        [destination, *run_params],
    )[0][0]
    for offset, trial_id in enumerate(moved, start=1):
        execute(db, "UPDATE trials SET local_id = ? WHERE id = ?", [top + offset, trial_id])
    execute(
        db,
        f"INSERT INTO local_id_redirect (run_id, project_id, project_key, local_id)"
        f" SELECT t.id, p.id, p.key, t.local_id FROM trials t JOIN experiments e ON e.id = t.experiment_id"
        f" JOIN projects p ON p.id = e.project_id WHERE t.id IN {runs}",
        run_params,
    )


# --- bulk routes ------------------------------------------------------------------------------
class BulkAction(Protocol):
    def __call__(
        self,
        db: Session,
        project_id: int,
        ids: Sequence[int],
        filters: BulkExperimentFilters | None,
        *,
        faults: Faults = ...,
    ) -> list[Outcome]: ...


def _bulk(ctx: Ctx, action: BulkAction) -> RawJSON:
    request = ctx.body(BulkActionRequest)
    outcomes = action(
        ctx.db, ctx.path["project_id"], request.experiment_ids, request.filters,
        faults=faulty_ids(ctx.extra),
    )  # fmt: skip
    return bulk_results(outcomes)


def _archive_action(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    *,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    return _archive(db, project_id, ids, filters, archive=True, faults=faults)


def _unarchive_action(
    db: Session,
    project_id: int,
    ids: Sequence[int],
    filters: BulkExperimentFilters | None,
    *,
    faults: Faults = NO_FAULTS,
) -> list[Outcome]:
    return _archive(db, project_id, ids, filters, archive=False, faults=faults)


_BULK: Final[dict[str, BulkAction]] = {
    "ActivateExperiments": activate_experiments,
    "PauseExperiments": pause_experiments,
    "CancelExperiments": cancel_experiments,
    "KillExperiments": kill_experiments,
    "ArchiveExperiments": _archive_action,
    "UnarchiveExperiments": _unarchive_action,
    "DeleteExperiments": _delete,
}


def _register_bulk(op: str, action: BulkAction) -> None:
    @rpc(op, project_id=int)
    def handler(ctx: Ctx) -> RawJSON:
        return _bulk(ctx, action)


for _op, _action in _BULK.items():
    _register_bulk(_op, _action)


def check_destination(db: Session, destination: int) -> None:
    """The destination project must exist (404) and be open (a plain 500)."""
    project = find_project(db, destination)
    if project_archived(db, project):
        raise internal(f"project ({destination}) is archived and cannot add new experiments")


@rpc("MoveExperiments", project_id=int)
def move_experiments_route(ctx: Ctx) -> RawJSON:
    request = ctx.body(MoveExperimentsRequest)
    check_destination(ctx.db, request.destination_project_id)
    outcomes = move_experiments(ctx.db, ctx.path["project_id"], request.experiment_ids, request.filters,
                                request.destination_project_id, faults=faulty_ids(ctx.extra))  # fmt: skip
    return bulk_results(outcomes)


# --- single routes ----------------------------------------------------------------------------
def _first_error(outcomes: Sequence[Outcome], name: str) -> dict[str, Any]:
    if not outcomes:
        raise internal(f"{name} returned neither pass nor fail on query")
    if outcomes[0].error is not None:
        raise outcomes[0].error
    return {}


def _experiment_row(db: Session, experiment_id: int) -> tuple[Any, ...]:
    """``GetExperimentAndCheckCanDoActions``: 404 for an unknown experiment."""
    rows = fetch(
        db,
        "SELECT id, state, archived, project_id, owner_id FROM experiments WHERE id = ?",
        [experiment_id],
    )
    if not rows:
        raise _not_found(experiment_id)
    return rows[0]


@rpc("ActivateExperiment", id=int)
def activate_experiment(ctx: Ctx) -> dict[str, Any]:
    # Straight to the experiment's actor: no archived check, and no actor (terminal) is a 404.
    _, state, *_ = _experiment_row(ctx.db, ctx.path["id"])
    injected = faulty_ids(ctx.extra).get(ctx.path["id"])
    if injected is not None:
        raise injected
    if not in_registry(state):
        raise _not_found(ctx.path["id"])
    error = _move_to(ctx.db, ctx.path["id"], state, "ACTIVE")
    if error is not None:
        raise error
    return {}


@rpc("PauseExperiment", id=int)
def pause_experiment(ctx: Ctx) -> dict[str, Any]:
    return _first_error(
        pause_experiments(
            ctx.db, GLOBAL_PROJECT, [ctx.path["id"]], None, faults=faulty_ids(ctx.extra)
        ),
        "PauseExperiments",
    )


@rpc("CancelExperiment", id=int)
def cancel_experiment(ctx: Ctx) -> dict[str, Any]:
    return _first_error(
        cancel_experiments(
            ctx.db, GLOBAL_PROJECT, [ctx.path["id"]], None, faults=faulty_ids(ctx.extra)
        ),
        "CancelExperiments",
    )


@rpc("KillExperiment", id=int)
def kill_experiment(ctx: Ctx) -> dict[str, Any]:
    return _first_error(
        kill_experiments(
            ctx.db, GLOBAL_PROJECT, [ctx.path["id"]], None, faults=faulty_ids(ctx.extra)
        ),
        "KillExperiments",
    )


@rpc("ArchiveExperiment", id=int)
def archive_experiment(ctx: Ctx) -> dict[str, Any]:
    outcomes = _archive(
        ctx.db, GLOBAL_PROJECT, [ctx.path["id"]], None, archive=True, faults=faulty_ids(ctx.extra)
    )
    return _first_error(outcomes, "ArchiveExperiments")


@rpc("UnarchiveExperiment", id=int)
def unarchive_experiment(ctx: Ctx) -> dict[str, Any]:
    outcomes = _archive(
        ctx.db, GLOBAL_PROJECT, [ctx.path["id"]], None, archive=False, faults=faulty_ids(ctx.extra)
    )
    return _first_error(outcomes, "UnarchiveExperiments")


@rpc("DeleteExperiment", experiment_id=int)
def delete_experiment(ctx: Ctx) -> dict[str, Any]:
    experiment_id = ctx.path["experiment_id"]
    *_, owner_id = _experiment_row(ctx.db, experiment_id)
    user = ctx.user
    if user is not None and not user.admin and owner_id != user.id:  # CanDeleteExperiment (basic)
        raise permission_denied("non admin users may not delete other user's experiments")
    outcomes = _delete(ctx.db, GLOBAL_PROJECT, [experiment_id], None, faults=faulty_ids(ctx.extra))
    return _first_error(outcomes, "DeleteExperiments")


@rpc("MoveExperiment", experiment_id=int)
def move_experiment(ctx: Ctx) -> dict[str, Any]:
    experiment_id = ctx.path["experiment_id"]
    destination = ctx.body(MoveExperimentRequest).destination_project_id
    _, _, archived, source, _ = _experiment_row(ctx.db, experiment_id)
    if archived:
        raise internal(f"experiment ({experiment_id}) is archived and cannot be moved")
    source_project = find_project(ctx.db, source)
    if project_archived(ctx.db, source_project):
        raise internal(f"project ({source}) is archived and cannot have experiments moved from it")
    check_destination(ctx.db, destination)
    outcomes = move_experiments(
        ctx.db, GLOBAL_PROJECT, [experiment_id], None, destination, faults=faulty_ids(ctx.extra)
    )
    return _first_error(outcomes, "MoveExperiments")
