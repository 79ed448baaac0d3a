"""The service layer against real stores (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest

from crm_es import CRM, CommandResult, CrmError
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer, evolve
from crm_es.domain.decide import Envelope, decide
from crm_es.domain.errors import (
    ConcurrencyConflict,
    CustomerAlreadyRegistered,
    CustomerNotFound,
    InsufficientPoints,
)
from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.codec import GENESIS, stored_hash, stored_prev_hash


def head(crm: CRM) -> int:
    return crm.recorder.max_notification_id() or 0


def test_commands_are_stored_and_a_fresh_app_reloads_the_same_state(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name="王芳", email="wf@example.com")
        crm.record_purchase(customer="C-1", order_id="O-1", amount="129.90", currency="CNY")
        crm.grant_points(customer="C-1", points=100, reason="purchase")
        crm.redeem_points(customer="C-1", points=40, reward="coupon")
        result = crm.file_complaint(
            customer="C-1", complaint_id="K-1", category="delivery", severity="high"
        )
        in_memory = crm.get_customer("C-1")
    assert result.version == 6  # the first purchase also made the customer signed
    with CRM(store_url) as again:
        reloaded = again.get_customer("C-1")
    assert reloaded == in_memory
    assert (reloaded.points_balance, reloaded.paid, reloaded.name) == (60, {"CNY": 12990}, "王芳")


def test_customers_are_addressed_by_external_ref_or_uuid(crm: CRM) -> None:
    result = crm.register_customer(external_ref="C-1")
    assert result.customer_id == customer_id_for_ref("C-1")
    crm.log_contact(customer=str(result.customer_id), channel="sms", direction="outbound")
    assert crm.get_customer("C-1").contacts == 1


def test_a_customer_whose_ref_is_a_uuid_keeps_that_uuid(crm: CRM) -> None:
    ref = "0b7d9c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
    assert crm.register_customer(external_ref=ref).customer_id == UUID(ref)


def test_registering_the_same_ref_twice_is_a_clear_error(crm: CRM) -> None:
    crm.register_customer(external_ref="C-1")
    before = head(crm)
    with pytest.raises(CustomerAlreadyRegistered, match="'C-1' is already registered"):
        crm.register_customer(external_ref="C-1", name="someone else")
    assert head(crm) == before


def test_a_rejected_command_stores_nothing(crm: CRM) -> None:
    crm.register_customer(external_ref="C-1")
    crm.grant_points(customer="C-1", points=10)
    before = head(crm)
    with pytest.raises(InsufficientPoints):
        crm.redeem_points(customer="C-1", points=11)
    with pytest.raises(CustomerNotFound):
        crm.log_contact(customer="C-2", channel="sms", direction="outbound")
    assert head(crm) == before
    assert crm.get_customer("C-1").points_balance == 10


def test_concurrent_writers_lose_no_update(crm: CRM) -> None:
    crm.register_customer(external_ref="C-1")
    errors: list[BaseException] = []

    def grant(n: int) -> None:
        try:
            for _ in range(n):
                crm.grant_points(customer="C-1", points=3)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=grant, args=(15,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with CRM(crm.store.config.url) as fresh:
        assert fresh.get_customer("C-1").points_balance == 4 * 15 * 3


class _AlwaysStale(CRM):
    """Loads the registration-time state forever, so every save collides."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.unit.load = self._load  # type: ignore[method-assign]

    def _load(self, customer_id: UUID) -> Customer | None:
        return self.store.load(customer_id, version=1)


