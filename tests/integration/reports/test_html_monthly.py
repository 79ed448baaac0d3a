"""Revenue, orders and new customers by month, with the change against the previous period: hand
vectors in Asia/Shanghai on both stores, through the figures and through the HTML page.

The history puts facts on the month boundaries of the store's zone (an order at 00:30 on
1 April in Shanghai is 31 March in UTC), pays in two currencies, refunds in a later month than
its order, and stops the report on 10 June, so June is counted to that day and compared with
1–10 May. A purchase back-dated into April but recorded after the knowledge time changes
nothing in the report known before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from crm_es import CRM
from crm_es.domain import commands as cmd
from crm_es.reports.api import Reports
from crm_es.reports.html.page import render_html
from crm_es.reports.monthly import MonthFigures, MonthlyReport, monthly_report
from crm_es.reports.query import ReportQuery
from tests.helpers.clock import Clock

SHANGHAI = timedelta(hours=8)
RECORDED = datetime(2026, 6, 20, 8, tzinfo=UTC)
KNOWN_AT = RECORDED + timedelta(hours=1)
AS_OF = "2026-06-10"  # the end of 10 June in Shanghai


def local(text: str) -> datetime:
    """A wall-clock time in Shanghai ("2026-04-01 00:30") as an instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC) - SHANGHAI


def history() -> list[cmd.Command]:
    return [
        cmd.RegisterCustomer(external_ref="C-1", name="王芳", occurred_at=local("2026-03-10 10:00")),
        cmd.RegisterCustomer(external_ref="C-2", name="李娜", occurred_at=local("2026-04-01 00:10")),
        cmd.RecordPurchase(customer="C-1", order_id="O-1", amount="100.00", currency="CNY",
                           occurred_at=local("2026-04-01 00:30")),
        cmd.RecordPurchase(customer="C-1", order_id="O-2", amount="50.00", currency="USD",
                           occurred_at=local("2026-04-02 12:00")),
        cmd.RecordPurchase(customer="C-2", order_id="O-3", amount="200.00", currency="CNY",
                           occurred_at=local("2026-04-15 12:00")),
        cmd.RecordPurchase(customer="C-2", order_id="O-4", amount="80.00", currency="CNY",
                           occurred_at=local("2026-05-03 12:00")),
        cmd.RefundPurchase(customer="C-2", order_id="O-3", amount="30.00",
                           occurred_at=local("2026-05-10 23:59")),
        cmd.RegisterCustomer(external_ref="C-3", name="张伟", occurred_at=local("2026-06-02 09:00")),
        cmd.RecordPurchase(customer="C-1", order_id="O-5", amount="10.00", currency="CNY",
                           occurred_at=local("2026-06-05 12:00")),
        cmd.RecordPurchase(customer="C-3", order_id="O-6", amount="5.00", currency="CNY",
                           occurred_at=local("2026-06-10 23:00")),
        # After the report date: in no month of the report.
        cmd.RecordPurchase(customer="C-3", order_id="O-7", amount="999.00", currency="CNY",
                           occurred_at=local("2026-06-11 00:05")),
    ]  # fmt: skip


@pytest.fixture
def shop(store_url: str) -> Iterator[CRM]:
    clock = Clock(RECORDED)
    crm = CRM(store_url, clock=clock)
    crm.store.set_timezone("Asia/Shanghai")
    for outcome in crm.execute_many(history()):
        assert not isinstance(outcome, Exception), outcome
    # Recorded after the knowledge time, back-dated into April: not known at KNOWN_AT.
    clock.now = KNOWN_AT + timedelta(days=1)
    crm.execute(cmd.RecordPurchase(customer="C-1", order_id="L-1", amount="1000.00",
                                   currency="CNY", occurred_at=local("2026-04-20 12:00")))  # fmt: skip
    try:
        yield crm
    finally:
        crm.close()


def figures(crm: CRM, known_at: datetime | None = KNOWN_AT) -> MonthlyReport:
    with Reports(crm) as reports:
        query = ReportQuery.at(AS_OF, known_at, tz=crm.store.timezone)
        reports.engine.catch_up_all()
        with reports.engine.db.reading() as tx:
            return monthly_report(tx, reports.engine.all_active_tables(tx), query)


