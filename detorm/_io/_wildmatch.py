"""gitwildmatch patterns (the ``.gitignore`` syntax), as the det CLI matches ``.detignore``.

The det CLI hands its ignore lines to ``pathspec.PathSpec.from_lines(GitWildMatchPattern, ...)``;
detorm does not depend on pathspec, so this module rebuilds the same thing: every line becomes
the regular expression pathspec 1.1 builds for it (``GitIgnoreSpecPattern``), searched with
Python's ``re`` like pathspec's default backend, and the last pattern that matches a path
decides. Using the same regular expressions, not a hand-written matcher, keeps even pathspec's
quirks (``$`` also matching before a trailing newline in a file name, ``.`` not matching a
newline, a bracket expression handed to ``re`` as is).

The rules, per line:

* a blank line, or one starting with ``#``, matches nothing (``\\#`` is a literal ``#``);
  trailing whitespace is dropped unless the line ends with ``\\`` and a space;
* ``!`` negates (a match re-includes the path), ``\\!`` is a literal ``!``;
* a ``/`` at the start or in the middle anchors the pattern to the root, otherwise it matches
  at any depth; a ``/`` at the end matches only below a directory (``dir/`` matches
  ``dir/`` and ``dir/x``, not ``dir``);
* ``**`` as a whole segment matches any number of segments (``**/x``, ``a/**/b``, ``a/**``);
  ``*`` matches within a segment, ``?`` one character but ``/``, ``[...]`` and ``[!...]`` a
  class; ``\\`` escapes the next character;
* a line with an unclosed ``[`` is ignored (as git does); a line ending with a lone ``\\``, a
  lone ``!`` or a class ``re`` refuses (``[z-a]``) raises :class:`PatternError`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["PathSpec", "Pattern", "PatternError", "compile_line", "line_to_regex"]

# pathspec marks "matched as a directory" with a named group; a PathSpec only asks whether a
# pattern matched at all, so a plain "/" matches the same paths.
_DIR_MARK: Final = "/"
_DIR_MARK_OR_END: Final = "(?:/|$)"


class PatternError(ValueError):
    """A line that pathspec refuses to compile (the det CLI fails on it too)."""


class _RangeError(PatternError):
    """An unclosed bracket expression: git (and pathspec) drop the whole line."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """One compiled line: its expression, and whether a match ignores (True) or re-includes."""

    line: str
    regex: re.Pattern[str]
    include: bool


def line_to_regex(line: str) -> tuple[str, bool] | None:
    """The regular expression of one pattern line and whether it ignores (``!`` re-includes);
    ``None`` for a line that matches nothing (blank, comment, ``/``, unclosed ``[``)."""
    # An escaped trailing space is kept, and then so is everything before it (the check is on
    # the raw line: a file's "foo\ \n" loses its newline and space, and its "\" is left alone).
    text = line if line.endswith("\\ ") else line.rstrip()
    if not text or text.startswith("#") or text == "/":
        return None
    include = not text.startswith("!")
    if not include:
        text = text[1:]
    segments = text.split("/")
    is_dir = not segments[-1]  # "dir/" matches only what lies below a directory
    override = _normalize(is_dir, segments)
    if override is not None:
        return override, include
    try:
        return "".join(_translate(is_dir, segments)), include
    except _RangeError:
        return None


def compile_line(line: str) -> Pattern | None:
    """:func:`line_to_regex`, compiled; raises :class:`PatternError` for a refused line."""
    translated = line_to_regex(line)
    if translated is None:
        return None
    regex, include = translated
    try:
        with warnings.catch_warnings():
            # A class such as "[[:alpha:]]" or "[a--b]" reaches re as is, as in pathspec; re
            # warns that their meaning may change one day. Its meaning today is the CLI's.
            warnings.simplefilter("ignore", FutureWarning)
            compiled = re.compile(regex)
    except re.error as err:
        raise PatternError(f"invalid pattern {line.rstrip(chr(10))!r}: {err}") from None
    return Pattern(line, compiled, include)


class PathSpec:
    """Ignore lines compiled once; :meth:`match_file` says whether a path is ignored."""

    __slots__ = ("_last_first", "patterns")

    def __init__(self, lines: Iterable[str]) -> None:
        # pathspec.PathSpec.from_lines skips empty strings before compiling anything.
        compiled = (compile_line(line) for line in lines if line)
        self.patterns: tuple[Pattern, ...] = tuple(p for p in compiled if p is not None)
        self._last_first = self.patterns[::-1]

    def match_file(self, path: str) -> bool:
        """Whether ``path`` (relative, ``/``-separated; a directory may end with ``/``) is
        ignored: the last pattern matching it decides, none means kept."""
        path = _normalize_path(path)
        for pattern in self._last_first:
            if pattern.regex.search(path) is not None:
                return pattern.include
        return False


def _normalize_path(path: str) -> str:
    # pathspec.util.normalize_file: one leading "/" or "./" is dropped.
    if path.startswith("/"):
        return path[1:]
    if path.startswith("./"):
        return path[2:]
    return path


def _normalize(is_dir: bool, segments: list[str]) -> str | None:
    """Anchor the segments in place (pathspec's ``__normalize_segments``); returns the whole
    expression instead when the pattern is one of the match-everything forms."""
    if not segments[0]:
        del segments[0]  # "/x": anchored at the root
    elif segments[0] != "**" and (len(segments) == 1 or (len(segments) == 2 and not segments[1])):
        segments.insert(0, "**")  # "x" and "x/" match at any depth
    if not segments:
        raise PatternError("invalid pattern: nothing left after '!' or '/'")
    if not segments[-1]:
        segments[-1] = "**"  # "x/": everything below x
    for i in range(len(segments) - 1, 0, -1):
        if segments[i - 1] == "**" and segments[i] == "**":
            del segments[i]  # "**/**" is "**"
    if segments == ["**"]:
        return _DIR_MARK if is_dir else "."  # "**/" anything below a directory; "**" anything
    if segments == ["**", "*"]:
        return "."
    if segments == ["**", "*", "**"]:
        return _DIR_MARK  # "*/": anything not at the root
    return None


def _translate(is_dir: bool, segments: list[str]) -> list[str]:
    """The expression of normalized segments (pathspec's ``__translate_segments``)."""
    parts: list[str] = []
    need_slash = False
    end = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment == "**":
            if i == 0:
                parts.append("^(?:.+/)?")  # any leading directories, or none
            elif i < end:
                parts.append("(?:/.+)?")  # any middle directories, or none
                need_slash = True
            else:
                parts.append(_DIR_MARK)  # anything below
            continue
        if i == 0:
            parts.append("^")
        if need_slash:
            parts.append("/")
        parts.append("[^/]+" if segment == "*" else _translate_glob(segment))
        if i == end:
            parts.append(_DIR_MARK_OR_END)  # the path itself, or anything below it
        need_slash = True
    return parts


def _translate_glob(segment: str) -> str:
    """One segment's glob as an expression (pathspec's ``_translate_segment_glob``, with
    invalid ranges raising)."""
    regex: list[str] = []
    escape = False
    i, end = 0, len(segment)
    while i < end:
        char = segment[i]
        i += 1
        if escape:
            escape = False
            regex.append(re.escape(char))
        elif char == "\\":
            escape = True
        elif char == "*":
            regex.append("[^/]*")
        elif char == "?":
            regex.append("[^/]")
        elif char == "[":
            expression, i = _bracket(segment, i)
            regex.append(expression)
        else:
            regex.append(re.escape(char))
    if escape:
        raise PatternError(f"invalid pattern: {segment!r} ends with a lone '\\'")
    return "".join(regex)


def _bracket(segment: str, start: int) -> tuple[str, int]:
    """The class opened by the ``[`` just before ``start``, and where the segment continues.
    Its content goes to ``re`` as is (backslashes literal), "!" or "^" first negates, and a
    "]" right after the opening (or the negation) is a member, not the end."""
    end = len(segment)
    j = start
    if j < end and segment[j] in "!^":
        j += 1
    if j < end and segment[j] == "]":
        j += 1
    while j < end and segment[j] != "]":
        j += 1
    if j >= end:
        raise _RangeError(f"unclosed '[' in {segment!r}")
    j += 1
    i = start
    expression = "["
    if segment[i] in "!^":
        expression += "^"
        i += 1
    return expression + segment[i:j].replace("\\", "\\\\"), j
