"""Go standard library behaviour the master's HTTP layer shows in its error messages.

``strconv`` (``Quote``, ``ParseInt``, ``ParseUint``, ``ParseBool``, ``ParseFloat``), the
``encoding/json`` scanner (its syntax errors, as ``json.Decoder`` and ``json.Unmarshal`` report
them), ``time.Parse`` with ``time.RFC3339Nano``, ``net/url.ParseQuery`` and the path of
``net/url.ParseRequestURI``. Each function raises :class:`GoError` carrying the exact message Go
produces, which grpc-gateway puts in its 400 bodies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote_from_bytes

__all__ = [
    "GoError",
    "MAX_DEPTH",
    "json_syntax_error",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_query",
    "parse_rfc3339nano",
    "quote",
    "quote_char",
    "request_path",
]


class GoError(ValueError):
    """A Go error; ``str()`` is its ``Error()`` text."""


# --- strconv -------------------------------------------------------------------------------------
_ESCAPES: Final = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    "\\": "\\\\", '"': '\\"',
}  # fmt: skip


def _is_print(char: str) -> bool:
    # strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space
    return char == " " or (char.isprintable() and not char.isspace())


def quote(text: str | bytes) -> str:
    """``strconv.Quote`` (``%q``); bytes that are not UTF-8 are written ``\\xNN``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif _is_print(char):
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _num_error(fn: str, text: str, reason: str) -> GoError:
    return GoError(f"strconv.{fn}: parsing {quote(text)}: {reason}")


def _underscore_ok(text: str) -> bool:
    """``strconv.underscoreOK``: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hexa = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i = 2
        saw = "0"
        hexa = text[1].lower() == "x"
    while i < len(text):
        char = text[i]
        if "0" <= char <= "9" or (hexa and "a" <= char.lower() <= "f"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
        i += 1
    return saw != "_"


def parse_uint(text: str, base: int, bits: int, *, fn: str = "ParseUint") -> int:
    """``strconv.ParseUint``; a range error carries the largest value as Go returns it."""
    if text == "":
        raise _num_error(fn, text, "invalid syntax")
    base0 = base == 0
    digits = text
    if base == 0:
        base = 10
        if text[0] == "0":
            prefix = text[1:2].lower()
            if len(text) >= 3 and prefix in ("b", "o", "x"):
                base = {"b": 2, "o": 8, "x": 16}[prefix]
                digits = text[2:]
            else:
                base = 8
                digits = text[1:]
    max_value = (1 << bits) - 1
    cutoff = (1 << 64) // base + 1
    value = 0
    underscores = False
    for char in digits:
        if char == "_" and base0:
            underscores = True
            continue
        if "0" <= char <= "9":
            digit = ord(char) - ord("0")
        elif "a" <= char.lower() <= "z" and char.isascii():
            digit = ord(char.lower()) - ord("a") + 10
        else:
            raise _num_error(fn, text, "invalid syntax")
        if digit >= base:
            raise _num_error(fn, text, "invalid syntax")
        if value >= cutoff:
            raise _RangeError(fn, text, max_value)
        value = value * base + digit
        if value > max_value:
            raise _RangeError(fn, text, max_value)
    if underscores and not _underscore_ok(text):
        raise _num_error(fn, text, "invalid syntax")
    return value


class _RangeError(GoError):
    def __init__(self, fn: str, text: str, value: int) -> None:
        super().__init__(str(_num_error(fn, text, "value out of range")))
        self.value = value


def parse_int(text: str, base: int = 0, bits: int = 64) -> int:
    """``strconv.ParseInt(text, base, bits)`` (grpc-gateway uses base 0: ``0x``, ``0o``, ``0b``,
    a leading ``0`` for octal, and ``_`` separators)."""
    if text == "":
        raise _num_error("ParseInt", text, "invalid syntax")
    body, negative = text, False
    if text[0] == "+":
        body = text[1:]
    elif text[0] == "-":
        body, negative = text[1:], True
    try:
        value = parse_uint(body, base, bits)
    except _RangeError as err:
        value = err.value
    except GoError:
        raise _num_error("ParseInt", text, "invalid syntax") from None
    cutoff = 1 << (bits - 1)
    if (not negative and value >= cutoff) or (negative and value > cutoff):
        raise _num_error("ParseInt", text, "value out of range")
    return -value if negative else value


_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(text: str) -> bool:
    """``strconv.ParseBool``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _num_error("ParseBool", text, "invalid syntax")


