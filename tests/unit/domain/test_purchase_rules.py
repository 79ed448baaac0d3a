"""The tier rule's shortcut (every order inside the window: the lifetime spend is the window's)
against walking the orders, on states built by the evolvers, at the window's edges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from crm_es.domain import events as ev
from crm_es.domain.customer import Customer, evolve
from crm_es.domain.decide.purchase_rules import tier_review
from crm_es.domain.values import Tier, tier_for_spend

BASE = datetime(2024, 1, 1, tzinfo=UTC)
YEAR, US = timedelta(days=365), timedelta(microseconds=1)
TIMES = [BASE + d for d in (timedelta(0), US, -US, YEAR, YEAR - US, YEAR + US, 2 * YEAR)]
AMOUNTS = [1, 499_999, 500_000, 500_001, 1_999_999, 2_000_000, 5_000_000]


def walked(cu: Customer, at: datetime, delta: int) -> tuple[Tier, int] | None:
    """The rule as first written: always walk the orders in the window."""
    if cu.tier_since is not None and at < cu.tier_since:
        return None
    lifetime = cu.paid.get("CNY", 0) - cu.refunded.get("CNY", 0) + delta
    if cu.tier is Tier.STANDARD and tier_for_spend(lifetime) is Tier.STANDARD:
        return None
    spend = cu.rolling_spend(at) + delta
    tier = tier_for_spend(spend)
    return None if tier == cu.tier else (tier, spend)


@settings(max_examples=400, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.sampled_from(TIMES), st.sampled_from(AMOUNTS), st.sampled_from(["CNY", "JPY"]),
                  st.booleans()),
        max_size=5,
    ),
    tier=st.sampled_from(list(Tier)),
    at=st.sampled_from(TIMES),
    delta=st.sampled_from([0, 1, -1, 500_000]),
)  # fmt: skip
def test_the_window_shortcut_decides_as_walking_the_orders(
    orders: list[tuple[datetime, int, str, bool]], tier: Tier, at: datetime, delta: int
) -> None:
    oid = uuid.uuid4()
    envelope = {"originator_id": oid, "recorded_at": BASE, "actor": "t"}
    events: list[ev.CustomerEvent] = [
        ev.CustomerRegistered(
            originator_version=1, occurred_at=BASE - YEAR, external_ref="R", **envelope
        )
    ]
    for i, (when, amount, currency, refund) in enumerate(orders):
        events.append(ev.PurchaseRecorded(
            originator_version=len(events) + 1, occurred_at=when, order_id=f"O{i}",
            amount=amount, currency=currency, **envelope))  # fmt: skip
        if refund:
            events.append(ev.PurchaseRefunded(
                originator_version=len(events) + 1, occurred_at=when, order_id=f"O{i}",
                amount=amount // 2, currency=currency, **envelope))  # fmt: skip
    cu = evolve(None, events)
    assert cu is not None
    cu.tier, cu.tier_since = tier, None  # any recorded tier; no forward-only bound
    assert tier_review(cu, at, delta) == walked(cu, at, delta)
