"""The gateway's parsing helpers: Go's strconv, JSON scanner, time.Parse and url.ParseQuery
messages, jsonpb decoding, and the generated request schema."""

from __future__ import annotations

import pytest

from detorm.local._errors import ApiError, Code
from detorm.local._gateway import prepare
from detorm.local._gateway_schema import ENUMS, MESSAGES, ROUTES
from detorm.local._go import (
    GoError,
    json_syntax_error,
    parse_bool,
    parse_int,
    parse_query,
    parse_rfc3339nano,
    quote,
)
from detorm.local._jsonpb import decode
from detorm.local._route_table import ROUTES as TEMPLATES


def test_the_schema_covers_every_route_of_the_table() -> None:
    assert {op for op, *_ in TEMPLATES} == set(ROUTES)
    for op, _method, template, body in TEMPLATES:
        request, body_field, params, _ = ROUTES[op]
        assert request in MESSAGES
        assert body_field == ("" if body == "" else body), op
        assert [name for name, _ in params] == [
            part[1:-1] for part in template.split("/") if part.startswith("{")
        ], op
    for go_type, members in ENUMS.values():
        assert "." in go_type and members[0][1] == 0


@pytest.mark.parametrize(
    ("text", "bits", "value"),
    [("0", 32, 0), ("-0", 32, 0), ("+7", 32, 7), ("0x1F", 32, 31), ("017", 32, 15),
     ("0o17", 32, 15), ("0b101", 32, 5), ("1_000", 32, 1000), ("2147483647", 32, 2**31 - 1),
     ("-2147483648", 32, -(2**31)), ("9223372036854775807", 64, 2**63 - 1)],
)  # fmt: skip
def test_parse_int_accepts_go_syntax(text: str, bits: int, value: int) -> None:
    assert parse_int(text, 0, bits) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "invalid syntax"), (" 1", "invalid syntax"), ("1 ", "invalid syntax"),
     ("1.0", "invalid syntax"), ("08", "invalid syntax"), ("_1", "invalid syntax"),
     ("1__2", "invalid syntax"), ("0x", "invalid syntax"), ("\u0661", "invalid syntax"),
     ("2147483648", "value out of range"), ("-2147483649", "value out of range"),
     ("99999999999999999999999", "value out of range")],
)  # fmt: skip
def test_parse_int_errors(text: str, reason: str) -> None:
    with pytest.raises(GoError) as failure:
        parse_int(text, 0, 32)
    assert str(failure.value) == f"strconv.ParseInt: parsing {quote(text)}: {reason}"


def test_parse_bool_and_quote() -> None:
    assert [parse_bool(v) for v in ("1", "t", "TRUE", "True", "0", "F", "false")] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip
    with pytest.raises(GoError, match='^strconv.ParseBool: parsing "yes": invalid syntax$'):
        parse_bool("yes")
    assert quote('a"b\\c\n\x01\x7fé\u00a0\U0001f600') == '"a\\"b\\\\c\\n\\x01\\x7fé\\u00a0😀"'


@pytest.mark.parametrize(
    ("data", "decoder", "unmarshal"),
    [(b"{}", None, None), (b"{} x", None, "invalid character 'x' after top-level value"),
     (b"", "EOF", "unexpected end of JSON input"), (b"  ", "EOF", "unexpected end of JSON input"),
     (b"[", "unexpected EOF", "unexpected end of JSON input"),
     (b"1.", "unexpected EOF", "invalid character ' ' after decimal point in numeric literal"),
     (b"tr", "unexpected EOF", "invalid character ' ' in literal true (expecting 'u')"),
     (b"01", None, "invalid character '1' after top-level value"),
     (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair",
      "invalid character '\"' after object key:value pair"),
     (b"[1,]", "invalid character ']' looking for beginning of value",
      "invalid character ']' looking for beginning of value"),
     (b"\xef\xbb\xbf{}", "invalid character '\u00ef' looking for beginning of value",
      "invalid character '\u00ef' looking for beginning of value")],
)  # fmt: skip
def test_json_scanner_messages(data: bytes, decoder: str | None, unmarshal: str | None) -> None:
    assert json_syntax_error(data, decoder=True) == decoder
    assert json_syntax_error(data, decoder=False) == unmarshal


@pytest.mark.parametrize(
    ("value", "message"),
    [("2021-01-01T00:00:00+25:00", "time zone offset hour out of range"),
     ("2021-02-29T00:00:00Z", "day out of range"), ("2021-01-01T00:60:00Z", "minute out of range"),
     ("2021-1-01T00:00:00Z", 'cannot parse "1-01T00:00:00Z" as "01"'),
     ("2021-01-01T00:00:00", 'cannot parse "" as "Z07:00"'),
     ("21-01-01T00:00:00Z", 'cannot parse "21-01-01T00:00:00Z" as "2006"')],
)  # fmt: skip
def test_time_parse_messages(value: str, message: str) -> None:
    with pytest.raises(GoError) as failure:
        parse_rfc3339nano(value)
    assert message in str(failure.value)
    assert str(failure.value).startswith(f'parsing time "{value}"')


def test_time_parse_accepts_what_go_accepts() -> None:
    parsed = parse_rfc3339nano("2021-01-01T5:04:05,123456789-01:30")
    assert parsed.isoformat() == "2021-01-01T06:34:05.123456+00:00"


def test_parse_query_keeps_going_after_an_error() -> None:
    pairs, error = parse_query("a=1&b=%zz&c=x+y&d&e=%41")
    assert pairs == [("a", "1"), ("c", "x y"), ("d", ""), ("e", "A")]
    assert str(error) == 'invalid URL escape "%zz"'


def test_jsonpb_canonical_form() -> None:
    document = decode(
        b'{"experiment_ids": ["7", 8], "experimentIds": [9], "filters": {"states": [4, "STATE_PAUSED"],'
        b' "archived": null, "user_ids": [1]}, "projectId": "16"}',
        "determined.api.v1.ArchiveExperimentsRequest",
    )
    # the JSON name wins over the proto name; enums by name; null fields left out; quoted ints
    assert document == {
        "experimentIds": [9],
        "filters": {"states": ["STATE_STOPPING_CANCELED", "STATE_PAUSED"], "userIds": [1]},
        "projectId": 16,
    }
    with pytest.raises(GoError, match="^invalid character 'x' after top-level value$"):
        decode(b'{"projectId": "0x10"}', "determined.api.v1.ArchiveExperimentsRequest")


def test_prepare_reads_the_query_only_where_the_gateway_does() -> None:
    assert prepare("GetExperiment", {"experiment_id": "1"}, "limit=x", b"").query == []
    with pytest.raises(ApiError) as failure:
        prepare("GetExperiments", {}, "limit=x", b"")
    assert (failure.value.code, failure.value.message) == (
        Code.INVALID_ARGUMENT,
        'strconv.ParseInt: parsing "x": invalid syntax',
    )
