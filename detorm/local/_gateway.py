"""grpc-gateway v1.16's request parsing, before the RPC runs (``proto/pkg/apiv1/api.pb.gw.go``,
``runtime/query.go``, ``runtime/convert.go``).

For each route the generated ``request_Determined_<Rpc>_0`` function: decodes the body (if the
route has one) with jsonpb, converts the path parameters in order (``runtime.Int32``,
``runtime.String`` or ``runtime.PopulateFieldFromPath``), and, when the request message has fields
neither the path nor the body bind, parses the query string (``req.ParseForm``, then
``runtime.PopulateQueryParameters``). The first failure is a 400 ``InvalidArgument`` in the unary
error shape (also on streaming routes), raised before authentication and before the handler, so a
malformed request is refused the same way whether or not the caller is logged in or the resource
exists.

Query parameters follow ``populateFieldValueFromPath``: keys by proto or JSON name, dotted paths
into nested messages, ``key[k]=v`` for maps, unknown keys ignored, the first value of a repeated
key for scalars, every value for repeated fields. Keys that start with a path parameter's proto
name (or the body field) are skipped; a path parameter given again under its JSON name is read
from the query and overrides the path (``experimentId`` is not filtered when the path names
``experiment_id``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._errors import GatewayError, invalid_argument
from ._gateway_schema import ENUMS, GO_TYPES, MESSAGES, ROUTES
from ._go import (
    GoError,
    parse_bool,
    parse_float,
    parse_int,
    parse_query,
    parse_rfc3339nano,
    parse_uint,
)
from ._jsonpb import decode

__all__ = ["Prepared", "prepare"]

Field = tuple[str, str, str, str, str, str, str]


@dataclass
class Prepared:
    """A request as the gateway hands it to the RPC."""

    body: dict[str, Any] | None  # the body message in canonical JSON (None: the route has none)
    query: list[tuple[str, str]]  # the query pairs the gateway read ([] when it reads none)
    overrides: dict[str, str]  # path parameters the query string set again (see module doc)


def _error(message: str) -> GatewayError:
    err = invalid_argument(message)
    return GatewayError(err.code, err.message)


def _field(message: str, name: str) -> Field:
    for row in MESSAGES[message]:
        if row[0] == name:
            return row
    raise KeyError(f"{message}.{name}")


def body_type(op: str) -> str | None:
    request, body, _, _ = ROUTES[op]
    if body == "":
        return None
    if body == "*":
        return request
    return _field(request, body)[3]


def prepare(op: str, path_params: dict[str, str], query: str, body: bytes) -> Prepared:
    """Parse a request as the gateway does; raises :class:`GatewayError` (400)."""
    request, body_field, params, reads_query = ROUTES[op]
    document: dict[str, Any] | None = None
    message = body_type(op)
    if message == "":
        # a scalar body field (SetUserPassword's `password`): the gateway json-decodes the
        # bare value into it; the handler reads the raw body (_routes/users.py)
        message = None
    if message is not None:
        try:
            document = decode(body, message)
        except GoError as err:
            raise _error(str(err)) from None
    for name, converter in params:
        _path_param(request, name, converter, path_params[name])
    pairs: list[tuple[str, str]] = []
    overrides: dict[str, str] = {}
    if reads_query:
        pairs, parse_error = parse_query(query)
        if parse_error is not None:
            raise _error(str(parse_error))
        skip = [body_field.split(".")] if body_field not in ("", "*") else []
        skip += [name.split(".") for name, _ in params]
        overrides = _check_query(request, pairs, skip, [name for name, _ in params])
    return Prepared(document, pairs, overrides)


def _path_param(request: str, name: str, converter: str, text: str) -> None:
    try:
        if converter == "Int32":
            parse_int(text, 0, 32)
        elif converter == "Int64":
            parse_int(text, 0, 64)
        elif converter == "Bool":
            parse_bool(text)
        elif converter == "PopulateFieldFromPath":
            _Populator(request).populate(name.split("."), [text])
    except GoError as err:
        raise _error(f"type mismatch, parameter: {name}, error: {err}") from None


_BRACKETS: Final = re.compile(r"^(.*)\[(.*)\]$", re.DOTALL)


def _check_query(
    request: str, pairs: Sequence[tuple[str, str]], skip: list[list[str]], params: list[str]
) -> dict[str, str]:
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    populator = _Populator(request)
    overrides: dict[str, str] = {}
    for key, given in values.items():
        match = _BRACKETS.match(key)
        if match:
            key, given = match.group(1), [match.group(2), *given]
        path = key.split(".")
        if any(path[: len(prefix)] == prefix for prefix in skip):
            continue
        try:
            populator.populate(path, given)
        except GoError as err:
            raise _error(str(err)) from None
        for name in params:
            if "." not in name and len(path) == 1 and path[0] == _json_name(request, name):
                overrides[name] = given[0]
    return overrides


def _json_name(message: str, name: str) -> str:
    return _field(message, name)[1]


def _go_camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class _Populator:
    """``populateFieldValueFromPath`` over the schema; remembers which oneofs were set."""

    def __init__(self, request: str) -> None:
        self.request = request
        self.oneofs_set: set[tuple[str, str]] = set()

    def _lookup(self, message: str, prefix: str, name: str) -> Field | None:
        """``fieldByProtoName``: oneof members first, then the struct's fields in order (a oneof
        appears there once, as its interface field, under the oneof's name)."""
        rows = MESSAGES[message]
        for row in rows:
            if row[5] and name in (row[0], row[1]):
                if (prefix, row[5]) in self.oneofs_set:
                    raise GoError(f"field already set for {row[5]} oneof")
                self.oneofs_set.add((prefix, row[5]))
                return row
        seen_oneofs: set[str] = set()
        for row in rows:
            if row[5]:
                if row[5] in seen_oneofs:
                    continue
                seen_oneofs.add(row[5])
                if name == row[5]:
                    iface = GO_TYPES[message].replace(".", ".is", 1) + "_" + _go_camel(row[5])
                    raise GoError(f"unexpected type {iface} in *{GO_TYPES[self.request]}")
                continue
            if name in (row[0], row[1]):
                return row
        return None

    def populate(self, path: list[str], values: list[str]) -> None:
        message: str | None = self.request
        leaf: Field | None = None
        for index, name in enumerate(path):
            last = index == len(path) - 1
            if message is None:
                raise GoError(f"non-aggregate type in the mid of path: {'.'.join(path)}")
            row = self._lookup(message, ".".join(path[:index]), name)
            if row is None:
                return  # grpclog.Infof("field not found ..."): ignored
            _, _, kind, type_name, label, _, _ = row
            leaf = row
            if label == "repeated" and kind != "bytes":
                if not last:
                    raise GoError(f"unexpected repeated field in {'.'.join(path)}")
                self._repeated(row, values)
                return
            if label == "map":
                if not last:
                    raise GoError(
                        f"unexpected nested field {path[index + 1]} in {'.'.join(path[: index + 1])}"
                    )
                self._map(row, values)
                return
            if kind == "message" or label == "optional":
                # a pointer: allocated, then followed
                message = type_name if kind == "message" else None
                continue
            if kind == "bytes":
                message = None
                continue
            if not last:
                raise GoError(
                    f"unexpected nested field {path[index + 1]} in {'.'.join(path[: index + 1])}"
                )
            message = None
        assert leaf is not None
        if not values:
            raise GoError(f"no value of field: {'.'.join(path)}")
        _populate_field(leaf, values[0])

    def _repeated(self, row: Field, values: list[str]) -> None:
        _, _, kind, type_name, _, _, _ = row
        if kind == "message":
            raise GoError(f"unsupported field type *{GO_TYPES[type_name]}")
        for value in values:
            _convert(kind, type_name, value)

    def _map(self, row: Field, values: list[str]) -> None:
        name, _, kind, type_name, _, _, key_kind = row
        if len(values) != 2:
            first = values[0] if values else ""
            raise GoError(f"more than one value provided for key {first} in map {_go_camel(name)}")
        if kind == "message":
            raise GoError(f"unsupported value type *{GO_TYPES[type_name]} in map {_go_camel(name)}")
        _convert(key_kind, "", values[0])
        _convert(kind, type_name, values[1])


