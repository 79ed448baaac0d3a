"""A bulk run in a new process: the chunk reads its cold customers with one ``load_many``.

The customers were written by another ``CRM`` (another process, as far as caches go): with
snapshots, an erasure, one never registered and one registered in the run itself. The chunk
loads all of them in one call; only the refused commands' customers are read again one by one
(a state read when the chunk began may be older than another writer's commit, so a refusal on
it is judged again, as on a cached state). The outcomes and what is stored are those of the
rules, and every state equals a fresh load.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from crm_es import CRM
from crm_es.app.results import CommandResult
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain.customer import Customer
from crm_es.domain.errors import CustomerErased, CustomerNotFound, DuplicateId
from crm_es.domain.ids import customer_id_for_ref
from tests.helpers.personal_data import settle_wipe


def _written_elsewhere(url: str) -> None:
    with CRM(url, snapshot_interval=3) as crm:
        for i in range(8):
            crm.register_customer(  # signed: a first purchase moves no category
                external_ref=f"C-{i}",
                name=f"王芳 {i}",
                email=f"c{i}@example.com",
                category="signed",
            )
            for n in range(i):  # 0 to 7 purchases: snapshots at 3 and 6 for some
                crm.record_purchase(
                    customer=f"C-{i}", order_id=f"O-{n}", amount="5", currency="CNY"
                )
        crm.erase_personal_data(customer="C-7", requested_by="customer")


def test_a_new_process_loads_a_chunks_cold_customers_in_one_call(store_url: str) -> None:
    _written_elsewhere(store_url)
    # Refusals first: on states as loaded, not yet changed by the chunk.
    commands: list[cmd.Command] = [
        cmd.RecordPurchase(customer="C-3", order_id="O-1", amount="1", currency="CNY"),  # again
        cmd.UpdateProfile(customer="C-7", name="新名字"),  # erased: no personal data
        cmd.RecordPurchase(customer="C-X", order_id="O-1", amount="1", currency="CNY"),  # nobody
        *(
            cmd.RecordPurchase(customer=f"C-{i}", order_id="NEW", amount="7.50", currency="CNY")
            for i in range(8)
        ),
        cmd.RegisterCustomer(external_ref="C-8", name="李雷"),
        cmd.RecordPurchase(customer="C-8", order_id="O-1", amount="1", currency="CNY"),
    ]
    with CRM(store_url, snapshot_interval=3) as crm:
        store = crm.store
        many_calls: list[list[UUID]] = []
        one_calls: list[UUID] = []
        load_many, load = store.load_many, store.load

        def counted_many(ids: Sequence[UUID]) -> list[Customer | None]:
            many_calls.append(list(ids))
            return load_many(ids)

        def counted_one(oid: UUID, version: int | None = None) -> Customer | None:
            one_calls.append(oid)
            return load(oid, version)

        store.load_many = counted_many  # type: ignore[method-assign]
        store.load = counted_one  # type: ignore[method-assign]
        outcomes = list(crm.execute_many(commands, chunk_size=100, validated=True))
    ids = [customer_id_for_ref(f"C-{i}") for i in (*range(8), "X", 8)]
    assert [sorted(c.int for c in call) for call in many_calls] == [sorted(c.int for c in ids)]
    assert sorted(one_calls, key=str) == sorted(
        (customer_id_for_ref(r) for r in ("C-3", "C-7", "C-X")), key=str
    )
    assert isinstance(outcomes[0], DuplicateId)
    assert isinstance(outcomes[1], CustomerErased)
    assert isinstance(outcomes[2], CustomerNotFound)
    results = outcomes[3:11]
    assert all(isinstance(r, CommandResult) for r in results)
    # Registration, i purchases, the new one; C-7 also its erasure.
    assert [r.version for r in results if isinstance(r, CommandResult)] == [
        2, 3, 4, 5, 6, 7, 8, 10
    ]  # fmt: skip
    assert isinstance(outcomes[11], CommandResult) and outcomes[11].version == 1
    # C-8's first purchase in the same chunk as its registration also makes it signed
    assert isinstance(outcomes[12], CommandResult) and outcomes[12].version == 3
    with CRM(store_url) as fresh:
        settle_wipe(fresh)  # C-7's erasure: another session may have held its rewrite back
        assert verify(fresh).ok
        for i in range(8):
            state = fresh.store.load(customer_id_for_ref(f"C-{i}"))
            assert state is not None and "NEW" in state.orders and len(state.orders) == i + 1
        registered = fresh.store.load(customer_id_for_ref("C-8"))
        assert registered is not None and list(registered.orders) == ["O-1"]
        assert registered.name == "李雷"
        assert fresh.store.load(customer_id_for_ref("C-X")) is None
