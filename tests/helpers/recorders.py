"""Stored rows for the recorder tests: every byte value, and text that needs escaping in JSON
and in SQL, so any encoding on the way to the store shows."""

from __future__ import annotations

import uuid

from eventsourcing.persistence import StoredEvent

from crm_es.store.recorders import CommandRecord

STATE = bytes(range(256)) * 3
TOPIC = 'crm_es.domain.events:Odd "quoted" \\ name ünïcødé'


def events(customer: uuid.UUID, first: int, count: int) -> list[StoredEvent]:
    return [
        StoredEvent(customer, v, TOPIC, STATE + v.to_bytes(4, "big"))
        for v in range(first, first + count)
    ]


def record(command_id: str, customer: uuid.UUID, version: int, count: int) -> CommandRecord:
    return CommandRecord(command_id, b"\x00\xff" * 16, customer, version, count)
