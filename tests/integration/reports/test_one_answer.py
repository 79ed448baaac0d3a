"""One answer per question: every count that appears in two reports is the same count, and
churn, win-back and lifecycle come from one definition (``crm_es.analytics.churn_rule``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from crm_es import CRM
from crm_es.demo.generator import generate_commands
from crm_es.domain.errors import CrmError
from crm_es.reports.api import Reports
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres

END = datetime(2026, 6, 1, tzinfo=UTC)
DATES = ("2025-09-30", "2026-03-31", "2026-06-01")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:  # fmt: skip
    """A demo population in Asia/Shanghai, with customers churned explicitly before buying."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('answers') / 'crm.db'}"
    else:
        require_postgres()
        url, schema = new_postgres_url()
    try:
        with CRM(url) as crm:
            crm.store.set_timezone("Asia/Shanghai")
            outcomes = list(crm.execute_many(generate_commands(customers=150, seed=5, end=END)))
            assert sum(not isinstance(o, CrmError) for o in outcomes) > 2000
        yield url
    finally:
        if schema is not None:
            drop_schema(schema)


@pytest.mark.parametrize("as_of", DATES)
def test_every_count_in_two_reports_is_the_same_count(demo_store: str, as_of: str) -> None:
    with CRM(demo_store) as crm, Reports(crm) as reports:
        seg, churn, kpi = reports.segments(as_of), reports.churn(as_of), reports.kpi(as_of)
        sat, agenda = reports.satisfaction(as_of), reports.agenda(as_of)
    stages = seg.lifecycle_sizes
    owners = kpi.owners
    churned_in_segments = {c.customer_id for c in seg.customers if c.lifecycle == "churned"}
    churned_in_churn = {c.customer_id for c in churn.customers if c.status == "churned"}
    assert churned_in_segments == churned_in_churn
    assert stages["churned"] == churn.status_counts["churned"] == sum(o.churned for o in owners)
    won_back_in_segments = {c.customer_id for c in seg.customers if c.lifecycle == "won_back"}
    assert won_back_in_segments == {c.customer_id for c in churn.customers if c.won_back}
    assert stages["won_back"] == churn.won_back == sum(o.won_back for o in owners)
    assert len(seg.customers) == sum(o.customers for o in owners)
    assert sat.overall.responses == sum(o.responses for o in owners)
    assert sat.complaints.filed == sum(o.complaints for o in owners)
    assert sat.complaints.open == sum(o.complaints_open for o in owners)
    assert agenda.counts.care_tasks_overdue == sum(o.care_tasks_overdue for o in owners)
    # the owner of a customer is the same in every report
    owner_of = {c.customer_id: c.owner or "(unassigned)" for c in seg.customers}
    assert Counter(owner_of.values()) == Counter(
        {o.owner: o.customers for o in owners if o.customers}
    )
    assert all(owner_of[c.customer_id] == (c.owner or "(unassigned)") for c in churn.customers)
    # the figures are not all zero: the demo population has each of them
    assert stages["churned"] and stages["won_back"] and sat.complaints.filed


def test_explicit_churn_without_a_purchase_is_in_both_reports(demo_store: str) -> None:
    with CRM(demo_store) as crm, Reports(crm) as reports:
        seg, churn = reports.segments(DATES[-1]), reports.churn(DATES[-1])
    never_bought = {c.customer_id for c in seg.customers if c.frequency == 0}
    lost_leads = [c for c in churn.customers if c.customer_id in never_bought]
    assert lost_leads, "the demo has leads churned before any purchase"
    assert all(c.status == "churned" and c.explicit and c.x == 0 for c in lost_leads)
    assert all(c.t_x is None and c.p_alive is None for c in lost_leads)


def test_a_customer_churned_by_the_rule_who_buys_again_is_won_back_everywhere(
    crm: CRM,
) -> None:
    """270 silent days churn a one-time buyer (the floor); a purchase after 300 is a return."""
    crm.register_customer(external_ref="C-1", occurred_at=datetime(2025, 1, 1, tzinfo=UTC))
    crm.assign_owner(customer="C-1", owner="staff:li", occurred_at=datetime(2025, 1, 2, tzinfo=UTC))
    for order, at in (("O-1", datetime(2025, 1, 10, tzinfo=UTC)),
                      ("O-2", datetime(2025, 11, 6, tzinfo=UTC))):  # fmt: skip
        crm.record_purchase(customer="C-1", order_id=order, amount="10", currency="CNY",
                            occurred_at=at)  # fmt: skip
    with Reports(crm) as reports:
        before = reports.churn("2025-11-05")
        assert [(c.status, c.won_back) for c in before.customers] == [("churned", False)]
        seg, churn, kpi = (reports.segments("2026-01-31"), reports.churn("2026-01-31"),
                           reports.kpi("2026-01-31"))  # fmt: skip
        much_later = reports.segments("2028-06-30")
    assert [c.lifecycle for c in seg.customers] == ["won_back"]
    [row] = churn.customers
    assert (row.status, row.won_back, row.won_back_on) == ("active", True, "2025-11-06")
    assert [(o.owner, o.won_back) for o in kpi.owners] == [("staff:li", 1)]
    # a return counts for one threshold (3 x the 300-day gap now); then the rule churns again
    assert [c.lifecycle for c in much_later.customers] == ["churned"]
