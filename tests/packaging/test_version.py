"""One version (semver), in detorm/_version.py, read by the packaging and listed in CHANGELOG.md."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import detorm

ROOT = Path(__file__).resolve().parents[2]
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
)


def test_the_version_is_semver_and_single_sourced() -> None:
    assert SEMVER.fullmatch(detorm.__version__)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "detorm._version.__version__"}
    assert importlib.metadata.version("detorm") == detorm.__version__


def test_the_changelog_lists_the_version_and_what_is_unreleased() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert all(SEMVER.fullmatch(version) for version in headings[1:])
    assert detorm.__version__ in headings[1:]
    dated = re.findall(r"^## \[[^\]]+\] - (\d{4}-\d{2}-\d{2})$", changelog, flags=re.MULTILINE)
    assert len(dated) == len(headings) - 1  # every release has its date