_DECIMAL: Final = re.compile(r"[+-]?(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d[\d_]*)?")
_HEXFLOAT: Final = re.compile(r"[+-]?0[xX]([\da-fA-F_]*(\.[\da-fA-F_]*)?)([pP][+-]?\d[\d_]*)")
_SPECIAL: Final = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def parse_float(text: str, bits: int = 64) -> float:
    """``strconv.ParseFloat``: decimal and hexadecimal forms, ``inf``/``nan``; overflow is a range
    error."""
    if _SPECIAL.fullmatch(text):
        return float(text.lower().replace("infinity", "inf"))
    if _DECIMAL.fullmatch(text):
        if "_" in text:
            raise _num_error("ParseFloat", text, "invalid syntax")  # only with a base prefix
        value = float(text)
    elif _HEXFLOAT.fullmatch(text):
        try:
            value = float.fromhex(text.replace("_", ""))
        except (ValueError, OverflowError):
            raise _num_error("ParseFloat", text, "invalid syntax") from None
    else:
        raise _num_error("ParseFloat", text, "invalid syntax")
    limit = 3.4028234663852886e38 if bits == 32 else 1.7976931348623157e308
    if math.isinf(value) or abs(value) > limit:
        raise _num_error("ParseFloat", text, "value out of range")
    return value


# --- encoding/json scanner -------------------------------------------------------------------------


def quote_char(byte: int) -> str:
    """``encoding/json.quoteChar``: the byte as a rune, quoted with single quotes."""
    if byte == ord("'"):
        return "'\\''"
    if byte == ord('"'):
        return "'\"'"
    inner = quote(chr(byte))[1:-1]
    return f"'{inner}'"


_SPACE: Final = frozenset(b" \t\r\n")
MAX_DEPTH: Final = 10000


