"""Given / when / then for the Customer aggregate, in memory: no store, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.customer import evolve as customer_evolve
from crm_es.domain.decide import Envelope, decide
from crm_es.domain.ids import customer_id_for_ref

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
REF = "C-1"
CID = customer_id_for_ref(REF)


def command(type_name: str, **fields: Any) -> cmd.Command:
    """A command built exactly as the wire format would build it."""
    if type_name != "register_customer":
        fields.setdefault("customer", REF)
    return cmd.decode_command(msgspec.json.encode({"type": type_name, **fields}))


def when(customer: Customer | None, c: cmd.Command, now: datetime = NOW) -> list[ev.CustomerEvent]:
    envelope = Envelope.for_command(c, now, "test")
    return decide(customer, c, envelope, CID)


def evolve(customer: Customer | None, events: list[ev.CustomerEvent]) -> Customer:
    evolved = customer_evolve(customer, events)
    assert evolved is not None
    return evolved


def given(*commands: cmd.Command, now: datetime = NOW) -> Customer:
    """State after running each command in turn (each a minute apart, ending at ``now``)."""
    customer: Customer | None = None
    start = now - timedelta(minutes=len(commands))
    for i, c in enumerate(commands):
        customer = evolve(customer, when(customer, c, start + timedelta(minutes=i)))
    assert customer is not None
    return customer


def registered(**fields: Any) -> Customer:
    return given(command("register_customer", external_ref=REF, name="王芳", **fields))


def types(events: list[ev.CustomerEvent]) -> list[str]:
    return [ev.event_type_name(e) for e in events]
