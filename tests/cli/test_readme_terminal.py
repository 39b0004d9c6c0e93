"""The README's "From the terminal" commands run against the demo cluster, as alice."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from detorm.local import LocalMaster
from tests.cli.conftest import Run, Sent, _runner
from tests.conftest import ROOT, copy_database


def terminal_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### From the terminal\n", 1)[1].split("\n### ", 1)[0]
    [block] = re.findall(r"```console\n(.*?)```", section, re.DOTALL)
    lines = [line.removeprefix("$ ") for line in block.splitlines()]
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("detorm ")]


@pytest.fixture(scope="module")
def demo(demo_database: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMaster]:
    db_path = copy_database(demo_database, tmp_path_factory.mktemp("demo"))  # as demo=True seeds
    with LocalMaster(db_path=db_path, demo=True, process=False) as master:
        yield master


@pytest.mark.parametrize("argv", terminal_commands(), ids=" ".join)
def test_readme_terminal_commands_run(
    demo: LocalMaster, argv: list[str], sent: Sent, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run: Run = _runner(demo.url, tmp_path, monkeypatch, capsys)
    monkeypatch.setenv("DET_USER", "alice")
    monkeypatch.setenv("DET_PASS", "alice-pw")
    result = run(*argv)
    assert result.code == 0, result.err
    assert result.out, "the README shows a command that prints nothing"
    assert sent.edits() == []  # the README's edits are dry runs: the demo stays as it is


def test_the_readme_shows_every_command() -> None:
    shown = {argv[0] for argv in terminal_commands()}
    assert {"--version", "ls", "show", "metrics", "logs", "tag", "archive"} <= shown
