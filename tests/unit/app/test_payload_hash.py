"""The idempotency hash from a keyed HMAC made once per key is the HMAC-SHA256 of the
command's bytes that records have always held (stored records must keep matching)."""

from __future__ import annotations

import hmac
from decimal import Decimal

from crm_es.app import results
from crm_es.domain import commands as cmd
from crm_es.store.recorders import KEYED_HASH

COMMANDS: list[cmd.Command] = [
    cmd.RecordPurchase(customer="A", order_id="O-1", amount=Decimal("12.30"), currency="CNY",
                       command_id="c-1"),
    cmd.RecordPurchase(customer="A", order_id="O-2", amount="1", currency="JPY",
                       on_behalf_of="user:li", command_id="c-2"),
    cmd.RegisterCustomer(external_ref="客户-1", name="李雷", command_id="c-3"),
]  # fmt: skip


def test_payload_hash_is_the_hmac_of_the_command_bytes_under_every_key_in_turn() -> None:
    keys = [b"k" * 32, b"\x00" * 32, b"long" * 40, b"", b"k" * 32]  # > one block, empty, again
    for _ in range(2):
        for key in keys:
            for command in COMMANDS:
                expected = KEYED_HASH + hmac.digest(key, results._encode(command), "sha256")
                assert results.payload_hash(command, key) == expected
                assert results.same_payload(expected, command, key)
