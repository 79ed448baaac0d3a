"""The columnar purchase decision of a bulk chunk against the command path, byte for byte.

Both decide the same chunk on the same stored states with the same fixed clock (each chunk is
decided twice, once with :attr:`Chunk.columnar` off, and abandoned, so nothing is saved between
them); the encoded event rows, idempotency records, snapshots and every outcome (results, and
errors by class and message) must be equal. The generated states and chunks lean on what the
rules turn on: amounts that land exactly on a tier threshold or a cent either side, times
exactly a year apart or a microsecond off it, equal and backwards times, times before 1970,
churned customers bought from again, refunds, erased customers, first purchases, duplicate
order and command ids, line items, unknown currencies and bad amounts, times in the future.
The mutation tests show the comparison fails for a columnar tier window one microsecond long
and a threshold one cent off.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crm_es import CRM, CrmError
from crm_es.app.bulk import purchase_columns
from crm_es.app.bulk.chunk import Chunk
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer
from crm_es.domain.decide import purchase_rules
from crm_es.domain.values import TIER_THRESHOLDS, Category, Tier

DAY, YEAR, US = timedelta(days=1), timedelta(days=365), timedelta(microseconds=1)
OFFSETS = [timedelta(0), US, -US, DAY, YEAR - US, YEAR, YEAR + US, 2 * YEAR, -YEAR]
AMOUNTS = [
    "0.01", "1.00", "4999.99", "5000.00", "5000.01", "15000.00", "15000.01", "19999.99",
    "20000.00", "30000.00", "49999.99", "50000.00", "0",
]  # fmt: skip
BAD_AMOUNTS = ["1.001", "-1"]
_examples = itertools.count()


def _clock(now: datetime) -> Callable[[], datetime]:
    return lambda: now


def _decided(crm: CRM, commands: list[cmd.Command], columnar: bool) -> dict[str, Any]:
    chunk = Chunk(crm.unit, crm.execute_validated, commands, validated=True)
    chunk.columnar = columnar
    chunk.decide(None)
    decode = crm.store.codec.decode_state
    seen = {
        "rows": list(chunk.stored),
        "records": [msgspec.structs.astuple(r) for r in chunk.records],
        "snapshots": [(s[0], s[1], s[2], decode(s[2], s[3])) for s in chunk.snapshots],
        "outcomes": [
            o if not isinstance(o, Exception) else (type(o).__name__, str(o))
            for o in chunk.outcomes
        ],
        "states": {k: msgspec.msgpack.encode(s) for k, s in chunk.states.items()},
    }
    chunk.abandon()  # nothing saved: the other path decides on the same stored states
    return seen


def assert_same_decisions(crm: CRM, commands: list[cmd.Command]) -> int:
    """Decide ``commands`` both ways; the number of purchases the columnar path took."""
    columnar = _decided(crm, commands, columnar=True)
    command_path = _decided(crm, commands, columnar=False)
    assert columnar == command_path
    return _taken(crm, commands)


def _taken(crm: CRM, commands: list[cmd.Command]) -> int:
    chunk = Chunk(crm.unit, crm.execute_validated, commands, validated=True)
    taken = []
    original = purchase_columns.plan

    def spy(*args: Any, **kwargs: Any) -> list[int | None]:
        found = original(*args, **kwargs)
        taken.extend(m for m in found if m is not None)
        return found

    purchase_columns.plan = spy  # type: ignore[assignment]
    try:
        chunk.decide(None)
    finally:
        purchase_columns.plan = original  # type: ignore[assignment]
        chunk.abandon()
    return len(taken)


# --- generated states and chunks -----------------------------------------------------------------

customer_states = st.fixed_dictionaries({
    "category": st.sampled_from([Category.POTENTIAL, Category.SIGNED]),
    "purchases": st.tuples(st.integers(0, 4), st.lists(
        st.tuples(st.sampled_from(OFFSETS), st.sampled_from(AMOUNTS), st.sampled_from(
            ["CNY", "CNY", "JPY", "KWD"])), min_size=1, max_size=4,
    )).map(lambda t: t[1] if t[0] else []),  # never bought: a first purchase
    "refund_first": st.booleans(),
    "churn_at": st.none() | st.sampled_from(OFFSETS),
    "erased": st.integers(0, 19).map(lambda n: n == 0),
})  # fmt: skip

chunk_commands = st.lists(
    st.fixed_dictionaries({
        "who": st.sampled_from([0, 0, 1, 1, 2, 3]),  # 3: a customer never registered
        # Mostly what the columnar path takes, so that most customers stay on it; the rest
        # sends a customer's whole chunk to the command path.
        "kind": st.sampled_from(["purchase"] * 40 + ["refund", "win_back", "items", "bad"]),
        "order": st.sampled_from([*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "P0"]),
        "at": st.sampled_from([*OFFSETS * 4, None, "future"]),
        "amount": st.sampled_from(AMOUNTS),
        "currency": st.sampled_from(["CNY"] * 20 + ["JPY", "KWD", "USD", "XXX"]),
        "command_id": st.none() | st.integers(1, 200).map(lambda k: f"k{k}"),
    }),
    min_size=1, max_size=14,
)  # fmt: skip


def _setup(crm: CRM, n: int, base: datetime, states: list[dict[str, Any]]) -> list[str]:
    """The customers' states, made by single commands (one the rules refuse leaves its state
    as it was: a refund of nothing, a churn dated before a purchase's won-back)."""
    refs = []

    def run(command: cmd.Command) -> None:
        with contextlib.suppress(CrmError):
            crm.execute(command)

    for j, state in enumerate(states):
        ref = f"X{n}-{j}"
        refs.append(ref)
        run(cmd.RegisterCustomer(
            external_ref=ref, category=state["category"], occurred_at=base - 3 * YEAR))  # fmt: skip
        for i, (offset, amount, currency) in enumerate(state["purchases"]):
            whole = Decimal(amount) if currency != "JPY" else Decimal(amount).to_integral_value()
            run(cmd.RecordPurchase(
                customer=ref, order_id=f"P{i}", amount=whole, currency=currency,
                occurred_at=base + offset))  # fmt: skip
        if state["purchases"] and state["refund_first"]:
            run(cmd.RefundPurchase(customer=ref, order_id="P0", occurred_at=base + YEAR))
        if state["churn_at"] is not None:
            run(cmd.ChurnCustomer(
                customer=ref, churn_reason="gone", occurred_at=base + state["churn_at"]))  # fmt: skip
        if state["erased"]:
            run(cmd.ErasePersonalData(customer=ref, requested_by="dpo"))
    return refs


