"""JSON conventions of the Determined master (grpc-gateway v1 + jsonpb, ``EmitDefaults``).

Every wire model in this package derives from :class:`WireModel` and spells its scalar fields with
the annotated types below, so that both the SDK and detorm.local read and write exactly what a
real master sends:

* field names are lowerCamelCase (``alias_generator``), snake_case is accepted on input;
* int64/uint64 travel as JSON strings (:data:`Int64`), parsed to ``int``;
* doubles may be ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` strings (:data:`Double`);
* timestamps are RFC 3339 with 0, 3, 6 or 9 fraction digits (:class:`Timestamp`, which keeps
  nanoseconds so that a timestamp re-serialises to the very string the master sent);
* absent, ``null`` and zero values are all accepted; unknown fields are kept (``extra="allow"``).

Field presence follows jsonpb with ``EmitDefaults``: scalars, lists and maps are always written
(zero values included), unset message fields are written as ``null``, and fields inside a oneof or
declared proto3 ``optional`` are left out when unset (:func:`absent`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Self, SupportsIndex

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

__all__ = [
    "Double",
    "Int64",
    "JSONValue",
    "Struct",
    "Timestamp",
    "WireModel",
    "absent",
    "dump_double",
]

JSONValue = Any
"""Any JSON value (``google.protobuf.Value``)."""


class _Kept:
    """Validates a Struct: a ``dict`` is kept as it is, not copied (from JSON, or another
    mapping, it is read as ``dict[str, Any]``).

    A Struct holds any JSON below it and pydantic checks nothing there, but ``dict[str, Any]``
    copies the dict: an experiment's config and hyperparameters, read by the thousand from a
    page, were copied for nothing (a quarter of a page's validation).
    """

    @staticmethod
    def __get_pydantic_core_schema__(
        source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        copied = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=copied,
            python_schema=core_schema.union_schema(
                [core_schema.is_instance_schema(dict), copied], mode="left_to_right"
            ),
        )


Struct = Annotated[dict[str, Any], _Kept]
"""A JSON object (``google.protobuf.Struct``), kept as sent, NaN strings included."""


class WireModel(BaseModel):
    """Base of every Determined message.

    ``model_dump_wire()`` writes what a master writes; ``model_dump_wire(exclude_unset=True)``
    writes back exactly the keys that were read, which is how a parsed response re-serialises.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=False,
        ser_json_inf_nan="strings",
        protected_namespaces=(),
        # Schemas are built on a model's first use, not at import: `import detorm` stays cheap.
        defer_build=True,
    )

    @classmethod
    def _zero_defaults(cls) -> dict[str, Any]:
        """Python names and aliases of the fields whose zero value is not None (a null sent for
        one reads as zero).

        Computed on first use, not when the class is made: a default factory may build another
        model, whose schema (deferred, see ``defer_build``) would then be built at import.
        """
        zeros: dict[str, Any] | None = cls.__dict__.get("_zeros")
        if zeros is None:
            zeros = {}
            for name, field in cls.model_fields.items():
                if field.default is not None or field.default_factory is not None:
                    zero = field.get_default(call_default_factory=True)
                    zeros[name] = zero
                    if field.alias:
                        zeros[field.alias] = zero
            type.__setattr__(cls, "_zeros", zeros)
        return zeros

    @model_validator(mode="before")
    @classmethod
    def _null_reads_as_zero(cls, data: Any) -> Any:
        # jsonpb never sends null for a scalar, list or map, but hand-made JSON does.
        if isinstance(data, dict) and None in data.values():
            zeros = cls._zero_defaults()
            nulls = [k for k, v in data.items() if v is None and k in zeros]
            if nulls:
                data = dict(data)
                for key in nulls:
                    data[key] = zeros[key]
        return data

    def model_dump_wire(self, *, exclude_unset: bool = False) -> dict[str, Any]:
        """The JSON object a master would send for this message."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=exclude_unset)

    def model_dump_wire_json(self, *, exclude_unset: bool = False) -> bytes:
        """As :meth:`model_dump_wire`, encoded."""
        return self.model_dump_json(by_alias=True, exclude_unset=exclude_unset).encode()


def _is_none(value: object) -> bool:
    return value is None


def absent() -> Any:
    """Default for a oneof or proto3 ``optional`` field: omitted from output while unset."""
    return Field(default=None, exclude_if=_is_none)


# --- null-ish strings -----------------------------------------------------------------------
# Hand-edited upstream fixtures carry the Python repr "None" where a master would send null
# (shared/fixtures/determined-responses/README.md); typed fields read it as null.
_NULL_STRINGS: Final = frozenset({"None"})


def _nullish(value: object) -> bool:
    return value is None or (isinstance(value, str) and value in _NULL_STRINGS)


# --- int64 ----------------------------------------------------------------------------------
# Read by pydantic-core's own lax int, which takes a string of ASCII digits (surrounding
# whitespace and a sign allowed) as jsonpb's strconv.ParseInt does: no Python call per value,
# which a page of thousands of rows would pay for each int64 field.


def _dump_int64(value: int) -> str:
    return str(value)


Int64 = Annotated[int, PlainSerializer(_dump_int64, return_type=str)]
"""int64/uint64: a JSON string on the wire (a number is accepted on input, as jsonpb does)."""


# --- double ---------------------------------------------------------------------------------
# pydantic-core's lax float reads "NaN", "Infinity" and "-Infinity" (any case, surrounding
# whitespace allowed) and numbers sent as strings itself: no Python call per value.


def dump_double(value: float) -> float | str:
    """A double as jsonpb writes it: NaN and infinities become strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


