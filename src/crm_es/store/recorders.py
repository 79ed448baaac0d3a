"""Application recorders that also keep the idempotency records and snapshots of each save.

``events.put(..., commands=[CommandRecord(...)], snapshots=[row, ...])`` travels down to the
recorder's ``insert_events``, which writes the ``crm_commands`` rows and the snapshot rows in
the same transaction as the events (:mod:`crm_es.store.save_rows`): on SQLite through the
library's ``_insert_events`` hook, on PostgreSQL through one server-side function call (see
:mod:`crm_es.store.postgres_recorder`). So a command's events, its record and any snapshot it
made due commit together or not at all, and a second attempt with the same ``command_id``
collides on the table's primary key. Selected with the library's
``APPLICATION_RECORDER_TOPIC`` setting (see ``url.py``).
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from crm_es.store.database import Database
from crm_es.store.save_rows import CommandRow, EventRow, SaveStatements, save_sqlite

COMMANDS_TABLE: Final = "crm_commands"
# Saves of at least this many events (bulk chunks) stream their rows with COPY on PostgreSQL
# and get a larger page cache on SQLite.
COPY_THRESHOLD: Final = 200
BULK_CACHE_KIB: Final = 131_072
RECORD_COLUMNS: Final = "command_id, payload_hash, customer_id, version, events"
# The first byte of a keyed payload hash (33 bytes: this byte and an HMAC-SHA256).
KEYED_HASH: Final = b"\x01"
# The first byte of an older version's plain SHA-256 payload hash once sealed with the store's
# idempotency secret (33 bytes, as keyed hashes are): see :func:`seal_plain_hashes`.
SEALED_PLAIN_HASH: Final = b"\x02"
_PLAIN_HASH_BYTES: Final = 32


def seal_plain_hash(plain: bytes, key: bytes) -> bytes:
    return SEALED_PLAIN_HASH + hmac.digest(key, plain, "sha256")


# The first byte of the payload hash of a record an audit import wrote for a command whose
# events it imported: the payload is unknown (the source's secret stays with the source), so a
# command re-sent with that id is answered as done, whatever its fields.
IMPORTED_HASH: Final = b"\x03"


def payload_hash_known(payload_hash: bytes) -> bool:
    """Whether a record's payload hash has a form this version writes (an HMAC: a plain hash
    or anything else was written behind the store's back)."""
    return len(payload_hash) == 33 and payload_hash[:1] in (
        KEYED_HASH,
        SEALED_PLAIN_HASH,
        IMPORTED_HASH,
    )


def imported_hash(command_id: str, key: bytes) -> bytes:
    return IMPORTED_HASH + hmac.digest(key, b"imported|" + command_id.encode(), "sha256")


def seal_plain_hashes(db: Database, key: bytes) -> int:
    """Seal the plain payload hashes an older version wrote (how many): run once per store,
    when a version that keys hashes first opens it. A plain hash is a digest of the command
    alone, so anyone could write one for a command not yet sent and have it answered as
    done; sealed, only the store's secret makes one."""
    with db.transaction() as tx:
        rows = tx.query(
            f"SELECT command_id, payload_hash FROM {COMMANDS_TABLE} WHERE length(payload_hash) = ?",
            (_PLAIN_HASH_BYTES,),
        )
        for command_id, plain in rows:
            tx.execute(
                f"UPDATE {COMMANDS_TABLE} SET payload_hash = ? WHERE command_id = ?",
                (seal_plain_hash(bytes(plain), key), command_id),
            )
    return len(rows)


class CommandRecord(msgspec.Struct, frozen=True):
    command_id: str
    payload_hash: bytes
    customer_id: UUID
    version: int
    events: int


def command_rows(commands: Sequence[CommandRecord]) -> list[CommandRow]:
    return [(c.command_id, c.payload_hash, c.customer_id, c.version, c.events) for c in commands]


def event_rows(stored: Sequence[StoredEvent]) -> list[EventRow]:
    return [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]


def record_of(row: Sequence[Any]) -> CommandRecord:
    return CommandRecord(row[0], bytes(row[1]), UUID(str(row[2])), int(row[3]), int(row[4]))


def snapshots_table_of(events_table: str) -> str:
    """The library's snapshots table beside an events table (``stored_events`` ->
    ``stored_snapshots``, ``crm_events`` -> ``crm_snapshots``)."""
    return events_table.removesuffix("events") + "snapshots"


class SQLiteCommandRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {COMMANDS_TABLE} (command_id TEXT PRIMARY KEY, "
            "payload_hash BLOB NOT NULL, customer_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "events INTEGER NOT NULL, position INTEGER)",
        ]

    @property
    def save_statements(self) -> SaveStatements:
        events = self.events_table_name
        return SaveStatements(
            prelude=[],
            events=self.insert_events_statement,
            commands=f"INSERT INTO {COMMANDS_TABLE} ({RECORD_COLUMNS}, position) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            snapshots=f"INSERT INTO {snapshots_table_of(events)} "
            "(originator_id, originator_version, topic, state, position) VALUES (?, ?, ?, ?, ?)",
            next_id=f"SELECT COALESCE(MAX(rowid), 0) + 1 FROM {events}",
            last_id="SELECT last_insert_rowid()",
        )

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if len(stored_events) >= COPY_THRESHOLD:
            # A bulk chunk inserts at random places in the (originator_id, version) index; with
            # SQLite's default 2 MB page cache a million-event store rereads and respills index
            # pages per row (import at 1M events: 43k -> 67k rows/s raw with 128 MB, measured).
            # The setting stays with the pooled connection; the memory is used only as needed.
            c.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
        commands: Sequence[CommandRecord] = kwargs.get("commands", ())
        snapshots: Sequence[EventRow] = kwargs.get("snapshots", ())
        return save_sqlite(
            c, self._statements, event_rows(stored_events), command_rows(commands), snapshots
        )

    @property
    def _statements(self) -> SaveStatements:
        found: SaveStatements | None = getattr(self, "_save_sql", None)
        if found is None:
            found = self._save_sql = self.save_statements
        return found

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
                    f"SELECT {RECORD_COLUMNS} "
                    f"FROM {COMMANDS_TABLE} WHERE command_id IN ({', '.join('?' * len(batch))})",
                    batch,
                )
                found.update({row[0]: record_of(row) for row in c.fetchall()})
        return found
