"""The ``detorm`` query commands run in-process against a seeded detorm.local.

``run("ls", "experiments", ...)`` calls ``detorm._cli.main`` with the master and credentials in
the environment (DET_MASTER, DET_USER, DET_PASS, as a user's shell has them) and the det CLI's
config in tmp_path; it returns the exit status and what was printed. ``sent`` records every
request the SDK sends (method, path, query, JSON body), to check what --dry-run did not send.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from detorm._cli import main
from detorm.local import LocalMaster, Seeder
from tests.sdk.conftest import Cluster, seeded_template, served_copy
from tests.sdk.conftest import seed_cluster as seed_sdk_cluster


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


Run = Callable[..., Result]


@dataclass
class Sent:
    """The requests sent through httpx, as (method, path, query, body)."""

    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)

    def edits(self) -> list[tuple[str, str, str, Any]]:
        """Requests that change something: not GETs, not the searches that only read."""
        reads = ("/api/v1/experiments-search", "/api/v1/runs", "/api/v1/auth/login")
        return [r for r in self.requests if r[0] != "GET" and r[1] not in reads]


def seed_cluster(master: LocalMaster) -> Cluster:
    """The SDK tests' cluster, and two models (one with two versions) for the registry."""
    cluster = seed_sdk_cluster(master)
    with Seeder(master.database) as s:
        trial = cluster.trials["resnet-base"][0]
        mnist = s.model("mnist", labels=["prod"], description="digits")
        s.model("legacy", labels=["old"])
        for batches, name in ((400, "first"), (500, "second")):
            s.model_version(mnist, s.checkpoint(trial, total_batches=batches), name=name)
    return cluster


@pytest.fixture(scope="session")
def cli_cluster_template(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return seeded_template(seed_cluster, tmp_path_factory.mktemp("cli-cluster-template"))


@pytest.fixture(scope="module")
def cluster(
    cli_cluster_template: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One seeded detorm.local for the read-only tests of a module."""
    with served_copy(cli_cluster_template, tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def fresh_cluster(cli_cluster_template: Cluster, tmp_path: Path) -> Iterator[Cluster]:
    """A seeded detorm.local of its own, for tests that write."""
    with served_copy(cli_cluster_template, tmp_path / "fresh-cluster") as cluster:
        yield cluster


def _runner(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("DET_MASTER", url)
    monkeypatch.setenv("DET_USER", "determined")
    monkeypatch.setenv("DET_PASS", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse: --help, --version, usage errors
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def run(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:  # fmt: skip
    return _runner(cluster.url, tmp_path, monkeypatch, capsys)


@pytest.fixture
def run_fresh(
    fresh_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:  # fmt: skip
    return _runner(fresh_cluster.url, tmp_path, monkeypatch, capsys)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    record = Sent()
    original = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        record.requests.append((request.method, request.url.path, request.url.query.decode(), body))
        return original(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    return record