class _Scanner:
    """``encoding/json``'s scanner state machine, on bytes."""

    def __init__(self) -> None:
        self.step: Callable[[int], str] = self._begin_value
        self.stack: list[str] = []  # "key", "value" (object) or "array"
        self.err: str | None = None
        self.end_top = False

    def _error(self, byte: int, context: str) -> str:
        self.step = lambda _byte: "error"
        self.err = f"invalid character {quote_char(byte)} {context}"
        return "error"

    def _push(self, byte: int, state: str) -> str:
        self.stack.append(state)
        if len(self.stack) > MAX_DEPTH:
            return self._error(byte, "exceeded max depth")
        return "begin"

    def _begin_value_or_empty(self, c: int) -> str:
        if c in _SPACE:
            return "skip"
        if c == ord("]"):
            return self._end_value(c)
        return self._begin_value(c)

    def _begin_value(self, c: int) -> str:
        if c in _SPACE:
            return "skip"
        char = chr(c)
        if char == "{":
            self.step = self._begin_string_or_empty
            return self._push(c, "key")
        if char == "[":
            self.step = self._begin_value_or_empty
            return self._push(c, "array")
        literal: dict[str, Callable[[int], str]] = {
            '"': self._in_string, "-": self._neg, "0": self._zero, "t": self._literal("rue", "true"),
            "f": self._literal("alse", "false"), "n": self._literal("ull", "null"),
        }  # fmt: skip
        if char in literal:
            self.step = literal[char]
            return "continue"
        if "1" <= char <= "9":
            self.step = self._one
            return "continue"
        return self._error(c, "looking for beginning of value")

    def _begin_string_or_empty(self, c: int) -> str:
        if c in _SPACE:
            return "skip"
        if c == ord("}"):
            self.stack[-1] = "value"
            return self._end_value(c)
        return self._begin_string(c)

    def _begin_string(self, c: int) -> str:
        if c in _SPACE:
            return "skip"
        if c == ord('"'):
            self.step = self._in_string
            return "continue"
        return self._error(c, "looking for beginning of object key string")

    def _end_value(self, c: int) -> str:
        if not self.stack:
            self.step = self._end_top
            self.end_top = True
            return self._end_top(c)
        if c in _SPACE:
            self.step = self._end_value
            return "skip"
        state = self.stack[-1]
        char = chr(c)
        if state == "key":
            if char == ":":
                self.stack[-1] = "value"
                self.step = self._begin_value
                return "continue"
            return self._error(c, "after object key")
        if state == "value":
            if char == ",":
                self.stack[-1] = "key"
                self.step = self._begin_string
                return "continue"
            if char == "}":
                self.stack.pop()
                self.step = self._end_value
                return "end_container"
            return self._error(c, "after object key:value pair")
        if char == ",":
            self.step = self._begin_value
            return "continue"
        if char == "]":
            self.stack.pop()
            self.step = self._end_value
            return "end_container"
        return self._error(c, "after array element")

    def _end_top(self, c: int) -> str:
        if c not in _SPACE and self.err is None:
            self.err = f"invalid character {quote_char(c)} after top-level value"
        return "end"

    def _in_string(self, c: int) -> str:
        if c == ord('"'):
            self.step = self._end_value
            return "continue"
        if c == ord("\\"):
            self.step = self._in_string_escape
            return "continue"
        if c < 0x20:
            return self._error(c, "in string literal")
        return "continue"

    def _in_string_escape(self, c: int) -> str:
        if chr(c) in 'bfnrt\\/"':
            self.step = self._in_string
            return "continue"
        if c == ord("u"):
            self.step = self._hex(4)
            return "continue"
        return self._error(c, "in string escape code")

    def _hex(self, remaining: int) -> Callable[[int], str]:
        def step(c: int) -> str:
            if chr(c) in "0123456789abcdefABCDEF":
                self.step = self._in_string if remaining == 1 else self._hex(remaining - 1)
                return "continue"
            return self._error(c, "in \\u hexadecimal character escape")

        return step

    def _neg(self, c: int) -> str:
        if c == ord("0"):
            self.step = self._zero
            return "continue"
        if ord("1") <= c <= ord("9"):
            self.step = self._one
            return "continue"
        return self._error(c, "in numeric literal")

    def _one(self, c: int) -> str:
        if ord("0") <= c <= ord("9"):
            return "continue"
        return self._zero(c)

    def _zero(self, c: int) -> str:
        if c == ord("."):
            self.step = self._dot
            return "continue"
        if c in (ord("e"), ord("E")):
            self.step = self._exp
            return "continue"
        return self._end_value(c)

    def _dot(self, c: int) -> str:
        if ord("0") <= c <= ord("9"):
            self.step = self._dot0
            return "continue"
        return self._error(c, "after decimal point in numeric literal")

    def _dot0(self, c: int) -> str:
        if ord("0") <= c <= ord("9"):
            return "continue"
        if c in (ord("e"), ord("E")):
            self.step = self._exp
            return "continue"
        return self._end_value(c)

    def _exp(self, c: int) -> str:
        if c in (ord("+"), ord("-")):
            self.step = self._exp_sign
            return "continue"
        return self._exp_sign(c)

    def _exp_sign(self, c: int) -> str:
        if ord("0") <= c <= ord("9"):
            self.step = self._exp0
            return "continue"
        return self._error(c, "in exponent of numeric literal")

    def _exp0(self, c: int) -> str:
        if ord("0") <= c <= ord("9"):
            return "continue"
        return self._end_value(c)

    def _literal(self, rest: str, word: str) -> Callable[[int], str]:
        def step(c: int) -> str:
            if c == ord(rest[0]):
                self.step = self._end_value if len(rest) == 1 else self._literal(rest[1:], word)
                return "continue"
            return self._error(c, f"in literal {word} (expecting {quote_char(ord(rest[0]))})")

        return step


