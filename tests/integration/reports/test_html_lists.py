"""The action lists of the HTML page: the at-risk customers worth most (name, ref, owner, last
contact) and the most overdue care tasks, by hand vectors in Asia/Shanghai on both stores.

Report date 10 June 2026. With the default churn rule (floor 270 days, at risk after half of
it), a one-time buyer is at risk after 135 silent days: C-A (bought 2025-12-01) and C-B
(2025-12-20, more spend) are at risk, C-C (2026-05-01) is active, C-D (2025-06-01) churned.
A contact and an owner change recorded after the knowledge time are not shown; a task completed
or not yet due is not overdue.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from crm_es import CRM
from crm_es.domain import commands as cmd
from crm_es.reports.api import Reports
from crm_es.reports.html.page import render_html
from crm_es.reports.query import ReportQuery
from crm_es.reports.watchlist import watchlist
from tests.helpers.clock import Clock

RECORDED = datetime(2026, 6, 20, 8, tzinfo=UTC)
KNOWN_AT = RECORDED + timedelta(hours=1)
AS_OF = "2026-06-10"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) - timedelta(hours=8)


def history() -> list[cmd.Command]:
    people = [("C-A", "张伟", "staff:li", "2025-12-01", "500.00"),
              ("C-B", "李娜", "staff:wang", "2025-12-20", "900.00"),
              ("C-C", "王芳", "staff:li", "2026-05-01", "5000.00"),
              ("C-D", "刘洋", "staff:zhou", "2025-06-01", "7000.00")]  # fmt: skip
    out: list[cmd.Command] = []
    for ref, name, owner, day, amount in people:
        out += [
            cmd.RegisterCustomer(external_ref=ref, name=name, owner=owner,
                                 occurred_at=local("2025-05-01 09:00")),
            cmd.RecordPurchase(customer=ref, order_id="O-1", amount=amount, currency="CNY",
                               occurred_at=local(f"{day} 12:00")),
        ]  # fmt: skip
    out += [
        cmd.LogContact(customer="C-A", channel="phone", direction="outbound",
                       occurred_at=local("2026-05-20 10:00")),
        cmd.ScheduleCareTask(customer="C-A", task_id="T-1", kind="return_visit",
                             due_on=date(2026, 6, 1), staff="staff:li",
                             occurred_at=local("2026-05-01 09:00")),
        cmd.ScheduleCareTask(customer="C-B", task_id="T-2", kind="check_in",
                             due_on=date(2026, 5, 20), staff="staff:zhou",
                             occurred_at=local("2026-05-01 09:00")),
        cmd.ScheduleCareTask(customer="C-C", task_id="T-3", kind="return_visit",
                             due_on=date(2026, 5, 10), occurred_at=local("2026-05-01 09:00")),
        cmd.CompleteCareTask(customer="C-C", task_id="T-3", occurred_at=local("2026-05-09 09:00")),
        cmd.ScheduleCareTask(customer="C-D", task_id="T-4", kind="return_visit",
                             due_on=date(2026, 6, 30), occurred_at=local("2026-05-01 09:00")),
    ]  # fmt: skip
    return out


@pytest.fixture
def shop(store_url: str) -> Iterator[CRM]:
    clock = Clock(RECORDED)
    crm = CRM(store_url, clock=clock)
    crm.store.set_timezone("Asia/Shanghai")
    for outcome in crm.execute_many(history()):
        assert not isinstance(outcome, Exception), outcome
    clock.now = KNOWN_AT + timedelta(days=1)  # known only after the knowledge time:
    crm.execute(cmd.LogContact(customer="C-B", channel="phone", direction="outbound",
                               occurred_at=local("2026-06-01 10:00")))  # fmt: skip
    crm.execute(cmd.AssignOwner(customer="C-B", owner="staff:new",
                                occurred_at=local("2026-06-01 10:00")))  # fmt: skip
    try:
        yield crm
    finally:
        crm.close()


def test_at_risk_customers_by_value_with_name_owner_and_last_contact(shop: CRM) -> None:
    with Reports(shop) as reports:
        query = ReportQuery.at(AS_OF, KNOWN_AT, tz=shop.store.timezone)
        args = {"as_of": query.as_of, "known_at": query.known_at}
        w = watchlist(reports.store, query, reports.segments(**args), reports.churn(**args),
                      reports.agenda(**args))  # fmt: skip
    assert w.at_risk_total == 2
    assert [(c.external_ref, c.name, c.owner, c.net_spend) for c in w.at_risk] == [
        ("C-B", "李娜", "staff:wang", "900.00"),
        ("C-A", "张伟", "staff:li", "500.00"),
    ]
    b, a = w.at_risk
    assert (b.last_contact_on, b.days_since_contact) == (None, None)  # its call came later
    assert (a.last_contact_on, a.days_since_contact) == ("2026-05-20", 21)
    assert (a.days_since_last_purchase, a.threshold_days) == (191, 270.0)
    assert w.overdue_total == 2
    assert [(t.external_ref, t.name, t.owner, t.task_id, t.due_on, t.days_overdue, t.staff)
            for t in w.overdue] == [
        ("C-B", "李娜", "staff:wang", "T-2", "2026-05-20", 21, "staff:zhou"),
        ("C-A", "张伟", "staff:li", "T-1", "2026-06-01", 9, "staff:li"),
    ]  # fmt: skip


def test_the_page_lists_them_in_tables(shop: CRM) -> None:
    with Reports(shop) as reports:
        page = render_html(reports, ReportQuery.at(AS_OF, KNOWN_AT, tz=shop.store.timezone))

    def rows(section_id: str) -> list[list[str]]:
        start = page.index(f'<section id="{section_id}">')
        part = page[start : page.index("</section>", start)]
        assert '<table lang="zh-CN" class="list">' in part
        body = part[part.index("<tbody>") :]
        return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", body)]

    assert "<h2>2. At-risk customers worth most</h2>" in page
    assert [r[:4] for r in rows("at-risk")] == [
        ["李娜", "C-B", "staff:wang", "900.00"],
        ["张伟", "C-A", "staff:li", "500.00"],
    ]
    assert rows("at-risk")[1][8] == "2026-05-20 (21 days ago)"
    assert rows("at-risk")[0][8] == "never"
    assert "Top 2 of 2 at-risk customers" in page
    assert "<h2>3. Overdue care tasks</h2>" in page
    assert rows("overdue-tasks") == [
        ["李娜", "C-B", "staff:wang", "check in", "2026-05-20", "21", "staff:zhou", "T-2"],
        ["张伟", "C-A", "staff:li", "return visit", "2026-06-01", "9", "staff:li", "T-1"],
    ]


def test_without_at_risk_customers_or_overdue_tasks_the_sections_say_so(shop: CRM) -> None:
    with Reports(shop) as reports:  # on 1 March nobody had been silent long enough yet
        page = render_html(reports, ReportQuery.at("2026-03-01", KNOWN_AT,
                                                   tz=shop.store.timezone))  # fmt: skip
    assert '<p class="no-data">No customer is at risk as of 2026-03-01.</p>' in page
    assert '<p class="no-data">No overdue care tasks as of 2026-03-01.</p>' in page
