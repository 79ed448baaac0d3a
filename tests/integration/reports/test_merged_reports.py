"""Every report counts a merged pair as one customer from the merge on (by business time, and
only once the merge is known), on SQLite and PostgreSQL, with figures worked out by hand.

The population (store time zone UTC; recorded on 2026-03-10, the merge on 2026-03-11):

- C-A, the survivor: staff:li, 华东, signed; order O-1 100.00 CNY on 01-05; CSAT 5 on 01-06.
- C-B, the same person registered again: staff:wang, 华南, signed, same phone, birthday 03-05;
  order O-1 (the same id!) 50.00 on 02-10, 10.00 of it refunded on 02-11; CSAT 2 on 02-11; an
  inbound call taken by staff:li on 02-12; an opportunity won on 02-01 (500.00).
- C-C: staff:wang, 华南, signed; order O-9 30.00 on 01-20.
- C-B merged into C-A at business time 03-01 00:00.

Before the merge (as of 02-28, or as of 03-31 known at 03-10): three customers. After: two; C-A
has 2 purchase days and 100 + 50 − 10 = 140.00 net, C-B's answer, call and opportunity count
for C-A and its owner staff:li; C-B's attributes (owner, region, birthday, phone) count for no
one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from crm_es import CRM
from crm_es.reports import Reports
from crm_es.reports.facts import fact_columns
from crm_es.reports.facts.merges import with_merges
from crm_es.reports.query import ReportQuery
from tests.helpers.clock import Clock

PHONE = "+86 138 0000 0001"
# Known at a fixed moment after the merge was recorded, so a report can be compared whole.
BEFORE = {"as_of": "2026-02-28", "known_at": "2026-03-12"}
AFTER = {"as_of": "2026-03-31", "known_at": "2026-03-12"}
NOT_KNOWN_YET = {"as_of": "2026-03-31", "known_at": "2026-03-10"}


def at(day: str) -> str:
    return f"2026-{day}T10:00:00+00:00"


def populate(crm: CRM) -> None:
    for ref, owner, region, extra in (
        ("C-A", "staff:li", "华东", {"phone": PHONE}),
        ("C-B", "staff:wang", "华南", {"phone": PHONE, "birthday": "1990-03-05"}),
        ("C-C", "staff:wang", "华南", {}),
    ):
        crm.register_customer(external_ref=ref, owner=owner, region=region, category="signed",
                              occurred_at=at("01-02"), **extra)  # fmt: skip
    crm.record_purchase(customer="C-A", order_id="O-1", amount="100.00", currency="CNY",
                        occurred_at=at("01-05"))  # fmt: skip
    crm.record_purchase(customer="C-B", order_id="O-1", amount="50.00", currency="CNY",
                        occurred_at=at("02-10"))  # fmt: skip
    crm.refund_purchase(customer="C-B", order_id="O-1", amount="10.00", occurred_at=at("02-11"))
    crm.record_purchase(customer="C-C", order_id="O-9", amount="30.00", currency="CNY",
                        occurred_at=at("01-20"))  # fmt: skip
    crm.answer_survey(customer="C-A", survey_id="S-1", metric="csat", score=5,
                      occurred_at=at("01-06"))  # fmt: skip
    crm.answer_survey(customer="C-B", survey_id="S-1", metric="csat", score=2,
                      occurred_at=at("02-11"))  # fmt: skip
    crm.log_contact(customer="C-B", channel="phone", direction="inbound", staff="staff:li",
                    occurred_at=at("02-12"))  # fmt: skip
    crm.open_opportunity(customer="C-B", opportunity_id="OP-1", title="t", amount="500.00",
                         currency="CNY", owner="staff:wang", occurred_at=at("01-10"))  # fmt: skip
    crm.win_opportunity(customer="C-B", opportunity_id="OP-1", occurred_at=at("02-01"))


def merge(crm: CRM) -> None:
    crm.merge_customers(customer="C-B", into="C-A", occurred_at="2026-03-01T00:00:00+00:00")


@pytest.fixture
def merged(store_url: str) -> str:
    clock = Clock(datetime(2026, 3, 10, tzinfo=UTC))
    with CRM(store_url, clock=clock) as crm:
        populate(crm)
        clock.now = datetime(2026, 3, 11, tzinfo=UTC)
        merge(crm)
    return store_url


def rows(report: Any, field: str, *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(getattr(x, k) for k in keys) for x in getattr(report, field)]


def test_lists_find_duplicates_and_summary_show_one_customer_from_the_merge_on(
    merged: str,
) -> None:
    with CRM(merged) as crm, Reports(crm) as r:
        for kw in (BEFORE, NOT_KNOWN_YET):
            assert rows(r.customer_list(**kw), "customers", "external_ref", "owner") == [
                ("C-A", "staff:li"), ("C-B", "staff:wang"), ("C-C", "staff:wang")
            ]  # fmt: skip
            assert [c.external_ref for c in r.find_customers(phone=PHONE, **kw).customers] == [
                "C-A", "C-B"
            ]  # fmt: skip
            assert r.duplicate_customers(**kw).customers == 2
        listed = r.customer_list(**AFTER)
        assert rows(listed, "customers", "external_ref", "owner", "region", "lifecycle") == [
            ("C-A", "staff:li", "华东", "repeat"), ("C-C", "staff:wang", "华南", "new")
        ]  # fmt: skip
        assert [c.external_ref for c in r.find_customers(phone=PHONE, **AFTER).customers] == ["C-A"]
        assert r.duplicate_customers(**AFTER).groups == []
        summary = r.customer_summary(**AFTER)
        assert summary.total == 2
        assert [(v.value, v.customers) for v in summary.by["region"]] == [("华东", 1), ("华南", 1)]


def test_segments_churn_and_value_count_the_pairs_purchases_together(merged: str) -> None:
    with CRM(merged) as crm, Reports(crm) as r:
        before = r.segments(**BEFORE)
        assert rows(before, "customers", "external_ref", "frequency", "monetary") == [
            ("C-B", 1, "40.00"), ("C-C", 1, "30.00"), ("C-A", 1, "100.00")
        ]  # fmt: skip
        after = r.segments(**AFTER)
        # C-A: purchase days 01-05 and 02-10 (C-B's O-1 is not C-A's O-1: its refund stays its)
        assert rows(after, "customers", "external_ref", "frequency", "monetary", "lifecycle") == [
            ("C-C", 1, "30.00", "new"), ("C-A", 2, "140.00", "repeat")
        ]  # fmt: skip
        assert after.lifecycle_sizes["repeat"] == 1 and after.lifecycle_sizes["new"] == 1
        assert r.segments(**NOT_KNOWN_YET).lifecycle_sizes["new"] == 3
        churn = r.churn(**AFTER)
        assert churn.status_counts == {"active": 2, "at_risk": 0, "churned": 0}
        # BTYD in weeks: one repeat day, 36 days after the first; 85 days to 03-31 end of day.
        assert rows(churn, "customers", "external_ref", "x", "days_since_last_purchase") == [
            ("C-C", 0, 70), ("C-A", 1, 49)
        ]  # fmt: skip
        value = r.value(**AFTER)
        assert value.buyers == 2
        assert rows(value, "customers", "external_ref", "x", "mean_spend") == [
            ("C-C", 0, None), ("C-A", 1, "40.00")  # the repeat purchase: 50.00 − 10.00
        ]  # fmt: skip


def test_satisfaction_kpi_contacts_and_funnel_give_the_duplicates_facts_to_the_survivor(
    merged: str,
) -> None:
    with CRM(merged) as crm, Reports(crm) as r:
        assert r.satisfaction(**AFTER).overall.csat == 50.0  # 5 and 2: one of two 4–5
        by_owner = {o.key: (o.responses, o.csat) for o in r.satisfaction(**AFTER).by_owner}
        assert by_owner == {"staff:li": (2, 50.0)}
        assert {o.key: (o.responses, o.csat) for o in r.satisfaction(**BEFORE).by_owner} == {
            "staff:li": (1, 100.0), "staff:wang": (1, 0.0)
        }  # fmt: skip
        kpi = {o.owner: (o.customers, o.revenue, o.responses) for o in r.kpi(**AFTER).owners}
        assert kpi == {
            "staff:li": (1, {"CNY": "140.00"}, 2),
            "staff:wang": (1, {"CNY": "30.00"}, 0),
        }
        kpi_before = {o.owner: (o.customers, o.revenue) for o in r.kpi(**BEFORE).owners}
        assert kpi_before == {"staff:li": (1, {"CNY": "100.00"}),
                              "staff:wang": (2, {"CNY": "70.00"})}  # fmt: skip
        contacts = r.contacts(**AFTER)
        assert rows(contacts, "last_contacts", "external_ref", "owner", "staff") == [
            ("C-A", "staff:li", "staff:li")
        ]
        assert rows(contacts, "idle_by_owner", "owner", "customers") == [
            ("staff:li", 1), ("staff:wang", 1)
        ]  # fmt: skip
        funnel = r.funnel(**AFTER)
        assert funnel.customers == 2 and funnel.stages[-1].customers == 2
        assert r.funnel(**BEFORE).customers == 3


def test_retention_pipeline_and_agenda_from_the_merge_on(merged: str) -> None:
    with CRM(merged) as crm, Reports(crm) as r:
        retention = r.retention(**AFTER)
        assert retention.customers == 2
        (january,) = retention.cohorts  # A and C bought first in January
        assert [(p.month, p.retained) for p in january.periods] == [
            ("2026-01", 2), ("2026-02", 1), ("2026-03", 0)  # A bought again in February (as B)
        ]  # fmt: skip
        for kw in (BEFORE, AFTER):  # the won opportunity is counted once either way
            assert r.pipeline(**kw).overall.won == 1
            assert r.pipeline(**kw).overall.won_amount == {"CNY": "500.00"}
        # C-B's birthday (03-05) is on the agenda of 02-28; from the merge on it is no one's.
        assert [b.external_ref for b in r.agenda(**BEFORE).birthdays] == ["C-B"]
        assert r.agenda(as_of="2026-03-02", known_at="2026-03-12").birthdays == []


def test_a_report_for_a_past_moment_is_the_same_before_and_after_the_merge(
    store_url: str,
) -> None:
    clock = Clock(datetime(2026, 3, 10, tzinfo=UTC))
    with CRM(store_url, clock=clock) as crm:
        populate(crm)
        with Reports(crm) as r:
            first = [r.segments(**NOT_KNOWN_YET), r.kpi(**BEFORE), r.customer_list(**BEFORE)]
        clock.now = datetime(2026, 3, 11, tzinfo=UTC)
        merge(crm)
        with Reports(crm) as r:
            again = [r.segments(**NOT_KNOWN_YET), r.kpi(**BEFORE), r.customer_list(**BEFORE)]
    assert [msgspec.to_builtins(x) for x in again] == [msgspec.to_builtins(x) for x in first]


def reports_of(url: str) -> list[Any]:
    with CRM(url) as crm, Reports(crm) as r:
        return [
            msgspec.to_builtins(report(**kw))
            for kw in (BEFORE, AFTER, NOT_KNOWN_YET)
            for report in (r.segments, r.churn, r.value, r.kpi, r.retention, r.customer_list,
                           r.customer_summary, r.funnel)
        ]  # fmt: skip


def test_the_columnar_copy_applies_the_merges_as_the_views_do(
    merged: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_sql = reports_of(merged)
    monkeypatch.setattr(fact_columns, "MIN_ROWS", 0)  # copy even this small store
    fact_columns.forget()
    try:
        by_copy = reports_of(merged)
        with CRM(merged) as crm, Reports(crm) as r, r.engine.db.reading() as tx:
            query = ReportQuery.at(AFTER["as_of"], AFTER["known_at"], tz=UTC)
            tables = with_merges(tx, r.engine.all_active_tables(tx), query)
            columns = fact_columns.fact_columns(tx, tables)
            assert columns is not None  # the copy, not the SQL path
            present = fact_columns.present_codes(columns, query.as_of_iso, query.known_at_iso)
            assert sorted(columns.refs[c] for c in present.tolist()) == ["C-A", "C-C"]
    finally:
        fact_columns.forget()
    assert by_copy == by_sql