def _command(n: int, refs: list[str], base: datetime, now: datetime, spec: dict[str, Any]):  # type: ignore[no-untyped-def]
    ref = refs[spec["who"]] if spec["who"] < len(refs) else f"X{n}-nobody"
    at = spec["at"]
    when = now + timedelta(minutes=6) if at == "future" else None if at is None else base + at
    envelope: dict[str, Any] = {"command_id": f"{n}-{spec['command_id']}"} if spec[
        "command_id"] else {}  # fmt: skip
    kind = spec["kind"]
    if kind == "refund":
        return cmd.RefundPurchase(
            customer=ref, order_id=spec["order"], occurred_at=when, **envelope
        )
    if kind == "win_back":
        return cmd.WinBackCustomer(customer=ref, occurred_at=when, **envelope)
    items = [cmd.LineItemInput(sku="S-1", quantity=2)] if kind == "items" else []
    amount = Decimal(BAD_AMOUNTS[spec["who"] % 2] if kind == "bad" else spec["amount"])
    return cmd.RecordPurchase(
        customer=ref, order_id=spec["order"], amount=amount, currency=spec["currency"],
        occurred_at=when, items=items, **envelope,
    )  # fmt: skip


@pytest.fixture
def fixed_crm(store_url: str) -> Iterator[CRM]:
    # A small snapshot interval: snapshots of the chunk's crossings are compared too.
    with CRM(store_url, clock=_clock(NOW), snapshot_interval=4) as crm:
        yield crm


NOW = datetime(2026, 6, 1, tzinfo=UTC)
BASES = [datetime(2024, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, tzinfo=UTC)]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.sampled_from(BASES),
    states=st.lists(customer_states, min_size=1, max_size=3),
    specs=chunk_commands,
)
def test_columnar_purchases_decide_byte_for_byte_as_the_command_path(
    fixed_crm: CRM, base: datetime, states: list[dict[str, Any]], specs: list[dict[str, Any]]
) -> None:
    n = next(_examples)
    refs = _setup(fixed_crm, n, base, states)
    commands = [_command(n, refs, base, NOW, spec) for spec in specs]
    taken = assert_same_decisions(fixed_crm, commands)
    event("columnar path took some" if taken else "columnar path took none")


# --- hand-made chunks: the columnar path takes them, and the mutants are caught -------------------


