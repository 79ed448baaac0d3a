"""The retention report end to end on SQLite and PostgreSQL: a handful of customers with
purchases in known months of an Asia/Shanghai store, the cohort grid and the monthly churn
statuses written out by hand, the filters, and the report's (as_of, known_at) reproducibility.

Month boundaries are cut in +08:00: C-1's first order at 00:30 on 1 April is 31 March in UTC,
C-3's order at 07:00 on 1 May is 30 April in UTC. The churn rule is tightened (k = 1, floor 30
days) so that statuses move within the few months of the history.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from crm_es import CRM
from crm_es.analytics.churn_settings import ChurnRule
from crm_es.demo.generator import generate_commands
from crm_es.domain import commands as cmd
from crm_es.domain.errors import InvalidValue
from crm_es.reports.api import Reports
from crm_es.reports.facts import fact_columns
from crm_es.reports.facts.population import load_population
from crm_es.reports.html.page import render_html
from crm_es.reports.query import ReportQuery
from crm_es.reports.retention import MonthStatus, RetentionReport, statuses_by_month, table_rows
from tests.helpers.clock import Clock
from tests.helpers.stores import module_store

SHANGHAI = timedelta(hours=8)
RECORDED = datetime(2026, 7, 20, 8, tzinfo=UTC)
KNOWN_AT = RECORDED + timedelta(hours=1)
AS_OF = "2026-06-10"  # the end of 10 June in Shanghai
RULE = ChurnRule(k=1.0, floor_days=30, at_risk_share=0.5)


def local(text: str) -> datetime:
    """A wall-clock time in Shanghai ("2026-04-01 00:30") as an instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC) - SHANGHAI


def buy(customer: str, order: str, when: str) -> cmd.RecordPurchase:
    return cmd.RecordPurchase(customer=customer, order_id=order, amount="10.00", currency="CNY",
                              occurred_at=local(when))  # fmt: skip


def history() -> list[cmd.Command]:
    return [
        cmd.RegisterCustomer(external_ref="C-1", owner="staff:li", region="华东",
                             occurred_at=local("2026-03-10 10:00")),
        cmd.RegisterCustomer(external_ref="C-2", owner="staff:li", region="华北",
                             occurred_at=local("2026-04-01 00:10")),
        cmd.RegisterCustomer(external_ref="C-3", owner="staff:wang", region="华东",
                             occurred_at=local("2026-03-01 09:00")),
        cmd.RegisterCustomer(external_ref="C-4", owner="staff:wang",
                             occurred_at=local("2026-05-20 09:00")),
        cmd.RegisterCustomer(external_ref="C-5", owner="staff:wang", region="华南",
                             occurred_at=local("2026-06-01 10:00")),
        buy("C-3", "O-31", "2026-03-31 23:59"),
        buy("C-1", "O-11", "2026-04-01 00:30"),
        buy("C-1", "O-12", "2026-04-02 12:00"),
        buy("C-2", "O-21", "2026-04-15 12:00"),
        buy("C-3", "O-32", "2026-05-01 07:00"),
        buy("C-2", "O-22", "2026-05-03 12:00"),
        cmd.ChurnCustomer(customer="C-2", churn_reason="moved away",
                          occurred_at=local("2026-05-20 12:00")),
        buy("C-1", "O-13", "2026-06-05 12:00"),
        buy("C-5", "O-51", "2026-06-10 23:00"),
        buy("C-5", "O-52", "2026-06-11 00:05"),  # after the report date: in no month
    ]  # fmt: skip


def late_history() -> list[cmd.Command]:
    """Recorded after the knowledge time, back-dated before the report date."""
    return [
        buy("C-2", "L-21", "2026-06-01 12:00"),  # wins C-2 back
        cmd.RegisterCustomer(external_ref="C-6", occurred_at=local("2026-05-10 10:00")),
        buy("C-6", "L-61", "2026-05-15 12:00"),
    ]


class Shop(msgspec.Struct):
    url: str
    before_late: RetentionReport  # as of AS_OF known at KNOWN_AT, before the late facts existed


