"""The stored form: msgspec round trip, upcasting, compression, cipher, hash chain, PII hook."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from crm_es.domain import events as ev
from crm_es.store.codec import (
    GENESIS,
    CustomerEventMapper,
    chain_hash,
    stored_hash,
    stored_prev_hash,
)

T = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def purchase(oid: UUID, version: int = 2, **fields: Any) -> ev.PurchaseRecorded:
    base: dict[str, Any] = {
        "originator_id": oid,
        "originator_version": version,
        "recorded_at": T,
        "occurred_at": T,
        "actor": "test",
        "order_id": "O-1",
        "amount": 12990,
        "currency": "CNY",
    }
    return ev.PurchaseRecorded(**{**base, **fields})


def test_events_round_trip_through_msgpack() -> None:
    mapper = CustomerEventMapper()
    event = purchase(uuid4(), items=[ev.LineItem(sku="A", quantity=2)])
    stored = mapper.encode(event, GENESIS)
    assert stored.topic == "crm.customer.PurchaseRecorded"
    assert mapper.to_domain_event(stored) == event


def test_stored_bytes_carry_predecessor_and_own_hash() -> None:
    mapper = CustomerEventMapper()
    event = purchase(uuid4())
    prev = b"\x11" * 32
    stored = mapper.encode(event, prev)
    assert stored_prev_hash(stored.state) == prev
    expected = chain_hash(event.originator_id, 2, stored.topic, stored.state[:-32])
    assert stored_hash(stored.state) == expected


def test_compressed_and_enciphered_events_round_trip() -> None:
    key = AESCipher.create_key(16)
    cipher = AESCipher(Environment(env={"CIPHER_KEY": key}))
    mapper = CustomerEventMapper(compressor=ZlibCompressor(), cipher=cipher)
    event = purchase(uuid4(), items=[ev.LineItem(sku=f"SKU-{i}") for i in range(100)])
    stored = mapper.encode(event, GENESIS)
    assert b"SKU-1" not in stored.state
    assert stored.state[1] == 3  # compressed and enciphered flags
    assert mapper.to_domain_event(stored) == event
    # A reader without the cipher says so instead of returning garbage.
    with pytest.raises(Exception, match="no cipher is configured"):
        CustomerEventMapper(compressor=ZlibCompressor()).to_domain_event(stored)


class _PurchaseV1(ev.CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "test.Purchase"
    amount_yuan: int


class _PurchaseV2(ev.CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "test.Purchase"
    class_version: ClassVar[int] = 2
    amount: int
    currency: str

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["amount"] = state.pop("amount_yuan") * 100
        state["currency"] = "CNY"


def test_a_v1_payload_reads_back_through_the_v2_class() -> None:
    oid = uuid4()
    writer = CustomerEventMapper()
    writer.register(_PurchaseV1)
    stored = writer.encode(
        _PurchaseV1(
            originator_id=oid,
            originator_version=1,
            recorded_at=T,
            occurred_at=T,
            actor="old",
            amount_yuan=12,
        ),
        GENESIS,
    )
    reader = CustomerEventMapper()
    reader.register(_PurchaseV2)
    event = reader.to_domain_event(stored)
    assert isinstance(event, _PurchaseV2)
    assert (event.amount, event.currency, event.actor) == (1200, "CNY", "old")


class _ReversingCipher:
    """A stand-in personal-data cipher: enough to see the mapper applies it to PII fields only."""

    def encrypt(self, customer_id: UUID, plaintext: str) -> str:
        return "enc:" + plaintext[::-1]

    def decrypt(self, customer_id: UUID, token: str) -> str:
        return token[4:][::-1]


def test_personal_fields_pass_through_the_personal_data_cipher() -> None:
    mapper = CustomerEventMapper(personal_data=_ReversingCipher())
    event = ev.CustomerRegistered(
        originator_id=uuid4(),
        originator_version=1,
        recorded_at=T,
        occurred_at=T,
        actor="t",
        external_ref="C-1",
        name="Wang Fang",
        email="wf@example.com",
    )
    stored = mapper.encode(event, GENESIS)
    assert b"Wang Fang" not in stored.state and b"C-1" in stored.state
    assert mapper.to_domain_event(stored) == event
