"""The recorders' insert: events and idempotency records in one transaction, collisions refused
whole with the library's IntegrityError; on PostgreSQL also the table lock and the NOTIFY that
the one-round-trip insert function must keep."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import sql

from crm_es import CRM
from crm_es.store.recorders import CommandRecord
from tests.helpers.recorders import events, record


def stored(crm: CRM, customer: uuid.UUID) -> list[tuple[int, str, bytes]]:
    rows = crm.recorder.select_events(customer)
    return [(r.originator_version, r.topic, r.state) for r in rows]


def commands(crm: CRM, *ids: str) -> dict[str, CommandRecord]:
    return crm.store.command_log.select_commands(list(ids))


def test_events_and_their_command_record_are_stored_together(crm: CRM) -> None:
    customer = uuid.uuid4()
    command_id = "cmd 'ünï' \"q\" \\ 1"
    ids = crm.recorder.insert_events(
        events(customer, 1, 3), commands=[record(command_id, customer, 3, 3)]
    )
    assert stored(crm, customer) == [
        (e.originator_version, e.topic, e.state) for e in events(customer, 1, 3)
    ]
    assert commands(crm, command_id) == {command_id: record(command_id, customer, 3, 3)}
    if ids is not None:  # notification ids in the order of the events
        assert len(ids) == 3 and list(ids) == sorted(ids)
        notes = crm.recorder.select_notifications(ids[0], limit=10)
        assert [n.originator_version for n in notes] == [1, 2, 3]


def test_a_collision_stores_nothing_and_raises_the_library_integrity_error(crm: CRM) -> None:
    customer = uuid.uuid4()
    crm.recorder.insert_events(events(customer, 1, 2), commands=[record("a", customer, 2, 2)])
    # The same command id again, with events that would fit the stream.
    with pytest.raises(IntegrityError):
        crm.recorder.insert_events(events(customer, 3, 1), commands=[record("a", customer, 3, 1)])
    assert [v for v, _, _ in stored(crm, customer)] == [1, 2]
    # A new command id, but a version already taken: its record is not kept either.
    with pytest.raises(IntegrityError):
        crm.recorder.insert_events(events(customer, 2, 2), commands=[record("b", customer, 3, 2)])
    assert [v for v, _, _ in stored(crm, customer)] == [1, 2]
    assert set(commands(crm, "a", "b")) == {"a"}
    # The store is still usable afterwards.
    crm.recorder.insert_events(events(customer, 3, 1), commands=[record("b", customer, 3, 1)])
    assert [v for v, _, _ in stored(crm, customer)] == [1, 2, 3]


def _connect(crm: CRM) -> psycopg.Connection[Any]:
    return psycopg.connect(crm.store.config.conninfo(), autocommit=True)


def _events_table(crm: CRM) -> sql.Composed:
    return sql.SQL("{}.{}").format(
        sql.Identifier(crm.store.config.schema),
        sql.Identifier(crm.recorder.events_table_name),  # type: ignore[attr-defined]
    )


def test_postgres_save_takes_the_events_table_lock_before_it_inserts(postgres_url: str) -> None:
    """Notification ids follow commit order only because every save takes the table lock: a
    save must wait while another transaction holds it."""
    with CRM(postgres_url) as crm:
        _save_waits_for_the_table_lock(crm)


def _save_waits_for_the_table_lock(crm: CRM) -> None:
    customer = uuid.uuid4()
    done = threading.Event()
    errors: list[BaseException] = []

    def save() -> None:
        try:
            crm.recorder.insert_events(events(customer, 1, 1))
        except BaseException as e:
            errors.append(e)
        done.set()

    with _connect(crm) as holder, _connect(crm) as observer:
        with holder.transaction():
            holder.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(_events_table(crm)))
            thread = threading.Thread(target=save)
            thread.start()
            deadline = time.monotonic() + 10
            waiting = 0
            while not waiting and time.monotonic() < deadline:
                row = observer.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE NOT l.granted AND l.mode = 'ExclusiveLock' "
                    "AND n.nspname = %s AND c.relname = %s",
                    (crm.store.config.schema, crm.recorder.events_table_name),  # type: ignore[attr-defined]
                ).fetchone()
                waiting = row[0] if row else 0
                time.sleep(0.01)
            assert waiting == 1, "the save did not wait for the table lock"
            assert not done.is_set()
        thread.join(timeout=10)
    assert done.is_set() and errors == []
    assert [v for v, _, _ in stored(crm, customer)] == [1]


def test_postgres_save_notifies_the_channel_followers_listen_on(postgres_url: str) -> None:
    # The channel is shared by every schema of the database (other stores notify it too), so
    # only a notification sent by this store's one pooled connection counts.
    env = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"}
    with CRM(postgres_url, env=env) as crm, _connect(crm) as listener:
        with crm.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            writer = conn.info.backend_pid
        channel = crm.recorder.channel_name  # type: ignore[attr-defined]
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        crm.recorder.insert_events(events(uuid.uuid4(), 1, 1))
        deadline = time.monotonic() + 5
        ours = []
        while not ours and time.monotonic() < deadline:
            ours = [n for n in listener.notifies(timeout=0.5) if n.pid == writer]
    assert [n.channel for n in ours] == [channel]