def _populate_field(row: Field, value: str) -> None:
    """``populateField``: well-known types, enums, then the scalar converters."""
    _, _, kind, type_name, _, _, _ = row
    if kind != "message":
        _convert(kind, type_name, value)
        return
    wkt = (
        type_name.removeprefix("google.protobuf.")
        if type_name.startswith("google.protobuf.")
        else ""
    )
    if wkt == "Timestamp":
        if value != "null":
            try:
                parse_rfc3339nano(value)
            except GoError as err:
                raise GoError(f"bad Timestamp: {err}") from None
    elif wkt in ("DoubleValue", "FloatValue"):
        try:
            parse_float(value)
        except GoError:
            raise GoError(f"bad DoubleValue: {value}") from None
    elif wkt in ("Int64Value", "Int32Value"):
        try:
            parse_int(value, 10, 64)
        except GoError:
            raise GoError(f"bad DoubleValue: {value}") from None  # sic (runtime/query.go)
    elif wkt in ("UInt64Value", "UInt32Value"):
        try:
            parse_uint(value, 10, 64)
        except GoError:
            raise GoError(f"bad DoubleValue: {value}") from None  # sic
    elif wkt == "BoolValue":
        if value not in ("true", "false"):
            raise GoError(f"bad BoolValue: {value}")
    elif wkt in ("StringValue", "FieldMask", "Duration", "BytesValue"):
        pass
    else:
        raise GoError(f"field type *{GO_TYPES[type_name]} is not supported in query parameters")


def _convert(kind: str, type_name: str, value: str) -> None:
    """``convertEnum`` or ``convFromType[kind]``."""
    if kind == "enum":
        go_type, members = ENUMS[type_name]
        if any(value == name for name, _ in members):
            return
        try:
            number = _atoi(value)
        except GoError:
            raise GoError(f"{value} is not a valid {go_type}") from None
        wrapped = (number + 2**31) % 2**32 - 2**31  # int32(eVal)
        if not any(wrapped == n for _, n in members):
            raise GoError(f"{value} is not a valid {go_type}")
        return
    if kind == "string":
        return
    if kind == "bool":
        parse_bool(value)
    elif kind in ("double", "float"):
        parse_float(value, 32 if kind == "float" else 64)
    elif kind in ("int64", "sint64", "sfixed64"):
        parse_int(value, 0, 64)
    elif kind in ("int32", "sint32", "sfixed32"):
        parse_int(value, 0, 32)
    elif kind in ("uint64", "fixed64"):
        parse_uint(value, 0, 64)
    elif kind in ("uint32", "fixed32"):
        parse_uint(value, 0, 32)


def _atoi(value: str) -> int:
    """``strconv.Atoi``: base 10, an optional sign, no prefixes or underscores."""
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise GoError(f"strconv.Atoi: parsing {value!r}: invalid syntax")
    return parse_int(value, 10, 64)
