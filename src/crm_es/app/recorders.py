"""Application recorders that also keep the idempotency record of each command.

``CRM.save(..., commands=[CommandRecord(...)])`` travels through the library down to the
recorder's ``_insert_events``, which runs inside the same transaction as the event inserts (the
library's own hook). So a command's events and its ``crm_commands`` row commit together or not at
all, and a second attempt with the same ``command_id`` collides on the table's primary key.
Selected with the library's ``APPLICATION_RECORDER_TOPIC`` setting (see ``store.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

COMMANDS_TABLE: Final = "crm_commands"


class CommandRecord(msgspec.Struct, frozen=True):
    command_id: str
    payload_hash: bytes
    customer_id: UUID
    version: int
    events: int


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def _rows(commands: Sequence[CommandRecord]) -> list[tuple[Any, ...]]:
    return [
        (c.command_id, c.payload_hash, str(c.customer_id), c.version, c.events) for c in commands
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
        # One executemany instead of the library's statement per row (it wants each rowid).
        # Rowids of a table without AUTOINCREMENT are max + 1 per row, and nobody else can
        # insert inside this write transaction, so the new ids are the run ending at the last.
        c.executemany(
            self.insert_events_statement,
            [
                (_hex(s.originator_id), s.originator_version, s.topic, s.state)
                for s in stored_events
            ],
        )
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        ids = list(range(last - len(stored_events) + 1, last + 1)) if stored_events else []
        commands: Sequence[CommandRecord] = kwargs.get("commands", ())
        if commands:
            c.executemany(
                f"INSERT INTO {COMMANDS_TABLE} (command_id, payload_hash, customer_id, version, "
                "events) VALUES (?, ?, ?, ?, ?)",
                _rows(commands),
            )
        return ids

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, CommandRecord]:
        if not command_ids:
            return {}
        marks = ", ".join("?" * len(command_ids))
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT command_id, payload_hash, customer_id, version, events "
                f"FROM {COMMANDS_TABLE} WHERE command_id IN ({marks})",
                list(command_ids),
            )
            return {row[0]: _record(row) for row in c.fetchall()}


class PostgresCommandRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._commands_table = SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(COMMANDS_TABLE)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (command_id text PRIMARY KEY, "
                "payload_hash bytea NOT NULL, customer_id text NOT NULL, version bigint NOT NULL, "
                "events integer NOT NULL)"
            ).format(self._commands_table)
        )

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        commands: Sequence[CommandRecord] = kwargs.get("commands", ())
        if commands:
            curs.executemany(
                SQL(
                    "INSERT INTO {} (command_id, payload_hash, customer_id, version, events) "
                    "VALUES (%s, %s, %s, %s, %s)"
                ).format(self._commands_table),
                _rows(commands),
            )

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, CommandRecord]:
        if not command_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT command_id, payload_hash, customer_id, version, events FROM {} "
                    "WHERE command_id = ANY(%s)"
                ).format(self._commands_table),
                (list(command_ids),),
            )
            return {row["command_id"]: _record(list(row.values())) for row in curs.fetchall()}