def _boundary_chunks(crm: CRM, tag: str) -> list[list[cmd.Command]]:
    """Chunks on a tier threshold and on the window's exact end, which the columnar path
    takes (each customer has bought before)."""
    base = BASES[0]
    silver = Decimal(dict(TIER_THRESHOLDS)[Tier.SILVER]).scaleb(-2)

    def customer(ref: str, *purchases: tuple[datetime, Decimal]) -> str:
        crm.execute(cmd.RegisterCustomer(external_ref=ref, occurred_at=base - YEAR))
        for i, (at, amount) in enumerate(purchases):
            crm.execute(cmd.RecordPurchase(
                customer=ref, order_id=f"P{i}", amount=amount, currency="CNY", occurred_at=at))  # fmt: skip
        return ref

    def buy(ref: str, order: str, amount: Decimal, at: datetime) -> cmd.RecordPurchase:
        return cmd.RecordPurchase(
            customer=ref, order_id=order, amount=amount, currency="CNY", occurred_at=at,
            command_id=f"{ref}-{order}",
        )  # fmt: skip

    # Silver at `base`; a purchase exactly a year later finds the window empty of it (down to
    # standard), one a microsecond earlier still holds it.
    window = customer(f"{tag}-w", (base, silver))
    inside = customer(f"{tag}-i", (base, silver))
    # One cent below silver, then the cent that reaches it.
    cent = customer(f"{tag}-c", (base, silver - Decimal("0.02")))
    return [
        [buy(window, "N", Decimal("0.01"), base + YEAR)],
        [buy(inside, "N", Decimal("0.01"), base + YEAR - US)],
        [buy(cent, "N", Decimal("0.01"), base + DAY), buy(cent, "M", Decimal("0.01"), base + DAY)],
    ]


def test_boundary_chunks_are_taken_by_the_columnar_path_and_decided_alike(fixed_crm: CRM) -> None:
    chunks = _boundary_chunks(fixed_crm, "b")
    for chunk in chunks:
        assert assert_same_decisions(fixed_crm, chunk) == len(chunk)  # all columnar
    # What they decide, stored: silver -> standard at the window's exact end, nothing a
    # microsecond inside it, standard -> silver with the cent that reaches the threshold.
    for chunk in chunks:
        assert all(o.events >= 1 for o in fixed_crm.execute_many(chunk, validated=True))  # type: ignore[union-attr]
    tiers = [fixed_crm.get_customer(r).tier for r in ("b-w", "b-i", "b-c")]
    assert tiers == [Tier.STANDARD, Tier.SILVER, Tier.SILVER]


def _tier_review_with(window: timedelta, thresholds: tuple[tuple[Tier, int], ...]):  # type: ignore[no-untyped-def]
    """The tier rule written out again with its window and thresholds as parameters: with
    the real ones it must pass the comparison; a mutant must not."""

    def tier_for(spend: int) -> Tier:
        return next((tier for tier, least in thresholds if spend >= least), Tier.STANDARD)

    def review(cu: Customer, at: datetime, delta: int) -> tuple[Tier, int] | None:
        if cu.tier_since is not None and at < cu.tier_since:
            return None
        lifetime = cu.paid.get("CNY", 0) - cu.refunded.get("CNY", 0) + delta
        if cu.tier is Tier.STANDARD and tier_for(lifetime) is Tier.STANDARD:
            return None
        since = at - window
        spend = delta + sum(
            o.amount - o.refunded
            for o in cu.orders.values()
            if o.currency == "CNY" and since < o.occurred_at <= at
        )
        tier = tier_for(spend)
        return None if tier == cu.tier else (tier, spend)

    return review


@pytest.mark.parametrize(
    ("mutant", "window", "cent"),
    [("none", YEAR, 0), ("window one microsecond long", YEAR + US, 0),
     ("window one microsecond short", YEAR - US, 0), ("threshold a cent low", YEAR, -1),
     ("threshold a cent high", YEAR, 1)],
)  # fmt: skip
def test_the_comparison_catches_a_columnar_window_slip_or_a_threshold_off_by_a_cent(
    fixed_crm: CRM, monkeypatch: pytest.MonkeyPatch, mutant: str, window: timedelta, cent: int
) -> None:
    thresholds = tuple((tier, least + cent) for tier, least in TIER_THRESHOLDS)
    monkeypatch.setattr(purchase_columns, "tier_review", _tier_review_with(window, thresholds))
    assert purchase_rules.tier_review is not purchase_columns.tier_review
    chunks = _boundary_chunks(fixed_crm, "m")
    failures = 0
    for chunk in chunks:
        try:
            assert_same_decisions(fixed_crm, chunk)
        except AssertionError:
            failures += 1
    assert (failures == 0) if mutant == "none" else (failures > 0), mutant
