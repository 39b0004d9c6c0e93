"""Contract fixtures: demo masters and the official client against them.

The demo is seeded once per test process (``demo_database``, tests/conftest.py). The read-only
session master is a ``detorm serve --demo`` child over a copy of it; each test that writes gets a
demo master of its own over another copy, in a thread of the test process (the app the command
serves: a child process costs a second of start-up per test), but for the test-faults one. The
demo is a function of its seed, so a copy holds the same rows and ids as a fresh ``--demo``
start, and ``demo=True`` leaves an already seeded database alone.
The official client's config directory (token cache) is a tmp dir for each test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from determined.experimental import Determined, client

from detorm.local import LocalMaster
from tests.conftest import copy_database
from tests.contract import det_zygote


class Demo:
    """A running demo master and read access to its database."""

    def __init__(self, master: LocalMaster) -> None:
        self.master = master

    @property
    def url(self) -> str:
        return self.master.url

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the master's database (WAL: sees committed writes)."""
        with sqlite3.connect(f"file:{self.master.db_path}?mode=ro", uri=True) as connection:
            return connection.execute(sql, params).fetchall()

    def value(self, sql: str, *params: Any) -> Any:
        rows = self.rows(sql, *params)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def column(self, sql: str, *params: Any) -> list[Any]:
        return [row[0] for row in self.rows(sql, *params)]


@pytest.fixture(scope="session")
def demo_template(
    demo_database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Demo, Path]]:
    """The session's read-only demo master, and a pristine copy of its seeded database."""
    db_path = copy_database(demo_database, tmp_path_factory.mktemp("demo"))
    with LocalMaster(db_path=db_path, demo=True, process=True) as master:
        yield Demo(master), demo_database


@pytest.fixture(scope="session")
def demo(demo_template: tuple[Demo, Path]) -> Demo:
    """The session's demo master: tests using it must not write (logins aside)."""
    return demo_template[0]


@pytest.fixture
def fresh_demo(demo_template: tuple[Demo, Path], tmp_path: Path) -> Iterator[Demo]:
    """A new demo master over an unused copy of the demo, for a test that writes."""
    yield from _fresh(demo_template, tmp_path, process=False)


@pytest.fixture
def served_demo(demo_template: tuple[Demo, Path], tmp_path: Path) -> Iterator[Demo]:
    """A new ``detorm serve --demo`` child over an unused copy of the demo, for a test of what
    the command itself does (its master log)."""
    yield from _fresh(demo_template, tmp_path, process=True)


@pytest.fixture
def faulty_demo(demo_template: tuple[Demo, Path], tmp_path: Path) -> Iterator[Demo]:
    """``detorm serve --demo --enable-test-faults`` over an unused copy of the demo (a child
    process: the only test of that option of the command)."""
    yield from _fresh(demo_template, tmp_path, process=True, enable_faults=True)


def _fresh(
    demo_template: tuple[Demo, Path], tmp_path: Path, *, process: bool, enable_faults: bool = False
) -> Iterator[Demo]:
    db_path = copy_database(demo_template[1], tmp_path / "fresh")
    with LocalMaster(
        db_path=db_path, demo=True, process=process, enable_faults=enable_faults
    ) as master:
        yield Demo(master)


@pytest.fixture(scope="session", autouse=True)
def _det_zygote_stopped() -> Iterator[None]:
    """The ``det`` zygote (started by the first command) ends with the session."""
    yield
    det_zygote.close_shared()


@pytest.fixture(autouse=True)
def det_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated Determined config dir: the real home's ``auth.json`` is never touched."""
    config = tmp_path / "det-config"
    monkeypatch.setenv("DET_DEBUG_CONFIG_PATH", str(config))
    for name in ("DET_MASTER", "DET_USER", "DET_PASS", "DET_USER_TOKEN", "DET_MASTER_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield config
    client._determined = None  # the module-level client's singleton


def connect(demo: Demo, user: str = "determined", password: str = "") -> Determined:
    """The official client, logged in (``POST /api/v1/auth/login``)."""
    return Determined(demo.url, user=user, password=password)


@pytest.fixture
def det(demo: Demo) -> Determined:
    return connect(demo)
