"""Database files: a file of the current schema is opened as it is (no schema work at all), a
file of an older one gets what the current schema adds (tables, indexes) and keeps its rows;
the databases of one process share their compiled statements, each reading its own rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine.interfaces import CacheStats
from sqlmodel import SQLModel, col, select

from detorm.local import Seeder
from detorm.local import _tables as t
from detorm.local._db import Database


def seeded_file(path: Path) -> Path:
    database = Database(path)
    with Seeder(database) as seed:
        seed.workspace("kept")
    database.dispose()
    return path


def schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY 1, 2"
        ).fetchall()


def workspace_names(database: Database) -> list[str]:
    with database.transaction(write=False) as db:
        return sorted(w.name for w in db.exec(select(t.WorkspaceRow)).all())


def test_a_file_of_the_current_schema_opens_without_schema_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = seeded_file(tmp_path / "current.db")
    before = schema(path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("create_all on a file that has the current schema")

    monkeypatch.setattr(SQLModel.metadata, "create_all", refuse)
    database = Database(path)
    try:
        assert workspace_names(database) == ["Uncategorized", "kept"]
    finally:
        database.dispose()
    assert schema(path) == before


def test_a_file_missing_a_table_gets_it_and_keeps_its_rows(tmp_path: Path) -> None:
    path = seeded_file(tmp_path / "older.db")
    current = schema(path)
    with sqlite3.connect(path) as connection:  # as a detorm.local before the table made it
        connection.execute("DROP TABLE webhook_test_events")  # and its index
    assert schema(path) != current
    database = Database(path)
    try:
        assert workspace_names(database) == ["Uncategorized", "kept"]
    finally:
        database.dispose()
    assert schema(path) == current


def test_a_file_missing_an_index_of_a_table_it_has_gets_the_index(tmp_path: Path) -> None:
    path = seeded_file(tmp_path / "older.db")
    current = schema(path)
    index = next(name for kind, name, _ in current if kind == "index" and name.startswith("ix_"))
    with sqlite3.connect(path) as connection:  # as a detorm.local before the index was added
        connection.execute(f'DROP INDEX "{index}"')
    Database(path).dispose()
    assert schema(path) == current


def test_the_databases_of_a_process_share_compiled_statements_and_keep_their_rows(
    tmp_path: Path,
) -> None:
    first, second = Database(tmp_path / "first.db"), Database(tmp_path / "second.db")
    try:
        for database, name in ((first, "only-in-first"), (second, "only-in-second")):
            with Seeder(database) as seed:
                seed.workspace(name)
        # a statement no other test compiles, so that the first execution must compile it
        query = select(t.WorkspaceRow.name).where(col(t.WorkspaceRow.name).like("only-in-%"))
        query = query.order_by(col(t.WorkspaceRow.name).desc()).limit(7).offset(0)
        hits: list[bool] = []

        def record(*args: Any) -> None:  # after_cursor_execute: the context is the fifth
            hits.append(args[4].cache_hit is CacheStats.CACHE_HIT)

        for database in (first, second):
            event.listen(database.engine, "after_cursor_execute", record)
        with first.transaction(write=False) as db:
            assert db.exec(query).all() == ["only-in-first"]
        with second.transaction(write=False) as db:
            assert db.exec(query).all() == ["only-in-second"]
        assert hits == [False, True]  # compiled by the first, reused by the second
    finally:
        first.dispose()
        second.dispose()
