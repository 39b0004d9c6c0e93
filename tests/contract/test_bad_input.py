"""Malformed requests against ``detorm serve --demo``: the real master's status and body for each,
nothing written, and correct requests still answered.

The expected answers come from the master's code, cited per class of cases:

* the gateway (grpc-gateway v1.16, ``proto/pkg/apiv1/api.pb.gw.go``) decodes the body with jsonpb,
  converts path parameters, then parses the query string, all before the RPC runs: each failure is
  400 ``InvalidArgument`` in the unary shape, even without a token and even on streaming routes;
* ``encoding/json`` and ``github.com/golang/protobuf/jsonpb`` v1.5.4 (``jsonpb/decode.go``) word
  the body errors; ``runtime/query.go`` and ``strconv`` word the query and path errors;
* ``grpcutil/auth.go`` answers missing and bad tokens (401), ``grpcutil/errors.go`` shapes errors;
* unknown routes and methods are ``ErrUnknownURI`` (501, ``runtime/mux.go``); outside ``/api/v1``
  Echo answers ``{"message": "Not Found"}``.

Several hundred requests are generated from the request messages of the master's routes
(``detorm/local/_gateway_schema.py``, generated from the protos) and from tables below.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from detorm.local import LocalMaster
from detorm.local._gateway_schema import ENUMS, GO_TYPES, MESSAGES, ROUTES
from detorm.local._route_table import ROUTES as TEMPLATES
from tests.conftest import copy_database, login
from tests.contract.conftest import Demo

# --- fixtures ---------------------------------------------------------------------------------


@dataclass
class World:
    demo: Demo
    api: httpx.Client  # logged in as admin
    anonymous: httpx.Client
    stale_token: str  # a token whose session was logged out

    def digest(self) -> dict[str, str]:
        """A digest of every table of the master's database."""
        path = self.demo.master.db_path
        out = {}
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in sorted(tables):
                rows = sorted(repr(row) for row in db.execute(f'SELECT * FROM "{table}"'))
                out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return out


