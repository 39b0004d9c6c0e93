"""The thin executor of read plans, as ops: send page after page, parse, hydrate, prefetch;
the terminal operations of queries (``first``, ``count``...) for both APIs.

Paging follows the official client (``offset = pagination.endIndex`` until ``endIndex >=
total``) and stops if a server does not advance its cursor, so it can never loop forever.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from pydantic_core import from_json

from .. import _wire as w
from .._plan._call import Call
from .._plan._conditions import FieldRef, Leaf
from .._plan._evaluate import matches, sort_key
from .._plan._loading import ROW_LOADERS
from .._plan._planner import EXPERIMENT_TREE, Plan, Source, TreeCompiler, encode_filter, runs_source
from .._plan._query import query_offset, record
from .._resources._base import Resource
from .._resources._inputs import require
from .._resources._models import Checkpoint, Experiment, Trial
from .._resources._tasks import Task
from ..errors import APIError, BadRequest, NotFound, QueryError
from ._effects import Op, collect, emit, gather, send

if TYPE_CHECKING:
    from .._plan._query import QueryBase as Query
    from ._protocols import OpsSession as Session

__all__ = [
    "Pager", "at", "best_trial", "count", "exists", "first", "get", "iterate", "load_best_trial",
    "one", "one_or_none", "query_rows", "records", "rows_of",
]  # fmt: skip

R = TypeVar("R", bound=Resource)
T = TypeVar("T", bound=Trial)


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Pause the cyclic garbage collector while a page of objects is built.

    A page creates thousands of container objects, none of them garbage, and each allocation
    burst makes the collector walk every object already alive: with it paused, a page of 2,000
    experiments is read about twice as fast. It resumes at once afterwards.

    The page's objects then go straight to the oldest generation (``gc.freeze()`` and
    ``gc.unfreeze()``, two list splices): the collector's next young-generation pass would
    otherwise walk all of them (about 10 ms for 2,000 experiments and their configs), only to
    find none is garbage. Objects that die later are freed by their reference counts as before
    (the SDK makes no reference cycles: watchers hold their objects weakly, and the drivers
    unlink httpx's response cycles, _drivers._unlinked). Young cyclic garbage made before the
    page is collected first, a young-generation pass over the few objects made since the last
    page, so that it is not kept until a full collection; what the pause makes goes with the
    page. Not done
    when the application froze objects itself (``gc.get_freeze_count()``): unfreezing would
    undo that.
    """
    if not gc.isenabled():
        yield
        return
    promote = gc.get_freeze_count() == 0
    if promote:
        gc.collect(0)
    gc.disable()
    try:
        yield
    finally:
        if promote:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


RowLoad = Callable[[Any], Any]


def _page(
    source: Source, offset: int, limit: int, load: RowLoad | None
) -> Op[tuple[list[Any], w.Pagination]]:
    """One page of rows, each made by ``load`` from its wire model when given."""
    if source.paging == "keys":  # nothing to list: the rows are the keys
        keys = list(source.keys)
        rows = keys if load is None else [load(key) for key in keys]
        return rows, w.Pagination(end_index=len(keys), total=len(keys))
    content = (yield from send(source.call(offset, limit))).content
    # Decoding to Python first and validating the objects is faster than validate_json
    # (pydantic-core reads JSON input into a tree of its own, then validates that: about 3x
    # slower for a page of experiments). The page is decoded, validated and loaded in one pause
    # of the garbage collector, whose young passes then skip the page's objects (no_gc_pauses).
    with no_gc_pauses():
        response = source.response.model_validate(from_json(content))
        del content
        rows = list(getattr(response, source.rows))
        pagination = getattr(response, "pagination", None) or w.Pagination(
            end_index=offset + len(rows), total=offset + len(rows)
        )
        del response
        if load is not None:
            rows = _loaded(rows, load)
    return rows, pagination


def _loaded(rows: list[Any], load: RowLoad) -> list[Any]:
    """``load`` of each row, each wire row let go once loaded (a page's wire models and its
    objects are not all held at once)."""
    loaded = []
    for index, row in enumerate(rows):
        rows[index] = None
        loaded.append(load(row))
    return loaded


