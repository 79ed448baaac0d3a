"""Tamper evidence: raw SQL alters, deletes and swaps stored rows; verification names the spot."""

from __future__ import annotations

from uuid import UUID

import msgspec

from crm_es import CRM
from crm_es.audit.verify import verify
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.snapshot import CustomerSnapshot
from crm_es.store.codec import stored_hash
from tests.helpers.raw_store import db_id, delete_row, raw, set_row, state_of, table, topic_of


def populate(crm: CRM) -> None:
    """Three customers with five events each (signed already, so a first purchase moves no
    category)."""
    for ref in ("C-1", "C-2", "C-3"):
        crm.register_customer(
            external_ref=ref, name=f"name of {ref}", email=f"{ref}@example.com", category="signed"
        )
        for i in range(4):
            crm.record_purchase(customer=ref, order_id=f"O-{i}", amount="9.90", currency="CNY")


def problem(url: str) -> tuple[str, int, str]:
    with CRM(url) as crm:
        report = verify(crm)
    assert not report.ok and len(report.problems) == 1
    p = report.problems[0]
    return p.customer_id, p.version, p.problem


def test_an_untouched_store_verifies_with_a_stable_digest(store_url: str) -> None:
    with CRM(store_url) as crm:
        populate(crm)
        first, again = verify(crm), verify(crm)
        one = verify(crm, "C-2")
    assert first.ok and first.problems == []
    assert (first.streams, first.events) == (3, 15)
    assert again.digest == first.digest and len(first.digest) == 64
    assert one.ok and (one.streams, one.events) == (1, 5) and one.digest != first.digest
    assert one.customer_id == str(customer_id_for_ref("C-2"))


def test_an_altered_byte_is_named_by_customer_and_version(store_url: str) -> None:
    with CRM(store_url) as crm:
        populate(crm)
    state = bytearray(state_of(store_url, "C-2", 3))
    state[45] ^= 0x01  # one bit of the body
    set_row(store_url, "C-2", 3, topic_of(store_url, "C-2", 3), bytes(state))
    cid, version, what = problem(store_url)
    assert (cid, version) == (str(customer_id_for_ref("C-2")), 3)
    assert "altered" in what
    with CRM(store_url) as crm:
        assert verify(crm, "C-1").ok  # other streams are unaffected
        assert not verify(crm, "C-2").ok


def test_a_deleted_event_is_named_as_missing(store_url: str) -> None:
    with CRM(store_url) as crm:
        populate(crm)
    delete_row(store_url, "C-3", 2)
    cid, version, what = problem(store_url)
    assert (cid, version) == (str(customer_id_for_ref("C-3")), 2)
    assert "version 2 is missing" in what


def test_two_swapped_events_break_the_chain_at_the_first_of_them(store_url: str) -> None:
    with CRM(store_url) as crm:
        populate(crm)
    two = (topic_of(store_url, "C-1", 2), state_of(store_url, "C-1", 2))
    three = (topic_of(store_url, "C-1", 3), state_of(store_url, "C-1", 3))
    set_row(store_url, "C-1", 2, *three)
    set_row(store_url, "C-1", 3, *two)
    cid, version, _ = problem(store_url)
    assert (cid, version) == (str(customer_id_for_ref("C-1")), 2)


def test_a_rewritten_event_with_a_recomputed_hash_breaks_the_next_link(store_url: str) -> None:
    with CRM(store_url) as crm:
        populate(crm)
        # A forger re-encodes version 2 with another amount, chained to version 1 and with a
        # correct hash of its own …
        event = next(e for e in crm.history("C-1") if e.originator_version == 2)
        prev = stored_hash(state_of(store_url, "C-1", 1))
        forged = crm.mapper.encode(msgspec.structs.replace(event, amount=1), prev)
    set_row(store_url, "C-1", 2, forged.topic, forged.state)
    cid, version, what = problem(store_url)
    # … yet version 3 still holds the hash of the original version 2.
    assert (cid, version) == (str(customer_id_for_ref("C-1")), 3)
    assert "does not link to the previous event" in what


def test_deleting_the_last_event_keeps_a_valid_chain_but_changes_the_digest(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        populate(crm)
        before = verify(crm).digest
    delete_row(store_url, "C-2", 5)
    with CRM(store_url) as crm:
        after = verify(crm)
    assert after.ok  # the chain itself cannot show a truncated tail …
    assert after.digest != before  # … the remembered digest does (``--expect``)


def test_a_forged_snapshot_is_caught_by_its_seal(store_url: str) -> None:
    """Someone with write access to the database, without the master key: the snapshot they
    write (its hash recomputed) is named, and never used."""
    with CRM(store_url, snapshot_interval=3) as crm:
        populate(crm)  # each stream has 5 events: one snapshot at version 3
        assert verify(crm).snapshots == 3
        customer = crm.get_customer("C-3", version=3)
        customer.points_balance = 1_000_000
        forged = crm.mapper.to_stored_event(CustomerSnapshot.take(customer))
    raw(
        store_url,
        f"UPDATE {table(store_url, 'snapshots')} SET state = ? "
        "WHERE originator_id = ? AND originator_version = ?",
        (forged.state, db_id(store_url, "C-3"), 3),
    )
    cid, version, what = problem(store_url)
    assert (cid, version, what) == (
        str(customer_id_for_ref("C-3")),
        3,
        "snapshot forged or altered: its seal does not verify",
    )
    with CRM(store_url) as crm:
        assert crm.get_customer("C-3").points_balance == 0  # the forged balance is not used


def test_a_sealed_snapshot_that_differs_from_its_events_is_caught_by_replaying_them(
    store_url: str,
) -> None:
    """Even one written with the store's own secret (a bug, or a thief of the master key)."""
    with CRM(store_url, snapshot_interval=3) as crm:
        populate(crm)
        customer = crm.get_customer("C-3", version=3)
        customer.points_balance = 1_000_000
        _, _, _, state = crm.store.snapshot_row(customer)
    raw(
        store_url,
        f"UPDATE {table(store_url, 'snapshots')} SET state = ? "
        "WHERE originator_id = ? AND originator_version = ?",
        (state, db_id(store_url, "C-3"), 3),
    )
    cid, version, what = problem(store_url)
    assert (cid, version, what) == (
        str(customer_id_for_ref("C-3")),
        3,
        "the snapshot differs from the replay of its events",
    )


def test_verify_uses_the_customer_id_or_external_ref(store_url: str) -> None:
    with CRM(store_url) as crm:
        populate(crm)
        by_ref = verify(crm, "C-1")
        by_id = verify(crm, UUID(str(customer_id_for_ref("C-1"))))
    assert by_ref == by_id
