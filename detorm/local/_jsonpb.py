"""Request bodies as grpc-gateway v1.16 decodes them (``runtime/marshal_jsonpb.go``), with
``github.com/golang/protobuf`` v1.5.4 ``jsonpb`` (``jsonpb/decode.go``).

The gateway reads one JSON value with ``json.Decoder`` (an empty body is ``io.EOF``, which it
ignores; anything after the first value is never read), then ``jsonpb`` walks it against the
request message: a top-level ``null`` is an empty message, fields are looked up by proto name and
then JSON name (the JSON name wins), unknown keys are ignored, ``null`` leaves a field unset, and the
first field (in declaration order) that does not fit stops the decode with the error Go's
``encoding/json`` gives for it. Numbers may be quoted (``trimQuote``), enums are a name or a
number, and the well-known types have their JSON forms.

:func:`decode` returns the message as a plain JSON document in canonical form (JSON names, unset
fields left out, numbers as numbers, enums by name) for the handlers' pydantic models, or raises
:class:`~detorm.local._go.GoError` with the message the master puts in its 400 body.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final

from ._gateway_schema import ENUMS, MESSAGES
from ._go import MAX_DEPTH, GoError, json_syntax_error, parse_float, parse_rfc3339nano, quote
from ._trampoline import Steps, run

__all__ = ["Number", "decode", "read_json", "unmarshal"]


class Number:
    """A JSON number, kept as its literal text (Go's errors quote it)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Number({self.text})"

    def is_integral(self) -> bool:
        return "." not in self.text and "e" not in self.text and "E" not in self.text

    def python(self) -> int | float:
        return int(self.text) if self.is_integral() else float(self.text)


class RawString(str):
    """A JSON string that had escapes: ``raw`` is its source text, quotes included."""

    raw: str


def _raw(value: str) -> str:
    return getattr(value, "raw", None) or '"' + value + '"'


class _Reject(Exception):
    pass


def _reject(_name: str) -> Any:
    raise _Reject


_DECODER: Final = json.JSONDecoder(
    parse_int=Number, parse_float=Number, parse_constant=_reject, strict=True
)
_SPACE: Final = b" \t\r\n"


def read_json(raw: bytes) -> tuple[bool, Any]:
    """``json.Decoder.Decode`` of a body: (False, None) for an empty body, else (True, value).

    Strings carry their source text when it differs from their value (escapes). Raises
    :class:`GoError` with Go's syntax error."""
    start = len(raw) - len(raw.lstrip(_SPACE))
    if start == len(raw):
        return False, None
    value: Any = None
    try:
        value, _ = _DECODER.raw_decode(raw.decode("utf-8"), start)
        # Python's depth limit is the recursion limit, which programs raise (mypy's API sets
        # 16,384): a body that may nest deeper than Go's scanner allows is left to the scanner.
        valid = not isinstance(value, Number) and _nests_within_go_depth(raw)
    except (ValueError, _Reject, RecursionError):
        valid = False
    if valid:
        # Python and Go agree on valid input that does not start with a number; strings with
        # escapes are parsed again to keep their source text.
        return True, value if b"\\" not in raw else _Parser(raw, start).value()
    # A top-level number (Python reads a prefix of "1.x"), bad UTF-8 or a syntax error: Go's
    # scanner decides, and the exact parser reads what it accepts.
    error = json_syntax_error(raw, decoder=True)
    if error is not None:
        raise GoError(error)
    return True, _Parser(raw, start).value()


def _nests_within_go_depth(raw: bytes) -> bool:
    """True when ``raw`` cannot nest deeper than Go's limit (it has fewer brackets)."""
    return raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH


_WS: Final = re.compile(rb"[ \t\r\n]+")
_NUMBER: Final = re.compile(rb"[-+0-9.eE]+")
_PLAIN: Final = re.compile(rb'[^"\\]*')


class _Parser:
    """A JSON parser over bytes that keeps what Go keeps: number literals, string source text,
    invalid UTF-8 as U+FFFD (only called on input Go's scanner accepted)."""

    def __init__(self, data: bytes, start: int) -> None:
        self.data = data
        self.pos = start

    def _ws(self) -> None:
        match = _WS.match(self.data, self.pos)
        if match:
            self.pos = match.end()

    def value(self) -> Any:
        """The value at the current position. Containers are filled from an explicit stack:
        Go takes 10,000 levels of nesting, Python's recursion about 1,000."""
        open_containers: list[tuple[dict[str, Any] | list[Any], str]] = []  # and the key to fill
        while True:
            self._ws()
            start = self.data[self.pos]
            if start in b"{[":
                self.pos += 1
                self._ws()
                if self.data[self.pos] != (ord("}") if start == ord("{") else ord("]")):
                    container: dict[str, Any] | list[Any] = {} if start == ord("{") else []
                    key = self._key() if start == ord("{") else ""
                    open_containers.append((container, key))
                    continue  # on to its first value
                self.pos += 1
                item: Any = {} if start == ord("{") else []
            else:
                item = self._scalar()
            while open_containers:  # put the item in its container; close those that end
                container, key = open_containers[-1]
                if isinstance(container, dict):
                    container[key] = item
                else:
                    container.append(item)
                self._ws()
                separator = self.data[self.pos]
                self.pos += 1
                if separator == ord(","):
                    if isinstance(container, dict):
                        open_containers[-1] = (container, self._key())
                    break
                open_containers.pop()
                item = container
            else:
                return item

    def _key(self) -> str:
        """An object key and its colon."""
        self._ws()
        key = str(self._string())
        self._ws()
        self.pos += 1  # ':'
        return key

    def _scalar(self) -> Any:
        if self.data[self.pos] == ord('"'):
            return self._string()
        for word, result in ((b"true", True), (b"false", False), (b"null", None)):
            if self.data.startswith(word, self.pos):
                self.pos += len(word)
                return result
        return self._number()

    def _number(self) -> Number:
        match = _NUMBER.match(self.data, self.pos)
        assert match is not None
        self.pos = match.end()
        return Number(match.group().decode())

    def _string(self) -> str:
        start = self.pos
        self.pos += 1
        data = self.data
        chunks: list[str] = []
        while True:
            end = _PLAIN.match(data, self.pos).end()  # type: ignore[union-attr]
            chunks.append(data[self.pos : end].decode("utf-8", "replace"))
            self.pos = end + 1
            if data[end] == ord('"'):
                break
            escape = chr(data[self.pos])
            if escape == "u":
                code = int(data[self.pos + 1 : self.pos + 5], 16)
                self.pos += 5
                if 0xD800 <= code < 0xDC00 and data[self.pos : self.pos + 2] == b"\\u":
                    low = int(data[self.pos + 2 : self.pos + 6], 16)
                    if 0xDC00 <= low < 0xE000:
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        self.pos += 6
                chunks.append("\ufffd" if 0xD800 <= code < 0xE000 else chr(code))
            else:
                chunks.append(
                    {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}.get(escape, escape)
                )
                self.pos += 1
        text = RawString("".join(chunks))
        text.raw = data[start : self.pos].decode("utf-8", "surrogateescape")
        return text


# --- encoding/json type errors ----------------------------------------------------------------------


def _kind(value: Any) -> str:
    """What ``json.UnmarshalTypeError`` calls a JSON value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Number):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(value: Any, go_type: str, *, literal: bool = False) -> GoError:
    what = _kind(value)
    if literal and isinstance(value, Number):
        what = f"number {value.text}"
    return GoError(f"json: cannot unmarshal {what} into Go value of type {go_type}")


_MAP: Final = "map[string]json.RawMessage"
_LIST: Final = "[]json.RawMessage"
_INT_RANGES: Final = {
    "int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1),
}  # fmt: skip
_GO_INT: Final = {
    "int32": "int32", "sint32": "int32", "sfixed32": "int32", "int64": "int64",
    "sint64": "int64", "sfixed64": "int64", "uint32": "uint32", "fixed32": "uint32",
    "uint64": "uint64", "fixed64": "uint64",
}  # fmt: skip


def _from_source(text: str) -> Any:
    """``json.Unmarshal`` of source text: Go's syntax error, or the value."""
    data = text.encode("utf-8", "surrogateescape")
    error = json_syntax_error(data, decoder=False)
    if error is not None:
        raise GoError(error)
    start = len(data) - len(data.lstrip(_SPACE))
    return _Parser(data, start).value()


def unmarshal(text: str) -> Any:
    """``json.Unmarshal`` of ``text`` into ``interface{}``, nested as deep as Go allows: Go's
    syntax error, or the value with numbers as ``int`` or ``float`` (what ``json.loads`` gives
    for input it can read)."""
    value = _from_source(text)
    stack = [value]
    while stack:  # numbers to Python numbers, without recursion
        container = stack.pop()
        if isinstance(container, (dict, list)):
            keys = container.keys() if isinstance(container, dict) else range(len(container))
            for key in keys:
                item = container[key]
                if isinstance(item, Number):
                    container[key] = item.python()
                else:
                    stack.append(item)
    return value.python() if isinstance(value, Number) else value


def _trim_quote(value: Any) -> Any:
    """``trimQuote`` then ``json.Unmarshal``: a quoted number is parsed again from the source
    text between its quotes."""
    if not isinstance(value, str):
        return value
    return _from_source(_raw(value)[1:-1])


def _int(value: Any, kind: str) -> int | None:
    go_type = _GO_INT[kind]
    value = _trim_quote(value)
    if value is None:
        return 0
    if not isinstance(value, Number):
        raise _type_error(value, go_type)
    low, high = _INT_RANGES[go_type]
    if not value.is_integral():
        raise _type_error(value, go_type, literal=True)
    number = int(value.text)
    if not low <= number <= high:
        raise _type_error(value, go_type, literal=True)
    return number


_NON_FINITE: Final = {'"NaN"': "NaN", '"Infinity"': "Infinity", '"-Infinity"': "-Infinity"}


def _float(value: Any, kind: str) -> float | str:
    if isinstance(value, str) and _raw(value) in _NON_FINITE:
        return _NON_FINITE[_raw(value)]
    go_type = "float32" if kind == "float" else "float64"
    value = _trim_quote(value)
    if value is None:
        return 0.0
    if not isinstance(value, Number):
        raise _type_error(value, go_type)
    try:
        return parse_float(value.text, 32 if kind == "float" else 64)
    except GoError:
        raise _type_error(value, go_type, literal=True) from None


def _scalar(value: Any, kind: str, type_name: str) -> Any:
    """``unmarshalSingularValue`` for a non-message kind."""
    if kind in _GO_INT:
        return _int(value, kind)
    if kind in ("double", "float"):
        return _float(value, kind)
    if kind == "bool":
        if value is None:
            return False
        if not isinstance(value, bool):
            raise _type_error(value, "bool")
        return value
    if kind == "string":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _type_error(value, "string")
        return str(value)
    if kind == "bytes":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _type_error(value, "[]uint8")
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise GoError("illegal base64 data at input byte 0") from None
        return str(value)
    return _enum(value, type_name)


def _enum(value: Any, type_name: str) -> str | int:
    values = dict(ENUMS[type_name][1])
    if isinstance(value, str) and len(_raw(value)) >= 2:
        name = _raw(value)[1:-1]
        if name not in values:
            raise GoError(f"unknown value {quote(_raw(value))} for enum {type_name}")
        return name
    if value is None:
        number = 0
    elif isinstance(value, Number):
        low, high = _INT_RANGES["int32"]
        if not value.is_integral() or not low <= int(value.text) <= high:
            raise _type_error(value, "protoreflect.EnumNumber", literal=True)
        number = int(value.text)
    else:
        raise _type_error(value, "protoreflect.EnumNumber")
    names = [name for name, n in ENUMS[type_name][1] if n == number]
    return names[0] if names else number


# --- messages -----------------------------------------------------------------------------------------
_WRAPPERS: Final = {
    "google.protobuf.BoolValue": "bool", "google.protobuf.BytesValue": "bytes",
    "google.protobuf.StringValue": "string", "google.protobuf.Int32Value": "int32",
    "google.protobuf.UInt32Value": "uint32", "google.protobuf.FloatValue": "float",
    "google.protobuf.Int64Value": "int64", "google.protobuf.UInt64Value": "uint64",
    "google.protobuf.DoubleValue": "double",
}  # fmt: skip


def _value(value: Any) -> Steps[Any]:
    """A ``google.protobuf.Value`` (nested as deep as the body: see _trampoline.py)."""
    if isinstance(value, Number):
        try:
            parse_float(value.text)
        except GoError:
            raise GoError(f"unrecognized type for Value {quote(value.text)}") from None
        return value.python()
    if isinstance(value, dict):
        return (yield _struct(value))
    if isinstance(value, list):
        return (yield _list(value))
    if isinstance(value, str):
        return str(value)
    return value


def _list(values: list[Any]) -> Steps[list[Any]]:
    out = []
    for value in values:
        out.append((yield _value(value)))
    return out


def _struct(value: Any) -> Steps[dict[str, Any]]:
    if not isinstance(value, dict):
        raise GoError(f"bad StructValue: {_type_error(value, _MAP)}")
    out = {}
    for key, item in value.items():
        try:
            out[key] = yield _value(item)
        except GoError as err:
            raise GoError(f"bad value in StructValue for key {quote(key)}: {err}") from None
    return out


def _message(value: Any, type_name: str) -> Any:
    """``unmarshalMessage``: a message (or well-known type) in canonical JSON."""
    if value is None and type_name != "google.protobuf.Value":
        return None
    if type_name in _WRAPPERS:
        return _scalar(value, _WRAPPERS[type_name], "")
    if type_name == "google.protobuf.Value":
        return run(_value(value))
    if type_name == "google.protobuf.Struct":
        return run(_struct(value))
    if type_name == "google.protobuf.ListValue":
        if not isinstance(value, list):
            raise GoError(f"bad ListValue: {_type_error(value, _LIST)}")
        return run(_list(value))
    if type_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        if not isinstance(value, str):
            raise _type_error(value, "string")
        if type_name == "google.protobuf.Timestamp":
            try:
                parse_rfc3339nano(str(value))
            except GoError as err:
                raise GoError(f"bad Timestamp: {err}") from None
        return str(value)
    if not isinstance(value, dict):
        raise _type_error(value, _MAP)
    out: dict[str, Any] = {}
    for name, json_name, kind, field_type, label, oneof, key_kind in MESSAGES[type_name]:
        raw = value.get(name, _MISSING)
        if json_name in value:
            raw = value[json_name]
        if raw is _MISSING or (raw is None and not _keeps_null(kind, field_type, label)):
            continue
        if oneof:
            for other in MESSAGES[type_name]:
                if other[5] == oneof:
                    out.pop(other[1], None)
        out[json_name] = _field(raw, kind, field_type, label, key_kind)
    return out


_MISSING: Final = object()


def _keeps_null(kind: str, field_type: str, label: str) -> bool:
    # isSingularWellKnownValue: a singular google.protobuf.Value takes null as NullValue
    return label not in ("repeated", "map") and field_type == "google.protobuf.Value"


def _field(raw: Any, kind: str, field_type: str, label: str, key_kind: str) -> Any:
    """``unmarshalValue``."""
    if label == "repeated":
        if not isinstance(raw, list):
            raise _type_error(raw, _LIST)
        if kind in _GO_INT:  # id lists: straight to the integer check, they may be long
            return [_int(item, kind) for item in raw]
        return [_singular(item, kind, field_type) for item in raw]
    if label == "map":
        if not isinstance(raw, dict):
            raise _type_error(raw, _MAP)
        out = {}
        for key, item in raw.items():
            if key_kind != "string":
                _scalar(_from_source(key), key_kind, "")
            out[key] = _singular(item, kind, field_type)
        return out
    return _singular(raw, kind, field_type)


def _singular(raw: Any, kind: str, field_type: str) -> Any:
    if kind == "message":
        result = _message(raw, field_type)
        return {} if result is None and field_type not in _WRAPPERS else result
    return _scalar(raw, kind, field_type)


def decode(raw: bytes, type_name: str) -> dict[str, Any]:
    """The body ``raw`` decoded as the message ``type_name``, in canonical JSON."""
    present, value = read_json(raw)
    if not present or value is None:
        return {}
    result = _message(value, type_name)
    if not isinstance(result, dict):  # a well-known type as the body: not used by any route
        raise GoError(f"json: cannot unmarshal {_kind(value)} into Go value of type {_MAP}")
    return result
