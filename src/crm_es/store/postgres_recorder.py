"""The PostgreSQL application recorder: one round trip per save, COPY for bulk saves.

The library's insert (``insert_events``) spends a round trip on each of BEGIN, the table lock,
NOTIFY, the events, our ``crm_commands`` rows and COMMIT (~15 socket waits measured per save
with psycopg's pipeline). Here one server-side function does the same steps in the same order,
and the call runs on an autocommit connection, so the statement's own transaction commits
before the answer comes back:

1. ``LOCK TABLE … IN EXCLUSIVE MODE`` (with the configured ``lock_timeout``): writers serialise
   before drawing notification ids, so ids are issued in commit order and a tailing reader never
   steps past an id that commits later. The lock is held until the commit, as in the library's
   protocol (its own ``POSTGRES_ENABLE_DB_FUNCTIONS`` function skips the lock, which is why it
   loses events; this one does not). It is taken by ``<events>_lock()``, a SECURITY DEFINER
   function of the table's owner: PostgreSQL grants that lock mode only to a role that may
   update or delete the table, which the writing roles of ``crm-es roles init`` may not
   (:mod:`crm_es.store.pg_roles`).
2. ``NOTIFY`` on the library's channel, delivered at commit: followers wake as before.
3. The events, then the ``crm_commands`` rows and the snapshots with their position (see
   :mod:`crm_es.store.save_rows`), all in one transaction; the new notification ids return.

A collision on ``(originator_id, originator_version)`` or on ``crm_commands.command_id`` aborts
the whole statement (nothing is stored) and surfaces as the library's ``IntegrityError``; lost
connections are retried as the library retries them. Saves of many events (bulk chunks) take
the same protocol with binary COPY instead (:func:`crm_es.store.save_rows.save_postgres`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composable, Identifier, Literal

from crm_es.store.recorders import (
    COMMANDS_TABLE,
    COPY_THRESHOLD,
    RECORD_COLUMNS,
    CommandRecord,
    command_rows,
    event_rows,
    record_of,
    snapshots_table_of,
)
from crm_es.store.save_rows import EventRow, SaveStatements, save_postgres

_JSON: Final = msgspec.json.Encoder()  # UUIDs as their canonical text, bytes as base64


class PostgresCommandRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self._commands_table = SQL("{}.{}").format(schema, Identifier(COMMANDS_TABLE))
        self._snapshots_table = SQL("{}.{}").format(
            schema, Identifier(snapshots_table_of(self.events_table_name))
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (command_id text PRIMARY KEY, "
                "payload_hash bytea NOT NULL, customer_id text NOT NULL, version bigint NOT NULL, "
                "events integer NOT NULL, position bigint)"
            ).format(self._commands_table)
        )
        function = f"{self.events_table_name}_save"
        self.check_identifier_length(function)
        lock = f"{self.events_table_name}_lock"
        self.check_identifier_length(lock)
        self._lock_function = SQL("{}.{}").format(schema, Identifier(lock))
        # The table lock as the owner (see the module doc); nobody else may call it unless
        # granted (a caller could hold back every writer until its transaction ends).
        self.sql_create_statements += [
            SQL(
                "CREATE OR REPLACE FUNCTION {lock}() RETURNS void LANGUAGE plpgsql "
                "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ "
                "BEGIN LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE; END $$"
            ).format(
                lock=self._lock_function,
                schema=schema,
                events=Identifier(self.events_table_name),
            ),
            SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(self._lock_function),
        ]
        id_type = SQL("uuid") if self.datastore.originator_id_type == "uuid" else SQL("text")
        # Rows travel as JSON arrays (bytes as base64): one text parameter each costs the client
        # a fraction of what psycopg spends adapting typed arrays. The snapshots table is the
        # library's (created beside this one); the function only names it when it runs.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "p_events json, p_commands json, p_snapshots json, p_lock_timeout text) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $$ "
                "DECLARE v_ids bigint[]; v_position bigint; "
                "BEGIN "
                "PERFORM set_config('lock_timeout', p_lock_timeout, true); "
                "PERFORM {lock}(); "
                "NOTIFY {channel}; "
                "WITH inserted AS (INSERT INTO {schema}.{events} AS t "
                "(originator_id, originator_version, topic, state) "
                "SELECT (e->>0)::{id_type}, (e->>1)::bigint, e->>2, decode(e->>3, 'base64') "
                "FROM json_array_elements(p_events) AS e RETURNING t.notification_id) "
                "SELECT array_agg(notification_id ORDER BY notification_id) INTO v_ids "
                "FROM inserted; "
                "v_position := COALESCE(v_ids[1], "
                "(SELECT COALESCE(max(notification_id), 0) + 1 FROM {schema}.{events})); "
                "INSERT INTO {commands} ({record_columns}, position) "
                "SELECT c->>0, decode(c->>1, 'base64'), c->>2, (c->>3)::bigint, (c->>4)::integer, "
                "v_position FROM json_array_elements(p_commands) AS c; "
                "INSERT INTO {snapshots} (originator_id, originator_version, topic, state, "
                "position) SELECT (s->>0)::{id_type}, (s->>1)::bigint, s->>2, "
                "decode(s->>3, 'base64'), v_position FROM json_array_elements(p_snapshots) AS s; "
                "RETURN QUERY SELECT unnest(COALESCE(v_ids, '{{}}'::bigint[])); "
                "END $$"
            ).format(
                schema=schema,
                function=Identifier(function),
                lock=self._lock_function,
                id_type=id_type,
                events=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
                commands=self._commands_table,
                snapshots=self._snapshots_table,
                record_columns=SQL(RECORD_COLUMNS),
            )
        )
        self._call_save = SQL("SELECT n FROM {}.{}(%s::json, %s::json, %s::json, %s) AS n").format(
            schema, Identifier(function)
        )
        self._call_save_bytes: bytes | None = None  # rendered once, on the first call
        self._lock_timeout = f"{self.datastore.lock_timeout}s"

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        commands: Sequence[CommandRecord] = kwargs.get("commands", ())
        snapshots: Sequence[EventRow] = kwargs.get("snapshots", ())
        if not stored_events and not commands and not snapshots:
            return []
        if len(stored_events) >= COPY_THRESHOLD:
            return self._copy(event_rows(stored_events), commands, snapshots)
        events = _JSON.encode(event_rows(stored_events))
        records = _JSON.encode(command_rows(commands))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit  # the function's statement is its own transaction
            if self._call_save_bytes is None:
                self._call_save_bytes = self._call_save.as_bytes(conn)
            curs.execute(
                self._call_save_bytes,
                (events.decode(), records.decode(), _JSON.encode(list(snapshots)).decode(),
                 self._lock_timeout),
                prepare=True,
            )  # fmt: skip
            return [row["n"] for row in curs.fetchall()]

    def save_statements(self) -> list[Composable]:
        """The bulk save's protocol, in the order of :class:`SaveStatements`: the lock timeout,
        the table lock (through the owner's function) and the NOTIFY, then the COPYs of the
        events, the records and the snapshots, then the next and the last notification id.
        Shared by the save in this process and the bulk writer process
        (:mod:`crm_es.app.bulk.writer`)."""
        events_table = Identifier(self.datastore.schema, self.events_table_name)
        sequence = Literal(f'"{self.datastore.schema}"."{self.events_table_name}"')
        return [
            SQL("SELECT set_config('lock_timeout', {}, true)").format(Literal(self._lock_timeout)),
            SQL("SELECT {}()").format(self._lock_function),
            SQL("NOTIFY {}").format(Identifier(self.channel_name)),
            SQL(
                "COPY {} (originator_id, originator_version, topic, state) "
                "FROM STDIN (FORMAT BINARY)"
            ).format(events_table),
            SQL("COPY {} ({}, position) FROM STDIN (FORMAT BINARY)").format(
                self._commands_table, SQL(RECORD_COLUMNS)
            ),
            SQL(
                "COPY {} (originator_id, originator_version, topic, state, position) "
                "FROM STDIN (FORMAT BINARY)"
            ).format(self._snapshots_table),
            SQL("SELECT COALESCE(max(notification_id), 0) + 1 FROM {}").format(events_table),
            SQL("SELECT currval(pg_get_serial_sequence({}, 'notification_id'))").format(sequence),
        ]

    def rendered_statements(self, conn: Any) -> SaveStatements:
        texts = [statement.as_string(conn) for statement in self.save_statements()]
        return SaveStatements(texts[:3], *texts[3:])

    def _copy(
        self,
        events: Sequence[EventRow],
        commands: Sequence[CommandRecord],
        snapshots: Sequence[EventRow],
    ) -> list[int]:
        """A bulk save: the same protocol (lock, NOTIFY, all three tables, one transaction)
        with the rows streamed by binary COPY, ~5x cheaper for the server than the function's
        JSON."""
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            sql = self.rendered_statements(conn)
            return save_postgres(curs, sql, events, command_rows(commands), snapshots)

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, CommandRecord]:
        if not command_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            # The ids travel as one JSON text: psycopg adapts a Python list of 50,000 strings
            # element by element in Python (~5% of an import's time, measured).
            curs.execute(
                SQL(
                    "SELECT {} FROM {} "
                    "WHERE command_id = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
                ).format(SQL(RECORD_COLUMNS), self._commands_table),
                (_JSON.encode(list(command_ids)).decode(),),
            )
            return {row["command_id"]: record_of(list(row.values())) for row in curs.fetchall()}
