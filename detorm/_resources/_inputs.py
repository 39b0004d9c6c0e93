"""Checks of the caller's input, shared by every public entry point.

Each check raises before anything is sent: :class:`~detorm.errors.InvalidType` for a value of
the wrong type (also a ``TypeError``), and for a value of the right type that the master would
refuse, the error class the caller names (``InvalidValue``; ``QueryError`` inside queries;
``ConfigurationError`` for session options). Messages name what was wrong and what is valid.
"""

from __future__ import annotations

import math
import reprlib
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ..errors import DetormError, InvalidType, InvalidValue

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "check_id",
    "check_int",
    "check_iterable",
    "check_json_object",
    "check_number",
    "check_seconds",
    "check_text",
    "require",
    "shown",
]

# The master's ids, limits and offsets are proto int32; counts and sizes at most int64.
INT32_MAX: Final = 2**31 - 1
INT64_MAX: Final = 2**63 - 1

_SHOWN: Final = reprlib.Repr()  # (keyword arguments only from Python 3.12)
_SHOWN.maxstring = _SHOWN.maxother = 60


def shown(value: object) -> str:
    """A short repr for an error message (a huge value is cut, not printed whole)."""
    return _SHOWN.repr(value)


def _type_name(value: object) -> str:
    return type(value).__name__


def require(
    where: str,
    value: object,
    expected: type | tuple[type, ...],
    what: str,
    *,
    secret: bool = False,
) -> None:
    """``value`` must be an instance of ``expected`` (``what`` describes it); bools are not
    numbers here, although Python counts them as ints. A ``secret`` is never shown."""
    if isinstance(value, expected) and (type(value) is not bool or _takes_bool(expected)):
        return
    given = _type_name(value) if secret else f"{_type_name(value)} ({shown(value)})"
    raise InvalidType(f"{where} must be {what}, not {given}")


def _takes_bool(expected: type | tuple[type, ...]) -> bool:
    return expected is bool or (isinstance(expected, tuple) and bool in expected)


def check_int(
    where: str,
    value: object,
    *,
    low: int,
    high: int,
    error: type[DetormError] = InvalidValue,
    what: str = "an int",
) -> int:
    """An int (not a bool) within ``low..high``."""
    require(where, value, int, what)
    assert isinstance(value, int)
    if not low <= value <= high:
        raise error(f"{where} must be an int in {low}..{high}, not {value}")
    return value


def check_id(
    where: str, value: object, *, error: type[DetormError] = InvalidValue, what: str = "an id"
) -> int:
    """The id of an object on the master: a positive int32 (ids are SERIAL columns)."""
    return check_int(where, value, low=1, high=INT32_MAX, error=error, what=what)


def check_number(where: str, value: object, *, error: type[DetormError] = InvalidValue) -> float:
    """A finite int or float (JSON has no NaN or infinity, and the master cannot compare them)."""
    require(where, value, (int, float), "a number")
    assert isinstance(value, int | float)
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"{where} must be a finite number, not {value}")
    return value


def check_seconds(
    where: str, value: object, *, error: type[DetormError], zero: bool = False
) -> float:
    """A duration in seconds: finite, > 0 (>= 0 with ``zero``), and short enough for the
    platform's clocks (``threading.TIMEOUT_MAX``)."""
    seconds = check_number(where, value, error=error)
    if not (0 <= seconds if zero else 0 < seconds) or seconds > threading.TIMEOUT_MAX:
        low = "[0" if zero else "(0"
        raise error(
            f"{where} must be a number of seconds in {low}, {threading.TIMEOUT_MAX:g}], "
            f"not {seconds}"
        )
    return seconds


def check_text(where: str, value: str, *, error: type[DetormError] = InvalidValue) -> str:
    """Text the master can store: Postgres text and jsonb cannot hold a NUL character."""
    if "\x00" in value:
        raise error(f"{where} cannot contain a NUL character (\\x00): {shown(value)}")
    return value


def check_json_object(where: str, value: object) -> None:
    """A google.protobuf.Struct: a dict of str keys to JSON values (finite numbers only)."""
    require(where, value, dict, "a dict of str to JSON values")
    _check_json(where, value)


def _check_json(where: str, value: object) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        check_text(where, value)
    elif isinstance(value, float):
        check_number(where, value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            require(f"{where} key {shown(key)}", key, str, "a str (JSON object keys are)")
            check_text(f"{where} key", key)
            _check_json(f"{where}[{key!r}]", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(f"{where}[{index}]", item)
    else:
        raise InvalidType(
            f"{where} must be a JSON value (dict, list, str, int, float, bool or None), "
            f"not {_type_name(value)} ({shown(value)})"
        )


def check_iterable(where: str, value: object, what: str) -> list[Any]:
    """The items of a collection given where one is expected (a str or a dict is refused: it
    would be taken apart into characters or keys)."""
    if isinstance(value, list | tuple | set | frozenset):  # the usual case, no ABC checks
        return list(value)
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidType(f"{where} must be {what}, not {_type_name(value)} ({shown(value)})")
    return list(value)
