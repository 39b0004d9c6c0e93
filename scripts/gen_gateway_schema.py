"""Generate ``detorm/local/_gateway_schema.py`` from the master's proto sources (not a test).

    python scripts/gen_gateway_schema.py <determined-0.38.1>/proto > detorm/local/_gateway_schema.py

It reads the ``.proto`` files under ``<proto>/src`` (messages, fields in declaration order, enums,
oneofs, maps, ``go_package``) and the committed grpc-gateway output ``<proto>/pkg/apiv1/api.pb.gw.go``
(for each RPC: the request message, the body field, the path parameters with their converters,
and whether query parameters are read), and writes them as Python literals.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from pprint import pformat

SCALARS = {
    "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string",
    "bytes", "uint32", "sfixed32", "sfixed64", "sint32", "sint64",
}  # fmt: skip

_TOKEN = re.compile(
    r'\s+|//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|[A-Za-z_][\w.]*|-?\d[\w.+-]*|\.[A-Za-z_][\w.]*|.',
    re.DOTALL,
)


def tokens(text: str) -> list[str]:
    out = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.isspace() or token.startswith(("//", "/*")):
            continue
        out.append(token)
    return out


@dataclass
class Field:
    name: str
    kind: str  # a scalar, or "type" (resolved later)
    type_name: str  # unresolved type reference for messages and enums
    label: str  # "", "repeated", "optional", "map"
    oneof: str = ""
    key_kind: str = ""


@dataclass
class Message:
    full: str
    go: str
    fields: list[Field] = field(default_factory=list)
    oneofs: list[str] = field(default_factory=list)


@dataclass
class Enum:
    full: str
    go: str
    values: list[tuple[str, int]] = field(default_factory=list)


class Parser:
    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, Enum] = {}
        self.rpcs: dict[str, str] = {}  # rpc name -> request type (resolved)
        self._pending_rpcs: list[tuple[str, str, str]] = []

    def parse_file(self, text: str) -> None:
        toks = tokens(text)
        self.pos = 0
        self.toks = toks
        package = ""
        go_pkg = ""
        while self.pos < len(toks):
            tok = self.next()
            if tok == "syntax":
                self.skip_statement()
            elif tok == "package":
                package = self.next()
                self.expect(";")
            elif tok == "import":
                self.skip_statement()
            elif tok == "option":
                name = self.next()
                if name == "go_package":
                    self.expect("=")
                    go_pkg = self.next().strip('"').split(";")[0].rsplit("/", 1)[-1]
                    self.expect(";")
                else:
                    self.pos -= 1
                    self.skip_statement()
            elif tok == "message":
                self.message(package, "", go_pkg)
            elif tok == "enum":
                self.enum(package, "", go_pkg)
            elif tok == "service":
                self.service(package)
            elif tok == "extend":
                self.next()
                self.skip_block()
            elif tok == ";":
                continue
            else:
                raise SyntaxError(f"unexpected {tok!r}")

    # --- helpers
    def next(self) -> str:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def peek(self) -> str:
        return self.toks[self.pos]

    def expect(self, tok: str) -> None:
        got = self.next()
        if got != tok:
            raise SyntaxError(f"expected {tok!r}, got {got!r}")

    def skip_statement(self) -> None:
        depth = 0
        while True:
            tok = self.next()
            if tok in "{[(" and len(tok) == 1:
                depth += 1
            elif tok in "}])" and len(tok) == 1:
                depth -= 1
            elif tok == ";" and depth == 0:
                return

    def skip_block(self) -> None:
        self.expect("{")
        depth = 1
        while depth:
            tok = self.next()
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1

    def skip_options(self) -> None:
        if self.peek() == "[":
            depth = 0
            while True:
                tok = self.next()
                if tok == "[":
                    depth += 1
                elif tok == "]":
                    depth -= 1
                    if depth == 0:
                        return

    # --- definitions
    def message(self, scope: str, go_scope: str, go_pkg: str) -> None:
        name = self.next()
        full = f"{scope}.{name}" if scope else name
        go = f"{go_scope}_{name}" if go_scope else name
        msg = Message(full, f"{go_pkg}.{go}")
        self.messages[full] = msg
        self.expect("{")
        while True:
            tok = self.next()
            if tok == "}":
                return
            if tok == ";":
                continue
            if tok == "message":
                self.message(full, go, go_pkg)
            elif tok == "enum":
                self.enum(full, go, go_pkg)
            elif tok in ("option", "reserved", "extensions"):
                self.skip_statement()
            elif tok == "oneof":
                oneof = self.next()
                msg.oneofs.append(oneof)
                self.expect("{")
                while self.peek() != "}":
                    if self.peek() == "option":
                        self.next()
                        self.skip_statement()
                        continue
                    msg.fields.append(self.field(self.next(), "", oneof))
                self.expect("}")
            elif tok in ("repeated", "optional"):
                msg.fields.append(self.field(self.next(), tok, ""))
            elif tok == "map":
                self.expect("<")
                key = self.next()
                self.expect(",")
                value = self.next()
                self.expect(">")
                f = self.field(value, "map", "")
                f.key_kind = key
                msg.fields.append(f)
            else:
                msg.fields.append(self.field(tok, "", ""))

    def field(self, type_name: str, label: str, oneof: str) -> Field:
        name = self.next()
        self.expect("=")
        self.next()  # number
        self.skip_options()
        self.expect(";")
        kind = type_name if type_name in SCALARS else "type"
        return Field(name, kind, type_name, label, oneof)

    def enum(self, scope: str, go_scope: str, go_pkg: str) -> None:
        name = self.next()
        full = f"{scope}.{name}" if scope else name
        go = f"{go_scope}_{name}" if go_scope else name
        enum = Enum(full, f"{go_pkg}.{go}")
        self.enums[full] = enum
        self.expect("{")
        while True:
            tok = self.next()
            if tok == "}":
                return
            if tok in ("option", "reserved"):
                self.skip_statement()
                continue
            if tok == ";":
                continue
            self.expect("=")
            number = int(self.next())
            self.skip_options()
            self.expect(";")
            enum.values.append((tok, number))

    def service(self, package: str) -> None:
        self.next()
        self.expect("{")
        while True:
            tok = self.next()
            if tok == "}":
                return
            if tok == "option":
                self.skip_statement()
                continue
            if tok != "rpc":
                continue
            name = self.next()
            self.expect("(")
            request = self.next()
            if request == "stream":
                request = self.next()
            self.expect(")")
            self._pending_rpcs.append((name, request, package))
            self.expect("returns")
            self.expect("(")
            while self.next() != ")":
                pass
            if self.peek() == "{":
                self.skip_block()
            else:
                self.expect(";")

    # --- resolution
    def resolve(self, name: str, scope: str) -> str:
        if name.startswith("."):
            return name[1:]
        parts = scope.split(".")
        while True:
            candidate = ".".join([*parts, name]) if parts else name
            if candidate in self.messages or candidate in self.enums:
                return candidate
            if not parts:
                raise KeyError(f"cannot resolve {name} in {scope}")
            parts.pop()

    def finish(self) -> None:
        for msg in self.messages.values():
            for f in msg.fields:
                if f.kind == "type":
                    full = self.resolve(f.type_name, msg.full)
                    f.type_name = full
                    f.kind = "enum" if full in self.enums else "message"
                else:
                    f.type_name = ""
        for name, request, package in self._pending_rpcs:
            self.rpcs[name] = self.resolve(request, package)


def json_name(name: str) -> str:
    """protoc's ToJsonName."""
    out = []
    upper = False
    for char in name:
        if char == "_":
            upper = True
        elif upper:
            out.append(char.upper())
            upper = False
        else:
            out.append(char)
    return "".join(out)


