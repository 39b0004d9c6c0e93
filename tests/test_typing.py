"""The typing surface: files in tests/typing/pass must type-check; files in tests/typing/fail must
fail exactly on the lines marked ``# E: <message fragment>``."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from mypy import api

from tests.conftest import ROOT

TYPING = ROOT / "tests" / "typing"
MARKER = re.compile(r"#\s*E:\s*(.+)$")


@functools.cache
def _mypy_errors(folder: Path) -> dict[Path, list[str]]:
    """The errors of one mypy run over every file of ``folder`` (a file's errors: ``line: message``).

    One run per folder, not per file: most of a run is checking detorm and its dependencies,
    which every file shares. The files of a folder are unrelated top-level modules."""
    files = sorted(path.resolve() for path in folder.glob("*.py"))
    stdout, stderr, _ = api.run(
        ["--strict", "--no-incremental", "--config-file", str(ROOT / "mypy.ini"), *map(str, files)]
    )
    assert not stderr, stderr
    errors: dict[Path, list[str]] = {path: [] for path in files}
    for line in stdout.splitlines():
        if ": error:" in line:
            match = re.match(r"(.*?):(\d+): error: (.*)", line)
            assert match, line
            path = Path(match.group(1)).resolve()
            assert path in errors, f"error outside {folder}: {line}"
            errors[path].append(f"{match.group(2)}: {match.group(3)}")
    return errors


def _mypy(path: Path) -> list[str]:
    return _mypy_errors(path.parent)[path.resolve()]


@pytest.mark.parametrize("path", sorted((TYPING / "pass").glob("*.py")), ids=lambda p: p.name)
def test_passes_strict(path: Path) -> None:
    assert _mypy(path) == []


@pytest.mark.parametrize("path", sorted((TYPING / "fail").glob("*.py")), ids=lambda p: p.name)
def test_fails_where_marked(path: Path) -> None:
    expected = {
        number: MARKER.search(line).group(1).strip()  # type: ignore[union-attr]
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if MARKER.search(line)
    }
    errors: dict[int, list[str]] = {}
    for line in _mypy(path):
        where, message = line.split(": ", 1)
        errors.setdefault(int(where), []).append(message)
    assert set(errors) == set(expected), errors
    for number, fragment in expected.items():
        assert any(fragment in message for message in errors[number]), (number, errors[number])
