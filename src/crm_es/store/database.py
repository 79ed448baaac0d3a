"""A small portable layer over sqlite3 and psycopg for our own tables (read models, keys).

Read models live in the same database as the events (so a view change and its tracking position
commit together), but the library's recorders expose no general-purpose transaction, so read
models open their own connection. SQL is written once with ``?`` placeholders and ``{table}``
names; this module turns ``?`` into ``%s`` for PostgreSQL and sets its ``search_path``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from crm_es.store.url import StoreConfig

# Column types that mean the same on both stores.
BIGINT = "BIGINT"
TEXT = "TEXT"
REAL = "DOUBLE PRECISION"
# How long an SQLite statement waits for another writer before failing (milliseconds).
BUSY_TIMEOUT_MS = 30_000

_QMARK = re.compile(r"\?")
# The "create if missing" statements a store runs each time it opens. PostgreSQL refuses them
# to a role that does not own the schema even when the object is there, so a session of such a
# role (those of ``crm-es roles init``) skips them: the owner made the objects, and roles init
# refuses a store it has not. Anything else such a role may not do still fails in the database.
_ENSURE = re.compile(
    r"\s*(CREATE (UNIQUE )?INDEX IF NOT EXISTS|CREATE TABLE IF NOT EXISTS"
    r"|ALTER TABLE \S+ ADD COLUMN IF NOT EXISTS)",
    re.IGNORECASE,
)
# Whether the session's role owns the schema (a superuser does): it creates what is missing.
_OWNS_SCHEMA = (
    "SELECT COALESCE((SELECT pg_has_role(nspowner, 'USAGE') FROM pg_namespace "
    "WHERE nspname = current_schema()), true)"
)


class Tx:
    """One open transaction: execute statements, run queries."""

    def __init__(self, cursor: Any, postgres: bool, creates_tables: bool = True) -> None:
        self._cursor = cursor
        self.postgres = postgres
        self.creates_tables = creates_tables
        self._streams = 0
        # Set by a reader that reads some tables through views of its own (the reports'
        # merged customers): applied to every statement before it runs.
        self.rewrite: Callable[[str], str] | None = None

    def _sql(self, sql: str) -> str:
        if self.rewrite is not None:
            sql = self.rewrite(sql)
        return _QMARK.sub("%s", sql) if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; how many rows it changed."""
        if not self.creates_tables and _ENSURE.match(sql):
            return 0
        self._cursor.execute(self._sql(sql), params)
        return int(self._cursor.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def copy_rows(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """PostgreSQL only: insert ``rows`` into ``table`` (``columns``) with one COPY."""
        with self._cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def query(
        self, sql: str, params: Sequence[Any] = (), *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        """Rows of ``sql``. ``binary``: PostgreSQL sends results in binary format (bytea as
        raw bytes rather than hex text: half the client CPU for event rows)."""
        if binary and self.postgres:
            self._cursor.execute(self._sql(sql), params, binary=True)
        else:
            self._cursor.execute(self._sql(sql), params)
        return list(self._cursor.fetchall())

    def stream(
        self, sql: str, params: Sequence[Any] = (), batch: int = 2000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``sql`` in batches, on a cursor of their own (several can be read side
        by side in one transaction; PostgreSQL keeps the rows on the server until fetched)."""
        connection = self._cursor.connection
        if self.postgres:
            self._streams += 1
            with connection.cursor(name=f"crm_es_stream_{self._streams}", binary=True) as cur:
                cur.execute(self._sql(sql), params)
                while rows := cur.fetchmany(batch):
                    yield rows
            return
        cursor = connection.cursor()
        try:
            cursor.execute(self._sql(sql), params)
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()

    def for_update(self) -> str:
        """Row lock suffix: PostgreSQL locks the row; SQLite's write transaction already does."""
        return " FOR UPDATE" if self.postgres else ""


class Database:
    """Opens transactions on the store of a :class:`StoreConfig`."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.postgres = config.is_postgres
        # One connection per thread: a follower thread and a report in another thread must not
        # interleave statements on one connection.
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._creates_tables: bool | None = None if self.postgres else True

    @property
    def creates_tables(self) -> bool:
        """Whether this session creates and alters the store's tables: always on SQLite; on
        PostgreSQL when its role owns the schema (or the schema is not there yet)."""
        if self._creates_tables is None:
            self._connect()
        return self._creates_tables is not False

    def _connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not (self.postgres and conn.closed):
            return conn
        if self.postgres:
            import psycopg
            from psycopg import sql

            conn = psycopg.connect(self.config.conninfo())
            if self.config.schema:  # quoted: Tenant1 and tenant1 are two installations
                conn.execute(
                    sql.SQL("SET search_path TO {}").format(sql.Identifier(self.config.schema))
                )
            if self._creates_tables is None:
                row = conn.execute(_OWNS_SCHEMA).fetchone()
                self._creates_tables = bool(row and row[0])
            conn.commit()
        else:
            name = self.config.env["SQLITE_DBNAME"]
            conn = sqlite3.connect(
                name, uri=name.startswith("file:"), isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Deleted rows (erased personal data, dropped tables) are overwritten with zeros,
            # whatever the library's build defaults to.
            conn.execute("PRAGMA secure_delete = ON")
            if not name.startswith("file:"):
                conn.execute("PRAGMA journal_mode = WAL")
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction; commits on success, rolls back on any error."""
        if self.postgres:
            with self._pg_transaction() as cur:
                yield Tx(cur, True, self.creates_tables)
            return
        conn = self._connect()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield Tx(cur, False)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        """A read-only snapshot for queries (reports)."""
        if self.postgres:
            with self._pg_transaction() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield Tx(cur, True, self.creates_tables)
            return
        conn = self._connect()
        cur = conn.cursor()
        cur.execute("BEGIN")
        try:
            yield Tx(cur, False)
        finally:
            cur.execute("ROLLBACK")

    @contextmanager
    def _pg_transaction(self) -> Iterator[Any]:
        """A PostgreSQL transaction on this thread's connection. A connection the server ended
        (a restart, an administrator, an idle timeout) shows only when used: its BEGIN fails,
        nothing has run, so the transaction opens once more on a new connection."""
        import psycopg

        conn = self._connect()
        stack = ExitStack()
        try:
            stack.enter_context(conn.transaction())
        except psycopg.OperationalError:
            if not conn.closed:
                raise
            conn = self._connect()  # the closed one is replaced
            stack.enter_context(conn.transaction())
        with stack, conn.cursor() as cur:
            yield cur

    def autocommit(self, sql: str) -> None:
        """Run one statement outside any transaction (PostgreSQL's VACUUM needs that)."""
        conn = self._connect()
        if self.postgres:
            conn.autocommit = True
            try:
                conn.execute(sql)
            finally:
                conn.autocommit = False
            return
        conn.execute(sql)

    def truncate_wal(self) -> bool:
        """SQLite: copy the write-ahead log into the database and empty it, so frames of
        deleted rows leave the files; False when a reader holding an old snapshot kept it."""
        if self.postgres or self.config.env["SQLITE_DBNAME"].startswith("file:"):
            return True
        conn = self._connect()
        # Waiting for an old reader to finish could take as long as it lives: try once.
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return int(busy) == 0

    def release(self) -> None:
        """Close the calling thread's connection (a helper thread that is about to end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            conn.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
