"""The SQLite database of detorm.local: engine, schema, transactions, first-start data."""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Dialect, Engine, Integer, Table, event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.util import LRUCache
from sqlmodel import Session, SQLModel, col, create_engine, select

from . import _tables as t

__all__ = [
    "Database",
    "client_hash",
    "hash_password",
    "utcnow",
    "verify_password",
]

_MAX_VARIABLES: Final = 32_766
_PBKDF2_ROUNDS: Final = 1000  # the client already sends a salted SHA-512; this only guards at rest
_CLIENT_SALT: Final = "GubPEmmotfiK9TMD6Zdw"


def utcnow() -> datetime:
    return datetime.now(UTC)


def client_hash(password: str) -> str:
    """The SDK's client-side salted SHA-512; the empty password stays empty."""
    if password == "":
        return ""
    return hashlib.sha512((_CLIENT_SALT + password).encode()).hexdigest()


def hash_password(client_hash: str) -> str:
    """Store a client-side salted SHA-512 hex (what the SDK sends with ``isHashed``)."""
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", client_hash.encode(), salt.encode(), _PBKDF2_ROUNDS)
    return f"pbkdf2${salt}${digest.hex()}"


def verify_password(stored: str | None, client_hash: str) -> bool:
    """An account without a password only accepts the empty password, like the master."""
    if stored is None:
        return client_hash == ""
    _, salt, expected = stored.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", client_hash.encode(), salt.encode(), _PBKDF2_ROUNDS)
    return secrets.compare_digest(digest.hex(), expected)


def _generated_id_tables() -> list[Table]:
    """Tables whose key is one integer column SQLite generates (Postgres: a SERIAL). A key that
    is also a foreign key (``simulated_experiments``) copies its parent's id: not generated,
    and SQLAlchemy gives it no ``AUTOINCREMENT`` (such a table was rebuilt at every upgrade)."""
    tables = []
    for table in SQLModel.metadata.sorted_tables:
        key = list(table.primary_key.columns)
        if len(key) == 1 and key[0].autoincrement in ("auto", True) and not key[0].foreign_keys:
            if isinstance(key[0].type, Integer):
                tables.append(table)
    return tables


def _never_reuse_ids() -> None:
    """``AUTOINCREMENT`` on every generated id: the master's sequences never hand an id out
    twice, while SQLite's default ``max(id) + 1`` reuses the id of a deleted newest row (a
    deleted model's or workspace's id would name the next one)."""
    for table in _generated_id_tables():
        table.dialect_options["sqlite"]["autoincrement"] = True


def _lacks_autoincrement(cursor: Any, name: str) -> bool:
    found = cursor.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None and "AUTOINCREMENT" not in str(found[0]).upper()


def _rebuild(cursor: Any, table: Table, dialect: Dialect) -> None:
    """Recreate ``table`` from the metadata (with ``AUTOINCREMENT``), keeping its rows."""
    old_columns = {row[1] for row in cursor.execute(f'PRAGMA table_info("{table.name}")')}
    columns = ", ".join(f'"{c.name}"' for c in table.columns if c.name in old_columns)
    temporary = f"{table.name}__rebuilt"
    create = str(CreateTable(table).compile(dialect=dialect)).strip()
    prefix = f"CREATE TABLE {table.name} ("
    if not create.startswith(prefix):
        raise RuntimeError(f"unexpected DDL for {table.name}: {create[:80]}")
    cursor.execute(f'CREATE TABLE "{temporary}" (' + create[len(prefix) :])
    cursor.execute(f'INSERT INTO "{temporary}" ({columns}) SELECT {columns} FROM "{table.name}"')
    cursor.execute(f'DROP TABLE "{table.name}"')  # its indexes go with it
    cursor.execute(f'ALTER TABLE "{temporary}" RENAME TO "{table.name}"')
    for index in table.indexes:
        cursor.execute(str(CreateIndex(index).compile(dialect=dialect)))


def _is_new(path: Path) -> bool:
    return not path.exists() or path.stat().st_size == 0


_schema_lock = threading.Lock()


class _SharedCacheDialect(SQLiteDialect_pysqlite):
    """pysqlite, each instance equal to every other. SQLAlchemy keys compiled statements by
    dialect and keeps them per engine: a new Database (an engine of its own) compiled every
    statement again, about 1 ms each, which a test suite that starts a master per test paid
    for every statement of every test. Equal dialects (one SQLite library, one configuration)
    compile to the same SQL, so the Databases of a process share one cache (``_COMPILED``)."""

    supports_statement_cache = True  # SQLAlchemy asks each dialect class for it

    def __eq__(self, other: object) -> bool:
        return type(other) is _SharedCacheDialect

    def __hash__(self) -> int:
        return hash(_SharedCacheDialect)


