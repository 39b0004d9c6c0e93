"""Experiment actions, sent at once: on one experiment, or in bulk on a query's matches.

A bulk action sends the query's filter itself when ``BulkExperimentFilters`` can express it
exactly (one request whatever the number of matches); otherwise it reads the matching ids first.
Afterwards the session's objects reflect what the master did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .. import _wire as w
from .._plan._call import Call, path
from .._plan._edits import BulkAction, BulkResult, Change, plan_bulk
from .._resources._base import Resource
from .._resources._inputs import check_id
from .._resources._models import Checkpoint, Experiment
from ._effects import Op, send
from ._executor import rows_of

if TYPE_CHECKING:
    from .._plan._query import QueryBase as Query
    from ._protocols import OpsSession as Session

__all__ = [
    "bulk_action",
    "bulk_call",
    "delete_checkpoint",
    "experiment_action",
    "reflect_experiments",
]


def bulk_action(
    query: Query[Any], action: BulkAction, destination: int | None = None
) -> Op[BulkResult[int]]:
    """Run ``action`` on every experiment the query matches; per-id results."""
    # A query knows its session as a QuerySession (its layer cannot name the ops' types); every
    # session is a SessionBase, which _api hands to the ops as an OpsSession (checked there).
    session = cast("Session", query.session)
    call = yield from bulk_call(query, action, destination)
    if call is None:
        return BulkResult(action, {})
    response = yield from send(call)
    results = w.BulkActionResponse.model_validate_json(response.content).results
    outcome = BulkResult(action, {r.id: r.error for r in results})
    yield from reflect_experiments(session, action, outcome.succeeded, destination)
    return outcome


def bulk_call(
    query: Query[Any], action: BulkAction, destination: int | None = None
) -> Op[Call | None]:
    """The one request of a bulk action (None: nothing matches); sends only the read of the
    matching ids when the bulk filters cannot express the query (``detorm archive --dry-run``
    prints it without sending it)."""
    _check_destination(action, destination)
    sliced = bool(query._order) or query._limit is not None or query._offset != 0
    plan = plan_bulk(query._where, action, ordered_or_sliced=sliced, destination=destination)
    ids: list[int] = []
    if plan.filters is None:
        ids = [e.pk for e in (yield from rows_of(query))]
        if not ids:
            return None
    return plan.call(ids)


def experiment_action(
    session: Session, experiment: Resource, action: BulkAction, destination: int | None = None
) -> Op[None]:
    """One experiment's action; the master answers with an HTTP error when it refuses."""
    _check_destination(action, destination)
    base = path("/api/v1/experiments/{id}", id=experiment.pk)
    if action == "delete":
        call = Call("DELETE", base)
    elif action == "move":
        body = {"experimentId": experiment.pk, "destinationProjectId": destination}
        call = Call("POST", base + "/move", body=body)
    else:
        call = Call("POST", path("/api/v1/experiments/{id}/{a}", id=experiment.pk, a=action))
    yield from send(call)
    yield from reflect_experiments(session, action, [experiment.pk], destination)


def _check_destination(action: BulkAction, destination: object) -> None:
    if action == "move":
        check_id("move_to(project)", destination, what="a Project or its id (an int)")


def reflect_experiments(
    session: Session, action: BulkAction, ids: list[int], destination: int | None
) -> Op[None]:
    """Bring the experiments this session holds in line with an applied action."""
    loaded = [e for e in (session.identity.get(Experiment, i) for i in ids) if e is not None]
    if not loaded:
        return
    if action in ("archive", "unarchive"):
        for exp in loaded:
            session._confirmed_value(exp, "archived", action == "archive")
    elif action == "move" and destination is not None:
        for exp in loaded:
            session._confirmed_value(exp, "project_id", destination)
            session._uow.after_move(
                Change("Experiment", exp.pk, "project_id", None, destination, exp)
            )
    elif action == "delete":
        for exp in loaded:
            exp.__dict__["state"] = w.ExperimentState.DELETING  # the master finishes it later
    else:
        # pause, activate, cancel, kill: the master moves states on its own schedule; read them.
        yield from rows_of(
            session._query(Experiment)._filter((), {"id__in": [e.pk for e in loaded]})
        )


def delete_checkpoint(session: Session, checkpoint: Checkpoint) -> Op[None]:
    """DeleteCheckpoints for one checkpoint; the master removes the files in the background
    and the state becomes DELETED (read again)."""
    yield from send(
        Call("DELETE", "/api/v1/checkpoints", body={"checkpointUuids": [checkpoint.uuid]})
    )
    yield from session._refresh(checkpoint)
