"""The ``det`` CLI of ``determined==0.38.1`` against ``detorm serve --demo``.

Each command runs in a process of its own with ``-m <url>`` and the test's isolated config dir (its
token cache), exactly as a user types it (forked from a process that imported the CLI once:
``tests/contract/det_zygote.py``); the output is checked against the master's database.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.contract import det_zygote
from tests.contract.conftest import Demo


def det(demo: Demo, config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``det -m <url> <args>`` in a process of its own (forked from the zygote)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DET_")}
    env["DET_DEBUG_CONFIG_PATH"] = str(config)
    return det_zygote.shared().run(["-m", demo.url, *args], env, stdin, timeout=120)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of a ``tabulate`` table (``presto`` style: a header, a rule, then rows)."""
    lines = [line for line in text.splitlines() if line.strip()]
    headers = [cell.strip() for cell in lines[0].split("|")]
    return [
        dict(zip(headers, (cell.strip() for cell in line.split("|")), strict=True))
        for line in lines[2:]
    ]


@pytest.fixture
def alice(demo: Demo, det_config: Path) -> Path:
    """``det user login alice`` (the password read from stdin), into the isolated config dir."""
    ok(det(demo, det_config, "user", "login", "alice", stdin="alice-pw\n"))
    return det_config


def test_user_login_caches_a_token(demo: Demo, alice: Path) -> None:
    cache = json.loads((alice / "auth.json").read_text())
    (entry,) = cache["masters"].values()
    assert entry["active_user"] == "alice"
    owner = demo.value(
        "SELECT u.username FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.token = ?",
        entry["tokens"]["alice"],
    )
    assert owner == "alice"
    assert "You are logged in as user 'alice'" in ok(det(demo, alice, "user", "whoami"))


def test_a_wrong_password_fails(demo: Demo, det_config: Path) -> None:
    result = det(demo, det_config, "user", "login", "alice", stdin="wrong\n")
    assert result.returncode != 0
    assert (
        not (det_config / "auth.json").exists()
        or "alice" not in (det_config / "auth.json").read_text()
    )


def test_experiment_list_shows_my_unarchived_experiments(demo: Demo, alice: Path) -> None:
    rows = csv_rows(ok(det(demo, alice, "experiment", "list", "--csv")))
    # archived=false with no project also drops experiments of archived projects/workspaces
    expected = demo.rows(
        "SELECT e.id, e.name FROM experiments e JOIN users u ON u.id = e.owner_id"
        " JOIN projects p ON p.id = e.project_id JOIN workspaces w ON w.id = p.workspace_id"
        " WHERE u.username = 'alice' AND NOT e.archived AND NOT p.archived AND NOT w.archived"
        " ORDER BY e.id"
    )
    assert [(int(r["ID"]), r["Name"]) for r in rows] == expected
    assert {r["Owner"] for r in rows} == {"alice"}


def test_experiment_list_all(demo: Demo, alice: Path) -> None:
    rows = csv_rows(ok(det(demo, alice, "experiment", "list", "--all", "--csv")))
    expected = demo.rows(
        "SELECT e.id, u.username, e.archived FROM experiments e JOIN users u ON u.id = e.owner_id"
        " ORDER BY e.id"
    )
    assert [(int(r["ID"]), r["Owner"], r["Archived"]) for r in rows] == [
        (i, owner, str(bool(archived))) for i, owner, archived in expected
    ]
    states = {r["State"] for r in rows}
    # the API reports live experiments by their allocation's state: ACTIVE is never shown
    assert "ACTIVE" not in states and {"COMPLETED", "PAUSED", "CANCELED"} <= states


def test_trial_logs(demo: Demo, alice: Path) -> None:
    trial_id = demo.value("SELECT min(id) FROM trials WHERE state = 'COMPLETED'")
    logs = demo.column("SELECT log FROM trial_logs WHERE trial_id = ? ORDER BY id", trial_id)
    out = ok(det(demo, alice, "trial", "logs", str(trial_id)))
    lines = out.splitlines()
    assert (
        lines[-1]
        == f"Trial log stream ended. To reopen log stream, run: det trial logs -f {trial_id}"
    )
    printed = lines[:-1]
    assert len(printed) == len(logs)
    assert all(line.endswith(log.rstrip("\n")) for line, log in zip(printed, logs, strict=True))
    head = ok(det(demo, alice, "trial", "logs", str(trial_id), "--head", "3")).splitlines()
    assert head[:3] == printed[:3] and len(head) == 4
    tail = ok(det(demo, alice, "trial", "logs", str(trial_id), "--tail", "2")).splitlines()
    assert tail[:2] == printed[-2:]
    errors_only = ok(
        det(demo, alice, "trial", "logs", str(trial_id), "--level", "WARNING")
    ).splitlines()[:-1]
    levels = demo.column("SELECT level FROM trial_logs WHERE trial_id = ? ORDER BY id", trial_id)
    assert len(errors_only) == sum(
        level in ("LOG_LEVEL_WARNING", "LOG_LEVEL_ERROR", "LOG_LEVEL_CRITICAL") for level in levels
    )


