"""An erasure reaches the read models at once (not at the next catch-up), and the wipe of what
it leaves in the files is finished later when a reader open at the time held it back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from crm_es import CRM
from crm_es.app.maintenance import maintain
from crm_es.audit.verify import verify
from crm_es.projections import ProjectionEngine, read_models
from crm_es.store.url import parse_store_url
from tests.helpers.raw_bytes import store_bytes

TAG = "vipalice-tag"


def built(url: str) -> None:
    with CRM(url) as crm:
        crm.register_customer(external_ref="C-1", name="Alice", birthday="1990-11-29")
        crm.change_tags(customer="C-1", add=[TAG])
        engine = ProjectionEngine(crm, read_models())
        try:
            engine.catch_up_all()
        finally:
            engine.close()


def personal_rows(url: str) -> int:
    """Rows in the read models' personal tables (tags, birthdays)."""
    with CRM(url) as crm, crm.store.db.reading() as tx:
        tables = [r[0] for r in tx.query("SELECT name FROM crm_personal_tables")]
        return sum(int(tx.query(f"SELECT count(*) FROM {t}")[0][0]) for t in tables)


def test_an_erasure_deletes_the_read_models_personal_rows_at_once(store_url: str) -> None:
    built(store_url)
    assert personal_rows(store_url) == 2
    with CRM(store_url) as crm:
        crm.erase_personal_data(customer="C-1", requested_by="dpo")  # no catch-up after it
    assert personal_rows(store_url) == 0
    assert TAG.encode() not in store_bytes(store_url)
    assert b"11-29" not in store_bytes(store_url)


@contextmanager
def old_reader(url: str) -> Iterator[None]:
    """A reader whose snapshot began before the erasure (a follower, a long report)."""
    config = parse_store_url(url)
    if config.is_postgres:
        with psycopg.connect(config.conninfo()) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute(f'SET LOCAL search_path TO "{config.schema}"')
            conn.execute("SELECT count(*) FROM crm_personal_tables").fetchone()
            yield
            conn.rollback()
        return
    conn = sqlite3.connect(config.env["SQLITE_DBNAME"], isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM crm_personal_tables").fetchone()
        yield
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_wipe_held_back_by_an_old_reader_is_pending_until_maintain(store_url: str) -> None:
    built(store_url)
    with old_reader(store_url), CRM(store_url) as crm:
        crm.erase_personal_data(customer="C-1", requested_by="dpo")
        pending = [p.problem for p in verify(crm).problems]
    assert any("wipe is pending" in p for p in pending)
    with CRM(store_url) as crm:
        assert maintain(crm).erasure_wipe == "finished"
        assert verify(crm).problems == []
        assert maintain(crm).erasure_wipe == "none pending"
    data = store_bytes(store_url)
    assert TAG.encode() not in data and b"11-29" not in data
