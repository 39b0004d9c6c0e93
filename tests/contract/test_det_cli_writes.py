"""The ``det`` CLI of ``determined==0.38.1`` creating, describing and deleting workspaces,
projects, models and model versions on ``detorm serve --demo`` (a fresh copy per test), as a user
types the commands: what each prints and how it exits, checked against the master's database.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.contract.conftest import Demo
from tests.contract.test_det_cli import det, ok, table_rows


@pytest.fixture
def alice(fresh_demo: Demo, det_config: Path) -> Path:
    ok(det(fresh_demo, det_config, "user", "login", "alice", stdin="alice-pw\n"))
    return det_config


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """A command the CLI reports as failed: exit status 1, its message on stderr."""
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stderr


def test_workspace_create_describe_delete(fresh_demo: Demo, alice: Path) -> None:
    demo = fresh_demo
    (row,) = table_rows(ok(det(demo, alice, "workspace", "create", "cli-ws")))
    ws_id = demo.value("SELECT id FROM workspaces WHERE name = 'cli-ws'")
    assert row["ID"] == str(ws_id) and row["Name"] == "cli-ws" and row["# Projects"] == "0"
    described = json.loads(ok(det(demo, alice, "workspace", "describe", "cli-ws", "--json")))
    assert described["id"] == ws_id and described["username"] == "alice"
    assert described["numProjects"] == 0 and described["pinned"] is True
    assert described["state"] == "WORKSPACE_STATE_UNSPECIFIED"
    # the CLI asks before deleting; --yes answers for the user
    out = ok(det(demo, alice, "workspace", "delete", "cli-ws", "--yes"))
    assert out.strip() == "Successfully deleted workspace cli-ws."
    assert demo.column("SELECT id FROM workspaces WHERE name = 'cli-ws'") == []
    message = failed(det(demo, alice, "workspace", "describe", "cli-ws"))
    assert "Failed to describe workspace: workspace 'cli-ws' not found" in message


def test_workspace_create_of_a_taken_name_fails(fresh_demo: Demo, alice: Path) -> None:
    demo = fresh_demo
    taken = demo.value("SELECT name FROM workspaces WHERE id = 2")
    before = demo.value("SELECT COUNT(*) FROM workspaces")
    message = failed(det(demo, alice, "workspace", "create", taken))
    assert (
        "Failed to create workspace: avoid names equal to other workspaces (case-insensitive)"
        in message
    )
    assert demo.value("SELECT COUNT(*) FROM workspaces") == before
    # Despite its message, the master's constraint (``name TEXT UNIQUE``, migration
    # 20220311095512_add_workspace_tables) compares case-sensitively: another case is a new name.
    (row,) = table_rows(ok(det(demo, alice, "workspace", "create", taken.upper())))
    assert row["Name"] == taken.upper()
    assert demo.value("SELECT COUNT(*) FROM workspaces") == before + 1


def test_project_create_describe_set_key_delete(fresh_demo: Demo, alice: Path) -> None:
    demo = fresh_demo
    ok(det(demo, alice, "workspace", "create", "cli-ws"))
    created = ok(det(demo, alice, "project", "create", "cli-ws", "boxes", "--description", "d"))
    (row,) = table_rows(created)
    project_id, key = demo.rows("SELECT id, key FROM projects WHERE name = 'boxes'")[0]
    assert row["ID"] == str(project_id) and row["Key"] == key and row["Description"] == "d"
    assert len(key) == 5 and key.startswith("BOX")  # generateProjectKey: 3 of the name, 2 random
    described = json.loads(ok(det(demo, alice, "project", "describe", "cli-ws", "boxes", "--json")))
    assert described["id"] == project_id and described["key"] == key
    # GetWorkspaceProjects (which the CLI reads) does not fill the workspace's name
    assert described["workspaceName"] == "" and described["numExperiments"] == 0
    # det project edit --key: the master upper-cases it
    (edited,) = table_rows(
        ok(det(demo, alice, "project", "edit", "cli-ws", "boxes", "--key", "bx1"))
    )
    assert edited["Key"] == "BX1"
    assert demo.value("SELECT key FROM projects WHERE id = ?", project_id) == "BX1"
    message = failed(det(demo, alice, "project", "edit", "cli-ws", "boxes", "--key", "toolong"))
    assert "Failed to edit project: project key cannot be longer than 5 characters" in message
    message = failed(det(demo, alice, "project", "create", "cli-ws", "other", "--key", "BX1"))
    assert "project key BX1 is already in use" in message
    message = failed(det(demo, alice, "project", "create", "cli-ws", "boxes"))
    assert "project name boxes is already in use" in message
    out = ok(det(demo, alice, "project", "delete", "cli-ws", "boxes", "--yes"))
    assert out.strip() == "Successfully deleted project boxes."
    assert demo.column("SELECT id FROM projects WHERE id = ?", project_id) == []
    message = failed(det(demo, alice, "project", "describe", "cli-ws", "boxes"))
    assert "Failed to describe project: project 'boxes' not found" in message


def test_model_create_describe_register_version_delete(fresh_demo: Demo, alice: Path) -> None:
    demo = fresh_demo
    ws_id = demo.value("SELECT id FROM workspaces WHERE name = 'Computer Vision'")
    args = ("model", "create", "cli-model", "-w", "Computer Vision", "--description", "d")
    (row,) = table_rows(ok(det(demo, alice, *args)))
    model_id = demo.value("SELECT id FROM models WHERE name = 'cli-model'")
    assert row["ID"] == str(model_id) and row["Workspace ID"] == str(ws_id)
    assert row["Description"] == "d" and row["Metadata"] == "{}"
    message = failed(det(demo, alice, "model", "create", "cli-model"))
    assert "Failed to create model: avoid names equal to other models (case-sensitive)" in message
    described = json.loads(ok(det(demo, alice, "model", "describe", "cli-model", "--json")))
    assert described["id"] == model_id and described["description"] == "d"
    uuid = demo.column("SELECT uuid FROM checkpoints WHERE state = 'COMPLETED' ORDER BY uuid")[0]
    out = ok(det(demo, alice, "model", "register-version", "cli-model", uuid))
    assert uuid in out  # the CLI shows the model and its versions
    assert demo.rows(
        "SELECT version, checkpoint_uuid FROM model_versions WHERE model_id = ?", model_id
    ) == [(1, uuid)]
    versions = ok(det(demo, alice, "model", "list-versions", "cli-model"))
    version_rows = table_rows(versions.split("\n\n\n")[1])
    assert version_rows[0]["Version #"] == "1" and version_rows[0]["Checkpoint UUID"] == uuid
    deleted = demo.value(
        "SELECT uuid FROM checkpoints WHERE state = 'DELETED' ORDER BY uuid LIMIT 1"
    )
    message = failed(det(demo, alice, "model", "register-version", "cli-model", deleted))
    assert (
        f"checkpoint {deleted} is in STATE_DELETED state. checkpoints for model versions must be"
        " in a COMPLETED state" in message
    )
    # det model delete does not ask
    assert ok(det(demo, alice, "model", "delete", "cli-model")) == ""
    assert demo.column("SELECT id FROM models WHERE id = ?", model_id) == []
    assert demo.column("SELECT id FROM model_versions WHERE model_id = ?", model_id) == []
    message = failed(det(demo, alice, "model", "describe", "cli-model"))
    assert 'Failed to describe model: model "cli-model" not found' in message