registry.register("sqlite.detorm_shared", __name__, "_SharedCacheDialect")
_COMPILED: Final = LRUCache[Any, Any](2000)


@functools.cache
def _empty_schema() -> sqlite3.Connection:
    """An in-memory database holding the schema and nothing else, built once per process.

    A new database is a page copy of it (SQLite's backup API, about 1 ms) rather than the DDL
    of every table compiled and run again (about 30 ms): a test suite or the pytest plugin
    starts a master per test."""
    template = sqlite3.connect(":memory:", check_same_thread=False)
    _never_reuse_ids()
    SQLModel.metadata.create_all(create_engine("sqlite://", creator=lambda: template))
    return template


def _copy_schema_into(path: Path) -> None:
    with _schema_lock, closing(sqlite3.connect(path)) as target:
        _empty_schema().backup(target)


def _schema(connection: sqlite3.Connection) -> list[tuple[str, str, str | None]]:
    """A database's tables and indexes, each with the DDL SQLite keeps for it."""
    return connection.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1, 2"
    ).fetchall()


@functools.cache
def _current_schema() -> list[tuple[str, str, str | None]]:
    with _schema_lock:
        return _schema(_empty_schema())


def _has_current_schema(path: Path) -> bool:
    """Whether a file holds exactly the schema a new database gets: then it has nothing to
    upgrade, and opening it skips ``create_all`` and the rebuild check (their table-by-table
    introspection cost more than the rest of a master's start, which tests do per test)."""
    with closing(sqlite3.connect(path)) as connection:
        return _schema(connection) == _current_schema()


def _add_missing_indexes(engine: Engine) -> None:
    """The indexes a newer schema added to tables the file already has: ``create_all`` creates
    a table's indexes only with the table (a file without them would stay slow, and take this
    upgrade path at every open)."""
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # SQLite's default; some builds allow more (Debian's, 250,000). Pinned, so that what works
    # here works with any build (tests/local/test_limits.py).
    dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, _MAX_VARIABLES)


