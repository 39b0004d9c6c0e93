"""The list path's memory and collector behaviour: a lazy loop holds one page at most, a read
response is freed without the cyclic collector, pages leave the application's frozen objects
alone, and the identity map's entries follow their objects' lives."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import detorm
from detorm import Experiment
from detorm._api._drivers import AsyncTransport, Transport
from detorm._ops._effects import send
from detorm._plan._call import Call
from detorm._resources._base import construct
from detorm._state._identity import IdentityMap
from tests.sdk.apis import Api


def _walk(api: Api, query: Any, visit: Callable[[int, Any], None]) -> None:
    """``visit(index, obj)`` for each row of a lazy loop over ``query`` (either API)."""
    if api.mode == "sync":
        for index, obj in enumerate(query):
            visit(index, obj)
        return

    async def loop() -> None:
        index = 0
        async for obj in query:
            visit(index, obj)
            index += 1

    assert api._loop is not None
    api._loop.run_until_complete(loop())


def test_a_lazy_loop_holds_one_page_at_most(api: Api, no_cyclic_gc: None) -> None:
    seen: list[weakref.ref[Any]] = []
    alive_while_page_two_is_built: list[Any] = []
    merge = api.session.merge

    def watching_merge(resource: Any, values: Any) -> Any:
        if len(seen) == 3 and not alive_while_page_two_is_built:  # page two's first row
            alive_while_page_two_is_built.extend(ref() is not None for ref in seen)
        return merge(resource, values)

    api.session.merge = watching_merge
    _walk(api, api.of(Experiment).query(api.session).page_size(3), lambda _, obj: seen.append(
        weakref.ref(obj)))  # fmt: skip
    assert len(seen) == 7
    # The loop dropped page one's objects: nothing else held them while page two was read
    # but the loop's variable, which holds the last one until the next arrives.
    assert alive_while_page_two_is_built == [False, False, True]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_read_response_is_freed_without_the_cyclic_collector(
    mode: str, no_cyclic_gc: None
) -> None:
    body = b'{"experiments": [], "pagination": {}}' * 1000
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    call = Call("GET", "/api/v1/experiments", read_only=True)
    if mode == "sync":
        transport = Transport("http://master", http_transport=mock)
        response = transport.run(send(call))
        transport.close()
    else:
        aio = AsyncTransport("http://master", http_transport=mock)

        async def get() -> httpx.Response:
            try:
                return await aio.run(send(call))
            finally:
                await aio.aclose()

        response = asyncio.run(get())
    assert response.content == body  # still readable
    freed = weakref.ref(response)
    del response
    assert freed() is None  # httpx's stream no longer points back to it


def test_pages_leave_the_application_s_frozen_objects_frozen(session: detorm.Session) -> None:
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert len(Experiment.query(session).page_size(3).all()) == 7
        # Still frozen (gc.unfreeze() would have emptied the permanent generation: 0); a few
        # frozen objects may have been freed meanwhile.
        assert gc.get_freeze_count() > frozen // 2
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def test_pages_keep_the_collector_enabled_and_its_young_generation_small(
    session: detorm.Session,
) -> None:
    assert gc.isenabled() and gc.get_freeze_count() == 0
    rows = Experiment.query(session).all()
    assert len(rows) == 7
    assert gc.isenabled() and gc.get_freeze_count() == 0
    # The page's objects went to the oldest generation: the young one holds only what was
    # made after the page (threshold: 700 by default).
    assert gc.get_count()[0] < gc.get_threshold()[0]


def _experiment(key: int) -> Experiment:
    return construct(Experiment, {"id": key, "name": f"e{key}"}, None)


def test_identity_entries_follow_their_objects(no_cyclic_gc: None) -> None:
    identity = IdentityMap()
    first = _experiment(1)
    identity.add(first)
    assert identity.get(Experiment, 1) is first and len(identity) == 1
    del first
    assert identity.get(Experiment, 1) is None
    assert len(identity) == 0 and list(identity) == []
    assert identity._refs == {}  # the dead object's entry went with it


def test_an_old_object_s_death_leaves_its_successor_in_place(no_cyclic_gc: None) -> None:
    identity = IdentityMap()
    old = _experiment(5)
    identity.add(old)
    new = _experiment(5)
    identity.add(new)  # as a merge does once the old one is no longer found
    del old  # its callback must not drop the new entry
    assert identity.get(Experiment, 5) is new
    identity.discard(new)
    assert identity.get(Experiment, 5) is None
