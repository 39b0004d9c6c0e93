"""``detorm completion bash|zsh``: the script completes commands, resources, options, filter
fields and orderings (run in a real bash, as the shell calls it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from detorm._plan._columns import COLUMNS
from tests.cli.conftest import Run

BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture
def script(run: Run, tmp_path: Path) -> Path:
    result = run("completion", "bash")
    assert result.code == 0, result.err
    path = tmp_path / "detorm.bash"
    path.write_text(result.out)
    return path


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last word of ``detorm <words>``."""
    line = " ".join(f"'{w}'" for w in ("detorm", *words))
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _detorm\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--norc", "-c", program], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_commands_and_resources(script: Path) -> None:
    assert complete(script, "l") == ["ls", "logs"]
    assert complete(script, "") == [
        "serve", "set-password", "demo", "cache", "ls", "show", "metrics", "logs", "tag",
        "archive", "unarchive", "completion", "-h", "--help", "--version",
    ]  # fmt: skip
    assert complete(script, "ls", "model") == ["models", "model-versions"]
    assert complete(script, "show", "ch") == ["checkpoints"]
    assert complete(script, "archive", "pro") == ["projects"]
    assert complete(script, "tag", "") == ["add", "remove"]
    assert complete(script, "completion", "") == ["bash", "zsh"]


def test_filter_fields_follow_the_resource(script: Path) -> None:
    assert complete(script, "ls", "experiments", "--filter", "sta") == [
        "state=", "state__exact=", "state__in=", "state__ne=", "start_time=",
        "start_time__exact=", "start_time__ne=", "start_time__gt=", "start_time__gte=",
        "start_time__lt=", "start_time__lte=",
    ]  # fmt: skip
    # Options and their values before the field do not confuse it.
    assert complete(script, "ls", "-m", "http://x", "users", "-n", "3", "-f", "adm") == [
        "admin=", "admin__exact=", "admin__ne=",
    ]  # fmt: skip
    assert complete(script, "ls", "experiments", "-x", "hp") == ["hp."]
    assert complete(script, "tag", "add", "x", "--on", "models", "-f", "lab") == [
        "labels=", "labels__exact=", "labels__contains=", "labels__isnull=",
    ]  # fmt: skip
    # archive and tag act on experiments unless told otherwise.
    assert complete(script, "archive", "-f", "tags__c") == ["tags__contains="]
    every = complete(script, "ls", "jobs", "-f", "")
    assert {w.split("__")[0].rstrip("=") for w in every} == set(COLUMNS["Job"])


def test_orderings_and_options(script: Path) -> None:
    assert complete(script, "ls", "trials", "-o", "-sta") == ["-state", "-start_time"]
    assert "hp." in complete(script, "ls", "trials", "--order", "")
    assert "tags" not in complete(script, "ls", "experiments", "--order", "")  # not sortable
    assert complete(script, "ls", "experiments", "--c") == ["--columns", "--csv"]
    assert complete(script, "archive", "--d") == ["--dry-run"]
    assert complete(script, "tag", "add", "x", "--on", "") == [
        "experiments",
        "models",
        "model-versions",
    ]
    assert complete(script, "ls", "experiments", "--limit", "") == []


def test_zsh_uses_the_same_function_through_bashcompinit(run: Run) -> None:
    bash, zsh = run("completion", "bash").out, run("completion", "zsh").out
    assert zsh.endswith(bash)
    assert "autoload -U +X bashcompinit && bashcompinit\n" in zsh
    assert bash.rstrip().endswith("complete -F _detorm detorm")
