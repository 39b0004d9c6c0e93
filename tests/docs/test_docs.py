"""The guide in ``docs/``: every ```python block runs, and the site builds.

The blocks of one page run in order, in one namespace, against a fresh detorm.local seeded with
the demo cluster (``detorm serve --demo``; a copy of the demo seeded once), as alice: ``DET_MASTER`` and ``DET_USER``/``DET_PASS``
point at it, and ``HOME`` and the cache are temporary, so a page never touches the user's
files. A page sets itself up in blocks of its own; a block inside an HTML comment
(``<!-- ```python ... ``` -->``) runs but is not shown on the site. A block after a
``<!-- file: name.py -->`` comment is a test file of the reader's (docs/testing.md): those run
under pytest's own pytester, in ``tests/plugin/test_plugin.py``.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import detorm
from detorm.local import LocalMaster
from tests.conftest import ROOT, copy_database

DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- file: [\w./-]+ -->\n)?^```python\n(.*?)^```", re.S | re.M)
PAGES = sorted(path.name for path in DOCS.glob("*.md"))


def blocks_of(page: str) -> list[str]:
    """The blocks this module runs: all but the test files of the pytest plugin's page."""
    return [code for file, code in BLOCK.findall((DOCS / page).read_text()) if not file]


def test_every_python_block_runs_somewhere() -> None:
    plugin_tests = (ROOT / "tests" / "plugin" / "test_plugin.py").read_text()
    for page in PAGES:
        found = BLOCK.findall((DOCS / page).read_text())
        opened = re.findall(r"^```python$", (DOCS / page).read_text(), re.M)
        assert len(found) == len(opened), page
        if any(file for file, _ in found):
            assert f'"docs" / "{page}"' in plugin_tests, f"{page}'s test files run nowhere"


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav: list[object]) -> list[str]:
        found: list[str] = []
        for entry in nav:
            for value in entry.values() if isinstance(entry, dict) else [entry]:
                found += pages(value) if isinstance(value, list) else [str(value)]
        return found

    assert sorted(pages(config["nav"])) == PAGES


@pytest.mark.parametrize("page", [p for p in PAGES if blocks_of(p)])
def test_page_examples_run(
    page: str, demo_database: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    db_path = copy_database(demo_database, tmp_path / "master")
    with LocalMaster(db_path=db_path, demo=True, process=False) as master:
        for name, value in {
            "DET_MASTER": master.url, "DET_USER": "alice", "DET_PASS": "alice-pw",
            "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "DETORM_CACHE_DIR": str(tmp_path / "cache"),
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        detorm.set_default_session(None)
        level = logging.getLogger("detorm").level  # a page may turn its logging up
        namespace: dict[str, object] = {"__name__": f"docs.{page}"}
        try:
            for index, block in enumerate(blocks_of(page)):
                exec(compile(block, f"docs/{page} block {index + 1}", "exec"), namespace)
        finally:
            for value in list(namespace.values()):
                if isinstance(value, detorm.Session):
                    value.close()
            detorm.set_default_session(None)
            logging.getLogger("detorm").setLevel(level)
    assert capsys.readouterr().out  # the examples show what they do


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    # --strict: a broken link, a page missing from the nav or a nav entry without a page fails.
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for page in PAGES:
        built = tmp_path / "site" / page.removesuffix(".md") / "index.html"
        if page == "index.md":
            built = tmp_path / "site" / "index.html"
        assert built.is_file(), page
    quickstart = (tmp_path / "site" / "quickstart" / "index.html").read_text()
    assert "LocalMaster" in quickstart


# The migration table names real calls on both sides: `client.f(`, `exp.f(` on the official
# side (methods of the official client's classes), and `session.x`, `exp.x`, `Experiment.x`...
# on detorm's (methods, properties, relationships or fields).
_NAMES = re.compile(r"\b(client|detorm|session|exp|trial|ckpt|model|version|ws|project|user|"
                    r"Experiment|Trial|Checkpoint|Model|User|Workspace|Project)\.(\w+)")  # fmt: skip


def _migration_rows() -> list[tuple[str, str]]:
    rows = []
    for line in (DOCS / "migration.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and "`" in line and not line.startswith("|---"):
            rows.append((cells[0], cells[1]))
    return rows


def _has(owner: object, name: str) -> bool:
    fields = getattr(owner, "model_fields", {})
    return hasattr(owner, name) or name in fields


def test_the_migration_table_names_only_calls_that_exist() -> None:
    from determined.experimental import client

    official = {
        "client": client, "exp": client.Experiment, "trial": client.Trial,
        "ckpt": client.Checkpoint, "model": client.Model, "version": client.ModelVersion,
        "ws": client.Workspace, "project": client.Project, "user": client.User,
    }  # fmt: skip
    ours: dict[str, object] = {
        "detorm": detorm, "session": detorm.Session, "exp": detorm.Experiment,
        "trial": detorm.Trial, "ckpt": detorm.Checkpoint, "model": detorm.Model,
        "version": detorm.ModelVersion, "ws": detorm.Workspace, "project": detorm.Project,
        "user": detorm.User,
    }  # fmt: skip
    rows = _migration_rows()
    assert len(rows) >= 90
    checked = 0
    for theirs, mine in rows:
        for owner, name in _NAMES.findall(theirs):
            assert _has(official[owner], name), f"the official client has no {owner}.{name}"
            checked += 1
        for owner, name in _NAMES.findall(mine):
            target = ours.get(owner) or getattr(detorm, owner)
            assert _has(target, name), f"detorm has no {owner}.{name} ({mine})"
            checked += 1
    assert checked >= 200
    # Every public function of the official client's module has a row.
    public = {n for n in dir(client) if not n.startswith("_") and callable(getattr(client, n))}
    functions = {
        n for n in public if getattr(getattr(client, n), "__module__", "") == client.__name__
    }
    listed = {
        name for theirs, _ in rows for owner, name in _NAMES.findall(theirs) if owner == "client"
    }
    assert functions - listed == set()