def retention(
    url: str, known_at: datetime | None = KNOWN_AT, rule: ChurnRule = RULE, **kw: Any
) -> RetentionReport:
    with CRM(url) as crm, Reports(crm) as reports:
        return reports.retention(as_of=AS_OF, known_at=known_at, rule=rule, **kw)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    with module_store(request, tmp_path_factory) as url:
        clock = Clock(RECORDED)
        with CRM(url, clock=clock) as crm:
            crm.store.set_timezone("Asia/Shanghai")
            for outcome in crm.execute_many(history()):
                assert not isinstance(outcome, Exception), outcome
        before = retention(url)
        clock.now = KNOWN_AT + timedelta(days=1)
        with CRM(url, clock=clock) as crm:
            for outcome in crm.execute_many(late_history()):
                assert not isinstance(outcome, Exception), outcome
        yield Shop(url, before)


def grid(report: RetentionReport, measure: str) -> dict[str, list[Any]]:
    return {c.cohort: [getattr(p, measure) for p in c.periods] for c in report.cohorts}


def test_cohorts_are_months_of_the_first_purchase_day_in_the_store_zone(shop: Shop) -> None:
    report = retention(shop.url)
    assert (report.reference_date, report.customers, report.buyers) == ("2026-06-10", 5, 4)
    # C-3 first bought on 31 March; C-1 on 1 April (31 March in UTC) and C-2 in April; C-5 on
    # the report date. Nobody first bought in May.
    assert [(c.cohort, c.customers) for c in report.cohorts] == [
        ("2026-03", 1), ("2026-04", 2), ("2026-06", 1),
    ]  # fmt: skip
    assert grid(report, "month") == {
        "2026-03": ["2026-03", "2026-04", "2026-05", "2026-06"],
        "2026-04": ["2026-04", "2026-05", "2026-06"],
        "2026-06": ["2026-06"],
    }
    # June is counted to 10 June: the last cell of every cohort.
    assert grid(report, "partial") == {
        "2026-03": [False, False, False, True], "2026-04": [False, False, True], "2026-06": [True],
    }  # fmt: skip


def test_retained_and_repeat_customers_by_hand(shop: Shop) -> None:
    report = retention(shop.url)
    # C-3 bought again on 1 May (30 April in UTC); C-2 in May; C-1 in June.
    assert grid(report, "retained") == {"2026-03": [1, 0, 1, 0], "2026-04": [2, 1, 1],
                                        "2026-06": [1]}  # fmt: skip
    assert grid(report, "retention_rate") == {
        "2026-03": [100.0, 0.0, 100.0, 0.0], "2026-04": [100.0, 50.0, 50.0], "2026-06": [100.0],
    }  # fmt: skip
    # C-1's second day is 2 April (a repeat in its own month), C-2's 3 May, C-3's 1 May; C-5's
    # second order (11 June) is after the report date.
    assert grid(report, "repeat_customers") == {
        "2026-03": [0, 0, 1, 1], "2026-04": [1, 2, 2], "2026-06": [0],
    }  # fmt: skip
    assert grid(report, "repeat_rate") == {
        "2026-03": [0.0, 0.0, 100.0, 100.0], "2026-04": [50.0, 100.0, 100.0], "2026-06": [0.0],
    }  # fmt: skip