class Pager:
    """The wire rows of a source from ``offset``, at most ``limit`` of them, page by page.

    Offsets past either end mean what they mean for a Python list: no rows after the end, and
    from the first row for a negative offset reaching before it (as ``count()`` counts them).
    """

    def __init__(
        self,
        source: Source,
        *,
        offset: int,
        limit: int | None,
        page_size: int,
        load: RowLoad | None = None,
    ) -> None:
        """``load`` makes each row from its wire model as the page is read (the pager then
        returns what it made)."""
        self._source = source
        self._load = load
        self._offset = offset
        self._remaining = limit
        self._page_size = page_size
        self._done = False

    def next(self) -> Op[list[Any] | None]:
        """The next page of rows, or None after the last one."""
        source = self._source
        while not self._done and (self._remaining is None or self._remaining > 0):
            offset, remaining = self._offset, self._remaining
            size = self._page_size if remaining is None else min(self._page_size, remaining)
            try:
                rows, pagination = yield from _page(source, offset, size, self._load)
            except APIError as err:
                if source.matches_nothing(err):
                    break  # the parent does not exist: nothing matches
                if not isinstance(err, BadRequest):
                    raise
                # api.Paginate (the in-memory listings) refuses an offset out of bounds with a
                # 400 where SQL paging answers an empty page.
                memory = source.paging == "memory" and err.message == "offset out of bounds"
                if not memory or offset == 0:
                    raise
                if offset > 0:
                    break
                self._offset = 0
                continue
            if offset < -pagination.total:
                self._offset = 0  # SQL paging: an empty page for an offset before the first row
                continue
            if remaining is not None:
                self._remaining = remaining - len(rows)
            end = pagination.end_index
            stalled = offset >= 0 and end <= offset
            self._done = not rows or end >= pagination.total or stalled
            self._offset = end
            return rows
        self._done = True
        return None


def _task(
    session: Session, task_id: str, held: dict[str, w.AllocationSummary]
) -> Op[Resource | None]:
    """One task read with GetTask, its held allocations completed from their summaries; None
    when the master does not know it."""
    try:
        task = yield from session._fetch(Task, task_id)
    except NotFound:
        return None
    if held:
        allocations = tuple(a.held_as(held[a.id]) if a.id in held else a for a in task.allocations)
        session.merge(Task, {"id": task.id, "allocations": allocations})
    return task


def _tasks_by_id(session: Session, ids: list[str]) -> Op[list[Resource]]:
    found = yield from gather([_task(session, task_id, {}) for task_id in ids])
    return [task for task in found if task is not None]


def _held_tasks(session: Session, summaries: list[w.AllocationSummary]) -> Op[list[Resource]]:
    """The tasks of the allocations GetTasks lists (a task may hold several)."""
    held: dict[str, dict[str, w.AllocationSummary]] = {}
    for summary in summaries:
        held.setdefault(summary.task_id, {})[summary.allocation_id] = summary
    found = yield from gather([_task(session, task_id, of) for task_id, of in held.items()])
    return [task for task in found if task is not None]


# Sources whose rows only name their objects: each page is completed with more requests.
_PAGE_LOADERS: Final[dict[str, Callable[[Session, list[Any]], Op[list[Resource]]]]] = {
    "GetTask": _tasks_by_id,
    "GetTasks": _held_tasks,
}


def _row_load(session: Session, operation: str) -> RowLoad | None:
    """How the pager makes each object of a page from its row (None: the page is completed
    with more requests, by _PAGE_LOADERS)."""
    if operation in _PAGE_LOADERS:
        return None
    load = ROW_LOADERS[operation]
    return lambda row: load(session, row)


def _load_page(session: Session, operation: str, rows: list[Any]) -> Op[list[Resource]]:
    page_loader = _PAGE_LOADERS.get(operation)
    if page_loader is None:
        return rows  # made by the pager (_row_load)
    return (yield from page_loader(session, rows))


