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


def _detorm(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detorm", *args], input=stdin, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_serve_refuses_a_public_address_while_a_user_has_no_password(tmp_path: Path) -> None:
    database = tmp_path / "master.sqlite"
    refused = _detorm("serve", "--host", "0.0.0.0", "--port", "0", "--db", str(database))
    assert refused.returncode == 2
    assert refused.stdout == ""  # never listened
    assert "0.0.0.0 is not a loopback address" in refused.stderr
    assert "could log in as them: admin, determined." in refused.stderr
    assert f"detorm set-password --db {database} admin\n" in refused.stderr
    assert f"detorm set-password --db {database} determined\n" in refused.stderr
    for username in ("admin", "determined"):
        changed = _detorm("set-password", "--db", str(database), username, stdin="s3cret\n")
        assert changed.returncode == 0, changed.stderr
    with LocalMaster(db_path=database, host="0.0.0.0") as master:
        with httpx.Client(base_url=master.url) as http:
            login = "/api/v1/auth/login"
            assert http.post(login, json={"username": "admin", "password": ""}).status_code == 401
            accepted = http.post(login, json={"username": "admin", "password": "s3cret"})
            assert accepted.status_code == 200


def test_set_password_refuses_an_empty_password_and_an_unknown_user(tmp_path: Path) -> None:
    database = str(tmp_path / "master.sqlite")
    empty = _detorm("set-password", "--db", database, "admin", stdin="\n")
    assert empty.returncode == 2 and "the password must not be empty" in empty.stderr
    unknown = _detorm("set-password", "--db", database, "nobody", stdin="pw\n")
    assert unknown.returncode == 2 and "no user 'nobody'" in unknown.stderr
