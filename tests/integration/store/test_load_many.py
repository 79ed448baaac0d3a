"""``Store.load_many`` gives, for every customer, exactly what ``Store.load`` gives.

A varied population on both stores: no snapshot, a snapshot mid-stream and at the head, a latest
snapshot of an older schema, forged (not sealed), or sealed but bound to another event (each with
a usable older one behind it), an erased customer, a customer with no events, long streams and
encrypted personal fields. Usable snapshots are rewritten (sealed with the store's secret) to
hold a points balance no event gives, so the states show which snapshot each load started from.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from uuid import UUID

import msgspec
import pytest

from crm_es import CRM
from crm_es.domain.customer import Customer
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.snapshot import CustomerSnapshot
from crm_es.domain.values import ERASED
from crm_es.store import stream_batches
from crm_es.store.codec import StoredRow
from tests.helpers.raw_store import db_id, delete_row, raw, table

INTERVAL = 3  # a snapshot every 3 events


def _grow(crm: CRM, ref: str, events: int) -> None:
    """``ref`` registered with personal data, then contacts (a personal summary each) and
    purchases up to ``events`` events (signed already: a first purchase moves no category)."""
    crm.register_customer(
        external_ref=ref,
        name=f"王芳 {ref}",
        email=f"{ref}@example.com",
        phone="+86 138 0000 0000",
        category="signed",
    )
    for i in range(events - 1):
        if i % 2:
            crm.log_contact(
                customer=ref, channel="phone", direction="outbound", summary=f"回访 {i}"
            )
        else:
            crm.record_purchase(customer=ref, order_id=f"O-{i}", amount="19.90", currency="CNY")


def _snapshot_versions(url: str, ref: str) -> list[int]:
    rows = raw(
        url,
        f"SELECT originator_version FROM {table(url, 'snapshots')} WHERE originator_id = ? "
        "ORDER BY originator_version",
        (db_id(url, ref),),
    )
    return [int(r[0]) for r in rows]


def _put_snapshot(url: str, ref: str, version: int, row: StoredRow) -> None:
    raw(
        url,
        f"UPDATE {table(url, 'snapshots')} SET state = ? "
        "WHERE originator_id = ? AND originator_version = ?",
        (row[3], db_id(url, ref), version),
    )


def _marked(crm: CRM, ref: str, version: int, marker: int) -> Customer:
    state = crm.store.load(customer_id_for_ref(ref), version)
    assert state is not None
    state.points_balance = marker
    return state


def _sealed(crm: CRM, url: str, ref: str, version: int, marker: int) -> None:
    """The snapshot at ``version`` rewritten, sealed, to carry ``marker`` points: usable."""
    _put_snapshot(url, ref, version, crm.store.snapshot_row(_marked(crm, ref, version, marker)))


def _old_schema(crm: CRM, url: str, ref: str, version: int, marker: int) -> None:
    state = _marked(crm, ref, version, marker)
    snapshot = msgspec.structs.replace(
        CustomerSnapshot.take(state), schema=CustomerSnapshot.SCHEMA - 1
    )
    head = crm.store.events.head_hash(state.id, version)
    row = crm.store.codec.encode_snapshot(snapshot, head, crm.store.secrets.snapshot_key)
    _put_snapshot(url, ref, version, row)


def _forged(crm: CRM, url: str, ref: str, version: int, marker: int) -> None:
    """Written by someone without the master key: not sealed."""
    forged = crm.mapper.to_stored_event(CustomerSnapshot.take(_marked(crm, ref, version, marker)))
    _put_snapshot(url, ref, version, (forged.originator_id, version, forged.topic, forged.state))


def _unbound(crm: CRM, url: str, ref: str, version: int, marker: int) -> None:
    """Sealed, but bound to an event that is not the one stored at its version."""
    row = crm.store.snapshot_row(_marked(crm, ref, version, marker), head_hash=bytes(32))
    _put_snapshot(url, ref, version, row)


POPULATION = {  # ref: events
    "plain": 2,
    "mid": 8,
    "at-head": 9,
    "old-schema": 8,
    "forged": 7,
    "unbound": 10,
    "erased": 5,
    "key-gone": 4,
    "long": 31,
}


@pytest.fixture
def population(store_url: str) -> Iterator[str]:
    with CRM(store_url, snapshot_interval=INTERVAL) as crm:
        for ref, events in POPULATION.items():
            _grow(crm, ref, events)
        crm.erase_personal_data(customer="erased", requested_by="customer")
        for ref in POPULATION:
            versions = _snapshot_versions(store_url, ref)
            for version in versions:  # every usable snapshot tells it was used
                _sealed(crm, store_url, ref, version, 1000 + version)
        spoilers = (("old-schema", _old_schema), ("forged", _forged), ("unbound", _unbound))
        for ref, spoil in spoilers:
            latest = _snapshot_versions(store_url, ref)[-1]
            spoil(crm, store_url, ref, latest, 999_999)
        # A key deleted with no erasure event (the database's erase function run alone): the
        # personal fields of the snapshot and the events after it read [erased].
        crm.store.personal_data.shred(customer_id_for_ref("key-gone"))
    yield store_url


def _ids() -> list[UUID]:
    never = uuid.uuid5(uuid.NAMESPACE_URL, "never registered")
    refs = [customer_id_for_ref(ref) for ref in POPULATION]
    return [*refs, never, refs[2], refs[0]]  # with repeats, in an order of its own


@pytest.mark.parametrize("batch_size", [1000, 2])
def test_load_many_gives_what_load_gives_for_every_customer(
    population: str, batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_batches, "BATCH_SIZE", batch_size)  # 2: across query batches
    ids = _ids()
    with CRM(population) as crm:
        many = crm.store.load_many(ids)
    with CRM(population) as crm:  # a new process's cold caches, as the bulk path meets them
        one_by_one = [crm.store.load(oid) for oid in ids]
    assert many == one_by_one
    assert [c.id if c is not None else None for c in many] == [
        *ids[: len(POPULATION)],
        None,
        ids[2],
        ids[0],
    ]
    by_ref = {c.external_ref: c for c in many if c is not None}
    # Which snapshot each started from (its marker), and so that both followed the same rules.
    assert by_ref["plain"].points_balance == 0  # no snapshot
    assert by_ref["mid"].points_balance == 1006  # the latest, events 7-8 after it
    assert by_ref["at-head"].points_balance == 1009  # the latest is at the head
    assert by_ref["old-schema"].points_balance == 1003  # the older one: 6 is of schema 5
    assert by_ref["forged"].points_balance == 1003  # the older one: 6 is not sealed
    assert by_ref["unbound"].points_balance == 1006  # the older one: 9 is bound elsewhere
    assert by_ref["long"].points_balance == 1030
    assert by_ref["long"].version == 31
    # Personal fields decrypted, or erased, as load gives them.
    assert by_ref["long"].name == "王芳 long"
    assert by_ref["long"].email == "long@example.com"
    assert by_ref["erased"].erased
    assert by_ref["erased"].name is None
    assert by_ref["key-gone"].name == ERASED
    assert by_ref["key-gone"].email == ERASED
    assert by_ref["key-gone"].points_balance == 1003


def test_load_many_of_nobody_reads_nothing(store_url: str) -> None:
    with CRM(store_url) as crm:
        assert crm.store.load_many([]) == []
        crm.register_customer(external_ref="C-1", name="王芳")
        assert [
            c.name if c else None for c in crm.store.load_many([customer_id_for_ref("C-1")])
        ] == ["王芳"]


def test_a_customer_loaded_at_its_snapshot_has_its_chain_head_remembered(store_url: str) -> None:
    """Its next event chains to the stored head without reading that event again: here the
    row is deleted behind the store's back after the load, and the head is still known."""
    cid = customer_id_for_ref("C-1")
    with CRM(store_url, snapshot_interval=INTERVAL) as crm:
        _grow(crm, "C-1", 6)
        expected = crm.store.events.head_hash(cid, 6)
    with CRM(store_url, snapshot_interval=INTERVAL) as crm:
        (state,) = crm.store.load_many([cid])
        assert state is not None and state.version == 6
        delete_row(store_url, "C-1", 6)
        assert crm.store.events.head_hash(cid, 6) == expected != bytes(32)