def json_syntax_error(data: bytes, *, decoder: bool) -> str | None:
    """The syntax error Go reports for ``data``, or None when it holds a valid value.

    ``decoder=True`` is ``json.Decoder.Decode`` (what grpc-gateway reads a body with): it stops
    after the first complete value and reports truncation as ``unexpected EOF``; an input of only
    spaces is ``io.EOF``, returned here as ``"EOF"``. ``decoder=False`` is ``json.Unmarshal``
    (``checkValid``): the whole input must be one value.
    """
    scanner = _Scanner()
    started = False
    for byte in data:
        result = scanner.step(byte)
        if result == "error":
            return scanner.err
        if result != "skip":
            started = True
        if decoder:
            if result == "end":
                return None
            if result == "end_container" and not scanner.stack:
                return None
        elif scanner.err is not None:
            return scanner.err
    # end of input
    if decoder:
        if not started:
            return "EOF"
        if scanner.end_top or scanner.step(ord(" ")) == "end":
            return None
        return "unexpected EOF"
    # scanner.eof(): a recorded error, else complete, else the error a final space causes
    if scanner.err is not None:
        return scanner.err
    if scanner.end_top:
        return None
    scanner.step(ord(" "))
    return _after_final_space(scanner)


def _after_final_space(scanner: _Scanner) -> str | None:
    if scanner.end_top:
        return scanner.err
    return scanner.err or "unexpected end of JSON input"


# --- time.Parse(time.RFC3339Nano, value) ---------------------------------------------------------
_RFC3339NANO: Final = "2006-01-02T15:04:05.999999999Z07:00"


def _time_quote(text: str) -> str:
    """``time.quote``: non-ASCII and control bytes as ``\\xNN``."""
    out = ['"']
    for char in text:
        if ord(char) >= 0x80 or ord(char) < 0x20:
            out.extend(f"\\x{b:02x}" for b in char.encode("utf-8", "surrogateescape"))
        else:
            if char in '"\\':
                out.append("\\")
            out.append(char)
    out.append('"')
    return "".join(out)


class _TimeBad(Exception):
    pass


def _getnum(text: str, fixed: bool) -> tuple[int, str]:
    if not text[:1].isdigit() or not text[:1].isascii():
        raise _TimeBad
    if not (len(text) > 1 and "0" <= text[1] <= "9"):
        if fixed:
            raise _TimeBad
        return int(text[0]), text[1:]
    return int(text[:2]), text[2:]