class Database:
    """One SQLite file (or ``:memory:``-like temp file) with the detorm.local schema.

    Reads run in deferred transactions; writes take the write lock up front (``BEGIN
    IMMEDIATE``) and are serialised in-process, so a request never fails half-way on
    ``database is locked``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(
            f"sqlite+detorm_shared:///{self.path}",
            connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30},
            execution_options={"compiled_cache": _COMPILED},
            pool_size=8,
            max_overflow=32,
        )
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._closing = threading.Event()
        event.listen(self.engine, "begin", self._begin)
        if _is_new(self.path):
            _copy_schema_into(self.path)
        elif not _has_current_schema(self.path):
            # a file of an earlier schema: add what the newer one has, keep its rows
            _never_reuse_ids()
            SQLModel.metadata.create_all(self.engine)
            self._rebuild_reusing_tables()
            _add_missing_indexes(self.engine)
        self._watch = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._watch_lock = threading.Lock()
        self._bootstrap()

    def _begin(self, connection: Any) -> None:
        immediate = getattr(self._local, "immediate", False)
        # on the driver's connection: through exec_driver_sql, a BEGIN cost ~70 us, more than
        # the query most requests run after it
        connection.connection.driver_connection.execute(
            "BEGIN IMMEDIATE" if immediate else "BEGIN"
        )

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        if write:
            with self._write_lock:
                self._local.immediate = True
                try:
                    with Session(self.engine, expire_on_commit=False) as session:
                        with session.begin():
                            yield session
                finally:
                    self._local.immediate = False
        else:
            with Session(self.engine, expire_on_commit=False) as session:
                with session.begin():
                    yield session

    def session(self) -> Session:
        """A session for a long read (a stream); the caller closes it."""
        return Session(self.engine, expire_on_commit=False)

    def close_followers(self) -> None:
        """End the followed streams reading this database (the master is stopping): each ends
        at its next wait (:meth:`follow_wait`), as if what it followed had ended."""
        self._closing.set()

    def follow_wait(self, seconds: float) -> bool:
        """A followed stream's wait between two reads: False, at once, when the stream must end
        instead (:meth:`close_followers`)."""
        return not self._closing.wait(seconds)

    def data_version(self) -> int:
        """A number that changes whenever any connection, of this process or another, commits
        a change to the database (SQLite's ``PRAGMA data_version``, on a connection that
        never writes)."""
        with self._watch_lock:
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def dispose(self) -> None:
        self.close_followers()
        self.engine.dispose()
        with self._watch_lock:
            self._watch.close()

    def snapshot(self) -> sqlite3.Connection:
        """An in-memory copy of the whole database, taken between requests (the pytest
        plugin's baseline, put back before each test by :meth:`restore`)."""
        copy = sqlite3.connect(":memory:", check_same_thread=False)
        with self._write_lock, closing(self._raw_connection()) as live:
            live.backup(copy)
        return copy

    def restore(self, snapshot: sqlite3.Connection) -> None:
        """Make the database exactly ``snapshot`` again: every table, ``sqlite_sequence``
        (ids start over) and the schema. SQLite's backup copies the pages in one write
        transaction and bumps the schema cookie, so the pool's open connections and the
        simulation's own connection read the new content; a fresh pool drops any state they
        held besides."""
        with self._write_lock, closing(self._raw_connection()) as live:
            snapshot.backup(live)
        self.engine.dispose()

    def _raw_connection(self) -> sqlite3.Connection:
        # the stdlib's, outside the pool: the backup API needs the driver's connection
        live = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        live.execute("PRAGMA busy_timeout=30000")
        return live

    def users_without_password(self) -> list[str]:
        """Active users who log in with the empty password (a fresh master's admin and
        determined), by name."""
        with self.transaction(write=False) as db:
            rows = db.exec(
                select(t.UserRow.username)
                .where(col(t.UserRow.password_hash).is_(None), col(t.UserRow.active).is_(True))
                .where(col(t.UserRow.remote).is_(False))
                .order_by(col(t.UserRow.username))
            )
            return list(rows.all())

    def set_password(self, username: str, password: str) -> None:
        """Set a user's password, stored as ``det user change-password`` has the master store it
        (a missing user is a ``KeyError``)."""
        with self.transaction(write=True) as db:
            user = db.exec(select(t.UserRow).where(t.UserRow.username == username)).first()
            if user is None:
                raise KeyError(username)
            user.password_hash = hash_password(client_hash(password)) if password else None
            user.modified_at = utcnow()
            db.add(user)

    def _rebuild_reusing_tables(self) -> None:
        """Give tables of an older file, created without ``AUTOINCREMENT``, the keyword.

        ``create_all`` never alters an existing table, and without the keyword SQLite hands out
        ``max(id) + 1``: deleting the newest row would free its id. Each such table is rebuilt
        once (SQLite's "make other kinds of table schema changes" procedure: create, copy,
        drop, rename, with foreign keys off, in one transaction); ``sqlite_sequence`` then
        starts from the largest id the file still holds (ids deleted before the upgrade cannot
        be known).
        """
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()  # the driver's own: autocommit, no implicit BEGIN
            stale = [t for t in _generated_id_tables() if _lacks_autoincrement(cursor, t.name)]
            if not stale:
                return
            cursor.execute("PRAGMA foreign_keys=OFF")
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    for table in stale:
                        _rebuild(cursor, table, self.engine.dialect)
                    problems = cursor.execute("PRAGMA foreign_key_check").fetchall()
                    if problems:
                        raise RuntimeError(f"foreign keys broken by the rebuild: {problems[:5]}")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            finally:
                cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            connection.close()

    def _bootstrap(self) -> None:
        # A fresh master has "admin" and "determined", both without a password, and the
        # immutable "Uncategorized" workspace and project (ids 1).
        with self.transaction(write=True) as db:
            if db.exec(select(t.UserRow).limit(1)).first() is not None:
                return
            now = utcnow()
            admin = t.UserRow(username="admin", admin=True, modified_at=now)
            determined = t.UserRow(username="determined", admin=False, modified_at=now)
            db.add_all([admin, determined])
            db.flush()
            assert admin.id is not None
            workspace = t.WorkspaceRow(
                name="Uncategorized", immutable=True, user_id=admin.id, created_at=now
            )
            db.add(workspace)
            db.flush()
            assert workspace.id is not None
            db.add(
                t.ProjectRow(
                    name="Uncategorized",
                    workspace_id=workspace.id,
                    immutable=True,
                    user_id=admin.id,
                    key="UNCAT",
                    notes=[],
                    created_at=now,
                )
            )