@pytest.fixture(scope="module")
def world(
    demo_template: tuple[Demo, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    db_path = copy_database(demo_template[1], tmp_path_factory.mktemp("bad-input"))
    with LocalMaster(db_path=db_path, demo=True, process=True) as master:
        demo = Demo(master)
        stale = login(master.url, "alice", "alice-pw")
        stale_token = stale.headers["Authorization"].removeprefix("Bearer ")
        assert stale.post("/api/v1/auth/logout").status_code == 200
        stale.close()
        api = login(master.url, "admin")
        anonymous = httpx.Client(base_url=master.url, timeout=60)
        try:
            yield World(demo, api, anonymous, stale_token)
        finally:
            api.close()
            anonymous.close()


@pytest.fixture
def unchanged(world: World) -> Iterator[None]:
    """The test's requests write nothing: every table's digest is the same afterwards."""
    before = world.digest()
    yield
    assert world.digest() == before


class Failures:
    """Collects mismatches so that one test reports every failing case at once."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.count = 0

    def check(self, label: str, response: httpx.Response, status: int, body: Any) -> None:
        self.count += 1
        try:
            got = response.json()
        except ValueError:
            got = response.text
        if response.status_code != status or got != body:
            self.items.append(
                f"{label}: got {response.status_code} {got!r}, want {status} {body!r}"
            )

    def done(self, minimum: int) -> None:
        assert not self.items, f"{len(self.items)} of {self.count} cases differ:\n" + "\n".join(
            self.items[:40]
        )
        assert self.count >= minimum, self.count


def unary(code: int, message: str) -> dict[str, Any]:
    """The unary error body (``grpcutil/errors.go`` errorHandler)."""
    reasons = {3: "InvalidArgument", 5: "NotFound", 7: "PermissionDenied", 9: "FailedPrecondition",
               12: "Unimplemented", 13: "Internal", 16: "Unauthenticated"}  # fmt: skip
    return {"error": {"code": code, "reason": reasons[code], "error": message}}


def stream_error(code: int, status: int, message: str) -> dict[str, Any]:
    """``runtime.StreamError`` (a stream that fails before its first message)."""
    texts = {
        401: "Unauthorized",
        404: "Not Found",
        400: "Bad Request",
        500: "Internal Server Error",
    }
    return {"error": {"grpcCode": code, "httpCode": status, "message": message,
                      "httpStatus": texts[status], "details": []}}  # fmt: skip


def bad_request(message: str) -> tuple[int, dict[str, Any]]:
    return 400, unary(3, message)


# --- routes, as the gateway sees them ----------------------------------------------------------

_SCHEMA_KIND_OF_PARAM = {"Int32": "int32", "String": "string"}


def field_of(message: str, name: str) -> tuple[str, ...]:
    (row,) = [row for row in MESSAGES[message] if row[0] == name]
    return row


def path_param_kind(op: str, name: str) -> str:
    request = ROUTES[op][0]
    parts = name.split(".")
    message = request
    for part in parts[:-1]:
        message = field_of(message, part)[3]
    return str(field_of(message, parts[-1])[2])


def url_for(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], template)


def first_route(method: str, path: str) -> str | None:
    """The operation grpc-gateway picks: the first pattern (in registration order) that matches."""
    parts = path.split("?")[0].strip("/").split("/")
    for op, route_method, template, _ in TEMPLATES:
        if route_method != method:
            continue
        segments = template.strip("/").split("/")
        if len(segments) == len(parts) and all(
            s.startswith("{") or s == p for s, p in zip(segments, parts, strict=True)
        ):
            return op
    return None


def default_values(op: str, template: str) -> dict[str, str]:
    values = {}
    for name in re.findall(r"\{([^}]+)\}", template):
        values[name] = "1" if path_param_kind(op, name) in ("int32", "int64") else "x"
    return values


# --- 1. malformed JSON bodies ---------------------------------------------------------------

# encoding/json's Decoder (what the gateway reads the body with): syntax errors, "unexpected EOF"
# for a cut-off value, and only the first value is read. A body that is a JSON value but not an
# object fails in jsonpb's unmarshalMessage (json.Unmarshal into map[string]json.RawMessage).
MALFORMED_BODIES: list[tuple[bytes, str]] = [
    (b"{", "unexpected EOF"),
    (b'{"a":', "unexpected EOF"),
    (b'{"a"', "unexpected EOF"),
    (b"[1,2", "unexpected EOF"),
    (b'"abc', "unexpected EOF"),
    (b'{"a":}', "invalid character '}' looking for beginning of value"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a":1,}', "invalid character '}' looking for beginning of object key string"),
    (b"{'a':1}", "invalid character '\\'' looking for beginning of object key string"),
    (b"abc", "invalid character 'a' looking for beginning of value"),
    (b"NaN", "invalid character 'N' looking for beginning of value"),
    (b'{"a":tru}', "invalid character '}' in literal true (expecting 'e')"),
    (b'{"a":nul}', "invalid character '}' in literal null (expecting 'l')"),
    (b'{"a":1.2.3}', "invalid character '.' after object key:value pair"),
    (b'{"a":[1 2]}', "invalid character '2' after array element"),
    (b'{"a":"\\x"}', "invalid character 'x' in string escape code"),
    (b'{"a":"\\u12g4"}', "invalid character 'g' in \\u hexadecimal character escape"),
    (b'{"a":"line\nbreak"}', "invalid character '\\n' in string literal"),
    (b'{"a":-}', "invalid character '}' in numeric literal"),
    (b'{"a":1.}', "invalid character '}' after decimal point in numeric literal"),
    (b'{"a":1e}', "invalid character '}' in exponent of numeric literal"),
    (b"\xff{}", "invalid character '\u00ff' looking for beginning of value"),
    (b"[]", "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"),
    (b"[{}]", "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"),
    (b'"text"', "json: cannot unmarshal string into Go value of type map[string]json.RawMessage"),
    (b"42", "json: cannot unmarshal number into Go value of type map[string]json.RawMessage"),
    (b"true", "json: cannot unmarshal bool into Go value of type map[string]json.RawMessage"),
]

BODY_ROUTES = [
    "Login", "PatchExperiment", "ArchiveExperiments", "KillExperiments", "DeleteExperiments",
    "MoveExperiments", "MoveExperiment", "SearchExperiments", "SearchRuns", "KillRuns",
    "ArchiveRuns", "MoveRuns", "PostModel", "PatchModel", "PostModelVersion", "PatchModelVersion",
    "PostWorkspace", "PatchWorkspace", "PostProject", "PatchProject", "PutProjectNotes",
    "AddProjectNote", "PostCheckpointMetadata", "PatchCheckpoints", "DeleteCheckpoints",
    "ReportTrialMetrics", "GetModelDefFile",
]  # fmt: skip


def route_url(op: str) -> tuple[str, str]:
    (method, template) = next((m, t) for o, m, t, _ in TEMPLATES if o == op)
    return method, url_for(template, default_values(op, template))


def test_malformed_json_bodies(world: World, unchanged: None) -> None:
    failures = Failures()
    for op in BODY_ROUTES:
        method, url = route_url(op)
        for payload, message in MALFORMED_BODIES:
            # no token: the gateway refuses the body before authentication runs
            response = world.anonymous.request(method, url, content=payload)
            failures.check(f"{op} {payload!r}", response, *bad_request(message))
    failures.done(minimum=600)


def test_bodies_the_gateway_accepts_reach_the_rpc(world: World, unchanged: None) -> None:
    """An empty body, ``null`` and trailing text after the first value decode (io.EOF ignored;
    a top-level null is a no-op; the Decoder reads one value): without a token, the RPC's auth
    interceptor answers."""
    failures = Failures()
    for op in BODY_ROUTES:
        if op == "Login":
            continue
        method, url = route_url(op)
        for payload in (
            b"",
            b"   \n",
            b"null",
            b"{}",
            b'{"unknownField": [1, {"x": 2}]}',
            b"{} trailing",
            b"{}{",
        ):
            response = world.anonymous.request(method, url, content=payload)
            failures.check(f"{op} {payload!r}", response, 401, unary(16, "token missing"))
    failures.done(minimum=150)


# --- 2. wrong JSON types for each field of the main request bodies ------------------------------

_INT_GO = {"int32": "int32", "sint32": "int32", "sfixed32": "int32", "int64": "int64",
           "uint32": "uint32", "uint64": "uint64"}  # fmt: skip
_WRAPPED = {"google.protobuf.StringValue": "string", "google.protobuf.BoolValue": "bool",
            "google.protobuf.Int32Value": "int32", "google.protobuf.Int64Value": "int64",
            "google.protobuf.DoubleValue": "double", "google.protobuf.FloatValue": "float"}  # fmt: skip


def wrong_values(kind: str, type_name: str, label: str) -> list[tuple[Any, str]]:
    """Values of the wrong JSON type for a field, with ``encoding/json``'s or jsonpb's error."""

    def cannot(what: str, go_type: str) -> str:
        return f"json: cannot unmarshal {what} into Go value of type {go_type}"

    if label == "repeated":
        return [({"x": 1}, cannot("object", "[]json.RawMessage")),
                ("one", cannot("string", "[]json.RawMessage")),
                (7, cannot("number", "[]json.RawMessage"))]  # fmt: skip
    if label == "map":
        return [([1], cannot("array", "map[string]json.RawMessage"))]
    if kind == "message" and type_name in _WRAPPED:
        kind, type_name = _WRAPPED[type_name], ""
    if kind in _INT_GO:
        go = _INT_GO[kind]
        return [("abc", "invalid character 'a' looking for beginning of value"),  # trimQuote
                (True, cannot("bool", go)), ([1], cannot("array", go)),
                (1.5, cannot("number 1.5", go)), ("2.5", cannot("number 2.5", go)),
                (1e30, cannot("number 1e+30", go)), ("", "unexpected end of JSON input")]  # fmt: skip
    if kind in ("double", "float"):
        go = "float64" if kind == "double" else "float32"
        return [(True, cannot("bool", go)), ({}, cannot("object", go)),
                ("nan", "invalid character 'a' in literal null (expecting 'u')")]  # fmt: skip
    if kind == "bool":
        return [("true", cannot("string", "bool")), (1, cannot("number", "bool")),
                ([], cannot("array", "bool"))]  # fmt: skip
    if kind == "string":
        return [(5, cannot("number", "string")), (False, cannot("bool", "string")),
                ({"a": 1}, cannot("object", "string")), (["a"], cannot("array", "string"))]  # fmt: skip
    if kind == "enum":
        return [("NOT_A_VALUE", f'unknown value "\\"NOT_A_VALUE\\"" for enum {type_name}'),
                (True, cannot("bool", "protoreflect.EnumNumber")),
                (1.5, cannot("number 1.5", "protoreflect.EnumNumber"))]  # fmt: skip
    if type_name == "google.protobuf.Struct":
        return [([1], "bad StructValue: " + cannot("array", "map[string]json.RawMessage")),
                ("s", "bad StructValue: " + cannot("string", "map[string]json.RawMessage"))]  # fmt: skip
    if type_name == "google.protobuf.ListValue":
        return [("s", "bad ListValue: " + cannot("string", "[]json.RawMessage")),
                ({}, "bad ListValue: " + cannot("object", "[]json.RawMessage"))]  # fmt: skip
    if type_name == "google.protobuf.Timestamp":
        return [(5, cannot("number", "string")),
                ("tomorrow", ('bad Timestamp: parsing time "tomorrow" as '
                 '"2006-01-02T15:04:05.999999999Z07:00": cannot parse "tomorrow" as "2006"'))]  # fmt: skip
    if type_name == "google.protobuf.Value":
        return []  # any JSON value is a Value
    if kind == "message":
        return [(5, cannot("number", "map[string]json.RawMessage")),
                ([], cannot("array", "map[string]json.RawMessage")),
                ("s", cannot("string", "map[string]json.RawMessage"))]  # fmt: skip
    return []


def body_message(op: str) -> str:
    request, body, _, _ = ROUTES[op]
    return request if body == "*" else str(field_of(request, body)[3])


def test_wrong_json_types_for_every_body_field(world: World, unchanged: None) -> None:
    failures = Failures()
    for op in BODY_ROUTES:
        method, url = route_url(op)
        for name, json_name, kind, type_name, label, _, _ in MESSAGES[body_message(op)]:
            for key in {name, json_name}:  # the proto name and the JSON name are both accepted
                for value, message in wrong_values(kind, type_name, label):
                    payload = json.dumps({key: value}).encode()
                    response = world.anonymous.request(method, url, content=payload)
                    failures.check(f"{op} {payload!r}", response, *bad_request(message))
    failures.done(minimum=500)


def test_nested_wrong_types(world: World, unchanged: None) -> None:
    """Errors inside nested messages, lists and quoted numbers (trimQuote re-parses the text)."""
    cases: list[tuple[str, Any, str]] = [
        ("ArchiveExperiments", {"experimentIds": [1, "x"]}, "invalid character 'x' looking for beginning of value"),
        ("ArchiveExperiments", {"experimentIds": ["0x10"]}, "invalid character 'x' after top-level value"),
        ("ArchiveExperiments", {"experimentIds": [" 7 ", "07"]}, "invalid character '7' after top-level value"),
        ("ArchiveExperiments", {"experimentIds": [3000000000]}, "json: cannot unmarshal number 3000000000 into Go value of type int32"),
        ("ArchiveExperiments", {"filters": {"states": ["STATE_NOPE"]}}, 'unknown value "\\"STATE_NOPE\\"" for enum determined.experiment.v1.State'),
        ("ArchiveExperiments", {"filters": {"archived": "yes"}}, "json: cannot unmarshal string into Go value of type bool"),
        ("ArchiveExperiments", {"filters": {"userIds": {"a": 1}}}, "json: cannot unmarshal object into Go value of type []json.RawMessage"),
        ("ArchiveExperiments", {"filters": []}, "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"),
        ("PatchExperiment", {"resources": {"maxSlots": "lots"}}, "invalid character 'l' looking for beginning of value"),
        ("PatchExperiment", {"resources": {"weight": "heavy"}}, "invalid character 'h' looking for beginning of value"),
        ("PatchExperiment", {"checkpointStorage": {"saveTrialBest": 1.25}}, "json: cannot unmarshal number 1.25 into Go value of type int32"),
        ("PatchModel", {"metadata": {"a": 1}, "labels": [1], "notes": 2}, "json: cannot unmarshal number into Go value of type string"),
        ("PatchModel", {"workspaceId": "1x"}, "invalid character 'x' after top-level value"),
        ("PutProjectNotes", {"notes": [{"name": 1}]}, "json: cannot unmarshal number into Go value of type string"),
        ("PutProjectNotes", {"notes": ["a"]}, "json: cannot unmarshal string into Go value of type map[string]json.RawMessage"),
        ("ReportTrialMetrics", {"metrics": {"metrics": {"avgMetrics": []}}}, "bad StructValue: json: cannot unmarshal array into Go value of type map[string]json.RawMessage"),
        ("ReportTrialMetrics", {"metrics": {"stepsCompleted": "ten"}}, "invalid character 'e' in literal true (expecting 'r')"),
        ("ReportTrialMetrics", {"metrics": {"stepsCompleted": "x10"}}, "invalid character 'x' looking for beginning of value"),
        ("ReportTrialMetrics", {"metrics": {"reportTime": "2021-13-01T00:00:00Z"}}, 'bad Timestamp: parsing time "2021-13-01T00:00:00Z": month out of range'),
        ("ReportTrialMetrics", {"metrics": {"reportTime": "2021-01-01T00:00:00Zjunk"}}, 'bad Timestamp: parsing time "2021-01-01T00:00:00Zjunk": extra text: "junk"'),
        ("MoveRuns", {"runIds": [1], "sourceProjectId": "1", "destinationProjectId": []}, "json: cannot unmarshal array into Go value of type int32"),
        ("SearchRuns", {"filter": {"filterGroup": {}}}, "json: cannot unmarshal object into Go value of type string"),
        ("Login", {"username": "admin", "isHashed": "true"}, "json: cannot unmarshal string into Go value of type bool"),
    ]  # fmt: skip
    failures = Failures()
    for op, payload, message in cases:
        method, url = route_url(op)
        response = world.anonymous.request(method, url, content=json.dumps(payload).encode())
        failures.check(f"{op} {payload}", response, *bad_request(message))
    failures.done(minimum=len(cases))


def test_the_first_bad_field_in_declaration_order_is_reported(
    world: World, unchanged: None
) -> None:
    # jsonpb walks the message's fields in declaration order, not the JSON's key order
    response = world.anonymous.post(
        "/api/v1/experiments-search",
        content=b'{"sort": 1, "limit": "x", "offset": true, "projectId": []}',
    )
    assert (response.status_code, response.json()) == bad_request(
        "json: cannot unmarshal array into Go value of type int32"
    )


# --- 3. bad path parameters -------------------------------------------------------------------


def test_bad_int_path_parameters_on_every_route(world: World, unchanged: None) -> None:
    """``runtime.Int32`` (strconv.ParseInt(s, 0, 32)) for every int32 path parameter of every
    route, implemented by detorm.local or not: the gateway answers before the RPC."""
    bad = [
        ("abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ("1.5", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
        ("99999999999", 'strconv.ParseInt: parsing "99999999999": value out of range'),
        ("-2147483649", 'strconv.ParseInt: parsing "-2147483649": value out of range'),
        ("0x", 'strconv.ParseInt: parsing "0x": invalid syntax'),
        ("1__0", 'strconv.ParseInt: parsing "1__0": invalid syntax'),
        ("%20", 'strconv.ParseInt: parsing " ": invalid syntax'),
    ]
    failures = Failures()
    for op, method, template, _ in TEMPLATES:
        for name, converter in ROUTES[op][2]:
            if path_param_kind(op, name) != "int32":
                continue
            for text, error in bad:
                values = default_values(op, template)
                values[name] = text
                url = url_for(template, values)
                if first_route(method, url.replace("%20", " ")) != op:
                    continue  # another pattern registered earlier takes this path
                response = world.anonymous.request(method, url)
                failures.check(
                    f"{op} {method} {url}", response,
                    *bad_request(f"type mismatch, parameter: {name}, error: {error}"),
                )  # fmt: skip
    failures.done(minimum=600)


def test_go_integer_syntax_in_paths(world: World, unchanged: None) -> None:
    """ParseInt with base 0: hexadecimal, octal with a leading 0, binary and ``_`` separators
    all name experiment 8 (so does 010, an octal 8)."""
    experiment = world.api.get("/api/v1/experiments/8").json()["experiment"]
    for text in ("8", "0x8", "010", "0o10", "0b1000", "+8", "0_10"):
        response = world.api.get(f"/api/v1/experiments/{text}")
        assert response.status_code == 200, (text, response.text)
        assert response.json()["experiment"]["id"] == experiment["id"] == 8


# --- 4. bad query values --------------------------------------------------------------------


def query_cases(op: str) -> list[tuple[str, str, str]]:
    """(key, bad value, error) for each query field of a route (``runtime/query.go``)."""
    request, body, params, reads_query = ROUTES[op]
    if not reads_query:
        return []
    bound = {body} | {name.split(".")[0] for name, _ in params}
    cases = []
    for name, json_name, kind, type_name, label, _, _ in MESSAGES[request]:
        if name in bound:
            continue
        key = json_name
        if kind in ("int32", "sint32", "sfixed32"):
            cases.append((key, "abc", 'strconv.ParseInt: parsing "abc": invalid syntax'))
            cases.append(
                (key, "4294967296", 'strconv.ParseInt: parsing "4294967296": value out of range')
            )
        elif kind in ("int64", "sint64"):
            cases.append((key, "1e3", 'strconv.ParseInt: parsing "1e3": invalid syntax'))
        elif kind == "bool":
            cases.append((key, "yes", 'strconv.ParseBool: parsing "yes": invalid syntax'))
        elif kind == "enum":
            go_type = ENUMS[type_name][0]
            cases.append((key, "NOPE", f"NOPE is not a valid {go_type}"))
            cases.append((key, "12345", f"12345 is not a valid {go_type}"))
        elif type_name == "google.protobuf.BoolValue":
            cases.append((key, "1", "bad BoolValue: 1"))
        elif type_name == "google.protobuf.Timestamp":
            cases.append((key, "2021-01-01", ('bad Timestamp: parsing time "2021-01-01" as '
                          '"2006-01-02T15:04:05.999999999Z07:00": cannot parse "" as "T"')))  # fmt: skip
        elif kind == "message" and not type_name.startswith("google.protobuf."):
            cases.append((key, "1", f"field type *{GO_TYPES[type_name]} is not supported in query parameters"))  # fmt: skip
        if kind in ("int32", "bool", "string") and label == "":
            cases.append((f"{key}.deeper", "1", f"unexpected nested field deeper in {key}"))
        if label == "repeated" and kind != "message":
            cases.append((f"{key}.deeper", "1", f"unexpected repeated field in {key}.deeper"))
    return cases


def test_bad_query_values_on_every_route(world: World, unchanged: None) -> None:
    failures = Failures()
    for op, method, template, _ in TEMPLATES:
        url = url_for(template, default_values(op, template))
        if first_route(method, url) != op:
            continue
        for key, value, error in query_cases(op):
            response = world.anonymous.request(method, url, params={key: value})
            failures.check(f"{op} {url}?{key}={value}", response, *bad_request(error))
    failures.done(minimum=250)


def test_query_string_syntax_and_oneofs(world: World, unchanged: None) -> None:
    cases = [
        # url.ParseQuery (req.ParseForm)
        ("/api/v1/experiments?limit=%zz", 'invalid URL escape "%zz"'),
        ("/api/v1/experiments?name=a%2", 'invalid URL escape "%2"'),
        ("/api/v1/experiments?limit=1;offset=2", "invalid semicolon separator in query"),
        # a oneof set twice (fieldByProtoName), and the oneof's own name (an interface field)
        ("/api/v1/trials/1/checkpoints?sortByAttr=SORT_BY_UUID&sortByMetric=loss",
         "field already set for sort_by oneof"),
        ("/api/v1/trials/1/checkpoints?sort_by=x",
         "unexpected type apiv1.isGetTrialCheckpointsRequest_SortBy in *apiv1.GetTrialCheckpointsRequest"),
        # nested messages and wrappers walk into their fields
        ("/api/v1/experiments?experimentIdFilter.lt=x", 'strconv.ParseInt: parsing "x": invalid syntax'),
        ("/api/v1/experiments?archived.value=maybe", 'strconv.ParseBool: parsing "maybe": invalid syntax'),
        ("/api/v1/experiments?experimentIdFilter.incl.x=1", "unexpected repeated field in experimentIdFilter.incl.x"),
        ("/api/v1/trials/1/logs?timestampBefore=2021-01-01T00:00:00Q", ('bad Timestamp: parsing time '
         '"2021-01-01T00:00:00Q" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "Q" as "Z07:00"')),
        ("/api/v1/trials/1/logs?levels=LOG_LEVEL_LOUD", "LOG_LEVEL_LOUD is not a valid logv1.LogLevel"),
        ("/api/v1/trials/metrics/trial_metrics?trialIds=1&trialIds=two",
         'strconv.ParseInt: parsing "two": invalid syntax'),
        # key[value] is the map syntax: on a scalar field the first value is the bracket's
        ("/api/v1/experiments?limit[x]=5", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ]  # fmt: skip
    failures = Failures()
    for url, error in cases:
        failures.check(url, world.anonymous.get(url), *bad_request(error))
    failures.done(minimum=len(cases))


def test_ignored_and_overriding_query_keys(world: World, unchanged: None) -> None:
    # unknown keys are ignored; a path parameter's proto name is filtered out of the query...
    listed = world.api.get(
        "/api/v1/experiments/3/trials", params={"experiment_id": "x", "nope": "1"}
    )
    assert listed.status_code == 200
    assert {t["experimentId"] for t in listed.json()["trials"]} == {3}
    # ...but not its JSON name, which then sets the field again after the path did
    moved = world.api.get("/api/v1/experiments/3/trials", params={"experimentId": "5"})
    assert {t["experimentId"] for t in moved.json()["trials"]} == {5}
    # a scalar given twice takes the first value; routes whose request has no query field
    # (everything bound by the path) never read the query at all
    twice = world.api.get("/api/v1/experiments", params=[("limit", "2"), ("limit", "x")])
    assert len(twice.json()["experiments"]) == 2
    ignored = world.api.get("/api/v1/experiments/3", params={"experimentId": "junk"})
    assert ignored.status_code == 200 and ignored.json()["experiment"]["id"] == 3


# --- 5. unknown ids ---------------------------------------------------------------------------

UUID0 = "00000000-0000-0000-0000-000000000000"
N = "424242"

# (method, path, JSON body or None, status, expected body)
UNKNOWN_IDS: list[tuple[str, str, Any, int, Any]] = [
    # api.NotFoundErrs("<kind>", id, true): "<kind> '<id>' not found" (api/error.go)
    ("GET", f"/api/v1/experiments/{N}", None, 404, unary(5, f"experiment '{N}' not found")),
    ("GET", f"/api/v1/experiments/{N}/trials", None, 404, unary(5, f"experiment '{N}' not found")),
    ("GET", f"/api/v1/experiments/{N}/checkpoints", None, 404, unary(5, f"experiment '{N}' not found")),
    ("PATCH", f"/api/v1/experiments/{N}", {"name": "x"}, 404, unary(5, f"experiment '{N}' not found")),
    ("GET", f"/api/v1/trials/{N}", None, 404, unary(5, f"trial '{N}' not found")),
    ("GET", f"/api/v1/trials/{N}/checkpoints", None, 404, unary(5, f"trial '{N}' not found")),
    ("POST", f"/api/v1/trials/{N}/kill", None, 404, unary(5, f"trial '{N}' not found")),
    ("GET", f"/api/v1/workspaces/{N}", None, 404, unary(5, f"workspace '{N}' not found")),
    ("GET", f"/api/v1/workspaces/{N}/projects", None, 404, unary(5, f"workspace '{N}' not found")),
    ("PATCH", f"/api/v1/workspaces/{N}", {"name": "x"}, 404, unary(5, f"workspace '{N}' not found")),
    ("DELETE", f"/api/v1/workspaces/{N}", None, 404, unary(5, f"workspace '{N}' not found")),
    ("POST", f"/api/v1/workspaces/{N}/archive", None, 404, unary(5, f"workspace '{N}' not found")),
    ("POST", f"/api/v1/workspaces/{N}/projects", {"name": "p"}, 404, unary(5, f"workspace '{N}' not found")),
    ("GET", f"/api/v1/projects/{N}", None, 404, unary(5, f"project '{N}' not found")),
    ("PATCH", f"/api/v1/projects/{N}", {"name": "x"}, 404, unary(5, f"project '{N}' not found")),
    ("DELETE", f"/api/v1/projects/{N}", None, 404, unary(5, f"project '{N}' not found")),
    ("POST", f"/api/v1/projects/{N}/archive", None, 404, unary(5, f"project '{N}' not found")),
    ("PUT", f"/api/v1/projects/{N}/notes", {"notes": []}, 404, unary(5, f"project '{N}' not found")),
    ("GET", "/api/v1/projects/key/NOPE", None, 404, unary(5, "project 'NOPE' not found")),
    ("GET", f"/api/v1/experiments?projectId={N}", None, 404, unary(5, f"project '{N}' not found")),
    ("POST", "/api/v1/experiments-search", {"projectId": int(N)}, 404, unary(5, f"project '{N}' not found")),
    ("GET", f"/api/v1/checkpoints/{UUID0}", None, 404, unary(5, f"checkpoint '{UUID0}' not found")),
    ("POST", f"/api/v1/checkpoints/{UUID0}/metadata", {}, 404, unary(5, f"checkpoint '{UUID0}' not found")),
    ("DELETE", "/api/v1/checkpoints", {"checkpointUuids": [UUID0]}, 404, unary(5, f"checkpoints '{UUID0}' not found")),
    # uuid.Parse fails first: a plain error, 500 (api_checkpoint.go canDoActionOnCheckpoint)
    ("GET", "/api/v1/checkpoints/not-a-uuid", None, 500, unary(13, "invalid UUID length: 10")),
    # ModelFromIdentifier / ModelVersionFromID: %q (api_model.go)
    ("GET", "/api/v1/models/no-such-model", None, 404, unary(5, 'model "no-such-model" not found')),
    ("GET", f"/api/v1/models/{N}", None, 404, unary(5, f'model "{N}" not found')),
    ("GET", "/api/v1/models/no-such-model/versions", None, 404, unary(5, 'model "no-such-model" not found')),
    ("GET", "/api/v1/models/tiny-gpt/versions/99", None, 404, unary(5, 'version 99 for model "tiny-gpt" not found')),
    ("PATCH", "/api/v1/models/no-such-model", {}, 404, unary(5, 'model "no-such-model" not found')),
    ("DELETE", "/api/v1/models/tiny-gpt/versions/99", None, 404, unary(5, 'version 99 for model "tiny-gpt" not found')),
    ("GET", "/api/v1/models/tiny-gpt/versions/99/metrics", None, 404, unary(5, 'version 99 for model "tiny-gpt" not found')),
    ("GET", f"/api/v1/checkpoints/{UUID0}/metrics", None, 404, unary(5, f"checkpoint '{UUID0}' not found")),
    # getFullModelUser: api.NotFoundErrs("user", "", true) names no id (api_user.go)
    ("GET", f"/api/v1/users/{N}", None, 404, unary(5, "user not found")),
    ("GET", "/api/v1/users/nobody/by-username", None, 404, unary(5, "user not found")),
    # the single experiment actions return the bulk result's error as the HTTP error
    ("POST", f"/api/v1/experiments/{N}/pause", None, 404, unary(5, f"experiment '{N}' not found")),
    ("POST", f"/api/v1/experiments/{N}/activate", None, 404, unary(5, f"experiment '{N}' not found")),
    ("POST", f"/api/v1/experiments/{N}/cancel", None, 404, unary(5, f"experiment '{N}' not found")),
    ("POST", f"/api/v1/experiments/{N}/kill", None, 404, unary(5, f"experiment '{N}' not found")),
    ("POST", f"/api/v1/experiments/{N}/archive", None, 404, unary(5, f"experiment '{N}' not found")),
    ("POST", f"/api/v1/experiments/{N}/unarchive", None, 404, unary(5, f"experiment '{N}' not found")),
    ("DELETE", f"/api/v1/experiments/{N}", None, 404, unary(5, f"experiment '{N}' not found")),
    ("POST", f"/api/v1/experiments/{N}/move", {"destinationProjectId": 2}, 404, unary(5, f"experiment '{N}' not found")),
    # label edits read the experiment with a plain query: sql.ErrNoRows is not mapped (500)
    ("PUT", f"/api/v1/experiments/{N}/labels/x", None, 500, unary(13, "sql: no rows in result set")),
    ("DELETE", f"/api/v1/experiments/{N}/labels/x", None, 500, unary(13, "sql: no rows in result set")),
    # bulk actions: 200 with a per-id error (experiment/bulk_action.go ToAPIResults)
    *[("POST", f"/api/v1/projects/2/experiments/{action}", {"experimentIds": [int(N)]}, 200,
       {"results": [{"error": f"rpc error: code = NotFound desc = experiment '{N}' not found", "id": int(N)}]})
      for action in ("activate", "pause", "cancel", "kill", "archive", "unarchive")],
    ("DELETE", "/api/v1/projects/2/experiments/delete", {"experimentIds": [int(N)]}, 200,
     {"results": [{"error": f"rpc error: code = NotFound desc = experiment '{N}' not found", "id": int(N)}]}),
    # streams fail before their first message: the runtime.StreamError shape
    ("GET", f"/api/v1/trials/{N}/logs", None, 404, stream_error(5, 404, f"trial '{N}' not found")),
    ("GET", f"/api/v1/trials/{N}/logs/fields", None, 404, stream_error(5, 404, f"trial '{N}' not found")),
    ("GET", f"/api/v1/trials/metrics/trial_metrics?trialIds={N}&group=training", None, 404,
     stream_error(5, 404, f"trial '{N}' not found")),
]  # fmt: skip


def test_unknown_ids_for_every_resource(world: World, unchanged: None) -> None:
    failures = Failures()
    for method, path, body, status, expected in UNKNOWN_IDS:
        response = world.api.request(method, path, json=body)
        failures.check(f"{method} {path}", response, status, expected)
    failures.done(minimum=len(UNKNOWN_IDS))


# --- 6. filters and sorts of experiments-search and runs ----------------------------------------


def _group(children: list[Any], conjunction: str | None = "and") -> dict[str, Any]:
    group: dict[str, Any] = {"kind": "group", "children": children}
    if conjunction is not None:
        group["conjunction"] = conjunction
    return group


def _field(column: str, operator: str | None, value: Any, **extra: Any) -> dict[str, Any]:
    field = {"kind": "field", "columnName": column, "value": value, **extra}
    if operator is not None:
        field["operator"] = operator
    return field


# experiment_filter.go: the filter string is json.Unmarshal'ed into experimentFilterRoot and
# turned into SQL; every failure is a plain Go error, 500 Internal.
BAD_FILTERS: list[tuple[str, str]] = [
    ("not json", "invalid character 'o' in literal null (expecting 'u')"),
    ("{", "unexpected end of JSON input"),
    ("[]", "json: cannot unmarshal array into Go value of type internal.experimentFilterRoot"),
    ("5", "json: cannot unmarshal number into Go value of type internal.experimentFilterRoot"),
    ('""', "json: cannot unmarshal string into Go value of type internal.experimentFilterRoot"),
    (json.dumps({"filterGroup": {"kind": "group", "children": []}}), "group specified with no conjunction"),
    (json.dumps({"filterGroup": _group([_field("id", "=", 1)], "xor")}), "invalid conjunction value xor"),
    (json.dumps({"filterGroup": _group([_field("id", "~", 1)])}), "invalid operator ~"),
    (json.dumps({"filterGroup": _group([_field("id", None, 1)])}), "field specified with value but no operator"),
    (json.dumps({"filterGroup": _group([_field("nope", "=", 1)])}), "invalid experiment column nope"),
    (json.dumps({"filterGroup": _group([_field("validation.loss", "=", 1, location="LOCATION_TYPE_VALIDATIONS")])}),
     "validation.loss is not a valid metrics id"),
    (json.dumps({"filterGroup": _group([]), "showArchived": "yes"}),
     "json: cannot unmarshal string into Go struct field experimentFilterRoot.ShowArchived of type bool"),
]  # fmt: skip

# sortExperiments / sortRuns: 400 for the sort string's form, 500 for a bad metric name
BAD_SORTS: list[tuple[str, int, str]] = [
    ("id", 400, "invalid sort parameter: id"),
    ("id=asc=desc", 400, "invalid sort parameter: id=asc=desc"),
    ("id=up", 400, "invalid sort direction: up"),
    ("id=ASC", 400, "invalid sort direction: ASC"),
    ("nope=asc", 400, "invalid sort col: nope"),
    ("=asc", 400, "invalid sort col: "),
    ("id=asc,", 400, "invalid sort parameter: "),
    ("validation.x=asc", 500, "validation.x is not a valid metrics id"),
    ("a.b.c.d=desc", 500, "a.b.c.d is not a valid metrics id"),
]


def test_bad_filters_and_sorts(world: World, unchanged: None) -> None:
    failures = Failures()
    for route in ("/api/v1/experiments-search", "/api/v1/runs"):
        for text, error in BAD_FILTERS:
            response = world.api.post(route, json={"projectId": 2, "filter": text})
            failures.check(f"{route} filter={text}", response, 500, unary(13, error))
        for sort, status, error in BAD_SORTS:
            response = world.api.post(route, json={"projectId": 2, "sort": sort})
            failures.check(
                f"{route} sort={sort}", response, status, unary(3 if status == 400 else 13, error)
            )
    failures.done(minimum=40)


# --- 7. missing and invalid tokens ----------------------------------------------------------

AUTHENTICATED_GETS = [
    "/api/v1/experiments", "/api/v1/experiments/1", "/api/v1/experiments/1/trials",
    "/api/v1/experiments/1/checkpoints", "/api/v1/trials/1", "/api/v1/trials/1/checkpoints",
    "/api/v1/workspaces", "/api/v1/workspaces/2", "/api/v1/workspaces/2/projects",
    "/api/v1/projects/2", "/api/v1/models", "/api/v1/models/tiny-gpt",
    "/api/v1/models/tiny-gpt/versions", "/api/v1/users", "/api/v1/me", "/api/v1/auth/user",
    "/api/v1/experiment/labels", "/api/v1/model/labels", "/api/v1/projects/2/columns",
]  # fmt: skip


def token_variants(world: World) -> list[tuple[str, dict[str, str], dict[str, str], str]]:
    """(label, headers, cookies, the auth interceptor's message)."""
    valid = world.api.headers["Authorization"].removeprefix("Bearer ")
    return [
        ("none", {}, {}, "token missing"),
        ("unknown", {"Authorization": "Bearer not-a-token"}, {}, "invalid credentials"),
        ("logged out", {"Authorization": f"Bearer {world.stale_token}"}, {}, "invalid credentials"),
        ("no Bearer", {"Authorization": valid}, {}, "invalid credentials"),
        ("lower-case bearer", {"Authorization": f"bearer {valid}"}, {}, "invalid credentials"),
        ("Basic", {"Authorization": "Basic YWRtaW46"}, {}, "invalid credentials"),
        ("bare Bearer", {"Authorization": "Bearer"}, {}, "invalid credentials"),
        ("cookie", {}, {"auth": "not-a-token"}, "invalid credentials"),
        ("x-user-token", {"Grpc-Metadata-x-user-token": "Bearer not-a-token"}, {}, "invalid credentials"),
        ("x-user-token first", {"Grpc-Metadata-x-user-token": "junk", "Authorization": f"Bearer {valid}"}, {},
         "invalid credentials"),
        ("allocation token", {"Grpc-Metadata-x-allocation-token": "Bearer not-a-token"}, {}, "invalid credentials"),
    ]  # fmt: skip


def test_missing_and_invalid_tokens(world: World, unchanged: None) -> None:
    failures = Failures()
    for label, headers, cookies, message in token_variants(world):
        client = httpx.Client(base_url=world.demo.url, headers=headers, cookies=cookies, timeout=60)
        with client:
            for path in AUTHENTICATED_GETS:
                failures.check(f"{label} GET {path}", client.get(path), 401, unary(16, message))
            stream = client.get("/api/v1/trials/1/logs")
            failures.check(f"{label} logs", stream, 401, stream_error(16, 401, message))
            patch = client.patch("/api/v1/experiments/1", json={"name": "hijacked"})
            failures.check(f"{label} PATCH", patch, 401, unary(16, message))
    failures.done(minimum=200)


def test_login_errors(world: World, unchanged: None) -> None:
    # api_auth.go Login
    cases = [
        ({}, 400, unary(3, "missing argument: username")),
        ({"username": "", "password": "x"}, 400, unary(3, "missing argument: username")),
        ({"username": "nobody"}, 401, unary(16, "invalid credentials")),
        ({"username": "alice", "password": "wrong"}, 401, unary(16, "invalid credentials")),
        ({"username": "alice"}, 401, unary(16, "invalid credentials")),
        ({"username": "admin", "password": "x"}, 401, unary(16, "invalid credentials")),
    ]
    failures = Failures()
    for body, status, expected in cases:
        failures.check(
            f"login {body}", world.anonymous.post("/api/v1/auth/login", json=body), status, expected
        )
    failures.done(minimum=len(cases))


# --- 8. unknown routes and methods ----------------------------------------------------------

NOT_IMPLEMENTED = unary(12, "Not Implemented")  # runtime.ErrUnknownURI


def test_unknown_routes_and_methods(world: World, unchanged: None) -> None:
    cases: list[tuple[str, str, int, Any]] = [
        ("GET", "/api/v1/nope", 501, NOT_IMPLEMENTED),
        ("GET", "/api/v1/experiments/1/nope", 501, NOT_IMPLEMENTED),
        ("GET", "/api/v1/experiments/1/trials/2/3", 501, NOT_IMPLEMENTED),
        ("DELETE", "/api/v1/experiments", 501, NOT_IMPLEMENTED),
        ("PUT", "/api/v1/experiments/1", 501, NOT_IMPLEMENTED),
        ("POST", "/api/v1/models/tiny-gpt", 501, NOT_IMPLEMENTED),
        ("PATCH", "/api/v1/auth/login", 501, NOT_IMPLEMENTED),
        ("HEAD", "/api/v1/experiments", 501, None),
        ("OPTIONS", "/api/v1/experiments", 501, NOT_IMPLEMENTED),
        # a final segment holding ":" is a custom verb, and no route has one (pattern.go)
        ("GET", "/api/v1/models/tiny:gpt", 501, NOT_IMPLEMENTED),
        ("GET", "/api/v1/experiments/1:get", 501, NOT_IMPLEMENTED),
        ("GET", "/api/v1/experiments/:x", 501, NOT_IMPLEMENTED),
        # Echo removes one trailing slash before the gateway: "/api/v1/" becomes "/api/v1"
        ("GET", "/api/v1/", 501, NOT_IMPLEMENTED),
        # ...and "experiments//" keeps an empty last segment, which {experiment_id} matches
        (
            "GET",
            "/api/v1/experiments//",
            400,
            unary(
                3,
                "type mismatch, parameter: experiment_id,"
                ' error: strconv.ParseInt: parsing "": invalid syntax',
            ),
        ),
        # outside /api/v1/*: Echo's own 404 (api/error.go JSONErrorHandler)
        ("GET", "/api/v1", 404, {"message": "Not Found"}),
        ("GET", "/api/v2/experiments", 404, {"message": "Not Found"}),
        ("GET", "/nope", 404, {"message": "Not Found"}),
    ]
    failures = Failures()
    for method, path, status, body in cases:
        response = world.anonymous.request(method, path)
        if body is None:  # HEAD: no body
            failures.check(f"{method} {path}", response, status, "")
        else:
            failures.check(f"{method} {path}", response, status, body)
    failures.done(minimum=len(cases))


def test_unimplemented_rpcs_still_parse_first(world: World, unchanged: None) -> None:
    """An RPC detorm.local does not serve answers 501 only once the gateway has parsed it."""
    bad_query = world.anonymous.get("/api/v1/tokens", params={"orderBy": "SIDEWAYS"})
    assert (bad_query.status_code, bad_query.json()) == bad_request(
        "SIDEWAYS is not a valid apiv1.OrderBy"
    )
    served_nowhere = world.api.get("/api/v1/tokens")
    assert served_nowhere.status_code == 501
    assert served_nowhere.json()["error"]["code"] == 12


# --- 9. correct requests are still answered ---------------------------------------------------


def test_correct_requests_after_the_storm(world: World, unchanged: None) -> None:
    demo = world.demo
    listed = world.api.get(
        "/api/v1/experiments", params={"limit": "-1", "orderBy": "ORDER_BY_DESC"}
    )
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["experiments"]] == demo.column(
        "SELECT id FROM experiments ORDER BY id DESC"
    )
    one = world.api.get("/api/v1/experiments/1").json()["experiment"]
    assert (one["id"], one["name"]) == (1, demo.value("SELECT name FROM experiments WHERE id = 1"))
    search = world.api.post(
        "/api/v1/experiments-search",
        json={"projectId": 2, "limit": 5, "sort": "id=desc",
              "filter": json.dumps({"filterGroup": _group([_field("id", ">", 0)]), "showArchived": True})},
    )  # fmt: skip
    assert [e["experiment"]["id"] for e in search.json()["experiments"]] == demo.column(
        "SELECT id FROM experiments WHERE project_id = 2 ORDER BY id DESC LIMIT 5"
    )
    logs = world.api.get("/api/v1/trials/1/logs", params={"limit": "3"})
    lines = [json.loads(line)["result"]["log"] for line in logs.text.splitlines()]
    assert lines == demo.column("SELECT log FROM trial_logs WHERE trial_id = 1 ORDER BY id LIMIT 3")
    me = world.api.get("/api/v1/me").json()["user"]
    assert me["username"] == "admin"