def test_churn_statuses_at_each_month_end_by_hand(shop: Shop) -> None:
    """k = 1, floor 30 days: churned after more than max(median gap, 30) silent days, at risk
    after more than half of that."""
    report = retention(shop.url)
    assert report.months == [
        # 31 March: C-3 bought that day; C-1 is registered but first buys on 1 April.
        MonthStatus(month="2026-03", status_on="2026-03-31", partial=False, customers=2,
                    prospect=1, active=1, at_risk=0, churned=0),
        # 30 April: C-3 silent 30 days (threshold 30: at risk, not churned), C-1 silent 28,
        # C-2 silent 15 (not more than half of 30: active).
        MonthStatus(month="2026-04", status_on="2026-04-30", partial=False, customers=3,
                    prospect=0, active=1, at_risk=2, churned=0),
        # 31 May: C-3's threshold is now its 31-day gap, silent 30: at risk; C-1 silent 59:
        # churned; C-2 churned explicitly on 20 May; C-4 registered without a purchase.
        MonthStatus(month="2026-05", status_on="2026-05-31", partial=False, customers=4,
                    prospect=1, active=0, at_risk=1, churned=2),
        # 10 June: C-3 silent 40 > 31: churned; C-1 back on 5 June and C-5 bought that day.
        MonthStatus(month="2026-06", status_on="2026-06-10", partial=True, customers=5,
                    prospect=1, active=2, at_risk=0, churned=2),
    ]  # fmt: skip
    assert grid(report, "active") == {"2026-03": [1, 0, 0, 0], "2026-04": [1, 0, 1],
                                      "2026-06": [1]}  # fmt: skip
    assert grid(report, "at_risk") == {"2026-03": [0, 1, 1, 0], "2026-04": [1, 0, 0],
                                       "2026-06": [0]}  # fmt: skip
    assert grid(report, "churned") == {"2026-03": [0, 0, 0, 1], "2026-04": [0, 2, 1],
                                       "2026-06": [0]}  # fmt: skip


def test_each_month_has_the_statuses_of_the_churn_report_as_of_its_end(shop: Shop) -> None:
    report = retention(shop.url)
    with CRM(shop.url) as crm, Reports(crm) as reports:
        for m in report.months:  # status_on is a bare date: the end of that day
            counts = reports.churn(as_of=m.status_on, known_at=KNOWN_AT, rule=RULE).status_counts
            assert counts == {"active": m.active, "at_risk": m.at_risk, "churned": m.churned}
    for cohort in report.cohorts:
        for p in cohort.periods:
            assert p.active + p.at_risk + p.churned == cohort.customers


def assert_statuses_are_the_population_loaders(
    url: str, known_at: datetime | None, rule: ChurnRule
) -> int:
    """Customer by customer, at every month end of the report: the retention report's status
    path gives what :func:`load_population` gives. Returns how many months were compared."""
    report = retention(url, known_at=known_at, rule=rule)
    with CRM(url) as crm, Reports(crm) as reports, reports.engine.db.reading() as tx:
        tables = reports.engine.all_active_tables(tx)
        tz = crm.store.timezone
        query = ReportQuery.at(AS_OF, known_at, tz=tz)
        pop = load_population(tx, tables, query, "CNY", rule)
        first, last = (month_number(report.months[i].month) for i in (0, -1))
        by_month = list(statuses_by_month(tx, tables, query, rule, pop, first, last))
        assert [day for _, _, day in by_month] == [m.status_on for m in report.months]
        for m, (codes, existing, _) in zip(report.months, by_month, strict=True):
            then = load_population(tx, tables, ReportQuery.at(m.status_on, known_at, tz=tz),
                                   "CNY", rule)  # fmt: skip
            assert [c for c, e in zip(pop.customers.ids, existing, strict=True) if e] == \
                then.customers.ids, m.month  # fmt: skip
            assert codes[existing].tolist() == then.statuses.tolist(), m.month
    return len(report.months)


def month_number(text: str) -> int:
    year, month = map(int, text.split("-"))
    return (year - 1970) * 12 + month - 1


@pytest.mark.parametrize("known_at", [KNOWN_AT, None], ids=["known-at", "now"])
def test_the_monthly_statuses_are_the_population_loaders(
    shop: Shop, known_at: datetime | None
) -> None:
    assert assert_statuses_are_the_population_loaders(shop.url, known_at, RULE) == 4


