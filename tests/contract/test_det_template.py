"""``det template`` of ``determined==0.38.1`` against ``detorm serve --demo`` (a fresh copy: the
commands write). Each command runs as a subprocess, as a user types it; the output is checked
against the master's database and the master's messages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from determined.common.util import yaml_safe_load

from tests.contract.conftest import Demo
from tests.contract.test_det_cli import det, ok, table_rows


@pytest.fixture
def alice(fresh_demo: Demo, det_config: Path) -> Path:
    ok(det(fresh_demo, det_config, "user", "login", "alice", stdin="alice-pw\n"))
    return det_config


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text(
        "description: on gpus\nresources:\n  slots_per_trial: 2\nhyperparameters:\n  lr: 0.01\n"
    )
    storage = tmp_path / "storage.yaml"
    storage.write_text("checkpoint_storage:\n  type: shared_fs\n  host_path: /tmp\n")
    return {"gpu": gpu, "storage": storage}


def stored(demo: Demo) -> dict[str, tuple[object, int]]:
    return {
        name: (json.loads(config), workspace)
        for name, config, workspace in demo.rows("SELECT name, config, workspace_id FROM templates")
    }


def failed(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_template_create_describe_list_set_remove(
    fresh_demo: Demo, alice: Path, files: dict[str, Path]
) -> None:
    demo = fresh_demo
    assert table_rows(ok(det(demo, alice, "template", "list"))) == []
    assert ok(det(demo, alice, "template", "create", "gpu", str(files["gpu"]))) == (
        "Created template gpu\n"
    )
    gpu = yaml_safe_load(files["gpu"].read_text())
    assert stored(demo) == {"gpu": (gpu, 1)}  # no workspace: Uncategorized
    # describe prints the stored config as YAML
    assert yaml_safe_load(ok(det(demo, alice, "template", "describe", "gpu"))) == gpu

    workspace_id, workspace = demo.rows(
        "SELECT id, name FROM workspaces WHERE id != 1 AND NOT archived ORDER BY id LIMIT 1"
    )[0]
    ok(det(demo, alice, "template", "create", "ckpt", str(files["storage"]), "-w", workspace))
    assert stored(demo)["ckpt"][1] == workspace_id
    assert table_rows(ok(det(demo, alice, "template", "list"))) == [
        {"Name": "ckpt", "Workspace": workspace},
        {"Name": "gpu", "Workspace": "Uncategorized"},
    ]
    detailed = ok(det(demo, alice, "template", "list", "-d"))
    assert "slots_per_trial: 2" in detailed and "type: shared_fs" in detailed

    # set: an existing template gets the new config (PatchTemplateConfig), a new one is created
    assert ok(det(demo, alice, "template", "set", "gpu", str(files["storage"]))) == (
        "Set template gpu\n"
    )
    storage = yaml_safe_load(files["storage"].read_text())
    assert stored(demo)["gpu"] == (storage, 1)
    ok(det(demo, alice, "template", "set", "fresh", str(files["gpu"])))
    assert stored(demo)["fresh"] == (gpu, 1)
    updated = ok(
        det(demo, alice, "template", "set-value", "config", "fresh", str(files["storage"]))
    )
    assert updated == "Updated template fresh\n"
    assert stored(demo)["fresh"] == (storage, 1)

    assert ok(det(demo, alice, "template", "remove", "gpu")) == "Removed template gpu\n"
    assert set(stored(demo)) == {"ckpt", "fresh"}
    assert [row["Name"] for row in table_rows(ok(det(demo, alice, "template", "ls")))] == [
        "ckpt",
        "fresh",
    ]


def test_template_errors_carry_the_masters_messages(
    fresh_demo: Demo, alice: Path, files: dict[str, Path]
) -> None:
    demo = fresh_demo
    ok(det(demo, alice, "template", "create", "gpu", str(files["gpu"])))
    failed(
        det(demo, alice, "template", "create", "gpu", str(files["gpu"])),
        "failed to create template gpu: ERROR: duplicate key value violates unique constraint"
        ' "templates_pkey" (SQLSTATE 23505)',
    )
    failed(
        det(demo, alice, "template", "create", "x", str(files["gpu"]), "-w", "no such workspace"),
        "workspace 'no such workspace' not found",
    )
    failed(det(demo, alice, "template", "describe", "nope"), "template 'nope' not found")
    # TemplateByName's bare "not found" (a 500) on the routes that edit or delete
    failed(
        det(demo, alice, "template", "set-value", "config", "nope", str(files["gpu"])),
        "Failed to update config template: not found",
    )
    failed(
        det(demo, alice, "template", "remove", "nope"),
        "Failed to remove config template: not found",
    )
    assert set(stored(demo)) == {"gpu"}
