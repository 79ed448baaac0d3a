"""The read model's copy in memory answers every population report exactly as the SQL path does:
the segments, churn, value and retention reports are byte-identical either way, on both stores,
at several (as of, known at) — with back-dated purchases, refunds, another currency, owner and
region changes and new customers recorded after the knowledge time — and a copy is read again
when the read model moves on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from crm_es import CRM
from crm_es.demo.generator import generate_commands
from crm_es.domain import commands as cmd
from crm_es.domain.errors import CrmError
from crm_es.reports.api import Reports
from crm_es.reports.facts import fact_columns

END = datetime(2026, 3, 1, tzinfo=UTC)
REPORTS = ("segments", "churn", "value", "retention")


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fact_columns.forget()
    yield
    fact_columns.forget()


def later_commands(refs: list[str], at: datetime) -> list[cmd.Command]:
    """Recorded after the knowledge time of the first queries, most of them back-dated."""
    out: list[cmd.Command] = []
    for i, ref in enumerate(refs):
        back = at - timedelta(days=30 + 7 * i)
        out += [
            cmd.RecordPurchase(customer=ref, order_id=f"LATE-{i}", amount=f"{900 + i}.50",
                               currency="CNY" if i % 3 else "USD", occurred_at=back),
            cmd.AssignOwner(customer=ref, owner=f"staff:late{i % 2}", occurred_at=back),
            cmd.UpdateProfile(customer=ref, region="西北", occurred_at=back),
        ]  # fmt: skip
        if i % 2:
            out.append(cmd.RefundPurchase(customer=ref, order_id=f"LATE-{i}", amount="100.00",
                                          currency="CNY" if i % 3 else "USD",
                                          occurred_at=back + timedelta(days=1)))  # fmt: skip
    out.append(cmd.RegisterCustomer(external_ref="NEW-1", occurred_at=at - timedelta(days=400)))
    out.append(cmd.RecordPurchase(customer="NEW-1", order_id="N-1", amount="50.00",
                                  currency="CNY", occurred_at=at - timedelta(days=399)))  # fmt: skip
    return out


def reports_json(url: str, as_of: datetime, known_at: datetime, min_rows: int) -> list[bytes]:
    fact_columns.MIN_ROWS = min_rows
    with CRM(url) as crm, Reports(crm) as reports:
        reports.refresh = False
        return [
            msgspec.json.encode(getattr(reports, name)(as_of=as_of, known_at=known_at))
            for name in REPORTS
        ]


def copied(url: str) -> bool:
    """Whether the reports above ran on a copy (not on the SQL path after all)."""
    with CRM(url) as crm, Reports(crm) as reports, reports.engine.db.reading() as tx:
        return fact_columns.fact_columns(tx, reports.engine.all_active_tables(tx)) is not None


def test_the_copy_answers_every_population_report_as_the_sql_path(
    store_url: str, copies: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fact_columns, "MIN_ROWS", fact_columns.MIN_ROWS)
    with CRM(store_url) as crm:
        outcomes = list(crm.execute_many(generate_commands(customers=80, seed=11, end=END)))
        assert sum(not isinstance(o, CrmError) for o in outcomes) > 1000
        known_at = datetime.now(UTC)
        refs = [f"C-{n:06d}" for n in range(1, 13)]
        late = list(crm.execute_many(later_commands(refs, END)))
        assert not [o for o in late if isinstance(o, CrmError)]
        with Reports(crm) as reports:
            reports.engine.catch_up_all()
    now = datetime.now(UTC) + timedelta(seconds=1)
    for as_of, known in [(END, now), (END, known_at), (END - timedelta(days=200), now)]:
        fact_columns.forget()
        by_sql = reports_json(store_url, as_of, known, min_rows=10**12)
        fact_columns.forget()
        by_copy = reports_json(store_url, as_of, known, min_rows=0)
        assert by_copy == by_sql, (as_of, known)
        assert b'"customers":[]' not in by_copy[0]
        assert copied(store_url), "the copy path was not taken"


def test_a_copy_is_read_again_when_the_read_model_moves_on(
    sqlite_url: str, copies: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fact_columns, "MIN_ROWS", 0)
    with CRM(sqlite_url) as crm, Reports(crm) as reports:
        crm.register_customer(external_ref="A", region="华东")
        crm.record_purchase(customer="A", order_id="1", amount="10.00", currency="CNY")
        first = reports.segments()
        crm.record_purchase(customer="A", order_id="2", amount="5.00", currency="CNY")
        crm.update_profile(customer="A", region="华北")
        second = reports.segments()  # refresh moves the read model on: a new copy
        monkeypatch.setattr(fact_columns, "MIN_ROWS", 10**12)
        fact_columns.forget()
        by_sql = reports.segments()
    assert first.customers[0].monetary == "10.00" and first.customers[0].region == "华东"
    assert second.customers[0].monetary == "15.00" and second.customers[0].region == "华北"
    assert msgspec.json.encode(second.customers) == msgspec.json.encode(by_sql.customers)
