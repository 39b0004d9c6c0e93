"""Waiting for an object to reach a state: re-read it with backoff until a condition holds.

The master pushes no state changes over REST (only streams of logs and metrics), so every
``wait`` in both APIs - tasks, experiments, trials, an experiment's first trial - is this one
loop of single-object GETs (:func:`poll_until`), on the transport's clock and sleep, so tests
can run it on a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from .._resources._base import Resource
from .._resources._inputs import check_seconds
from ..errors import InvalidValue, WaitTimeout
from ._effects import Op, sleep

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

R = TypeVar("R", bound=Resource)

__all__ = ["WAIT_INTERVALS", "poll_until"]

# Polling: the first poll after 0.25 s, each next one 1.5 times later, at most every 5 s: a
# wait of an hour costs about 730 requests (12 a minute once past the first 20 s), a task
# that ends within a second 4.
WAIT_INTERVALS: Final = (0.25, 1.5, 5.0)


def poll_until(
    session: Session,
    obj: R,
    done: Callable[[R], bool],
    still: Callable[[R], str],
    *,
    timeout: float | None,
    interval: float | None,
    where: str = "wait",
) -> Op[R]:
    """Refresh ``obj`` (one GET) until ``done(obj)``; then return it. ``done`` may raise to
    stop early (a state that will never change on its own). After ``timeout`` seconds,
    :class:`~detorm.errors.WaitTimeout` says ``still(obj)`` (what the object still is).

    ``interval`` fixes the period between polls; without it they back off as
    :data:`WAIT_INTERVALS` says. A poll is never started that could not end before the
    deadline's next check: the wait gives up as soon as the next sleep would pass it.
    """
    if timeout is not None:
        check_seconds(f"{where}(timeout)", timeout, error=InvalidValue, zero=True)
    if interval is not None:
        check_seconds(f"{where}(interval)", interval, error=InvalidValue)
    clock = session.transport._clock
    deadline = None if timeout is None else clock() + timeout
    first, growth, cap = WAIT_INTERVALS
    delay = first if interval is None else interval
    while True:
        yield from session._refresh(obj)
        if done(obj):
            return obj
        if deadline is not None and clock() + delay > deadline:
            raise WaitTimeout(f"{still(obj)} after {timeout} s")
        yield from sleep(delay)
        if interval is None:
            delay = min(delay * growth, cap)
