"""Both APIs in one calling convention, so that one test body checks the sync API and its async
twin: ``api(x)`` is ``x`` for the sync API and the awaited ``x`` for the async one (which must
be awaitable: an async operation that answers at once would be a parity bug), ``api.list(it)``
drains an iterator or an async iterator, ``api.begin()`` enters either ``begin()``."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Literal, Self

import detorm
import detorm.aio

Mode = Literal["sync", "async"]
MODES: tuple[Mode, ...] = ("sync", "async")


class Api:
    def __init__(self, mode: Mode, url: str, environ: Mapping[str, str], **options: Any) -> None:
        self.mode = mode
        self.mod: ModuleType = detorm if mode == "sync" else detorm.aio
        self._loop = asyncio.new_event_loop() if mode == "async" else None
        factory = detorm.Session if mode == "sync" else detorm.aio.AsyncSession
        options = {"user": "determined", "password": "", **options}
        options = {name: value for name, value in options.items() if value is not None}
        self.session: Any = factory(url, environ=environ, **options)

    def __call__(self, value: Any) -> Any:
        if self._loop is None:
            assert not inspect.isawaitable(value)
            return value
        assert inspect.isawaitable(value), f"{value!r} should be awaited in the async API"
        return self._loop.run_until_complete(value)

    def list(self, iterable: Any) -> list[Any]:
        if self._loop is None:
            return list(iterable)
        assert hasattr(iterable, "__aiter__") and not hasattr(iterable, "__iter__")

        async def drain() -> list[Any]:
            return [item async for item in iterable]

        return self._loop.run_until_complete(drain())

    @contextmanager
    def begin(self) -> Iterator[None]:
        if self._loop is None:
            with self.session.begin():
                yield
            return
        manager = self.session.begin()
        self._loop.run_until_complete(manager.__aenter__())
        try:
            yield
        except BaseException as err:
            self._loop.run_until_complete(manager.__aexit__(type(err), err, err.__traceback__))
            raise
        self._loop.run_until_complete(manager.__aexit__(None, None, None))

    def close(self) -> None:
        if self._loop is None:
            self.session.close()
            return
        self._loop.run_until_complete(self.session.close())
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def of(self, resource: type[Any]) -> Any:
        """This API's class of a resource given by either API's class."""
        return getattr(self.mod, resource.__name__)

    def __getattr__(self, name: str) -> Any:
        # The API's classes: api.Experiment, api.Trial...
        return getattr(self.mod, name)