def test_trial_logs_of_an_unknown_trial(demo: Demo, alice: Path) -> None:
    result = det(demo, alice, "trial", "logs", "987654")
    assert result.returncode != 0
    assert "987654" in result.stderr + result.stdout


def test_model_list_and_describe(demo: Demo, alice: Path) -> None:
    out = ok(det(demo, alice, "model", "list", "--json"))
    listed = json.loads(out)
    # the CLI's default order: --sort-by last_updated_time --order-by asc
    names = demo.rows("SELECT id, name FROM models ORDER BY last_updated_time, id")
    assert [(m["id"], m["name"]) for m in listed] == names
    described = json.loads(ok(det(demo, alice, "model", "describe", "tiny-gpt", "--json")))
    assert described["name"] == "tiny-gpt"


def test_user_list_and_master_info(demo: Demo, alice: Path) -> None:
    rows = table_rows(ok(det(demo, alice, "user", "list")))
    users = demo.rows("SELECT id, username, display_name, admin FROM users ORDER BY id")
    assert [(int(r["User Id"]), r["Username"], r["Admin"]) for r in rows] == [
        (i, name, str(bool(admin))) for i, name, _, admin in users
    ]
    info = json.loads(ok(det(demo, alice, "master", "info", "--json")))
    assert (info["version"], info["hasCustomLogo"]) == ("0.38.1", False)


def test_workspace_and_project_lists(demo: Demo, alice: Path) -> None:
    workspaces = table_rows(ok(det(demo, alice, "workspace", "list")))
    assert [(int(w["ID"]), w["Name"]) for w in workspaces] == demo.rows(
        "SELECT id, name FROM workspaces ORDER BY id"
    )
    projects = table_rows(ok(det(demo, alice, "project", "list", "Language")))
    assert [(int(p["ID"]), p["Name"], int(p["# Experiments"])) for p in projects] == demo.rows(
        "SELECT p.id, p.name, (SELECT count(*) FROM experiments e WHERE e.project_id = p.id)"
        " FROM projects p JOIN workspaces w ON w.id = p.workspace_id WHERE w.name = 'Language'"
        " ORDER BY p.id"
    )


def test_user_logout(demo: Demo, alice: Path) -> None:
    token = json.loads((alice / "auth.json").read_text())
    (entry,) = token["masters"].values()
    ok(det(demo, alice, "user", "logout"))
    assert demo.rows("SELECT id FROM user_sessions WHERE token = ?", entry["tokens"]["alice"]) == []


def test_trial_describe_lists_the_workloads(demo: Demo, alice: Path) -> None:
    trial_id = demo.value("SELECT min(id) FROM trials WHERE state = 'COMPLETED'")
    described = json.loads(ok(det(demo, alice, "trial", "describe", str(trial_id), "--json")))
    assert described["trial"]["id"] == trial_id
    # the CLI prints the bindings' to_json: the two unset oneof members are there as null
    kinds = [next(k for k, v in w.items() if v is not None) for w in described["workloads"]]
    assert kinds.count("training") == demo.value(
        "SELECT count(*) FROM metrics WHERE trial_id = ? AND metric_group = 'training'", trial_id
    )
    assert kinds.count("validation") == demo.value(
        "SELECT count(*) FROM metrics WHERE trial_id = ? AND metric_group = 'validation'", trial_id
    )
    assert kinds.count("checkpoint") == demo.value(
        "SELECT count(*) FROM checkpoints WHERE trial_id = ?", trial_id
    )
    batches = [w[k]["totalBatches"] for w, k in zip(described["workloads"], kinds, strict=True)]
    assert batches == sorted(batches)
    table = ok(det(demo, alice, "trial", "describe", str(trial_id)))
    assert "Workloads:" in table


def test_experiment_describe(demo: Demo, alice: Path) -> None:
    experiment_id = demo.value(
        "SELECT min(experiment_id) FROM (SELECT experiment_id FROM trials"
        " GROUP BY experiment_id HAVING count(*) > 1)"
    )
    out = ok(det(demo, alice, "experiment", "describe", str(experiment_id)))
    name = demo.value("SELECT name FROM experiments WHERE id = ?", experiment_id)
    assert name in out
    for trial_id in demo.column("SELECT id FROM trials WHERE experiment_id = ?", experiment_id):
        assert re.search(rf"^\s+{trial_id} \|\s+{experiment_id} \|", out, re.MULTILINE), trial_id
