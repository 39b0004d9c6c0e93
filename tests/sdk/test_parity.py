"""The async API is the sync API's twin: every public operation has an async twin with the same
name and signature (parameters, defaults, and return types modulo awaitables), and nothing more.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import detorm
import detorm.aio
from detorm._resources._relations import ToMany, ToOne

# Classes whose async twin has another name; the resources keep theirs.
RENAMED = {"Session": "AsyncSession", "Query": "AsyncQuery", "MetricsStream": "AsyncMetricsStream",
           "ProfilerStream": "AsyncProfilerStream", "Transport": "AsyncTransport"}  # fmt: skip
RENAMED |= {q: f"Async{q}" for q in detorm.__all__ if q.endswith("Query") and q != "Query"}
# What only the sync API needs: context-manager hooks have async names (``__aenter__``...).
SYNC_ONLY = {"__enter__", "__exit__", "__iter__"}
ASYNC_ONLY = {"__aenter__", "__aexit__", "__aiter__"}


def twin(name: str) -> str:
    return RENAMED.get(name, name)


def sync_facade() -> dict[str, Any]:
    """The sync API's sessions, queries, streams, resources and functions (the rest of
    ``detorm`` - conditions, enums, errors, values - is shared by both APIs)."""
    return {
        name: getattr(detorm, name)
        for name in detorm.__all__
        if hasattr(detorm.aio, twin(name))
        or name in RENAMED
        or getattr(getattr(detorm, name), "__module__", "") == "detorm._api._sync"
    }


def operations(cls: type) -> dict[str, Callable[..., Any]]:
    """Public methods and properties a class declares or inherits from the facade layer."""
    found: dict[str, Any] = {}
    for name in dir(cls):
        if name.startswith("_") and name not in SYNC_ONLY | ASYNC_ONLY | {"__getitem__"}:
            continue
        member = inspect.getattr_static(cls, name)
        if isinstance(member, property):
            found[name] = member.fget
        elif isinstance(member, (classmethod, staticmethod)):
            found[name] = member.__func__
        elif inspect.isfunction(member) or isinstance(member, (ToOne, ToMany)):
            found[name] = member  # a relationship: its name must match
    return found


def normalised(annotation: str) -> str:
    """An annotation with the async spellings mapped to the sync ones."""
    text = annotation
    for sync_name, async_name in RENAMED.items():
        text = re.sub(rf"\b{async_name}\b", sync_name, text)
    text = re.sub(r"\bAsyncIterator\b", "Iterator", text)
    text = re.sub(r"\bAwaitable\[(.*)\]", r"\1", text)
    return text.replace("Iterator[R] | Awaitable", "Iterator")


def signature(function: Callable[..., Any]) -> tuple[list[tuple[str, Any, Any, str]], str]:
    sig = inspect.signature(function)
    parameters = [
        (p.name, p.kind, p.default, normalised(str(p.annotation))) for p in sig.parameters.values()
    ]
    return parameters, normalised(str(sig.return_annotation))


def pairs() -> Iterator[tuple[str, Any, Any]]:
    for name, sync in sync_facade().items():
        yield name, sync, getattr(detorm.aio, twin(name), None)


@pytest.mark.parametrize(
    ("name", "sync", "twin_"), [(n, s, a) for n, s, a in pairs()], ids=[n for n, _, _ in pairs()]
)
def test_every_sync_operation_has_an_async_twin_with_the_same_signature(
    name: str, sync: Any, twin_: Any
) -> None:
    assert twin_ is not None, f"detorm.aio has no {twin(name)}"
    if not inspect.isclass(sync):
        assert signature(sync) == signature(twin_)
        return
    sync_ops, async_ops = operations(sync), operations(twin_)
    missing = set(sync_ops) - SYNC_ONLY - set(async_ops)
    extra = set(async_ops) - ASYNC_ONLY - set(sync_ops)
    assert not missing, f"{twin(name)} lacks {sorted(missing)}"
    assert not extra, f"{twin(name)} has {sorted(extra)}, which {name} has not"
    for op in sorted(set(sync_ops) & set(async_ops)):
        if isinstance(sync_ops[op], (ToOne, ToMany)):
            assert type(sync_ops[op]) is type(async_ops[op]), f"{name}.{op}"
            continue
        assert signature(sync_ops[op]) == signature(async_ops[op]), f"{name}.{op}"


def test_operations_that_do_io_are_awaited_and_the_others_are_not() -> None:
    # Building a query, reading an attribute, explain() and pending() send nothing: they stay
    # plain calls; everything that talks to the master is a coroutine (or an async iterator).
    session, query = detorm.aio.AsyncSession, detorm.aio.AsyncQuery
    for cls, name in [(session, "get"), (session, "commit"), (query, "all"), (query, "count"),
                      (detorm.aio.Experiment, "refresh"), (detorm.aio.Checkpoint, "download"),
                      (detorm.aio.AsyncExperimentQuery, "archive"),
                      (detorm.aio.Experiment, "download_tensorboard"),
                      (detorm.aio.Experiment, "delete_tensorboard_files")]:  # fmt: skip
        assert inspect.iscoroutinefunction(getattr(cls, name)), f"{cls.__name__}.{name}"
    for cls, name in [(query, "filter"), (query, "explain"), (session, "pending"),
                      (session, "query"), (detorm.aio.Trial, "logs")]:  # fmt: skip
        assert not inspect.iscoroutinefunction(getattr(cls, name, None)), f"{cls.__name__}.{name}"


def test_the_async_docstrings_are_the_sync_ones() -> None:
    for name, sync, async_ in pairs():
        if not inspect.isclass(sync):
            continue
        for op, function in operations(sync).items():
            twin_function = operations(async_).get(op)
            if inspect.isfunction(twin_function) and function.__doc__:
                assert twin_function.__doc__, f"{twin(name)}.{op} has no docstring"
