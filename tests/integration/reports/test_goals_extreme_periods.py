"""A goal whose period touches either end of the calendar (0001-01-01, 9999-12-31) never makes the
goals report nor the HTML page raise, on SQLite and PostgreSQL: its windows are cut to the days an
event may occur on (1900-01-01 … 9990-12-31, the day before for a baseline), which holds every fact,
so no figure changes (found by the red team: OverflowError in the baseline window).

set_goal now refuses such a period; a store written before it did may hold one, so the test
writes them as that release did: with the decider's period check lifted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from crm_es import CRM
from crm_es.domain.decide import goals as goal_decider
from crm_es.reports import Reports
from crm_es.reports.html.page import render_html
from crm_es.reports.query import ReportQuery
from tests.helpers.clock import Clock
from tests.helpers.stores import module_store

PERIODS = {
    "G-FIRST": ("0001-01-01", "0001-01-02"),
    "G-SPAN": ("0001-01-02", "9999-12-31"),
    "G-LAST": ("9999-12-30", "9999-12-31"),
    "G-OPEN": ("2026-01-01", "9999-12-31"),
}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with module_store(request, tmp_path_factory) as found:
        yield found


def test_goals_at_the_ends_of_the_calendar_are_reported_without_error(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(goal_decider, "period_problem", lambda starts_on, ends_on: None)
    clock = Clock(datetime.fromisoformat("2026-03-01T10:00:00+00:00"))
    with CRM(url, clock=clock) as crm:
        crm.register_customer(external_ref="C-1", occurred_at="2026-01-01T10:00:00+00:00")
        crm.record_purchase(customer="C-1", order_id="O-1", amount="10.00", currency="CNY",
                            occurred_at="2026-02-01T10:00:00+00:00")  # fmt: skip
        for goal_id, (starts_on, ends_on) in PERIODS.items():
            crm.set_goal(goal_id=goal_id, metric="revenue", target="100", currency="CNY",
                         owner="user:zhou", starts_on=starts_on, ends_on=ends_on)  # fmt: skip
        query = ReportQuery.at("2026-03-01", "2026-03-01T12:00:00+00:00", tz=crm.store.timezone)
        with Reports(crm) as r:
            report = r.goals(as_of="2026-03-01", known_at="2026-03-01T12:00:00+00:00")
            page = render_html(r, query)
    found = {g.goal_id: (g.starts_on, g.ends_on, g.baseline, g.value) for g in report.goals}
    # G-FIRST: both windows cut to days before any purchase: nothing spent, 0.00 and 0.00.
    # G-SPAN: baseline window cut to 1899-12-31: nothing spent;
    #   spent in the period by 1 March 2026: O-1, 10.00.
    # G-LAST: not begun by the report's date: neither figure.
    # G-OPEN: O-1 (1 February) is in the period: 10.00; its baseline reaches back to the
    #   first day an event may occur on and holds no purchase: 0.00.
    assert found == {
        "G-FIRST": ("0001-01-01", "0001-01-02", "0.00", "0.00"),
        "G-LAST": ("9999-12-30", "9999-12-31", None, None),
        "G-OPEN": ("2026-01-01", "9999-12-31", "0.00", "10.00"),
        "G-SPAN": ("0001-01-02", "9999-12-31", "0.00", "10.00"),
    }
    assert all(goal_id in page for goal_id in PERIODS)
