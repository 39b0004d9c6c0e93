"""``detorm ls``: every resource, filters as in Python, order, limit, table / JSON Lines / CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import detorm
from detorm._terminal._names import COLUMNS_SHOWN, RESOURCES
from tests.cli.conftest import Run
from tests.sdk.conftest import Cluster


@pytest.fixture
def session(cluster: Cluster, tmp_path: Path) -> detorm.Session:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return detorm.Session(cluster.url, user="determined", password="", environ=env, cache=False)


def python_keys(session: detorm.Session, resource: str, **lookups: object) -> list[object]:
    cls = getattr(detorm, RESOURCES[resource])
    return [obj.pk for obj in session.query(cls).filter(**lookups)]


# The master lists these per parent only (the SDK refuses a query without one).
SCOPES = {"checkpoints": {"experiment_id": 1}, "model-versions": {"model_name": "mnist"}}


@pytest.mark.parametrize("resource", list(RESOURCES))
def test_every_resource_lists_in_every_format(
    run: Run, session: detorm.Session, resource: str
) -> None:
    cls = getattr(detorm, RESOURCES[resource])
    scope = SCOPES.get(resource, {})
    expected = [obj.pk for obj in session.query(cls).filter(**scope)]
    key = cls._key_field
    filters = [arg for name, value in scope.items() for arg in ("-f", f"{name}={value}")]

    as_json = run("ls", resource, *filters, "--json")
    assert as_json.code == 0, as_json.err
    assert [row[key] for row in as_json.json_lines()] == expected

    as_csv = run("ls", resource, *filters, "--csv")
    assert as_csv.code == 0, as_csv.err
    rows = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert [row[key] for row in rows] == [str(k) for k in expected]

    table = run("ls", resource, *filters)
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    if expected:
        header = lines[0].split()
        assert header == [c.upper() for c in COLUMNS_SHOWN[RESOURCES[resource]]]
        assert [line.split()[header.index(key.upper())] for line in lines[1:]] == [
            str(k) for k in expected
        ]
    else:
        assert lines == [] and f"no {resource} match" in table.err


@pytest.mark.parametrize(
    ("filters", "lookups"),
    [
        (["state=COMPLETED"], {"state": "COMPLETED"}),
        (["state__in=COMPLETED,ERROR", "name__contains=b"], {"state__in": ["COMPLETED", "ERROR"], "name__contains": "b"}),
        (["hp.lr__gt=0.01"], {"hp__lr__gt": 0.01}),
        (["hp__lr__lte=0.01"], {"hp__lr__lte": 0.01}),
        (["tags__contains=prod", "archived=false"], {"tags__contains": "prod", "archived": False}),
        (["tags=nlp,prod"], {"tags": ["prod", "nlp"]}),
        (["validation.validation_loss.min__lt=0.5"], {"validation__validation_loss__min__lt": 0.5}),
        (["username=alice"], {"username": "alice"}),
    ],
)  # fmt: skip
def test_filters_select_what_python_selects(
    run: Run, session: detorm.Session, filters: list[str], lookups: dict[str, object]
) -> None:
    expected = python_keys(session, "experiments", **lookups)
    assert expected  # the seeded data makes each filter select something
    args = [arg for text in filters for arg in ("--filter", text)]
    result = run("ls", "experiments", *args, "--json")
    assert result.code == 0, result.err
    assert [row["id"] for row in result.json_lines()] == expected


def test_exclude_order_and_limit(run: Run, cluster: Cluster) -> None:
    result = run(
        "ls", "experiments", "-x", "state=COMPLETED", "--order", "-name", "--limit", "3",
        "-c", "name,state", "--csv",
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [row["name"] for row in rows] == ["vit-small", "vit-large", "gpt-mini"]
    assert list(rows[0]) == ["name", "state"]
    ascending = run("ls", "trials", "-o", "hp.lr", "-f", "experiment_id__in=1,2", "--json")
    lrs = [row["hparams"]["lr"] for row in ascending.json_lines()]
    assert lrs == sorted(lrs) and len(lrs) == 4


def test_the_table_aligns_its_columns(run: Run) -> None:
    result = run("ls", "experiments", "-f", "project_id=2", "-c", "id,name,tags")
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TAGS"]
    starts = {line.index(lines[1].split()[1]) for line in lines[1:2]}
    name_column = lines[0].index("NAME")
    assert starts == {name_column}
    assert all(line[name_column - 2 : name_column] == "  " for line in lines)


def test_a_listing_the_master_scopes_says_so(run: Run) -> None:
    result = run("ls", "checkpoints")
    assert result.code == 2
    assert result.err.startswith("detorm ls: the master lists checkpoints per experiment or")


def test_singular_and_underscored_names(run: Run) -> None:
    plural = run("ls", "model-versions", "-f", "model_name=mnist", "--json")
    assert [row["name"] for row in plural.json_lines()] == ["first", "second"]
    for spelling in ("model_version", "MODEL-VERSIONS", "model_versions"):
        assert run("ls", spelling, "-f", "model_name=mnist", "--json").out == plural.out
    # A running experiment's duration grows between two listings: compare what does not move.
    columns = ("--json", "-c", "id,name,state,tags")
    singular = run("ls", "experiment", *columns)
    assert singular.out == run("ls", "experiments", *columns).out and len(singular.json_lines()) > 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "id=abc"], "detorm ls: Experiment.id must be an int, not str ('abc')\n"),
        (["-f", "state=SLEEPING"], "detorm ls: Experiment.state: 'SLEEPING' is not a ExperimentState"),
        (["-f", "colour=red"], "detorm ls: Experiment has no field 'colour'; fields you can filter on: archived,"),
        (["-f", "name__near=x"], "detorm ls: 'name__near': unknown lookup 'near'; lookups are: exact,"),
        (["-f", "state"], "detorm ls: 'state': a filter is <field>[__<lookup>]=<value>"),
        (["-o", "colour"], "detorm ls: Experiment cannot be ordered by 'colour'; it can be ordered by:"),
        (["-n", "-1"], "detorm ls: limit must be"),
        (["-c", ","], "detorm ls: --columns names at least one field (or all)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    run: Run, sent: object, args: list[str], message: str
) -> None:
    result = run("ls", "experiments", *args)
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(message)
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_an_unknown_resource_is_a_usage_error(run: Run) -> None:
    result = run("ls", "gadgets")
    assert result.code == 2
    assert "unknown resource 'gadgets'; one of: experiments, trials," in result.err


def test_an_unreachable_master_is_one_line_and_exit_1(run: Run) -> None:
    result = run("ls", "experiments", "-m", "http://127.0.0.1:9")
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("detorm ls: TransportError: ")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_wrong_credentials_are_one_line_and_exit_1(run: Run) -> None:
    result = run("ls", "experiments", "-u", "nobody")
    assert result.code == 1
    assert result.err.startswith("detorm ls: Unauthenticated: ")
    assert result.err.count("\n") == 1


def test_version(run: Run) -> None:
    result = run("--version")
    assert result.code == 0
    assert result.out == f"detorm {detorm.__version__}\n"


def test_the_installed_command_in_a_pipe(cluster: Cluster, tmp_path: Path) -> None:
    """``python -m detorm`` (the console script's main) with the shell's environment, its
    output cut short by the reader (``| head -1``): no traceback whichever of the two ends
    first."""
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DET_MASTER": cluster.url,
        "DET_USER": "determined", "DET_PASS": "", "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }  # fmt: skip
    listing = subprocess.run(
        [sys.executable, "-m", "detorm", "ls", "trials", "--json", "-o", "-id"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    assert [json.loads(line)["id"] for line in listing.stdout.splitlines()] == list(
        range(14, 0, -1)
    )
    piped = subprocess.run(
        f"'{sys.executable}' -m detorm ls trials --csv | head -1", shell=True, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert piped.stdout.startswith("id,experiment_id,state,")
    assert "Traceback" not in piped.stderr
