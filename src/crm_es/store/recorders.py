"""Application recorders that also keep the idempotency record of each command.

``events.put(..., commands=[CommandRecord(...)])`` travels down to the recorder's
``insert_events``, which writes the ``crm_commands`` rows in the same transaction as the events:
on SQLite through the library's ``_insert_events`` hook, on PostgreSQL through one server-side
function call (see :class:`PostgresCommandRecorder`). So a command's events and its
``crm_commands`` row commit together or not at all, and a second attempt with the same
``command_id`` collides on the table's primary key. Selected with the library's
``APPLICATION_RECORDER_TOPIC`` setting (see ``store.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

import msgspec
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal

from crm_es.store.bulk_copy import copy_chunk

COMMANDS_TABLE: Final = "crm_commands"
# Saves of at least this many events (bulk chunks) stream their rows with COPY on PostgreSQL
# and get a larger page cache on SQLite.
COPY_THRESHOLD: Final = 200
BULK_CACHE_KIB: Final = 131_072
_JSON: Final = msgspec.json.Encoder()  # UUIDs as their canonical text, bytes as base64


class CommandRecord(msgspec.Struct, frozen=True):
    command_id: str
    payload_hash: bytes
    customer_id: UUID
    version: int
    events: int


def _hex(originator_id: UUID | str) -> str:
    return _uuid_hex(originator_id) if isinstance(originator_id, UUID) else originator_id


# A UUID's ``hex`` and ``str`` are Python-level formatting (~1 µs); a bulk save asks for the same
# customers' ids over and over. Kept by ``UUID.int`` (a UUID's own hash is a Python method) in
# plain dicts cleared when full: an LRU bounded below the customers of an import missed on
# every row (a quarter of the save thread's time at 100,000 customers, measured).
MAX_REMEMBERED_IDS: Final = 250_000
_hexes: dict[int, str] = {}
_texts: dict[int, str] = {}


def _uuid_hex(value: UUID) -> str:
    found = _hexes.get(value.int)
    if found is None:
        if len(_hexes) >= MAX_REMEMBERED_IDS:
            _hexes.clear()
        found = _hexes[value.int] = value.hex
    return found


def _uuid_text(value: UUID) -> str:
    found = _texts.get(value.int)
    if found is None:
        if len(_texts) >= MAX_REMEMBERED_IDS:
            _texts.clear()
        found = _texts[value.int] = str(value)
    return found


def _rows(commands: Sequence[CommandRecord]) -> list[tuple[str, bytes, str, int, int]]:
    return [
        (c.command_id, c.payload_hash, _uuid_text(c.customer_id), c.version, c.events)
        for c in commands
    ]


def _record(row: Sequence[Any]) -> CommandRecord:
    return CommandRecord(row[0], bytes(row[1]), UUID(str(row[2])), int(row[3]), int(row[4]))


class SQLiteCommandRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {COMMANDS_TABLE} (command_id TEXT PRIMARY KEY, "
            "payload_hash BLOB NOT NULL, customer_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "events INTEGER NOT NULL)",
        ]

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if len(stored_events) >= COPY_THRESHOLD:
            # A bulk chunk inserts at random places in the (originator_id, version) index; with
            # SQLite's default 2 MB page cache a million-event store rereads and respills index
            # pages per row (import at 1M events: 43k -> 67k rows/s raw with 128 MB, measured).
            # The setting stays with the pooled connection; the memory is used only as needed.
            c.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
        # One executemany instead of the library's statement per row (it wants each rowid).
        # Rowids of a table without AUTOINCREMENT are max + 1 per row, and nobody else can
        # insert inside this write transaction, so the new ids are the run ending at the last.
        rows = [
            (_hex(s.originator_id), s.originator_version, s.topic, s.state) for s in stored_events
        ]
        if len(rows) == 1:  # one command's event: its rowid without another statement
            c.execute(self.insert_events_statement, rows[0])
            last = int(c.lastrowid)
        else:
            c.executemany(self.insert_events_statement, rows)
            c.execute("SELECT last_insert_rowid()")
            last = int(c.fetchone()[0])
        ids = list(range(last - len(stored_events) + 1, last + 1)) if stored_events else []
        commands: Sequence[CommandRecord] = kwargs.get("commands", ())
        if len(commands) == 1:
            c.execute(self.insert_commands_statement, _rows(commands)[0])
        elif commands:
            c.executemany(self.insert_commands_statement, _rows(commands))
        return ids

    insert_commands_statement: Final = (
        f"INSERT INTO {COMMANDS_TABLE} (command_id, payload_hash, customer_id, version, events) "
        "VALUES (?, ?, ?, ?, ?)"
    )

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, CommandRecord]:
        if not command_ids:
            return {}
        ids, found = list(command_ids), {}
        with self.datastore.transaction(commit=False) as c:
            # As many ids per statement as this SQLite takes parameters: an import chunk looks
            # up 50,000 and the default build takes 32,766 (Debian's 250,000; old builds 999).
            limit = c.sqlite_cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            for start in range(0, len(ids), limit):
                batch = ids[start : start + limit]
                c.execute(
                    f"SELECT command_id, payload_hash, customer_id, version, events "
                    f"FROM {COMMANDS_TABLE} WHERE command_id IN ({', '.join('?' * len(batch))})",
                    batch,
                )
                found.update({row[0]: _record(row) for row in c.fetchall()})
        return found


class PostgresCommandRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder with one round trip per save.

    The library's insert (``insert_events``) spends a round trip on each of BEGIN, the table
    lock, NOTIFY, the events, our ``crm_commands`` rows and COMMIT (~15 socket waits measured per
    save with psycopg's pipeline). Here one server-side function does the same steps in the same
    order, and the call runs on an autocommit connection, so the statement's own transaction
    commits before the answer comes back:

    1. ``LOCK TABLE … IN EXCLUSIVE MODE`` (with the configured ``lock_timeout``): writers
       serialise before drawing notification ids, so ids are issued in commit order and a
       tailing reader never steps past an id that commits later. The lock is held until the
       commit, as in the library's protocol (its own ``POSTGRES_ENABLE_DB_FUNCTIONS`` function
       skips the lock, which is why it loses events; this one does not).
    2. ``NOTIFY`` on the library's channel, delivered at commit: followers wake as before.
    3. The ``crm_commands`` rows and the events, in one transaction with each other; the new
       notification ids are returned.

    A collision on ``(originator_id, originator_version)`` or on ``crm_commands.command_id``
    aborts the whole statement (nothing is stored) and surfaces as the library's
    ``IntegrityError``; lost connections are retried as the library retries them.
    """

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self._commands_table = SQL("{}.{}").format(schema, Identifier(COMMANDS_TABLE))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (command_id text PRIMARY KEY, "
                "payload_hash bytea NOT NULL, customer_id text NOT NULL, version bigint NOT NULL, "
                "events integer NOT NULL)"
            ).format(self._commands_table)
        )
        function = f"{self.events_table_name}_insert"
        self.check_identifier_length(function)
        id_type = SQL("uuid") if self.datastore.originator_id_type == "uuid" else SQL("text")
        # Rows travel as two JSON arrays (bytes as base64): one text parameter each costs the
        # client a fraction of what psycopg spends adapting nine typed arrays.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "p_events json, p_commands json, p_lock_timeout text) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $$ "
                "BEGIN "
                "PERFORM set_config('lock_timeout', p_lock_timeout, true); "
                "LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "INSERT INTO {commands} (command_id, payload_hash, customer_id, version, events) "
                "SELECT c->>0, decode(c->>1, 'base64'), c->>2, (c->>3)::bigint, (c->>4)::integer "
                "FROM json_array_elements(p_commands) AS c; "
                "RETURN QUERY INSERT INTO {schema}.{events} AS t "
                "(originator_id, originator_version, topic, state) "
                "SELECT (e->>0)::{id_type}, (e->>1)::bigint, e->>2, decode(e->>3, 'base64') "
                "FROM json_array_elements(p_events) AS e RETURNING t.notification_id; "
                "END $$"
            ).format(
                schema=schema,
                function=Identifier(function),
                id_type=id_type,
                events=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
                commands=self._commands_table,
            )
        )
        self._call_insert = SQL("SELECT n FROM {}.{}(%s::json, %s::json, %s) AS n").format(
            schema, Identifier(function)
        )
        self._call_insert_bytes: bytes | None = None  # rendered once, on the first call
        self._lock_timeout = f"{self.datastore.lock_timeout}s"

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        commands: Sequence[CommandRecord] = kwargs.get("commands", ())
        if not stored_events and not commands:
            return []
        if len(stored_events) >= COPY_THRESHOLD:
            return self._copy_rows(
                [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored_events],
                commands,
            )
        events = _JSON.encode(
            [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored_events]
        )
        records = _JSON.encode(
            [(c.command_id, c.payload_hash, c.customer_id, c.version, c.events) for c in commands]
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit  # the function's statement is its own transaction
            if self._call_insert_bytes is None:
                self._call_insert_bytes = self._call_insert.as_bytes(conn)
            curs.execute(
                self._call_insert_bytes,
                (events.decode(), records.decode(), self._lock_timeout),
                prepare=True,
            )
            return [row["n"] for row in curs.fetchall()]

    def bulk_statements(self) -> tuple[list[SQL | Composed], Composed, Composed]:
        """The bulk save's protocol: statements before the COPYs (the lock timeout, the table
        lock, the NOTIFY), the COPY of ``crm_commands`` and the COPY of the events. Shared by
        the save in this process and the bulk writer process (:mod:`crm_es.app.bulk.writer`)."""
        events_table = Identifier(self.datastore.schema, self.events_table_name)
        prelude: list[SQL | Composed] = [
            SQL("SELECT set_config('lock_timeout', {}, true)").format(Literal(self._lock_timeout)),
            SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(events_table),
            SQL("NOTIFY {}").format(Identifier(self.channel_name)),
        ]
        commands_copy = SQL(
            "COPY {} (command_id, payload_hash, customer_id, version, events) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(self._commands_table)
        events_copy = SQL(
            "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(events_table)
        return prelude, commands_copy, events_copy

    def _copy_rows(
        self, rows: Sequence[tuple[Any, ...]], commands: Sequence[CommandRecord]
    ) -> list[int]:
        """A bulk save: the same protocol (lock, NOTIFY, both tables, one transaction) with
        the rows streamed by binary COPY, ~5x cheaper for the server than the function's JSON.

        COPY returns no ids; under the EXCLUSIVE lock nobody else draws from the table's
        sequence (no cache, increment 1), so ours are the run ending at its current value."""
        prelude, commands_copy, events_copy = self.bulk_statements()
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            copy_chunk(curs, prelude, commands_copy, _rows(commands), events_copy, rows)
            curs.execute(
                SQL("SELECT currval(pg_get_serial_sequence({}, 'notification_id'))").format(
                    Literal(f'"{self.datastore.schema}"."{self.events_table_name}"')
                )
            )
            current = curs.fetchone()
            assert current is not None
            last = int(current[0])
        return list(range(last - len(rows) + 1, last + 1))

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, CommandRecord]:
        if not command_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            # The ids travel as one JSON text: psycopg adapts a Python list of 50,000 strings
            # element by element in Python (~5% of an import's time, measured).
            curs.execute(
                SQL(
                    "SELECT command_id, payload_hash, customer_id, version, events FROM {} "
                    "WHERE command_id = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
                ).format(self._commands_table),
                (_JSON.encode(list(command_ids)).decode(),),
            )
            return {row["command_id"]: _record(list(row.values())) for row in curs.fetchall()}
