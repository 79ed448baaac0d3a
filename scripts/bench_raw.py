"""The raw store's limit for the import figure: the same stored rows into a bare table.

The rows our import wrote (originator id, version, topic, state bytes) are read back and inserted
into a table of the same shape, in one transaction, the fastest plain way each store offers (and
a second time together with the import's ``crm_commands`` rows, which the import also writes;
and a third time with them in transactions of the import's size, its commits included):
``executemany`` on SQLite (same journal mode as the library, WAL, and the page cache our bulk
saves use), ``COPY`` on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import msgspec

from crm_es import CRM
from crm_es.store.database import Database
from crm_es.store.recorders import BULK_CACHE_KIB, COMMANDS_TABLE

# The shape of crm_commands (see recorders.py), for the bare copy.
_COMMAND_COLUMNS = (
    "command_id text PRIMARY KEY, payload_hash bytea NOT NULL, customer_id text NOT NULL, "
    "version bigint NOT NULL, events integer NOT NULL"
)


def _stored_rows(crm: CRM, first: int) -> list[tuple[Any, ...]]:
    db = Database(crm.store.config)
    table = crm.recorder.events_table_name  # type: ignore[attr-defined]
    id_column = "notification_id" if db.postgres else "rowid"
    try:
        with db.reading() as tx:
            return tx.query(
                f"SELECT originator_id, originator_version, topic, state FROM {table} "
                f"WHERE {id_column} >= ? ORDER BY {id_column}",
                (first,),
            )
    finally:
        db.close()


def _command_rows(crm: CRM, prefix: str) -> list[tuple[Any, ...]]:
    db = Database(crm.store.config)
    try:
        with db.reading() as tx:
            return tx.query(
                f"SELECT command_id, payload_hash, customer_id, version, events "
                f"FROM {COMMANDS_TABLE} WHERE command_id LIKE ? ORDER BY command_id",
                (prefix + "%",),
            )
    finally:
        db.close()


class RawRates(msgspec.Struct, frozen=True):
    """Events per second the bare store takes."""

    events: float  # the event rows alone, in one transaction
    with_records: float  # the event rows and the import's idempotency records, one transaction
    in_chunks: float  # both, in transactions of the import's size (its commits included)


def raw_insert_rates(
    crm: CRM, first: int, store: str, command_prefix: str, chunk_rows: int
) -> RawRates:
    """The bare store's rates for the rows an import wrote (see :class:`RawRates`)."""
    rows, commands = _stored_rows(crm, first), _command_rows(crm, command_prefix)
    rate = _sqlite_rate if store == "sqlite" else partial(_postgres_rate, crm)
    return RawRates(
        events=rate(rows, [], len(rows)),
        with_records=rate(rows, commands, len(rows)),
        in_chunks=rate(rows, commands, chunk_rows),
    )


def _chunks(
    rows: list[tuple[Any, ...]], commands: list[tuple[Any, ...]], size: int
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """The rows in transactions of ``size`` events, the records spread over them alike."""
    size = max(size, 1)
    per_event = len(commands) / max(len(rows), 1)
    for start in range(0, max(len(rows), 1), size):
        end = start + size
        yield rows[start:end], commands[round(start * per_event) : round(end * per_event)]


def _sqlite_rate(rows: list[tuple[Any, ...]], commands: list[tuple[Any, ...]], size: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        conn = sqlite3.connect(f"{d}/raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")  # as our bulk saves have
        conn.execute(
            "CREATE TABLE raw_events (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.execute(f"CREATE TABLE raw_commands ({_COMMAND_COLUMNS})")
        started = time.perf_counter()
        for event_rows, command_rows in _chunks(rows, commands, size):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO raw_events VALUES (?, ?, ?, ?)", event_rows)
            conn.executemany("INSERT INTO raw_commands VALUES (?, ?, ?, ?, ?)", command_rows)
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        conn.close()
    return len(rows) / seconds


def _postgres_rate(
    crm: CRM, rows: list[tuple[Any, ...]], commands: list[tuple[Any, ...]], size: int
) -> float:
    import psycopg

    with psycopg.connect(crm.store.config.conninfo()) as conn:
        schema = crm.store.config.schema or "public"
        conn.execute(
            f'CREATE TABLE "{schema}".raw_events (originator_id uuid, originator_version bigint, '
            "topic text, state bytea, notification_id bigserial, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
        conn.execute(f'CREATE TABLE "{schema}".raw_commands ({_COMMAND_COLUMNS})')
        conn.commit()
        started = time.perf_counter()
        for event_rows, command_rows in _chunks(rows, commands, size):
            with conn.cursor() as cur:
                with cur.copy(
                    f'COPY "{schema}".raw_events (originator_id, originator_version, topic, '
                    "state) FROM STDIN"
                ) as copy:
                    for row in event_rows:
                        copy.write_row(row)
                with cur.copy(f'COPY "{schema}".raw_commands FROM STDIN') as copy:
                    for row in command_rows:
                        copy.write_row(row)
            conn.commit()
        seconds = time.perf_counter() - started
        conn.execute(f'DROP TABLE "{schema}".raw_events, "{schema}".raw_commands')
        conn.commit()
    return len(rows) / seconds


def raw_commit_rate(store: str, url: str, n: int = 1000) -> float:
    """One row per transaction, as one synchronous client must commit one command at a time:
    the ceiling of the ``commands`` figure. On PostgreSQL each row pays the protocol of every
    real save (``PostgresCommandRecorder``): one round trip to a server-side function that takes
    the table lock (kept on purpose: notification ids in commit order), NOTIFYs and inserts, and
    commits as its statement ends. So the limit is one round trip plus one WAL flush per commit;
    what separates the figure from it is our work per command in Python."""
    import os
    import uuid

    state = os.urandom(300)
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            conn = sqlite3.connect(f"{d}/raw.db", isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(
                "CREATE TABLE raw (id TEXT, v INTEGER, topic TEXT, state BLOB, PRIMARY KEY (id, v))"
            )
            started = time.perf_counter()
            for _ in range(n):
                conn.execute("BEGIN")
                conn.execute("INSERT INTO raw VALUES (?, 1, 'x', ?)", (uuid.uuid4().hex, state))
                conn.execute("COMMIT")
            seconds = time.perf_counter() - started
            conn.close()
        return n / seconds
    import psycopg

    from crm_es.store.url import parse_store_url

    config = parse_store_url(url)
    schema = config.schema or "public"
    with psycopg.connect(config.conninfo(), autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{schema}".raw (id uuid, v int, topic text, state bytea, '
            "n bigserial, PRIMARY KEY (id, v))"
        )
        conn.execute(
            f'CREATE FUNCTION "{schema}".raw_insert(p_id uuid, p_state bytea) RETURNS void '
            f'LANGUAGE plpgsql AS $$ BEGIN LOCK TABLE "{schema}".raw IN EXCLUSIVE MODE; '
            f'NOTIFY raw_probe; INSERT INTO "{schema}".raw (id, v, topic, state) '
            "VALUES (p_id, 1, 'x', p_state); END $$"
        )
        started = time.perf_counter()
        for _ in range(n):
            conn.execute(
                f'SELECT "{schema}".raw_insert(%s, %s)', (uuid.uuid4(), state), prepare=True
            )
        seconds = time.perf_counter() - started
        conn.execute(f'DROP FUNCTION "{schema}".raw_insert')
        conn.execute(f'DROP TABLE "{schema}".raw')
    return n / seconds
