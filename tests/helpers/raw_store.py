"""SQL straight on a store, behind the application's back: what tamper and privacy tests use to
read, alter and delete stored rows as an attacker with database access would."""

from __future__ import annotations

from typing import Any

from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.database import Database
from crm_es.store.url import parse_store_url


def raw(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL straight on the store, behind the application's back."""
    db = Database(parse_store_url(url))
    try:
        with db.transaction() as tx:
            if sql.lstrip().upper().startswith("SELECT"):
                return tx.query(sql, params)
            tx.execute(sql, params)
            return []
    finally:
        db.close()


def table(url: str, purpose: str = "events") -> str:
    """The library's table names: ``stored_events`` on SQLite, ``crm_events`` on PostgreSQL."""
    return f"crm_{purpose}" if url.startswith("postgres") else f"stored_{purpose}"


def db_id(url: str, ref: str) -> Any:
    """How the library stores an originator id: a UUID on PostgreSQL, 32 hex digits on SQLite."""
    cid = customer_id_for_ref(ref)
    return cid if url.startswith("postgres") else cid.hex


def state_of(url: str, ref: str, version: int, purpose: str = "events") -> bytes:
    rows = raw(
        url,
        f"SELECT state FROM {table(url, purpose)} "
        "WHERE originator_id = ? AND originator_version = ?",
        (db_id(url, ref), version),
    )
    return bytes(rows[0][0])


def set_row(url: str, ref: str, version: int, topic: str, state: bytes) -> None:
    raw(
        url,
        f"UPDATE {table(url)} SET topic = ?, state = ? "
        "WHERE originator_id = ? AND originator_version = ?",
        (topic, state, db_id(url, ref), version),
    )


def topic_of(url: str, ref: str, version: int) -> str:
    rows = raw(
        url,
        f"SELECT topic FROM {table(url)} WHERE originator_id = ? AND originator_version = ?",
        (db_id(url, ref), version),
    )
    return str(rows[0][0])


def delete_row(url: str, ref: str, version: int) -> None:
    raw(
        url,
        f"DELETE FROM {table(url)} WHERE originator_id = ? AND originator_version = ?",
        (db_id(url, ref), version),
    )