_REQUEST_FN = re.compile(r"^func request_Determined_(\w+)_0\(.*?^}", re.DOTALL | re.MULTILINE)


def gateway_routes(gw_text: str) -> dict[str, tuple[str, tuple[tuple[str, str], ...], bool]]:
    """Per RPC: (body: "" | "*" | Go field name, path params in order, reads the query)."""
    routes = {}
    for match in _REQUEST_FN.finditer(gw_text):
        op, body_text = match.group(1), match.group(0)
        body = ""
        decode = re.search(r"Decode\(&protoReq(\.\w+)?\)", body_text)
        if decode:
            body = "*" if decode.group(1) is None else decode.group(1)[1:]
        params = []
        for param in re.finditer(r'val, ok = pathParams\["([\w.]+)"\]', body_text):
            name = param.group(1)
            rest = body_text[param.end() :]
            conv = re.search(r"runtime\.(Int32|String|Int64|Bool|PopulateFieldFromPath)\(", rest)
            assert conv is not None
            params.append((name, conv.group(1)))
        query = "PopulateQueryParameters" in body_text
        routes[op] = (body, tuple(params), query)
    return routes


def go_field_to_proto(msg: Message, go_field: str) -> str:
    for f in msg.fields:
        if "".join(part[:1].upper() + part[1:] for part in f.name.split("_")) == go_field:
            return f.name
    raise KeyError(go_field)