def test_months_are_cut_in_the_store_zone_per_currency_with_the_previous_period(
    shop: CRM,
) -> None:
    report = figures(shop)
    assert report.reference_date == "2026-06-10"
    assert report.currencies == ["CNY", "USD"]  # CNY sold on more days
    assert [m.month for m in report.months] == ["2026-03", "2026-04", "2026-05", "2026-06"]
    march, april, may, june = report.months
    assert march == MonthFigures(
        month="2026-03", first_day="2026-03-01", last_day="2026-03-31", partial=False,
        orders=0, new_customers=1, revenue={"CNY": "0.00", "USD": "0.00"},
        previous_first_day=None, previous_last_day=None, previous_orders=None,
        previous_new_customers=None, previous_revenue=None,
    )  # fmt: skip
    # O-1 and C-2 fall on 1 April in Shanghai (31 March in UTC); USD never added to CNY.
    assert (april.orders, april.new_customers) == (3, 1)
    assert april.revenue == {"CNY": "300.00", "USD": "50.00"}
    assert (april.previous_orders, april.previous_new_customers) == (0, 1)
    assert april.previous_revenue == {"CNY": "0.00", "USD": "0.00"}
    # The refund lowers May, the month it was made in, not April.
    assert (may.orders, may.new_customers, may.revenue) == (1, 0, {"CNY": "50.00", "USD": "0.00"})
    assert (may.previous_orders, may.previous_revenue) == (3, april.revenue)
    # June to the report date, against the same days of May.
    assert (june.partial, june.first_day, june.last_day) == (True, "2026-06-01", "2026-06-10")
    assert (june.orders, june.new_customers, june.revenue["CNY"]) == (2, 1, "15.00")
    assert (june.previous_first_day, june.previous_last_day) == ("2026-05-01", "2026-05-10")
    assert (june.previous_orders, june.previous_new_customers) == (1, 0)
    assert june.previous_revenue == {"CNY": "50.00", "USD": "0.00"}


def test_a_purchase_recorded_after_the_knowledge_time_counts_only_when_known(shop: CRM) -> None:
    before, now = figures(shop), figures(shop, known_at=None)
    assert before.months[1].revenue["CNY"] == "300.00"
    assert now.months[1].revenue["CNY"] == "1300.00"
    assert now.months[1].orders == before.months[1].orders + 1


def test_the_page_shows_the_months_as_a_table_and_a_chart(shop: CRM) -> None:
    with Reports(shop) as reports:
        page = render_html(reports, ReportQuery.at(AS_OF, KNOWN_AT, tz=shop.store.timezone))
    monthly = page[page.index('<section id="monthly">') : page.index("</section>")]
    assert "<h2>1. Revenue, orders and new customers by month</h2>" in monthly
    assert "compared with the same days of the month before (2026-05-01 – 2026-05-10)" in monthly
    rows = re.findall(r"<tr>(.*?)</tr>", monthly[monthly.index("<tbody>") :])
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    texts = [[re.sub(r"<[^>]+>", "", c) for c in row] for row in cells]
    # Newest first; Month, Orders, Δ, New customers, Δ, CNY, Δ, USD, Δ.
    assert [row[0] for row in texts] == ["2026-06 (to 06-10)", "2026-05", "2026-04", "2026-03"]
    assert texts[0] == ["2026-06 (to 06-10)", "2", "▲ 100.0%", "1", "new (none before)",
                        "15.00", "▼ 70.0%", "0.00", "no change"]  # fmt: skip
    assert texts[2][5:] == ["300.00", "new (none before)", "50.00", "new (none before)"]
    assert texts[3][2] == "–"  # nothing before the first month
    assert '<span class="delta down">▼ 70.0%</span>' in monthly
    figure = re.search(r'<figure class="chart" id="chart-monthly"[^>]*data-points="(\d+)"', page)
    assert figure and int(figure.group(1)) > 0
    for label in ("Revenue (CNY)", "Revenue (USD)", "Orders", "New customers"):
        assert f">{label}</text>" in monthly
    # The headline cards carry the month's figures with their change.
    assert '<div class="label">Revenue 2026-06 (to 06-10) (CNY)</div>' in page
    assert "▼ 70.0% vs 2026-05-01 – 2026-05-10" in page
