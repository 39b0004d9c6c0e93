"""Shared fixtures: detorm.local servers, seeding, and snapshots stored in ``snapshots/``."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension
from syrupy.location import PyTestLocation

from detorm._io import _auth
from detorm.local import LocalMaster
from detorm.local._db import Database
from detorm.local._demo import seed_demo

# pytest's own fixture for running pytest on test files (tests/plugin: detorm's pytest plugin);
# pytest refuses pytest_plugins in a conftest.py below the top one.
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "snapshots"


def _fixtures_dir() -> Path:
    """The responses recorded from real masters: the team's shared set next to the repository
    when it is there (it may have grown), else the copy in ``tests/fixtures`` (a lone clone)."""
    shared = ROOT.parent / "shared" / "fixtures" / "determined-responses"
    return shared if shared.is_dir() else ROOT / "tests" / "fixtures" / "determined-responses"


FIXTURES = _fixtures_dir()


class TopLevelJSONSnapshots(JSONSnapshotExtension):
    """Keep every snapshot under the repository's top-level ``snapshots/`` folder."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        module = Path(test_location.filepath).resolve().relative_to(ROOT / "tests").with_suffix("")
        return str(SNAPSHOTS.joinpath(module))


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(TopLevelJSONSnapshots)


@pytest.fixture
def local_master() -> Iterator[LocalMaster]:
    """A fresh detorm.local served from a thread of the test process (fast; own database)."""
    with LocalMaster(process=False) as master:
        yield master


@pytest.fixture(scope="session")
def served_master() -> Iterator[LocalMaster]:
    """One ``detorm serve`` child process for the session (a real process on loopback)."""
    with LocalMaster(process=True) as master:
        yield master


def copy_database(source: Path, target_dir: Path) -> Path:
    """A consistent copy of a master's database and of its checkpoint files.

    The files are hard links (the demo's 4,000 files copy in a tenth of the time): detorm.local
    never writes into an existing file (a checkpoint is written into a directory made afresh,
    and deleted by unlinking), so copies share them safely. A test must not write into them.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "local.sqlite"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    checkpoints = source.parent / "checkpoints"
    if checkpoints.exists():
        subprocess.run(
            ["cp", "-r", "--link", str(checkpoints), str(target_dir / "checkpoints")], check=True
        )
    return target


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo cluster's database, seeded once per test process (seeding takes seconds): serve
    a copy (:func:`copy_database`). The demo is a function of its seed, so a copy holds the rows
    and ids a fresh ``LocalMaster(demo=True)`` would, and ``demo=True`` leaves it as it is."""
    path = tmp_path_factory.mktemp("demo-database") / "local.sqlite"
    database = Database(path)
    try:
        seed_demo(database)
    finally:
        database.dispose()
    return path


_REAL_TOKEN_CACHE = pytest.StashKey[tuple[Path, tuple[int, int] | None]]()


def pytest_configure(config: pytest.Config) -> None:
    """No test reads or writes the developer's det config (~/.config/determined/auth.json): the
    official client, the det CLI and detorm keep it where ``DET_DEBUG_CONFIG_PATH`` says, a
    directory of this run's own, unless a test points them elsewhere."""
    config.stash[_REAL_TOKEN_CACHE] = _state(_auth.config_dir(os.environ) / "auth.json")
    directory = tempfile.mkdtemp(prefix="detorm-tests-det-config-")
    os.environ["DET_DEBUG_CONFIG_PATH"] = directory
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))


def _state(path: Path) -> tuple[Path, tuple[int, int] | None]:
    try:
        found = path.stat()
    except OSError:
        return path, None
    return path, (found.st_mtime_ns, found.st_size)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run fails if it changed the developer's auth.json after all."""
    path, before = session.config.stash[_REAL_TOKEN_CACHE]
    if not hasattr(session.config, "workerinput") and _state(path)[1] != before:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nFAILED: the test run changed the real det token cache {path}")


# The files whose run is long for their number of tests, longest first (summed test durations on
# a 2-core machine, 2026-12-07: 83, 65, 23, 19, 17, 16, 15, 13, 11, 11, 11, 9, 9, 8, 7 s).
# pytest-xdist hands out whole files (--dist loadfile), those with the most tests first: a file
# of one long test (mypy, the README) came last and ran alone while the other worker idled.
LONG_FILES_FIRST = (
    "tests/sdk/test_lookups_e2e_async.py", "tests/sdk/test_lookups_e2e_sync.py",
    "tests/local/test_limits.py", "tests/packaging/test_install.py",
    "tests/contract/test_bad_input.py", "tests/contract/test_det_cli_tasks.py",
    "tests/docs/test_docs.py", "tests/test_cli.py", "tests/contract/test_run_flows.py",
    "tests/test_mypy.py", "tests/local/test_put_experiment.py", "tests/local/test_demo.py",
    "tests/packaging/test_extras.py", "tests/test_readme.py", "tests/local/test_server.py",
)  # fmt: skip


@pytest.hookimpl(optionalhook=True)  # a run without xdist (-p no:xdist) has no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's per-file scheduling, handing out the files of LONG_FILES_FIRST first."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongFilesFirst(LoadFileScheduling):
        def _assign_work_unit(self, node: Any) -> None:
            for scope in reversed(LONG_FILES_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)


# An environment without a det config: sessions read no cached token and store none, even run as
# root (a directory under /dev/null cannot be made), so each one logs in.
NO_HOME: Mapping[str, str] = MappingProxyType({"HOME": "/dev/null"})

# One context for every test client: each httpx.Client would load the CA bundle again (~30 ms).
_TLS = httpx.create_ssl_context()


def login(url: str, username: str = "determined", password: str = "") -> httpx.Client:
    """An httpx client logged in to ``url`` (Bearer token set)."""
    client = httpx.Client(base_url=url, timeout=30, verify=_TLS)
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    response.raise_for_status()
    client.headers["Authorization"] = "Bearer " + response.json()["token"]
    return client


@pytest.fixture
def api(local_master: LocalMaster) -> Iterator[httpx.Client]:
    """An httpx client logged in as ``determined`` to a fresh detorm.local."""
    client = login(local_master.url)  # already open: `with` would try to open it again
    try:
        yield client
    finally:
        client.close()


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a unary error body."""
    body = response.json()
    assert set(body) == {"error"}, body
    inner: dict[str, Any] = body["error"]
    return inner