def iterate(session: Session, plan: Plan, offset: int, limit: int | None) -> Op[None]:
    """Emit every row of a plan's source as a resource, loading prefetched children per page."""
    experiment: Experiment | None = None
    if plan.experiment is not None:
        # It names the trials' searcher metric: held while they are read (the identity map
        # holds objects weakly).
        try:
            experiment = yield from session._resolve(Experiment, plan.experiment)
        except NotFound:
            return  # the parent does not exist: nothing matches
    operation = plan.source.operation
    pager = Pager(
        plan.source, offset=offset, limit=limit, page_size=plan.page_size,
        load=_row_load(session, operation),
    )  # fmt: skip
    while (rows := (yield from pager.next())) is not None:
        objects = yield from _load_page(session, operation, rows)
        del rows
        for prefetch in plan.prefetch:
            if objects and prefetch.relation == "trials":
                yield from _prefetch_trials(session, [o.pk for o in objects], plan.page_size)
            elif objects and prefetch.relation == "checkpoints":
                trials = [t for t in objects if isinstance(t, Trial)]
                yield from _prefetch_checkpoints(session, trials)
        yield from emit(objects)
        # Let the page go before the next one is read: a lazy loop then holds one page's
        # objects at most (those it has not dropped yet), not two.
        del objects
    del experiment


def query_rows(query: Query[Any]) -> Op[None]:
    """Emit a query's rows: paged by the master, or filtered, sorted and sliced here when the
    plan says the master cannot (``explain()`` shows which)."""
    if query._children_of is not None:
        children = query.session._loaded_children(query._children_of)
        if children is not None:
            yield from emit(children)
            return
    plan = query.plan()
    # A query knows its session as a QuerySession (its layer cannot name the ops' types); every
    # session is a SessionBase, which _api hands to the ops as an OpsSession (checked there).
    session = cast("Session", query.session)
    if plan.server_paging:
        yield from iterate(session, plan, plan.offset, plan.limit)
        return
    residual = plan.residual

    def matching(objects: list[Resource]) -> list[Resource]:
        return objects if residual is None else [o for o in objects if matches(residual, o)]

    objects = yield from collect(iterate(session, plan, 0, None), matching)
    if plan.client_order:
        objects.sort(key=sort_key(plan.client_order))
    if plan.offset < 0:
        objects = objects[plan.offset :]
    stop = None if plan.limit is None else max(0, plan.offset) + plan.limit
    yield from emit(objects[max(0, plan.offset) : stop])


def rows_of(query: Query[R]) -> Op[list[R]]:
    """Every row of a query, as a list."""
    return collect(query_rows(query))


def limited(query: Query[R], count: int) -> Op[list[R]]:
    return rows_of(query.limit(count))


def first(query: Query[R]) -> Op[R | None]:
    rows = yield from limited(query, 1)
    return rows[0] if rows else None


def one_or_none(query: Query[R]) -> Op[R | None]:
    rows = yield from limited(query, 2)
    if len(rows) > 1:
        raise QueryError(f"more than one {query.resource.__name__} matches the query")
    return rows[0] if rows else None


def one(query: Query[R]) -> Op[R]:
    row = yield from one_or_none(query)
    if row is None:
        raise NotFound(
            method="",
            path="",
            status=404,
            message=f"no {query.resource.__name__} matches the query",
        )
    return row


def get(query: Query[R], key: Any) -> Op[R]:
    """The row with this key among the query's rows; NotFound if none."""
    field = query.resource._key_field
    row = yield from one_or_none(query._filter((), {field: key}))
    if row is None:
        raise NotFound(
            method="", path="", status=404,
            message=f"no {query.resource.__name__} with {field} {key!r} matches the query",
        )  # fmt: skip
    return row


def exists(query: Query[Any]) -> Op[bool]:
    return (yield from first(query)) is not None


def at(query: Query[R], index: int) -> Op[R]:
    """The row at ``index`` (counted from the end when negative); IndexError past either end."""
    require("a query index", index, int, "an int or a slice")
    if index >= 0:
        offset = query_offset("the query index", query._offset + index)
        rows = yield from rows_of(query._copy(offset=offset, limit=1))
    else:
        # Counted back from the end of all the rows, whatever the offset. Reading the last
        # -index rows tells whether there are that many (an offset before the first row
        # starts at the first row, as for a list slice).
        rows = yield from rows_of(
            query._copy(offset=query_offset("the query index", index), limit=-index)
        )
        rows = rows[:1] if len(rows) == -index else []
    if not rows:
        raise IndexError(f"query index {index} out of range")
    return rows[0]