def _days_in(month: int, year: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_rfc3339nano(value: str) -> datetime:
    """``time.Parse(time.RFC3339Nano, value)``, with Go's ``ParseError`` messages."""
    original = value

    def cannot(value_elem: str, layout_elem: str) -> GoError:
        return GoError(
            f"parsing time {_time_quote(original)} as {_time_quote(_RFC3339NANO)}: cannot parse "
            f"{_time_quote(value_elem)} as {_time_quote(layout_elem)}"
        )

    def out_of_range(what: str) -> GoError:
        return GoError(f"parsing time {_time_quote(original)}: {what} out of range")

    def skip(prefix: str) -> None:
        nonlocal value
        if not value.startswith(prefix):
            raise cannot(value, prefix)
        value = value[len(prefix) :]

    def number(layout: str, fixed: bool, high: int, low: int, what: str) -> int:
        nonlocal value
        hold = value
        try:
            got, value = _getnum(value, fixed)
        except _TimeBad:
            raise cannot(hold, layout) from None
        if not low <= got < high:
            raise out_of_range(what)
        return got

    hold = value
    if len(value) < 4 or not ("0" <= value[0] <= "9"):
        raise cannot(hold, "2006")
    if not all("0" <= c <= "9" for c in value[:4]):
        raise cannot(hold, "2006")
    year, value = int(value[:4]), value[4:]
    skip("-")
    month = number("01", True, 13, 1, "month")
    skip("-")
    hold = value
    try:
        day, value = _getnum(value, True)
    except _TimeBad:
        raise cannot(hold, "02") from None
    skip("T")
    hour = number("15", False, 24, 0, "hour")
    skip(":")
    minute = number("04", True, 60, 0, "minute")
    skip(":")
    second = number("05", True, 60, 0, "second")
    nanos = 0
    if len(value) >= 2 and value[0] in ".," and "0" <= value[1] <= "9":
        i = 1
        while i < len(value) and "0" <= value[i] <= "9":
            i += 1
        digits = value[1 : min(i, 10)]
        nanos = int(digits) * 10 ** (9 - len(digits))
        value = value[i:]
    offset = 0
    hold = value
    if value[:1] == "Z":
        value = value[1:]
    else:
        if len(value) < 6 or value[3] != ":":
            raise cannot(hold, "Z07:00")
        sign, hh, mm, value = value[0], value[1:3], value[4:6], value[6:]
        try:
            hours, _ = _getnum(hh, True)
            minutes, _ = _getnum(mm, True)
        except _TimeBad:
            raise cannot(hold, "Z07:00") from None
        if hours > 24:
            raise out_of_range("time zone offset hour")
        if minutes > 60:
            raise out_of_range("time zone offset minute")
        if sign not in "+-":
            raise cannot(hold, "Z07:00")
        offset = (hours * 60 + minutes) * 60 * (-1 if sign == "-" else 1)
    if value:
        raise GoError(f"parsing time {_time_quote(original)}: extra text: {_time_quote(value)}")
    if day < 1 or day > _days_in(month, year):
        raise out_of_range("day")
    moment = datetime(max(year, 1), month, day, hour, minute, second, nanos // 1000, tzinfo=UTC)
    return moment - timedelta(seconds=offset) if offset else moment


# --- net/url: ParseQuery and a request's path ----------------------------------------------------
def _unescape(text: str, *, plus_is_space: bool = True) -> str:
    """``url.QueryUnescape`` (``+`` is a space) or ``url.PathUnescape`` (``+`` stays): ``%XX`` is
    a byte; a bad escape is an error."""
    if "%" not in text and not (plus_is_space and "+" in text):
        return text
    out = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        byte = raw[i]
        if byte == ord("%"):
            pair = raw[i + 1 : i + 3]
            if len(pair) < 2 or not all(chr(b) in "0123456789abcdefABCDEF" for b in pair):
                bad = raw[i : i + 3].decode("utf-8", "surrogateescape")
                raise GoError(f"invalid URL escape {quote(bad)}")
            out.append(int(pair, 16))
            i += 3
        elif byte == ord("+") and plus_is_space:
            out.append(ord(" "))
            i += 1
        else:
            out.append(byte)
            i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_query(query: str) -> tuple[list[tuple[str, str]], GoError | None]:
    """``url.ParseQuery``: the pairs that parsed, and the first error (Go keeps going after one)."""
    pairs: list[tuple[str, str]] = []
    first: GoError | None = None
    for part in query.split("&"):
        if not part:
            continue
        if ";" in part:
            first = first or GoError("invalid semicolon separator in query")
            continue
        key, _, value = part.partition("=")
        try:
            pairs.append((_unescape(key), _unescape(value)))
        except GoError as err:
            first = first or err
    return pairs, first


def request_path(raw: str) -> tuple[str, str]:
    """``URL.Path`` and ``URL.RawPath`` of a request target's path (``url.setPath``).

    ``Path`` is unescaped once (bytes that are not UTF-8 kept as surrogates); ``RawPath`` is the
    path as sent when Go's own escaping of ``Path`` would differ from it, else ``""``. A bad
    escape raises :class:`GoError` (``net/http`` then answers a plain ``400 Bad Request``).
    """
    path = _unescape(raw, plus_is_space=False)
    # shouldEscape(c, encodePath) keeps the unreserved bytes (quote's own) and "$&+,/:;=@"
    escaped = quote_from_bytes(path.encode("utf-8", "surrogateescape"), safe="$&+,/:;=@")
    return path, ("" if escaped == raw else raw)
