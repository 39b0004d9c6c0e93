"""``detorm tag`` and ``detorm archive``: --dry-run prints the exact requests and sends none of
them; without it, exactly those requests are sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import detorm
from tests.cli.conftest import Run, Sent
from tests.sdk.conftest import Cluster


@pytest.fixture
def reader(fresh_cluster: Cluster, tmp_path: Path) -> detorm.Session:
    """A session of the test's own, to read the server's state (no cache, no identity reuse)."""
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return detorm.Session(
        fresh_cluster.url, user="determined", password="", environ=env, cache=False
    )


def state(reader: detorm.Session) -> list[dict[str, Any]]:
    """What the tests edit, as the master has it now."""
    experiments = [
        (e.id, sorted(e.tags), e.archived) for e in detorm.Experiment.query(reader).order_by("id")
    ]
    models = [(m.name, sorted(m.labels), m.archived) for m in detorm.Model.query(reader)]
    projects = [(p.name, p.archived) for p in detorm.Project.query(reader)]
    return [{"experiments": experiments, "models": models, "projects": projects}]


def as_sent(described: dict[str, Any]) -> tuple[str, str, str, Any]:
    """A printed request (``--dry-run --json``) in the shape ``Sent`` records."""
    query = "&".join(f"{k}={v}" for k, v in described.get("params", []))
    return (described["method"], described["path"], query, described.get("body"))


def dry_then_real(run: Run, sent: Sent, reader: detorm.Session, *args: str) -> list[Any]:
    """Run ``args`` with --dry-run, check nothing changed, then for real: the same requests."""
    sent.requests.clear()
    before = state(reader)
    dry = run(*args, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    printed = [as_sent(line) for line in dry.json_lines()]
    assert printed, "the dry run planned no request"
    assert sent.edits() == []
    assert state(reader) == before
    assert dry.err.endswith(f"dry run: {len(printed)} request(s) not sent; nothing was changed\n")
    sent.requests.clear()
    real = run(*args)
    assert real.code == 0, real.err
    assert sorted(sent.edits(), key=repr) == sorted(printed, key=repr)
    return printed


def test_tag_add_and_remove(run_fresh: Run, sent: Sent, reader: detorm.Session) -> None:
    printed = dry_then_real(
        run_fresh, sent, reader, "tag", "add", "reviewed", "--filter", "name__contains=resnet"
    )
    assert printed == [
        ("PUT", "/api/v1/experiments/1/labels/reviewed", "", None),
        ("PUT", "/api/v1/experiments/2/labels/reviewed", "", None),
    ]
    tagged = [e for e in state(reader)[0]["experiments"] if "reviewed" in e[1]]
    assert [e[0] for e in tagged] == [1, 2]
    dry_then_real(run_fresh, sent, reader, "tag", "remove", "reviewed", "cv", "-f", "id=1")
    assert state(reader)[0]["experiments"][0][1] == ["prod"]


def test_the_table_form_of_a_dry_run(run_fresh: Run, sent: Sent) -> None:
    dry = run_fresh("archive", "-f", "state=COMPLETED", "-f", "name__contains=resnet", "--dry-run")
    assert dry.out == (
        "POST /api/v1/projects/-1/experiments/archive "
        '{"filters":{"name":"resnet","states":["STATE_COMPLETED"]},"projectId":-1}\n'
    )
    assert sent.edits() == []


def test_tag_model_labels(run_fresh: Run, sent: Sent, reader: detorm.Session) -> None:
    # The master replaces a model's labels whole: the commit reads the model again first.
    dry = run_fresh("tag", "add", "gold", "--on", "models", "-f", "name=mnist", "--dry-run")
    assert dry.out == 'PATCH /api/v1/models/1 {"labels":["gold","prod"]}\n'
    assert dry.err.startswith("the commit reads 1 object(s) again before sending:\n")
    dry_then_real(
        run_fresh, sent, reader, "tag", "add", "gold", "--on", "models", "-f", "name=mnist"
    )
    assert ("mnist", ["gold", "prod"], False) in state(reader)[0]["models"]


def test_archive_experiments_by_bulk_filters(
    run_fresh: Run, sent: Sent, reader: detorm.Session
) -> None:
    printed = dry_then_real(run_fresh, sent, reader, "archive", "--filter", "state=COMPLETED")
    assert printed == [
        (
            "POST", "/api/v1/projects/-1/experiments/archive", "",
            {"filters": {"states": ["STATE_COMPLETED"]}, "projectId": -1},
        )
    ]  # fmt: skip
    archived = [e[0] for e in state(reader)[0]["experiments"] if e[2]]
    assert archived == [1, 2, 5]
    unarchived = dry_then_real(run_fresh, sent, reader, "unarchive", "-f", "id=2")
    assert unarchived[0][1] == "/api/v1/projects/-1/experiments/unarchive"
    assert [e[0] for e in state(reader)[0]["experiments"] if e[2]] == [1, 5]


def test_archive_experiments_by_ids_when_filters_cannot_say_it(
    run_fresh: Run, sent: Sent, reader: detorm.Session
) -> None:
    # hp is not a bulk filter: the matching ids are read (a search), then sent.
    printed = dry_then_real(
        run_fresh, sent, reader, "archive", "-f", "hp.lr__gte=0.05", "-f", "state=COMPLETED"
    )
    assert printed == [
        (
            "POST", "/api/v1/projects/-1/experiments/archive", "",
            {"experimentIds": [1, 5], "projectId": -1},
        )
    ]  # fmt: skip


def test_archive_trials_through_the_runs_api(
    run_fresh: Run, sent: Sent, reader: detorm.Session
) -> None:
    printed = dry_then_real(run_fresh, sent, reader, "archive", "trials", "-f", "id__in=1,2")
    # The runs filter says id__in exactly: one request per project holding matches.
    assert [(p[0], p[1]) for p in printed] == [("POST", "/api/v1/runs/archive")]
    assert printed[0][3]["projectId"] == 2 and '"operator":"=","value":2' in printed[0][3]["filter"]


def test_archive_projects_through_the_unit_of_work(
    run_fresh: Run, sent: Sent, reader: detorm.Session
) -> None:
    # Only an admin or the project's owner may archive it: the seeded projects are admin's.
    printed = dry_then_real(
        run_fresh, sent, reader, "archive", "projects", "-f", "name=nlp", "-u", "admin"
    )
    assert printed == [("POST", "/api/v1/projects/3/archive", "", None)]
    assert ("nlp", True) in state(reader)[0]["projects"]


def test_an_edit_of_everything_must_be_asked_for(run_fresh: Run, sent: Sent) -> None:
    for args in (["archive"], ["tag", "add", "x"], ["unarchive", "models"]):
        refused = run_fresh(*args)
        assert refused.code == 2 and refused.out == ""
        assert "no --filter given: that would" in refused.err and "add --all" in refused.err
    assert sent.edits() == []
    everything = run_fresh("tag", "add", "x", "--all", "--dry-run")
    assert everything.code == 0 and len(everything.out.splitlines()) == 7
    assert sent.edits() == []


def test_refusals_of_the_master_are_reported_per_object(run_fresh: Run) -> None:
    # The master archives only terminal experiments: vit-small is active, vit-large paused.
    result = run_fresh("archive", "-f", "id__in=3,4")
    assert result.code == 1
    assert result.out == "archived 0 experiments\n"
    assert result.err.count("\n") == 2 and result.err.startswith("  3: "), result.err


def test_unknown_resources_for_tag_and_archive(run_fresh: Run) -> None:
    assert (
        "unknown resource 'trials'; one of: experiments, models"
        in run_fresh("tag", "add", "x", "--on", "trials", "--all").err
    )
    assert (
        "one of: experiments, trials, models, projects, workspaces"
        in run_fresh("archive", "users", "--all").err
    )
