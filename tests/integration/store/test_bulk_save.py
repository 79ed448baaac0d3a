"""Bulk saves (a chunk of an import): on PostgreSQL their rows stream by COPY, which must keep
everything the one-by-one insert keeps: both tables in one transaction, collisions refused
whole, notification ids in event order, the table lock and the NOTIFY."""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import sql

from crm_es import CRM
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain.values import Category
from crm_es.store.recorders import COPY_THRESHOLD
from tests.helpers.recorders import events, record

MANY = COPY_THRESHOLD + 50


def versions(crm: CRM, customer: uuid.UUID) -> list[int]:
    return [r.originator_version for r in crm.recorder.select_events(customer)]


def test_a_bulk_save_stores_both_tables_and_returns_ids_in_event_order(crm: CRM) -> None:
    customer = uuid.uuid4()
    crm.recorder.insert_events(events(uuid.uuid4(), 1, 1))  # the sequence has moved on
    batch = events(customer, 1, MANY)
    ids = crm.recorder.insert_events(batch, commands=[record("bulk-1", customer, MANY, MANY)])
    stored = crm.recorder.select_events(customer)
    assert [(s.originator_version, s.topic, s.state) for s in stored] == [
        (e.originator_version, e.topic, e.state) for e in batch
    ]
    assert crm.store.command_log.select_commands(["bulk-1"]) == {
        "bulk-1": record("bulk-1", customer, MANY, MANY)
    }
    assert ids is not None and len(ids) == MANY
    notes = crm.recorder.select_notifications(ids[0], limit=MANY + 10)
    assert [n.id for n in notes] == list(ids)
    assert [n.originator_version for n in notes] == list(range(1, MANY + 1))


def test_a_bulk_save_that_collides_stores_nothing_of_either_table(crm: CRM) -> None:
    customer = uuid.uuid4()
    crm.recorder.insert_events(events(customer, 1, 2), commands=[record("taken", customer, 2, 2)])
    with pytest.raises(IntegrityError):  # one version already taken
        crm.recorder.insert_events(
            events(customer, 2, MANY), commands=[record("new", customer, MANY + 1, MANY)]
        )
    with pytest.raises(IntegrityError):  # the command id already taken
        crm.recorder.insert_events(
            events(customer, 3, MANY), commands=[record("taken", customer, MANY + 2, MANY)]
        )
    assert versions(crm, customer) == [1, 2]
    assert set(crm.store.command_log.select_commands(["taken", "new"])) == {"taken"}
    crm.recorder.insert_events(events(customer, 3, MANY))  # still usable
    assert versions(crm, customer) == list(range(1, MANY + 3))


def test_an_import_chunk_through_the_bulk_save_is_idempotent(crm: CRM) -> None:
    registered = datetime(2024, 1, 1, tzinfo=UTC)
    crm.register_customer(external_ref="BULK", occurred_at=registered)
    purchases = [
        cmd.RecordPurchase(
            customer="BULK",
            order_id=f"O-{i}",
            amount=Decimal("12.30"),
            currency="CNY",
            occurred_at=registered,
            command_id=f"bulk-purchase-{i}",
        )
        for i in range(MANY)
    ]
    first = list(crm.execute_many(purchases, chunk_size=MANY, validated=True))
    assert not [o for o in first if isinstance(o, Exception)]
    again = list(crm.execute_many(purchases, chunk_size=MANY, validated=True))
    assert all(getattr(o, "duplicate", False) for o in again)
    customer = crm.get_customer("BULK")
    assert customer.paid == {"CNY": 1230 * MANY}
    assert customer.category is Category.SIGNED  # the bulk path records the first purchase's move
    report = verify(crm)  # the chain holds across the bulk save
    assert report.ok and report.events == MANY + 2  # registration, purchases, the move


def test_a_bulk_save_on_postgres_notifies_followers(postgres_url: str) -> None:
    # Only a notification from this store's one pooled connection counts (the channel is
    # shared by every schema of the database).
    env = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"}
    with (
        CRM(postgres_url, env=env) as crm,
        psycopg.connect(crm.store.config.conninfo(), autocommit=True) as listener,
    ):
        with crm.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            writer = conn.info.backend_pid
        channel = crm.recorder.channel_name  # type: ignore[attr-defined]
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        crm.recorder.insert_events(events(uuid.uuid4(), 1, MANY))
        deadline = time.monotonic() + 5
        ours: list[psycopg.Notify] = []
        while not ours and time.monotonic() < deadline:
            ours = [n for n in listener.notifies(timeout=0.5) if n.pid == writer]
    assert [n.channel for n in ours] == [channel]


def test_a_chunk_looks_up_more_command_ids_than_sqlite_takes_parameters(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's default build takes at most 32,766 parameters per statement (Debian's: 250,000)
    and an import chunk holds 50,000 command ids: the lookup must not depend on that limit.
    Each connection here gets a limit of 100, as a build compiled with it would have."""
    connect = sqlite3.connect

    def limited(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
        return connection

    monkeypatch.setattr(sqlite3, "connect", limited)
    with CRM(sqlite_url) as crm:
        customer = uuid.uuid4()
        crm.recorder.insert_events(
            events(customer, 1, 1), commands=[record("taken", customer, 1, 1)]
        )
        ids = [f"new-{i}" for i in range(250)] + ["taken"]
        assert set(crm.store.command_log.select_commands(ids)) == {"taken"}
        # The import path: a chunk of 250 purchases with command ids, then the same again.
        ref = "C-1"
        list(crm.execute_many([cmd.RegisterCustomer(external_ref=ref)]))
        purchases = [
            cmd.RecordPurchase(
                customer=ref,
                order_id=f"O-{i}",
                amount=Decimal("1.00"),
                currency="CNY",
                command_id=f"buy-{i}",
            )
            for i in range(250)
        ]
        first = list(crm.execute_many(purchases, chunk_size=500))
        again = list(crm.execute_many(purchases, chunk_size=500))
    assert not [o for o in first if isinstance(o, Exception)]
    assert [o.duplicate for o in again if not isinstance(o, Exception)] == [True] * 250