@pytest.mark.parametrize("min_rows", [10**12, 0], ids=["sql", "copy"])
def test_the_monthly_statuses_are_the_population_loaders_on_a_demo_history(
    sqlite_url: str, min_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Explicit churns, win-backs and long silences of the demo generator, default rule; on
    the SQL path and on the read model's copy in memory (presence from its columns)."""
    fact_columns.forget()
    monkeypatch.setattr(fact_columns, "MIN_ROWS", min_rows)
    end = datetime(2026, 6, 30, 12, tzinfo=UTC)
    with CRM(sqlite_url, clock=Clock(end + timedelta(hours=1))) as crm:
        crm.store.set_timezone("Asia/Shanghai")
        commands = generate_commands(customers=60, years=1.5, seed=11, end=end)
        assert not [o for o in crm.execute_many(commands) if isinstance(o, Exception)]
    for rule in (ChurnRule(), RULE):
        assert assert_statuses_are_the_population_loaders(sqlite_url, None, rule) >= 12
    with CRM(sqlite_url) as crm, Reports(crm) as reports, reports.engine.db.reading() as tx:
        copy = fact_columns.fact_columns(tx, reports.engine.all_active_tables(tx))
        assert (copy is not None) == (min_rows == 0)
    fact_columns.forget()


def test_filters_choose_the_customers_counted_by_their_values_as_of_the_report(
    shop: Shop,
) -> None:
    li = retention(shop.url, owner="staff:li")
    assert (li.owner, li.customers, li.buyers) == ("staff:li", 2, 2)
    assert [(c.cohort, c.customers) for c in li.cohorts] == [("2026-04", 2)]
    assert grid(li, "retained") == {"2026-04": [2, 1, 1]}
    # The months start with the first cohort's: April.
    assert [(m.month, m.customers, m.active, m.at_risk, m.churned) for m in li.months] == [
        ("2026-04", 2, 1, 1, 0), ("2026-05", 2, 0, 0, 2), ("2026-06", 2, 1, 0, 1),
    ]  # fmt: skip
    east = retention(shop.url, region="华东")
    assert [(c.cohort, c.customers) for c in east.cohorts] == [("2026-03", 1), ("2026-04", 1)]
    assert grid(east, "retained") == {"2026-03": [1, 0, 1, 0], "2026-04": [1, 0, 1]}
    # Churned as of 10 June: C-2 (explicitly) and C-3 (by the rule).
    churned = retention(shop.url, segment="churned")
    assert [(c.cohort, c.customers) for c in churned.cohorts] == [("2026-03", 1), ("2026-04", 1)]
    assert grid(churned, "retained") == {"2026-03": [1, 0, 1, 0], "2026-04": [1, 1, 0]}
    none = retention(shop.url, region="(none)")  # C-4: registered, never bought
    assert (none.customers, none.buyers, none.cohorts, none.months) == (1, 0, [], [])
    both = retention(shop.url, owner="staff:wang", segment="prospect")
    assert (both.customers, both.buyers) == (1, 0)


def test_an_unknown_segment_is_an_error_naming_what_it_takes(shop: Shop) -> None:
    with pytest.raises(InvalidValue, match="not a segment, class, lifecycle stage, tier"):
        retention(shop.url, segment="Nonsense")


def test_a_report_of_as_of_and_known_at_is_the_same_after_later_back_dated_facts(
    shop: Shop,
) -> None:
    again = retention(shop.url)
    assert msgspec.json.encode(again) == msgspec.json.encode(shop.before_late)
    # Known now: C-2's June order (a win-back) and C-6, who first bought in May, count.
    now = retention(shop.url, known_at=None)
    assert [(c.cohort, c.customers) for c in now.cohorts] == [
        ("2026-03", 1), ("2026-04", 2), ("2026-05", 1), ("2026-06", 1),
    ]  # fmt: skip
    assert grid(now, "retained")["2026-04"] == [2, 1, 2]
    assert grid(now, "active")["2026-04"] == [1, 0, 2]
    assert now.months[-1].churned == 1  # C-3 alone


def test_the_csv_rows_are_one_per_cohort_and_period(shop: Shop) -> None:
    rows = table_rows(retention(shop.url))
    assert len(rows) == 4 + 3 + 1
    assert rows[5] == {
        "cohort": "2026-04", "customers": 2, "period": 1, "month": "2026-05", "partial": False,
        "retained": 1, "retention_rate": 50.0, "repeat_customers": 2, "repeat_rate": 100.0,
        "active": 0, "at_risk": 0, "churned": 2,
    }  # fmt: skip


def test_an_empty_store_has_no_cohorts(store_url: str) -> None:
    with CRM(store_url) as crm, Reports(crm) as reports:
        report = reports.retention(as_of=AS_OF)
    assert (report.customers, report.buyers, report.cohorts, report.months) == (0, 0, [], [])


def test_the_same_history_in_a_utc_store_cuts_other_months(store_url: str) -> None:
    """C-1's first order (00:30 on 1 April in Shanghai) is on 31 March in UTC, and C-3's
    second (07:00 on 1 May) on 30 April."""
    with CRM(store_url, clock=Clock(RECORDED)) as crm:
        for outcome in crm.execute_many(history()):
            assert not isinstance(outcome, Exception), outcome
    report = retention(store_url)
    assert report.reference_date == "2026-06-10"
    assert [(c.cohort, c.customers) for c in report.cohorts] == [
        ("2026-03", 2), ("2026-04", 1), ("2026-06", 1),
    ]  # fmt: skip
    assert grid(report, "retained") == {"2026-03": [2, 2, 0, 1], "2026-04": [1, 1, 0],
                                        "2026-06": [1]}  # fmt: skip


def test_the_html_page_has_the_heat_map_and_the_tables_by_hand(shop: Shop) -> None:
    with CRM(shop.url) as crm, Reports(crm) as reports:
        page = render_html(reports, ReportQuery.at(AS_OF, KNOWN_AT, tz=crm.store.timezone))
    start = page.index('<section id="retention">')
    part = page[start : page.index("</section>", start)]
    assert "Retention by cohort</h2>" in part
    # 4 + 3 + 1 cells, hatched where June is counted to 10 June.
    assert '<figure class="chart" id="chart-retention" data-chart="chart-retention" ' \
        'data-points="8">' in part  # fmt: skip
    assert "2026-03 (1)</text>" in part and "the report date's month, to date</text>" in part
    rows = [
        [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", part)
    ]
    # Newest first: cohort, customers, months 1, 2, 3, 6 (%), repeat by now (%).
    assert [r for r in rows if len(r) == 7] == [
        ["2026-06", "1", "–", "–", "–", "–", "0.0"],
        ["2026-04", "2", "50.0", "50.0", "–", "–", "100.0"],
        ["2026-03", "1", "0.0", "100.0", "0.0", "–", "100.0"],
    ]
    # Newest first: month, status day, customers, active, at risk, churned. The page takes the
    # default rule (floor 270 days): nobody is silent long enough; C-2 churned explicitly.
    assert [r for r in rows if len(r) == 6] == [
        ["2026-06", "2026-06-10", "5", "3", "0", "1"],
        ["2026-05", "2026-05-31", "4", "2", "0", "1"],
        ["2026-04", "2026-04-30", "3", "3", "0", "0"],
        ["2026-03", "2026-03-31", "2", "1", "0", "0"],
    ]


def test_the_window_keeps_the_cohorts_that_began_in_its_months(shop: Shop) -> None:
    # As of 10 June 2026: three months are April to June, so the March cohort (C-3) is left out,
    # counted, and the months start with the first cohort in the window.
    report = retention(shop.url, window_months=3)
    assert (report.window_months, report.before_window, report.buyers) == (3, 1, 4)
    assert [(c.cohort, c.customers) for c in report.cohorts] == [("2026-04", 2), ("2026-06", 1)]
    assert grid(report, "retained") == {"2026-04": [2, 1, 1], "2026-06": [1]}
    assert [m.month for m in report.months] == ["2026-04", "2026-05", "2026-06"]
    full = retention(shop.url)  # the default window covers every cohort here
    assert (full.window_months, full.before_window) == (120, 0)
    assert full.cohorts[1:] == report.cohorts  # a cohort's figures do not depend on the window
    for wrong in (0, 1201, True, 2.5):
        with pytest.raises(InvalidValue, match="window_months"):
            retention(shop.url, window_months=wrong)


def test_a_report_dated_long_after_every_purchase_has_no_cohorts_rather_than_a_million_months(
    shop: Shop,
) -> None:
    with CRM(shop.url) as crm, Reports(crm) as reports:
        report = reports.retention(as_of="9990-12-31", known_at=KNOWN_AT)
    assert (report.cohorts, report.months, report.before_window) == ([], [], 4)