def test_a_command_that_keeps_colliding_gives_up_with_concurrency_conflict(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1")
        crm.log_contact(customer="C-1", channel="sms", direction="outbound")
    with _AlwaysStale(store_url) as stale:
        before = head(stale)
        with pytest.raises(ConcurrencyConflict, match="10 times"):
            stale.log_contact(customer="C-1", channel="sms", direction="outbound")
        assert head(stale) == before


def test_each_event_chains_to_its_predecessor_hash(crm: CRM) -> None:
    crm.register_customer(external_ref="C-1", owner="staff:li", tags=["vip"])
    for i in range(5):
        crm.record_purchase(customer="C-1", order_id=f"O-{i}", amount="10", currency="CNY")
    stored = crm.recorder.select_events(customer_id_for_ref("C-1"))
    # 3 registration events, 5 purchases, the first one's move to signed
    assert [s.originator_version for s in stored] == list(range(1, 10))
    previous = GENESIS
    for s in stored:
        assert stored_prev_hash(s.state) == previous
        previous = stored_hash(s.state)


def test_init_twice_is_safe(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1")
    with CRM(store_url) as crm:  # constructing again re-runs CREATE TABLE IF NOT EXISTS
        assert crm.get_customer("C-1").version == 1


def _count_event_reads(crm: CRM) -> Callable[[], int]:
    """Counts rows the event store reads (instrumentation of the real store, not a mock)."""
    store = crm.events
    original = store.select_rows  # type: ignore[attr-defined]
    rows = [0]

    def counting(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        rows[0] += len(result)
        return result

    store.select_rows = counting  # type: ignore[attr-defined]
    return lambda: rows[0]


def test_a_customer_with_ten_thousand_events_loads_from_a_snapshot(store_url: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    customer_id = customer_id_for_ref("BIG")
    customer: Customer | None = None
    pending: list[Any] = []
    with CRM(store_url) as crm:
        commands: list[cmd.Command] = [cmd.RegisterCustomer(external_ref="BIG")]
        commands += [cmd.LogContact(customer="BIG", channel="phone", direction="inbound")] * 9_999
        for i, c in enumerate(commands):
            now = start + timedelta(seconds=i)
            for event in decide(customer, c, Envelope.for_command(c, now, "test"), customer_id):
                customer = evolve(customer, (event,))
                pending.append(event)
            if len(pending) >= 2_000:
                crm.save(*pending)
                pending.clear()
        crm.save(*pending)
        crm.take_snapshot(customer_id)
    assert customer is not None and customer.version == 10_000
    with CRM(store_url) as fresh:
        reads = _count_event_reads(fresh)
        loaded = fresh.get_customer("BIG")
        assert loaded == customer
        # The snapshot is at the head: no event replayed, only the one it is bound to read.
        assert reads() == 1


def test_the_service_snapshots_every_interval(store_url: str) -> None:
    with CRM(store_url, snapshot_interval=10) as crm:
        crm.register_customer(external_ref="C-1")
        for _ in range(24):
            crm.log_contact(customer="C-1", channel="sms", direction="outbound")
        snapshots = list(crm.snapshots.get(customer_id_for_ref("C-1")))  # type: ignore[union-attr]
        assert [s.originator_version for s in snapshots] == [10, 20]
    with CRM(store_url) as fresh:
        reads = _count_event_reads(fresh)
        assert fresh.get_customer("C-1").contacts == 24
        assert reads() == 6  # versions 21..25 only, and 20, which the snapshot is bound to


def test_execute_many_gives_the_same_state_as_one_by_one_and_isolates_failures(
    store_url: str, tmp_path: Path
) -> None:
    commands: list[cmd.Command] = [cmd.RegisterCustomer(external_ref="C-1")]
    for i in range(30):
        commands.append(cmd.GrantPoints(customer="C-1", points=10))
        commands.append(cmd.RedeemPoints(customer="C-1", points=25))  # fails while short
        commands.append(
            cmd.RecordPurchase(
                customer="C-1", order_id=f"O-{i % 20}", amount="9.90", currency="CNY"
            )
        )  # the last ten are duplicates
    commands.append(cmd.RegisterCustomer(external_ref="C-1"))
    with CRM(f"sqlite:///{tmp_path / 'one-by-one.db'}") as single:
        expected: list[str] = []
        for c in commands:
            try:
                single.execute(c)
                expected.append("ok")
            except CrmError as e:
                expected.append(type(e).__name__)
        single_state, single_head = single.get_customer("C-1"), head(single)
    with CRM(store_url, snapshot_interval=10) as bulk:
        outcomes = list(bulk.execute_many(commands, chunk_size=7))
        assert [
            type(o).__name__ if isinstance(o, Exception) else "ok" for o in outcomes
        ] == expected
        assert expected.count("DuplicateId") == 10 and expected.count("InsufficientPoints") > 5
        assert expected[-1] == "CustomerAlreadyRegistered"
        assert head(bulk) == single_head
        state = bulk.get_customer("C-1")
    assert (state.points_balance, state.paid, state.version) == (
        single_state.points_balance,
        single_state.paid,
        single_state.version,
    )
    with CRM(store_url) as fresh:  # snapshots taken by the bulk path load the same state
        assert fresh.get_customer("C-1") == state


def test_execute_many_validates_structs_built_in_python(crm: CRM) -> None:
    naive = cmd.RegisterCustomer(external_ref="C-1", occurred_at=datetime(2026, 1, 1))
    (outcome,) = list(crm.execute_many([naive]))
    assert isinstance(outcome, msgspec.ValidationError)
    assert "timezone" in str(outcome) and head(crm) == 0


def test_two_apps_with_their_own_caches_never_decide_on_stale_state(store_url: str) -> None:
    with CRM(store_url) as first, CRM(store_url) as second:
        first.register_customer(external_ref="C-1")
        first.grant_points(customer="C-1", points=100)
        second.redeem_points(customer="C-1", points=70)  # second caches version 3
        first.redeem_points(customer="C-1", points=20)  # first's cache (version 2) is stale
        with pytest.raises(InsufficientPoints, match="only 10 available"):
            second.redeem_points(customer="C-1", points=20)  # must see first's redemption
        assert second.redeem_points(customer="C-1", points=10).version == 5
        assert first.get_customer("C-1").points_balance == 0


@pytest.mark.parametrize("path", ["single", "bulk"])
def test_a_no_op_is_judged_on_the_stored_state_not_on_a_stale_cached_copy(
    store_url: str, path: str
) -> None:
    with CRM(store_url) as first, CRM(store_url) as second:
        first.register_customer(external_ref="C-1", tags=["vip"])
        second.change_tags(customer="C-1", add=["new"])  # second now caches tags vip, new
        first.change_tags(customer="C-1", remove=["vip"])  # second's copy is stale
        again = cmd.ChangeTags(customer="C-1", add=["vip"])  # a no-op on the stale copy only
        if path == "single":
            result = second.execute(again)
        else:
            (outcome,) = list(second.execute_many([again]))
            assert isinstance(outcome, CommandResult)
            result = outcome
        assert result.events == 1
        assert first.get_customer("C-1").tags == ["new", "vip"]
