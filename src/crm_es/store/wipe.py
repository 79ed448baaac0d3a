"""Wiping what an erasure leaves in the files: the bytes of deleted keys and personal rows.

A deleted row stays in the table's pages (PostgreSQL) or in the write-ahead log's frames
(SQLite) until they are rewritten. After an erasure the tables that held personal data are
rewritten (``VACUUM FULL``) or the log is emptied (``wal_checkpoint(TRUNCATE)``). Neither can
remove what a reader that started before the erasure may still see: PostgreSQL copies those row
versions into the new table, SQLite cannot reset a log a reader is using. Then the wipe is left
*pending* in the store's settings, with its tables, and finished by :func:`finish_pending_wipe`
(``crm-es maintain`` runs it) once those readers are gone; ``audit verify`` reports a pending
wipe.

Which read-model tables hold personal data is kept in :data:`PERSONAL_TABLES`, written by the
projections in the transaction that creates or drops a table, so an erasure deletes the
customer's rows from every one at once, whatever path the erasure came by and whether or not a
projection is running.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from uuid import UUID

import msgspec

from crm_es.store.database import TEXT, Database, Tx
from crm_es.store.settings import StoreSettings

PERSONAL_TABLES: Final = "crm_personal_tables"
PENDING_WIPE: Final = "personal_data_wipe_pending"
LOCK_WAIT: Final = "2s"  # how long a rewrite waits for a reader's lock on a table


def create_registry(tx: Tx) -> None:
    tx.execute(f"CREATE TABLE IF NOT EXISTS {PERSONAL_TABLES} (name {TEXT} PRIMARY KEY)")


def register_personal_table(tx: Tx, name: str) -> None:
    create_registry(tx)
    tx.execute(f"INSERT INTO {PERSONAL_TABLES} (name) VALUES (?) ON CONFLICT DO NOTHING", (name,))


def unregister_personal_table(tx: Tx, name: str) -> None:
    create_registry(tx)
    tx.execute(f"DELETE FROM {PERSONAL_TABLES} WHERE name = ?", (name,))


def forget_personal_rows(db: Database, customer_ids: Sequence[UUID]) -> list[str]:
    """Delete these customers' rows from every registered personal table (their key is gone:
    what the read models copied in clear goes too); the tables that had some."""
    ids = [str(c) for c in customer_ids]
    with db.transaction() as tx:
        create_registry(tx)
        tables = [str(r[0]) for r in tx.query(f"SELECT name FROM {PERSONAL_TABLES} ORDER BY name")]
        marks = ", ".join("?" * len(ids))
        touched = [
            table
            for table in tables
            if tx.execute(f"DELETE FROM {table} WHERE customer_id IN ({marks})", ids) > 0
        ]
    return touched


def wipe(db: Database, tables: Sequence[str]) -> bool:
    """Rewrite ``tables`` (PostgreSQL) or empty the log (SQLite); True when no older reader
    can have kept a copy, else the wipe is left pending (see the module doc)."""
    if db.postgres:
        with db.reading() as tx:
            started = tx.query("SELECT clock_timestamp()")[0][0]
        if not _rewrite(db, tables):
            _leave_pending(db, tables)
            return False
        with db.reading() as tx:
            older = tx.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL AND xact_start < ?",
                (started,),
            )[0][0]
        done = bool(older == 0)
    else:
        done = db.truncate_wal()
    if not done:
        _leave_pending(db, tables)
    return done


def _rewrite(db: Database, tables: Sequence[str]) -> bool:
    """VACUUM FULL each table; False when one is locked by a reader (the erasure does not wait
    for it: the wipe is left pending)."""
    import psycopg  # only a PostgreSQL store rewrites tables

    db.autocommit(f"SET lock_timeout = '{LOCK_WAIT}'")
    try:
        for table in tables:
            db.autocommit(f"VACUUM FULL {table}")
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        db.autocommit("SET lock_timeout = 0")
    return True


def _leave_pending(db: Database, tables: Sequence[str]) -> None:
    settings = StoreSettings(db)
    pending = set(_pending_tables(settings)) | set(tables)
    settings.put(PENDING_WIPE, msgspec.json.encode(sorted(pending)).decode())


def finish_pending_wipe(db: Database) -> bool | None:
    """Run a pending wipe again: True when it is done now, False when still pending, None when
    there was none."""
    settings = StoreSettings(db)
    if settings.get(PENDING_WIPE) in (None, ""):
        return None
    tables = _pending_tables(settings)
    settings.put(PENDING_WIPE, "")
    return wipe(db, tables)


def wipe_pending(db: Database) -> bool:
    return StoreSettings(db).get(PENDING_WIPE) not in (None, "")


def _pending_tables(settings: StoreSettings) -> list[str]:
    value = settings.get(PENDING_WIPE)
    return msgspec.json.decode(value, type=list[str]) if value else []