def reachable(parser: Parser, roots: list[str]) -> tuple[set[str], set[str]]:
    messages: set[str] = set()
    enums: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in messages:
            continue
        messages.add(name)
        for f in parser.messages[name].fields:
            if f.kind == "message":
                stack.append(f.type_name)
            elif f.kind == "enum":
                enums.add(f.type_name)
    return messages, enums


def main(proto_root: Path) -> str:
    parser = Parser()
    for path in sorted((proto_root / "src").rglob("*.proto")):
        if "protoc-gen-swagger" in path.parts or path.parts[-2:] == (
            "protobuf",
            "descriptor.proto",
        ):
            continue
        parser.parse_file(path.read_text())
    parser.finish()
    gw = gateway_routes((proto_root / "pkg" / "apiv1" / "api.pb.gw.go").read_text())
    routes = {}
    for op, (body, params, query) in sorted(gw.items()):
        request = parser.rpcs[op]
        if body not in ("", "*"):
            body = go_field_to_proto(parser.messages[request], body)
        routes[op] = (request, body, params, query)
    messages, enums = reachable(parser, [r[0] for r in routes.values()])
    message_rows = {
        name: tuple(
            (f.name, json_name(f.name), f.kind, f.type_name, f.label, f.oneof, f.key_kind)
            for f in parser.messages[name].fields
        )
        for name in sorted(messages)
    }
    go_names = {name: parser.messages[name].go for name in sorted(messages)}
    enum_rows = {
        name: (parser.enums[name].go, tuple(parser.enums[name].values)) for name in sorted(enums)
    }
    lines = [
        '"""The request messages of the master\'s REST routes, as grpc-gateway v1.16 and jsonpb see',
        "them (generated by ``tests/contract/gen_gateway_schema.py`` from the 0.38.1 protos and",
        "``proto/pkg/apiv1/api.pb.gw.go``; do not edit).",
        "",
        "ROUTES: RPC -> (request message, body: '' none, '*' whole message, else the body field;",
        "path parameters in the order the gateway converts them, with the converter; whether the",
        "query string is read). MESSAGES: message -> fields in declaration order, each",
        "(name, json name, kind, message or enum type, label '' | repeated | optional | map,",
        "oneof, map key kind). GO_TYPES: message -> Go type. ENUMS: enum -> (Go type, values).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        "# fmt: off",
        f"ROUTES: Final[dict[str, tuple[str, str, tuple[tuple[str, str], ...], bool]]] = {pformat(routes, width=100)}",
        "",
        f"MESSAGES: Final[dict[str, tuple[tuple[str, str, str, str, str, str, str], ...]]] = {pformat(message_rows, width=100)}",
        "",
        f"GO_TYPES: Final[dict[str, str]] = {pformat(go_names, width=100)}",
        "",
        f"ENUMS: Final[dict[str, tuple[str, tuple[tuple[str, int], ...]]]] = {pformat(enum_rows, width=100)}",
        "# fmt: on",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(main(Path(sys.argv[1])))