def records(query: Query[Any]) -> Op[list[dict[str, Any]]]:
    """Every row as a dict of its loaded fields (tags as sorted lists, enums by name)."""
    return [record(obj) for obj in (yield from rows_of(query))]


def count(query: Query[Any]) -> Op[int]:
    """How many rows match: one request when the master can filter everything."""
    plan = query.plan()
    if not plan.server_paging:
        return len((yield from rows_of(query)))
    try:
        content = (yield from send(plan.source.count_call())).content
    except APIError as err:
        if not plan.source.matches_nothing(err):
            raise
        return 0
    pagination = getattr(plan.source.response.model_validate_json(content), "pagination", None)
    total = pagination.total if pagination is not None else 0
    start = total + plan.offset if plan.offset < 0 else plan.offset
    available = max(0, total - max(0, min(start, total)))
    return available if plan.limit is None else min(plan.limit, available)


def _prefetch_trials(session: Session, experiment_ids: list[int], page_size: int) -> Op[None]:
    """The trials of a page of experiments: one runs search (more pages only if very many)."""
    source = runs_source("experiment_id", experiment_ids)
    children: dict[int, list[Resource]] = {e: [] for e in experiment_ids}
    size = max(page_size, 4 * len(experiment_ids))
    pager = Pager(source, offset=0, limit=None, page_size=size)
    while (rows := (yield from pager.next())) is not None:
        for row in rows:
            trial = ROW_LOADERS["SearchRuns"](session, row)
            assert isinstance(trial, Trial)
            children.setdefault(trial.experiment_id, []).append(trial)
    for experiment_id, trials in children.items():
        session._collections[("Experiment", experiment_id, "trials")] = trials


def _prefetch_checkpoints(session: Session, trials: list[Trial]) -> Op[None]:
    """The checkpoints of a page of trials: one listing per experiment they belong to (the
    master lists them per experiment or per trial), read concurrently."""
    children: dict[int, list[Resource]] = {t.pk: [] for t in trials}
    experiments = sorted({t.experiment_id for t in trials})
    listings = yield from gather(
        [
            rows_of(session._query(Checkpoint)._filter((), {"experiment_id": experiment_id}))
            for experiment_id in experiments
        ]
    )
    for checkpoints in listings:
        for checkpoint in checkpoints:
            if checkpoint.trial_id in children:
                children[checkpoint.trial_id].append(checkpoint)
    for trial_id, found in children.items():
        session._collections[("Trial", trial_id, "checkpoints")] = found


def load_best_trial(session: Session, experiment: Experiment) -> Op[None]:
    """One experiments search for this id: only the search reports the best trial."""
    pushed = TreeCompiler("Experiment", EXPERIMENT_TREE, "").tree(
        Leaf(FieldRef("column", "id"), "exact", experiment.id)
    )
    assert pushed is not None
    body = {"filter": encode_filter(pushed.node, show_archived=True), "offset": 0, "limit": 1}
    call = Call("POST", "/api/v1/experiments-search", body=body, read_only=True)
    content = (yield from send(call)).content
    rows = w.SearchExperimentsResponse.model_validate_json(content).experiments
    if not rows:
        raise NotFound(
            method=call.method,
            path=call.path,
            status=404,
            message=f"experiment {experiment.id} not found",
        )
    ROW_LOADERS["SearchExperiments"](session, rows[0])


def best_trial(session: Session, experiment: Experiment, cls: type[T]) -> Op[T | None]:
    """The trial with the best searcher metric, or None (one request unless known).

    Only the experiments search reports the best trial: an experiment read by a search
    already knows it (``best_trial_id``); otherwise one search for this experiment asks.
    """
    if "best_trial_id" not in experiment.__dict__:
        yield from load_best_trial(session, experiment)
    if experiment.best_trial_id is None:
        return None
    return (yield from session._resolve(cls, experiment.best_trial_id))
