"""Random command sequences never break an invariant, and reloading gives the same customer.

Each hypothesis example drives a fresh customer (own external ref) through the real service and
store; commands that break a rule must raise a CrmError and store nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_es import CRM, CrmError
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer, evolve
from tests.helpers.strategies import command_strategy


def _check_invariants(c: Customer) -> None:
    assert c.points_balance >= 0
    assert c.points_balance == sum(lot.remaining for lot in c.lots)
    assert all(lot.remaining > 0 for lot in c.lots)
    for order in c.orders.values():
        assert 0 <= order.refunded <= order.amount
    assert sum(o.amount for o in c.orders.values()) == sum(c.paid.values())
    assert sum(o.refunded for o in c.orders.values()) == sum(c.refunded.values())
    assert all(k.status in {"open", "escalated", "resolved"} for k in c.complaints.values())
    assert all(
        (k.status == "resolved") == (k.resolved_at is not None) for k in c.complaints.values()
    )
    assert all(t.status in {"scheduled", "completed", "cancelled"} for t in c.care_tasks.values())
    assert len(set(c.surveys_answered)) == len(c.surveys_answered)
    assert c.tags == sorted(set(c.tags))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(commands=st.lists(command_strategy(), min_size=1, max_size=30))
def test_random_command_sequences_keep_every_invariant(
    store_url: str, commands: list[dict[str, Any]]
) -> None:
    ref = f"H-{uuid.uuid4().hex[:12]}"
    with CRM(store_url) as crm:
        crm.register_customer(external_ref=ref)
        for fields in commands:
            before = crm.recorder.max_notification_id()
            try:
                command = msgspec.convert({**fields, "customer": ref}, cmd.AnyCommand)  # type: ignore[arg-type]
                crm.execute(command)
            except (CrmError, msgspec.ValidationError):
                assert crm.recorder.max_notification_id() == before
            _check_invariants(crm.get_customer(ref))
        in_memory = crm.get_customer(ref)
        replayed: Customer | None = None
        for event in crm.history(ref):
            replayed = evolve(replayed, (event,))
    assert replayed == in_memory
    with CRM(store_url) as fresh:
        assert fresh.get_customer(ref) == in_memory
