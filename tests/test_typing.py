"""The typing surface: files in tests/typing/pass must type-check; files in tests/typing/fail must
fail exactly on the lines marked ``# E: <message fragment>``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

from tests.conftest import ROOT

TYPING = ROOT / "tests" / "typing"
MARKER = re.compile(r"#\s*E:\s*(.+)$")


def _mypy(path: Path) -> list[str]:
    stdout, stderr, _ = api.run(
        ["--strict", "--no-incremental", "--config-file", str(ROOT / "mypy.ini"), str(path)]
    )
    assert not stderr, stderr
    return [line for line in stdout.splitlines() if ": error:" in line]


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
        match = re.match(r"(.*?):(\d+): error: (.*)", line)
        assert match and Path(match.group(1)).resolve() == path, f"error outside {path}: {line}"
        errors.setdefault(int(match.group(2)), []).append(match.group(3))
    assert set(errors) == set(expected), errors
    for number, fragment in expected.items():
        assert any(fragment in message for message in errors[number]), (number, errors[number])
