"""After the columnar purchase decision (issue 20, item 3): the cached states are the stored
ones once a chunk commits, a snapshot is stored where a customer's stream crosses the interval,
and an erasure, a refund or a churn by other commands (in this process or another) is seen by
the next chunk's purchases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from crm_es import CRM
from crm_es.app.bulk import purchase_columns
from crm_es.app.results import CommandResult
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.values import Category, Tier

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL = 5


def buy(ref: str, order: str, amount: str, day: int) -> cmd.RecordPurchase:
    return cmd.RecordPurchase(
        customer=ref, order_id=order, amount=Decimal(amount), currency="CNY",
        occurred_at=START + timedelta(days=day), command_id=f"{ref}-{order}",
    )  # fmt: skip


def setup(crm: CRM, refs: list[str]) -> None:
    for ref in refs:  # each has bought once: its next purchases are the columnar path's
        # Signed already: the first purchase's category move is beside the point here.
        crm.execute(
            cmd.RegisterCustomer(external_ref=ref, category=Category.SIGNED, occurred_at=START)
        )
        crm.execute(buy(ref, "first", "100.00", 0))


def columnar_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The refs of the purchases the columnar decision decides from now on."""
    calls: list[str] = []
    original = purchase_columns.purchase_events

    def spy(cu: Customer, c: cmd.RecordPurchase, *args: object) -> list[ev.CustomerEvent]:
        calls.append(c.customer)
        return original(cu, c, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(purchase_columns, "purchase_events", spy)
    return calls


def replayed(crm: CRM, ref: str) -> Customer:
    """The state from every stored event, no snapshot, no cache."""
    customer_id = customer_id_for_ref(ref)
    state: Customer | None = None
    for event in crm.store.events.get(customer_id):
        state = Customer.created_by(event) if state is None else state
        state.apply(event)
    assert state is not None
    return state


def assert_coherent(crm: CRM, refs: list[str]) -> None:
    for ref in refs:
        customer_id = customer_id_for_ref(ref)
        cached = crm.command_cache.get(customer_id)
        assert cached is not None, ref
        assert cached == crm.store.load(customer_id) == replayed(crm, ref), ref


def test_cached_states_after_columnar_chunks_are_the_stored_ones_with_snapshots_where_streams_cross_the_interval(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = ["A", "B", "C"]
    with CRM(store_url, clock=lambda: NOW, snapshot_interval=INTERVAL) as crm:
        setup(crm, refs)
        # Spend that crosses silver and gold on the way (versions 4.. as the tier changes add).
        commands = [
            buy(ref, f"O{i}", amount, i)
            for i, amount in enumerate(["4000.00", "1000.00", "15000.00", "1.00", "30000.00"] * 2)
            for ref in refs
        ]
        columnar = columnar_calls(monkeypatch)
        outcomes = list(crm.execute_many(commands, chunk_size=4, validated=True))
        assert all(isinstance(o, CommandResult) for o in outcomes)
        assert len(columnar) == len(commands)  # every one decided by the columnar path
        assert_coherent(crm, refs)
        for ref in refs:
            state = crm.store.load(customer_id_for_ref(ref))
            assert state is not None
            # 2 + 10 purchases + silver, gold, platinum (50,000 reached on the fifth purchase).
            assert state.version == 15 and state.tier is Tier.PLATINUM
            snapshots = crm.store.snapshots.recorder.select_events(customer_id_for_ref(ref))
            versions = [s.originator_version for s in snapshots]
            # One per chunk that crossed a multiple of the interval, at the chunk's end state.
            assert versions and all(v >= INTERVAL for v in versions)
            crossed = {v // INTERVAL for v in versions}
            assert crossed == {1, 2, 3}, versions
            for version in versions:  # each usable: a load from it equals a full replay
                assert crm.store.load(customer_id_for_ref(ref), version) is not None
        assert verify(crm).ok
    with CRM(store_url) as fresh:  # a new process reads the same states back
        for ref in refs:
            assert fresh.store.load(customer_id_for_ref(ref)) == replayed(fresh, ref)


def _types(crm: CRM, ref: str, after: int) -> list[str]:
    return [type(e).__name__ for e in crm.store.events.get(customer_id_for_ref(ref), gt=after)]


def test_erasure_refund_and_churn_by_other_commands_are_seen_by_the_next_columnar_chunk(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = ["erased", "refunded", "churned", "other-erased", "other-churned"]
    with (
        CRM(store_url, clock=lambda: NOW) as crm,
        CRM(store_url, clock=lambda: NOW) as other,  # another process, same store
    ):
        setup(crm, refs)
        warm = [buy(ref, "silver", "5000.00", 10) for ref in refs]
        assert all(isinstance(o, CommandResult) for o in crm.execute_many(warm, validated=True))
        assert_coherent(crm, refs)  # all cached, silver
        before = {ref: crm.store.load(customer_id_for_ref(ref)).version for ref in refs}  # type: ignore[union-attr]
        # In this process, by single commands:
        crm.execute(cmd.ErasePersonalData(customer="erased", requested_by="dpo"))
        crm.execute(cmd.RefundPurchase(customer="refunded", order_id="silver",
                                       occurred_at=START + timedelta(days=11)))  # fmt: skip
        crm.execute(cmd.ChurnCustomer(customer="churned", churn_reason="moved",
                                      occurred_at=START + timedelta(days=12)))  # fmt: skip
        # In the other process: this one's cache does not know.
        other.execute(cmd.ErasePersonalData(customer="other-erased", requested_by="dpo"))
        other.execute(cmd.ChurnCustomer(customer="other-churned", churn_reason="moved",
                                        occurred_at=START + timedelta(days=12)))  # fmt: skip
        columnar = columnar_calls(monkeypatch)
        outcomes = list(
            crm.execute_many([buy(ref, "next", "1.00", 20) for ref in refs], validated=True)
        )
        # The erased customer goes to the command path; the others' cached states looked
        # modelled, and the two another process changed collided and were redone one by one.
        assert sorted(columnar) == ["churned", "other-churned", "other-erased", "refunded"]
        assert all(isinstance(o, CommandResult) for o in outcomes), outcomes
        assert_coherent(crm, refs)
        after = {ref: _types(crm, ref, before[ref]) for ref in refs}
        assert after["erased"] == ["PersonalDataErased", "PurchaseRecorded"]
        # The refund took the silver order's 5,000 back: the purchase finds 101.00 in the
        # window, so the refund's own tier change (down) stands and nothing more is recorded.
        assert after["refunded"] == ["PurchaseRefunded", "TierChanged", "PurchaseRecorded"]
        assert after["churned"] == ["CustomerChurned", "PurchaseRecorded", "CustomerWonBack"]
        assert after["other-erased"] == ["PersonalDataErased", "PurchaseRecorded"]
        assert after["other-churned"] == ["CustomerChurned", "PurchaseRecorded", "CustomerWonBack"]
        for ref in ("erased", "other-erased"):
            state = crm.store.load(customer_id_for_ref(ref))
            assert state is not None and state.erased and state.name is None
        refunded = crm.store.load(customer_id_for_ref("refunded"))
        assert refunded is not None and refunded.tier is Tier.STANDARD
        for ref in ("churned", "other-churned"):
            state = crm.store.load(customer_id_for_ref(ref))
            assert state is not None and not state.churned and state.won_back_count == 1
        won_back = [
            e for e in crm.store.events.get(customer_id_for_ref("churned"))
            if isinstance(e, ev.CustomerWonBack)
        ]  # fmt: skip
        assert [e.command_id for e in won_back] == ["churned-next"]
        assert verify(crm).ok
