"""Recursion without Python's call stack, for documents nested as deep as Go accepts.

Go's ``encoding/json`` takes 10,000 levels of nesting, and Go's stacks grow as needed, so the
master walks such a document recursively. Python stops near 1,000 frames. A recursive function
written as a generator that ``yield``s its recursive calls::

    def depth(node):
        children = [(yield depth(child)) for child in node.children]
        return 1 + max(children, default=0)

runs with :func:`run` on an explicit stack, whatever the depth. An exception raised by a call
reaches its caller at the ``yield``, as it would with plain recursion.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

__all__ = ["Steps", "run"]

T = TypeVar("T")

Steps = Generator[Any, Any, T]
"""A call of a generator-recursive function: yields its recursive calls, returns its result."""


def run(call: Steps[T]) -> T:
    """The result of ``call``, running every recursive call it yields."""
    stack: list[Steps[Any]] = [call]
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            if error is None:
                inner = stack[-1].send(result)
            else:
                pending, error = error, None
                inner = stack[-1].throw(pending)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value  # type: ignore[no-any-return]
            result = done.value
        except Exception as err:  # raised by this call: it reaches the caller at its yield
            stack.pop()
            if not stack:
                raise
            error = err
        else:
            stack.append(inner)
            result = None
