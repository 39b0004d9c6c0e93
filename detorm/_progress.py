"""Progress bars of long metric reads, downloads and large commits: optional, on stderr, and
only where someone watches.

Every call that can draw one takes ``progress`` (and the session has a ``progress`` option, the
default of its calls): ``None``, the default, draws a tqdm bar when tqdm is installed (the
``progress`` extra) and stderr is a terminal or the code runs in a Jupyter notebook, after half
a second (a quick read draws nothing); ``True`` always draws one (tqdm, else a plain text bar, as
detorm drew before tqdm was optional); ``False`` never. tqdm is imported lazily, when a bar is
drawn: without it nothing changes but the bar's look.

Ops draw the bars themselves (like logging, a bar is not an effect of the network): the sync
and async APIs run the same ops, so they draw the same bars. This module imports nothing of
detorm's.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Final, Self

__all__ = ["Bar", "check_progress", "choose", "progress_bar", "wanted"]

# An automatic bar appears only after this many seconds (tqdm's ``delay``).
AUTO_DELAY: Final = 0.5


def check_progress(where: str, value: object) -> bool | None:
    """A ``progress`` argument or option: True, False or None (else InvalidType)."""
    if value is None or isinstance(value, bool):
        return value
    from .errors import InvalidType  # (errors.py imports nothing that imports this module)

    raise InvalidType(
        f"{where} must be True, False or None (automatic), not {type(value).__name__}"
    )


def choose(call: bool | None, session: bool | None) -> bool | None:
    """The progress choice of one call: its own argument, else its session's option."""
    return call if call is not None else session


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell); IPython is not imported
    when the program has not imported it."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _watched() -> bool:
    try:
        return sys.stderr.isatty() or in_notebook()
    except (AttributeError, ValueError):  # stderr replaced by an object without isatty, or closed
        return False


def _tqdm_class() -> Any:
    """tqdm's bar class (its notebook widget in a notebook), or None when tqdm is missing."""
    try:
        if in_notebook():
            from tqdm.auto import tqdm as auto  # type: ignore[import-untyped, unused-ignore]

            return auto
        from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return None
    return tqdm


def wanted(choice: bool | None) -> bool:
    """Whether ``choice`` draws a bar here (None: tqdm installed and someone watching)."""
    if choice is not None:
        return choice
    return _watched() and _tqdm_class() is not None


class Bar:
    """A counter drawn on stderr (tqdm, or plain text when forced without tqdm), or one that
    draws nothing. ``unit="B"`` counts bytes (shown in kB/MB)."""

    def __init__(self, total: int | None, label: str, unit: str, choice: bool | None) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self._tqdm: Any = None
        self._text = False
        self._drawn = 0.0
        if choice is False or (choice is None and not _watched()):
            return
        tqdm = _tqdm_class()
        if tqdm is not None:
            self._tqdm = tqdm(
                total=total, desc=label, unit=unit, unit_scale=unit == "B", file=sys.stderr,
                delay=AUTO_DELAY if choice is None else 0, leave=True,
            )  # fmt: skip
        elif choice:
            self._text = True

    @property
    def drawn(self) -> bool:
        """Whether this bar draws anything."""
        return self._tqdm is not None or self._text

    def __call__(self, count: int) -> None:
        """``count`` more done."""
        self.done += count
        if self._tqdm is not None:
            self._tqdm.update(count)
        elif self._text and time.monotonic() - self._drawn >= 0.1:
            self._draw()

    def advance_to(self, done: int) -> None:
        """``done`` done in all (a count that only grows)."""
        if done > self.done:
            self(done - self.done)

    def _draw(self, end: str = "") -> None:
        self._drawn = time.monotonic()
        scale, unit = (1e6, "MB") if self.unit == "B" else (1, self.unit)
        done = f"{self.done / scale:.1f}" if scale != 1 else str(self.done)
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30)
            total = f"{self.total / scale:.1f}" if scale != 1 else str(self.total)
            line = f"\r{self.label} [{bar:<30}] {share:4.0%} {done}/{total} {unit}"
        else:
            line = f"\r{self.label} {done} {unit}"
        sys.stderr.write(line + end)
        sys.stderr.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._text:
            self._draw("\n")
        self._tqdm, self._text = None, False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    total: int | None, label: str, *, unit: str = "B", choice: bool | None = None
) -> Bar:
    """A bar of ``total`` ``unit``s (None: unknown) as ``choice`` asks (see the module)."""
    return Bar(total, label, unit, choice)