Double = Annotated[float, PlainSerializer(dump_double, return_type=Any)]
"""double/float: a JSON number, or ``"NaN"``/``"Infinity"``/``"-Infinity"``."""


# --- timestamps -----------------------------------------------------------------------------
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$"
)


class Timestamp(datetime):
    """A timezone-aware UTC ``datetime`` that keeps nanoseconds.

    ``datetime`` stops at microseconds; the master sends up to nanoseconds. The extra digits are
    kept in :attr:`nanosecond` so that :meth:`rfc3339` reproduces the master's string exactly
    (jsonpb writes 0, 3, 6 or 9 fraction digits, the fewest that hold the value).
    """

    _nanosecond: int = 0  # set on an instance only when not 0: most timestamps have none

    def __new__(cls, *args: Any, nanosecond: int = 0, **kwargs: Any) -> Self:
        self = super().__new__(cls, *args, **kwargs)
        if not 0 <= nanosecond <= 999:
            raise ValueError("nanosecond must be in 0..999")
        if nanosecond:
            self._nanosecond = nanosecond
        return self

    @property
    def nanosecond(self) -> int:
        """Nanoseconds beyond :attr:`microsecond` (0..999)."""
        return self._nanosecond

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse RFC 3339 (``Z`` or an offset; up to 9 fraction digits) into UTC."""
        if len(text) <= 27 and text.endswith("Z") and text[10:11] == "T":
            # The common case (0-6 fraction digits, UTC) through the C parser.
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                pass
            else:
                # datetime's own constructor: no nanoseconds to check (logs parse millions).
                return datetime.__new__(
                    cls, parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute,
                    parsed.second, parsed.microsecond, UTC,
                )  # fmt: skip
        match = _RFC3339.match(text.strip())
        if match is None:
            raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
        year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
        digits = (frac or "").ljust(9, "0")
        value = cls(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int(digits[:6]), tzinfo=UTC, nanosecond=int(digits[6:]),
        )  # fmt: skip
        if zulu or sign is None:
            return value
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        shifted = value - offset if sign == "+" else value + offset
        return cls.from_datetime(shifted, nanosecond=value.nanosecond)

    @classmethod
    def from_datetime(cls, value: datetime, *, nanosecond: int | None = None) -> Timestamp:
        """Convert any ``datetime`` (naive ones are taken as UTC)."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if nanosecond is None:
            nanosecond = value.nanosecond if isinstance(value, Timestamp) else 0
        return cls(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, tzinfo=UTC, nanosecond=nanosecond,
        )  # fmt: skip

    @classmethod
    def now(cls, tz: Any = None) -> Timestamp:  # tz ignored: always UTC, like the master
        return cls.from_datetime(datetime.now(UTC))

    def rfc3339(self) -> str:
        """The string jsonpb writes: UTC, ``Z``, 0/3/6/9 fraction digits."""
        base = (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
            f"T{self.hour:02d}:{self.minute:02d}:{self.second:02d}"
        )
        nanos = self.microsecond * 1000 + self._nanosecond
        if nanos == 0:
            return base + "Z"
        if nanos % 1_000_000 == 0:
            return f"{base}.{nanos // 1_000_000:03d}Z"
        if nanos % 1000 == 0:
            return f"{base}.{nanos // 1000:06d}Z"
        return f"{base}.{nanos:09d}Z"

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        # datetime pickles (and copies) by state bytes, which would drop the nanoseconds (the
        # disk cache pickles). __reduce_ex__, not __reduce__: datetime defines its own.
        return (Timestamp.parse, (self.rfc3339(),))

    def __repr__(self) -> str:
        return f"Timestamp({self.rfc3339()!r})"

    def __str__(self) -> str:
        return self.rfc3339()

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_timestamp,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _serialize_timestamp, when_used="json-unless-none"
            ),
            json_schema_input_schema=core_schema.str_schema(),
        )


def _validate_timestamp(value: object) -> Timestamp | None:
    if type(value) is str and value not in _NULL_STRINGS:  # what a master sends: at once
        return Timestamp.parse(value)
    if _nullish(value):
        return None
    if isinstance(value, Timestamp):
        return value
    if isinstance(value, datetime):
        return Timestamp.from_datetime(value)
    if isinstance(value, str):
        return Timestamp.parse(value)
    raise ValueError(f"expected an RFC 3339 timestamp string, got {type(value).__name__}")


def _serialize_timestamp(value: Timestamp) -> str:
    return value.rfc3339()
