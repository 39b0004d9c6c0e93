"""Query parameters as grpc-gateway v1.16 reads them (``runtime/query.go``).

A key matches a request field by its proto name (``experiment_id_filter.incl``) or JSON name
(``experimentIdFilter.incl``); unknown keys are ignored; a scalar given several times takes the
first value; repeated fields take every value; a value that does not parse is a 400
``InvalidArgument`` whose message is the Go parse error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from detorm._wire import Timestamp, WireEnum

from . import _go as go
from ._errors import invalid_argument

__all__ = ["QueryParams", "parse_int"]

E = TypeVar("E", bound=WireEnum)

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def parse_int(text: str, *, bits: int = 32) -> int:
    """``strconv.ParseInt(text, 0, bits)``: base prefixes (a leading 0 is octal), ``_``
    separators, range-checked; a :class:`ValueError` with Go's message."""
    return go.parse_int(text, 0, bits)


def _parse_bool(text: str) -> bool:
    return go.parse_bool(text)


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None


class QueryParams:
    """Typed access to a request's query string, by snake_case field path."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in items:
            self._values.setdefault(key, []).append(value)

    def _all(self, name: str) -> list[str]:
        camel = ".".join(_camel(part) for part in name.split("."))
        return self._values.get(name, []) + (self._values.get(camel, []) if camel != name else [])

    def _first(self, name: str) -> str | None:
        values = self._all(name)
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return bool(self._all(name))

    def get_str(self, name: str, default: str = "") -> str:
        value = self._first(name)
        return default if value is None else value

    def get_int(self, name: str, default: int = 0, *, bits: int = 32) -> int:
        value = self._first(name)
        if value is None:
            return default
        try:
            return parse_int(value, bits=bits)
        except ValueError as err:
            raise invalid_argument(str(err)) from None

    def get_optional_int(self, name: str) -> int | None:
        """An ``optional int32`` (or an ``Int32Value`` wrapper): None when absent."""
        return self.get_int(name) if self.has(name) else None

    def get_float(self, name: str, default: float = 0.0) -> float:
        value = self._first(name)
        if value is None:
            return default
        try:
            return _parse_float(value)
        except ValueError as err:
            raise invalid_argument(str(err)) from None

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self._first(name)
        if value is None:
            return default
        try:
            return _parse_bool(value)
        except ValueError as err:
            raise invalid_argument(str(err)) from None

    def get_bool_value(self, name: str) -> bool | None:
        """A ``google.protobuf.BoolValue``: only ``true``/``false``; None when absent."""
        value = self._first(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise invalid_argument(f"bad BoolValue: {value}")
        return value == "true"

    def get_timestamp(self, name: str) -> Timestamp | None:
        value = self._first(name)
        if value is None or value == "null":
            return None
        try:
            moment = go.parse_rfc3339nano(value)
        except go.GoError as err:
            raise invalid_argument(f"bad Timestamp: {err}") from None
        try:
            return Timestamp.parse(value)
        except ValueError:  # a form Go accepts and the wire parser does not (one-digit hour...)
            return Timestamp(
                moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
                moment.microsecond, tzinfo=moment.tzinfo,
            )  # fmt: skip

    def get_strs(self, name: str) -> list[str]:
        return self._all(name)

    def get_ints(self, name: str, *, bits: int = 32) -> list[int]:
        try:
            return [parse_int(v, bits=bits) for v in self._all(name)]
        except ValueError as err:
            raise invalid_argument(str(err)) from None

    def get_enum(self, name: str, cls: type[E], go_type: str) -> E:
        value = self._first(name)
        if value is None:
            return cls.lookup(0)
        return _enum(value, cls, go_type)

    def get_enums(self, name: str, cls: type[E], go_type: str) -> list[E]:
        return [_enum(v, cls, go_type) for v in self._all(name)]


def _enum(text: str, cls: type[E], go_type: str) -> E:
    # convertEnum: the exact proto name, else an integer that is a known number.
    member = cls._value2member_map_.get(text)
    if member is not None:
        return member  # type: ignore[return-value]
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is not None:
        for candidate in cls:
            if candidate.number == number:
                return candidate
    raise invalid_argument(f"{text} is not a valid {go_type}")


def query_from_mapping(values: Mapping[str, Sequence[str]]) -> QueryParams:
    """Build from ``{key: [values]}`` (tests)."""
    return QueryParams([(k, v) for k, vs in values.items() for v in vs])
