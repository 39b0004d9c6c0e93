"""Reads and actions with arguments: session.get keys, session.query resources, metrics and
summaries of trials, trial logs, moves of experiments (one, or a query's in bulk), and the
objects given to pending / commit / rollback.

The property: a result, or an input error raised before any request."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

import detorm
from detorm import Experiment, LogLevel, Trial
from detorm.errors import InvalidType

from .conftest import GENERATED, World, refused_as_type, refused_or_done
from .strategies import ANY_VALUE, EDGE_INTS, ODD_TEXT, TIMES, mostly


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


KEYS = mostly(
    st.one_of(
        EDGE_INTS,
        ODD_TEXT,
        st.uuids().map(str),
        st.tuples(st.one_of(EDGE_INTS, ODD_TEXT), st.one_of(EDGE_INTS, ODD_TEXT)),
    )
)


@GENERATED
@given(data=st.data(), key=KEYS)
def test_get_by_key(world: World, data: st.DataObject, key: Any) -> None:
    resource = data.draw(
        st.sampled_from([*world.resources, int, None, "Experiment"]), label="resource"
    )
    session = world.session
    if resource not in world.resources:
        refused_as_type(session, lambda: world.api(session.get(resource, key)))
        return
    outcome = refused_or_done(session, lambda: _get_or_none(world, resource, key))
    if outcome is not None and not isinstance(outcome, Exception):
        assert isinstance(outcome, resource) and outcome.pk is not None


def _get_or_none(world: World, resource: Any, key: Any) -> Any:
    try:
        return world.api(world.session.get(resource, key))
    except detorm.errors.NotFound:
        return None  # a well-formed key of no object: the master says so


@GENERATED
@given(resource=ANY_VALUE)
def test_query_of_something_that_is_not_a_resource(world: World, resource: Any) -> None:
    refused_as_type(world.session, lambda: world.session.query(resource))


TRIALS = mostly(st.lists(st.one_of(EDGE_INTS, st.sampled_from([1, 2, 3])), max_size=3))


@GENERATED
@given(
    read=st.sampled_from(["metrics", "summaries"]),
    trials=st.one_of(TRIALS, ANY_VALUE),
    group=mostly(st.sampled_from(["validation", "training", "", "a.b", "x"])),
    cache=mostly(st.booleans()),
)
def test_metrics_and_summaries(
    world: World, read: str, trials: Any, group: Any, cache: Any
) -> None:
    session, api = world.session, world.api

    def run() -> Any:
        if read == "metrics":
            return api.list(session.metrics(trials, group, cache=cache))
        return api(session.summaries(trials, cache=cache))

    given_trials = list(trials) if isinstance(trials, list) else None
    outcome = refused_or_done(session, run)
    if given_trials is not None and not isinstance(outcome, Exception):
        assert all(_is_int(t) for t in given_trials)


LOG_ARGUMENTS = {
    "levels": st.one_of(
        st.none(), st.lists(st.one_of(st.sampled_from(list(LogLevel)), ODD_TEXT), max_size=2)
    ),
    "since": st.one_of(st.none(), TIMES),
    "until": st.one_of(st.none(), TIMES),
    "limit": st.one_of(st.none(), EDGE_INTS),
    "tail": st.one_of(st.none(), EDGE_INTS),
    "search": st.one_of(st.none(), ODD_TEXT, st.just("(epoch")),
    "regex": st.booleans(),
    "follow": st.just(False),
}


@GENERATED
@given(
    arguments=st.fixed_dictionaries(LOG_ARGUMENTS),
    broken=st.sampled_from([None, *LOG_ARGUMENTS]),
    anything=ANY_VALUE,
)
def test_trial_logs(
    world: World, arguments: dict[str, Any], broken: str | None, anything: Any
) -> None:
    if broken is not None:
        arguments[broken] = anything  # one argument of any value, the others of their type
    assume(arguments["follow"] is not True)  # a followed stream waits for the trial's end
    trial = world[Trial]
    outcome = refused_or_done(world.session, lambda: world.api.list(trial.logs(**arguments)))
    if not isinstance(outcome, Exception):
        for name in ("limit", "tail"):
            if arguments[name] is not None:
                assert len(outcome) <= arguments[name]


@GENERATED
@given(
    how=st.sampled_from(["experiment", "query", "assignment"]),
    project=mostly(st.one_of(EDGE_INTS, st.none(), ODD_TEXT)),
)
def test_moves_to_a_bad_project(world: World, how: str, project: Any) -> None:
    # A valid destination would really move the shared experiment: only bad ones here.
    assume(how != "experiment" or not (_is_int(project) and 0 < project < 2**31))
    session, api = world.session, world.api
    experiment = world[Experiment]
    # A query matching nothing: a move with a valid destination sends nothing either.
    nothing = api.of(Experiment).query(session).filter(name="no such experiment", id=10**6)

    def move() -> Any:
        if how == "experiment":
            return api(experiment.move_to(project))
        if how == "query":
            return api(nothing.move_to(project))
        experiment.project = project
        return None

    try:
        outcome = refused_or_done(session, lambda: _move_or_not_found(move))
        if not _is_int(project):
            assert isinstance(outcome, InvalidType)
    finally:
        world.rollback()


def _move_or_not_found(move: Any) -> Any:
    try:
        return move()
    except detorm.errors.NotFound:
        return None  # a well-formed id of a project that does not exist


@GENERATED
@given(
    method=st.sampled_from(["pending", "commit", "rollback", "set_default_session"]),
    objects=st.lists(ANY_VALUE, min_size=1, max_size=2),
)
def test_objects_given_to_the_unit_of_work(world: World, method: str, objects: list[Any]) -> None:
    session, api = world.session, world.api
    if method == "set_default_session":
        assume(objects[0] is not None)  # None forgets the default session
        refused_as_type(session, lambda: api.set_default_session(objects[0]))
    elif method == "pending":  # a plan, at once, in both APIs
        refused_as_type(session, lambda: session.pending(*objects))
    else:  # commit and rollback are awaited in the async API
        refused_as_type(session, lambda: api(getattr(session, method)(*objects)))
