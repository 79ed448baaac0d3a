"""A PostgreSQL connection the server ended (a restart, an administrator, an idle timeout) is
replaced on the next transaction instead of failing it: its BEGIN is the first to notice, and
nothing has run yet, so the transaction opens on a new connection."""

from __future__ import annotations

import psycopg

from crm_es import CRM
from crm_es.store.database import Database
from crm_es.store.url import parse_store_url


def _end_session(url: str, pid: int) -> None:
    with psycopg.connect(parse_store_url(url).conninfo(), autocommit=True) as admin:
        ended = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert ended == (True,)


def _backend_pid(db: Database) -> int:
    with db.reading() as tx:
        return int(tx.query("SELECT pg_backend_pid()")[0][0])


def test_a_read_and_a_write_after_the_server_ended_the_session_run_on_a_new_one(
    postgres_url: str,
) -> None:
    with CRM(postgres_url):  # the store's schema
        pass
    db = Database(parse_store_url(postgres_url))
    try:
        with db.transaction() as tx:
            tx.execute("CREATE TABLE reconnect_probe (n BIGINT)")
        first = _backend_pid(db)
        _end_session(postgres_url, first)
        second = _backend_pid(db)  # a read: no error, another session
        assert second != first
        _end_session(postgres_url, second)
        with db.transaction() as tx:  # a write, likewise, and it commits
            tx.execute("INSERT INTO reconnect_probe VALUES (7)")
        with db.reading() as tx:
            assert tx.query("SELECT n FROM reconnect_probe") == [(7,)]
    finally:
        db.close()
