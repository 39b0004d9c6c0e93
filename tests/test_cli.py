"""The ``detorm`` command: the demo (the README's main job) and ``serve``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from detorm.local import LocalMaster


def test_demo_tours_the_demo_cluster(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "detorm", "demo"], capture_output=True, text=True, timeout=300,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "detorm.local is serving the demo cluster" in out
    assert "Computer Vision: image-classification, object-detection, segmentation" in out
    assert "Active or paused experiments: 60 (one request: GET /api/v1/experiments?" in out
    assert "best trial #" in out and "validation reports" in out
    assert "call(s) planned" in out and "requests in all." in out


def test_serve_keeps_data_across_restarts(tmp_path: Path) -> None:
    database = tmp_path / "master.sqlite"
    with LocalMaster(db_path=database) as master:
        with httpx.Client(base_url=master.url) as http:
            token = http.post(
                "/api/v1/auth/login", json={"username": "admin", "password": ""}
            ).json()["token"]
            created = http.post(
                "/api/v1/workspaces",
                json={"name": "kept"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 200, created.text
    with LocalMaster(db_path=database) as master:
        with httpx.Client(base_url=master.url) as http:
            token = http.post(
                "/api/v1/auth/login", json={"username": "admin", "password": ""}
            ).json()["token"]
            names = [
                w["name"]
                for w in http.get(
                    "/api/v1/workspaces", headers={"Authorization": f"Bearer {token}"}
                ).json()["workspaces"]
            ]
    assert names == ["Uncategorized", "kept"]
