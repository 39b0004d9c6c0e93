"""Ids are never handed out twice, like the master's Postgres sequences: deleting the newest row
and creating another gives a new id (SQLite's default would reuse ``max(id) + 1``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlmodel import SQLModel, col, delete, select

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._db import Database
from tests.conftest import login


def ok(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def new_workspace(api: httpx.Client, name: str) -> int:
    return int(ok(api.post("/api/v1/workspaces", json={"name": name}))["workspace"]["id"])  # type: ignore[index]


def test_a_deleted_workspaces_id_is_not_reused(api: httpx.Client) -> None:
    first = new_workspace(api, "w1")
    ok(api.delete(f"/api/v1/workspaces/{first}"))
    assert new_workspace(api, "w2") == first + 1


def test_a_deleted_projects_id_is_not_reused(api: httpx.Client) -> None:
    workspace = new_workspace(api, "home")

    def project(name: str) -> int:
        body = ok(
            api.post(
                f"/api/v1/workspaces/{workspace}/projects",
                json={"name": name, "workspaceId": workspace},
            )
        )
        return int(body["project"]["id"])  # type: ignore[index]

    first = project("p1")
    ok(api.delete(f"/api/v1/projects/{first}"))
    assert project("p2") == first + 1


def test_deleted_models_and_model_versions_ids_are_not_reused(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    def model(name: str) -> int:
        return int(ok(api.post("/api/v1/models", json={"name": name}))["model"]["id"])  # type: ignore[index]

    first = model("m1")
    ok(api.delete("/api/v1/models/m1"))
    assert model("m2") == first + 1
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="e")
        trial = seed.trial(experiment)
        checkpoints = [seed.checkpoint(trial, total_batches=n) for n in (1, 2)]
    versions = []
    for uuid in checkpoints:
        body = ok(api.post("/api/v1/models/m2/versions", json={"checkpointUuid": uuid}))
        versions.append(body["modelVersion"])
    newest = versions[-1]
    ok(api.delete(f"/api/v1/models/m2/versions/{newest['version']}"))  # type: ignore[index]
    again = ok(api.post("/api/v1/models/m2/versions", json={"checkpointUuid": checkpoints[1]}))
    assert again["modelVersion"]["id"] == newest["id"] + 1  # type: ignore[index]


def test_a_deleted_experiments_id_is_not_reused(local_master: LocalMaster) -> None:
    admin = login(local_master.url, "admin")
    try:
        with Seeder(local_master.database) as seed:
            first = seed.experiment(name="e1")
        ok(admin.delete(f"/api/v1/experiments/{first}"))
        assert admin.get(f"/api/v1/experiments/{first}").status_code == 404
        with Seeder(local_master.database) as seed:
            assert seed.experiment(name="e2") == first + 1
    finally:
        admin.close()


def test_a_deleted_users_id_is_not_reused(local_master: LocalMaster) -> None:
    admin = login(local_master.url, "admin")
    try:
        body = {"user": {"username": "temp", "active": True}, "password": ""}
        first = int(ok(admin.post("/api/v1/users", json=body))["user"]["id"])  # type: ignore[index]
        # the master has no DeleteUser route: removed in the database, as an operator would
        with local_master.database.transaction(write=True) as db:
            db.execute(delete(t.UserRow).where(col(t.UserRow.id) == first))
        body = {"user": {"username": "temp2", "active": True}, "password": ""}
        assert ok(admin.post("/api/v1/users", json=body))["user"]["id"] == first + 1  # type: ignore[index]
    finally:
        admin.close()


def generated_id_tables() -> list[str]:
    return sorted(
        table.name
        for table in SQLModel.metadata.sorted_tables
        if [c.name for c in table.primary_key.columns] == ["id"]
        and str(table.primary_key.columns["id"].type) == "INTEGER"
    )


def table_sql(path: Path, name: str) -> str:
    with sqlite3.connect(path) as connection:
        (sql,) = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
    return str(sql)


def test_every_generated_id_is_autoincrement(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Database(path).dispose()
    names = generated_id_tables()
    assert {"users", "workspaces", "projects", "experiments", "models", "model_versions"} <= set(
        names
    )
    missing = [name for name in names if "AUTOINCREMENT" not in table_sql(path, name)]
    assert missing == []


def without_autoincrement(path: Path, names: list[str]) -> None:
    """Rewrite the tables as an older detorm.local created them (no AUTOINCREMENT)."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA writable_schema=ON")
        for name in names:
            sql = table_sql(path, name).replace(" AUTOINCREMENT", "")
            connection.execute(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (sql, name)
            )
        connection.execute("DELETE FROM sqlite_sequence")
        connection.execute("PRAGMA writable_schema=OFF")


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    database = Database(path)
    with Seeder(database) as seed:
        for name in ("a", "b", "c"):
            seed.workspace(name)
        seed.experiment(name="kept")
    database.dispose()
    without_autoincrement(path, generated_id_tables())
    assert "AUTOINCREMENT" not in table_sql(path, "workspaces")
    return path


def test_an_older_file_gets_autoincrement_and_keeps_its_rows(old_file: Path) -> None:
    database = Database(old_file)
    try:
        assert "AUTOINCREMENT" in table_sql(old_file, "workspaces")
        with database.transaction(write=False) as db:
            names = [
                w.name
                for w in db.exec(select(t.WorkspaceRow).order_by(col(t.WorkspaceRow.id))).all()
            ]
        assert names == ["Uncategorized", "a", "b", "c"]
        with database.transaction(write=True) as db:
            newest = max(w.id or 0 for w in db.exec(select(t.WorkspaceRow)).all())
            db.execute(delete(t.WorkspaceRow).where(col(t.WorkspaceRow.id) == newest))
        with Seeder(database) as seed:
            assert seed.workspace("d") == newest + 1
        with sqlite3.connect(old_file) as connection:
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
            indexes = {row[1] for row in connection.execute("PRAGMA index_list('users')")}
        assert any("username" in name for name in indexes)
    finally:
        database.dispose()
