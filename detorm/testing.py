"""detorm's pytest plugin: test your own scripts against a detorm.local master.

Installed with detorm (a ``pytest11`` entry point), so its fixtures are there in every test
once ``detorm[local]`` is installed; nothing starts until a test asks for one::

    def test_best_run(detorm_seed, detorm_session):
        with detorm_seed as seed:
            seed.experiment(name="a")
        assert detorm_session.query(detorm.Experiment).count() == 1

The fixtures:

- ``detorm_master``: one :class:`~detorm.local.LocalMaster` for the whole test session, served
  from a thread on loopback, its database in a temporary directory.
- ``detorm_cluster``: that master, put back before the test to its baseline (an empty cluster,
  or what ``detorm_baseline`` seeds): every test starts from the same data, with the same ids.
- ``detorm_session``: a :class:`detorm.Session` of the test logged in to it as ``determined``,
  and the default session during the test (``Experiment.query()`` without a session uses it).
- ``detorm_admin_session``: the same, logged in as ``admin``.
- ``detorm_seed``: a :class:`~detorm.local.Seeder` of the test's cluster, which writes
  workspaces, projects, experiments, trials, metrics, logs, checkpoints and models straight
  into the database; each ``with detorm_seed as seed:`` block is one transaction.
- ``detorm_environ``: the environment during the test: ``DET_MASTER`` names the test's
  master, the det CLI's token cache and detorm's disk cache are in a temporary directory (the
  user's ``~/.config/determined`` and caches are never read or written), and ``DET_USER``,
  ``DET_PASS`` and ``DET_USER_TOKEN`` are unset. Code under test that calls
  ``detorm.connect()``, ``detorm.aio.connect()`` or the det CLI reaches the test's master.
- ``detorm_baseline``: override it (session scope) in a ``conftest.py`` to seed the data
  every test starts from; it returns a function given a Seeder, or None for an empty cluster.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:  # detorm.local's stack is imported when a fixture first needs it
    import sqlite3

    from detorm import Session
    from detorm.local import LocalMaster, Seeder

__all__ = [
    "Baseline",
    "detorm_admin_session",
    "detorm_baseline",
    "detorm_cluster",
    "detorm_environ",
    "detorm_master",
    "detorm_seed",
    "detorm_session",
]

Baseline = Callable[["Seeder"], None]
"""What ``detorm_baseline`` returns: a function that seeds the data every test starts from."""

LOCAL_EXTRA: Final = "pip install 'detorm[local]'"
_ISOLATED_VARIABLES: Final = ("DET_USER", "DET_PASS", "DET_USER_TOKEN")


def _detorm_local() -> ModuleType:
    """``detorm.local``, or a failure saying which extra installs its stack."""
    try:
        from detorm import local
    except ImportError as err:
        missing = str(err)
    else:
        return local
    pytest.fail(  # outside the except block: one message, not a chain of two
        f"detorm's pytest fixtures run detorm.local, which needs the 'local' extra ({missing}):"
        f" {LOCAL_EXTRA}",
        pytrace=False,
    )


class _Baseline:
    """A state every test of a baseline starts from: the database's content (an in-memory
    copy) and the checkpoint files (a copy, when there are any)."""

    def __init__(self, snapshot: sqlite3.Connection, files: Path | None) -> None:
        self.snapshot = snapshot
        self.files = files


class _Cluster:
    """The session's master, and the baselines its tests start from: the empty cluster, and
    one per ``detorm_baseline`` fixture (a ``conftest.py`` of each directory may have its
    own), seeded when a test first needs it."""

    def __init__(self, master: LocalMaster, scratch: Path) -> None:
        from detorm.local._storage import CheckpointStorage

        self.master = master
        self._scratch = scratch
        self._storage = CheckpointStorage.of(master.db_path).root
        self._empty = self._save("empty")
        self._baselines: dict[Baseline, _Baseline] = {}

    def reset(self, baseline: Baseline | None) -> None:
        """Put the database and the checkpoint storage back to ``baseline``."""
        if baseline is None:
            self._restore(self._empty)
        elif baseline in self._baselines:
            self._restore(self._baselines[baseline])
        else:
            self._restore(self._empty)
            with _detorm_local().Seeder(self.master.database) as seed:
                baseline(seed)
            self._baselines[baseline] = self._save(f"baseline-{len(self._baselines)}")

    def _save(self, name: str) -> _Baseline:
        files = None
        if self._storage.is_dir() and any(self._storage.iterdir()):
            files = self._scratch / name
            shutil.copytree(self._storage, files, symlinks=True)
        return _Baseline(self.master.database.snapshot(), files)

    def _restore(self, state: _Baseline) -> None:
        self.master.database.restore(state.snapshot)
        # The storage directory itself stays: writers remember that it exists.
        if self._storage.is_dir():
            for entry in os.scandir(self._storage):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        if state.files is not None:
            shutil.copytree(state.files, self._storage, symlinks=True, dirs_exist_ok=True)

    def close(self) -> None:
        for state in [self._empty, *self._baselines.values()]:
            state.snapshot.close()
        self.master.stop()


@pytest.fixture(scope="session")
def detorm_baseline() -> Baseline | None:
    """The data every test starts from: None (an empty cluster: the users ``admin`` and
    ``determined``, the ``Uncategorized`` workspace and project). Override it in a
    ``conftest.py`` with a session-scoped fixture returning a function that seeds it: it is
    called once per test session, and the tests under that ``conftest.py`` start from what it
    seeded."""
    return None


@pytest.fixture(scope="session")
def _detorm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Cluster]:
    local = _detorm_local()
    master = local.LocalMaster(process=False).start()
    try:
        cluster = _Cluster(master, tmp_path_factory.mktemp("detorm-baselines"))
    except BaseException:
        master.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def detorm_master(_detorm_cluster: _Cluster) -> LocalMaster:
    """The test session's detorm.local (started on first use, on loopback, its database in a
    temporary directory; stopped at the end of the session). Its data is shared by every test
    that asks for this fixture alone: ask for ``detorm_cluster`` to start from the baseline."""
    return _detorm_cluster.master


@pytest.fixture
def detorm_environ(
    _detorm_cluster: _Cluster,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """Environment variables pointing detorm and the det CLI at the session's master, with
    their token cache and disk cache in a temporary directory of the test; returns the
    variables it set (undone after the test)."""
    home = tmp_path_factory.mktemp("detorm-env")
    variables = {
        "DET_MASTER": _detorm_cluster.master.url,
        "DET_DEBUG_CONFIG_PATH": str(home / "determined"),  # where the det CLI keeps auth.json
        "DETORM_CACHE_DIR": str(home / "cache"),
    }
    for name in _ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture
def detorm_cluster(
    _detorm_cluster: _Cluster, detorm_baseline: Baseline | None, detorm_environ: dict[str, str]
) -> LocalMaster:
    """The session's master with its data put back to the baseline before the test (ids start
    over too), and the environment pointing at it (``detorm_environ``)."""
    _detorm_cluster.reset(detorm_baseline)
    return _detorm_cluster.master


def _session(
    master: LocalMaster, environ: dict[str, str], username: str, *, default: bool
) -> Iterator[Session]:
    import detorm

    previous = _default_or_none()
    # Its own environment: no DET_USER or auth.json of the user's decides who it logs in as.
    session = detorm.Session(
        master.url, user=username, password="", environ=dict(environ),
        cache=environ["DETORM_CACHE_DIR"],
    )  # fmt: skip
    if default:
        detorm.set_default_session(session)
    try:
        yield session
    finally:
        session.close()
        if default:
            detorm.set_default_session(previous)


def _default_or_none() -> Session | None:
    """The default session if there is one (``detorm.default_session()`` would connect one)."""
    from detorm._api import _sync

    return _sync._defaults.current


@pytest.fixture
def detorm_session(
    detorm_cluster: LocalMaster, detorm_environ: dict[str, str]
) -> Iterator[Session]:
    """A :class:`detorm.Session` of this test, logged in as ``determined`` to the test's
    cluster, and the default session until the test ends (then closed)."""
    yield from _session(detorm_cluster, detorm_environ, "determined", default=True)


@pytest.fixture
def detorm_admin_session(
    detorm_cluster: LocalMaster, detorm_environ: dict[str, str]
) -> Iterator[Session]:
    """A :class:`detorm.Session` of this test logged in as ``admin``, closed when the test
    ends. ``detorm_session`` is the default session when the test asks for both."""
    yield from _session(detorm_cluster, detorm_environ, "admin", default=False)


@pytest.fixture
def detorm_seed(detorm_cluster: LocalMaster) -> Seeder:
    """A :class:`~detorm.local.Seeder` of the test's cluster; write inside ``with detorm_seed
    as seed:`` (one transaction, committed at the end of the block, before the code under test
    reads it). Requests the test sends inside the block wait for it to end."""
    local = _detorm_local()
    seeder: Seeder = local.Seeder(detorm_cluster.database)
    return seeder
